//! The leased job queue: work that outlives a request, as rows of the `jobs` table.
//!
//! A job is enqueued in the same transaction as the state change that needs it. Workers claim one
//! with a conditional `UPDATE` that sets a lease (`locked_until`); a worker that dies leaves the
//! lease to expire and another worker (after a restart, or another replica) takes the job over.
//! That is safe because every job is idempotent (compute's drivers document it per method).
//! Retries back off exponentially. The queue knows nothing of what a job does: `crate::jobs`
//! hands each [`JobKind`] to the room that owns it.

use tracing::instrument;

use crate::infra::db::{self, rfc3339, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use model::api::instances::Operation;

/// Attempts before a job that keeps failing is given up.
pub const MAX_ATTEMPTS: i64 = 5;

/// What a job does. One text form each, stored in `jobs.kind` and shown as the `/v1/instances` dialect's
/// operation `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Create,
    Start,
    Stop,
    Restart,
    Delete,
    SnapshotCreate,
    SnapshotRestore,
    SnapshotDelete,
    /// A balance notice to a user (payload `{"template": ...}`).
    Mail,
}

impl JobKind {
    pub const ALL: [JobKind; 9] = [
        JobKind::Create,
        JobKind::Start,
        JobKind::Stop,
        JobKind::Restart,
        JobKind::Delete,
        JobKind::SnapshotCreate,
        JobKind::SnapshotRestore,
        JobKind::SnapshotDelete,
        JobKind::Mail,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Create => "create",
            JobKind::Start => "start",
            JobKind::Stop => "stop",
            JobKind::Restart => "restart",
            JobKind::Delete => "delete",
            JobKind::SnapshotCreate => "snapshot.create",
            JobKind::SnapshotRestore => "snapshot.restore",
            JobKind::SnapshotDelete => "snapshot.delete",
            JobKind::Mail => "mail",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for JobKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown job kind {s}"))
    }
}

/// Where a job is in its life (`jobs.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

impl TryFrom<String> for JobState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.as_str() {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            other => return Err(format!("unknown job state {other}")),
        })
    }
}

