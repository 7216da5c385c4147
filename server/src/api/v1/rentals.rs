//! Rentals (the `/api/v1` dialect "Rentals") and their aliases under `/api/v1/servers`.

use axum::extract::{Path, State};
use domain::market::rentals;
use domain::AppState;
use model::market::Rental;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::V1;
use crate::http::{
    auth::Caller,
    error::{ApiJson, Result},
};
use model::api::v1_rentals::{ExtendRequest, ExtendResult, ExtendedRental, MoveRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rentals))
        .routes(routes!(get_rental))
        .routes(routes!(extend_rental))
        .routes(routes!(move_rental))
        .routes(routes!(list_rented_servers))
        .routes(routes!(get_rented_server))
}

async fn visible(state: &AppState, caller: &Caller) -> Result<Vec<Rental>> {
    let rows = rentals::list_visible(&state.db, &caller.user.id).await?;
    Ok(rentals::to_api_list(&state.db, rows).await?)
}

/// Your rentals and those of your pools, newest first (active and ended).
#[utoipa::path(get, path = "/api/v1/rentals", tag = "rentals", security(("bearer" = [])),
    responses((status = 200, body = Vec<Rental>), (status = 401)))]
async fn list_rentals(State(state): State<AppState>, caller: Caller) -> Result<V1<Vec<Rental>>> {
    Ok(V1::ok(
        "Rentals retrieved successfully",
        visible(&state, &caller).await?,
    ))
}

/// Alias of `GET /api/v1/rentals`.
#[utoipa::path(get, path = "/api/v1/servers", tag = "rentals", security(("bearer" = [])),
    responses((status = 200, body = Vec<Rental>), (status = 401)))]
async fn list_rented_servers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<V1<Vec<Rental>>> {
    Ok(V1::ok(
        "Rentals retrieved successfully",
        visible(&state, &caller).await?,
    ))
}

/// A rental with its server and payments (`transaction` is the rent payment).
#[utoipa::path(get, path = "/api/v1/rentals/{id}", tag = "rentals", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Rental), (status = 404)))]
async fn get_rental(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<V1<Rental>> {
    Ok(V1::ok(
        "Rental retrieved successfully",
        rentals::detail(&state.db, &caller.user.id, &id).await?,
    ))
}

/// Alias of `GET /api/v1/rentals/{id}`.
#[utoipa::path(get, path = "/api/v1/servers/{id}", tag = "rentals", security(("bearer" = [])),
    params(("id" = String, Path, description = "Rental id")), responses((status = 200, body = Rental), (status = 404)))]
async fn get_rented_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<V1<Rental>> {
    Ok(V1::ok(
        "Rental details retrieved successfully",
        rentals::detail(&state.db, &caller.user.id, &id).await?,
    ))
}

/// Extend a rental, paid from your balance. Pool owners and admins may extend pool rentals.
#[utoipa::path(post, path = "/api/v1/rentals/{id}/extend", tag = "rentals", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ExtendRequest,
    responses((status = 200, body = ExtendResult), (status = 400), (status = 402), (status = 403), (status = 404), (status = 409, description = "Rental has ended")))]
async fn extend_rental(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExtendRequest>,
) -> Result<V1<ExtendResult>> {
    let (row, entry) =
        rentals::extend(&state.db, &caller.actor(), &id, body.additional_days).await?;
    let now = domain::infra::db::now_ms();
    Ok(V1::ok(
        "Rental extended successfully",
        ExtendResult {
            rental: ExtendedRental {
                remaining_days: row.remaining_days(now),
                id: row.id,
                rental_end: domain::infra::db::rfc3339(row.rental_end),
                status: row.status.as_str().to_owned(),
                amount: model::money::usd2(row.amount),
            },
            transaction: rentals::transaction(&entry),
        },
    ))
}

/// Move an active rental into another pool (Hangar's addition to the `/api/v1` dialect): its members see
/// the server from then on. You must be owner or admin of both the rental's pool and the target.
#[utoipa::path(post, path = "/api/v1/rentals/{id}/move", tag = "rentals", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = MoveRequest,
    responses((status = 200, body = Rental), (status = 400), (status = 403), (status = 404), (status = 409, description = "Rental has ended")))]
async fn move_rental(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MoveRequest>,
) -> Result<V1<Rental>> {
    rentals::move_to_pool(&state.db, &caller.actor(), &id, &body.pool_id).await?;
    Ok(V1::ok(
        "Rental moved successfully",
        rentals::detail(&state.db, &caller.user.id, &id).await?,
    ))
}
