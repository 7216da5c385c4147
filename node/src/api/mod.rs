//! The daemon's HTTP API: thin handlers over the services, one router.
//!
//! Every route but `GET /api/v1/public/ping` needs `Authorization: Bearer <token>` ("Missing or
//! invalid authorization token", 401) and, when the config names a vendor, `X-Vendor: <vendor>`
//! ("Invalid vendor header", 403). Errors are `{"error": "..."}` with the reference's messages.

mod containers;
mod files;
mod network;

use axum::{
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Json, Router,
};
use serde_json::{json, Value};

use crate::{
    error::{JsonBody, NodeError, NodeResult},
    tokens::{self, Access},
    Node,
};
use model::node::{IssuedToken, RotateToken, TokenRequest};

pub fn router(node: Node) -> Router {
    // JSON bodies: a file written through the JSON route may be escaped up to six times its size.
    let json_limit = node.config().limits.file_write_bytes.saturating_mul(6) + 64 * 1024;
    let authed = Router::new()
        .route("/auth/tokens", post(issue_token))
        .route("/remote/config", get(remote_config))
        .route("/remote/config/reload", post(reload_config))
        .route("/remote/token", post(rotate_token))
        .route("/system/host", get(host))
        .merge(files::routes())
        .merge(containers::routes())
        .merge(network::routes())
        .layer(DefaultBodyLimit::max(json_limit))
        .route_layer(middleware::from_fn_with_state(node.clone(), authenticate));
    Router::new()
        .route("/api/v1/public/ping", get(ping))
        .merge(authed)
        .fallback(|| async { NodeError::not_found("Not found") })
        .method_not_allowed_fallback(|| async {
            NodeError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        })
        .with_state(node)
}

async fn ping() -> Json<Value> {
    Json(json!({"status": "ok", "message": "Lightd is running"}))
}

/// The bearer check, then the vendor check; the caller's [`Access`] goes into the request.
async fn authenticate(State(node): State<Node>, mut req: Request, next: Next) -> Response {
    let mut presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    // Browsers cannot set headers on a WebSocket: the WebSocket alone also takes `?token=`.
    if presented.is_empty() && req.uri().path().ends_with("/ws") {
        presented = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
            .unwrap_or_default()
            .to_owned();
    }
    let access = if presented.is_empty() && node.config().authorization.enabled {
        Err(NodeError::unauthorized())
    } else {
        tokens::check(&node, &presented).await
    };
    let access = match access {
        Ok(access) => access,
        Err(e) => return e.into_response(),
    };
    if let Some(vendor) = node.config().authorization.vendor.as_deref() {
        let sent = req.headers().get("x-vendor").and_then(|v| v.to_str().ok());
        if sent != Some(vendor) {
            return NodeError::new(StatusCode::FORBIDDEN, "Invalid vendor header").into_response();
        }
    }
    if let Access::Issued {
        container: Some(container),
    } = &access
    {
        // A console token opens its container's WebSocket and nothing else.
        let path = req.uri().path();
        if path != format!("/containers/{container}/ws") {
            return NodeError::new(
                StatusCode::FORBIDDEN,
                format!("This token only opens the WebSocket of container {container}"),
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(access);
    next.run(req).await
}

fn panel_only(access: &Access) -> NodeResult<()> {
    match access {
        Access::Panel => Ok(()),
        Access::Issued { .. } => Err(NodeError::new(
            StatusCode::FORBIDDEN,
            "Only the node's own token may do this",
        )),
    }
}

async fn issue_token(
    State(node): State<Node>,
    Extension(access): Extension<Access>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> NodeResult<Json<IssuedToken>> {
    panel_only(&access)?;
    let ttl = tokens::parse_ttl(&body.ttl)?;
    let (token, expires_at) = tokens::issue(&node, ttl, body.remove_on_use, body.container).await?;
    let expires_at = time::OffsetDateTime::from_unix_timestamp(expires_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Ok(Json(IssuedToken { token, expires_at }))
}

/// Tokens are shown redacted: the prefix and the last four characters.
fn redact(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 12 {
        return "[redacted]".into();
    }
    let head: String = chars[..7].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

async fn remote_config(
    State(node): State<Node>,
    Extension(access): Extension<Access>,
) -> NodeResult<Json<Value>> {
    panel_only(&access)?;
    let config = node.config();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "server": {"host": config.server.host, "port": config.server.port},
        "authorization": {
            "enabled": config.authorization.enabled,
            "token": redact(&config.authorization.token),
            "vendor": config.authorization.vendor,
        },
        "remote": {
            "enabled": config.remote.enabled,
            "url": config.remote.url,
            "token": redact(&config.remote.token),
        },
        "limits": config.limits,
    })))
}

/// The daemon's version and its host's load, for the panel's charts and version check.
async fn host(
    State(node): State<Node>,
    Extension(access): Extension<Access>,
) -> NodeResult<Json<crate::host::HostReport>> {
    panel_only(&access)?;
    Ok(Json(crate::host::report(&node.config().storage.root).await))
}

/// Rotates the daemon's own token: written to its config file and in force at once. The caller
/// proved it holds the current one; the answer is the last thing the old token gets.
async fn rotate_token(
    State(node): State<Node>,
    Extension(access): Extension<Access>,
    JsonBody(body): JsonBody<RotateToken>,
) -> NodeResult<Json<Value>> {
    panel_only(&access)?;
    let token = body.token.trim();
    if token.len() < 16 || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NodeError::bad_request(
            "token: 16 to 256 printable characters",
        ));
    }
    node.rotate_token(token)
        .map_err(|e| NodeError::bad_request(format!("Token not changed: {e:#}")))?;
    // Tokens issued with the old one (for consoles, up to 30 days) go with it: a rotation after
    // a leak must not leave tokens minted with the leaked one.
    sqlx::query("DELETE FROM tokens").execute(node.db()).await?;
    tracing::info!("the daemon's token was rotated by the panel; issued tokens revoked");
    Ok(Json(json!({"message": "Token rotated"})))
}

async fn reload_config(
    State(node): State<Node>,
    Extension(access): Extension<Access>,
) -> NodeResult<Json<Value>> {
    panel_only(&access)?;
    node.reload()
        .map_err(|e| NodeError::bad_request(format!("Configuration not reloaded: {e}")))?;
    Ok(Json(
        json!({"message": "Configuration reloaded successfully"}),
    ))
}
