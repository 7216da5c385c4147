//! File bytes through Hangar, bounded: every upload and download of a machine's file (the API's
//! and the portal's) holds a pass of the replica's file-transfer gate (`infra::gates`) from
//! before its body is read until its answer has been handed on, so what file transfers hold in
//! memory at once is at most `file_transfers_max × file_max_bytes`, and one account can use at
//! most `file_transfers_per_account` of it.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use domain::infra::error::ServiceError;
use domain::infra::gates::Pass;
use domain::AppState;

/// Enters the file gate for `user_id`, then reads `body` (up to `file_max_bytes`; 413 beyond).
pub async fn receive(
    state: &AppState,
    user_id: &str,
    body: Body,
) -> Result<(Pass, Bytes), ServiceError> {
    let pass = state.gates.files.enter(user_id).await?;
    let limit = state.config.file_max_bytes;
    let data = axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|_| ServiceError::TooLarge(format!("The file is larger than {limit} bytes")))?;
    Ok((pass, data))
}

/// A download: the bytes (with their length, so a browser shows progress; an attachment named
/// `filename` when given), keeping the pass until they have been taken.
pub fn send(pass: Pass, data: Vec<u8>, filename: Option<&str>) -> Response {
    let length = data.len();
    let body = Body::from_stream(futures::stream::once(async move {
        let _held = pass;
        Ok::<_, std::convert::Infallible>(Bytes::from(data))
    }));
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response();
    if let Some(name) = filename {
        let disposition = format!("attachment; filename=\"{name}\"");
        if let Ok(value) = header::HeaderValue::from_str(&disposition) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}
