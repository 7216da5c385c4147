//! Background work that outlives requests. Each sweep is one set-based, idempotent statement, so
//! several replicas may run it at once without doing anything twice.

use std::time::Duration;

use app::ssr::{db, rentals, AppState};

/// Starts the periodic sweeps (every `sweep_interval_secs`).
pub fn spawn_sweeps(state: &AppState) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut every =
            tokio::time::interval(Duration::from_secs(state.config.sweep_interval_secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            run_sweeps(&state, db::now_ms()).await;
        }
    })
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
}
