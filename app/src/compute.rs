//! Reference 002 compute types (pricing, VPS, snapshots, templates, SSH keys), shared by the
//! `/api` handlers, the portal's server functions and the browser.

use serde::{Deserialize, Serialize};

use crate::money::UsdNum;

/// A pricing plan (`GET /api/pricing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Plan {
    pub id: String,
    /// Short name accepted by `/v1/servers` (`plan`) and `/v1/instances` (`spec.type`).
    pub slug: String,
    pub name: String,
    /// `vm` (libvirt) or `container` (Docker-API engine).
    pub kind: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// USD per hour; running instances are charged per minute at this / 60.
    #[cfg_attr(feature = "ssr", schema(value_type = f64, example = 0.0042))]
    pub price_hourly: UsdNum,
}

/// A VM template (`GET /api/templates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Template {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub plan_id: String,
    pub image: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub user_data: Option<String>,
    /// The instance is destroyed this many minutes after it was created.
    pub ttl_minutes: Option<i64>,
    /// Instances made from it so far (the list is sorted by this, most used first).
    pub popularity: i64,
}

/// An OS image instances can be made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Image {
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub is_default: bool,
}

/// A VPS as reference 002 shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Vps {
    pub id: String,
    pub name: String,
    /// `creating`, `running`, `stopped` or `error`.
    pub state: String,
    /// The action in flight (`create`, `start`, `stop`, `restart`, `restore`, `snapshot`,
    /// `delete`), `null` when idle. Power actions are refused (409) while one runs.
    pub transition: Option<String>,
    /// Why the VPS is in `error`, or why Hangar stopped it (e.g. the balance ran out).
    pub reason: Option<String>,
    pub plan_id: String,
    pub kind: String,
    pub image: String,
    pub region: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    #[cfg_attr(feature = "ssr", schema(value_type = f64, example = 0.0042))]
    pub price_hourly: UsdNum,
    pub ip: Option<String>,
    pub ssh_key_ids: Vec<String>,
    /// When a TTL applies: the time the VPS is destroyed (RFC 3339).
    pub expires_at: Option<String>,
    pub created_at: String,
}

/// A snapshot of a VPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub name: String,
    /// `creating`, `ready` or `failed`.
    pub state: String,
    pub created_at: String,
}

/// An SSH public key (`GET /api/keys`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SshKey {
    pub id: String,
    pub name: String,
    pub public_key: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    pub created_at: String,
}

/// Internal instance state → reference 002 `state` (DESIGN.md "API surfaces").
pub fn vps_state(internal: &str) -> &'static str {
    match internal {
        "provisioning" => "creating",
        "running" | "stopping" | "rebooting" => "running",
        "stopped" => "stopped",
        "deleted" => "deleted",
        _ => "error",
    }
}

/// Internal instance state → reference 000 `status`.
pub fn server_status(internal: &str) -> &'static str {
    match internal {
        "provisioning" => "starting",
        "running" => "active",
        "stopping" => "stopping",
        "stopped" => "stopped",
        "rebooting" => "rebooting",
        "deleted" => "terminated",
        _ => "error",
    }
}

/// Internal instance state → reference 004 `status.state` (a failed instance is `stopped` there,
/// with its reason).
pub fn instance_state(internal: &str) -> &'static str {
    match internal {
        "provisioning" => "provisioning",
        "running" | "rebooting" => "running",
        "stopping" => "stopping",
        "deleted" => "terminated",
        _ => "stopped",
    }
}
