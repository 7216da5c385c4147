//! Public routes: health, the OpenAPI document, and the agent manifest derived from it.

use std::sync::Arc;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use domain::AppState;
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::RATE_LIMITED_PATHS;
use crate::http::error::AppError;
use domain::infra::error::ServiceError;
use model::api::meta::Health;

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

/// This replica's metrics in Prometheus's text format, for operators: an operator's access
/// token with the `metrics` scope (what a Prometheus scrape config sets with `authorization`;
/// it can do nothing else an operator can), their JWT, or their signed-in browser. Counters and
/// histograms since the replica started; gauges read now: nodes up or unreachable with their
/// capacity and use, machines by state, jobs pending, consoles open.
#[utoipa::path(get, path = "/metrics", tag = "meta", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
        (status = 401), (status = 403, description = "Not an operator")))]
async fn metrics(
    State(state): State<AppState>,
    caller: Option<Extension<crate::http::auth::Caller>>,
    session: tower_sessions::Session,
) -> Response {
    let user = match caller {
        // A token reached here only with the `metrics` scope (`http::scopes`).
        Some(Extension(caller)) => Some(caller.user),
        None => app::ssr::portal::current_user(&state, &session)
            .await
            .ok()
            .flatten(),
    };
    let Some(user) = user else {
        return AppError::Unauthenticated.into_response();
    };
    if !user.is_admin {
        return AppError::Service(ServiceError::Forbidden("Operator access required"))
            .into_response();
    }
    if let Err(e) = domain::accounts::totp::check_operator(&state.config, &user) {
        return AppError::from(e).into_response();
    }
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&state.db)
            .await
            .unwrap_or(-1);
    let mut gauges: Vec<(String, String, f64)> = vec![
        (
            "hangar_consoles_open".into(),
            "Consoles and screens open on this replica".into(),
            state.consoles.open() as f64,
        ),
        (
            "hangar_jobs_pending".into(),
            "Jobs queued or running, all replicas (-1: the database did not answer)".into(),
            queued as f64,
        ),
    ];
    if let Ok(nodes) = domain::fleet::nodes::list(&state.db).await {
        for n in nodes {
            let node = format!(
                "{{node=\"{}\",kind=\"{}\"}}",
                n.name.replace('"', "'"),
                n.kind.as_str()
            );
            let up = if n.unreachable_since.is_none() {
                1.0
            } else {
                0.0
            };
            for (name, help, value) in [
                (
                    "hangar_node_up",
                    "1 while the node answers the reconciler, 0 while it is unreachable",
                    up,
                ),
                ("hangar_node_vcpu", "The node's vCPUs", n.vcpu as f64),
                (
                    "hangar_node_vcpu_used",
                    "vCPUs placed on the node",
                    n.used_vcpu as f64,
                ),
                (
                    "hangar_node_memory_mb",
                    "The node's memory, MB",
                    n.memory_mb as f64,
                ),
                (
                    "hangar_node_memory_mb_used",
                    "Memory placed on the node, MB",
                    n.used_memory_mb as f64,
                ),
                (
                    "hangar_node_disk_gb",
                    "The node's disk, GB",
                    n.disk_gb as f64,
                ),
                (
                    "hangar_node_disk_gb_used",
                    "Disk placed on the node, GB",
                    n.used_disk_gb as f64,
                ),
            ] {
                gauges.push((format!("{name}{node}"), help.into(), value));
            }
        }
    }
    let states: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM instances WHERE state <> 'deleted' GROUP BY state",
    )
    .fetch_all(&state.db)
    .await
    .unwrap_or_default();
    for (machine_state, n) in states {
        gauges.push((
            format!("hangar_machines{{state=\"{machine_state}\"}}"),
            "Machines (not deleted) by state, all replicas".into(),
            n as f64,
        ));
    }
    // Each metric's series together (nodes were read node by node).
    gauges.sort_by(|a, b| a.0.split('{').next().cmp(&b.0.split('{').next()));
    let gauges: Vec<(&str, &str, f64)> = gauges
        .iter()
        .map(|(name, help, value)| (name.as_str(), help.as_str(), *value))
        .collect();
    let text = state.metrics.render(&gauges);
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
