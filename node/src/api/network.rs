//! `/network/ports`: the port pool.

use axum::{
    extract::{Path, State},
    routing::{get, post, put},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    error::{JsonBody, NodeError, NodeResult},
    ports, Node,
};

pub fn routes() -> Router<Node> {
    Router::new()
        .route("/network/ports", post(add).get(list))
        .route("/network/ports/random", get(random))
        .route("/network/ports/bulk-delete", post(bulk_delete))
        .route("/network/ports/{ip}/{port}", get(one).delete(delete))
        .route("/network/ports/{ip}/{port}/use", put(mark))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPort {
    ip: String,
    port: u32,
    #[serde(default = "ports::tcp")]
    protocol: String,
}

async fn add(
    State(node): State<Node>,
    JsonBody(body): JsonBody<AddPort>,
) -> NodeResult<Json<Value>> {
    let port = ports::add(&node, &body.ip, body.port, &body.protocol).await?;
    Ok(Json(json!({
        "message": "Port added to pool",
        "ip": port.ip,
        "port": port.port,
        "protocol": port.protocol,
    })))
}

/// A port in the path: a number that does not parse is simply not in the pool.
fn port_number(raw: &str) -> u32 {
    raw.parse().unwrap_or(0)
}

async fn one(
    State(node): State<Node>,
    Path((ip, port)): Path<(String, String)>,
) -> NodeResult<Json<ports::Port>> {
    Ok(Json(ports::get(&node, &ip, port_number(&port)).await?))
}

async fn list(State(node): State<Node>) -> NodeResult<Json<Value>> {
    Ok(Json(json!({"ports": ports::list(&node).await?})))
}

async fn random(State(node): State<Node>) -> NodeResult<Json<ports::Port>> {
    Ok(Json(ports::random_free(&node).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Usage {
    /// Hangar's extension: `false` frees the port again. Without a body the port is marked used.
    #[serde(default = "yes")]
    in_use: bool,
}

fn yes() -> bool {
    true
}

async fn mark(
    State(node): State<Node>,
    Path((ip, port)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> NodeResult<Json<Value>> {
    let in_use = if body.iter().all(u8::is_ascii_whitespace) {
        true
    } else {
        serde_json::from_slice::<Usage>(&body)
            .map_err(|e| NodeError::bad_request(format!("Invalid request body: {e}")))?
            .in_use
    };
    let port = ports::set_in_use(&node, &ip, port_number(&port), in_use).await?;
    Ok(Json(json!({
        "message": "Port usage updated",
        "ip": port.ip,
        "port": port.port,
        "in_use": port.in_use,
    })))
}

async fn delete(
    State(node): State<Node>,
    Path((ip, port)): Path<(String, String)>,
) -> NodeResult<Json<Value>> {
    ports::delete(&node, &ip, port_number(&port)).await?;
    Ok(Json(json!({"message": "Port deleted from pool"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkDelete {
    ports: Vec<PortRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortRef {
    ip: String,
    port: u32,
}

async fn bulk_delete(
    State(node): State<Node>,
    JsonBody(body): JsonBody<BulkDelete>,
) -> NodeResult<Json<Value>> {
    let list: Vec<(String, u32)> = body.ports.into_iter().map(|p| (p.ip, p.port)).collect();
    let deleted = ports::bulk_delete(&node, &list).await?;
    Ok(Json(json!({
        "message": format!("Deleted {deleted} ports from pool"),
        "deleted_count": deleted,
    })))
}
