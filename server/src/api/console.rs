//! Consoles and screens over WebSockets: the relay half of `domain::compute::console`.
//!
//! 1. `POST /api/vps/{id}/console {"kind": "console" | "screen"}` (bearer) → 201 with a ticket,
//!    valid for `console_ticket_secs` and once. The portal gets one from
//!    `POST /portal/machines/{id}/console` with its session and CSRF token.
//! 2. Open `GET <path>?ticket=<ticket>` as a WebSocket: `/api/vps/{id}/console/ws` or
//!    `/api/vps/{id}/screen/ws`. The upgrade must come from the ticket's user (the same bearer
//!    credential, or the same browser session), and an `Origin`, when sent, must be Hangar's
//!    own (`public_url`, or the host the request was sent to).
//!
//! **Text console protocol**: binary frames carry terminal bytes both ways (UTF-8 from the
//! machine, keystrokes to it). Text frames carry JSON control messages. Client → server:
//! `{"type":"resize","cols":N,"rows":M}` (a container's TTY follows it; a serial port has no
//! size), `{"type":"ping"}`. Server → client: `{"type":"status","state":"connecting"|"running"|
//! "stopped","message":...}` (sent first, then on every change: the machine stopped, started),
//! `{"type":"pong"}`, `{"type":"error","message":...}` (a control message not understood), and
//! `{"type":"closed","reason":...}` just before the server closes the socket (machine deleted,
//! token revoked, idle for `console_idle_secs`, too slow to keep up). On open the last
//! screenful of output (up to 64 KiB) arrives first. xterm.js's attach addon sends keystrokes as
//! text frames, which this protocol reads as control messages: send them as binary.
//!
//! **Screen**: the RFB (VNC) byte stream in binary frames both ways; the subprotocol `binary`
//! is echoed when offered (noVNC offers it and drops a socket that does not answer it).

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Path, Query, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::Response,
    Extension,
};
use domain::compute::console::{self, ConsoleState, Event, Grant, Kind, Seat};
use domain::compute::instances;
use domain::fleet::driver::{machine_name, ConsoleInput};
use domain::infra::error::ServiceError;
use domain::infra::revocations::Revocation;
use domain::{Actor, AppState};
use model::api::console::Ticket;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_sessions::Session;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::Caller,
        error::{ApiJson, AppError, Result},
        portal::{PortalChange, Refusal},
    },
};
use model::api::console::{TicketBody, TicketQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_ticket))
        .routes(routes!(console_ws))
        .routes(routes!(screen_ws))
}

/// A single-use ticket to open the machine's console or screen over a WebSocket at `path`
/// (append `?ticket=`), valid for `expires_in` seconds. See docs/API.md
/// ("Consoles and screens") for the WebSocket protocol.
#[utoipa::path(post, path = "/api/vps/{id}/console", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = TicketBody,
    responses((status = 201, body = Ticket), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn open_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TicketBody>,
) -> Result<(StatusCode, axum::Json<Ticket>)> {
    let kind = Kind::parse(&body.kind)?;
    let ticket = console::issue(&state, &caller.actor(), &id, kind).await?;
    Ok((StatusCode::CREATED, axum::Json(ticket)))
}

