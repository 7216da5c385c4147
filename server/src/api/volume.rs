//! A machine's volume (machines on node daemons): the file manager's API. Paths are relative
//! to the volume's root (`/home/container` inside). Thin: the rules are
//! `domain::compute::volume`'s. Works whether the machine runs or not.

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::Response,
};
use domain::compute::volume;
use domain::AppState;
use model::compute::VolumeListing;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use crate::{
    api::ErrorBody,
    http::{
        auth::Caller,
        error::{ApiJson, Result},
        transfers,
    },
};
use model::api::volume::{
    CompressBody, Compressed, CopyBody, DecompressBody, Done, FolderBody, ListQuery, PathQuery,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, remove))
        .routes(routes!(make_folder))
        .routes(routes!(copy))
        .routes(routes!(compress))
        .routes(routes!(decompress))
        .routes(routes!(read, write).layer(DefaultBodyLimit::disable()))
}

fn done(message: &str) -> ApiJson<Done> {
    ApiJson(Done {
        message: message.to_owned(),
    })
}

/// A page of a folder of the VPS's volume: folders first, then files, by name; with the
/// volume's usage and limit.
#[utoipa::path(get, path = "/api/vps/{id}/volume", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), ListQuery),
    responses((status = 200, body = VolumeListing), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<ApiJson<VolumeListing>> {
    Ok(ApiJson(
        volume::list(&state, &caller.user.id, &id, &q.path, q.offset, q.limit).await?,
    ))
}

/// Delete a file, link or folder (with everything in it; links are removed, never followed).
#[utoipa::path(delete, path = "/api/vps/{id}/volume", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), PathQuery),
    responses((status = 200, body = Done), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<ApiJson<Done>> {
    volume::remove(&state, &caller.user.id, &id, &q.path).await?;
    Ok(done("Deleted"))
}

/// Create a folder (and any missing above it).
#[utoipa::path(post, path = "/api/vps/{id}/volume/folders", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = FolderBody,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn make_folder(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FolderBody>,
) -> Result<ApiJson<Done>> {
    volume::make_folder(&state, &caller.user.id, &id, &body.path).await?;
    Ok(done("Folder created"))
}

/// Copy a file or folder within the volume (within its disk limit; 413 beyond, nothing copied).
#[utoipa::path(post, path = "/api/vps/{id}/volume/copy", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CopyBody,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CopyBody>,
) -> Result<ApiJson<Done>> {
    volume::copy(
        &state,
        &caller.user.id,
        &id,
        &body.source,
        &body.destination,
    )
    .await?;
    Ok(done("Copied"))
}

/// Pack a file or folder into a `.tar.gz` at the volume's root.
#[utoipa::path(post, path = "/api/vps/{id}/volume/compress", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CompressBody,
    responses((status = 200, body = Compressed), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn compress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CompressBody>,
) -> Result<ApiJson<Compressed>> {
    let archive_path =
        volume::compress(&state, &caller.user.id, &id, &body.path, &body.output_name).await?;
    Ok(ApiJson(Compressed { archive_path }))
}

/// Unpack an archive. Refused whole (400) when an entry would land outside the destination or is
/// a device, fifo or hard link, and (413) when it would not fit the volume.
#[utoipa::path(post, path = "/api/vps/{id}/volume/decompress", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DecompressBody,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn decompress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecompressBody>,
) -> Result<ApiJson<Done>> {
    volume::decompress(
        &state,
        &caller.user.id,
        &id,
        &body.archive_path,
        &body.destination,
    )
    .await?;
    Ok(done("Unpacked"))
}

/// Download a file of the volume (raw bytes, up to `file_max_bytes`).
#[utoipa::path(get, path = "/api/vps/{id}/volume/content", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), PathQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Response> {
    let pass = state.gates.files.enter(&caller.user.id).await?;
    let file = volume::read(&state, &caller.user.id, &id, &q.path).await?;
    Ok(transfers::send(pass, file, None))
}

/// Upload a file into the volume: the raw body is the content (up to `file_max_bytes`; 413
/// beyond, or when the volume is full). Folders above it are created. 204.
#[utoipa::path(put, path = "/api/vps/{id}/volume/content", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), PathQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
    body: Body,
) -> Result<StatusCode> {
    let (_pass, file) = transfers::receive(&state, &caller.user.id, body).await?;
    volume::write(&state, &caller.user.id, &id, &q.path, file).await?;
    Ok(StatusCode::NO_CONTENT)
}
