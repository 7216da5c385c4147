//! Volumes: one directory per volume under `storage.root/volumes`, a row in the database, and a
//! live usage figure that enforces the volume's disk limit.
//!
//! Wings measures a server's disk with a cached walk every few minutes, so a write right after a
//! burst goes through over the limit. Here every byte the daemon writes is counted as it is
//! written (uploads are cut off at the limit, archives stop unpacking there, a copy is reserved
//! whole before it starts), and before anything grows a volume its usage is measured afresh if a
//! container may have written to it since the last count. What a running container writes itself
//! is the engine's business; the next growing operation sees it.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, RwLock,
    },
};

use sqlx::SqlitePool;

use crate::{
    confined::{Budget, FsError, Tree},
    error::{NodeError, NodeResult},
    now, Node,
};

/// A volume's disk limit and what it holds now.
#[derive(Debug)]
pub struct Quota {
    used: AtomicU64,
    limit: Option<u64>,
    /// Set when a container may have changed the volume since it was last measured.
    stale: AtomicBool,
}

impl Budget for Quota {
    fn reserve(&self, n: u64) -> Result<(), FsError> {
        let Some(limit) = self.limit else {
            self.used.fetch_add(n, Ordering::SeqCst);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(n).filter(|total| *total <= limit)
            })
            .map(drop)
            .map_err(|used| FsError::Quota {
                limit,
                free: limit.saturating_sub(used),
                needed: n,
            })
    }

    fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

pub struct Volume {
    pub id: String,
    pub dir: PathBuf,
    pub created_at: i64,
    pub quota: Quota,
}

impl Volume {
    pub fn tree(&self) -> Result<Tree, FsError> {
        Tree::open(&self.dir)
    }

    pub fn used(&self) -> u64 {
        self.quota.used.load(Ordering::SeqCst)
    }

    pub fn limit(&self) -> Option<u64> {
        self.quota.limit
    }

    /// Marks the volume as possibly changed behind the daemon's back (a container ran on it).
    pub fn mark_stale(&self) {
        self.quota.stale.store(true, Ordering::SeqCst);
    }

