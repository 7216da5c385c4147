//! Nodes: driver endpoints with capacity, and placement onto them.
//!
//! Placement is one conditional `UPDATE`: it adds the instance's size to the chosen node's
//! `used_*` columns only if the sum stays within capacity × the configured over-commit ratio. Two
//! concurrent creates cannot both squeeze into the last slot: the database applies the updates one
//! after the other and re-checks the condition for the second (PostgreSQL re-evaluates the `WHERE`
//! on the locked row; SQLite has one writer), so the loser tries the next node or gets a 409.

use tracing::instrument;

use crate::compute::driver::Kind;
use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub kind: Kind,
    pub region: String,
    pub uri: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub used_vcpu: i64,
    pub used_memory_mb: i64,
    pub used_disk_gb: i64,
    pub status: String,
    /// A node daemon's token; never serialised.
    #[serde(skip)]
    pub secret: Option<String>,
    /// Since when (epoch ms) the reconciler cannot reach it; `None` while it answers. No new
    /// machine is placed on it meanwhile.
    pub unreachable_since: Option<i64>,
}

impl NodeRow {
    /// libvirt's test driver: machines there are records in memory that never really run (the
    /// embedded default's demo node when the host has no usable hypervisor). The portal says so.
    pub fn simulated(&self) -> bool {
        self.kind == Kind::Vm && self.uri.starts_with("test:")
    }

    /// A node daemon (`hangar-node`): its machines have a volume the file manager reaches.
    pub fn daemon(&self) -> bool {
        self.kind == Kind::Container && self.uri.starts_with("hangar-node+")
    }
}

const COLUMNS: &str = "id, name, kind, region, uri, vcpu, memory_mb, disk_gb, used_vcpu, used_memory_mb, used_disk_gb, status, secret, unreachable_since";

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct NodeInput {
    pub name: String,
    /// `vm` (libvirt URI) or `container` (Docker API address).
    pub kind: String,
    pub region: String,
    /// `qemu:///system`, `qemu+ssh://host/system`, `test:///abs/fixture.xml`; or
    /// `unix:///run/docker.sock`, `tcp://host:2375` (a Docker API); or
    /// `hangar-node+http://host:8070` (a node daemon, with its token in `secret`).
    pub uri: String,
    /// The node daemon's token (its config's `authorization.token`); stored, never shown.
    #[serde(default)]
    pub secret: Option<String>,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

#[instrument(skip_all, err(level = "info", Debug), fields(name = %input.name))]
pub async fn add(db: &Pool, input: NodeInput) -> ServiceResult<NodeRow> {
    let kind = Kind::parse(&input.kind)
        .ok_or_else(|| ServiceError::invalid("kind must be `vm` or `container`"))?;
    if input.name.trim().is_empty() || input.region.trim().is_empty() || input.uri.trim().is_empty()
    {
        return Err(ServiceError::invalid("name, region and uri are required"));
    }
    let uri_ok = match kind {
        Kind::Vm => input.uri.contains("://"),
        Kind::Container => [
            "unix://",
            "tcp://",
            "http://",
            "https://",
            "hangar-node+http://",
            "hangar-node+https://",
        ]
        .iter()
        .any(|p| input.uri.starts_with(p)),
    };
    let daemon = input.uri.starts_with("hangar-node+");
    if daemon && input.secret.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(ServiceError::invalid(
            "secret: a node daemon's token is required for a hangar-node+ uri",
        ));
    }
    if !uri_ok {
        return Err(ServiceError::invalid(
            "uri is not a libvirt URI / Docker API address",
        ));
    }
    if input.vcpu < 1 || input.memory_mb < 1 || input.disk_gb < 1 {
        return Err(ServiceError::invalid(
            "vcpu, memory_mb and disk_gb must be positive",
        ));
    }
    // Two nodes on one engine would each find the other's machines on it, take them for
    // strays and remove them. libvirt's test driver is the exception: simulated hosts for
    // demos and tests, where several nodes on it are a way to model placement.
    if !input.uri.trim().starts_with("test:") {
        let wanted = engine_address(&input.uri);
        if let Some(other) = list(db)
            .await?
            .into_iter()
            .find(|n| engine_address(&n.uri) == wanted)
        {
            return Err(ServiceError::Conflict(format!(
                "Node {} already drives this engine ({}): two nodes on one engine would each take the other's machines for strays and remove them",
                other.name, other.uri
            )));
        }
    }
    let id = db::new_id();
    let inserted = sqlx::query(
        "INSERT INTO nodes (id, name, kind, region, uri, vcpu, memory_mb, disk_gb, created_at, secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(input.name.trim())
    .bind(kind.as_str())
    .bind(input.region.trim())
    .bind(input.uri.trim())
    .bind(input.vcpu)
    .bind(input.memory_mb)
    .bind(input.disk_gb)
    .bind(db::now_ms())
    .bind(input.secret.filter(|_| daemon).map(|s| s.trim().to_owned()))
    .execute(db)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(ServiceError::Conflict(
                "A node with this name exists".into(),
            ))
        }
        other => other?,
    };
    get(db, &id).await
}

