//! Files in and out of a machine for the signed-in browser: the portal's counterpart of
//! `PUT/GET /api/vps/:id/files` (the Files card, inside a running machine) and of
//! `PUT/GET /api/vps/:id/volume/content` (the file manager of machines on node daemons),
//! authenticated by the session cookie. An upload must carry the session's CSRF token in
//! `x-csrf-token` (a cross-site page cannot read it); a download is a plain GET, which changes
//! nothing. The rules are the domain's (`domain::compute::exec` and `::volume`).

use app::{error::PortalError, ssr::portal};
use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use domain::compute::{exec, volume};
use domain::fleet::driver::FileStream;
use domain::infra::gates::Pass;
use domain::AppState;
use serde::Deserialize;
use tower_sessions::Session;

use crate::http::portal::{PortalChange, Refusal};
use crate::http::transfers;

#[derive(Deserialize)]
pub struct FileQuery {
    pub path: String,
}

/// `GET /portal/machines/{id}/files?path=`: the file as a download.
pub async fn download(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let result = async {
        let user = signed_in(&state, &session).await?;
        let pass = state.gates.files.enter(&user).await?;
        Ok::<_, PortalError>((pass, exec::get_file(&state, &user, &id, &q.path).await?))
    };
    as_download(&q.path, result.await)
}

/// `GET /portal/machines/{id}/volume?path=`: a file of the machine's volume as a download.
pub async fn volume_download(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let result = async {
        let user = signed_in(&state, &session).await?;
        let pass = state.gates.files.enter(&user).await?;
        Ok::<_, PortalError>((pass, volume::read(&state, &user, &id, &q.path).await?))
    };
    as_download(&q.path, result.await)
}

fn as_download(path: &str, data: Result<(Pass, FileStream), PortalError>) -> Response {
    match data {
        Ok((pass, data)) => {
            let name: String = path
                .rsplit('/')
                .next()
                .unwrap_or("file")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            transfers::send(pass, data, Some(&name))
        }
        Err(e) => as_text(e),
    }
}

/// `PUT /portal/machines/{id}/files?path=`: the body is the file. 204, or `{status, message}`.
pub async fn upload(
    State(state): State<AppState>,
    PortalChange(user): PortalChange,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    body: Body,
) -> Result<StatusCode, Refusal> {
    let (_pass, file) = transfers::receive(&state, &user.id, body).await?;
    exec::put_file(&state, &user.id, &id, &q.path, file).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /portal/machines/{id}/volume?path=`: the body is a file for the machine's volume.
pub async fn volume_upload(
    State(state): State<AppState>,
    PortalChange(user): PortalChange,
    Path(id): Path<String>,
    Query(q): Query<FileQuery>,
    body: Body,
) -> Result<StatusCode, Refusal> {
    let (_pass, file) = transfers::receive(&state, &user.id, body).await?;
    volume::write(&state, &user.id, &id, &q.path, file).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn signed_in(state: &AppState, session: &Session) -> Result<String, PortalError> {
    Ok(portal::require_user(state, session).await?.id)
}

fn status_of(e: &PortalError) -> StatusCode {
    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A failed download as the browser shows it: a line of text with its status.
fn as_text(e: PortalError) -> Response {
    (status_of(&e), format!("{}\n", e.message)).into_response()
}
