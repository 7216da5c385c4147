//! The `/api` dialect inside the machine: exec (sync and background), background jobs, files, and
//! batch exec. Thin: the rules (running machines only, the destructive-command guard, output caps,
//! audit) are `domain::compute::exec`'s.

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use domain::compute::exec::{self, Command, ExecJob};
use domain::AppState;
use model::compute::ExecResult;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use crate::{
    api::ErrorBody,
    http::{
        auth::Caller,
        error::{ApiJson, Result},
        transfers,
    },
};
use model::api::exec::{BatchExecBody, BatchItem, ExecBody, FileQuery, StartedJob};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(exec_command))
        .routes(routes!(list_jobs))
        .routes(routes!(get_job, cancel_job))
        // Files have their own limit (`file_max_bytes`), checked in the handler.
        .routes(routes!(put_file, get_file).layer(DefaultBodyLimit::disable()))
        .routes(routes!(batch_exec))
}

#[derive(Serialize, ToSchema)]
pub struct BatchExecResults {
    pub results: Vec<BatchItem>,
}

/// Run a shell command inside a running VPS, as root. Sync (default): 200 with `stdout`,
/// `stderr`, `exit_code`, `duration_ms` (a command past its timeout is killed: `timed_out`,
/// `exit_code` null). `background: true`: 202 with a job id to poll. Destructive commands are
/// refused (400, naming what was refused); output is capped at 1 MiB per stream (`truncated`).
#[utoipa::path(post, path = "/api/vps/{id}/exec", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ExecBody,
    responses((status = 200, body = ExecResult), (status = 202, body = StartedJob),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn exec_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExecBody>,
) -> Result<Response> {
    let user = &caller.user.id;
    // Foreign and unknown machines are 404 before anything else is said about the command.
    domain::compute::instances::get(&state.db, user, &id).await?;
    let cmd = Command::check(&state, user, Some(&id), &body.command, body.timeout_seconds).await?;
    if body.background {
        let job = exec::start(&state, user, &id, &cmd).await?;
        let started = StartedJob {
            job_id: job.job_id,
            status: job.status,
            timeout_seconds: job.timeout_seconds,
        };
        return Ok((StatusCode::ACCEPTED, ApiJson(started)).into_response());
    }
    Ok(ApiJson(exec::run(&state, user, &id, &cmd).await?).into_response())
}

/// The VPS's most recent background jobs (up to 50), newest first.
#[utoipa::path(get, path = "/api/vps/{id}/jobs", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<ExecJob>), (status = 404, body = ErrorBody)))]
async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<ExecJob>>> {
    Ok(ApiJson(exec::jobs(&state.db, &caller.user.id, &id).await?))
}

/// A background job: `status` is `pending`, `running`, `done`, `timeout`, `cancelled` (by
/// a person) or `failed` (Hangar could not run it or lost it; `reason` says why).
#[utoipa::path(get, path = "/api/vps/{id}/jobs/{job_id}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), ("job_id" = String, Path)),
    responses((status = 200, body = ExecJob), (status = 404, body = ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, job_id)): Path<(String, String)>,
) -> Result<ApiJson<ExecJob>> {
    Ok(ApiJson(
        exec::job(&state.db, &caller.user.id, &id, &job_id).await?,
    ))
}

/// Cancel a pending or running job: its processes are killed inside the machine. 409 when it
/// has already ended.
#[utoipa::path(delete, path = "/api/vps/{id}/jobs/{job_id}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), ("job_id" = String, Path)),
    responses((status = 200, body = ExecJob), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, job_id)): Path<(String, String)>,
) -> Result<ApiJson<ExecJob>> {
    Ok(ApiJson(
        exec::cancel(&state, &caller.user.id, &id, &job_id).await?,
    ))
}

/// Upload a file into a running VPS: the raw body is the content (up to `file_max_bytes`,
/// default 64 MiB; 413 beyond). The file's directory must exist. 204.
#[utoipa::path(put, path = "/api/vps/{id}/files", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), FileQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn put_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    body: Body,
) -> Result<StatusCode> {
    let (_pass, data) = transfers::receive(&state, &caller.user.id, body).await?;
    exec::put_file(&state, &caller.user.id, &id, &q.path, data).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Download a file from a running VPS: its raw bytes (`application/octet-stream`). 404 when it
/// does not exist, 413 beyond `file_max_bytes`.
#[utoipa::path(get, path = "/api/vps/{id}/files", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), FileQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Result<Response> {
    let pass = state.gates.files.enter(&caller.user.id).await?;
    let data = exec::get_file(&state, &caller.user.id, &id, &q.path).await?;
    Ok(transfers::send(pass, data, None))
}

/// Run one command on several VPS in parallel. One result per id, in request order, each with
/// its own `status` (a foreign or unknown id is a 404 entry; the others still run). 200 when every
/// item has the same status, else 207. `background: true` starts one job per machine.
#[utoipa::path(post, path = "/api/vps/batch/exec", tag = "compute", security(("bearer" = [])),
    request_body = BatchExecBody,
    responses((status = 200, body = BatchExecResults), (status = 207, body = BatchExecResults),
        (status = 400, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn batch_exec(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchExecBody>,
) -> Result<(StatusCode, ApiJson<BatchExecResults>)> {
    let results = exec::batch(
        &state,
        &caller.user.id,
        &body.ids,
        &body.command,
        body.timeout_seconds,
        body.background,
    )
    .await?;
    let uniform = results.windows(2).all(|w| w[0].status == w[1].status);
    let status = if uniform {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, ApiJson(BatchExecResults { results })))
}
