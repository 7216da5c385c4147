//! Compute: plans, images, templates, nodes, public addresses, instances and their snapshots, the jobs that drive
//! the hypervisors, the reconciler that keeps the database and the nodes in agreement, and the
//! meter that bills running instances by the minute.

pub mod addresses;
pub mod catalog;
pub mod driver;
pub mod instances;
pub mod jobs;
pub mod keys;
pub mod meter;
pub mod nodes;
pub mod reconcile;