/// A node's engine address as compared for sameness: no case, no trailing slash.
fn engine_address(uri: &str) -> String {
    uri.trim().trim_end_matches('/').to_lowercase()
}

pub async fn get(db: &Pool, id: &str) -> ServiceResult<NodeRow> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM nodes WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("Node"))
}

pub async fn list(db: &Pool) -> ServiceResult<Vec<NodeRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM nodes ORDER BY name"))
            .fetch_all(db)
            .await?,
    )
}

/// Whether placement may use a node (`nodes.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// New machines may be placed here.
    Active,
    /// Running machines stay; nothing new is placed here.
    Draining,
}

impl NodeStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Active => "active",
            NodeStatus::Draining => "draining",
        }
    }

    pub fn parse(s: &str) -> ServiceResult<Self> {
        match s {
            "active" => Ok(NodeStatus::Active),
            "draining" => Ok(NodeStatus::Draining),
            _ => Err(ServiceError::invalid(
                "status must be `active` or `draining`",
            )),
        }
    }
}

/// Stops placement on a node (`draining`) or resumes it (`active`).
pub async fn set_status(db: &Pool, id: &str, status: NodeStatus) -> ServiceResult<NodeRow> {
    let done = sqlx::query("UPDATE nodes SET status = $1 WHERE id = $2")
        .bind(status.as_str())
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Node"));
    }
    get(db, id).await
}

/// Removes a node that holds no instances.
pub async fn remove(db: &Pool, id: &str) -> ServiceResult<()> {
    let held: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM instances WHERE node_id = $1 AND state <> 'deleted'",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    if held > 0 {
        return Err(ServiceError::Conflict(format!(
            "The node still holds {held} instances; drain it and delete them first"
        )));
    }
    sqlx::query("UPDATE instances SET node_id = NULL WHERE node_id = $1")
        .bind(id)
        .execute(db)
        .await?;
    let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Node"));
    }
    Ok(())
}

/// A size to place.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// Reserves `size` on an active node of `kind` (in `region` when given), least loaded first.
/// Returns the node, or a 409 when no node has room.
/// Which container nodes a machine may land on: app templates need a node daemon (it runs
/// install scripts and start patterns); plain images prefer Docker-API nodes (exec and snapshots
/// work there) and go to daemons only when no Docker-API node has room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Any,
    DockerApi,
    Daemon,
}

impl Backend {
    fn as_str(self) -> &'static str {
        match self {
            Backend::Any => "any",
            Backend::DockerApi => "docker",
            Backend::Daemon => "daemon",
        }
    }
}

/// Where a machine may go: its kind, which container backend, the region asked for, and the
/// image it boots (only nodes the survey found holding it, see `compute::survey`).
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub kind: Kind,
    pub backend: Backend,
    pub region: Option<&'a str>,
    pub image: &'a str,
}

