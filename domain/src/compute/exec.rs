//! Inside the machine (the `/api` dialect "Exec / Background Jobs", "Agent-Ready Features" files):
//! commands run as root and answered at once, commands run in the background as exec jobs, and
//! files put and fetched. Only running machines; every command passes the destructive-command
//! guard first (`guard`), and every call is written to the audit log (who, machine, command,
//! exit code, duration). Output is capped at [`MAX_OUTPUT`] bytes per stream (`truncated` says
//! when more was printed).
//!
//! Background jobs are rows (`exec_jobs`), run by a task on the replica that accepted them, which
//! renews the row's lease while the command runs. Cancel marks the row and kills the command's
//! processes on the machine at once, whichever replica runs it. A replica that dies leaves its
//! rows' leases to run out; [`sweep`] (at start and with the periodic sweeps) kills what is left of
//! those commands and ends them `failed` with the reason, and starts pending jobs nobody took.
//! So no job stays `running` forever.
//!
//! How a job ends says who ended it: `cancelled` only when a person asked (`DELETE .../jobs/{id}`),
//! `timeout` when it ran past `timeout_seconds`, `failed` when Hangar could not run it or lost it
//! (the machine unreachable, the replica gone; `reason` says which), `done` otherwise.
//!
//! Transports: containers through the Docker API (exec with demultiplexed streams, the archive
//! API for files); VMs over SSH with the platform key (`driver::guest`). Machines on libvirt's test
//! driver are simulated and answer 409.

use std::time::{Duration, Instant};

use futures::future::join_all;
use tracing::instrument;

use crate::compute::guard;
use crate::compute::instances::{self, InstanceRow, InstanceState};
use crate::fleet::driver::{
    machine_name, Driver, DriverError, ExecOutput, ExecRequest, FileStream,
};
use crate::infra::audit;
use crate::infra::db::{self, rfc3339, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::AppState;

/// Most bytes kept of each of stdout and stderr (1 MiB).
pub const MAX_OUTPUT: usize = 1 << 20;
/// `timeout_seconds` when a request names none (the `/api` dialect).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Most bytes of a command line.
pub const MAX_COMMAND: usize = 64 * 1024;
/// Background jobs kept per machine in the list (the `/api` dialect: "up to 50").
pub const JOBS_LISTED: i64 = 50;
/// How long a running job's lease lasts; the runner renews it every third of that.
const LEASE_MS: i64 = 30_000;

use model::api::exec::BatchItem;
use model::compute::{CommandStatus, ExecResult};

/// A background job as its owner sees it (the `/api` dialect: `status` is one of `pending`,
/// `running`, `done`, `timeout`, `cancelled`; Hangar adds `failed` for a job it could not run or
/// lost, with the `reason`, so `cancelled` always means somebody cancelled it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ExecJob {
    pub job_id: String,
    pub vps_id: String,
    pub command: String,
    #[sqlx(try_from = "String")]
    pub status: CommandStatus,
    pub timeout_seconds: i64,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    #[sqlx(try_from = "i64")]
    pub truncated: Truncated,
    pub duration_ms: Option<i64>,
    /// Why it ended as it did, when that needs saying (cancelled, failed, or timed out).
    pub reason: Option<String>,
    #[serde(skip)]
    pub created_ms: i64,
    #[serde(skip)]
    pub finished_ms: Option<i64>,
    #[sqlx(skip)]
    pub created_at: String,
    #[sqlx(skip)]
    pub finished_at: Option<String>,
}

/// An exec request after its checks.
#[derive(Debug, Clone)]
pub struct Command {
    pub command: String,
    pub timeout_seconds: u64,
}

impl Command {
    /// Checks the text, the timeout (default 30 s, at most `exec_max_timeout_secs`) and the
    /// destructive-command guard; a refusal is audited and never reaches the machine.
    pub async fn check(
        state: &AppState,
        user_id: &str,
        instance_id: Option<&str>,
        command: &str,
        timeout_seconds: Option<u64>,
    ) -> ServiceResult<Command> {
        if command.trim().is_empty() {
            return Err(ServiceError::invalid("command is required"));
        }
        if command.len() > MAX_COMMAND {
            return Err(ServiceError::invalid("command is longer than 64 KiB"));
        }
        let max = state.config.exec_max_timeout_secs;
        let timeout_seconds = timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS.min(max));
        if !(1..=max).contains(&timeout_seconds) {
            return Err(ServiceError::invalid(format!(
                "timeout_seconds must be between 1 and {max}"
            )));
        }
        if let Err(refusal) = guard::check(command) {
            let mut tx = crate::infra::db::begin(&state.db).await?;
            let details = serde_json::json!({ "command": command, "refused": refusal.command });
            audit::record(
                &mut tx,
                Some(user_id),
                "exec.refused",
                "instance",
                instance_id,
                details,
            )
            .await?;
            tx.commit().await?;
            return Err(ServiceError::invalid(refusal.to_string()));
        }
        Ok(Command {
            command: command.to_owned(),
            timeout_seconds,
        })
    }
}

