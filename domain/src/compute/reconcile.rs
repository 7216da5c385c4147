//! The reconciler: compares what the database says with what each node reports, and converges.
//!
//! Runs at start and every `reconcile_interval_secs`. Instances with an action in flight are left
//! to their job. For the others:
//! - the machine is gone from its node → the instance is `failed` with the reason (billing ends,
//!   capacity and its public address are released), never a ghost that keeps billing. What is
//!   left of it on the node (its disk, which an operator may want to recover, and its DHCP
//!   reservation) goes when the customer deletes the instance; the address's next holder replaces
//!   the stale reservation;
//! - the machine stopped on its own (guest shutdown) → `stopped`, billing ends;
//! - the machine runs while Hangar thinks it is stopped → `running`, billing resumes;
//! - a running machine without a recorded address has one now → recorded (a real guest asks for
//!   its DHCP lease seconds after the create job has finished);
//! - a machine named `hangar-<id>` whose instance is deleted or unknown → destroyed (a leak left
//!   by a crash between the driver call and the database update);
//! - a container that has written more than its plan's disk (its writable layer, as the engine
//!   measures it) → stopped, with the reason: the engines here cannot bound a container's disk
//!   (see `model::engine`), so Hangar holds it to its plan each pass. It may be started again to
//!   delete files; if it is still over at the next pass, it is stopped again. What each machine
//!   uses is recorded (`disk_used_bytes`) and shown to its owner.
//!
//! Each node's pass ends with its image survey (`fleet::survey`); each pass ends by recording
//! every node's load (`nodes::record_load`, the operator's charts).
//!
//! Nodes are reconciled side by side (up to [`NODES_AT_ONCE`]), so a lost node delays only
//! itself; a node that does not list its machines within [`LIST_WAIT`] counts as unreachable for
//! the pass. A node that cannot be reached is skipped (logged), never taken as "everything is gone": it
//! and its machines are marked `unreachable_since` (shown by the API and the portal; placement
//! passes it by), and the mark goes from both when a later pass reaches it again — its machines
//! then converge like any others, with the state the node reports.

use std::time::Duration;

use futures::StreamExt;

use crate::compute::executor;
use crate::compute::instances::{self, InstanceRow, InstanceState};
use crate::fleet::driver::HostReport;
use crate::fleet::driver::{instance_of, machine_name, Driver, Machine, Power};
use crate::fleet::nodes::NodeDriver;
use crate::fleet::nodes::NodeRow;
use crate::infra::error::ServiceResult;
use crate::infra::{db, queue};
use crate::AppState;

/// What one pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    pub addressed: Vec<String>,
    pub destroyed: Vec<String>,
    pub unreachable_nodes: Vec<String>,
    /// Stopped for writing more than their plan's disk.
    pub over_disk: Vec<String>,
}

/// How long a node has to list its machines. A node that takes longer is treated as unreachable
/// for this pass: a daemon that accepts connections and never answers (hung, or its host
/// swapping to death) would otherwise hold the pass for the driver's whole request timeout.
const LIST_WAIT: Duration = Duration::from_secs(20);
/// Nodes reconciled at once: a slow or lost node delays only itself.
const NODES_AT_ONCE: usize = 8;

/// One pass over every node. The first database error, if any, is returned once every node has
/// had its turn.
pub async fn run(state: &AppState) -> ServiceResult<Report> {
    // The futures are made up front: a closure inside the stream would make this future's
    // `Send` proof depend on higher-ranked lifetimes rustc cannot show.
    let nodes: Vec<_> = crate::fleet::nodes::all_drivers(state)
        .await?
        .into_iter()
        .map(|node_driver| node_pass(state, node_driver))
        .collect();
    let passes: Vec<ServiceResult<NodeOutcome>> = futures::stream::iter(nodes)
        .buffer_unordered(NODES_AT_ONCE)
        .collect()
        .await;
    let mut report = Report::default();
    let mut hosts = Vec::new();
    for pass in passes {
        let (one, host) = pass?;
        report.merge(one);
        hosts.extend(host);
    }
    // What each node holds after the pass, and what its host says, for the operator's charts.
    crate::fleet::nodes::record_load(&state.db, db::now_ms(), &hosts).await?;
    Ok(report)
}

