//! Operator functions under `/api/admin`. Every route requires a user with the admin flag.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use domain::market::inventory;
use domain::money::ledger;
use domain::AppState;
use model::market::{Inventory, MarketServer};
use model::money::Usd4;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::AdminCaller,
        error::{ApiJson, Result},
    },
};
use model::api::admin::{CreditRequest, CreditResponse, InventoryQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(credit_user))
        .routes(routes!(list_market_servers, create_market_server))
        .routes(routes!(
            update_market_server,
            patch_market_server,
            retire_market_server
        ))
        .routes(routes!(rental_authorized_keys))
}

/// The `authorized_keys` file for a rented server, for the operator's provisioning: one
/// OpenSSH public key per line, each followed by a comment saying whose it is and why (the
/// renter's choice, or a pool member by role). Ended rentals still answer (the keys to remove).
#[utoipa::path(get, path = "/api/admin/rentals/{id}/authorized_keys", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Rental id")),
    responses((status = 200, content_type = "text/plain", body = String), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rental_authorized_keys(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<([(axum::http::header::HeaderName, &'static str); 1], String)> {
    if !domain::infra::db::is_id(&id) {
        return Err(domain::infra::error::ServiceError::NotFound("Rental").into());
    }
    let keys = domain::market::rentals::authorized_keys(&state.db, &id).await?;
    let mut file = String::new();
    for k in keys {
        // The key's own comment is dropped: ours says whose it is.
        let mut parts = k.public_key.split_whitespace();
        let (Some(kind), Some(body)) = (parts.next(), parts.next()) else {
            continue;
        };
        file.push_str(&format!(
            "{kind} {body} {}:{}:{}\n",
            k.owner,
            k.because,
            k.name.replace(char::is_whitespace, "_")
        ));
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        file,
    ))
}

/// The marketplace inventory as operators manage it: every server, retired ones too, with the
/// rental running on each (who, until when).
#[utoipa::path(get, path = "/api/admin/marketplace/servers", tag = "admin", security(("bearer" = [])),
    params(InventoryQuery),
    responses((status = 200, body = Inventory), (status = 400, body = ErrorBody)))]
async fn list_market_servers(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Query(q): Query<InventoryQuery>,
) -> Result<ApiJson<Inventory>> {
    Ok(ApiJson(
        domain::operators::catalog::inventory(
            &state.db,
            &q.q,
            &q.status,
            q.limit.unwrap_or(50),
            q.offset.unwrap_or(0),
        )
        .await?,
    ))
}

/// Add a server to the marketplace.
#[utoipa::path(post, path = "/api/admin/marketplace/servers", tag = "admin", security(("bearer" = [])),
    request_body = model::api::admin::ServerInput,
    responses((status = 201, body = MarketServer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_market_server(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<model::api::admin::ServerInput>,
) -> Result<(StatusCode, ApiJson<MarketServer>)> {
    let server = inventory::create(&state.db, &admin.user.id, body).await?;
    tracing::info!(admin = %admin.user.id, server = %server.id, "marketplace server added");
    Ok((StatusCode::CREATED, ApiJson(server)))
}

/// Change a server's description, prices or access point (active rentals keep what they paid).
/// A merge (RFC 7386): fields left out keep their values, `null` clears `access` or a price's
/// duration; the result is checked whole. Full bodies work as before.
#[utoipa::path(put, path = "/api/admin/marketplace/servers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = model::api::admin::ServerInput,
    responses((status = 200, body = MarketServer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_market_server(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<MarketServer>> {
    Ok(ApiJson(
        inventory::patch(&state.db, &admin.user.id, &id, body).await?,
    ))
}

/// The same merge as `PUT`, under the method that says so.
#[utoipa::path(patch, path = "/api/admin/marketplace/servers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Object,
    responses((status = 200, body = MarketServer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn patch_market_server(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<MarketServer>> {
    Ok(ApiJson(
        inventory::patch(&state.db, &admin.user.id, &id, body).await?,
    ))
}

/// Retire a server: it leaves the marketplace; current rentals run to their end.
#[utoipa::path(delete, path = "/api/admin/marketplace/servers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn retire_market_server(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    inventory::retire(&state.db, &admin.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adjust a user's prepaid balance (an immutable ledger entry plus an audit record).
#[utoipa::path(post, path = "/api/admin/users/{id}/credit", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = CreditRequest,
    responses(
        (status = 200, body = CreditResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, description = "A debit larger than the balance", body = crate::api::InsufficientBalanceBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn credit_user(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<CreditRequest>,
) -> Result<ApiJson<CreditResponse>> {
    let words = ledger::AdjustmentWords {
        note: body.note.as_deref(),
        description: body.description.as_deref(),
        confirmed: body.confirm,
    };
    let done = ledger::adjust(
        &state.db,
        &state.config,
        &admin.user.id,
        &user_id,
        body.amount,
        words,
    )
    .await?;
    Ok(ApiJson(CreditResponse {
        user_id,
        ledger_entry_id: done.entry.id,
        amount: Usd4(done.amount_micros),
        balance: Usd4(done.balance_micros),
    }))
}
