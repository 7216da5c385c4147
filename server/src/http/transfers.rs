//! File bytes through Hangar, bounded: every upload and download of a machine's file (the API's
//! and the portal's) holds a pass of the replica's file-transfer gate (`infra::gates`) from
//! before its body is read until its last byte has been handed on, and one account can hold at
//! most `file_transfers_per_account` of them.
//!
//! Files inside machines and volumes are streamed both ways ([`FileStream`]): an upload with a
//! `Content-Length` goes to the driver as it arrives (into a container's archive, a VM's SSH
//! channel, a node daemon's volume), a download leaves as the node sends it, so Hangar holds a
//! chunk of each, not the file. An upload without a length (chunked) is read whole first, up to
//! `file_max_bytes`: a file's size must be known before its first byte goes on.

use axum::body::{Body, Bytes, HttpBody};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use domain::fleet::driver::FileStream;
use domain::infra::error::ServiceError;
use domain::infra::gates::Pass;
use domain::AppState;
use futures::{StreamExt, TryStreamExt};

/// Enters the file gate for `user_id` and takes the upload as a stream (413 at once when its
/// announced length passes `file_max_bytes`).
pub async fn receive(
    state: &AppState,
    user_id: &str,
    body: Body,
) -> Result<(Pass, FileStream), ServiceError> {
    let limit = state.config.file_max_bytes;
    match body.size_hint().exact() {
        Some(size) if size > limit => Err(too_large(limit)),
        Some(size) => {
            let pass = state.gates.files.enter(user_id).await?;
            let bytes = body
                .into_data_stream()
                .map_err(std::io::Error::other)
                .boxed();
            Ok((pass, FileStream { size, bytes }))
        }
        None => {
            let (pass, data) = receive_whole(state, user_id, body).await?;
            Ok((pass, FileStream::whole(data)))
        }
    }
}

/// Enters the file gate for `user_id`, then reads `body` whole (up to `file_max_bytes`; 413
/// beyond).
async fn receive_whole(
    state: &AppState,
    user_id: &str,
    body: Body,
) -> Result<(Pass, Bytes), ServiceError> {
    let pass = state.gates.files.enter(user_id).await?;
    let limit = state.config.file_max_bytes;
    let data = axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|_| too_large(limit))?;
    Ok((pass, data))
}

fn too_large(limit: u64) -> ServiceError {
    ServiceError::TooLarge(format!("The file is larger than {limit} bytes"))
}

/// A download: the bytes as they come, with their length (a browser shows progress; an
/// attachment named `filename` when given), keeping the pass until the last has been taken.
pub fn send(pass: Pass, file: FileStream, filename: Option<&str>) -> Response {
    let length = file.size;
    let body = Body::from_stream(file.bytes.map(move |chunk| {
        let _held = &pass;
        chunk
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
