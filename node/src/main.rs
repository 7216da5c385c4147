//! `hangar-node`: the node daemon. `hangar-node --config /etc/hangar-node/config.toml` serves
//! its HTTP API on the configured listener (default 127.0.0.1:8070); on first start it writes a
//! config with a fresh token to that path.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "hangar-node",
    version,
    about = "Hangar's node daemon: volumes, ports and containers on one host"
)]
struct Cli {
    /// The daemon's TOML config; created with defaults and a new token when missing.
    #[arg(
        long,
        env = "HANGAR_NODE_CONFIG",
        default_value = "/etc/hangar-node/config.toml"
    )]
    config: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    hangar_node::serve(cli.config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