/// One node's findings, and what its host reported (by node id) when it answered.
type NodeOutcome = (Report, Option<(String, HostReport)>);

/// How long a host has to report its load.
const HOST_WAIT: Duration = Duration::from_secs(5);

/// One node's part of a pass: what its host reports of itself (a node daemon of a version this
/// panel cannot drive is marked unreachable, with why, and not touched further), the
/// reconciliation, then (when it answered) its survey.
async fn node_pass(state: &AppState, node_driver: NodeDriver) -> ServiceResult<NodeOutcome> {
    let mut report = Report::default();
    let (mut node, mut driver) = (node_driver.0.clone(), node_driver.1.clone());
    let mut node_driver = node_driver;
    let mut host = match tokio::time::timeout(HOST_WAIT, driver.host()).await {
        Ok(Ok(host)) => Some(host),
        Ok(Err(e)) => {
            tracing::debug!(node = %node.name, error = %e, "reconciler: no host report");
            None
        }
        Err(_) => None,
    };
    // A token rotation whose answer got lost: the daemon may want the pending token.
    if host.is_none()
        && crate::fleet::nodes::adopt_pending_secret(&state.db, &state.drivers, &node).await?
    {
        node = crate::fleet::nodes::get(&state.db, &node.id).await?;
        driver = state.drivers.for_node(&node);
        node_driver = (node.clone(), driver.clone());
        host = tokio::time::timeout(HOST_WAIT, driver.host())
            .await
            .ok()
            .and_then(Result::ok);
    }
    if let Some(version) = host.as_ref().and_then(|h| h.version.as_deref()) {
        sqlx::query("UPDATE nodes SET agent_version = $1 WHERE id = $2")
            .bind(version)
            .bind(&node.id)
            .execute(&state.db)
            .await?;
        if let Err(why) = compatible(version) {
            tracing::warn!(node = %node.name, %version, "reconciler: {why}");
            report.unreachable_nodes.push(node.name.clone());
            mark_reachable(state, &node, Some(&why)).await?;
            return Ok((report, None));
        }
    }
    reconcile_node(state, node_driver, &mut report).await?;
    // What the node holds now (an image copied onto it by hand shows up here). Not for a node
    // just found unreachable: it keeps what it was last found to hold.
    if report.unreachable_nodes.contains(&node.name) {
        return Ok((report, None));
    }
    crate::fleet::survey::node(&state.db, &node, driver.as_ref()).await?;
    Ok((report, host.map(|h| (node.id.clone(), h))))
}

/// Whether this panel can drive a node daemon of `version`: the same major version, and while
/// it is 0 the same minor one (the daemon's API may change between them). Patch releases mix.
pub fn compatible(version: &str) -> Result<(), String> {
    let ours = env!("CARGO_PKG_VERSION");
    let key = |v: &str| {
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or_default().to_owned();
        let minor = parts.next().unwrap_or_default().to_owned();
        if major == "0" {
            (major, minor)
        } else {
            (major, String::new())
        }
    };
    if key(version) == key(ours) {
        Ok(())
    } else {
        Err(format!(
            "the node daemon runs version {version}, which this panel ({ours}) cannot drive: upgrade the one that is behind"
        ))
    }
}

impl Report {
    /// Adds one node's findings; each list stays sorted, whatever order the nodes finished in.
    fn merge(&mut self, other: Report) {
        for (mine, theirs) in [
            (&mut self.failed, other.failed),
            (&mut self.stopped, other.stopped),
            (&mut self.started, other.started),
            (&mut self.addressed, other.addressed),
            (&mut self.destroyed, other.destroyed),
            (&mut self.unreachable_nodes, other.unreachable_nodes),
            (&mut self.over_disk, other.over_disk),
        ] {
            mine.extend(theirs);
            mine.sort();
        }
    }
}

