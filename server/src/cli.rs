//! The `hangar` command line: `serve` (default), `migrate`, `config`, `admin ...`.

use std::{io::Read, process::ExitCode, time::Duration};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use domain::accounts::entry;
use domain::infra::config::Config;
use domain::infra::db;
use domain::money::ledger;
use domain::AppState;

#[derive(Parser)]
#[command(
    name = "hangar",
    version,
    about = "Self-hostable platform for renting and running servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (portal, APIs, background work). The default.
    Serve,
    /// Apply pending database migrations and exit (`--status`: only list them; exits 10 when some
    /// are pending, 11 when the database is newer than this program).
    Migrate {
        /// List every migration, applied (when) or pending, and change nothing.
        #[arg(long)]
        status: bool,
    },
    /// Print the configuration as this command reads it: every key, its value (secrets
    /// redacted) and where it came from. A running server's: `GET /api/admin/config`.
    Config,
    /// Operator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user. The password is read from HANGAR_ADMIN_PASSWORD, or else from stdin.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        /// Give the user operator rights.
        #[arg(long)]
        admin: bool,
    },
    /// Compare every cached balance with its ledger sum; exits non-zero on any difference.
    CheckLedger,
    /// List customers, newest first: those whose e-mail or username contains SEARCH (any
    /// case), or whose id it is; everyone without it. Tab-separated: id, username, e-mail,
    /// balance (USD), machines, status.
    Users {
        search: Option<String>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Write a consistent copy of the SQLite database to PATH while Hangar runs (SQLite's
    /// `VACUUM INTO`: one read transaction, so the copy is the database at one instant, and
    /// writers are not blocked). For PostgreSQL, use `pg_dump` (docs/OPERATING.md, "Backups").
    Backup {
        /// Where to write the copy; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Load generated, realistic marketplace servers (deterministic for a given seed).
    DemoCatalog {
        /// How many servers to add.
        #[arg(long, default_value_t = 500)]
        count: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Do nothing when the marketplace already has servers.
        #[arg(long)]
        if_empty: bool,
    },
    /// Add or update a machine image by slug (as `PUT /api/admin/images` does).
    PutImage {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// `vm` or `container`.
        #[arg(long)]
        kind: String,
        /// A VM's base disk or `kernel=... initrd=... append=...`; a container's image reference.
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        source: Option<String>,
        /// A VM's base disk (qcow2) to fetch over HTTP(S) into `data_dir/images/<slug>.qcow2`,
        /// checked against `--sha256` before it is used (a node on this host reads it there).
        #[arg(long, requires = "sha256")]
        url: Option<String>,
        /// The SHA-256 of the file at `--url`, as 64 hexadecimal digits.
        #[arg(long)]
        sha256: Option<String>,
        /// Make it the default image of its kind.
        #[arg(long)]
        default: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hangar: {}", error_chain(&e));
            return ExitCode::from(2);
        }
    };
    crate::init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hangar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hangar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if !config.unknown_env.is_empty() {
        tracing::warn!(variables = ?config.unknown_env, "ignoring HANGAR_* variables that are not config keys");
    }
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate { status: false } => {
            migrated(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Migrate { status: true } => migration_status(&config).await,
        Command::Config => {
            // The configuration this command sees (this shell's environment and file); a running
            // server's is `GET /api/admin/config`.
            let width = config
                .settings
                .iter()
                .map(|s| s.key.len())
                .max()
                .unwrap_or(0);
            for s in &config.settings {
                println!("{:width$} = {:40} # {}", s.key, s.value, s.origin);
            }
            Ok(())
        }
        Command::Admin(AdminCommand::CreateUser {
            email,
            username,
            admin,
        }) => create_user(&config, email, username, admin).await,
        Command::Admin(AdminCommand::DemoCatalog {
            count,
            seed,
            if_empty,
        }) => demo_catalog(&config, count, seed, if_empty).await,
        Command::Admin(AdminCommand::CheckLedger) => check_ledger(&config).await,
        Command::Admin(AdminCommand::Users { search, limit }) => {
            list_users(&config, search.as_deref().unwrap_or_default(), limit).await
        }
        Command::Admin(AdminCommand::Backup { path }) => backup(&config, &path).await,
        Command::Admin(AdminCommand::PutImage {
            slug,
            name,
            kind,
            source,
            url,
            sha256,
            default,
        }) => {
            let source = match (source, url) {
                (Some(source), _) => source,
                (None, Some(url)) => {
                    if kind != "vm" {
                        bail!("--url fetches VM disk images; a container image is named by --source (an image the engine has)");
                    }
                    if !domain::fleet::catalog::slug_ok(&slug) {
                        bail!("slug: lower-case letters, digits, `-` and `.`, at most 63");
                    }
                    let dest = config.data_dir.join("images").join(format!("{slug}.qcow2"));
                    println!("fetching {url}");
                    let size = domain::fleet::download::fetch(
                        &url,
                        sha256.as_deref().unwrap_or_default(),
                        &dest,
                    )
                    .await?;
                    println!("{} ({size} bytes, checksum verified)", dest.display());
                    dest.display().to_string()
                }
                (None, None) => bail!("--source or --url is required"),
            };
            let pool = migrated(&config).await?;
            // The defaults first, as `serve` would lay them, so they do not replace this image
            // as the default of its kind later.
            domain::fleet::catalog::seed_defaults(&pool, &config)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // A change to an image that exists names only what the command was given (its app
            // recipe, retirement and default stay unless told), as the API's PUT does.
            let mut body =
                serde_json::json!({"slug": slug, "name": name, "kind": kind, "source": source});
            if default {
                body["is_default"] = true.into();
            }
            let image = domain::fleet::catalog::put_image(&pool, body)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            domain::infra::audit::record_now(
                &pool,
                None,
                "image.put",
                "image",
                Some(&image.slug),
                serde_json::json!({"source": image.source, "kind": image.kind, "via": "hangar admin put-image"}),
            )
            .await?;
            println!("image {} ({}) saved", image.slug, image.kind);
            Ok(())
        }
    }
}

/// `admin backup`: `VACUUM INTO` a new file (SQLite only).
async fn backup(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    if db::Backend::of_url(&config.database_url) != db::Backend::Sqlite {
        anyhow::bail!(
            "admin backup copies SQLite databases; for PostgreSQL use pg_dump (see docs/OPERATING.md, \"Backups\")"
        );
    }
    if path.exists() {
        anyhow::bail!("{} exists already; choose a new file", path.display());
    }
    let target = path
        .to_str()
        .context("the backup path must be valid UTF-8")?;
    let pool = db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&pool)
        .await
        .with_context(|| format!("writing {}", path.display()))?;
    // A copy of the secrets the database holds: private like the database itself.
    db::restrict(path).with_context(|| format!("making {} private", path.display()))?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!("backup written to {} ({} KB)", path.display(), bytes / 1024);
    Ok(())
}

/// `migrate --status`: what is applied and what is pending, without changing anything. The exit
/// code says what to do (codes of their own: 1 and 2 are errors and usage): 0 up to date, 10 pending (run `hangar migrate`, or start the new
/// release), 11 the database has migrations this program does not know (it is the older
/// release, as after a rollback: it runs, since migrations only add; upgrade again when the
/// newer release is fixed).
async fn migration_status(config: &Config) -> anyhow::Result<()> {
    let pool = db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    let all = db::migration_status(&pool)
        .await
        .context("reading the migrations")?;
    let (mut pending, mut unknown) = (0, 0);
    for m in &all {
        let state = match (&m.applied_at, m.unknown) {
            (Some(at), false) => format!("applied {at}"),
            (Some(at), true) => {
                unknown += 1;
                format!("applied {at}, NOT KNOWN to this program")
            }
            (None, _) => {
                pending += 1;
                "pending".to_owned()
            }
        };
        println!("{:>16}  {:<40}  {state}", m.version, m.description);
    }
    println!(
        "hangar {}: {} migrations, {pending} pending, {unknown} unknown",
        env!("CARGO_PKG_VERSION"),
        all.len()
    );
    if unknown > 0 {
        std::process::exit(11);
    }
    if pending > 0 {
        std::process::exit(10);
    }
    Ok(())
}

/// The database, migrated: what every operator command starts from.
async fn migrated(config: &Config) -> anyhow::Result<db::Pool> {
    let pool = db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    db::migrate(&pool).await.context("migrating")?;
    Ok(pool)
}

/// `admin create-user`: the password from `HANGAR_ADMIN_PASSWORD`, else standard input.
async fn create_user(
    config: &Config,
    email: String,
    username: String,
    admin: bool,
) -> anyhow::Result<()> {
    let password = match std::env::var("HANGAR_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut p = String::new();
            std::io::stdin()
                .read_to_string(&mut p)
                .context("reading the password from stdin")?;
            p.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let pool = migrated(config).await?;
    let user = entry::register(
        &pool,
        entry::NewAccount {
            email,
            username,
            password,
            is_admin: admin,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "created {} user {} ({}) id {}",
        if user.is_admin { "admin" } else { "regular" },
        user.username,
        user.email,
        user.id
    );
    Ok(())
}

/// `admin demo-catalog`: generated servers, optionally only into an empty marketplace.
async fn demo_catalog(
    config: &Config,
    count: usize,
    seed: u64,
    if_empty: bool,
) -> anyhow::Result<()> {
    let pool = migrated(config).await?;
    let existing = domain::market::inventory::count(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if if_empty && existing > 0 {
        println!("marketplace already has {existing} servers; nothing loaded");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let servers = domain::market::demo::demo_servers(count, seed);
    let added = domain::market::inventory::load(&pool, servers)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "loaded {added} demo servers in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `admin check-ledger`: exit 1 unless every cached balance equals its ledger sum.
async fn check_ledger(config: &Config) -> anyhow::Result<()> {
    let pool = db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    let bad = ledger::mismatches(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if bad.is_empty() {
        println!("ledger ok: every cached balance equals its ledger sum");
        return Ok(());
    }
    for (user, cached, sum) in &bad {
        println!("user {user}: cached {cached} µUSD, ledger {sum} µUSD");
    }
    bail!("{} balance(s) differ from the ledger", bad.len())
}

async fn list_users(config: &Config, search: &str, limit: i64) -> anyhow::Result<()> {
    let pool = db::connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    let (found, total) = domain::operators::customers::search(&pool, search, limit, 0)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for c in &found {
        let status = match (&c.suspended, c.deleted, c.is_admin) {
            (Some(reason), _, _) => format!("suspended: {reason}"),
            (None, true, _) => "closed".to_owned(),
            (None, false, true) => "operator".to_owned(),
            (None, false, false) => "active".to_owned(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{status}",
            c.id,
            c.username,
            c.email,
            model::money::usd4(c.balance.0),
            c.machines
        );
    }
    if total as usize > found.len() {
        eprintln!(
            "{total} match; the newest {} are shown (--limit)",
            found.len()
        );
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let site_root = config.site_root.clone();
    if !site_root.join("pkg/bundle.txt").exists() {
        tracing::warn!(site_root = %site_root.display(), "no built site found: pages will render but not hydrate; run `cargo xtask build`");
    }
    let embedded_node = match (config.node_listen, config.docker_host.as_deref()) {
        (Some(listen), Some(docker)) => Some((
            listen,
            crate::embedded_node::start(&config.data_dir, listen, docker).await?,
        )),
        (Some(_), None) => {
            tracing::warn!("node_listen is set but docker_host is not: no embedded node daemon");
            None
        }
        _ => None,
    };
    let state = AppState::build(config).await.context("starting")?;
    if let Some((listen, token)) = embedded_node {
        domain::fleet::catalog::register_daemon(
            &state.db,
            "local-node",
            &format!("hangar-node+http://{listen}"),
            &token,
        )
        .await?;
        // The daemon (and the demo app it may have brought) is surveyed now, not at the
        // reconciler's first pass, so app templates are offered from the first request.
        domain::fleet::survey::all(&state.db, &state.drivers).await?;
    }
    crate::http::spawn_session_cleanup(&state);
    let workers = crate::jobs::spawn_all(&state);
    if let Some(index) = state.browse_index.clone() {
        // Loads the marketplace index now rather than on the first visitor's browse.
        let db = state.db.clone();
        tokio::spawn(async move {
            if let Err(e) = index.load(&db).await {
                tracing::warn!(error = %e, "loading the browse index (browse loads it later)");
            }
        });
    }
    if let Some(seed) = state.config.seed_listen {
        let seeds = tokio::net::TcpListener::bind(seed)
            .await
            .with_context(|| format!("binding the seed listener {seed}"))?;
        tracing::info!("VM seeds (NoCloud) served on http://{seed}");
        let router = crate::api::cloud_init::router().with_state(state.clone());
        let stopped = state.lifecycle.stopped();
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve_until(seeds, router, stopped).await {
                tracing::error!(error = %e, "the seed listener stopped");
            }
        });
    }
    let lifecycle = state.lifecycle.clone();
    let drain = Duration::from_secs(state.config.shutdown_drain_secs);
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let router = crate::http::router(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!("Hangar listening on http://{}", listener.local_addr()?);
    // SIGTERM: drain (readiness fails, requests still served), then stop accepting, finish
    // in-flight requests, end live streams, and let the job workers finish or hand back their
    // jobs (`domain::infra::lifecycle`).
    let stop = async move {
        crate::http::shutdown_signal().await;
        lifecycle.drain();
        tracing::info!(drain_secs = drain.as_secs(), "draining before shutdown");
        tokio::time::sleep(drain).await;
        lifecycle.stop();
    };
    crate::http::serve_until(listener, router, stop).await?;
    if tokio::time::timeout(
        grace + Duration::from_secs(5),
        futures::future::join_all(workers),
    )
    .await
    .is_err()
    {
        tracing::warn!("job workers did not stop in time; their leases will expire");
    }
    tracing::info!("stopped");
    Ok(())
}
