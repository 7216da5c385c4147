//! Every request and response shape of Hangar's JSON APIs that is not already a shared type of
//! its own (accounts, compute, market, money, node): one module per API file of the server
//! (`server::api::*`), so a shape is found where its route is, and every client (the portal, the
//! CLI, tests) reads the same type the server writes.

pub mod admin;
pub mod admin_compute;
pub mod admin_customers;
pub mod admin_machines;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod console;
pub mod exec;
pub mod instances;
pub mod meta;
pub mod servers;
pub mod tokens;
pub mod v1_marketplace;
pub mod v1_pools;
pub mod v1_rentals;
pub mod volume;
pub mod vps;
