//! Database-backed jobs: the driver actions behind every instance transition, and mail.
//!
//! A job is enqueued in the same transaction as the state change that needs it. Workers claim one
//! with a conditional `UPDATE` that sets a lease (`locked_until`); a worker that dies leaves the
//! lease to expire and another worker (after a restart, or another replica) takes the job over.
//! That is safe because every driver method is idempotent (see `driver`): re-running a create
//! that half-happened finishes it. Transient driver failures are retried with backoff; a failure
//! about the request itself (an image the node lacks) fails the job at once.
//!
//! User-visible jobs are reference 004's *operations*: [`operation`] shows one to its owner.

use std::time::Duration;

use tracing::instrument;

use super::{
    driver::{machine_name, Driver, DriverError, MachineSpec, Power},
    instances::{self, InstanceRow},
    keys, meter, nodes,
};
use crate::ssr::{
    db::{self, rfc3339, Pool, Tx},
    error::{ServiceError, ServiceResult},
    AppState,
};

/// Attempts before a job whose driver keeps failing is given up.
pub const MAX_ATTEMPTS: i64 = 5;

/// Enqueues a job inside `tx`; returns its id (the operation id).
pub async fn enqueue(
    tx: &mut Tx<'_>,
    kind: &str,
    user_id: Option<&str>,
    instance_id: Option<&str>,
    payload: serde_json::Value,
    now: i64,
) -> ServiceResult<String> {
    let id = db::new_id();
    sqlx::query(
        "INSERT INTO jobs (id, kind, user_id, instance_id, payload, state, run_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6, $6)",
    )
    .bind(&id)
    .bind(kind)
    .bind(user_id)
    .bind(instance_id)
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Enqueues `kind` for every instance matching `predicate` (which uses `$1` = now), set-based.
/// The jobs are due at once (wall clock), whatever clock `now` came from.
pub async fn enqueue_for_each(
    tx: &mut Tx<'_>,
    kind: &str,
    predicate: &str,
    now: i64,
) -> ServiceResult<u64> {
    let id_sql = db::new_id_sql(db::backend_of(tx));
    let done = sqlx::query(&format!(
        "INSERT INTO jobs (id, kind, user_id, instance_id, payload, state, run_at, created_at, updated_at)
         SELECT {id_sql}, $2, user_id, id, '{{}}', 'queued', $3, $3, $3 FROM instances WHERE {predicate}"
    ))
    .bind(now)
    .bind(kind)
    .bind(db::now_ms().min(now))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub user_id: Option<String>,
    pub instance_id: Option<String>,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, kind, user_id, instance_id, payload, state, attempts, error, created_at, updated_at";

/// Claims the next due job (or one whose lease ran out), if any.
pub async fn claim(db: &Pool, now: i64, lease_ms: i64) -> ServiceResult<Option<JobRow>> {
    let due = "((state = 'queued' AND run_at <= $1) OR (state = 'running' AND locked_until < $1))";
    Ok(sqlx::query_as(&format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1
         WHERE id = (SELECT id FROM jobs WHERE {due} ORDER BY run_at, created_at LIMIT 1) AND {due}
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(now + lease_ms)
    .fetch_optional(db)
    .await?)
}

async fn finish(db: &Pool, job: &JobRow, state: &str, error: Option<&str>) -> ServiceResult<()> {
    sqlx::query("UPDATE jobs SET state = $1, error = $2, locked_until = NULL, updated_at = $3 WHERE id = $4")
        .bind(state)
        .bind(error)
        .bind(db::now_ms())
        .bind(&job.id)
        .execute(db)
        .await?;
    Ok(())
}

async fn retry_later(db: &Pool, job: &JobRow, error: &str) -> ServiceResult<()> {
    let backoff = 1_000 * (1i64 << job.attempts.clamp(0, 8));
    sqlx::query("UPDATE jobs SET state = 'queued', error = $1, run_at = $2, locked_until = NULL, updated_at = $3 WHERE id = $4")
        .bind(error)
        .bind(db::now_ms() + backoff)
        .bind(db::now_ms())
        .bind(&job.id)
        .execute(db)
        .await?;
    Ok(())
}

/// Claims and runs one job. Returns whether there was one.
pub async fn run_once(state: &AppState) -> ServiceResult<bool> {
    let lease = state.config.job_lease_secs * 1000;
    let Some(job) = claim(&state.db, db::now_ms(), lease).await? else {
        return Ok(false);
    };
    match execute(state, &job).await {
        Ok(()) => finish(&state.db, &job, "done", None).await?,
        Err(Failure::Retry(msg)) if job.attempts < MAX_ATTEMPTS => {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %msg, "job failed; will retry");
            retry_later(&state.db, &job, &msg).await?;
        }
        Err(Failure::Retry(msg)) | Err(Failure::Permanent(msg)) => {
            tracing::warn!(job = %job.id, kind = %job.kind, error = %msg, "job failed");
            give_up(state, &job, &msg).await?;
            finish(&state.db, &job, "failed", Some(&msg)).await?;
        }
    }
    Ok(true)
}

/// Runs jobs until the queue is empty (tests, and the worker loop).
pub async fn drain(state: &AppState) -> ServiceResult<usize> {
    let mut n = 0;
    while run_once(state).await? {
        n += 1;
    }
    Ok(n)
}

/// A worker: runs jobs as they come, woken at once by local enqueues and otherwise polling
/// (jobs enqueued by other replicas, retries coming due).
pub async fn worker(state: AppState) {
    loop {
        match run_once(&state).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "job worker error"),
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), state.jobs_wake.notified()).await;
    }
}

