//! `hangar-node`: the daemon on each container host, and its HTTP API.
//!
//! It keeps volumes (directories under `storage.root/volumes`, every file operation confined to
//! them by the kernel, see [`confined`]), a pool of host ports, and containers on the host's
//! Docker-API engine, and answers the panel over plain JSON with `{"error": ...}` errors. Its
//! state lives in a SQLite file on the host, so a restart finds every volume, port and container
//! again.
//!
//! Layout: [`config`] (the TOML file), [`state`] (the shared [`Node`]), services
//! ([`tokens`], [`ports`], [`volumes`], [`archive`], [`containers`]) and [`api`] (thin handlers, one router).

pub mod api;
pub mod archive;
pub mod config;
pub mod confined;
pub mod containers;
pub mod error;
pub mod host;
pub mod ports;
pub mod state;
pub mod tokens;
pub mod volumes;

pub use state::Node;

/// Seconds since the epoch: the daemon stores times as the reference shows them.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Starts the daemon on its configured listener and serves until `shutdown` resolves.
pub async fn serve(
    config_path: std::path::PathBuf,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = config::Config::load_or_create(&config_path)?;
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let node = Node::open(config, config_path).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "hangar-node listening");
    // Answers go out at once (`TCP_NODELAY`): otherwise a response written in two parts waits
    // for the server's delayed ACK on a kept-alive connection, ~40 ms per call.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, api::router(node))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
