//! Nodes: driver endpoints with capacity, and placement onto them.
//!
//! Placement is one conditional `UPDATE`: it adds the instance's size to the chosen node's
//! `used_*` columns only if the sum stays within capacity × the configured over-commit ratio. Two
//! concurrent creates cannot both squeeze into the last slot: the database applies the updates one
//! after the other and re-checks the condition for the second (PostgreSQL re-evaluates the `WHERE`
//! on the locked row; SQLite has one writer), so the loser tries the next node or gets a 409.

use tracing::instrument;

use std::{collections::HashMap, sync::Arc};

use crate::fleet::driver::{self, Driver, Kind};
use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::AppState;
use model::api::admin_compute::{NodeChange, NodeInput};
pub use model::compute::NodePoint;

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
    #[sqlx(try_from = "String")]
    pub status: NodeStatus,
    /// A node daemon's token; never serialised.
    #[serde(skip)]
    pub secret: Option<String>,
    /// The token a rotation is handing the daemon, until it is known to have taken it.
    #[serde(skip)]
    pub pending_secret: Option<String>,
    /// Since when (epoch ms) the reconciler cannot reach it; `None` while it answers. No new
    /// machine is placed on it meanwhile.
    pub unreachable_since: Option<i64>,
    /// Why it is unreachable: the reconciler's last error (or a daemon version the panel cannot
    /// drive).
    pub unreachable_reason: Option<String>,
    /// A node daemon's version as it last reported it.
    pub agent_version: Option<String>,
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

const COLUMNS: &str = "id, name, kind, region, uri, vcpu, memory_mb, disk_gb, used_vcpu, used_memory_mb, used_disk_gb, status, secret, unreachable_since, unreachable_reason, agent_version, pending_secret";

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
    check_capacity(input.vcpu, input.memory_mb, input.disk_gb)?;
    engine_free(db, &input.uri, None).await?;
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

/// Capacity within what a host can be: positive, and small enough that placement's arithmetic
/// (sums, shares ×1000) cannot overflow.
fn check_capacity(vcpu: i64, memory_mb: i64, disk_gb: i64) -> ServiceResult<()> {
    let within = |v: i64, max: i64| (1..=max).contains(&v);
    if within(vcpu, 100_000) && within(memory_mb, 1_000_000_000) && within(disk_gb, 1_000_000_000) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "vcpu (1 to 100,000), memory_mb (1 to 10^9) and disk_gb (1 to 10^9) must be positive and at most that",
        ))
    }
}