async fn reconcile_node(
    state: &AppState,
    (node, driver): NodeDriver,
    report: &mut Report,
) -> ServiceResult<()> {
    let listed = match tokio::time::timeout(LIST_WAIT, driver.list()).await {
        Ok(listed) => listed,
        Err(_) => Err(crate::fleet::driver::DriverError::Backend(format!(
            "no answer to a listing within {} s",
            LIST_WAIT.as_secs()
        ))),
    };
    let machines = match listed {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(node = %node.name, error = %e, "reconciler: node unreachable; skipped");
            report.unreachable_nodes.push(node.name.clone());
            return mark_reachable(state, &node, Some(&e.to_string())).await;
        }
    };
    if node.unreachable_since.is_some() {
        tracing::info!(node = %node.name, "reconciler: node reachable again");
        mark_reachable(state, &node, None).await?;
    }
    let rows: Vec<InstanceRow> = sqlx::query_as(&format!(
        "SELECT {} FROM instances WHERE node_id = $1 AND state <> 'deleted'",
        instances::COLUMNS
    ))
    .bind(&node.id)
    .fetch_all(&state.db)
    .await?;
    for inst in &rows {
        if inst.transition.is_some() || inst.state == InstanceState::Failed {
            continue;
        }
        let seen = machines
            .iter()
            .find(|m| instance_of(&m.name) == Some(inst.id.as_str()));
        if let Some(used) = seen.and_then(|m| m.disk_used) {
            hold_to_disk(state, inst, used, report).await?;
        }
        reconcile_instance(state, &node, driver.as_ref(), inst, seen, report).await?;
    }
    destroy_orphans(state, &node, driver.as_ref(), &machines, report).await
}

