//! Request and response shapes of `server::api::admin_compute`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct HistoryRange {
    /// `1h` (every sample), `24h`, `7d` or `30d` (averaged into at most ~240 points).
    pub range: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct HistoryQuery {
    /// Only the holding that covered this moment (RFC 3339), for abuse reports.
    pub at: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct RemoveImage {
    /// `true` deletes the catalog entry for good (refused with 409 while a machine or template
    /// uses it); otherwise the image is retired.
    #[serde(default)]
    pub purge: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileReport {
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    pub destroyed: Vec<String>,
    pub unreachable_nodes: Vec<String>,
}

/// What an operator sends to create or change a plan. On an existing plan, fields left out keep
/// their value (see [`put_plan`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanInput {
    pub slug: String,
    pub name: String,
    /// `vm` or `container`.
    pub kind: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// USD per hour.
    pub price_hourly: f64,
    /// `false` retires it (as `DELETE` does); `true` offers it again.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What an operator sends to create or change an image (fields left out of a change keep their
/// value).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInput {
    pub slug: String,
    pub name: String,
    pub kind: String,
    /// libvirt: a base disk, as a volume name in the node's `default` pool (without `.qcow2`)
    /// or an absolute path, or a direct kernel boot `kernel=/p initrd=/p append=...` (see
    /// `driver::libvirt::BootSource`); docker: an image reference present on the node.
    pub source: String,
    #[serde(default)]
    pub is_default: bool,
    /// Makes the image an app template (containers): how a node daemon installs and runs it.
    #[serde(default)]
    pub app: Option<AppSpec>,
    /// `false` retires it: customers are no longer offered it; `true` offers it again.
    #[serde(default = "yes")]
    pub active: bool,
}

/// What an operator sends to create or change a template (fields left out of a change keep their
/// value; `null` clears an optional one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateInput {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Plan id or slug.
    pub plan: String,
    pub image: String,
    pub vcpu: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub user_data: Option<String>,
    pub ttl_minutes: Option<i64>,
    /// `false` retires it (as `DELETE` does); `true` offers it again.
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeInput {
    pub name: String,
    /// `vm` (libvirt URI) or `container` (Docker API address).
    pub kind: String,
    pub region: String,
    /// `qemu:///system`, `qemu+ssh://host/system`, `test:///abs/fixture.xml`; or
    /// `unix:///run/docker.sock`, `tcp://host:2375` (a Docker API); or
    /// `hangar-node+http://host:8070` (a node daemon, with its token in `secret`).
    pub uri: String,
    /// The node daemon's token (its config's `authorization.token`); stored, never shown.
    #[serde(default)]
    pub secret: Option<String>,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// What an operator changes on a node; fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeChange {
    /// `active` or `draining` (no new machines).
    pub status: Option<String>,
    pub name: Option<String>,
    pub region: Option<String>,
    /// A new address for the same host (moving a node's machines is not what this does: the
    /// machines must be where the new address leads).
    pub uri: Option<String>,
    pub vcpu: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolInput {
    pub region: String,
    /// First address of the range (IPv4).
    pub first: String,
    /// Last address of the range, inclusive.
    pub last: String,
    /// The prefix length of the subnet the addresses live in (e.g. 24).
    pub prefix_len: i64,
    /// The subnet's gateway, if guests should route through one (informational).
    pub gateway: Option<String>,
}

/// One holding of an address.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assignment {
    pub instance_id: String,
    pub instance_name: Option<String>,
    pub user_id: String,
    pub username: Option<String>,
    pub email: Option<String>,
    /// RFC 3339.
    pub assigned_at: String,
    /// RFC 3339; `null` while the address is still held.
    pub released_at: Option<String>,
}

/// An address, the range it belongs to now (if any), and everyone who held it, newest first.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddressHistory {
    pub address: String,
    pub region: Option<String>,
    pub pool_id: Option<String>,
    pub history: Vec<Assignment>,
}

/// An app template's recipe: what a node daemon runs for a container made from the image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Run with `sh -c` in `/home/container` (the machine's volume); default `sh`, an
    /// interactive shell on the console.
    #[serde(default)]
    pub startup_command: Option<String>,
    /// Runs once, in a separate container on the volume, before the first start.
    #[serde(default)]
    pub install_script: Option<String>,
    /// A regular expression: the machine counts as running once a console line matches it.
    #[serde(default)]
    pub start_pattern: Option<String>,
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
    /// How many host ports the machine gets from the node's pool.
    #[serde(default)]
    pub ports: u8,
}
