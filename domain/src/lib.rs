//! Hangar's domain: everything the portal and the HTTP APIs do, without either of them. Rooms by
//! area, each with one responsibility, layered so that no two rooms import each other:
//!
//! ```text
//! jobs      the worker that claims queued jobs and hands each kind to the room that owns it
//! operators the operators' console: customers found, read, suspended and reinstated
//! compute   customers' machines: instances, jobs on nodes, metering, reconciler, consoles, exec
//! market    marketplace servers (inventory, browse, demo catalog) and rentals
//! money     ledger, billing history and notify addresses, card payments
//! fleet     plans, images, templates, nodes and placement, addresses, drivers (no money)
//! accounts  users, sign-in, access tokens, JWTs, CAPTCHA, SSH keys, pools and their roles
//! infra     config, database, errors, audit log, mail, the leased job queue, revocations
//! ```
//!
//! A room may use the rooms below it, never one above (`tests/rooms.rs` checks it). [`AppState`]
//! and [`Actor`] sit above the rooms: they are the context every service is called with.

pub mod accounts;
pub mod compute;
pub mod fleet;
pub mod infra;
pub mod jobs;
pub mod market;
pub mod money;
pub mod operators;

use std::sync::Arc;

pub use infra::{config, db, error};

/// Who is acting: a user, and the access token they used (spend limits apply to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub token_id: Option<String>,
}

impl Actor {
    /// A signed-in browser session: no token, no token limit.
    pub fn user(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            token_id: None,
        }
    }
}

/// Everything a request handler, a server function or a background loop may need, cheap to
/// clone. The portal's Leptos options are not here: the server's router state adds them.
#[derive(Clone)]
pub struct AppState {
    pub db: db::Pool,
    pub config: Arc<config::Config>,
    pub jwt: Arc<accounts::jwt::JwtKeys>,
    /// Outbound HTTP (CAPTCHA verification, payment provider, node daemons).
    pub http: reqwest::Client,
    /// This replica's marketplace browse index (`market::index`), unless configured off.
    pub browse_index: Option<Arc<market::index::BrowseIndex>>,
    /// One compute driver per node (see `fleet::nodes::Drivers`).
    pub drivers: Arc<fleet::nodes::Drivers>,
    /// Wakes this replica's job workers when a request enqueues a job.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Ends this replica's live connections when what authorised them ends
    /// (`infra::revocations`).
    pub revocations: Arc<infra::revocations::Revocations>,
    /// This replica's open consoles (see `compute::console`).
    pub consoles: Arc<compute::console::Consoles>,
    /// This replica's bounds on work at once (see `infra::gates`).
    pub gates: Arc<infra::gates::Gates>,
    /// This replica's counters and latency histograms (`infra::metrics`, `GET /metrics`).
    pub metrics: Arc<infra::metrics::Metrics>,
    /// This replica's shutdown: draining, then stopping (`infra::lifecycle`).
    pub lifecycle: Arc<infra::lifecycle::Lifecycle>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Connects, migrates and loads keys: everything `serve` needs before it listens.
    pub async fn build(config: config::Config) -> anyhow::Result<Self> {
        config.write_simulated_node()?;
        let db = db::connect(&config.database_url).await?;
        db::migrate(&db).await?;
        let jwt = accounts::jwt::JwtKeys::load(&config, &db).await?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("hangar/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let browse_index = config.browse_index.then(Arc::default);
        fleet::catalog::seed_defaults(&db, &config).await?;
        let drivers = Arc::new(fleet::nodes::Drivers::new(fleet::driver::Settings {
            stop_timeout: std::time::Duration::from_secs(config.stop_timeout_secs),
            libvirt_domain_type: config.libvirt_domain_type,
            libvirt_network: config.libvirt_network.clone(),
            guest_keys: Arc::new(fleet::driver::guest::GuestKeys::new(
                db::stored_secret(&db, "guest_ssh").await?.as_bytes(),
            )),
            installation: db::stored_secret(&db, "installation").await?[..16].to_owned(),
            container_pids_limit: config.container_pids_limit,
        }));
        // Which node holds which image, before the first create is placed.
        fleet::survey::all(&db, &drivers).await?;
        Ok(Self {
            drivers,
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            revocations: Arc::default(),
            consoles: Arc::default(),
            gates: Arc::new(infra::gates::Gates::of(&config)),
            metrics: Arc::default(),
            lifecycle: Arc::default(),
            db,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            http,
            browse_index,
        })
    }
}