/// Sets (keeping the first time, with the latest reason) or clears (`unreachable: None`) the
/// node's unreachable mark and its machines'.
async fn mark_reachable(
    state: &AppState,
    node: &NodeRow,
    unreachable: Option<&str>,
) -> ServiceResult<()> {
    let since = unreachable.is_some().then(db::now_ms);
    let mut tx = crate::infra::db::begin(&state.db).await?;
    sqlx::query("UPDATE nodes SET unreachable_since = CASE WHEN $1 IS NULL THEN NULL ELSE COALESCE(unreachable_since, $1) END, unreachable_reason = $2 WHERE id = $3")
        .bind(since)
        .bind(unreachable.map(|r| r.chars().take(500).collect::<String>()))
        .bind(&node.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE instances SET unreachable_since = CASE WHEN $1 IS NULL THEN NULL ELSE COALESCE(unreachable_since, $1) END WHERE node_id = $2 AND state <> 'deleted'")
        .bind(since)
        .bind(&node.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Brings one idle instance in line with what its node shows (`seen`: its machine, if any).
async fn reconcile_instance(
    state: &AppState,
    node: &NodeRow,
    driver: &dyn Driver,
    inst: &InstanceRow,
    seen: Option<&Machine>,
    report: &mut Report,
) -> ServiceResult<()> {
    match (inst.state, seen.map(|m| m.power)) {
        (_, None) => {
            // Re-read: the instance may have been deleted since the list was taken.
            if let Some(fresh) = instances::load(&state.db, &inst.id).await? {
                let idle = fresh.transition.is_none()
                    && !matches!(fresh.state, InstanceState::Deleted | InstanceState::Failed);
                if idle {
                    let reason = format!("The machine disappeared from node {}", node.name);
                    executor::mark_failed(&state.db, &fresh, &reason).await?;
                    report.failed.push(inst.id.clone());
                }
            }
        }
        (InstanceState::Running, Some(Power::Stopped)) => {
            let reason = "The machine was powered off from inside";
            executor::mark_stopped(&state.db, &inst.id, Some(reason)).await?;
            report.stopped.push(inst.id.clone());
        }
        (InstanceState::Stopped, Some(Power::Running)) => {
            let mut tx = crate::infra::db::begin(&state.db).await?;
            let at = db::now_ms();
            let done = sqlx::query("UPDATE instances SET state = 'running', updated_at = $1 WHERE id = $2 AND state = 'stopped' AND transition IS NULL")
                .bind(at)
                .bind(&inst.id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 1 {
                executor::now_running(&mut tx, &inst.id, at).await?;
                report.started.push(inst.id.clone());
            }
            tx.commit().await?;
        }
        (InstanceState::Running, Some(Power::Running)) if inst.private_ip.is_none() => {
            let Ok(Some(address)) = driver.address(&machine_name(&inst.id)).await else {
                return Ok(());
            };
            let done = sqlx::query("UPDATE instances SET private_ip = $1, updated_at = $2 WHERE id = $3 AND state = 'running' AND transition IS NULL AND private_ip IS NULL")
                .bind(&address)
                .bind(db::now_ms())
                .bind(&inst.id)
                .execute(&state.db)
                .await?;
            if done.rows_affected() == 1 {
                report.addressed.push(inst.id.clone());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Records what the machine has written, and stops a running one that wrote more than its plan's
/// disk (the stop and its reason commit together, like any action).
async fn hold_to_disk(
    state: &AppState,
    inst: &InstanceRow,
    used: u64,
    report: &mut Report,
) -> ServiceResult<()> {
    let used = used.min(i64::MAX as u64) as i64;
    if inst.disk_used_bytes != Some(used) {
        sqlx::query("UPDATE instances SET disk_used_bytes = $1 WHERE id = $2")
            .bind(used)
            .bind(&inst.id)
            .execute(&state.db)
            .await?;
    }
    let limit = inst.disk_gb.saturating_mul(1 << 30);
    if inst.state != InstanceState::Running || used <= limit {
        return Ok(());
    }
    let gb = |b: i64| format!("{:.1}", b as f64 / (1u64 << 30) as f64);
    let reason = format!(
        "Stopped because it wrote {} GB to its disk, more than its plan's {} GB. Start it and          delete files to get under the limit (it is checked again every few minutes), or move          to a larger plan.",
        gb(used),
        inst.disk_gb
    );
    let now = db::now_ms();
    let mut tx = crate::infra::db::begin(&state.db).await?;
    let marked = sqlx::query(
        "UPDATE instances SET state = 'stopping', transition = 'stop', reason = $1, updated_at = $2
         WHERE id = $3 AND state = 'running' AND transition IS NULL",
    )
    .bind(&reason)
    .bind(now)
    .bind(&inst.id)
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() == 1 {
        queue::enqueue(
            &mut tx,
            queue::JobKind::Stop,
            Some(&inst.user_id),
            Some(&inst.id),
            serde_json::json!({}),
            now,
        )
        .await?;
        report.over_disk.push(inst.id.clone());
    }
    tx.commit().await?;
    state.jobs_wake.notify_waiters();
    Ok(())
}

/// Destroys `hangar-*` machines on the node that no live instance there owns.
async fn destroy_orphans(
    state: &AppState,
    node: &NodeRow,
    driver: &dyn Driver,
    machines: &[Machine],
    report: &mut Report,
) -> ServiceResult<()> {
    for m in machines {
        let Some(id) = instance_of(&m.name) else {
            continue;
        };
        let orphan = match instances::load(&state.db, id).await? {
            None => true,
            Some(i) => {
                i.state == InstanceState::Deleted || i.node_id.as_deref() != Some(node.id.as_str())
            }
        };
        if orphan {
            tracing::warn!(node = %node.name, machine = %m.name, "reconciler: destroying a machine no instance owns");
            driver.destroy(&m.name).await.ok();
            report.destroyed.push(m.name.clone());
        }
    }
    Ok(())
}
