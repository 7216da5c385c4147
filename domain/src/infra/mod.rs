//! The floor every room stands on: typed configuration, the database pool and its helpers, the
//! domain error, the audit log, outgoing mail, the leased job queue, the replica's metrics, its
//! shutdown, and the revocations that end live connections.
//! Nothing here knows about accounts, money, the marketplace or compute.

pub mod audit;
pub mod config;
pub mod db;
pub mod error;
pub mod gates;
pub mod lifecycle;
pub mod mail;
pub mod metrics;
pub mod patch;
pub mod queue;
pub mod revocations;
