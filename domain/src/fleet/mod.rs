//! The fleet: what machines are made of and where they run, without money or customers' machines.
//! Plans, images and templates (`catalog`, with the hourly rates a stopped machine still pays),
//! nodes with their capacity, placement and the driver that reaches each (`nodes`), public IPv4
//! ranges (`addresses`), which node holds which image (`survey`), image downloads (`download`),
//! and the drivers themselves (`driver`: libvirt, a Docker API, the node daemon).
//!
//! Named `fleet` rather than "inventory" because the marketplace already has an inventory (the
//! dedicated servers it rents out, `market::inventory`). Customers' SSH keys are an account's,
//! so they live in `accounts::keys`.

pub mod addresses;
pub mod catalog;
pub mod download;
pub mod driver;
pub mod nodes;
pub mod survey;
