//! Prepaid billing (the `/api` dialect "Billing"): balance, history, alert addresses, and card top-ups
//! through Stripe Checkout (`domain::money::payments` explains the once-only credit).

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use domain::accounts::users;
use domain::infra::db::rfc3339;
use domain::money::billing;
use domain::AppState;
use model::money::Usd4;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::Caller,
        error::{ApiJson, ApiQuery, Result},
    },
};
use model::api::billing::{
    AddFundsRequest, AddNotifyEmail, Balance, CheckoutUrl, History, HistoryQuery, MachineUsage,
    Movement, NotifyEmail, Statement, WebhookAnswer,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_balance))
        .routes(routes!(list_history))
        .routes(routes!(get_statement))
        .routes(routes!(list_notify_emails, add_notify_email))
        .routes(routes!(remove_notify_email))
        .routes(routes!(add_funds))
        .routes(routes!(stripe_webhook))
}

/// Start a card top-up: creates a Stripe Checkout Session and answers its URL. Nothing is credited
/// until Stripe confirms the payment through the webhook. Without Stripe configured: 400 saying so.
#[utoipa::path(post, path = "/api/billing/add-funds", tag = "billing", security(("bearer" = [])),
    request_body = AddFundsRequest,
    responses((status = 200, body = CheckoutUrl), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn add_funds(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AddFundsRequest>,
) -> Result<ApiJson<CheckoutUrl>> {
    let amount = model::money::micros_from_usd(body.amount)
        .map_err(crate::http::error::AppError::bad_request)?;
    let url = domain::money::payments::create_checkout(&state, &caller.user, amount).await?;
    Ok(ApiJson(CheckoutUrl { url }))
}

/// Stripe's webhook endpoint. Verifies `Stripe-Signature` (5-minute tolerance) and credits a paid
/// `checkout.session.completed` once per session. Bad, missing or stale signatures: 400.
#[utoipa::path(post, path = "/api/billing/webhook", tag = "billing",
    request_body(content = String, description = "The event as Stripe sent it", content_type = "application/json"),
    responses((status = 200, body = WebhookAnswer), (status = 400, body = ErrorBody)))]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Result<ApiJson<WebhookAnswer>> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = domain::money::payments::handle_webhook(&state, &body, signature).await?;
    Ok(ApiJson(WebhookAnswer {
        received: true,
        credited: matches!(
            outcome,
            domain::money::payments::WebhookOutcome::Credited(_)
        ),
    }))
}

/// The prepaid balance.
#[utoipa::path(get, path = "/api/billing/balance", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Balance), (status = 401, body = ErrorBody)))]
async fn get_balance(State(state): State<AppState>, caller: Caller) -> Result<ApiJson<Balance>> {
    let balance = users::balance(&state.db, &caller.user.id).await?;
    Ok(ApiJson(Balance {
        balance: Usd4(balance),
        currency: "USD",
    }))
}

/// Money movements, newest first.
#[utoipa::path(get, path = "/api/billing/history", tag = "billing", security(("bearer" = [])),
    params(HistoryQuery),
    responses((status = 200, body = History), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_history(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<ApiJson<History>> {
    let (limit, offset) = (q.limit.unwrap_or(20), q.offset.unwrap_or(0));
    let (rows, total) = billing::history(&state.db, &caller.user.id, limit, offset).await?;
    Ok(ApiJson(History {
        items: rows.into_iter().map(movement).collect(),
        total,
        limit,
        offset,
    }))
}

fn movement(e: domain::money::ledger::Entry) -> Movement {
    Movement {
        id: e.id,
        amount: Usd4(e.amount_micros),
        kind: e.kind,
        description: e.description,
        reference: e.reference,
        created_at: rfc3339(e.created_at),
    }
}

/// A month's statement: the balance at its start and end and everything that moved it, per
/// machine and rental (the portal prints it at `/billing/statements/{month}`). 404 for months
/// before the account existed or after the current one; 400 for a month not written `YYYY-MM`.
#[utoipa::path(get, path = "/api/billing/statements/{month}", tag = "billing", security(("bearer" = [])),
    params(("month" = String, Path, description = "YYYY-MM (UTC)", example = "2026-12")),
    responses((status = 200, body = Statement), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(month): Path<String>,
) -> Result<ApiJson<Statement>> {
    let month: billing::Month = month.parse()?;
    let st = billing::statement(
        &state.db,
        &caller.user.id,
        month,
        domain::infra::db::now_ms(),
    )
    .await?;
    Ok(ApiJson(Statement {
        month: month.to_string(),
        opening_balance: Usd4(st.opening_micros),
        closing_balance: Usd4(st.closing_micros),
        credits: st.credits.into_iter().map(movement).collect(),
        rentals: st.rentals.into_iter().map(movement).collect(),
        machines: st
            .machines
            .into_iter()
            .map(|m| MachineUsage {
                instance_id: m.instance_id,
                name: m.name,
                minutes: m.minutes,
                amount: Usd4(m.amount_micros),
            })
            .collect(),
        other_usage: Usd4(st.other_usage_micros),
    }))
}

/// An alert address as the API shows it.
fn notify_email(n: billing::NotifyEmail) -> NotifyEmail {
    NotifyEmail {
        id: n.id,
        email: n.email,
        created_at: rfc3339(n.created_at),
    }
}

/// Extra addresses that receive low-balance alerts (the account email always does).
#[utoipa::path(get, path = "/api/billing/notify-emails", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = Vec<NotifyEmail>), (status = 401, body = ErrorBody)))]
async fn list_notify_emails(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<NotifyEmail>>> {
    let list = billing::list_notify_emails(&state.db, &caller.user.id).await?;
    Ok(ApiJson(list.into_iter().map(notify_email).collect()))
}

/// Add an alert address (valid, not listed yet, at most 10).
#[utoipa::path(post, path = "/api/billing/notify-emails", tag = "billing", security(("bearer" = [])),
    request_body = AddNotifyEmail,
    responses((status = 201, body = NotifyEmail), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_notify_email(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AddNotifyEmail>,
) -> Result<(StatusCode, ApiJson<NotifyEmail>)> {
    let row = billing::add_notify_email(&state.db, &caller.user.id, &body.email).await?;
    Ok((StatusCode::CREATED, ApiJson(notify_email(row))))
}

/// Remove an alert address.
#[utoipa::path(delete, path = "/api/billing/notify-emails/{id}", tag = "billing", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_notify_email(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    billing::remove_notify_email(&state.db, &caller.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
