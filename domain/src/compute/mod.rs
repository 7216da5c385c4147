//! Compute: customers' machines and their lives, on top of the fleet. Instances and their
//! snapshots (`instances`), what each job does on a node (`executor`), the reconciler that keeps
//! the database and the nodes in agreement (`reconcile`), the meter that bills running machines by
//! the minute and the balance notices it sends (`meter`, `notices`), quotas, consoles and screens
//! (`console`), commands and files inside a machine (`exec`, `guard`, `volume`), and live and past
//! usage (`stats`, `history`).
//!
//! A machine's driver is found through the fleet (`fleet::nodes::driver_for`), never through the
//! job executor, so reading a machine's console or files does not depend on how jobs run.

pub mod console;
pub mod exec;
pub mod executor;
pub mod guard;
pub mod history;
pub mod instances;
pub mod meter;
pub mod notices;
pub mod quotas;
pub mod reconcile;
pub mod stats;
pub mod volume;
