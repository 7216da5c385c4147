//! The audit log, read back: each user's own activity, and everyone's for operators.

use axum::extract::{Query, State};
use domain::infra::audit;
use domain::AppState;
use model::accounts::AuditEvent;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::{AdminCaller, Caller},
        error::{ApiJson, AppError, Result},
    },
};
use model::api::audit::{ActivityQuery, AdminActivityQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_activity))
        .routes(routes!(all_activity))
}

fn filter(
    q: ActivityQuery,
    actor_id: Option<String>,
    concerning: Option<String>,
) -> Result<audit::Filter> {
    let before = q.before.filter(|s| !s.is_empty());
    if before
        .as_deref()
        .is_some_and(|b| !domain::infra::db::is_id(b))
    {
        return Err(AppError::bad_request(
            "before must be the id of an entry from the previous page",
        ));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=audit::MAX_LIMIT).contains(&limit) {
        return Err(AppError::bad_request(format!(
            "limit must be between 1 and {}",
            audit::MAX_LIMIT
        )));
    }
    Ok(audit::Filter {
        actor_id,
        actor_username: None,
        action: q.action.filter(|s| !s.is_empty()),
        target_id: q.target_id.filter(|s| !s.is_empty()),
        concerning,
        before,
        limit,
    })
}

async fn read(state: &AppState, f: audit::Filter) -> Result<ApiJson<Vec<AuditEvent>>> {
    let entries = audit::list(&state.db, &f)
        .await
        .map_err(domain::infra::error::ServiceError::from)?;
    Ok(ApiJson(entries.iter().map(audit::Entry::to_api).collect()))
}

/// What you did, newest first: rentals, payments, machines, tokens, pools, consoles… Everything
/// that changes money, access or machines is recorded in the same transaction as the change.
#[utoipa::path(get, path = "/api/audit", tag = "audit", security(("bearer" = [])),
    params(ActivityQuery),
    responses((status = 200, body = Vec<AuditEvent>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn my_activity(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ActivityQuery>,
) -> Result<ApiJson<Vec<AuditEvent>>> {
    read(&state, filter(q, Some(caller.user.id.clone()), None)?).await
}

/// Everyone's activity (operators), filterable by user, action prefix and object.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", security(("bearer" = [])),
    params(AdminActivityQuery),
    responses((status = 200, body = Vec<AuditEvent>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn all_activity(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(q): Query<AdminActivityQuery>,
) -> Result<ApiJson<Vec<AuditEvent>>> {
    let user = q.user_id.filter(|s| !s.is_empty());
    let concerning = q.concerning.filter(|s| !s.is_empty());
    let rest = ActivityQuery {
        action: q.action,
        target_id: q.target_id,
        before: q.before,
        limit: q.limit,
    };
    read(&state, filter(rest, user, concerning)?).await
}
