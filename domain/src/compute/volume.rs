//! The file manager of machines on node daemons: their volume (`/home/container` inside),
//! browsed and changed from outside whether the machine runs or not — a server's config can be
//! fixed while it is stopped. Scoped to the caller (another user's machine is a 404); every
//! change is written to the audit log. Paths are relative to the volume's root and confined by
//! the node (see `hangar-node`'s `confined`); a machine without a separate volume (VMs, Docker-API
//! containers) answers 409 and points to Files, which works inside running machines.

use std::sync::Arc;

use model::compute::{InstanceState, VolumeListing};

use crate::compute::instances;
use crate::fleet::driver::{machine_name, Driver, DriverError, FileStream};
use crate::infra::audit;
use crate::infra::error::{ServiceError, ServiceResult};
use crate::AppState;

/// Entries per page unless the caller asks fewer (the node caps pages at 10,000).
pub const PAGE: u64 = 200;

fn error(e: DriverError) -> ServiceError {
    e.for_content("File or folder", "(volume)")
}

/// The caller's machine and its driver, when the machine has a volume to manage.
async fn machine(
    state: &AppState,
    user_id: &str,
    id: &str,
) -> ServiceResult<(String, Arc<dyn Driver>)> {
    let inst = instances::get(&state.db, user_id, id).await?;
    if matches!(
        inst.state,
        InstanceState::Provisioning | InstanceState::Deleted
    ) {
        return Err(ServiceError::Conflict(
            "The machine is being created; its files appear when it is ready".into(),
        ));
    }
    let driver = crate::fleet::nodes::driver_for(state, inst.node_id.as_deref())
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    if driver.volume().is_none() {
        return Err(ServiceError::Conflict(
            "This machine has no separate volume; use Files (commands and files inside the running machine)".into(),
        ));
    }
    Ok((machine_name(&inst.id), driver))
}

fn volume(driver: &Arc<dyn Driver>) -> ServiceResult<&dyn crate::fleet::driver::Volume> {
    driver
        .volume()
        .ok_or_else(|| ServiceError::Conflict("This machine has no separate volume".into()))
}

async fn audited(
    state: &AppState,
    user_id: &str,
    id: &str,
    action: &str,
    detail: serde_json::Value,
) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(&state.db).await?;
    audit::record(&mut tx, Some(user_id), action, "instance", Some(id), detail).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
    offset: u64,
    limit: Option<u64>,
) -> ServiceResult<VolumeListing> {
    let (name, driver) = machine(state, user_id, id).await?;
    let limit = limit.unwrap_or(PAGE).clamp(1, 10_000);
    volume(&driver)?
        .list(&name, path, offset, limit)
        .await
        .map_err(error)
}

pub async fn make_folder(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
) -> ServiceResult<()> {
    let (name, driver) = machine(state, user_id, id).await?;
    volume(&driver)?
        .make_folder(&name, path)
        .await
        .map_err(error)?;
    audited(
        state,
        user_id,
        id,
        "volume.folder",
        serde_json::json!({ "path": path }),
    )
    .await
}

pub async fn copy(
    state: &AppState,
    user_id: &str,
    id: &str,
    from: &str,
    to: &str,
) -> ServiceResult<()> {
    let (name, driver) = machine(state, user_id, id).await?;
    volume(&driver)?
        .copy(&name, from, to)
        .await
        .map_err(error)?;
    audited(
        state,
        user_id,
        id,
        "volume.copy",
        serde_json::json!({ "source": from, "destination": to }),
    )
    .await
}

pub async fn remove(state: &AppState, user_id: &str, id: &str, path: &str) -> ServiceResult<()> {
    let (name, driver) = machine(state, user_id, id).await?;
    volume(&driver)?.remove(&name, path).await.map_err(error)?;
    audited(
        state,
        user_id,
        id,
        "volume.delete",
        serde_json::json!({ "path": path }),
    )
    .await
}

/// Packs `path` (the whole volume when empty) into `<output_name>.tar.gz`; the archive's path.
pub async fn compress(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
    output_name: &str,
) -> ServiceResult<String> {
    let (name, driver) = machine(state, user_id, id).await?;
    let archive = volume(&driver)?
        .compress(&name, path, output_name)
        .await
        .map_err(error)?;
    audited(
        state,
        user_id,
        id,
        "volume.compress",
        serde_json::json!({ "path": path, "archive": archive }),
    )
    .await?;
    Ok(archive)
}

pub async fn decompress(
    state: &AppState,
    user_id: &str,
    id: &str,
    archive: &str,
    destination: &str,
) -> ServiceResult<()> {
    let (name, driver) = machine(state, user_id, id).await?;
    volume(&driver)?
        .decompress(&name, archive, destination)
        .await
        .map_err(error)?;
    audited(
        state,
        user_id,
        id,
        "volume.decompress",
        serde_json::json!({ "archive": archive, "destination": destination }),
    )
    .await
}

/// A file's content as the node sends it, up to `file_max_bytes`.
pub async fn read(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
) -> ServiceResult<FileStream> {
    let (name, driver) = machine(state, user_id, id).await?;
    volume(&driver)?
        .read(&name, path, state.config.file_max_bytes)
        .await
        .map_err(error)
}

/// A text file's content whole (the portal's editor): `Invalid` when it is not UTF-8.
pub async fn read_text(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
) -> ServiceResult<String> {
    let data = read(state, user_id, id, path)
        .await?
        .collect()
        .await
        .map_err(error)?;
    String::from_utf8(data.to_vec())
        .map_err(|_| ServiceError::Invalid("This is not a text file; download it instead".into()))
}

pub async fn write(
    state: &AppState,
    user_id: &str,
    id: &str,
    path: &str,
    file: FileStream,
) -> ServiceResult<()> {
    let (name, driver) = machine(state, user_id, id).await?;
    let size = file.size;
    volume(&driver)?
        .write(&name, path, file)
        .await
        .map_err(error)?;
    audited(
        state,
        user_id,
        id,
        "volume.write",
        serde_json::json!({ "path": path, "bytes": size }),
    )
    .await
}
