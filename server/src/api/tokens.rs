//! Access tokens (the `/api` dialect "Access Tokens").

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use domain::accounts::tokens;
use domain::AppState;
use model::accounts::{CreatedToken, TokenView};
use model::money::micros_from_usd;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::Caller,
        error::{ApiJson, AppError, Result},
    },
};
use model::api::tokens::CreateTokenRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// The caller's live tokens, newest first. Values are never returned after creation.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Vec<TokenView>>> {
    let list = tokens::list(&state.db, &caller.user.id).await?;
    Ok(ApiJson(list.into_iter().map(TokenView::from).collect()))
}

/// Create an access token. The `token` field is present only in this response. Only a person
/// (a JWT from signing in) may: an access token answers 403 here, so no token can mint another.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreatedToken),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Called with an access token", body = ErrorBody),
        (status = 409, description = "Too many live tokens", body = ErrorBody),
    ))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, ApiJson<CreatedToken>)> {
    let limit = body
        .spend_limit
        .map(|usd| {
            micros_from_usd(usd).map_err(|m| AppError::bad_request(format!("Spend limit: {m}")))
        })
        .transpose()?;
    let scopes = match &body.scopes {
        Some(names) => tokens::Scopes::from_names(names)?,
        None => tokens::Scopes::all(),
    };
    let (token, value) =
        tokens::create(&state.db, &caller.user.id, &body.name, limit, scopes).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(tokens::created_view(token, value)),
    ))
}

/// Revoke an access token; it stops working immediately.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such token of yours", body = ErrorBody),
    ))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    tokens::revoke(&state.db, &state.revocations, &caller.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
