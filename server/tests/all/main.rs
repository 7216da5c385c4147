//! The server's integration tests: one binary, a module per area. A binary per file linked the
//! whole server twenty times over (docs/BENCHMARKS.md, "Building the tests"). nextest still runs
//! each test in a process of its own; `cargo nextest run -E 'test(/^tokens::/)'` picks an area.

mod common;

mod accounts;
mod admin;
mod billing;
mod compute;
mod console;
mod daemon;
mod drivers;
mod exec;
mod faults;
mod marketplace;
mod meta;
mod metering;
mod nodes;
mod operators;
mod outage;
mod pools;
mod portal;
mod qemu;
mod rentals;
mod replicas;
mod tokens;
mod topups;
