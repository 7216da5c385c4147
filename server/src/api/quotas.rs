//! Account limits: the customer's usage against each (`GET /api/quotas`) and the operator's
//! per-account overrides (`/api/admin/users/{id}/quotas`). See `domain::compute::quotas`.

use axum::extract::{Path, State};
use domain::compute::quotas::{self, Overrides};
use domain::AppState;
use model::compute::Quotas;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::{AdminCaller, Caller},
        error::{ApiJson, Result},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_quotas))
        .routes(routes!(get_user_quotas, set_user_quotas))
}

/// An account's limits as the operator sees them: what is set for it (`null`: the default) and
/// what is in force with its use.
#[derive(Serialize, ToSchema)]
pub struct UserQuotas {
    pub overrides: Overrides,
    pub effective: Quotas,
}

/// The caller's limits and how much of each is in use. Ask the provider to raise one.
#[utoipa::path(get, path = "/api/quotas", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Quotas), (status = 401, body = ErrorBody)))]
async fn get_quotas(State(state): State<AppState>, caller: Caller) -> Result<ApiJson<Quotas>> {
    Ok(ApiJson(account(&state, &caller.user.id).await?))
}

async fn account(state: &AppState, user_id: &str) -> Result<Quotas> {
    Ok(quotas::of_account(state, user_id).await?)
}

#[utoipa::path(get, path = "/api/admin/users/{id}/quotas", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserQuotas), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user_quotas(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<UserQuotas>> {
    domain::accounts::users::get(&state.db, &id).await?;
    Ok(ApiJson(UserQuotas {
        overrides: quotas::overrides(&state.db, &id).await?,
        effective: account(&state, &id).await?,
    }))
}

/// Set an account's limits: each field a number, or `null` (or left out) for the default. The
/// whole set is replaced, so what is not named goes back to the default.
#[utoipa::path(put, path = "/api/admin/users/{id}/quotas", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = Overrides,
    responses((status = 200, body = UserQuotas), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_user_quotas(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Overrides>,
) -> Result<ApiJson<UserQuotas>> {
    quotas::set(&state.db, &admin.user.id, &id, &body).await?;
    Ok(ApiJson(UserQuotas {
        overrides: quotas::overrides(&state.db, &id).await?,
        effective: account(&state, &id).await?,
    }))
}
