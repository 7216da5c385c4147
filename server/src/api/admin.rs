//! Operator functions under `/api/admin`. Every route requires a user with the admin flag.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use domain::accounts::users;
use domain::infra::error::ServiceError;
use domain::infra::{audit, db};
use domain::market::inventory;
use domain::money::ledger;
use domain::AppState;
use model::market::MarketServer;
use model::money::{micros_from_usd, Usd4};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::AdminCaller,
        error::{ApiJson, AppError, Result},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(credit_user))
        .routes(routes!(create_market_server))
        .routes(routes!(update_market_server, retire_market_server))
}

/// Add a server to the marketplace.
#[utoipa::path(post, path = "/api/admin/marketplace/servers", tag = "admin", security(("bearer" = [])),
    request_body = inventory::ServerInput,
    responses((status = 201, body = MarketServer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_market_server(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<inventory::ServerInput>,
) -> Result<(StatusCode, ApiJson<MarketServer>)> {
    let server = inventory::create(&state.db, body).await?;
    tracing::info!(admin = %admin.user.id, server = %server.id, "marketplace server added");
    Ok((StatusCode::CREATED, ApiJson(server)))
}

/// Replace a server's description and prices (active rentals keep what they paid).
#[utoipa::path(put, path = "/api/admin/marketplace/servers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = inventory::ServerInput,
    responses((status = 200, body = MarketServer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_market_server(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<inventory::ServerInput>,
) -> Result<ApiJson<MarketServer>> {
    Ok(ApiJson(inventory::update(&state.db, &id, body).await?))
}

/// Retire a server: it leaves the marketplace; current rentals run to their end.
#[utoipa::path(delete, path = "/api/admin/marketplace/servers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn retire_market_server(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    inventory::retire(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct CreditRequest {
    /// USD to add (positive) or take away (negative); never below a zero balance.
    #[schema(example = 10.0)]
    pub amount: f64,
    /// Why, for the ledger and the audit log (≤ 500 characters).
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreditResponse {
    pub user_id: String,
    pub ledger_entry_id: String,
    pub amount: Usd4,
    pub balance: Usd4,
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
    let magnitude = micros_from_usd(body.amount.abs()).map_err(AppError::bad_request)?;
    if magnitude == 0 {
        return Err(AppError::bad_request("Amount must not be zero"));
    }
    let amount = if body.amount < 0.0 {
        -magnitude
    } else {
        magnitude
    };
    let note = body.note.unwrap_or_default();
    if note.chars().count() > 500 {
        return Err(AppError::bad_request("Note must be at most 500 characters"));
    }
    let description = if note.is_empty() {
        "Operator adjustment".to_owned()
    } else {
        note.clone()
    };

    let mut tx = state.db.begin().await.map_err(ServiceError::from)?;
    let entry = ledger::post(
        &mut tx,
        ledger::Movement {
            user_id: &user_id,
            amount_micros: amount,
            kind: ledger::Kind::Credit,
            description: &description,
            reference: Some(&admin.user.id),
            idempotency_key: None,
            token_id: None,
        },
    )
    .await?
    .ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("credit without key was deduplicated"))
    })?;
    audit::record(
        &mut tx,
        Some(&admin.user.id),
        "user.credit",
        "user",
        Some(&user_id),
        serde_json::json!({ "amount_micros": amount, "note": note, "ledger_id": entry.id }),
    )
    .await
    .map_err(ServiceError::from)?;
    tx.commit().await.map_err(ServiceError::from)?;
    let balance = users::balance(&state.db, &user_id).await?;
    tracing::info!(admin = %admin.user.id, user = %user_id, amount, at = db::now_ms(), "balance adjusted");
    Ok(ApiJson(CreditResponse {
        user_id,
        ledger_entry_id: entry.id,
        amount: Usd4(amount),
        balance: Usd4(balance),
    }))
}
