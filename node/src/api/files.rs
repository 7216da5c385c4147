//! `/volumes`: volumes and the files in them. Every path goes through [`crate::confined`].
//!
//! Beyond the reference: `GET /volumes` and `GET /volumes/{id}` (usage and limit), `DELETE
//! /volumes/{id}`, `DELETE /volumes/{id}/files?path=`, streamed upload and download at
//! `PUT|GET /volumes/{id}/files/content?path=`, and listing pages (`offset`, `limit`).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Json, Router,
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::{
    archive,
    confined::{Budget, VolPath},
    error::{JsonBody, NodeError, NodeResult},
    volumes::{self, blocking, Volume, VolumeView},
    Node,
};
use model::node::{
    CompressRequest, Compressed, CopyRequest, DecompressRequest, FilesPage, FolderRequest,
    NewVolume,
};

pub fn routes() -> Router<Node> {
    Router::new()
        .route("/volumes", post(create).get(list_volumes))
        .route("/volumes/{id}", get(show).delete(delete_volume))
        .route(
            "/volumes/{id}/files",
            post(write).get(list).delete(delete_path),
        )
        // Uploads stream into the volume and are bounded by its quota, not by a body limit.
        .route(
            "/volumes/{id}/files/content",
            get(download).merge(put(upload).layer(DefaultBodyLimit::disable())),
        )
        .route("/volumes/{id}/folders", post(folder))
        .route("/volumes/{id}/copy", post(copy))
        .route("/volumes/{id}/compress", post(compress))
        .route("/volumes/{id}/decompress", post(decompress))
}

async fn create(State(node): State<Node>, body: axum::body::Bytes) -> NodeResult<Response> {
    let body: NewVolume = if body.iter().all(u8::is_ascii_whitespace) {
        NewVolume::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| NodeError::bad_request(format!("Invalid request body: {e}")))?
    };
    let volume = volumes::create(&node, body.size_limit).await?;
    Ok((StatusCode::CREATED, Json(VolumeView::from(&*volume))).into_response())
}

async fn list_volumes(State(node): State<Node>) -> Json<Value> {
    let all: Vec<VolumeView> = node
        .volumes()
        .all()
        .iter()
        .map(|v| VolumeView::from(&**v))
        .collect();
    Json(json!({"volumes": all}))
}

async fn show(State(node): State<Node>, Path(id): Path<String>) -> NodeResult<Json<VolumeView>> {
    let volume = node.volumes().get(&id)?;
    let counted = volume.clone();
    blocking(move || {
        let tree = counted.tree()?;
        counted.refresh(&tree)
    })
    .await?;
    Ok(Json(VolumeView::from(&*volume)))
}

async fn delete_volume(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> NodeResult<Json<Value>> {
    volumes::delete(&node, &id).await?;
    Ok(Json(json!({"message": "Volume deleted successfully"})))
}

/// Runs `work` on the volume's tree off the async threads, after counting the volume again if a
/// container may have changed it.
async fn on_tree<T: Send + 'static>(
    volume: Arc<Volume>,
    work: impl FnOnce(&crate::confined::Tree, &Volume) -> Result<T, crate::confined::FsError>
        + Send
        + 'static,
) -> NodeResult<T> {
    blocking(move || {
        let tree = volume.tree()?;
        volume.refresh(&tree)?;
        work(&tree, &volume)
    })
    .await
}

