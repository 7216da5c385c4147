//! The node daemon embedded in `hangar serve` (`node_listen`): a single machine runs the panel
//! and its container host's daemon in one process, so app templates work on the embedded
//! default with no extra step. The daemon keeps its own config and state under
//! `data_dir/node/` exactly as a separate `hangar-node` would, and listens on its own address;
//! the panel reaches it over HTTP like any other node daemon.

use std::net::SocketAddr;

use anyhow::Context;

/// Ports the embedded daemon's pool starts with.
const EMBEDDED_PORTS: std::ops::Range<u16> = 25565..25575;

/// Starts the daemon on `listen`, driving the engine at `docker_host`; answers its token.
pub async fn start(
    data_dir: &std::path::Path,
    listen: SocketAddr,
    docker_host: &str,
) -> anyhow::Result<String> {
    let dir = data_dir.join("node");
    let path = dir.join("config.toml");
    let mut config = hangar_node::config::Config::load_or_create(&path)
        .with_context(|| format!("the embedded node daemon's config {}", path.display()))?;
    config.server.host = listen.ip().to_string();
    config.server.port = listen.port();
    config.storage.root = dir.join("storage");
    config.docker.host = docker_host.to_owned();
    // Written back so a reload (`POST /remote/config/reload`) reads what is in force.
    std::fs::write(&path, toml::to_string_pretty(&config)?)?;
    let token = config.authorization.token.clone();
    let node = hangar_node::Node::open(config, path).await?;
    // A small pool on the loopback for apps that want ports (the demo app takes one); an
    // operator adds real ones with `POST /network/ports` on the daemon.
    for port in EMBEDDED_PORTS {
        if let Err(e) = hangar_node::ports::add(&node, "127.0.0.1", port.into(), "tcp").await {
            if !e.message.contains("already exists") {
                tracing::warn!(port, error = %e.message, "embedded node daemon: port not pooled");
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the node daemon's listener {listen}"))?;
    tracing::info!("node daemon (embedded) listening on http://{listen}");
    // As the server's own listener: answers go out at once (see `http::serve_until`).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, hangar_node::api::router(node)).await {
            tracing::error!(error = %e, "the embedded node daemon stopped");
        }
    });
    Ok(token)
}