/// The caller's machine, running, on a node whose driver can reach inside it.
async fn reachable(
    state: &AppState,
    user_id: &str,
    id: &str,
) -> ServiceResult<(InstanceRow, std::sync::Arc<dyn Driver>)> {
    let inst = instances::get(&state.db, user_id, id).await?;
    if inst.state != InstanceState::Running || inst.transition.is_some() {
        let now = match inst.transition.as_deref() {
            Some(action) => format!("busy ({action} in progress)"),
            None => inst.state.vps().as_str().to_owned(),
        };
        return Err(ServiceError::Conflict(format!(
            "The machine is {now}; commands and files need it running"
        )));
    }
    let driver = crate::fleet::nodes::driver_for(state, inst.node_id.as_deref())
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    Ok((inst, driver))
}

fn inside_error(e: DriverError) -> ServiceError {
    e.for_content("File", "(exec or file)")
}

fn result_of(out: ExecOutput, started: Instant) -> ExecResult {
    ExecResult {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        exit_code: out.exit_code,
        duration_ms: started.elapsed().as_millis() as i64,
        truncated: out.truncated,
        timed_out: out.timed_out,
    }
}

async fn audit_run(
    db: &Pool,
    user_id: &str,
    instance_id: &str,
    command: &str,
    r: &ExecResult,
    job: Option<&str>,
) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let details = serde_json::json!({
        "command": command, "exit_code": r.exit_code, "duration_ms": r.duration_ms,
        "timed_out": r.timed_out, "job_id": job,
    });
    audit::record(
        &mut tx,
        Some(user_id),
        "exec.run",
        "instance",
        Some(instance_id),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Runs a command and answers when it has ended (or timed out and was killed), within the
/// replica's bounds on commands at once (`infra::gates`: 429 when the account runs its limit).
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, id))]
pub async fn run(
    state: &AppState,
    user_id: &str,
    id: &str,
    cmd: &Command,
) -> ServiceResult<ExecResult> {
    let _pass = state.gates.commands.enter(user_id).await?;
    run_entered(state, user_id, id, cmd).await
}

/// [`run`] for a caller that holds a commands pass already (a batch holds one for all of its
/// machines: it is bounded by `max_batch_size` itself).
async fn run_entered(
    state: &AppState,
    user_id: &str,
    id: &str,
    cmd: &Command,
) -> ServiceResult<ExecResult> {
    let (inst, driver) = reachable(state, user_id, id).await?;
    let req = ExecRequest {
        command: cmd.command.clone(),
        timeout: Duration::from_secs(cmd.timeout_seconds),
        max_output: MAX_OUTPUT,
        tag: db::new_id(),
    };
    let started = Instant::now();
    let out = driver
        .exec(&machine_name(&inst.id), &req)
        .await
        .map_err(inside_error)?;
    let result = result_of(out, started);
    audit_run(&state.db, user_id, id, &cmd.command, &result, None).await?;
    Ok(result)
}

/// `truncated` as stored (0/1) and shown (a boolean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Truncated(pub bool);

impl From<i64> for Truncated {
    fn from(v: i64) -> Self {
        Truncated(v != 0)
    }
}

const JOB_COLUMNS: &str = "id AS job_id, instance_id AS vps_id, command, status, timeout_seconds, stdout, stderr, exit_code, \
    truncated, duration_ms, reason, created_at AS created_ms, finished_at AS finished_ms";

fn shaped(mut job: ExecJob) -> ExecJob {
    job.created_at = rfc3339(job.created_ms);
    job.finished_at = job.finished_ms.map(rfc3339);
    job
}

