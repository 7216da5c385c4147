//! What compute's jobs do: the driver call behind each instance transition, and the database
//! change that records its outcome. `crate::jobs` claims a job and calls [`execute`]; when a job
//! fails for good it calls [`give_up`], which puts the instance somewhere honest.
//!
//! Every step is safe to run twice (a job whose lease ran out is run again by another worker):
//! driver methods are idempotent (see `driver`) and each update is conditional on the state it
//! expects.

use std::time::{Duration, Instant};

use tracing::instrument;

use crate::accounts::keys;
use crate::compute::instances::{self, InstanceRow, InstanceState, SnapshotState, Transition};
use crate::compute::meter::{self, Rate};
use crate::fleet::driver::{machine_name, Driver, DriverError, MachineSpec, Power};
use crate::fleet::nodes;
use crate::fleet::{addresses, catalog};
use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::queue::{self, Failure, JobKind, JobRow};
use crate::AppState;

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Backend(m) => Failure::Retry(m),
            other => Failure::Permanent(other.to_string()),
        }
    }
}

/// The VNC port of the caller's running VM, read live from its node (the `/api` dialect's
/// `vnc-port`). 409 when it is not running or has no screen (containers).
pub async fn vnc_port(state: &AppState, user_id: &str, id: &str) -> ServiceResult<u16> {
    let inst = instances::get(&state.db, user_id, id).await?;
    if inst.state != InstanceState::Running {
        return Err(ServiceError::Conflict(
            "The VPS is not running; start it to use its console".into(),
        ));
    }
    let driver = nodes::driver_for(state, inst.node_id.as_deref())
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    let console = driver
        .console(&machine_name(&inst.id))
        .await
        .map_err(|e| e.for_request(&inst.id))?;
    console.vnc_port.ok_or_else(|| {
        ServiceError::Conflict(
            "This instance has no VNC screen (containers have a serial console only)".into(),
        )
    })
}

/// What the driver needs to build the instance's machine.
pub async fn machine_spec(state: &AppState, inst: &InstanceRow) -> ServiceResult<MachineSpec> {
    let image = catalog::image(&state.db, &inst.image)
        .await?
        .ok_or_else(|| ServiceError::invalid(format!("image {} no longer exists", inst.image)))?;
    let keys = keys::list(&state.db, &inst.user_id).await?;
    let wanted = inst.ssh_key_ids();
    Ok(MachineSpec {
        name: machine_name(&inst.id),
        instance_id: inst.id.clone(),
        account: inst.user_id.clone(),
        hostname: inst.name.clone(),
        vcpu: inst.vcpu as u32,
        memory_mb: inst.memory_mb as u64,
        disk_gb: inst.disk_gb as u64,
        app: image.app(),
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
            state.config.seed_base_url(),
            inst.id,
            inst.seed_key
        )),
        public_ip: inst.public_ip.clone(),
    })
}

/// Runs one compute job against its instance's node and records the outcome.
#[instrument(skip_all, fields(job = %job.id, kind = %job.kind))]
pub async fn execute(state: &AppState, job: &JobRow) -> Result<(), Failure> {
    let Some(inst) = instances::load(&state.db, job.instance_id.as_deref().unwrap_or("")).await?
    else {
        return Err(Failure::Permanent("instance not found".into()));
    };
    if inst.state == InstanceState::Deleted {
        return Ok(());
    }
    let Some(driver) = nodes::driver_for(state, inst.node_id.as_deref()).await? else {
        return Err(Failure::Permanent("instance has no node".into()));
    };
    let driver = driver.as_ref();
    let name = machine_name(&inst.id);
    let snapshot = job.payload_str("snapshot");
    match job.kind {
        JobKind::Create => create(state, driver, &inst).await,
        JobKind::Start => start(state, driver, &inst).await,
        JobKind::Stop => {
            driver.stop(&name).await?;
            Ok(mark_stopped(&state.db, &inst.id, None).await?)
        }
        JobKind::Restart => {
            driver.reboot(&name).await?;
            let unanswered = await_guest(state, driver, &inst.id, &name).await?;
            Ok(mark_running(&state.db, &inst.id, unanswered.as_deref()).await?)
        }
        JobKind::Delete => {
            // A delete asked for during the create: the create never starts, or is waited for.
            if queue::supersede(&state.db, &inst.id, JobKind::Create).await? {
                return Err(Failure::Retry(
                    "waiting for the machine's create to finish".into(),
                ));
            }
            driver.destroy(&name).await?;
            Ok(mark_deleted(&state.db, &inst, None).await?)
        }
        JobKind::SnapshotCreate => {
            driver.snapshot_create(&name, &snapshot).await?;
            Ok(snapshot_done(&state.db, &inst.id, &snapshot, SnapshotState::Ready, None).await?)
        }
        JobKind::SnapshotRestore => {
            driver.snapshot_restore(&name, &snapshot).await?;
            let mut tx = crate::infra::db::begin(&state.db).await?;
            clear_transition(&mut tx, &inst.id, Transition::Restore).await?;
            tx.commit().await?;
            Ok(())
        }
        JobKind::SnapshotDelete => Ok(driver.snapshot_delete(&name, &snapshot).await?),
        JobKind::Mail => Err(Failure::Permanent("mail is not a compute job".into())),
    }
}