/// Refuses `uri` when another node (not `except`) already drives that engine: two nodes on one
/// engine would each find the other's machines on it, take them for strays and remove them.
/// libvirt's test driver is the exception: simulated hosts for demos and tests, where several
/// nodes on it are a way to model placement.
async fn engine_free(db: &Pool, uri: &str, except: Option<&str>) -> ServiceResult<()> {
    if uri.trim().starts_with("test:") {
        return Ok(());
    }
    let wanted = engine_address(uri);
    if let Some(other) = list(db)
        .await?
        .into_iter()
        .find(|n| engine_address(&n.uri) == wanted && Some(n.id.as_str()) != except)
    {
        return Err(ServiceError::Conflict(format!(
            "Node {} already drives this engine ({}): two nodes on one engine would each take the other's machines for strays and remove them",
            other.name, other.uri
        )));
    }
    Ok(())
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

/// Whether placement may use a node (`nodes.status`): a wire type.
pub use model::compute::NodeStatus;

/// Reads a status an operator asked for; 400 for anything else.
pub fn parse_status(s: &str) -> ServiceResult<NodeStatus> {
    NodeStatus::parse(s)
        .ok_or_else(|| ServiceError::invalid("status must be `active` or `draining`"))
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

/// Changes a node. New capacity may not hand out less than its machines hold (capacity × the
/// over-commit `ratios` in force for vCPU and memory, as placement counts it; drain it and move
/// them first); an address another node drives is refused as on [`add`].
#[instrument(skip_all, err(level = "info", Debug), fields(node = %id))]
pub async fn change(
    db: &Pool,
    id: &str,
    c: NodeChange,
    ratios: (f64, f64),
) -> ServiceResult<NodeRow> {
    let node = get(db, id).await?;
    let resized = c.vcpu.is_some() || c.memory_mb.is_some() || c.disk_gb.is_some();
    let status = match c.status.as_deref() {
        Some(s) => parse_status(s)?,
        None => node.status,
    };
    let text = |value: Option<String>, current: &str, what: &str| -> ServiceResult<String> {
        match value.map(|v| v.trim().to_owned()) {
            Some(v) if v.is_empty() || v.len() > 200 => Err(ServiceError::invalid(format!(
                "{what}: 1 to 200 characters"
            ))),
            Some(v) => Ok(v),
            None => Ok(current.to_owned()),
        }
    };
    let name = text(c.name, &node.name, "name")?;
    let region = text(c.region, &node.region, "region")?;
    let uri = text(c.uri, &node.uri, "uri")?;
    if uri != node.uri {
        let same_kind = match node.kind {
            Kind::Vm => uri.contains("://"),
            Kind::Container => node.daemon() == uri.starts_with("hangar-node+"),
        };
        if !same_kind {
            return Err(ServiceError::invalid(
                "uri: a node keeps its kind of backend; add a new node for another",
            ));
        }
        engine_free(db, &uri, Some(id)).await?;
    }
    let (vcpu, memory_mb, disk_gb) = (
        c.vcpu.unwrap_or(node.vcpu),
        c.memory_mb.unwrap_or(node.memory_mb),
        c.disk_gb.unwrap_or(node.disk_gb),
    );
    check_capacity(vcpu, memory_mb, disk_gb)?;
    // What placement may hand out with the new capacity; checked in the UPDATE itself (only
    // when the capacity changes), so a machine placed meanwhile is counted.
    let (vcpu_limit, memory_limit) = (
        (vcpu as f64 * ratios.0).floor() as i64,
        (memory_mb as f64 * ratios.1).floor() as i64,
    );
    let done = sqlx::query(
        "UPDATE nodes SET status = $1, name = $2, region = $3, uri = $4, vcpu = $5, memory_mb = $6,
             disk_gb = $7
         WHERE id = $8 AND ($9 = 0 OR (used_vcpu <= $10 AND used_memory_mb <= $11 AND used_disk_gb <= $7))",
    )
    .bind(status.as_str())
    .bind(&name)
    .bind(&region)
    .bind(&uri)
    .bind(vcpu)
    .bind(memory_mb)
    .bind(disk_gb)
    .bind(id)
    .bind(i64::from(resized))
    .bind(vcpu_limit)
    .bind(memory_limit)
    .execute(db)
    .await;
    match done {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(ServiceError::Conflict(
                "A node with this name exists".into(),
            ))
        }
        Ok(d) if d.rows_affected() == 0 => {
            let now = get(db, id).await?;
            return Err(ServiceError::Conflict(format!(
                "Its machines hold {} vCPU, {} MB of memory and {} GB of disk: the capacity (with the over-commit) cannot go below that",
                now.used_vcpu, now.used_memory_mb, now.used_disk_gb
            )));
        }
        other => other?,
    };
    get(db, id).await
}

/// Gives a node daemon a new token. The token is stored as pending first, then the daemon is
/// asked to take it (it answers with the old one still), then it becomes the node's secret. When
/// the answer is lost or the last write fails, the pending token is tried (here, by the next
/// rotation, and by the reconciler: [`adopt_pending_secret`]) and kept if the daemon takes it: a
/// daemon is never left wanting a token the panel forgot. Rotations of one node are serialised
/// by the pending column (a second one while one is under way is refused, 409).
#[instrument(skip_all, err(level = "info", Debug), fields(node = %id))]
pub async fn rotate_secret(
    db: &Pool,
    drivers: &crate::fleet::nodes::Drivers,
    id: &str,
) -> ServiceResult<NodeRow> {
    let mut node = get(db, id).await?;
    if !node.daemon() {
        return Err(ServiceError::invalid(
            "Only node daemons (hangar-node+ addresses) have a token to rotate",
        ));
    }
    if adopt_pending_secret(db, drivers, &node).await? {
        node = get(db, id).await?;
    }
    let token = crate::infra::db::new_token();
    let claimed = sqlx::query(
        "UPDATE nodes SET pending_secret = $1 WHERE id = $2 AND pending_secret IS NULL",
    )
    .bind(&token)
    .bind(id)
    .execute(db)
    .await?;
    if claimed.rows_affected() == 0 {
        return Err(ServiceError::Conflict(
            "A rotation of this node's token is under way; try again in a moment".into(),
        ));
    }
    let asked = drivers.for_node(&node).rotate_secret(&token).await;
    if let Err(e) = asked {
        // Taken after all (the answer got lost)? Then it is the secret now; if not, nothing
        // changed on either side.
        node.pending_secret = Some(token);
        if adopt_pending_secret(db, drivers, &node).await? {
            return get(db, id).await;
        }
        sqlx::query("UPDATE nodes SET pending_secret = NULL WHERE id = $1")
            .bind(id)
            .execute(db)
            .await?;
        return Err(ServiceError::Conflict(format!(
            "The node daemon did not take a new token: {e}"
        )));
    }
    sqlx::query("UPDATE nodes SET secret = $1, pending_secret = NULL WHERE id = $2")
        .bind(&token)
        .bind(id)
        .execute(db)
        .await?;
    get(db, id).await
}

/// When node `node` has a pending token that its daemon accepts, makes it the secret and says
/// so. A pending token the daemon does not accept is left for the rotation that set it.
pub async fn adopt_pending_secret(
    db: &Pool,
    drivers: &crate::fleet::nodes::Drivers,
    node: &NodeRow,
) -> ServiceResult<bool> {
    let Some(pending) = node.pending_secret.clone() else {
        return Ok(false);
    };
    let probe =
        crate::fleet::driver::connect(node.kind, &node.uri, Some(&pending), drivers.settings());
    if probe.host().await.is_err() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE nodes SET secret = $1, pending_secret = NULL WHERE id = $2 AND pending_secret = $1",
    )
    .bind(&pending)
    .bind(&node.id)
    .execute(db)
    .await?;
    tracing::info!(node = %node.name, "the node daemon has the rotated token: adopted");
    Ok(true)
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
/// image it boots (only nodes the survey found holding it, see `fleet::survey`).
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

/// How long load samples are kept: the charts' longest range.
pub const LOAD_HISTORY_MS: i64 = 30 * 86_400_000;

/// Records what every node holds now (one sample each, the operator's load charts), with what
/// each reachable host reported of itself (`hosts`, by node id), and forgets samples older than
/// [`LOAD_HISTORY_MS`]. A second replica recording in the same millisecond adds nothing.
/// (`WHERE true`: SQLite needs it to tell an upsert's `ON` from a join's.)
pub async fn record_load(
    db: &Pool,
    now: i64,
    hosts: &[(String, crate::fleet::driver::HostReport)],
) -> ServiceResult<()> {
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
    for (node_id, h) in hosts {
        sqlx::query(
            "UPDATE node_samples SET host_cpu_permille = $1, host_memory_used_mb = $2,
                 host_memory_total_mb = $3, host_disk_used_mb = $4, host_disk_total_mb = $5,
                 host_net_rx_bytes = $6, host_net_tx_bytes = $7
             WHERE node_id = $8 AND at = $9",
        )
        .bind(h.cpu_permille)
        .bind(h.memory_used_mb)
        .bind(h.memory_total_mb)
        .bind(h.disk_used_mb)
        .bind(h.disk_total_mb)
        .bind(h.net_rx_bytes)
        .bind(h.net_tx_bytes)
        .bind(node_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM node_samples WHERE at < $1")
        .bind(now - LOAD_HISTORY_MS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A chart's range: how far back, and how wide each point's bucket is (at most ~240 points).
pub fn chart_range(range: &str) -> ServiceResult<(i64, i64)> {
    const MIN: i64 = 60_000;
    Ok(match range {
        "1h" => (60 * MIN, 0),
        "24h" => (24 * 60 * MIN, 6 * MIN),
        "7d" => (7 * 24 * 60 * MIN, 60 * MIN),
        "30d" => (30 * 24 * 60 * MIN, 3 * 60 * MIN),
        _ => return Err(ServiceError::invalid("range is one of 1h, 24h, 7d and 30d")),
    })
}

/// Node `id`'s chart over `range` (`1h`, `24h`, `7d`, `30d`), oldest first. `cpu_ratio` and
/// `memory_ratio` are the over-commit in force (what allocation is a share of).
pub async fn host_history(
    db: &Pool,
    id: &str,
    range: &str,
    cpu_ratio: f64,
    memory_ratio: f64,
) -> ServiceResult<Vec<NodePoint>> {
    let node = get(db, id).await?;
    let (span, bucket) = chart_range(range)?;
    #[derive(sqlx::FromRow)]
    struct Sample {
        at: i64,
        used_vcpu: i64,
        used_memory_mb: i64,
        host_cpu_permille: Option<i64>,
        host_memory_used_mb: Option<i64>,
        host_memory_total_mb: Option<i64>,
        host_disk_used_mb: Option<i64>,
        host_disk_total_mb: Option<i64>,
        host_net_rx_bytes: Option<i64>,
        host_net_tx_bytes: Option<i64>,
    }
    let samples: Vec<Sample> = sqlx::query_as(
        "SELECT at, used_vcpu, used_memory_mb, host_cpu_permille, host_memory_used_mb,
                host_memory_total_mb, host_disk_used_mb, host_disk_total_mb, host_net_rx_bytes,
                host_net_tx_bytes
         FROM node_samples WHERE node_id = $1 AND at >= $2 ORDER BY at",
    )
    .bind(id)
    .bind(db::now_ms() - span)
    .fetch_all(db)
    .await?;
    let cpu_limit = ((node.vcpu as f64 * cpu_ratio).floor()).max(1.0);
    let mem_limit = ((node.memory_mb as f64 * memory_ratio).floor()).max(1.0);
    let share = |used: Option<i64>, total: Option<i64>| match (used, total) {
        (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
        _ => None,
    };
    // Every sample as a point, network as the rate since the sample before (a counter that went
    // back — the host restarted — gives no rate).
    let mut points: Vec<NodePoint> = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let rate = |now: Option<i64>, before: Option<i64>, at_before: i64| match (now, before) {
            (Some(n), Some(b)) if n >= b && b >= 0 && s.at > at_before => {
                Some(n.saturating_sub(b) as f64 * 1000.0 / (s.at - at_before) as f64)
            }
            _ => None,
        };
        let prev = i.checked_sub(1).map(|j| &samples[j]);
        points.push(NodePoint {
            at: s.at,
            allocated_cpu_percent: s.used_vcpu as f64 * 100.0 / cpu_limit,
            allocated_memory_percent: s.used_memory_mb as f64 * 100.0 / mem_limit,
            cpu_percent: s.host_cpu_permille.map(|p| p as f64 / 10.0),
            memory_percent: share(s.host_memory_used_mb, s.host_memory_total_mb),
            disk_percent: share(s.host_disk_used_mb, s.host_disk_total_mb),
            net_rx_bps: prev.and_then(|p| rate(s.host_net_rx_bytes, p.host_net_rx_bytes, p.at)),
            net_tx_bps: prev.and_then(|p| rate(s.host_net_tx_bytes, p.host_net_tx_bytes, p.at)),
        });
    }
    Ok(if bucket == 0 {
        points
    } else {
        average_buckets(points, bucket)
    })
}

/// Points averaged per `bucket` ms (each figure over the points that have it).
fn average_buckets(points: Vec<NodePoint>, bucket: i64) -> Vec<NodePoint> {
    let mut out: Vec<NodePoint> = Vec::new();
    let mut group: Vec<NodePoint> = Vec::new();
    let flush = |group: &mut Vec<NodePoint>, out: &mut Vec<NodePoint>| {
        if group.is_empty() {
            return;
        }
        let avg = |f: &dyn Fn(&NodePoint) -> Option<f64>| {
            let values: Vec<f64> = group.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        out.push(NodePoint {
            at: group[0].at / bucket * bucket,
            allocated_cpu_percent: avg(&|p| Some(p.allocated_cpu_percent)).unwrap_or_default(),
            allocated_memory_percent: avg(&|p| Some(p.allocated_memory_percent))
                .unwrap_or_default(),
            cpu_percent: avg(&|p| p.cpu_percent),
            memory_percent: avg(&|p| p.memory_percent),
            disk_percent: avg(&|p| p.disk_percent),
            net_rx_bps: avg(&|p| p.net_rx_bps),
            net_tx_bps: avg(&|p| p.net_tx_bps),
        });
        group.clear();
    };
    for p in points {
        if group
            .first()
            .is_some_and(|g| g.at / bucket != p.at / bucket)
        {
            flush(&mut group, &mut out);
        }
        group.push(p);
    }
    flush(&mut group, &mut out);
    out
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

/// One driver per node, made on first use and kept (libvirt's test driver keeps its state per
/// connection, and real connections are worth reusing).
#[derive(Debug, Default)]
pub struct Drivers {
    by_node: std::sync::Mutex<HashMap<String, Arc<dyn Driver>>>,
    settings: driver::Settings,
}

impl Drivers {
    pub fn new(settings: driver::Settings) -> Self {
        Self {
            by_node: Default::default(),
            settings,
        }
    }

    /// The driver for a node.
    pub fn for_node(&self, node: &NodeRow) -> Arc<dyn Driver> {
        let mut map = self.by_node.lock().unwrap_or_else(|e| e.into_inner());
        // Keyed by what the driver is made from too: a node whose address or token changed
        // (here or on another replica) gets a driver for the new one.
        let key = format!(
            "{}\n{}\n{}",
            node.id,
            node.uri,
            node.secret.as_deref().unwrap_or_default()
        );
        if let Some(driver) = map.get(&key) {
            return driver.clone();
        }
        // The node's driver for an address or token it no longer has goes.
        let prefix = format!("{}\n", node.id);
        map.retain(|k, _| !k.starts_with(&prefix));
        let driver = driver::connect(node.kind, &node.uri, node.secret.as_deref(), &self.settings);
        map.insert(key, driver.clone());
        driver
    }

    /// The settings drivers are made with.
    pub fn settings(&self) -> &driver::Settings {
        &self.settings
    }

    /// The keys VMs are reached with (the NoCloud seed hands them to guests).
    pub fn guest_keys(&self) -> &driver::guest::GuestKeys {
        &self.settings.guest_keys
    }
}

/// The driver of the node `node_id` (a machine's `node_id`; `None` for a machine not placed).
pub async fn driver_for(
    state: &AppState,
    node_id: Option<&str>,
) -> ServiceResult<Option<Arc<dyn Driver>>> {
    let Some(node_id) = node_id else {
        return Ok(None);
    };
    let node = get(&state.db, node_id).await?;
    Ok(Some(state.drivers.for_node(&node)))
}

/// A node and its driver.
pub type NodeDriver = (NodeRow, Arc<dyn Driver>);

/// Drivers for every node (the reconciler walks them).
pub async fn all_drivers(state: &AppState) -> ServiceResult<Vec<NodeDriver>> {
    Ok(list(&state.db)
        .await?
        .into_iter()
        .map(|n| {
            let d = state.drivers.for_node(&n);
            (n, d)
        })
        .collect())
}
