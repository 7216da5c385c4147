//! Live state for the portal: `GET /events/machines` is a Server-Sent Events stream of the signed-in
//! user's machines (the `/api/vps` list as JSON), sent when anything in it changes.
//!
//! `GET /events/me` streams the header's figures, `{"balance": micros, "invitations": n}`, when
//! they change: per-minute billing, a rental, a top-up or an invitation moves them without the
//! page changing, and the header must never show an old balance.
//!
//! `GET /events/machines/{id}/stats` streams one running machine's resource samples for its
//! charts (see `domain::compute::stats`), as `GET /api/vps/{id}/stats` does for API clients.
//!
//! Every stream ends when this replica stops (`domain::infra::lifecycle`): the browser's
//! EventSource reconnects, through the load balancer, to a replica still serving. Every stream
//! also ends within [`CREDENTIAL_CHECK`] of its credential ending — a sign-out everywhere, a
//! password change, a revoked token ([`revoked`]) — so nothing keeps flowing to a session its
//! owner took back.
//!
//! Each open stream holds one of its account's live-stream seats on this replica
//! (`streams_per_account`, see `domain::infra::gates`); one more answers 429, so one account
//! cannot hold this replica's connections and database polls without bound.
//!
//! The machine list reads the database (once a second per open page) rather than listening to this
//! replica's job workers, so it shows changes made by every replica behind a load balancer.

use std::{convert::Infallible, time::Duration};

use app::ssr::portal;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use domain::accounts::credentials::Credential;
use domain::compute::instances;
use domain::AppState;
use futures::stream::{self, Stream, StreamExt};
use model::compute::MachineStats;
use tokio::sync::mpsc::Receiver;
use tower_sessions::Session;

/// How often an open stream looks for changes.
const POLL: Duration = Duration::from_millis(1000);
/// How often an open stream checks that its credential is still good.
pub const CREDENTIAL_CHECK: Duration = Duration::from_secs(5);

/// Resolves once `credential` would no longer be accepted: at once when this replica took it
/// back, within [`CREDENTIAL_CHECK`] when another did.
pub async fn revoked(state: AppState, credential: Credential) {
    let mut revocations = state.revocations.subscribe();
    // An interval, not a sleep per turn: other accounts' revocations must not keep
    // postponing the check.
    let mut check = tokio::time::interval(CREDENTIAL_CHECK);
    check.tick().await;
    loop {
        tokio::select! {
            r = revocations.recv() => {
                if matches!(r, Ok(r) if credential.ended_by(&r)) {
                    return;
                }
            }
            _ = check.tick() => {
                if let Ok(false) = credential.still_valid(&state.db).await {
                    return;
                }
            }
        }
    }
}

pub async fn machines(State(state): State<AppState>, session: Session) -> Response {
    let user = match portal::current_user(&state, &session).await {
        Ok(Some(user)) => user,
        _ => return (StatusCode::UNAUTHORIZED, "Please sign in").into_response(),
    };
    let credential = Credential::person(&user);
    live(&state, credential, changes(state.clone(), user.id)).await
}

/// Serves `events` as a stream that ends with this replica, or within [`CREDENTIAL_CHECK`] of
/// `credential` ending, and holds one of its account's live-stream seats while it is open (429
/// when the account holds `streams_per_account` already).
async fn live<S>(state: &AppState, credential: Credential, events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let pass = match state.gates.streams.enter(&credential.user_id).await {
        Ok(pass) => pass,
        Err(e) => return crate::http::error::AppError::from(e).into_response(),
    };
    let events = events.map(move |event| {
        let _held = &pass;
        event
    });
    Sse::new(
        events
            .take_until(state.lifecycle.stopped())
            .take_until(revoked(state.clone(), credential)),
    )
    .keep_alive(KeepAlive::default())
    .into_response()
}

fn changes(state: AppState, user_id: String) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((String::new(), true), move |(last, first)| {
        let state = state.clone();
        let user_id = user_id.clone();
        async move {
            let mut last = last;
            let mut first = first;
            loop {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                first = false;
                let Ok(list) = instances::list(&state.db, &user_id).await else {
                    continue;
                };
                let json =
                    serde_json::to_string(&list.iter().map(|i| i.to_vps()).collect::<Vec<_>>())
                        .unwrap_or_default();
                if json != last {
                    last = json.clone();
                    return Some((
                        Ok(Event::default().event("message").data(json)),
                        (last, false),
                    ));
                }
            }
        }
    })
}

/// The signed-in user's machine's resource samples (the portal's charts).
pub async fn machine_stats(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let user = match portal::current_user(&state, &session).await {
        Ok(Some(user)) => user,
        _ => return (StatusCode::UNAUTHORIZED, "Please sign in").into_response(),
    };
    match domain::compute::stats::open(&state, &user.id, &id).await {
        Ok(samples) => stats(&state, samples, Credential::person(&user)).await,
        Err(e) => crate::http::error::AppError::from(e).into_response(),
    }
}

/// Samples as `stats` events until the machine stops or goes, then one `end` event (a browser's
/// EventSource would otherwise reconnect to a stream that is over: the portal closes it on
/// `end`), or until this replica stops (no `end`: the browser reconnects to another replica).
pub async fn stats(
    state: &AppState,
    samples: Receiver<MachineStats>,
    credential: Credential,
) -> Response {
    let events = stream::unfold(samples, |mut samples| async move {
        let sample = samples.recv().await?;
        let data = serde_json::to_string(&sample).unwrap_or_default();
        Some((
            Ok::<_, Infallible>(Event::default().event("stats").data(data)),
            samples,
        ))
    })
    .chain(stream::once(async {
        Ok(Event::default().event("end").data("the machine stopped"))
    }));
    live(state, credential, events).await
}

/// The signed-in user's balance and pending invitations, sent when they change.
pub async fn me(State(state): State<AppState>, session: Session) -> Response {
    let user = match portal::current_user(&state, &session).await {
        Ok(Some(user)) => user,
        _ => return (StatusCode::UNAUTHORIZED, "Please sign in").into_response(),
    };
    let credential = Credential::person(&user);
    let events = stream::unfold(
        (state.clone(), user.id, String::new(), true),
        |(state, id, last, first)| async move {
            let mut first = first;
            loop {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                first = false;
                let (Ok(balance), Ok(invitations)) = (
                    domain::accounts::users::balance(&state.db, &id).await,
                    domain::accounts::pools::pending_count(&state.db, &id).await,
                ) else {
                    continue;
                };
                let json =
                    serde_json::json!({"balance": balance, "invitations": invitations}).to_string();
                if json != last {
                    let event = Event::default().event("message").data(json.clone());
                    return Some((Ok::<_, Infallible>(event), (state, id, json, false)));
                }
            }
        },
    );
    live(&state, credential, events).await
}
