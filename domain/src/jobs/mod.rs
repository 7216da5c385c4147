//! The job runner: claims due jobs from the queue (`infra::queue`) and hands each kind to the room
//! that owns it — compute's transitions to `compute::executor`, balance notices to
//! `compute::notices`. A job that keeps failing is retried with backoff, then given up; giving up
//! asks the owner to leave things in an honest state.

use std::time::Duration;

use tracing::Instrument;

use crate::compute::{executor, notices};
use crate::infra::db;
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::queue::{self, Failure, JobKind, JobRow, JobState, MAX_ATTEMPTS};
use crate::AppState;

/// Claims and runs one job. Returns whether there was one.
pub async fn run_once(state: &AppState) -> ServiceResult<bool> {
    let lease = state.config.job_lease_secs * 1000;
    let Some(job) = queue::claim(&state.db, db::now_ms(), lease).await? else {
        return Ok(false);
    };
    // Every line logged while the job runs names its machine, the machine's owner and node, so
    // a failure is traced from the log alone.
    let node: Option<String> = match &job.instance_id {
        Some(id) => sqlx::query_scalar(
            "SELECT n.name FROM instances i JOIN nodes n ON n.id = i.node_id WHERE i.id = $1",
        )
        .bind(id)
        .fetch_optional(&state.db)
        .await
        .ok()
        .flatten(),
        None => None,
    };
    let span = tracing::info_span!(
        "job",
        job = %job.id,
        kind = %job.kind,
        machine = job.instance_id.as_deref().unwrap_or("-"),
        user = job.user_id.as_deref().unwrap_or("-"),
        node = node.as_deref().unwrap_or("-"),
    );
    run_claimed(state, job).instrument(span).await
}

async fn run_claimed(state: &AppState, job: JobRow) -> ServiceResult<bool> {
    let started = std::time::Instant::now();
    // Once this replica stops, the job in hand gets `shutdown_grace_secs` to finish; then it is
    // handed back (dropping the driver call mid-way is safe: drivers are idempotent, and the job
    // runs again from the start on whichever replica claims it).
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let handed_back = async {
        state.lifecycle.stopping().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = dispatch(state, &job) => result,
        _ = handed_back => {
            tracing::info!(job = %job.id, kind = %job.kind, "stopping: job handed back to the queue");
            queue::hand_back(&state.db, &job).await?;
            return Ok(true);
        }
    };
    let kind = job.kind.as_str();
    state.metrics.observe(
        "hangar_job_duration_seconds",
        &[("kind", kind)],
        started.elapsed().as_secs_f64(),
    );
    let outcome = match &result {
        Ok(()) => "done",
        Err(Failure::Retry(_)) if job.attempts < MAX_ATTEMPTS => "retry",
        Err(_) => "failed",
    };
    state
        .metrics
        .inc("hangar_jobs_total", &[("kind", kind), ("outcome", outcome)]);
    if result.is_err() && job.kind != JobKind::Mail {
        state
            .metrics
            .inc("hangar_driver_errors_total", &[("kind", kind)]);
    }
    match result {
        Ok(()) => {
            persist(state, || {
                queue::finish(&state.db, &job, JobState::Done, None)
            })
            .await?;
        }
        Err(Failure::Retry(msg)) if job.attempts < MAX_ATTEMPTS => {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %msg, "job failed; will retry");
            persist(state, || queue::retry_later(&state.db, &job, &msg)).await?;
        }
        Err(Failure::Retry(msg)) | Err(Failure::Permanent(msg)) => {
            tracing::warn!(job = %job.id, kind = %job.kind, error = %msg, "job failed");
            if job.kind != JobKind::Mail {
                persist(state, || executor::give_up(state, &job, &msg)).await?;
            }
            persist(state, || {
                queue::finish(&state.db, &job, JobState::Failed, Some(&msg))
            })
            .await?;
        }
    }
    Ok(true)
}

/// Records a job's outcome, waiting out a database outage (0.5 s doubling to 5 s, for at most
/// the job's lease): dropping the outcome would leave the job `running` until its lease expires
/// (five minutes by default) before anyone tried it again — found by the outage test, where a
/// create cut off by the outage kept its machine provisioning long after the database was back.
async fn persist<F, Fut>(state: &AppState, write: F) -> ServiceResult<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ServiceResult<()>>,
{
    let give_up_at =
        std::time::Instant::now() + Duration::from_secs(state.config.job_lease_secs.max(1) as u64);
    let mut wait = Duration::from_millis(500);
    loop {
        match write().await {
            Err(ServiceError::Unavailable) if std::time::Instant::now() + wait < give_up_at => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

async fn dispatch(state: &AppState, job: &JobRow) -> Result<(), Failure> {
    match job.kind {
        JobKind::Mail => {
            let notice = job
                .payload_str("template")
                .parse::<notices::Notice>()
                .map_err(Failure::Permanent)?;
            let user = job.user_id.as_deref().unwrap_or_default();
            Ok(notices::send(&state.db, &state.config, user, notice).await?)
        }
        _ => executor::execute(state, job).await,
    }
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
///
/// When the queue cannot be read (the database is unreachable) the worker backs off, doubling
/// its wait from 0.5 s to 5 s (short, so a blip of lock contention does not stall jobs), and
/// resumes by itself once a claim works again; claimed jobs whose lease runs out meanwhile are
/// claimed again, by this replica or another. Returns once the replica stops (after the job in
/// hand, see `run_once`).
pub async fn worker(state: AppState) {
    const IDLE: Duration = Duration::from_millis(500);
    let mut wait = IDLE;
    while !state.lifecycle.is_stopping() {
        match run_once(&state).await {
            Ok(true) => {
                wait = IDLE;
                continue;
            }
            Ok(false) => wait = IDLE,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "job worker error");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        tokio::select! {
            _ = tokio::time::timeout(wait, state.jobs_wake.notified()) => {}
            _ = state.lifecycle.stopping() => {}
        }
    }
}
