//! Hangar's server: the HTTP edge and API handlers around the domain services in `app::ssr`.
//! `main.rs` is the `hangar` command line; tests build the same router through [`http::router`].

pub mod api;
pub mod cli;
pub mod embedded_node;
pub mod http;
pub mod jobs;

/// Installs the log subscriber (`RUST_LOG` filters, default `info`).
pub fn init_tracing(format: domain::infra::config::LogFormat) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    // Logs go to stderr: a command's stdout is its answer (`hangar admin users | cut -f1`).
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        domain::infra::config::LogFormat::Json => builder.json().try_init(),
        domain::infra::config::LogFormat::Text => builder.try_init(),
    };
}