/// Starts a command in the background; answers at once with the pending job.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, id))]
pub async fn start(
    state: &AppState,
    user_id: &str,
    id: &str,
    cmd: &Command,
) -> ServiceResult<ExecJob> {
    reachable(state, user_id, id).await?;
    crate::compute::quotas::check_background_command(&state.db, &state.config, user_id).await?;
    let on_machine: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM exec_jobs WHERE instance_id = $1 AND status IN ('pending', 'running')",
    )
    .bind(id)
    .fetch_one(&state.db)
    .await?;
    let cap = state.config.background_commands_per_machine;
    if on_machine >= cap {
        return Err(ServiceError::TooMany(format!(
            "This machine has {cap} background commands pending or running, the most allowed \
             on one machine; wait for one to finish or cancel one"
        )));
    }
    let job_id = db::new_id();
    let mut tx = crate::infra::db::begin(&state.db).await?;
    sqlx::query(
        "INSERT INTO exec_jobs (id, instance_id, user_id, command, timeout_seconds, status, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
    )
    .bind(&job_id)
    .bind(id)
    .bind(user_id)
    .bind(&cmd.command)
    .bind(cmd.timeout_seconds as i64)
    .bind(db::now_ms())
    .execute(&mut *tx)
    .await?;
    let details = serde_json::json!({ "command": cmd.command, "job_id": job_id });
    audit::record(
        &mut tx,
        Some(user_id),
        "exec.start",
        "instance",
        Some(id),
        details,
    )
    .await?;
    tx.commit().await?;
    let job = job(&state.db, user_id, id, &job_id).await?;
    tokio::spawn(run_job(state.clone(), job_id));
    Ok(job)
}

/// One of the caller's background jobs on their machine.
pub async fn job(db: &Pool, user_id: &str, id: &str, job_id: &str) -> ServiceResult<ExecJob> {
    let row: Option<ExecJob> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM exec_jobs WHERE id = $1 AND instance_id = $2 AND user_id = $3"
    ))
    .bind(job_id)
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.map(shaped).ok_or(ServiceError::NotFound("Job"))
}

/// The machine's most recent background jobs, newest first.
pub async fn jobs(db: &Pool, user_id: &str, id: &str) -> ServiceResult<Vec<ExecJob>> {
    instances::get(db, user_id, id).await?;
    let rows: Vec<ExecJob> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM exec_jobs WHERE instance_id = $1 AND user_id = $2
         ORDER BY created_at DESC, id DESC LIMIT {JOBS_LISTED}"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(shaped).collect())
}

/// Cancels a pending or running job: a pending one never starts; a running one's processes are
/// killed on the machine now. 409 when it has already ended.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, id, job_id))]
pub async fn cancel(
    state: &AppState,
    user_id: &str,
    id: &str,
    job_id: &str,
) -> ServiceResult<ExecJob> {
    let current = job(&state.db, user_id, id, job_id).await?;
    let now = db::now_ms();
    let never_started = sqlx::query(
        "UPDATE exec_jobs SET status = 'cancelled', reason = 'Cancelled before it started', finished_at = $1
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(job_id)
    .execute(&state.db)
    .await?;
    if never_started.rows_affected() == 0 {
        let marked = sqlx::query(
            "UPDATE exec_jobs SET cancel_requested = 1 WHERE id = $1 AND status = 'running'",
        )
        .bind(job_id)
        .execute(&state.db)
        .await?;
        if marked.rows_affected() == 0 {
            return Err(ServiceError::Conflict(format!(
                "The job has already ended ({})",
                current.status
            )));
        }
        if let Some(inst) = instances::load(&state.db, id).await? {
            if let Some(driver) =
                crate::fleet::nodes::driver_for(state, inst.node_id.as_deref()).await?
            {
                driver
                    .exec_kill(&machine_name(&inst.id), job_id)
                    .await
                    .map_err(inside_error)?;
            }
        }
    }
    let mut tx = crate::infra::db::begin(&state.db).await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "exec.cancel",
        "instance",
        Some(id),
        serde_json::json!({ "job_id": job_id }),
    )
    .await?;
    tx.commit().await?;
    job(&state.db, user_id, id, job_id).await
}

/// Runs a background job to its end on this replica, renewing its lease meanwhile.
async fn run_job(state: AppState, job_id: String) {
    if let Err(e) = run_job_inner(&state, &job_id).await {
        tracing::warn!(job = %job_id, error = %e, "exec job failed");
        let _ = sqlx::query(
            "UPDATE exec_jobs SET status = 'failed', reason = $1, finished_at = $2, lease_until = NULL WHERE id = $3 AND status IN ('pending', 'running')",
        )
        .bind(format!("Could not run the command: {e}"))
        .bind(db::now_ms())
        .bind(&job_id)
        .execute(&state.db)
        .await;
    }
}

