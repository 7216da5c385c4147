//! The NoCloud network seed VMs boot from (see `fleet::driver::libvirt`): cloud-init fetches
//! `meta-data`, `user-data` and `vendor-data` from `/cloud-init/<instance id>/<seed key>/`. The
//! seed key is a per-instance secret in the URL, so guests cannot read each other's data; a wrong
//! key is a 404. `vendor-data` gives the machine its SSH host key and root's access for Hangar's
//! platform key (see `fleet::driver::guest`), which exec and files use.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use domain::accounts::keys;
use domain::compute::instances;
use domain::compute::instances::InstanceState;
use domain::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cloud-init/{id}/{key}/meta-data", get(meta_data))
        .route("/cloud-init/{id}/{key}/user-data", get(user_data))
        .route("/cloud-init/{id}/{key}/vendor-data", get(vendor_data))
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

async fn instance(state: &AppState, id: &str, key: &str) -> Option<instances::InstanceRow> {
    let inst = instances::load(&state.db, id).await.ok().flatten()?;
    // Constant-time enough: the key is 128 random bits and compared whole.
    (inst.seed_key == key && inst.state != InstanceState::Deleted).then_some(inst)
}

async fn meta_data(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let Some(inst) = instance(&state, &id, &key).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let wanted = inst.ssh_key_ids();
    let keys: Vec<String> = keys::list(&state.db, &inst.user_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|k| wanted.contains(&k.id))
        .map(|k| format!("  - \"{}\"\n", k.public_key.replace('"', "")))
        .collect();
    let mut body = format!("instance-id: {}\nlocal-hostname: {}\n", inst.id, inst.name);
    if !keys.is_empty() {
        body.push_str("public-keys:\n");
        body.extend(keys);
    }
    text(body)
}

async fn user_data(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    match instance(&state, &id, &key).await {
        Some(inst) => text(inst.user_data.unwrap_or_default()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn vendor_data(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    match instance(&state, &id, &key).await {
        Some(inst) => text(state.drivers.guest_keys().vendor_data(&inst.id)),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