/// Makes the machine, then records it running (with its console port and address) and starts
/// billing, unless the create was cancelled meanwhile.
async fn create(state: &AppState, driver: &dyn Driver, inst: &InstanceRow) -> Result<(), Failure> {
    if inst.transition() != Some(Transition::Create) {
        return Ok(()); // deleted meanwhile: its delete job removes whatever exists
    }
    let spec = machine_spec(state, inst)
        .await
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    driver.create(&spec).await?;
    let unanswered = await_guest(state, driver, &inst.id, &spec.name).await?;
    let console = driver.console(&spec.name).await.ok();
    let address = driver.address(&spec.name).await.ok().flatten();
    let ports = match driver.volume() {
        Some(volume) => volume.ports(&spec.name).await?,
        None => Vec::new(),
    };
    let mut tx = crate::infra::db::begin(&state.db).await?;
    let at = db::now_ms();
    let done = sqlx::query(
        "UPDATE instances SET state = 'running', transition = NULL, progress = NULL, reason = $6, vnc_port = $1,
             private_ip = $4, ports = $5, updated_at = $2
         WHERE id = $3 AND transition = 'create'",
    )
    .bind(console.and_then(|c| c.vnc_port).map(i64::from))
    .bind(at)
    .bind(&inst.id)
    .bind(address)
    .bind(serde_json::to_string(&ports).unwrap_or_else(|_| "[]".into()))
    .bind(unanswered)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        meter::bill(&mut tx, &inst.id, at, Rate::Running).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Starts the machine and bills it from now (its vCPU and memory were counted on its node again
/// when the start was accepted, `instances::act`). Containers get a new address each time they start.
async fn start(state: &AppState, driver: &dyn Driver, inst: &InstanceRow) -> Result<(), Failure> {
    let db = &state.db;
    let name = machine_name(&inst.id);
    driver.start(&name).await?;
    let unanswered = await_guest(state, driver, &inst.id, &name).await?;
    let address = driver.address(&name).await.ok().flatten();
    let mut tx = crate::infra::db::begin(db).await?;
    let at = db::now_ms();
    sqlx::query("UPDATE instances SET state = 'running', transition = NULL, progress = NULL, reason = $4, private_ip = $3, updated_at = $1 WHERE id = $2")
        .bind(at)
        .bind(&inst.id)
        .bind(address)
        .bind(unanswered)
        .execute(&mut *tx)
        .await?;
    now_running(&mut tx, &inst.id, at).await?;
    tx.commit().await?;
    Ok(())
}

/// How often the boot wait asks the guest, and how often it tells the person how long so far.
const BOOT_POLL: Duration = Duration::from_secs(2);

/// "running" means usable: after a machine is created, started or restarted, waits until the
/// way inside answers ([`Driver::ready`]: for a VM, its SSH server with the host key Hangar gave
/// it), so a script that polls for `running` and then runs a command works on the first try.
/// Meanwhile the instance's `progress` says it is booting and for how long. Containers and
/// simulated machines answer at once.
///
/// Bounded by `boot_wait_secs`: a guest that never answers (an image without Hangar's seed, a
/// user who removed the platform key) is still recorded running, with the returned reason, since
/// its console and screen work and billing must not wait on what the customer controls.
async fn await_guest(
    state: &AppState,
    driver: &dyn Driver,
    id: &str,
    name: &str,
) -> Result<Option<String>, Failure> {
    let wait = Duration::from_secs(state.config.boot_wait_secs);
    let started = Instant::now();
    loop {
        let last = match driver.ready(name).await {
            Ok(()) | Err(DriverError::Unsupported(_)) => return Ok(None),
            Err(DriverError::NotFound(m)) => {
                return Err(Failure::Permanent(format!("{m} disappeared while booting")))
            }
            Err(e) => e.to_string(),
        };
        let waited = started.elapsed();
        if waited >= wait {
            tracing::warn!(instance = %id, error = %last, "the guest did not answer after booting");
            return Ok(Some(format!(
                "The guest did not answer within {} s of booting, so commands and files may not \
                 work yet (the console shows its boot): {last}",
                wait.as_secs()
            )));
        }
        let progress = format!(
            "Booting: waiting for the guest to answer ({} s so far)",
            waited.as_secs()
        );
        sqlx::query("UPDATE instances SET progress = $1 WHERE id = $2 AND transition IS NOT NULL")
            .bind(progress)
            .bind(id)
            .execute(&state.db)
            .await?;
        tokio::time::sleep(BOOT_POLL.min(wait - waited)).await;
    }
}

/// A snapshot job ended: the snapshot becomes `state` (with why, when it failed) and the
/// instance's transition clears.
async fn snapshot_done(
    db: &Pool,
    id: &str,
    snapshot: &str,
    state: SnapshotState,
    reason: Option<&str>,
) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query(
        "UPDATE snapshots SET state = $1, reason = $4 WHERE instance_id = $2 AND name = $3",
    )
    .bind(state.as_str())
    .bind(id)
    .bind(snapshot)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    clear_transition(&mut tx, id, Transition::Snapshot).await?;
    tx.commit().await?;
    Ok(())
}

async fn clear_transition(tx: &mut Tx<'_>, id: &str, transition: Transition) -> ServiceResult<()> {
    sqlx::query(
        "UPDATE instances SET transition = NULL, progress = NULL, updated_at = $1 WHERE id = $2 AND transition = $3",
    )
    .bind(db::now_ms())
    .bind(id)
    .bind(transition.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that an instance is running again (a reboot finished, or the node says so after a
/// failed action). `reason` replaces the stored one when given.
async fn mark_running(db: &Pool, id: &str, reason: Option<&str>) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let at = db::now_ms();
    let done = sqlx::query("UPDATE instances SET state = 'running', transition = NULL, progress = NULL, reason = COALESCE($1, reason), updated_at = $2 WHERE id = $3 AND state <> 'deleted'")
        .bind(reason)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 1 {
        now_running(&mut tx, id, at).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What being `running` holds, for an instance just recorded so (in `tx`): its vCPU and memory
/// count on its node (a start counted them already; a machine found running after a failed
/// action or by the reconciler takes them whatever the node holds, since it does run), and it
/// is billed at its price.
pub(crate) async fn now_running(tx: &mut Tx<'_>, id: &str, at: i64) -> ServiceResult<()> {
    if let Some((node, size)) = set_holds_compute(tx, id, true).await? {
        nodes::reclaim(tx, &node, size, nodes::Reclaim::Anyway).await?;
    }
    meter::bill(tx, id, at, Rate::Running).await
}

/// Marks whether the instance's vCPU and memory count on its node. When that changed, returns
/// its node and that share (its disk always counts), for the caller to move on the node.
async fn set_holds_compute(
    tx: &mut Tx<'_>,
    id: &str,
    holds: bool,
) -> ServiceResult<Option<(String, nodes::Size)>> {
    let changed: Option<(Option<String>, i64, i64)> = sqlx::query_as(
        "UPDATE instances SET holds_compute = $2 WHERE id = $1 AND holds_compute <> $2 RETURNING node_id, vcpu, memory_mb",
    )
    .bind(id)
    .bind(i64::from(holds))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(changed.and_then(|(node, vcpu, memory_mb)| {
        let size = nodes::Size {
            vcpu,
            memory_mb,
            disk_gb: 0,
        };
        node.map(|n| (n, size))
    }))
}

/// Records that an instance is stopped (by request, by the guest, or found so by the reconciler),
/// in one transaction with what that changes: its vCPU and memory go back to its node (other
/// machines may use them; a start takes them again if they are still free), and from now it pays
/// the held rate for its disk and address instead of its price. `reason` replaces the stored one
/// when given.
pub async fn mark_stopped(db: &Pool, id: &str, reason: Option<&str>) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let at = db::now_ms();
    let done = sqlx::query(
        "UPDATE instances SET state = 'stopped', transition = NULL, progress = NULL, reason = COALESCE($1, reason), private_ip = NULL, updated_at = $2
         WHERE id = $3 AND state NOT IN ('deleted', 'failed')",
    )
    .bind(reason)
    .bind(at)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        if let Some((node, size)) = set_holds_compute(&mut tx, id, false).await? {
            nodes::release(&mut tx, &node, size).await?;
        }
        meter::bill(&mut tx, id, at, Rate::Held).await?;
    }
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
    finish_instance(db, inst, InstanceState::Deleted, reason).await
}

/// Records that an instance failed for good (its machine is gone or could not be made).
pub async fn mark_failed(db: &Pool, inst: &InstanceRow, reason: &str) -> ServiceResult<()> {
    finish_instance(db, inst, InstanceState::Failed, Some(reason)).await
}

async fn finish_instance(
    db: &Pool,
    inst: &InstanceRow,
    to: InstanceState,
    reason: Option<&str>,
) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let at = db::now_ms();
    meter::settle(&mut tx, &inst.id, at).await?;
    // Capacity is released once: only by the update that moves the instance out of the states
    // that hold it (a failed instance already gave its share back).
    // A stopped machine holds only its disk (its vCPU and memory went back when it stopped).
    let moved: Option<i64> = sqlx::query_scalar(
        "UPDATE instances SET state = $1, transition = NULL, progress = NULL, reason = COALESCE($2, reason), public_ip = NULL, private_ip = NULL,
            deleted_at = CASE WHEN $1 = 'deleted' THEN $3 ELSE deleted_at END, updated_at = $3
         WHERE id = $4 AND state NOT IN ('deleted', 'failed')
         RETURNING holds_compute",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(at)
    .bind(&inst.id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(holds_compute) = moved {
        if let Some(node) = &inst.node_id {
            let size = inst.size();
            let held = nodes::Size {
                vcpu: size.vcpu * holds_compute,
                memory_mb: size.memory_mb * holds_compute,
                disk_gb: size.disk_gb,
            };
            nodes::release(&mut tx, node, held).await?;
        }
        addresses::release(&mut tx, &inst.id).await?;
    } else if to == InstanceState::Deleted {
        // Already failed: a delete only needs to record it.
        sqlx::query("UPDATE instances SET state = 'deleted', transition = NULL, progress = NULL, deleted_at = $1, updated_at = $1 WHERE id = $2 AND state = 'failed'")
            .bind(at)
            .bind(&inst.id)
            .execute(&mut *tx)
            .await?;
    }
    if to == InstanceState::Deleted {
        sqlx::query("DELETE FROM snapshots WHERE instance_id = $1")
            .bind(&inst.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A job that will not succeed: put its instance somewhere honest.
pub async fn give_up(state: &AppState, job: &JobRow, msg: &str) -> ServiceResult<()> {
    let Some(inst) = instances::load(&state.db, job.instance_id.as_deref().unwrap_or("")).await?
    else {
        return Ok(());
    };
    match job.kind {
        JobKind::Create => {
            mark_failed(&state.db, &inst, &format!("Provisioning failed: {msg}")).await
        }
        JobKind::SnapshotCreate => {
            let snapshot = job.payload_str("snapshot");
            let reason = format!("The snapshot could not be made: {msg}");
            snapshot_done(
                &state.db,
                &inst.id,
                &snapshot,
                SnapshotState::Failed,
                Some(&reason),
            )
            .await
        }
        JobKind::Start
        | JobKind::Stop
        | JobKind::Restart
        | JobKind::Delete
        | JobKind::SnapshotRestore => settle_after_failure(state, job, &inst, msg).await,
        JobKind::SnapshotDelete | JobKind::Mail => Ok(()),
    }
}

/// After a power action failed for good, learn the truth from the node and record it; the caller
/// may then try again.
async fn settle_after_failure(
    state: &AppState,
    job: &JobRow,
    inst: &InstanceRow,
    msg: &str,
) -> ServiceResult<()> {
    let power = match nodes::driver_for(state, inst.node_id.as_deref()).await? {
        Some(d) => d.power(&machine_name(&inst.id)).await.ok().flatten(),
        None => None,
    };
    let reason = format!("{} failed: {msg}", job.kind);
    match power {
        Some(Power::Stopped) => mark_stopped(&state.db, &inst.id, Some(&reason)).await,
        Some(Power::Running) => mark_running(&state.db, &inst.id, Some(&reason)).await,
        None if job.kind == JobKind::Delete => mark_deleted(&state.db, inst, None).await,
        None => {
            let reason = format!("The machine is missing from its node ({reason})");
            mark_failed(&state.db, inst, &reason).await
        }
    }
}
