//! Public routes: health, the OpenAPI document, and the agent manifest derived from it.

use std::sync::Arc;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use domain::AppState;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::RATE_LIMITED_PATHS;
use crate::http::auth::AdminCaller;

/// The generated OpenAPI document, shared with the handlers that serve and summarise it.
#[derive(Clone)]
pub struct ApiDocument(pub Arc<Value>);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(livez))
        .routes(routes!(metrics))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
        .routes(routes!(agent_manifest))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`; `unavailable` when the database does not answer; `draining` while this replica
    /// shuts down.
    pub status: &'static str,
}

/// Liveness: the process is up and serving requests; nothing else is checked, so a database
/// outage does not get every replica restarted (use it for restart decisions).
#[utoipa::path(get, path = "/livez", tag = "meta", responses((status = 200, body = Health)))]
async fn livez() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: this replica can serve, its database answers within 3 s (use it for load
/// balancers choosing replicas). 503 while the database is unreachable, and while this replica
/// drains before a shutdown (`shutdown_drain_secs`).
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, body = Health), (status = 503, description = "Database unreachable, or shutting down", body = Health)))]
async fn readyz(state: State<AppState>) -> Response {
    health(state).await
}

/// This replica's metrics in Prometheus's text format (operators only: an admin's JWT or API
/// token as the bearer, which a Prometheus scrape config sets with `authorization`). Counters and
/// histograms since the replica started; gauges read now.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
        (status = 401), (status = 403, description = "Not an operator")))]
async fn metrics(State(state): State<AppState>, _admin: AdminCaller) -> Response {
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&state.db)
            .await
            .unwrap_or(-1);
    let text = state.metrics.render(&[
        (
            "hangar_consoles_open",
            "Consoles and screens open on this replica",
            state.consoles.open() as f64,
        ),
        (
            "hangar_jobs_pending",
            "Jobs queued or running, all replicas (-1: the database did not answer)",
            queued as f64,
        ),
    ]);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Readiness under its older name (the same check as `/readyz`).
#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, body = Health), (status = 503, description = "Database unreachable, or shutting down", body = Health)))]
async fn health(State(state): State<AppState>) -> Response {
    if state.lifecycle.is_draining() {
        // Shutting down: the load balancer should send new requests elsewhere.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status: "draining" }),
        )
            .into_response();
    }
    let db_ok = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&state.db),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if db_ok {
        Json(Health { status: "ok" }).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
            }),
        )
            .into_response()
    }
}

/// This API's OpenAPI 3.1 document, generated from the server's code.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi_json(Extension(doc): Extension<ApiDocument>) -> Json<Value> {
    Json((*doc.0).clone())
}

/// Machine-readable capability manifest for agents: features, auth, rate limits, operations.
/// Built from the OpenAPI document and the live configuration, never kept by hand.
#[utoipa::path(get, path = "/.well-known/agent.json", tag = "meta", responses((status = 200, description = "Agent manifest")))]
async fn agent_manifest(
    State(state): State<AppState>,
    Extension(doc): Extension<ApiDocument>,
) -> Json<Value> {
    Json(build_manifest(&state, &doc.0))
}

/// The manifest for `doc` under the running configuration.
pub fn build_manifest(state: &AppState, doc: &Value) -> Value {
    let base = &state.config.public_url;
    let mut operations = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                let secured = op.get("security").is_some();
                operations.push(json!({
                    "method": method.to_uppercase(),
                    "path": path,
                    "summary": op.get("summary").cloned().unwrap_or(Value::Null),
                    "tag": op.pointer("/tags/0").cloned().unwrap_or(Value::Null),
                    "auth_required": secured,
                }));
            }
        }
    }
    let features: Vec<Value> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .map(|t| json!({ "name": t.get("name"), "description": t.get("description") }))
                .collect()
        })
        .unwrap_or_default();
    let rate_limits: Vec<Value> = RATE_LIMITED_PATHS
        .iter()
        .filter(|p| p.starts_with("/api/"))
        .map(|p| {
            json!({
                "path": p,
                "limit": state.config.auth_rate_limit_per_minute,
                "window_seconds": 60,
                "scope": "client_ip",
                "on_exceed": "429 with Retry-After",
            })
        })
        .collect();
    json!({
        "schema_version": "1",
        "name": "Hangar",
        "description": doc.pointer("/info/description"),
        "version": doc.pointer("/info/version"),
        "api_base": base,
        "openapi": format!("{base}/openapi.json"),
        "auth": {
            "methods": [
                {
                    "type": "bearer_jwt",
                    "obtain": "POST /api/auth/login with {\"email\", \"password\"}",
                    "lifetime_seconds": state.config.jwt_ttl_secs,
                },
                {
                    "type": "bearer_access_token",
                    "prefix": "vtk_",
                    "obtain": "POST /api/tokens (optionally with spend_limit in USD)",
                },
            ],
            "header": "Authorization: Bearer <token>",
            "registration_captcha": state.config.turnstile_secret.is_some(),
        },
        "balance_header": "X-Balance-Remaining",
        "errors": { "shape": {"error": "message"}, "insufficient_balance": {"status": 402, "fields": ["error", "balance", "required"]} },
        "rate_limits": rate_limits,
        "features": features,
        "operations": operations,
    })
}
