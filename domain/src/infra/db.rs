//! The database: one `sqlx::AnyPool` over SQLite (embedded default) or PostgreSQL.
//!
//! Queries are written once in the SQL both databases accept, with `$1`-style placeholders (sqlx's
//! SQLite driver binds `$N` by number). Times are unix milliseconds, ids are 24-hex strings
//! (the `/api/v1` dialect uses 24-hex ids), money is integer micro-USD.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use rand::RngCore;
use sqlx::{any::AnyPoolOptions, AnyPool, Executor};

pub type Pool = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The migrations in the workspace's `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Which database a pool talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }
}

/// The backend behind a connection (a transaction derefs to one).
pub fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name() == "PostgreSQL" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// An SQL expression giving a fresh random 24-hex id per row, for set-based inserts
/// (`INSERT ... SELECT`) that cannot call [`new_id`].
pub fn new_id_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "lower(hex(randomblob(12)))",
        Backend::Postgres => "substr(md5(random()::text || clock_timestamp()::text), 1, 24)",
    }
}

/// 32 random hex characters (128 bits), for unguessable URL parts.
pub fn random_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Opens the pool (creating the SQLite file and its directory when missing). Does not migrate.
pub async fn connect(url: &str) -> Result<Pool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url);
    let url = match backend {
        Backend::Sqlite => sqlite_url(url)?,
        Backend::Postgres => url.to_owned(),
    };
    let options = AnyPoolOptions::new()
        .max_connections(match backend {
            // SQLite serialises writers anyway; a few readers beside them are enough.
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        })
        // While the database is unreachable a request waits this long for a connection, then
        // answers 503 (`ServiceError::Unavailable`) instead of hanging.
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the writer; foreign keys are off by default in
                    // SQLite; a busy writer is waited for instead of failing the request.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // 32 MiB of page cache per connection and memory-mapped reads: browsing
                    // 100k servers went from ~200 ms to ~25 ms per uncached query with these and
                    // fresh statistics (docs/BENCHMARKS.md).
                    conn.execute("PRAGMA cache_size = -32768").await?;
                    conn.execute("PRAGMA mmap_size = 268435456").await?;
                } else {
                    // JIT compilation costs more than it saves on Hangar's short statements
                    // (it added ~140 ms to a metering tick at 10k users; docs/BENCHMARKS.md).
                    conn.execute("SET jit = off").await?;
                }
                Ok(())
            })
        });
    let pool = options.connect(&url).await?;
    if backend == Backend::Sqlite {
        // The database holds the JWT signing key, password hashes and node secrets: readable
        // by Hangar's own user only (SQLite gives its -wal and -shm files the same mode).
        if let Some(path) = sqlite_path(&url) {
            for suffix in ["", "-wal", "-shm"] {
                let file = PathBuf::from(format!("{}{suffix}", path.display()));
                restrict(&file).map_err(|e| sqlx::Error::Configuration(e.into()))?;
            }
        }
    }
    Ok(pool)
}

/// Makes `path` readable and writable by its owner only (0600), when it exists. Databases,
/// their backups and files holding secrets go through here.
pub fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(_) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The file of a `sqlite://` URL, unless it is in memory.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Begins a transaction that may write. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a deferred transaction that reads and then writes after another connection
/// committed fails at once with SQLITE_BUSY_SNAPSHOT (517), which `busy_timeout` cannot wait out
/// (schemathesis found it as a 500 on concurrent token creation). PostgreSQL's default is right.
pub async fn begin(pool: &Pool) -> Result<Tx<'static>, sqlx::Error> {
    if is_sqlite(pool) {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

fn is_sqlite(pool: &Pool) -> bool {
    pool.connect_options()
        .database_url
        .scheme()
        .starts_with("sqlite")
}

/// `sqlite://relative/or/absolute/path` with `mode=rwc`, after creating the parent directory.
fn sqlite_url(url: &str) -> Result<String, sqlx::Error> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| sqlx::Error::Configuration(e.into()))?;
            }
        }
    }
    let mut query = query.to_owned();
    if !query.contains("mode=") {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    // Validate early so a typo fails at start with sqlx's own message.
    sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{path}?{query}"))?;
    Ok(format!("sqlite://{path}?{query}"))
}