enum Failure {
    /// The node or engine failed; try again later.
    Retry(String),
    /// The request cannot succeed (missing image, missing machine).
    Permanent(String),
}

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Backend(m) => Failure::Retry(m),
            other => Failure::Permanent(other.to_string()),
        }
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Failure::Retry(format!("{e:#}"))
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Retry(e.to_string())
    }
}

/// The driver of an instance's node.
pub async fn driver_for(
    state: &AppState,
    inst: &InstanceRow,
) -> ServiceResult<Option<std::sync::Arc<dyn Driver>>> {
    let Some(node_id) = &inst.node_id else {
        return Ok(None);
    };
    let node = nodes::get(&state.db, node_id).await?;
    Ok(Some(state.drivers.for_node(
        &node.id,
        node.kind(),
        &node.uri,
    )))
}

/// What the driver needs to build the instance's machine.
pub async fn machine_spec(state: &AppState, inst: &InstanceRow) -> ServiceResult<MachineSpec> {
    let image = super::catalog::image(&state.db, &inst.image)
        .await?
        .ok_or_else(|| ServiceError::invalid(format!("image {} no longer exists", inst.image)))?;
    let keys = keys::list(&state.db, &inst.user_id).await?;
    let wanted = inst.ssh_key_ids();
    Ok(MachineSpec {
        name: machine_name(&inst.id),
        instance_id: inst.id.clone(),
        hostname: inst.name.clone(),
        vcpu: inst.vcpu as u32,
        memory_mb: inst.memory_mb as u64,
        disk_gb: inst.disk_gb as u64,
        image: image.source,
        user_data: inst.user_data.clone(),
        // Keys deleted since create are no longer offered.
        ssh_keys: keys
            .into_iter()
            .filter(|k| wanted.contains(&k.id))
            .map(|k| k.public_key)
            .collect(),
        seed_url: Some(format!(
            "{}/cloud-init/{}/{}/",
            state.config.public_url, inst.id, inst.seed_key
        )),
        public_ip: inst.public_ip.clone(),
    })
}