/// The machine's text console as a WebSocket (protocol: binary frames are terminal bytes, text
/// frames JSON control messages).
#[utoipa::path(get, path = "/api/vps/{id}/console/ws", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), TicketQuery),
    responses((status = 101, description = "Switching to the console's WebSocket"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn console_ws(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<TicketQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    let (grant, seat) = admit(&state, caller, &session, &headers, &id, Kind::Console, &q).await?;
    Ok(ws
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| text_console(state, grant, seat, socket)))
}

/// The VM's screen as a WebSocket carrying the RFB (VNC) stream; subprotocol `binary`.
#[utoipa::path(get, path = "/api/vps/{id}/screen/ws", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), TicketQuery),
    responses((status = 101, description = "Switching to the screen's WebSocket"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn screen_ws(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<TicketQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    let (grant, seat) = admit(&state, caller, &session, &headers, &id, Kind::Screen, &q).await?;
    // Connect before upgrading, so a machine without a screen is a clear 409, not a dead socket.
    let inst = instances::get(&state.db, &grant.user_id, &id).await?;
    let driver = domain::fleet::nodes::driver_for(&state, inst.node_id.as_deref())
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    let vnc = driver
        .open_screen(&machine_name(&inst.id))
        .await
        .map_err(|e| ServiceError::Conflict(e.to_string()))?;
    Ok(ws
        .protocols(["binary"])
        .on_upgrade(move |socket| screen(state, grant, seat, vnc, socket)))
}

/// Who may upgrade: the ticket's own user, from a page of Hangar's own.
async fn admit(
    state: &AppState,
    caller: Option<Extension<Caller>>,
    session: &Session,
    headers: &HeaderMap,
    id: &str,
    kind: Kind,
    q: &TicketQuery,
) -> Result<(Grant, Seat)> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let own = origin == state.config.public_url
            || origin.strip_prefix("http://") == Some(host)
            || origin.strip_prefix("https://") == Some(host);
        if !own {
            return Err(
                ServiceError::Forbidden("This console cannot be opened from another site").into(),
            );
        }
    }
    let user = match caller {
        Some(Extension(caller)) => caller.user,
        None => match app::ssr::portal::require_user(state, session).await {
            Ok(user) => user,
            Err(_) => return Err(AppError::Unauthenticated),
        },
    };
    let seat = state
        .consoles
        .seat(&user.id, console_limit(state, &user.id).await?)?;
    let grant = console::redeem(
        state,
        &user.id,
        user.credentials_version,
        id,
        kind,
        &q.ticket,
    )
    .await?;
    Ok((grant, seat))
}

/// How many consoles and screens the account may have open (its `consoles` quota).
async fn console_limit(state: &AppState, user_id: &str) -> Result<usize> {
    let limits = domain::compute::quotas::limits(&state.db, &state.config, user_id).await?;
    Ok(limits.consoles.max(0) as usize)
}

/// Why the server ends a console.
fn closed(reason: &str) -> Message {
    Message::Text(
        serde_json::json!({ "type": "closed", "reason": reason })
            .to_string()
            .into(),
    )
}

fn status(state: &ConsoleState) -> Message {
    let mut v = serde_json::to_value(state).unwrap_or_default();
    v["type"] = "status".into();
    Message::Text(v.to_string().into())
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u16, rows: u16 },
    Ping,
}

/// Ends a socket with a last message and a normal close.
async fn finish(socket: &mut WebSocket, reason: &str) {
    let _ = socket.send(closed(reason)).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: reason.chars().take(100).collect::<String>().into(),
        })))
        .await;
}

/// Checks the grant every [`console::RETRY`] and on revocations; `Some(reason)` when it ended.
struct Watch {
    grant: Grant,
    revocations: tokio::sync::broadcast::Receiver<Revocation>,
    check: tokio::time::Interval,
    idle: Duration,
    last_input: Instant,
}

impl Watch {
    fn new(state: &AppState, grant: Grant) -> Self {
        let mut check = tokio::time::interval(console::RETRY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            revocations: state.revocations.subscribe(),
            grant,
            check,
            idle: Duration::from_secs(state.config.console_idle_secs),
            last_input: Instant::now(),
        }
    }

    /// Resolves with the reason the console must end.
    async fn ended(&mut self, state: &AppState) -> String {
        loop {
            tokio::select! {
                r = self.revocations.recv() => match r {
                    Ok(r) if self.grant.ended_by(&r) => return r.reason().to_owned(),
                    _ => {}
                },
                // A rolling restart: the browser reconnects, through the load balancer, to
                // another replica (the machine's console itself is unaffected).
                _ = state.lifecycle.stopping() => {
                    return "This server is restarting; reconnecting".into();
                }
                _ = self.check.tick() => {
                    if self.last_input.elapsed() >= self.idle {
                        return format!("Closed after {} s without input", self.idle.as_secs());
                    }
                    if let Ok(false) = self.grant.still_allowed(&state.db).await {
                        return "Access to this machine ended".into();
                    }
                }
            }
        }
    }
}