pub async fn place(
    tx: &mut Tx<'_>,
    wanted: Wanted<'_>,
    size: Size,
    cpu_ratio: f64,
    memory_ratio: f64,
) -> ServiceResult<NodeRow> {
    let Wanted {
        kind,
        backend,
        region,
        image,
    } = wanted;
    // Compared as numbers, not cast: CAST rounds on PostgreSQL and truncates on SQLite, and an
    // integer total within `capacity × ratio` is the same rule on both.
    let fits = "used_vcpu + $1 <= vcpu * $4 AND used_memory_mb + $2 <= memory_mb * $5 AND used_disk_gb + $3 <= disk_gb \
                AND status = 'active' AND unreachable_since IS NULL AND kind = $6 AND ($7 = '' OR region = $7) \
                AND ($8 = 'any' OR ($8 = 'daemon') = (uri LIKE 'hangar-node+%')) \
                AND EXISTS (SELECT 1 FROM node_images ni WHERE ni.node_id = nodes.id AND ni.image_slug = $9)";
    // One statement that writes first: it takes SQLite's write lock at once (a read-then-write
    // transaction could not upgrade under contention) and the row lock on PostgreSQL, where the
    // outer condition is re-checked after waiting. A lost race there leaves the update empty;
    // the next round picks among the nodes that still fit.
    for _ in 0..8 {
        let placed: Option<NodeRow> = sqlx::query_as(&format!(
            "UPDATE nodes SET used_vcpu = used_vcpu + $1, used_memory_mb = used_memory_mb + $2, used_disk_gb = used_disk_gb + $3
             WHERE id = (SELECT id FROM nodes WHERE {fits}
                         ORDER BY (used_vcpu * 1000 / vcpu) + (used_memory_mb * 1000 / memory_mb), name LIMIT 1)
               AND {fits}
             RETURNING {COLUMNS}"
        ))
        .bind(size.vcpu)
        .bind(size.memory_mb)
        .bind(size.disk_gb)
        .bind(cpu_ratio)
        .bind(memory_ratio)
        .bind(kind.as_str())
        .bind(region.unwrap_or(""))
        .bind(backend.as_str())
        .bind(image)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(node) = placed {
            return Ok(node);
        }
        let any_fits: Option<String> =
            sqlx::query_scalar(&format!("SELECT id FROM nodes WHERE {fits} LIMIT 1"))
                .bind(size.vcpu)
                .bind(size.memory_mb)
                .bind(size.disk_gb)
                .bind(cpu_ratio)
                .bind(memory_ratio)
                .bind(kind.as_str())
                .bind(region.unwrap_or(""))
                .bind(backend.as_str())
                .bind(image)
                .fetch_optional(&mut **tx)
                .await?;
        if any_fits.is_none() {
            break;
        }
    }
    Err(refusal(tx, wanted, size).await?)
}

/// Why nothing fits, in the customer's words, found by asking one question at a time: the
/// region exists for this kind of machine, a node there takes machines, one holds the image;
/// only then is it room (a truthful "try later", not "try a smaller plan" for a region that
/// does not exist).
async fn refusal(tx: &mut Tx<'_>, wanted: Wanted<'_>, size: Size) -> ServiceResult<ServiceError> {
    let what = match wanted.kind {
        Kind::Vm => "VMs",
        Kind::Container => "containers",
    };
    let count = |sql: &'static str| {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(wanted.kind.as_str())
            .bind(wanted.region.unwrap_or(""))
            .bind(wanted.image)
    };
    let nodes: i64 = count(
        "SELECT COUNT(*) FROM nodes WHERE kind = $1 AND ($2 = '' OR region = $2) AND $3 = $3",
    )
    .fetch_one(&mut **tx)
    .await?;
    if nodes == 0 {
        let regions: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT region FROM nodes WHERE kind = $1 AND status = 'active' ORDER BY region",
        )
        .bind(wanted.kind.as_str())
        .fetch_all(&mut **tx)
        .await?;
        return Ok(match (wanted.region, regions.is_empty()) {
            (Some(r), false) => ServiceError::invalid(format!(
                "There is no region {r} for {what}; choose one of: {}",
                regions.join(", ")
            )),
            _ => ServiceError::Conflict(format!(
                "This platform runs no {what} at the moment; choose another kind of plan"
            )),
        });
    }
    let taking: i64 = count(
        "SELECT COUNT(*) FROM nodes WHERE kind = $1 AND ($2 = '' OR region = $2) AND $3 = $3
           AND status = 'active' AND unreachable_since IS NULL",
    )
    .fetch_one(&mut **tx)
    .await?;
    if taking == 0 {
        return Ok(ServiceError::Conflict(format!(
            "No host for {what} is taking new machines right now (they are under maintenance); try again later"
        )));
    }
    let holding: i64 = count(
        "SELECT COUNT(*) FROM nodes WHERE kind = $1 AND ($2 = '' OR region = $2)
           AND status = 'active' AND unreachable_since IS NULL
           AND EXISTS (SELECT 1 FROM node_images ni WHERE ni.node_id = nodes.id AND ni.image_slug = $3)",
    )
    .fetch_one(&mut **tx)
    .await?;
    if holding == 0 {
        return Ok(ServiceError::Conflict(format!(
            "No host{} has the image {} ready; choose another image",
            wanted
                .region
                .map(|r| format!(" in {r}"))
                .unwrap_or_default(),
            wanted.image
        )));
    }
    if wanted.backend == Backend::Daemon {
        return Ok(ServiceError::Conflict(
            "No node daemon has room for this app right now; app templates run only on node daemons. Try again later".into(),
        ));
    }
    Ok(ServiceError::Conflict(format!(
        "No host{} has room for {} vCPU, {} MB and {} GB right now; a smaller plan may fit, or try again later",
        wanted.region.map(|r| format!(" in {r}")).unwrap_or_default(),
        size.vcpu,
        size.memory_mb,
        size.disk_gb
    )))
}

