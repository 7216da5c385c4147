//! Live state for the portal: `GET /events/machines` is a Server-Sent Events stream of the signed-in
//! user's machines (the reference-002 VPS list as JSON), sent when anything in it changes.
//!
//! The stream reads the database (once a second per open page) rather than listening to this
//! replica's job workers, so it shows changes made by every replica behind a load balancer.

use std::{convert::Infallible, time::Duration};

use app::ssr::portal;
use axum::{
    extract::State,
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use domain::compute::instances;
use domain::AppState;
use futures::stream::{self, Stream};
use tower_sessions::Session;

/// How often an open stream looks for changes.
const POLL: Duration = Duration::from_millis(1000);

pub async fn machines(State(state): State<AppState>, session: Session) -> Response {
    let user = match portal::current_user(&state, &session).await {
        Ok(Some(user)) => user,
        _ => return (StatusCode::UNAUTHORIZED, "Please sign in").into_response(),
    };
    Sse::new(changes(state, user.id))
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