/// Applies pending migrations, then lets SQLite refresh the planner statistics it needs.
pub async fn migrate(pool: &Pool) -> Result<(), sqlx::migrate::MigrateError> {
    // Migrations only add (tables, nullable or defaulted columns, indexes; see
    // docs/OPERATING.md, "Upgrading"), so a release runs on a database a newer one migrated: an older replica
    // restarting during a rolling upgrade comes up, and rolling back is starting the previous
    // release, not restoring a backup and losing what happened since. What it does not know is
    // logged, and `hangar migrate --status` lists it.
    let migrator = sqlx::migrate::Migrator {
        migrations: MIGRATOR.migrations.clone(),
        ignore_missing: true,
        locking: MIGRATOR.locking,
        no_tx: MIGRATOR.no_tx,
    };
    migrator.run(pool).await?;
    if let Ok(all) = migration_status(pool).await {
        let unknown: Vec<i64> = all
            .iter()
            .filter(|m| m.unknown)
            .map(|m| m.version)
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                migrations = ?unknown,
                "the database has migrations from a newer release; running on it (they only add)"
            );
        }
    }
    if is_sqlite(pool) {
        sqlx::query("PRAGMA optimize").execute(pool).await?;
    } else {
        // Every metering tick rewrites every running instance's meter columns. Free space in
        // each page lets PostgreSQL update them in place (HOT, no index writes): a tick over
        // 100k instances went from ~1.4 s to ~0.2 s for that statement. PostgreSQL-only, so it
        // lives here rather than in the shared migrations; it is idempotent.
        sqlx::query("ALTER TABLE instances SET (fillfactor = 50)")
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// One migration as `hangar migrate --status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    /// When it was applied (as the database wrote it); `None` while pending.
    pub applied_at: Option<String>,
    /// Applied to the database but unknown to this binary: the database is newer than the
    /// program (an upgrade ran; this is the older release).
    pub unknown: bool,
}

/// Every migration this binary carries, applied or pending, and any the database has that it
/// does not know; by version. Reads only: nothing is migrated.
pub async fn migration_status(pool: &Pool) -> Result<Vec<MigrationState>, sqlx::Error> {
    let applied: Vec<(i64, String, String)> = match sqlx::query_as(
        "SELECT version, description, CAST(installed_on AS TEXT) FROM _sqlx_migrations
         WHERE success = true ORDER BY version",
    )
    .fetch_all(pool)
    .await
    {
        Ok(rows) => rows,
        // A database nothing was ever applied to has no bookkeeping table yet.
        Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut out: Vec<MigrationState> = MIGRATOR
        .iter()
        .map(|m| MigrationState {
            version: m.version,
            description: m.description.to_string(),
            applied_at: applied
                .iter()
                .find(|(v, ..)| *v == m.version)
                .map(|(_, _, at)| at.clone()),
            unknown: false,
        })
        .collect();
    for (version, description, at) in applied {
        if !out.iter().any(|m| m.version == version) {
            out.push(MigrationState {
                version,
                description,
                applied_at: Some(at),
                unknown: true,
            });
        }
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

/// Refreshes planner statistics after a bulk load (PostgreSQL's autovacuum would get there too,
/// later).
pub async fn analyze(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

/// `text` with LIKE's wildcards (and the escape character) made literal, for `LIKE … ESCAPE '\'`.
pub fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// An operator's search box: the trimmed query, and the LIKE pattern of any text containing it
/// (lower-cased, wildcards literal). Refused above 254 characters.
pub fn search_terms(query: &str) -> Result<(String, String), crate::infra::error::ServiceError> {
    let query = query.trim();
    if query.chars().count() > 254 {
        return Err(crate::infra::error::ServiceError::invalid(
            "A search is at most 254 characters",
        ));
    }
    Ok((
        query.to_owned(),
        format!("%{}%", like_escaped(&query.to_lowercase())),
    ))
}

/// A fresh secret: 40 random letters and digits (about 238 bits), for credentials Hangar makes
/// for others to present (a node daemon's token).
pub fn new_token() -> String {
    use rand::{distributions::Alphanumeric, Rng};
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

/// A new 24-hex id: 4 bytes of unix seconds (so ids sort by creation) and 8 random bytes.
pub fn new_id() -> String {
    let secs = (now_ms() / 1000) as u32;
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    rand::thread_rng().fill_bytes(&mut bytes[4..]);
    hex::encode(bytes)
}

/// Whether `s` has the shape of a Hangar id (24 lower-case hex digits).
pub fn is_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Current wall-clock time in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 with milliseconds and `Z`, the form the references show (`2025-01-21T22:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// Kept with the error mapping that uses it first; services reach it here with the rest of the
/// database helpers.
pub use crate::infra::error::is_unique_violation;

/// A named random secret shared through the database; the first replica to ask creates it.
pub async fn stored_secret(pool: &Pool, name: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(hex::encode(bytes))
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_hex_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert!(is_id(&a) && is_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_id("507f1f77bcf86cd79943930")); // 23 chars
        assert!(!is_id("507f1f77bcf86cd79943930G"));
    }

    #[test]
    fn timestamps_render_like_the_references() {
        assert_eq!(rfc3339(1_737_496_800_000), "2025-01-21T22:00:00.000Z");
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("hangar-db-{}", new_id()));
        let url = sqlite_url(&format!("sqlite://{}/x.db", dir.display())).unwrap();
        assert!(url.ends_with("x.db?mode=rwc"), "{url}");
        assert!(dir.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
