//! Compute: plans, images and templates (`catalog`), nodes and placement, public addresses, SSH
//! keys, which node holds which image (`survey`), instances and their snapshots, what each job does on a node (`executor`), the reconciler
//! that keeps the database and the nodes in agreement, the meter that bills running instances by
//! the minute and the balance notices it sends, consoles and screens (`console`), and the drivers
//! behind it all.

pub mod addresses;
pub mod catalog;
pub mod console;
pub mod download;
pub mod driver;
pub mod exec;
pub mod executor;
pub mod guard;
pub mod history;
pub mod instances;
pub mod keys;
pub mod meter;
pub mod nodes;
pub mod notices;
pub mod quotas;
pub mod reconcile;
pub mod stats;
pub mod survey;
pub mod volume;
