//! Marketplace browse, server detail and renting (the `/api/v1` dialect "Server Marketplace").

use axum::extract::{Path, RawQuery, State};
use domain::market::{browse, rentals};
use domain::AppState;
use model::market::MarketServer;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::V1;
use crate::http::{
    auth::Caller,
    error::{ApiJson, AppError, Result},
};
use model::api::v1_marketplace::{RentRequest, RentResult, RentedRental};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(browse_servers))
        .routes(routes!(get_available_server))
        .routes(routes!(rent_server))
}

/// Browse the marketplace. Arrays accept `a=1&a=2`, `a[]=1` and `a=1,2`. Besides the reference's
/// filters: `sort` (popularity | price_asc | price_desc | cpu_score_desc | ram_desc |
/// storage_desc | newest), `limit` (1–200, default 24) and `offset`; the answer carries
/// `pagination: {total, limit, offset, next_offset}` beside `data`. Rented servers are not listed.
#[utoipa::path(get, path = "/api/v1/servers/available", tag = "marketplace",
    params(
        ("country" = Option<String>, Query, description = "Country code, e.g. US"),
        ("region" = Option<String>, Query),
        ("max_price_per_day" = Option<f64>, Query, description = "USD; compared with the server's lowest price per day"),
        ("available_durations" = Option<Vec<i64>>, Query, description = "Servers rentable for all of these durations (days)"),
        ("min_cpu_cores" = Option<i64>, Query),
        ("min_cpu_score" = Option<i64>, Query),
        ("cpu_score_type" = Option<String>, Query, description = "passmark (default) | geekbench_single | geekbench_multi"),
        ("min_ram_gb" = Option<i64>, Query),
        ("ram_types" = Option<Vec<String>>, Query, description = "Any of these RAM types"),
        ("min_total_storage_gb" = Option<i64>, Query),
        ("disk_types" = Option<Vec<String>>, Query, description = "Servers with a disk of any of these types"),
        ("min_bandwidth_mbps" = Option<i64>, Query),
        ("min_traffic_tb" = Option<i64>, Query, description = "Unlimited traffic always qualifies"),
        ("unlimited_traffic_only" = Option<bool>, Query),
        ("category" = Option<String>, Query, description = "compute | memory | storage | general | gpu"),
        ("featured_only" = Option<bool>, Query),
        ("sort" = Option<String>, Query),
        ("limit" = Option<i64>, Query),
        ("offset" = Option<i64>, Query),
    ),
    responses((status = 200, description = "`data`: servers", body = Vec<MarketServer>), (status = 400, description = "Invalid filter")))]
async fn browse_servers(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<V1<Vec<MarketServer>>> {
    let filters =
        browse::Filters::parse(query.as_deref().unwrap_or("")).map_err(AppError::bad_request)?;
    let (servers, page) =
        domain::market::index::browse(&state.db, state.browse_index.as_deref(), &filters).await?;
    Ok(V1 {
        pagination: Some(page),
        ..V1::ok("Available servers retrieved successfully", servers)
    })
}

/// One server that is on the marketplace now (404 once rented or retired).
#[utoipa::path(get, path = "/api/v1/servers/available/{id}", tag = "marketplace",
    params(("id" = String, Path)),
    responses((status = 200, body = MarketServer), (status = 404)))]
async fn get_available_server(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<V1<MarketServer>> {
    Ok(V1::ok(
        "Server retrieved successfully",
        browse::get_available(&state.db, &id).await?,
    ))
}

/// Rent a server from the prepaid balance. The debit and the rental commit together; when two
/// customers race for one server exactly one wins and the other gets 409 with no money moved.
#[utoipa::path(post, path = "/api/v1/servers/{id}/rent", tag = "marketplace", security(("bearer" = [])),
    params(("id" = String, Path, description = "Server id")),
    request_body = RentRequest,
    responses(
        (status = 201, body = RentResult),
        (status = 400, description = "Unsupported duration or malformed pool id"),
        (status = 402, description = "Balance (or token spend limit) too low: data = {balance, required}"),
        (status = 403, description = "Pool role may not add servers"),
        (status = 404, description = "No such server, pool or SSH key"),
        (status = 409, description = "Already rented"),
    ))]
async fn rent_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RentRequest>,
) -> Result<V1<RentResult>> {
    let (rental, entry) = rentals::rent(
        &state.db,
        &caller.actor(),
        &id,
        body.rental_days,
        body.pool_id.as_deref(),
        state.config.rental_hold_days,
        body.ssh_key_ids.as_deref(),
    )
    .await?;
    let now = domain::infra::db::now_ms();
    Ok(V1::created(
        "Server rented successfully",
        RentResult {
            rental: RentedRental {
                actual_usage_days: rental.usage_days(now),
                id: rental.id,
                server_id: rental.server_id,
                pool_id: rental.pool_id,
                rental_start: domain::infra::db::rfc3339(rental.rental_start),
                rental_end: domain::infra::db::rfc3339(rental.rental_end),
                hold_days: rental.hold_days,
                status: rental.status.as_str().to_owned(),
            },
            transaction: rentals::transaction(&entry),
        },
    ))
}