fn snapshot_of(job: &JobRow) -> String {
    serde_json::from_str::<serde_json::Value>(&job.payload)
        .ok()
        .and_then(|v| {
            v.get("snapshot")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

#[instrument(skip_all, fields(job = %job.id, kind = %job.kind))]
async fn execute(state: &AppState, job: &JobRow) -> Result<(), Failure> {
    if job.kind == "mail" {
        let template = serde_json::from_str::<serde_json::Value>(&job.payload)
            .ok()
            .and_then(|v| {
                v.get("template")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let user = job.user_id.clone().unwrap_or_default();
        return crate::ssr::mail::send_balance_notice(&state.db, &state.config, &user, &template)
            .await
            .map_err(Into::into);
    }
    let Some(inst) = instances::load(&state.db, job.instance_id.as_deref().unwrap_or("")).await?
    else {
        return Err(Failure::Permanent("instance not found".into()));
    };
    if inst.state == "deleted" {
        return Ok(());
    }
    let Some(driver) = driver_for(state, &inst).await? else {
        return Err(Failure::Permanent("instance has no node".into()));
    };
    let name = machine_name(&inst.id);
    let now = db::now_ms;
    match job.kind.as_str() {
        "create" => {
            let spec = machine_spec(state, &inst)
                .await
                .map_err(|e| Failure::Permanent(e.to_string()))?;
            driver.create(&spec).await?;
            let console = driver.console(&name).await.ok();
            let address = driver.address(&name).await.ok().flatten();
            let mut tx = state.db.begin().await?;
            let at = now();
            let done = sqlx::query(
                "UPDATE instances SET state = 'running', transition = NULL, reason = NULL, vnc_port = $1,
                     private_ip = $4, updated_at = $2
                 WHERE id = $3 AND transition = 'create'",
            )
            .bind(console.and_then(|c| c.vnc_port).map(i64::from))
            .bind(at)
            .bind(&inst.id)
            .bind(address)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                meter::begin(&mut tx, &inst.id, at).await?;
            }
            tx.commit().await?;
        }
        "start" => {
            driver.start(&name).await?;
            // Containers get a new address each time they start.
            let address = driver.address(&name).await.ok().flatten();
            let mut tx = state.db.begin().await?;
            let at = now();
            sqlx::query("UPDATE instances SET state = 'running', transition = NULL, reason = NULL, private_ip = $3, updated_at = $1 WHERE id = $2")
                .bind(at)
                .bind(&inst.id)
                .bind(address)
                .execute(&mut *tx)
                .await?;
            meter::begin(&mut tx, &inst.id, at).await?;
            tx.commit().await?;
        }
        "stop" => {
            driver.stop(&name).await?;
            mark_stopped(&state.db, &inst.id, None).await?;
        }
        "restart" => {
            driver.reboot(&name).await?;
            sqlx::query("UPDATE instances SET state = 'running', transition = NULL, updated_at = $1 WHERE id = $2")
                .bind(now())
                .bind(&inst.id)
                .execute(&state.db)
                .await?;
        }
        "delete" => {
            driver.destroy(&name).await?;
            mark_deleted(&state.db, &inst, None).await?;
        }
        "snapshot.create" => {
            let snap = snapshot_of(job);
            driver.snapshot_create(&name, &snap).await?;
            let mut tx = state.db.begin().await?;
            sqlx::query(
                "UPDATE snapshots SET state = 'ready' WHERE instance_id = $1 AND name = $2",
            )
            .bind(&inst.id)
            .bind(&snap)
            .execute(&mut *tx)
            .await?;
            clear_transition(&mut tx, &inst.id, "snapshot").await?;
            tx.commit().await?;
        }
        "snapshot.restore" => {
            driver.snapshot_restore(&name, &snapshot_of(job)).await?;
            let mut tx = state.db.begin().await?;
            clear_transition(&mut tx, &inst.id, "restore").await?;
            tx.commit().await?;
        }
        "snapshot.delete" => {
            driver.snapshot_delete(&name, &snapshot_of(job)).await?;
        }
        other => return Err(Failure::Permanent(format!("unknown job kind {other}"))),
    }
    Ok(())
}

async fn clear_transition(tx: &mut Tx<'_>, id: &str, transition: &str) -> ServiceResult<()> {
    sqlx::query(
        "UPDATE instances SET transition = NULL, updated_at = $1 WHERE id = $2 AND transition = $3",
    )
    .bind(db::now_ms())
    .bind(id)
    .bind(transition)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that an instance is stopped (by request, by the guest, or found so by the reconciler)
/// and ends its billing in the same transaction. `reason` replaces the stored one when given.
pub async fn mark_stopped(db: &Pool, id: &str, reason: Option<&str>) -> ServiceResult<()> {
    let mut tx = db.begin().await?;
    let at = db::now_ms();
    meter::settle(&mut tx, id, at).await?;
    sqlx::query(
        "UPDATE instances SET state = 'stopped', transition = NULL, reason = COALESCE($1, reason), private_ip = NULL, updated_at = $2
         WHERE id = $3 AND state <> 'deleted'",
    )
    .bind(reason)
    .bind(at)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Records that an instance is gone: billing settled, capacity and address released, snapshots
/// forgotten, all in one transaction.
pub async fn mark_deleted(
    db: &Pool,
    inst: &InstanceRow,
    reason: Option<&str>,
) -> ServiceResult<()> {
    finish_instance(db, inst, "deleted", reason).await
}

/// Records that an instance failed for good (its machine is gone or could not be made).
pub async fn mark_failed(db: &Pool, inst: &InstanceRow, reason: &str) -> ServiceResult<()> {
    finish_instance(db, inst, "failed", Some(reason)).await
}

async fn finish_instance(
    db: &Pool,
    inst: &InstanceRow,
    to: &str,
    reason: Option<&str>,
) -> ServiceResult<()> {
    let mut tx = db.begin().await?;
    let at = db::now_ms();
    meter::settle(&mut tx, &inst.id, at).await?;
    // Capacity is released once: only by the update that moves the instance out of the states
    // that hold it (a failed instance already gave its share back).
    let holds = "state NOT IN ('deleted', 'failed')";
    let moved = sqlx::query(&format!(
        "UPDATE instances SET state = $1, transition = NULL, reason = COALESCE($2, reason), public_ip = NULL, private_ip = NULL,
            deleted_at = CASE WHEN $1 = 'deleted' THEN $3 ELSE deleted_at END, updated_at = $3
         WHERE id = $4 AND {holds}"
    ))
    .bind(to)
    .bind(reason)
    .bind(at)
    .bind(&inst.id)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 1 {
        if let Some(node) = &inst.node_id {
            nodes::release(&mut tx, node, inst.size()).await?;
        }
        super::addresses::release(&mut tx, &inst.id).await?;
    } else {
        // Already failed: a delete only needs to record it.
        sqlx::query("UPDATE instances SET state = $1, transition = NULL, deleted_at = $2, updated_at = $2 WHERE id = $3 AND state = 'failed' AND $1 = 'deleted'")
            .bind(to)
            .bind(at)
            .bind(&inst.id)
            .execute(&mut *tx)
            .await?;
    }
    if to == "deleted" {
        sqlx::query("DELETE FROM snapshots WHERE instance_id = $1")
            .bind(&inst.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A job that will not succeed: put its instance somewhere honest.
async fn give_up(state: &AppState, job: &JobRow, msg: &str) -> ServiceResult<()> {
    let Some(inst) = instances::load(&state.db, job.instance_id.as_deref().unwrap_or("")).await?
    else {
        return Ok(());
    };
    match job.kind.as_str() {
        "create" => mark_failed(&state.db, &inst, &format!("Provisioning failed: {msg}")).await?,
        "snapshot.create" => {
            let mut tx = state.db.begin().await?;
            sqlx::query(
                "UPDATE snapshots SET state = 'failed' WHERE instance_id = $1 AND name = $2",
            )
            .bind(&inst.id)
            .bind(snapshot_of(job))
            .execute(&mut *tx)
            .await?;
            clear_transition(&mut tx, &inst.id, "snapshot").await?;
            tx.commit().await?;
        }
        "start" | "stop" | "restart" | "delete" | "snapshot.restore" => {
            // Learn the truth from the node, then let the caller try again.
            let power = match driver_for(state, &inst).await? {
                Some(d) => d.power(&machine_name(&inst.id)).await.ok().flatten(),
                None => None,
            };
            match power {
                Some(Power::Stopped) => {
                    mark_stopped(
                        &state.db,
                        &inst.id,
                        Some(&format!("{} failed: {msg}", job.kind)),
                    )
                    .await?
                }
                Some(Power::Running) => {
                    sqlx::query("UPDATE instances SET state = 'running', transition = NULL, reason = $1, updated_at = $2 WHERE id = $3")
                        .bind(format!("{} failed: {msg}", job.kind))
                        .bind(db::now_ms())
                        .bind(&inst.id)
                        .execute(&state.db)
                        .await?;
                }
                None if job.kind == "delete" => mark_deleted(&state.db, &inst, None).await?,
                None => {
                    mark_failed(
                        &state.db,
                        &inst,
                        &format!(
                            "The machine is missing from its node ({} failed: {msg})",
                            job.kind
                        ),
                    )
                    .await?
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// An operation (reference 004) as its owner sees it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Operation {
    pub id: String,
    /// `create`, `start`, `stop`, `restart`, `delete`, `snapshot.create`, `snapshot.restore`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub target_id: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub async fn operation(db: &Pool, user_id: &str, id: &str) -> ServiceResult<Operation> {
    let job: JobRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE id = $1 AND user_id = $2 AND kind <> 'mail'"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("Operation"))?;
    let status = match job.state.as_str() {
        "queued" => "pending",
        "running" => "running",
        "done" => "succeeded",
        _ => "failed",
    };
    Ok(Operation {
        id: job.id,
        kind: job.kind,
        status: status.into(),
        target_id: job.instance_id,
        attempts: job.attempts,
        // A retried job's last error is shown only once it has failed for good.
        error: if status == "failed" { job.error } else { None },
        created_at: rfc3339(job.created_at),
        updated_at: rfc3339(job.updated_at),
    })
}

/// Makes `driver` available to the reconciler without a node lookup per instance.
pub type NodeDriver = (super::nodes::NodeRow, std::sync::Arc<dyn Driver>);

/// Drivers for every node.
pub async fn all_drivers(state: &AppState) -> ServiceResult<Vec<NodeDriver>> {
    Ok(nodes::list(&state.db)
        .await?
        .into_iter()
        .map(|n| {
            let d = state.drivers.for_node(&n.id, n.kind(), &n.uri);
            (n, d)
        })
        .collect())
}