fn parse(path: &str) -> NodeResult<VolPath> {
    Ok(VolPath::parse(path)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteFile {
    path: String,
    content: String,
}

async fn write(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WriteFile>,
) -> NodeResult<Json<Value>> {
    let volume = node.volumes().get(&id)?;
    let max = node.config().limits.file_write_bytes;
    if body.content.len() > max {
        return Err(NodeError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Content is larger than {max} bytes; upload it with PUT /volumes/{id}/files/content"),
        ));
    }
    let path = parse(&body.path)?;
    let shown = path.display();
    on_tree(volume, move |tree, volume| {
        tree.write(&path, body.content.as_bytes(), &volume.quota)
    })
    .await?;
    Ok(Json(
        json!({"message": "File written successfully", "path": shown}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    limit: Option<usize>,
}

/// A folder's entries, folders first then by name, one page at a time: `total` is the folder's
/// entry count and `next_offset` is where the next page starts (absent on the last page).
async fn list(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> NodeResult<Json<FilesPage>> {
    let volume = node.volumes().get(&id)?;
    let page = q
        .limit
        .unwrap_or(node.config().limits.list_page)
        .clamp(1, 10_000);
    let path = parse(&q.path)?;
    let shown = path.display();
    let offset = q.offset;
    let (files, total) = blocking(move || volume.tree()?.list_page(&path, offset, page)).await?;
    let next = (offset + page).min(total);
    Ok(Json(FilesPage {
        path: shown,
        files,
        total: total as u64,
        offset: q.offset as u64,
        next_offset: (next < total).then_some(next as u64),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathQuery {
    path: String,
}

async fn delete_path(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> NodeResult<Json<Value>> {
    let volume = node.volumes().get(&id)?;
    let path = parse(&q.path)?;
    let shown = path.display();
    on_tree(volume, move |tree, volume| {
        let freed = tree.remove(&path)?;
        volume.quota.release(freed);
        Ok(())
    })
    .await?;
    Ok(Json(
        json!({"message": "Deleted successfully", "path": shown}),
    ))
}

async fn folder(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FolderRequest>,
) -> NodeResult<Json<Value>> {
    let volume = node.volumes().get(&id)?;
    let path = parse(&body.path)?;
    let shown = path.display();
    on_tree(volume, move |tree, _| tree.create_dir(&path)).await?;
    Ok(Json(
        json!({"message": "Folder created successfully", "path": shown}),
    ))
}

async fn copy(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CopyRequest>,
) -> NodeResult<Json<Value>> {
    let volume = node.volumes().get(&id)?;
    let (from, to) = (parse(&body.source)?, parse(&body.destination)?);
    let (source, destination) = (from.display(), to.display());
    on_tree(volume, move |tree, volume| {
        tree.copy(&from, &to, &volume.quota)
    })
    .await?;
    Ok(Json(json!({
        "message": "Copied successfully",
        "source": source,
        "destination": destination,
    })))
}

async fn compress(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CompressRequest>,
) -> NodeResult<Json<Compressed>> {
    let volume = node.volumes().get(&id)?;
    let format = archive::Format::parse(&body.format)?;
    let from = parse(&body.path)?;
    let ext = format.extension();
    let name = if body.output_name.ends_with(&format!(".{ext}")) {
        body.output_name.clone()
    } else {
        format!("{}.{ext}", body.output_name)
    };
    let out = parse(&name)?;
    if out.is_root() {
        return Err(NodeError::bad_request("Invalid output_name: it is empty"));
    }
    let shown = out.display();
    let size = on_tree(volume, move |tree, volume| {
        archive::compress(tree, &from, &out, format, &volume.quota)
    })
    .await?;
    Ok(Json(Compressed {
        message: "Compression successful".into(),
        archive_path: shown,
        size,
    }))
}

async fn decompress(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecompressRequest>,
) -> NodeResult<Json<Value>> {
    let volume = node.volumes().get(&id)?;
    let limits = node.config().limits.clone();
    let caps = archive::Caps {
        entries: limits.archive_entries,
        bytes: limits.archive_bytes,
    };
    let (archive_path, dest) = (parse(&body.archive_path)?, parse(&body.destination)?);
    let shown = dest.display();
    on_tree(volume, move |tree, volume| {
        archive::decompress(tree, &archive_path, &dest, &volume.quota, caps)
    })
    .await?;
    Ok(Json(
        json!({"message": "Decompression successful", "destination": shown}),
    ))
}

/// Streams a file out of the volume.
async fn download(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> NodeResult<Response> {
    let volume = node.volumes().get(&id)?;
    let path = parse(&q.path)?;
    let name = path.parts().last().cloned().unwrap_or_default();
    let (file, size) = blocking(move || volume.tree()?.open_file(&path)).await?;
    let stream =
        tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 64 * 1024);
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\', '\r', '\n'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Streams the request body into a file of the volume: counted against the quota as it
/// arrives, staged beside the target and put in place only when complete. While it uploads, a
/// replacement needs room beside the file it replaces.
async fn upload(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
    body: Body,
) -> NodeResult<Json<Value>> {
    let volume = node.volumes().get(&id)?;
    let path = parse(&q.path)?;
    let shown = path.display();
    let (staged, file) = on_tree(volume.clone(), move |tree, _| {
        let mut staged = tree.stage(&path)?;
        let file = staged.take_file();
        Ok((staged, file))
    })
    .await?;
    let mut file = tokio::fs::File::from_std(file);
    let mut written = 0u64;
    let mut stream = body.into_data_stream();
    let streamed: NodeResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| NodeError::bad_request(format!("Upload interrupted: {e}")))?;
            volume.quota.reserve(chunk.len() as u64)?;
            written += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| NodeError::internal(format!("Failed to write file: {e}")))?;
        }
        file.sync_data()
            .await
            .map_err(|e| NodeError::internal(format!("Failed to write file: {e}")))?;
        Ok(())
    }
    .await;
    if let Err(e) = streamed {
        volume.quota.release(written);
        blocking(move || {
            drop(staged);
            Ok(())
        })
        .await?;
        return Err(e);
    }
    let replaced = blocking(move || staged.commit()).await;
    match replaced {
        Ok(replaced) => volume.quota.release(replaced),
        Err(e) => {
            volume.quota.release(written);
            return Err(e);
        }
    }
    Ok(Json(
        json!({"message": "File uploaded successfully", "path": shown, "size": written}),
    ))
}
