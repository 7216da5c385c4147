//! `/containers`: create, inspect, power, reinstall, rebind, delete, and the WebSocket.
//!
//! The WebSocket (`GET /containers/{id}/ws`, the bearer token in the `Authorization` header or,
//! for browsers, in `?token=`) first sends `{"event":"logs","data":<recent console output>}`
//! and the current state as `{"event":"event","data":...}`, then every `stats`, `console`,
//! `event` and `daemon_message` as they happen. A viewer that falls more than 1024 events
//! behind is told so with a `daemon_message` and skips ahead: a slow viewer never holds the
//! daemon's memory. Viewers send `{"event":"send_command","data":"say hi"}` (a line; the
//! newline is added) or `{"event":"console_input","data":"..."}` (raw keystrokes).

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        Path, State,
    },
    response::Response,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    containers::{self, Event, NewContainer, PortBinding},
    error::{JsonBody, NodeResult},
    Node,
};
use model::node::{Accepted, Container, ContainerList, ContainerSummary, LiveState, ViewerInput};

pub fn routes() -> Router<Node> {
    Router::new()
        .route("/containers", post(create).get(list))
        .route("/containers/{id}", get(show).delete(delete))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/reinstall", post(reinstall))
        .route("/containers/{id}/rebind-network", post(rebind))
        .route("/containers/{id}/ws", get(socket))
}

async fn create(
    State(node): State<Node>,
    JsonBody(body): JsonBody<NewContainer>,
) -> NodeResult<Json<Accepted>> {
    let record = containers::create(&node, body).await?;
    Ok(Json(Accepted {
        message: "Container creation started".into(),
        internal_id: record.internal_id,
        state: Some(LiveState::Installing),
    }))
}

/// The reference's fields, plus each container's `state`.
async fn list(State(node): State<Node>) -> NodeResult<Json<ContainerList>> {
    let containers = containers::list(&node)
        .await?
        .into_iter()
        .map(|c| ContainerSummary {
            state: containers::live(&node, &c).state(),
            internal_id: c.internal_id,
            container_id: c.container_id,
            install_state: c.install_state,
            image: c.image,
        })
        .collect();
    Ok(Json(ContainerList { containers }))
}

/// The reference's fields, plus `state` (installing, ready, starting, running, exit, failed)
/// and `environment`.
async fn show(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<Container>> {
    let record = containers::get(&node, &id).await?;
    let state = containers::live(&node, &record).state();
    Ok(Json(record.view(state)))
}

async fn delete(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<Value>> {
    containers::delete(&node, &id).await?;
    Ok(Json(json!({"message": "Container deleted successfully"})))
}

fn initiated(what: &str, id: &str) -> Json<Accepted> {
    Json(Accepted {
        message: format!("Container {what} initiated"),
        internal_id: id.to_owned(),
        state: None,
    })
}

async fn start(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<Accepted>> {
    containers::start(&node, &id).await?;
    Ok(initiated("start", &id))
}

async fn stop(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<Accepted>> {
    containers::halt(&node, &id, false).await?;
    Ok(initiated("stop", &id))
}

async fn kill(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<Accepted>> {
    containers::halt(&node, &id, true).await?;
    Ok(initiated("kill", &id))
}

async fn restart(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<Accepted>> {
    containers::restart(&node, &id).await?;
    Ok(initiated("restart", &id))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Reinstall {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    install_script: Option<String>,
    /// Hangar's extension: empty the volume before installing (default: keep the files).
    #[serde(default)]
    wipe: bool,
}

async fn reinstall(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> NodeResult<Json<Accepted>> {
    let body: Reinstall = if body.iter().all(u8::is_ascii_whitespace) {
        Reinstall::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            crate::error::NodeError::bad_request(format!("Invalid request body: {e}"))
        })?
    };
    containers::reinstall(&node, &id, body.image, body.install_script, body.wipe).await?;
    Ok(Json(Accepted {
        message: "Container reinstall started".into(),
        internal_id: id,
        state: None,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rebind {
    ports: Vec<PortBinding>,
}

async fn rebind(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rebind>,
) -> NodeResult<Json<Accepted>> {
    containers::rebind(&node, &id, body.ports).await?;
    Ok(Json(Accepted {
        message: "Network rebinding started".into(),
        internal_id: id,
        state: None,
    }))
}

async fn socket(
    State(node): State<Node>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> NodeResult<Response> {
    let record = containers::get(&node, &id).await?;
    let live = containers::live(&node, &record);
    Ok(ws.on_upgrade(move |mut socket: WebSocket| async move {
        // Subscribe before reading the history, so nothing falls between the two.
        let mut events = live.events.subscribe();
        let hello = [
            Event::Logs { data: live.history() },
            Event::Event { data: live.state() },
        ];
        for event in hello {
            if send(&mut socket, &event).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => {
                        if send(&mut socket, &event).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let notice = Event::DaemonMessage { data: format!("This viewer fell behind; {n} events were skipped") };
                        if send(&mut socket, &notice).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(msg) = serde_json::from_str::<ViewerInput>(text.as_str()) else {
                            let _ = send(&mut socket, &Event::DaemonMessage { data: "Unreadable message: expected {\"event\":\"send_command\",\"data\":\"...\"}".into() }).await;
                            continue;
                        };
                        let bytes = match msg {
                            ViewerInput::SendCommand(line) => format!("{line}\n"),
                            ViewerInput::ConsoleInput(keys) => keys,
                        };
                        if !live.send_input(bytes.as_bytes()).await {
                            let _ = send(&mut socket, &Event::DaemonMessage { data: "The container is not running".into() }).await;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }))
}

async fn send(socket: &mut WebSocket, event: &Event) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}
