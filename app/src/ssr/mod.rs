//! Server-only code: configuration, the database, the domain services and the state the server
//! functions and the HTTP handlers share. Compiled only with the `ssr` feature, so none of it
//! reaches the browser bundle.

pub mod accounts;
pub mod audit;
pub mod billing;
pub mod captcha;
pub mod compute;
pub mod config;
pub mod db;
pub mod error;
pub mod jwt;
pub mod ledger;
pub mod mail;
pub mod marketplace;
pub mod payments;
pub mod pools;
pub mod portal;
pub mod rentals;
pub mod session_store;
pub mod tokens;

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

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

/// Everything a request handler or a server function may need, cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: db::Pool,
    pub config: Arc<config::Config>,
    pub jwt: Arc<jwt::JwtKeys>,
    /// Outbound HTTP (CAPTCHA verification, payment provider, node daemons).
    pub http: reqwest::Client,
    pub leptos_options: LeptosOptions,
    /// Marketplace browse results for the current generation (see `marketplace::BrowseCache`).
    pub browse_cache: Arc<marketplace::BrowseCache>,
    /// One compute driver per node (see `compute::driver::Drivers`).
    pub drivers: Arc<compute::driver::Drivers>,
    /// Wakes this replica's job workers when a request enqueues a job.
    pub jobs_wake: Arc<tokio::sync::Notify>,
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
        let db = db::connect(&config.database_url).await?;
        db::migrate(&db).await?;
        let jwt = jwt::JwtKeys::load(&config, &db).await?;
        let leptos_options = LeptosOptions::builder()
            .output_name("hangar")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(config.listen)
            .build();
        let http = reqwest::Client::builder()
            .user_agent(concat!("hangar/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let browse_cache = Arc::new(marketplace::BrowseCache::new(config.browse_cache_entries));
        compute::catalog::seed_defaults(&db, &config).await?;
        let drivers = Arc::new(compute::driver::Drivers::new(compute::driver::Settings {
            stop_timeout: std::time::Duration::from_secs(config.stop_timeout_secs),
            libvirt_domain_type: config.libvirt_domain_type,
            libvirt_network: config.libvirt_network.clone(),
        }));
        Ok(Self {
            drivers,
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            db,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            http,
            leptos_options,
            browse_cache,
        })
    }
}
