//! Operators and their customers under `/api/admin/users`: find an account, read its page,
//! suspend and reinstate it, lift a sign-in lockout. Every route requires an operator; every
//! change is in the audit log as the operator's, with the customer as its target.

use axum::extract::{Path, Query, State};
use domain::operators::customers;
use domain::AppState;
use model::accounts::CustomerDetail;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::AdminCaller,
        error::{ApiJson, Result},
    },
};
use model::api::admin_customers::{AccountStatus, CustomerPage, CustomerQuery, SuspendRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers))
        .routes(routes!(get_customer))
        .routes(routes!(suspend))
        .routes(routes!(reinstate))
        .routes(routes!(unlock))
        .routes(routes!(send_password_reset))
}

/// Customers, newest first, optionally searched by e-mail, username or id.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(CustomerQuery),
    responses((status = 200, body = CustomerPage), (status = 400, body = ErrorBody)))]
async fn list_customers(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(q): Query<CustomerQuery>,
) -> Result<ApiJson<CustomerPage>> {
    let (data, total) = customers::search(
        &state.db,
        q.q.as_deref().unwrap_or_default(),
        q.limit.unwrap_or(50),
        q.offset.unwrap_or(0),
    )
    .await?;
    Ok(ApiJson(CustomerPage { data, total }))
}

/// One customer's page: balance, spend, machines, rentals, pools, tokens, two-factor, lockout.
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = CustomerDetail), (status = 404, body = ErrorBody)))]
async fn get_customer(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<CustomerDetail>> {
    Ok(ApiJson(customers::detail(&state.db, &id).await?))
}

/// Suspend an account: its sessions, tokens and consoles end, its sign-ins and API calls are
/// refused with the reason, its running machines are stopped (not deleted), and it is mailed.
/// 409 for an operator's or one's own account, or one already suspended.
#[utoipa::path(post, path = "/api/admin/users/{id}/suspend", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SuspendRequest,
    responses((status = 200, body = AccountStatus), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn suspend(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SuspendRequest>,
) -> Result<ApiJson<AccountStatus>> {
    customers::suspend(&state, &admin.user.id, &id, &body.reason).await?;
    Ok(ApiJson(AccountStatus {
        status: "suspended",
    }))
}

/// Lift a suspension: the customer can sign in again (and is mailed); machines stay stopped.
#[utoipa::path(post, path = "/api/admin/users/{id}/reinstate", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AccountStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reinstate(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<AccountStatus>> {
    customers::reinstate(&state, &admin.user.id, &id).await?;
    Ok(ApiJson(AccountStatus { status: "active" }))
}

/// Mail the customer a link to set a new password (good for an hour; the operator never sees
/// it). 409 for a suspended account.
#[utoipa::path(post, path = "/api/admin/users/{id}/password-reset", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AccountStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn send_password_reset(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<AccountStatus>> {
    domain::accounts::recovery::send_by_operator(&state.db, &state.config, &admin.user.id, &id)
        .await?;
    Ok(ApiJson(AccountStatus {
        status: "reset_link_sent",
    }))
}

/// Lift a sign-in lockout (too many wrong passwords) at once.
#[utoipa::path(post, path = "/api/admin/users/{id}/unlock", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = AccountStatus), (status = 404, body = ErrorBody)))]
async fn unlock(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<AccountStatus>> {
    customers::unlock(&state.db, &admin.user.id, &id).await?;
    Ok(ApiJson(AccountStatus { status: "unlocked" }))
}
