//! Consoles and screens from a test's side: tickets, WebSockets, reading until a text shows.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use super::{expect_json, TestApp};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ticket(app: &TestApp, token: &str, id: &str, kind: &str) -> Value {
    expect_json(
        app.post(
            &format!("/api/vps/{id}/console"),
            Some(token),
            json!({ "kind": kind }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
    .value
}

/// Opens `path?ticket=` as a WebSocket; the HTTP status when the upgrade is refused.
pub async fn open(
    app: &TestApp,
    path: &str,
    ticket: &str,
    bearer: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, u16> {
    let url = format!(
        "{}{path}?ticket={ticket}",
        app.base.replace("http://", "ws://")
    );
    let mut req = url.into_client_request().unwrap();
    if let Some(token) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// A fresh console ticket, opened with `token`.
pub async fn console(app: &TestApp, token: &str, id: &str) -> Ws {
    let t = ticket(app, token, id, "console").await;
    open(
        app,
        t["path"].as_str().unwrap(),
        t["ticket"].as_str().unwrap(),
        Some(token),
        None,
    )
    .await
    .expect("the console opens")
}

/// Everything the socket says (terminal bytes as text, control messages as their JSON) until
/// `needle` appears; panics with what it saw after `timeout`.
pub async fn read_until(ws: &mut Ws, needle: &str, timeout: Duration) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(Message::Text(t)))) => {
                seen.push_str(t.as_str());
                seen.push('\n');
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => panic!("the socket closed before {needle:?}: {seen}"),
            Err(_) => panic!("no {needle:?} within {timeout:?}; saw: {seen}"),
        }
    }
    seen
}

pub async fn type_in(ws: &mut Ws, text: &str) {
    ws.send(Message::Binary(text.as_bytes().to_vec().into()))
        .await
        .unwrap();
}
