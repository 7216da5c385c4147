//! Reference 002 compute types (pricing, VPS, snapshots, templates, SSH keys), shared by the
//! `/api` handlers, the portal's server functions and the browser.

use serde::{Deserialize, Serialize};

use crate::money::UsdNum;

/// A pricing plan (`GET /api/pricing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 0.0042))]
    pub price_hourly: UsdNum,
}

/// A VM template (`GET /api/templates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Image {
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub is_default: bool,
}

/// A VPS as reference 002 shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 0.0042))]
    pub price_hourly: UsdNum,
    pub ip: Option<String>,
    pub ssh_key_ids: Vec<String>,
    /// When a TTL applies: the time the VPS is destroyed (RFC 3339).
    pub expires_at: Option<String>,
    pub created_at: String,
}

/// A snapshot of a VPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub name: String,
    /// `creating`, `ready` or `failed`.
    pub state: String,
    pub created_at: String,
}

/// An SSH public key (`GET /api/keys`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SshKey {
    pub id: String,
    pub name: String,
    pub public_key: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    pub created_at: String,
}

/// An instance's internal state: one state machine behind three API dialects (DESIGN.md "API
/// surfaces"). Stored as [`InstanceState::as_str`] in `instances.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    Provisioning,
    Running,
    Stopping,
    Stopped,
    Rebooting,
    Failed,
    Deleted,
}

impl InstanceState {
    pub const ALL: [InstanceState; 7] = [
        InstanceState::Provisioning,
        InstanceState::Running,
        InstanceState::Stopping,
        InstanceState::Stopped,
        InstanceState::Rebooting,
        InstanceState::Failed,
        InstanceState::Deleted,
    ];

    /// The database's (and the portal's) text for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            InstanceState::Provisioning => "provisioning",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Rebooting => "rebooting",
            InstanceState::Failed => "failed",
            InstanceState::Deleted => "deleted",
        }
    }

    /// Reference 002 `state`.
    pub const fn vps(self) -> &'static str {
        match self {
            InstanceState::Provisioning => "creating",
            InstanceState::Running | InstanceState::Stopping | InstanceState::Rebooting => {
                "running"
            }
            InstanceState::Stopped => "stopped",
            InstanceState::Deleted => "deleted",
            InstanceState::Failed => "error",
        }
    }

    /// Reference 000 `status`.
    pub const fn server_status(self) -> &'static str {
        match self {
            InstanceState::Provisioning => "starting",
            InstanceState::Running => "active",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Rebooting => "rebooting",
            InstanceState::Deleted => "terminated",
            InstanceState::Failed => "error",
        }
    }

    /// Reference 004 `status.state` (a failed instance is `stopped` there, with its reason).
    pub const fn instance_state(self) -> &'static str {
        match self {
            InstanceState::Provisioning => "provisioning",
            InstanceState::Running | InstanceState::Rebooting => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Deleted => "terminated",
            InstanceState::Stopped | InstanceState::Failed => "stopped",
        }
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for InstanceState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        InstanceState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown instance state {s}"))
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceState;

    #[test]
    fn every_state_reads_back_from_its_text() {
        for s in InstanceState::ALL {
            assert_eq!(InstanceState::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert!(InstanceState::try_from("booting".to_owned()).is_err());
    }

    #[test]
    fn dialects_map_as_the_design_table_says() {
        use InstanceState::*;
        let table = [
            (Provisioning, "creating", "starting", "provisioning"),
            (Running, "running", "active", "running"),
            (Stopping, "running", "stopping", "stopping"),
            (Stopped, "stopped", "stopped", "stopped"),
            (Rebooting, "running", "rebooting", "running"),
            (Failed, "error", "error", "stopped"),
            (Deleted, "deleted", "terminated", "terminated"),
        ];
        for (s, vps, server, instance) in table {
            assert_eq!(
                (s.vps(), s.server_status(), s.instance_state()),
                (vps, server, instance)
            );
        }
    }
}

/// What a command run from the portal printed (the machine page's "Run command").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    pub duration_ms: i64,
    pub truncated: bool,
    pub timed_out: bool,
}

/// A background command as the machine page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandJob {
    pub job_id: String,
    pub command: String,
    /// `pending`, `running`, `done`, `timeout` or `cancelled`.
    pub status: String,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub created_at: String,
}

impl CommandJob {
    /// Still going: worth watching.
    pub fn open(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "running")
    }
}

/// One entry of a machine's volume (the file manager of machines on node daemons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeEntry {
    pub name: String,
    /// `file`, `directory`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Bytes; 0 for folders.
    pub size: u64,
    /// Last change, seconds since the epoch.
    pub modified: i64,
}

/// A page of a folder in a machine's volume (`GET /api/vps/{id}/volume?path=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeListing {
    /// The folder, relative to the volume's root (`/home/container` inside the machine).
    pub path: String,
    /// Folders first, then files, by name.
    pub files: Vec<VolumeEntry>,
    /// Entries in the folder.
    pub total: u64,
    pub offset: u64,
    /// Where the next page starts; absent on the last page.
    pub next_offset: Option<u64>,
    /// Bytes the volume holds, and may hold (`None`: no limit).
    pub used_bytes: u64,
    pub size_limit: Option<u64>,
}