async fn text_console(state: AppState, grant: Grant, _seat: Seat, mut socket: WebSocket) {
    let hub = state.consoles.attach(&state, &grant);
    let mut sub = hub.subscribe();
    if socket.send(status(&sub.state)).await.is_err() {
        return;
    }
    if !sub.history.is_empty() && socket.send(Message::Binary(sub.history)).await.is_err() {
        return;
    }
    let mut watch = Watch::new(&state, grant);
    loop {
        tokio::select! {
            event = sub.events.recv() => match event {
                Ok(Event::Output(bytes)) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() { return; }
                }
                Ok(Event::State(s)) => {
                    if socket.send(status(&s)).await.is_err() { return; }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    finish(&mut socket, "This viewer fell too far behind the console's output; reopen it").await;
                    return;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    finish(&mut socket, "The console closed").await;
                    return;
                }
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    watch.last_input = Instant::now();
                    hub.send(ConsoleInput::Data(bytes));
                }
                Some(Ok(Message::Text(text))) => {
                    watch.last_input = Instant::now();
                    match serde_json::from_str::<Control>(&text) {
                        Ok(Control::Resize { cols, rows }) if cols > 0 && rows > 0 => {
                            hub.send(ConsoleInput::Resize { cols, rows });
                        }
                        Ok(Control::Ping) => {
                            let pong = serde_json::json!({"type": "pong"}).to_string();
                            if socket.send(Message::Text(pong.into())).await.is_err() { return; }
                        }
                        _ => {
                            let err = serde_json::json!({"type": "error", "message": "Text frames are control messages ({\"type\":\"resize\",\"cols\":80,\"rows\":24} or {\"type\":\"ping\"}); send keystrokes as binary frames"}).to_string();
                            if socket.send(Message::Text(err.into())).await.is_err() { return; }
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            reason = watch.ended(&state) => {
                finish(&mut socket, &reason).await;
                return;
            }
        }
    }
}

async fn screen(
    state: AppState,
    grant: Grant,
    _seat: Seat,
    vnc: Box<dyn domain::fleet::driver::ScreenIo>,
    socket: WebSocket,
) {
    relay_screen(socket, vnc, Some((state, grant))).await;
}

/// Relays the RFB stream between a browser's WebSocket and a machine's VNC server until either
/// side closes or, with a grant, access ends. One frame at a time: a slow browser slows the VNC
/// stream (TCP pushes back) and nothing queues in the server. Public for the relay benchmark,
/// which runs it without a grant against a local byte source.
///
/// The read buffer starts small and doubles each time a read fills it, up to 1 MiB: an idle or
/// typing session holds 16 KiB, a full-screen video update gets frames large enough that the
/// relay moves bytes as fast as the machine's loopback does (docs/BENCHMARKS.md: at 64 KiB it
/// ran at two thirds of that).
pub async fn relay_screen(
    mut socket: WebSocket,
    vnc: Box<dyn domain::fleet::driver::ScreenIo>,
    access: Option<(AppState, Grant)>,
) {
    let (mut from_vnc, mut to_vnc) = tokio::io::split(vnc);
    let mut watch = access.map(|(state, grant)| (Watch::new(&state, grant), state));
    const FIRST_READ: usize = 16 * 1024;
    const LARGEST_READ: usize = 1024 * 1024;
    let mut buf = vec![0u8; FIRST_READ];
    loop {
        let ended = async {
            match watch.as_mut() {
                Some((w, state)) => w.ended(state).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = from_vnc.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    finish(&mut socket, "The machine's screen closed (it stopped or restarted)").await;
                    return;
                }
                Ok(n) => {
                    if socket.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        return;
                    }
                    if n == buf.len() && buf.len() < LARGEST_READ {
                        buf.resize(buf.len() * 2, 0);
                    }
                }
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some((w, _)) = watch.as_mut() {
                        w.last_input = Instant::now();
                    }
                    if to_vnc.write_all(&bytes).await.is_err() { return; }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            reason = ended => {
                finish(&mut socket, &reason).await;
                return;
            }
        }
    }
}

/// The portal's ticket: `POST /portal/machines/{id}/console?kind=` with the session and its CSRF
/// token in `x-csrf-token`.
pub async fn portal_ticket(
    State(state): State<AppState>,
    PortalChange(user): PortalChange,
    Path(id): Path<String>,
    Query(q): Query<PortalKind>,
) -> Result<(StatusCode, axum::Json<Ticket>), Refusal> {
    let kind = Kind::parse(&q.kind)?;
    let ticket = console::issue(&state, &Actor::user(&user.id), &id, kind).await?;
    Ok((StatusCode::CREATED, axum::Json(ticket)))
}

#[derive(Deserialize)]
pub struct PortalKind {
    pub kind: String,
}