async fn run_job_inner(state: &AppState, job_id: &str) -> ServiceResult<()> {
    let now = db::now_ms();
    let claimed = sqlx::query(
        "UPDATE exec_jobs SET status = 'running', started_at = $1, lease_until = $2 WHERE id = $3 AND status = 'pending'",
    )
    .bind(now)
    .bind(now + LEASE_MS)
    .bind(job_id)
    .execute(&state.db)
    .await?;
    if claimed.rows_affected() == 0 {
        return Ok(()); // cancelled before it started, or another replica took it
    }
    let (instance_id, user_id, command, timeout): (String, String, String, i64) = sqlx::query_as(
        "SELECT instance_id, user_id, command, timeout_seconds FROM exec_jobs WHERE id = $1",
    )
    .bind(job_id)
    .fetch_one(&state.db)
    .await?;
    let (inst, driver) = reachable(state, &user_id, &instance_id).await?;
    let req = ExecRequest {
        command: command.clone(),
        timeout: Duration::from_secs(timeout as u64),
        max_output: MAX_OUTPUT,
        tag: job_id.to_owned(),
    };
    let started = Instant::now();
    let heartbeat = tokio::spawn(renew_lease(state.db.clone(), job_id.to_owned()));
    let out = driver.exec(&machine_name(&inst.id), &req).await;
    heartbeat.abort();
    let result = result_of(out.map_err(inside_error)?, started);
    finish_job(&state.db, job_id, &result).await?;
    audit_run(
        &state.db,
        &user_id,
        &instance_id,
        &command,
        &result,
        Some(job_id),
    )
    .await
}

async fn renew_lease(db: Pool, job_id: String) {
    loop {
        tokio::time::sleep(Duration::from_millis((LEASE_MS / 3) as u64)).await;
        let _ = sqlx::query(
            "UPDATE exec_jobs SET lease_until = $1 WHERE id = $2 AND status = 'running'",
        )
        .bind(db::now_ms() + LEASE_MS)
        .bind(&job_id)
        .execute(&db)
        .await;
    }
}