/// Enqueues a job inside `tx`; returns its id (the operation id).
pub async fn enqueue(
    tx: &mut Tx<'_>,
    kind: JobKind,
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
    .bind(kind.as_str())
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
    kind: JobKind,
    predicate: &str,
    now: i64,
) -> ServiceResult<u64> {
    let id_sql = db::new_id_sql(db::backend_of(tx));
    let done = sqlx::query(&format!(
        "INSERT INTO jobs (id, kind, user_id, instance_id, payload, state, run_at, created_at, updated_at)
         SELECT {id_sql}, $2, user_id, id, '{{}}', 'queued', $3, $3, $3 FROM instances WHERE {predicate}"
    ))
    .bind(now)
    .bind(kind.as_str())
    .bind(db::now_ms().min(now))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: JobKind,
    pub user_id: Option<String>,
    pub instance_id: Option<String>,
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub attempts: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl JobRow {
    /// A string field of the payload (`snapshot`, `template`), empty when absent.
    pub fn payload_str(&self, field: &str) -> String {
        serde_json::from_str::<serde_json::Value>(&self.payload)
            .ok()
            .and_then(|v| v.get(field).and_then(|s| s.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}

const COLUMNS: &str =
    "id, kind, user_id, instance_id, payload, state, attempts, error, created_at, updated_at";

/// Claims the next due job (or one whose lease ran out), if any.
pub async fn claim(db: &Pool, now: i64, lease_ms: i64) -> ServiceResult<Option<JobRow>> {
    let due = "((state = 'queued' AND run_at <= $1) OR (state = 'running' AND locked_until < $1))";
    Ok(sqlx::query_as(&format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1,
            started_at = $1
         WHERE id = (SELECT id FROM jobs WHERE {due} ORDER BY run_at, created_at LIMIT 1) AND {due}
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(now + lease_ms)
    .fetch_optional(db)
    .await?)
}

/// Gives a running job back to the queue untouched by this attempt (this replica is stopping):
/// due at once for any replica, and the attempt not counted.
pub async fn hand_back(db: &Pool, job: &JobRow) -> ServiceResult<()> {
    sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = attempts - 1, locked_until = NULL, run_at = $1, updated_at = $1
         WHERE id = $2 AND state = 'running'",
    )
    .bind(db::now_ms())
    .bind(&job.id)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends a job for good: `Done`, or `Failed` with its last error.
pub async fn finish(
    db: &Pool,
    job: &JobRow,
    state: JobState,
    error: Option<&str>,
) -> ServiceResult<()> {
    sqlx::query("UPDATE jobs SET state = $1, error = $2, locked_until = NULL, updated_at = $3 WHERE id = $4")
        .bind(state.as_str())
        .bind(error)
        .bind(db::now_ms())
        .bind(&job.id)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes back `kind` jobs of an instance that have not started (a delete supersedes a create
/// that never ran). Returns whether one is running right now, which the caller must wait for.
pub async fn supersede(db: &Pool, instance_id: &str, kind: JobKind) -> ServiceResult<bool> {
    let now = db::now_ms();
    sqlx::query(
        "UPDATE jobs SET state = 'done', error = 'Superseded', locked_until = NULL, updated_at = $1
         WHERE instance_id = $2 AND kind = $3 AND state = 'queued'",
    )
    .bind(now)
    .bind(instance_id)
    .bind(kind.as_str())
    .execute(db)
    .await?;
    let running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE instance_id = $1 AND kind = $2 AND state = 'running' AND locked_until >= $3",
    )
    .bind(instance_id)
    .bind(kind.as_str())
    .bind(now)
    .fetch_one(db)
    .await?;
    Ok(running > 0)
}

/// Puts a job back in the queue, due after a backoff that doubles with each attempt.
pub async fn retry_later(db: &Pool, job: &JobRow, error: &str) -> ServiceResult<()> {
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

/// One of the user's operations; mail jobs are not operations.
#[instrument(skip(db))]
pub async fn operation(db: &Pool, user_id: &str, id: &str) -> ServiceResult<Operation> {
    let job: JobRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE id = $1 AND user_id = $2 AND kind <> 'mail'"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("Operation"))?;
    let status = match job.state {
        JobState::Queued => "pending",
        JobState::Running => "running",
        JobState::Done => "succeeded",
        JobState::Failed => "failed",
    };
    Ok(Operation {
        id: job.id,
        kind: job.kind.to_string(),
        status: status.into(),
        target_id: job.instance_id,
        attempts: job.attempts,
        // A retried job's last error is shown only once it has failed for good.
        error: if job.state == JobState::Failed {
            job.error
        } else {
            None
        },
        created_at: rfc3339(job.created_at),
        updated_at: rfc3339(job.updated_at),
    })
}

/// Why a job did not finish, as its owner tells the runner.
#[derive(Debug)]
pub enum Failure {
    /// Something it depends on failed (a node, the database); try again later.
    Retry(String),
    /// The job cannot succeed (a missing image, a missing machine); give up now.
    Permanent(String),
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

/// Which jobs the operators' tasks view shows.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// `queued`, `running`, `done` or `failed`.
    pub state: Option<String>,
    /// A machine's id, or part of its name or its owner's username (any case).
    pub query: Option<String>,
    pub limit: i64,
}

/// Jobs, newest first, with their machine, its owner and its node by name.
pub async fn tasks(db: &Pool, f: &TaskFilter) -> ServiceResult<Vec<model::compute::Task>> {
    if let Some(state) = &f.state {
        if !["queued", "running", "done", "failed"].contains(&state.as_str()) {
            return Err(ServiceError::invalid(
                "state is one of queued, running, done and failed",
            ));
        }
    }
    let (query, pattern) = crate::infra::db::search_terms(f.query.as_deref().unwrap_or_default())?;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        kind: String,
        state: String,
        attempts: i64,
        instance_id: Option<String>,
        machine: Option<String>,
        owner_id: Option<String>,
        owner: Option<String>,
        node: Option<String>,
        created_at: i64,
        started_at: Option<i64>,
        updated_at: i64,
        error: Option<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT j.id, j.kind, j.state, j.attempts, j.instance_id, i.name AS machine,
                COALESCE(i.user_id, j.user_id) AS owner_id, u.username AS owner, n.name AS node, j.created_at, j.started_at, j.updated_at, j.error
         FROM jobs j
         LEFT JOIN instances i ON i.id = j.instance_id
         LEFT JOIN users u ON u.id = COALESCE(i.user_id, j.user_id)
         LEFT JOIN nodes n ON n.id = i.node_id
         WHERE ($1 = '' OR j.state = $1)
           AND ($2 = '' OR j.instance_id = $2 OR LOWER(i.name) LIKE $3 ESCAPE '\\'
                OR LOWER(u.username) LIKE $3 ESCAPE '\\')
         ORDER BY j.created_at DESC, j.id DESC LIMIT $4",
    )
    .bind(f.state.clone().unwrap_or_default())
    .bind(&query)
    .bind(&pattern)
    .bind(f.limit.clamp(1, 200))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let finished = matches!(r.state.as_str(), "done" | "failed");
            model::compute::Task {
                duration_ms: r
                    .started_at
                    .filter(|_| finished)
                    .map(|s| (r.updated_at - s).max(0)),
                started_at: r.started_at.map(db::rfc3339),
                created_at: db::rfc3339(r.created_at),
                id: r.id,
                kind: r.kind,
                state: r.state,
                attempts: r.attempts,
                machine_id: r.instance_id,
                machine: r.machine,
                owner_id: r.owner_id,
                owner: r.owner,
                node: r.node,
                error: r.error,
            }
        })
        .collect())
}
