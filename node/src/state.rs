//! The daemon's shared state: its configuration (swappable on reload), its database and the
//! volumes' live usage.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::{config::Config, containers::Containers, volumes::Volumes};

#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    config: RwLock<Arc<Config>>,
    config_path: PathBuf,
    db: SqlitePool,
    volumes: Volumes,
    containers: Containers,
    /// Held while the token is rotated.
    rotation: std::sync::Mutex<()>,
}

impl Node {
    /// Opens (and migrates) the state database under `storage.root` and loads the volumes.
    pub async fn open(mut config: Config, config_path: PathBuf) -> anyhow::Result<Self> {
        config.storage.root = config.storage.absolute_root(&config_path)?;
        std::fs::create_dir_all(config.volumes_dir())?;
        let options = SqliteConnectOptions::new()
            .filename(config.database_path())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let db = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&db).await?;
        let volumes = Volumes::load(&db, config.volumes_dir()).await?;
        let node = Self {
            inner: Arc::new(Inner {
                config: RwLock::new(Arc::new(config)),
                config_path,
                db,
                volumes,
                containers: Containers::default(),
                rotation: std::sync::Mutex::new(()),
            }),
        };
        // Running containers are followed again, not restarted; an engine that is not up yet
        // leaves them for the next start or power action.
        if let Err(e) = crate::containers::recover(&node).await {
            tracing::warn!(error = %e.message, "containers not re-attached at start");
        }
        Ok(node)
    }

    /// The configuration in force (a snapshot: a reload swaps it for later requests).
    pub fn config(&self) -> Arc<Config> {
        self.inner
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the config file. The listener and storage root keep their values until restart.
    pub fn reload(&self) -> anyhow::Result<()> {
        let mut fresh = Config::load(&self.inner.config_path)?;
        let current = self.config();
        fresh.server = current.server.clone();
        fresh.storage = current.storage.clone();
        *self.inner.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// Replaces the daemon's token (`authorization.token`) in its config file — keeping the
    /// file's comments and layout, checked as a whole config before it replaces the old file
    /// (written 0600 to a fresh file renamed over it) — and takes it into use at once: the
    /// panel's next call must carry the new token. Rotations are serialised; a config that does
    /// not load leaves file and token as they were.
    pub fn rotate_token(&self, token: &str) -> anyhow::Result<()> {
        use anyhow::Context;
        let _one_at_a_time = self
            .inner
            .rotation
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let path = &self.inner.config_path;
        let text = std::fs::read_to_string(path).context("reading the config file")?;
        let mut doc: toml_edit::DocumentMut = text.parse().context("parsing the config file")?;
        doc["authorization"]["token"] = toml_edit::value(token);
        let fresh = path.with_extension("toml.new");
        // A leftover from a crash: made by someone else, perhaps with other permissions.
        let _ = std::fs::remove_file(&fresh);
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&fresh)
                .context("writing the config file")?;
            file.write_all(doc.to_string().as_bytes())?;
            file.sync_all()?;
        }
        if let Err(e) = Config::load(&fresh) {
            let _ = std::fs::remove_file(&fresh);
            return Err(e.context("the config file would not load with the new token"));
        }
        std::fs::rename(&fresh, path).context("replacing the config file")?;
        self.reload()
    }

    pub fn db(&self) -> &SqlitePool {
        &self.inner.db
    }

    pub fn volumes(&self) -> &Volumes {
        &self.inner.volumes
    }

    pub fn containers(&self) -> &Containers {
        &self.inner.containers
    }
}