    /// Counts the volume again if a container may have written to it.
    pub fn refresh(&self, tree: &Tree) -> Result<(), FsError> {
        if self.quota.stale.swap(false, Ordering::SeqCst) {
            let size = tree.size(&crate::confined::VolPath::parse("")?)?;
            self.quota.used.store(size, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// What `GET /volumes/{id}` answers (the wire type, shared with Hangar's driver).
pub use model::node::VolumeView;

impl From<&Volume> for VolumeView {
    fn from(v: &Volume) -> Self {
        Self {
            volume_id: v.id.clone(),
            path: v.dir.display().to_string(),
            used_bytes: v.used(),
            size_limit: v.limit(),
            created_at: v.created_at,
        }
    }
}

/// Every volume of the node, by id.
pub struct Volumes {
    dir: PathBuf,
    by_id: RwLock<HashMap<String, Arc<Volume>>>,
}

impl Volumes {
    /// Loads the volumes the database knows; each is measured once at start.
    pub async fn load(db: &SqlitePool, dir: PathBuf) -> anyhow::Result<Self> {
        let rows: Vec<(String, Option<i64>, i64)> =
            sqlx::query_as("SELECT id, size_limit, created_at FROM volumes")
                .fetch_all(db)
                .await?;
        let mut by_id = HashMap::new();
        for (id, limit, created_at) in rows {
            let volume = Arc::new(Volume {
                dir: dir.join(&id),
                id: id.clone(),
                created_at,
                quota: Quota {
                    used: AtomicU64::new(0),
                    limit: limit.map(|l| l as u64),
                    stale: AtomicBool::new(true),
                },
            });
            by_id.insert(id, volume);
        }
        Ok(Self {
            dir,
            by_id: RwLock::new(by_id),
        })
    }

    pub fn get(&self, id: &str) -> NodeResult<Arc<Volume>> {
        self.by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(NodeError::volume_not_found)
    }

    pub fn all(&self) -> Vec<Arc<Volume>> {
        let mut all: Vec<_> = self
            .by_id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn insert(&self, volume: Arc<Volume>) {
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(volume.id.clone(), volume);
    }

    fn remove(&self, id: &str) {
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// Creates a volume with `size_limit` bytes (`None`: the config's default, where 0 means none).
pub async fn create(node: &Node, size_limit: Option<u64>) -> NodeResult<Arc<Volume>> {
    let limit = size_limit
        .or(Some(node.config().limits.volume_bytes))
        .filter(|l| *l > 0);
    let id = uuid::Uuid::new_v4().to_string();
    let dir = node.volumes().path_of(&id);
    tokio::fs::create_dir(&dir)
        .await
        .map_err(|e| NodeError::internal(format!("Failed to create volume: {e}")))?;
    let created_at = now();
    let inserted = sqlx::query("INSERT INTO volumes (id, size_limit, created_at) VALUES (?, ?, ?)")
        .bind(&id)
        .bind(limit.map(|l| l as i64))
        .bind(created_at)
        .execute(node.db())
        .await;
    if let Err(e) = inserted {
        let _ = tokio::fs::remove_dir(&dir).await;
        return Err(e.into());
    }
    let volume = Arc::new(Volume {
        id,
        dir,
        created_at,
        quota: Quota {
            used: AtomicU64::new(0),
            limit,
            stale: AtomicBool::new(false),
        },
    });
    node.volumes().insert(volume.clone());
    Ok(volume)
}

/// Deletes a volume and everything in it; refused while a container uses it.
pub async fn delete(node: &Node, id: &str) -> NodeResult<()> {
    let volume = node.volumes().get(id)?;
    let user: Option<String> =
        sqlx::query_scalar("SELECT internal_id FROM containers WHERE volume_id = ? LIMIT 1")
            .bind(id)
            .fetch_optional(node.db())
            .await?;
    if let Some(container) = user {
        return Err(NodeError::conflict(format!(
            "Volume is used by container {container}; delete the container first"
        )));
    }
    sqlx::query("DELETE FROM volumes WHERE id = ?")
        .bind(id)
        .execute(node.db())
        .await?;
    node.volumes().remove(id);
    let dir = volume.dir.clone();
    blocking(move || remove_volume_dir(&dir)).await?;
    Ok(())
}

/// Empties the volume's directory through the confined walk (a link inside is removed, never
/// followed), then removes the directory.
fn remove_volume_dir(dir: &Path) -> Result<(), FsError> {
    let tree = Tree::open(dir)?;
    let root = crate::confined::VolPath::parse("")?;
    for entry in tree.list(&root)? {
        tree.remove(&root.join(&entry.name))?;
    }
    std::fs::remove_dir(dir).map_err(|e| FsError::Io {
        op: "delete the volume",
        source: e,
    })
}

/// The longest a file operation may take before its request is answered with a refusal. Nothing
/// in a volume can make an operation wait (only regular files are ever opened, see
/// `confined::Tree::open_file`), so this is a backstop against a stalled disk, sized for the
/// largest legitimate work (packing or unpacking gigabytes).
pub const FILE_OP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs blocking file work off the async threads, for at most [`FILE_OP_TIMEOUT`].
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FsError> + Send + 'static,
) -> NodeResult<T> {
    match tokio::time::timeout(FILE_OP_TIMEOUT, tokio::task::spawn_blocking(work)).await {
        Ok(done) => done
            .map_err(|e| NodeError::internal(format!("file operation failed: {e}")))?
            .map_err(NodeError::from),
        Err(_) => Err(NodeError::unavailable(format!(
            "The file operation did not finish within {} s; try again later",
            FILE_OP_TIMEOUT.as_secs()
        ))),
    }
}
