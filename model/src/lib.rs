//! What a client sees: the shapes of Hangar's APIs and pages, shared by the browser bundle (WASM),
//! the portal's server functions and the domain. Only `serde` here, so it compiles for the browser;
//! the `openapi` feature adds the schemas `/openapi.json` is generated from.

pub mod accounts;
pub mod api;
pub mod compute;
#[cfg(feature = "docker")]
pub mod engine;
pub mod market;
pub mod money;
pub mod node;
