//! The marketplace: servers rented by the day. `inventory` is what operators put on it,
//! `browse` what customers find there (`index` keeps it fast), `demo` a generated catalog, `rentals` the renting itself
//! (pools, which rentals are shared through, are teams and live in `accounts`).

pub mod browse;
pub mod demo;
pub mod index;
pub mod inventory;
pub mod rentals;
