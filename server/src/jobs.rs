//! Background work that outlives requests: the job workers (driver actions, mail), the meter, the
//! reconciler and the periodic sweeps. Each sweep is set-based and idempotent, and jobs are
//! claimed with leases, so several replicas may run all of this at once without doing anything
//! twice.

use std::time::Duration;

use domain::compute::{exec, history, instances, meter, reconcile};
use domain::infra::db;
use domain::jobs;
use domain::market::rentals;
use domain::AppState;

/// Starts everything: job workers, sweeps, the meter and the reconciler. Returns the job workers,
/// which end once the replica stops (the periodic loops end with the process: each round is a
/// transaction, so cutting one short changes nothing).
pub fn spawn_all(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let workers = (0..state.config.job_workers)
        .map(|_| tokio::spawn(jobs::worker(state.clone())))
        .collect();
    spawn_every(state, state.config.sweep_interval_secs, |s| async move {
        run_sweeps(&s, db::now_ms()).await
    });
    spawn_every(state, state.config.meter_interval_secs, |s| async move {
        run_meter(&s, db::now_ms()).await
    });
    // The charts' history: one sample of each running machine a minute. Every 15 s, so a
    // machine that starts is in its history within seconds (a minute is sampled once).
    spawn_every(state, 15, |s| async move {
        if let Err(e) = history::record(&s, db::now_ms()).await {
            tracing::warn!(error = %e, "recording resource history failed");
        }
    });
    spawn_every(
        state,
        state.config.reconcile_interval_secs,
        |s| async move {
            match reconcile::run(&s).await {
                Ok(r) if r != reconcile::Report::default() => {
                    tracing::info!(report = ?r, "reconciler converged")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciler failed"),
            }
        },
    );
    workers
}

/// Runs `f` now and then every `secs` seconds (a late round is not made up twice: each round
/// catches up by itself).
fn spawn_every<F, Fut>(state: &AppState, secs: u64, f: F)
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let state = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            f(state.clone()).await;
        }
    });
}

/// One metering tick at `now`.
pub async fn run_meter(state: &AppState, now: i64) {
    let rules = meter::Rules::of(&state.config);
    let started = std::time::Instant::now();
    let result = meter::tick(&state.db, now, rules).await;
    state.metrics.observe(
        "hangar_meter_tick_duration_seconds",
        &[],
        started.elapsed().as_secs_f64(),
    );
    if result.is_err() {
        state.metrics.inc("hangar_meter_tick_errors_total", &[]);
    }
    match result {
        Ok(r) => {
            if !r.stopped.is_empty() {
                state.jobs_wake.notify_waiters();
                tracing::info!(
                    stopped = r.stopped.len(),
                    "instances stopped: balance ran out"
                );
            }
            if !r.deleted.is_empty() {
                state.jobs_wake.notify_waiters();
                tracing::info!(
                    deleted = r.deleted.len(),
                    "stopped instances deleted: balance stayed out past the retention"
                );
            }
            if !r.warned.is_empty() || !r.exhausted.is_empty() {
                state.jobs_wake.notify_waiters();
            }
        }
        Err(e) => tracing::warn!(error = %e, "metering tick failed"),
    }
}

/// One round of every sweep at `now`; failures are logged and retried next round.
pub async fn run_sweeps(state: &AppState, now: i64) {
    match rentals::expire_due(&state.db, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            ended = n,
            "rentals ended; their servers are back on the marketplace"
        ),
        Err(e) => tracing::warn!(error = %e, "rental expiry sweep failed"),
    }
    match instances::expire_due(&state.db, now).await {
        Ok(0) => {}
        Ok(n) => {
            state.jobs_wake.notify_waiters();
            tracing::info!(expired = n, "instances past their TTL are being deleted");
        }
        Err(e) => tracing::warn!(error = %e, "instance TTL sweep failed"),
    }
    match exec::sweep(state, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            ended = n,
            "background commands left by a stopped replica were ended"
        ),
        Err(e) => tracing::warn!(error = %e, "exec job sweep failed"),
    }
    if let Err(e) = domain::compute::console::sweep(&state.db, now).await {
        tracing::warn!(error = %e, "console ticket sweep failed");
    }
}
