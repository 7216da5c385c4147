//! Request and response shapes of `server::api::vps`.

use crate::compute::Vps;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddKeyRequest {
    #[cfg_attr(feature = "openapi", schema(example = "laptop"))]
    pub name: String,
    /// One OpenSSH public key line.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "ssh-ed25519 AAAAC3Nza... you@laptop")
    )]
    pub public_key: String,
}

#[derive(Deserialize, Clone, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateVpsRequest {
    /// Hostname: 1–63 letters, digits, `-`, `_`, `.`.
    #[cfg_attr(feature = "openapi", schema(example = "web-01"))]
    pub name: String,
    /// From `GET /api/pricing` (id or slug). Optional with a template.
    pub plan_id: Option<String>,
    /// A template slug; its fields are defaults that the fields here override.
    pub template: Option<String>,
    /// Image slug; default: the template's, else the plan kind's default image.
    pub image: Option<String>,
    pub region: Option<String>,
    /// At most the plan's.
    pub vcpu: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    /// Keys injected at first boot (cloud-init).
    #[serde(default)]
    pub ssh_key_ids: Vec<String>,
    /// cloud-init user data (plain text, up to 64 KiB).
    pub user_data: Option<String>,
    /// Destroy the VPS this many minutes after creation.
    pub ttl_minutes: Option<i64>,
    /// Share it with this pool from the start (you must be the pool's owner or an admin); its
    /// members then see and use it by their role. You pay for it wherever it is.
    pub pool_id: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// The pool to share the machine with, or `null` to take it out of its pool.
    pub pool_id: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VncPort {
    /// VNC port on the VPS's node, listening on 127.0.0.1 there (use the portal's console, or an
    /// SSH tunnel to the node).
    pub port: u16,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct HistoryQuery {
    /// `1h` or `24h` (a point a minute) or `30d` (a point an hour); default `1h`.
    pub range: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    #[cfg_attr(feature = "openapi", schema(example = "before-upgrade"))]
    pub name: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    pub status: &'static str,
    /// Poll `GET /v1/operations/{operation_id}` (or the VPS) for the outcome.
    pub operation_id: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchCreateRequest {
    /// At most `max_batch_size` (default 10) items, each like `POST /api/vps`.
    pub vms: Vec<serde_json::Value>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vps: Option<Vps>,
    /// Present when this item failed; the others are unaffected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The HTTP status this item would have had on its own.
    pub status: u16,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResults {
    pub results: Vec<BatchItem>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BatchDeleteRequest {
    pub ids: Vec<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchDeleteItem {
    pub id: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchDeleteResults {
    pub results: Vec<BatchDeleteItem>,
}
