//! The operators' console: what a hosting company's staff do across every other room — find a
//! customer and read their page (accounts, money, machines, rentals), suspend and reinstate
//! them (which stops their machines). It sits above compute because it acts on machines, and
//! below jobs.

pub mod catalog;
pub mod customers;