/// How a stopped machine takes its vCPU and memory back on its own node (its disk is there).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reclaim {
    /// Only when they fit within the node's capacity × the overcommit ratios (a start asked for).
    IfRoom { cpu_ratio: f64, memory_ratio: f64 },
    /// Whatever the node holds: the machine is found running already (the reconciler).
    Anyway,
}

/// Counts a starting machine's vCPU and memory on its node again. `false` when `how` asks for
/// room and the node has none: other machines took what this one gave back when it stopped.
pub async fn reclaim(
    tx: &mut Tx<'_>,
    node_id: &str,
    size: Size,
    how: Reclaim,
) -> ServiceResult<bool> {
    let (cpu_ratio, memory_ratio, check) = match how {
        Reclaim::IfRoom {
            cpu_ratio,
            memory_ratio,
        } => (cpu_ratio, memory_ratio, 1),
        Reclaim::Anyway => (1.0, 1.0, 0),
    };
    let done = sqlx::query(
        "UPDATE nodes SET used_vcpu = used_vcpu + $1, used_memory_mb = used_memory_mb + $2
         WHERE id = $3 AND ($6 = 0 OR (used_vcpu + $1 <= vcpu * $4 AND used_memory_mb + $2 <= memory_mb * $5))",
    )
    .bind(size.vcpu)
    .bind(size.memory_mb)
    .bind(node_id)
    .bind(cpu_ratio)
    .bind(memory_ratio)
    .bind(check)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives an instance's share of its node back: all of it when deleted or failed, its vCPU and
/// memory (`disk_gb` 0) when stopped.
pub async fn release(tx: &mut Tx<'_>, node_id: &str, size: Size) -> ServiceResult<()> {
    sqlx::query(
        "UPDATE nodes SET used_vcpu = used_vcpu - $1, used_memory_mb = used_memory_mb - $2, used_disk_gb = used_disk_gb - $3
         WHERE id = $4",
    )
    .bind(size.vcpu)
    .bind(size.memory_mb)
    .bind(size.disk_gb)
    .bind(node_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many live machines (not deleted, not failed) each node holds, by node id.
pub async fn machines_per_node(db: &Pool) -> ServiceResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT node_id, COUNT(*) FROM instances
         WHERE node_id IS NOT NULL AND state NOT IN ('deleted', 'failed') GROUP BY node_id",
    )
    .fetch_all(db)
    .await?)
}

/// One node's load at one reconciler pass.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoadSample {
    pub node_id: String,
    pub at: i64,
    pub used_vcpu: i64,
    pub used_memory_mb: i64,
    pub used_disk_gb: i64,
    pub machines: i64,
}

/// How long load samples are kept.
pub const LOAD_HISTORY_MS: i64 = 7 * 86_400_000;

/// Records what every node holds now (one sample each, the operator's load charts) and forgets
/// samples older than [`LOAD_HISTORY_MS`]. A second replica recording in the same millisecond
/// adds nothing. (`WHERE true`: SQLite needs it to tell an upsert's `ON` from a join's.)
pub async fn record_load(db: &Pool, now: i64) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query(
        "INSERT INTO node_samples (node_id, at, used_vcpu, used_memory_mb, used_disk_gb, machines)
         SELECT n.id, $1, n.used_vcpu, n.used_memory_mb, n.used_disk_gb,
                (SELECT COUNT(*) FROM instances i
                  WHERE i.node_id = n.id AND i.state NOT IN ('deleted', 'failed'))
         FROM nodes n WHERE true
         ON CONFLICT (node_id, at) DO NOTHING",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM node_samples WHERE at < $1")
        .bind(now - LOAD_HISTORY_MS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every node's samples since `since`, by node then time.
pub async fn load_history(db: &Pool, since: i64) -> ServiceResult<Vec<LoadSample>> {
    Ok(sqlx::query_as(
        "SELECT node_id, at, used_vcpu, used_memory_mb, used_disk_gb, machines FROM node_samples
         WHERE at >= $1 ORDER BY node_id, at",
    )
    .bind(since)
    .fetch_all(db)
    .await?)
}