/// Records how a job ended: `cancelled` when it was asked to stop, `timeout` when it ran out of
/// time, else `done` with its exit code.
async fn finish_job(db: &Pool, job_id: &str, r: &ExecResult) -> ServiceResult<()> {
    sqlx::query(
        "UPDATE exec_jobs SET
            status = CASE WHEN cancel_requested = 1 THEN 'cancelled' WHEN $1 = 1 THEN 'timeout' ELSE 'done' END,
            reason = CASE WHEN cancel_requested = 1 THEN 'Cancelled by request' WHEN $1 = 1 THEN 'Killed after timeout_seconds' ELSE NULL END,
            stdout = $2, stderr = $3, exit_code = $4, truncated = $5, duration_ms = $6, finished_at = $7, lease_until = NULL
         WHERE id = $8 AND status = 'running'",
    )
    .bind(i64::from(r.timed_out))
    .bind(&r.stdout)
    .bind(&r.stderr)
    .bind(r.exit_code)
    .bind(i64::from(r.truncated))
    .bind(r.duration_ms)
    .bind(db::now_ms())
    .bind(job_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends jobs whose replica died (lease run out): their processes are killed on the machine and
/// they become `failed` with the reason. Starts pending jobs nobody took within a lease.
/// Returns how many jobs it ended.
pub async fn sweep(state: &AppState, now: i64) -> ServiceResult<usize> {
    let orphans: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, instance_id FROM exec_jobs WHERE status = 'running' AND lease_until < $1",
    )
    .bind(now)
    .fetch_all(&state.db)
    .await?;
    for (job_id, instance_id) in &orphans {
        if let Some(inst) = instances::load(&state.db, instance_id).await? {
            if let Ok(Some(driver)) =
                crate::fleet::nodes::driver_for(state, inst.node_id.as_deref()).await
            {
                let _ = driver.exec_kill(&machine_name(&inst.id), job_id).await;
            }
        }
        sqlx::query(
            "UPDATE exec_jobs SET status = 'failed', finished_at = $1, lease_until = NULL,
                reason = 'Hangar restarted while the command ran; it was stopped'
             WHERE id = $2 AND status = 'running' AND lease_until < $1",
        )
        .bind(now)
        .bind(job_id)
        .execute(&state.db)
        .await?;
    }
    let waiting: Vec<String> =
        sqlx::query_scalar("SELECT id FROM exec_jobs WHERE status = 'pending' AND created_at < $1")
            .bind(now - LEASE_MS)
            .fetch_all(&state.db)
            .await?;
    for job_id in waiting {
        tokio::spawn(run_job(state.clone(), job_id));
    }
    // Finished jobs' records (their output) are kept `exec_jobs_retention_days`, then go.
    let retention = state.config.exec_jobs_retention_days * 24 * 60 * 60 * 1000;
    sqlx::query("DELETE FROM exec_jobs WHERE finished_at IS NOT NULL AND finished_at < $1")
        .bind(now - retention)
        .execute(&state.db)
        .await?;
    Ok(orphans.len())
}

/// Runs one command on several machines in parallel (the `/api` dialect batch exec). Unknown or
/// foreign ids get their own 404 entry; the others still run.
pub async fn batch(
    state: &AppState,
    user_id: &str,
    ids: &[String],
    command: &str,
    timeout_seconds: Option<u64>,
    background: bool,
) -> ServiceResult<Vec<BatchItem>> {
    if ids.is_empty() || ids.len() > state.config.max_batch_size {
        return Err(ServiceError::invalid(format!(
            "ids: 1 to {} machines",
            state.config.max_batch_size
        )));
    }
    // The command is checked once, before anything runs anywhere (a refusal is audited for
    // the batch, not for any one machine: some ids may not be the caller's).
    let cmd = Command::check(state, user_id, None, command, timeout_seconds).await?;
    let _pass = match background {
        true => None,
        false => Some(state.gates.commands.enter(user_id).await?),
    };
    let runs = ids.iter().map(|id| {
        let cmd = cmd.clone();
        async move {
            let outcome = if background {
                start(state, user_id, id, &cmd)
                    .await
                    .map(|j| (None, Some(j)))
            } else {
                run_entered(state, user_id, id, &cmd)
                    .await
                    .map(|r| (Some(r), None))
            };
            match outcome {
                Ok((result, job)) => BatchItem {
                    vps_id: id.clone(),
                    status: if background { 202 } else { 200 },
                    result,
                    job_id: job.as_ref().map(|j| j.job_id.clone()),
                    job_status: job.map(|j| j.status),
                    error: None,
                },
                Err(e) => BatchItem {
                    vps_id: id.clone(),
                    status: e.status().as_u16(),
                    result: None,
                    job_id: None,
                    job_status: None,
                    error: Some(match e {
                        ServiceError::Internal(_) => "Internal error".into(),
                        other => other.to_string(),
                    }),
                },
            }
        }
    });
    Ok(join_all(runs).await)
}

/// Largest file name (path) accepted.
const MAX_PATH: usize = 4096;

fn check_path(path: &str) -> ServiceResult<()> {
    if !path.starts_with('/') || path.len() > MAX_PATH || path.contains('\0') || path.ends_with('/')
    {
        return Err(ServiceError::invalid(
            "path must be an absolute path to a file inside the machine (e.g. /root/hello.txt)",
        ));
    }
    Ok(())
}

/// Writes a file inside the caller's running machine (replacing one there), streamed: at most
/// `file_max_bytes` (413 beyond, before anything is written).
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, id, path))]
pub async fn put_file(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
    file: FileStream,
) -> ServiceResult<()> {
    check_path(path)?;
    let max = state.config.file_max_bytes;
    if file.size > max {
        return Err(ServiceError::TooLarge(format!(
            "The file is larger than {max} bytes"
        )));
    }
    let (inst, driver) = reachable(state, user_id, id).await?;
    let size = file.size;
    driver
        .put_file(&machine_name(&inst.id), path, file)
        .await
        .map_err(|e| match e {
            DriverError::NotFound(m) => {
                ServiceError::Conflict(format!("{m} does not exist in the machine"))
            }
            other => inside_error(other),
        })?;
    let mut tx = crate::infra::db::begin(&state.db).await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "file.put",
        "instance",
        Some(id),
        serde_json::json!({ "path": path, "bytes": size }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Reads a file from inside the caller's running machine (404 when missing, 413 beyond
/// `file_max_bytes`), streamed.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, id, path))]
pub async fn get_file(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
) -> ServiceResult<FileStream> {
    check_path(path)?;
    let (inst, driver) = reachable(state, user_id, id).await?;
    driver
        .get_file(&machine_name(&inst.id), path, state.config.file_max_bytes)
        .await
        .map_err(inside_error)
}
