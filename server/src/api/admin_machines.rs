//! Every machine, for operators, under `/api/admin/machines`: find one by name, id or owner,
//! and start, stop or delete it whoever owns it. An operator's action is audited as theirs (the
//! owner's id in its details), and a stopped or deleted machine's `reason` tells its owner who
//! did it and why.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use domain::compute::instances::{self, Action};
use domain::AppState;
use model::compute::Vps;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::AdminCaller,
        error::{ApiJson, Result},
    },
};
use model::api::admin_machines::{MachinePage, MachineQuery, OperatorAction, TaskQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_machines))
        .routes(routes!(act))
        .routes(routes!(tasks))
        .routes(routes!(effective_config))
}

/// The running server's configuration: every key, its value (secrets redacted) and where it came
/// from (`default`, an environment variable, or the file).
#[utoipa::path(get, path = "/api/admin/config", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<model::api::admin::Setting>)))]
async fn effective_config(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<ApiJson<Vec<model::api::admin::Setting>>> {
    Ok(ApiJson(state.config.settings.clone()))
}

/// Background jobs (creates, power actions, snapshots, mails), newest first: each with its
/// machine, owner and node, how long its last attempt took, and the error it ended with — a
/// failed create traced in one look.
#[utoipa::path(get, path = "/api/admin/tasks", tag = "admin", security(("bearer" = [])),
    params(TaskQuery),
    responses((status = 200, body = Vec<model::compute::Task>), (status = 400, body = ErrorBody)))]
async fn tasks(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(q): Query<TaskQuery>,
) -> Result<ApiJson<Vec<model::compute::Task>>> {
    let filter = domain::infra::queue::TaskFilter {
        state: q.state.filter(|s| !s.is_empty()),
        query: q.q,
        limit: q.limit.unwrap_or(50),
    };
    Ok(ApiJson(
        domain::infra::queue::tasks(&state.db, &filter).await?,
    ))
}

/// Every customer's machines, newest first, with owner, node, state and the failure reason.
#[utoipa::path(get, path = "/api/admin/machines", tag = "admin", security(("bearer" = [])),
    params(MachineQuery),
    responses((status = 200, body = MachinePage), (status = 400, body = ErrorBody)))]
async fn list_machines(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(q): Query<MachineQuery>,
) -> Result<ApiJson<MachinePage>> {
    let (data, total) = instances::list_all(
        &state.db,
        q.q.as_deref().unwrap_or_default(),
        q.state.as_deref(),
        q.limit.unwrap_or(50),
        q.offset.unwrap_or(0),
    )
    .await?;
    Ok(ApiJson(MachinePage { data, total }))
}

/// Start, stop or delete anyone's machine. 202 with the machine as it is now; 409 while another
/// action runs or when its state does not allow it.
#[utoipa::path(post, path = "/api/admin/machines/{id}/{action}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("action" = String, Path, description = "`start`, `stop` or `delete`")),
    request_body = OperatorAction,
    responses((status = 202, body = Vps), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn act(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path((id, action)): Path<(String, String)>,
    ApiJson(body): ApiJson<OperatorAction>,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    let action = match action.as_str() {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "delete" => Action::Delete,
        _ => {
            return Err(domain::infra::error::ServiceError::NotFound("Action").into());
        }
    };
    let why = body.why.trim();
    if why.is_empty() || why.chars().count() > 300 {
        return Err(domain::infra::error::ServiceError::invalid(
            "Say why in 1 to 300 characters: the machine's owner reads it",
        )
        .into());
    }
    let (inst, _) = instances::act_as_operator(&state, &admin.user.id, &id, action, why).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(inst.to_vps())))
}
