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
//!   by a crash between the driver call and the database update).
//!
//! A node that cannot be reached is skipped (logged), never taken as "everything is gone".

use super::{
    driver::{instance_of, machine_name, Power},
    instances::{self, InstanceRow},
    jobs, meter,
};
use crate::ssr::{db, error::ServiceResult, AppState};

/// What one pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    pub addressed: Vec<String>,
    pub destroyed: Vec<String>,
    pub unreachable_nodes: Vec<String>,
}

pub async fn run(state: &AppState) -> ServiceResult<Report> {
    let mut report = Report::default();
    for (node, driver) in jobs::all_drivers(state).await? {
        let machines = match driver.list().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "reconciler: node unreachable; skipped");
                report.unreachable_nodes.push(node.name.clone());
                continue;
            }
        };
        let rows: Vec<InstanceRow> = sqlx::query_as(&format!(
            "SELECT {} FROM instances WHERE node_id = $1 AND state <> 'deleted'",
            instances::COLUMNS
        ))
        .bind(&node.id)
        .fetch_all(&state.db)
        .await?;
        for inst in &rows {
            if inst.transition.is_some() || inst.state == "failed" {
                continue;
            }
            let seen = machines
                .iter()
                .find(|m| instance_of(&m.name) == Some(inst.id.as_str()));
            match (inst.state.as_str(), seen.map(|m| m.power)) {
                (_, None) => {
                    // Re-read: the instance may have been deleted since the list was taken.
                    if let Some(fresh) = instances::load(&state.db, &inst.id).await? {
                        if fresh.transition.is_none()
                            && fresh.state != "deleted"
                            && fresh.state != "failed"
                        {
                            jobs::mark_failed(
                                &state.db,
                                &fresh,
                                &format!("The machine disappeared from node {}", node.name),
                            )
                            .await?;
                            report.failed.push(inst.id.clone());
                        }
                    }
                }
                ("running", Some(Power::Stopped)) => {
                    jobs::mark_stopped(
                        &state.db,
                        &inst.id,
                        Some("The machine was powered off from inside"),
                    )
                    .await?;
                    report.stopped.push(inst.id.clone());
                }
                ("stopped", Some(Power::Running)) => {
                    let mut tx = state.db.begin().await?;
                    let at = db::now_ms();
                    let done = sqlx::query("UPDATE instances SET state = 'running', updated_at = $1 WHERE id = $2 AND state = 'stopped' AND transition IS NULL")
                        .bind(at)
                        .bind(&inst.id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 1 {
                        meter::begin(&mut tx, &inst.id, at).await?;
                        report.started.push(inst.id.clone());
                    }
                    tx.commit().await?;
                }
                ("running", Some(Power::Running)) if inst.private_ip.is_none() => {
                    let Ok(Some(address)) = driver.address(&machine_name(&inst.id)).await else {
                        continue;
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
        }
        for m in &machines {
            let Some(id) = instance_of(&m.name) else {
                continue;
            };
            let known = instances::load(&state.db, id).await?;
            let orphan = match &known {
                None => true,
                Some(i) => i.state == "deleted" || i.node_id.as_deref() != Some(node.id.as_str()),
            };
            if orphan {
                tracing::warn!(node = %node.name, machine = %m.name, "reconciler: destroying a machine no instance owns");
                driver.destroy(&m.name).await.ok();
                report.destroyed.push(m.name.clone());
            }
        }
    }
    Ok(report)
}
