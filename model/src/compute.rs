//! The `/api` dialect compute types (pricing, VPS, snapshots, templates, SSH keys), shared by the
//! `/api` handlers, the portal's server functions and the browser.

use serde::{Deserialize, Serialize};

use crate::money::UsdNum;

/// Which driver family a plan, image, node or machine belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Virtual machines through libvirt.
    Vm,
    /// Containers through a Docker-API engine or a node daemon.
    Container,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Vm => "vm",
            Kind::Container => "container",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vm" => Some(Kind::Vm),
            "container" => Some(Kind::Container),
            _ => None,
        }
    }

    /// How a person calls it: `VM` or `container`.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Vm => "VM",
            Kind::Container => "container",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for VpsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Kind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Kind::parse(&s).ok_or_else(|| format!("unknown machine kind {s}"))
    }
}

/// Whether placement may use a node (`nodes.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// New machines may be placed here.
    Active,
    /// Running machines stay; nothing new is placed here.
    Draining,
}

impl NodeStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Active => "active",
            NodeStatus::Draining => "draining",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(NodeStatus::Active),
            "draining" => Some(NodeStatus::Draining),
            _ => None,
        }
    }
}

impl TryFrom<String> for NodeStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        NodeStatus::parse(&s).ok_or_else(|| format!("unknown node status {s}"))
    }
}

/// A VPS's `state` under `/api/vps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VpsState {
    Creating,
    Running,
    Stopped,
    Deleted,
    Error,
}

impl VpsState {
    pub const fn as_str(self) -> &'static str {
        match self {
            VpsState::Creating => "creating",
            VpsState::Running => "running",
            VpsState::Stopped => "stopped",
            VpsState::Deleted => "deleted",
            VpsState::Error => "error",
        }
    }
}

/// The action in flight on a machine (`instances.transition`); one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Create,
    Start,
    Stop,
    Restart,
    Delete,
    Snapshot,
    Restore,
}

impl Transition {
    const ALL: [Transition; 7] = [
        Transition::Create,
        Transition::Start,
        Transition::Stop,
        Transition::Restart,
        Transition::Delete,
        Transition::Snapshot,
        Transition::Restore,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Transition::Create => "create",
            Transition::Start => "start",
            Transition::Stop => "stop",
            Transition::Restart => "restart",
            Transition::Delete => "delete",
            Transition::Snapshot => "snapshot",
            Transition::Restore => "restore",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A snapshot's life (`snapshots.state`), shown as is in every API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SnapshotState {
    /// Its job has not finished.
    Creating,
    Ready,
    /// Its job gave up; it can only be deleted.
    Failed,
}

impl SnapshotState {
    pub const fn as_str(self) -> &'static str {
        match self {
            SnapshotState::Creating => "creating",
            SnapshotState::Ready => "ready",
            SnapshotState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Creating, Self::Ready, Self::Failed]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A pricing plan (`GET /api/pricing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub id: String,
    /// Short name accepted by `/v1/servers` (`plan`) and `/v1/instances` (`spec.type`).
    pub slug: String,
    pub name: String,
    /// `vm` (libvirt) or `container` (Docker-API engine).
    pub kind: Kind,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// USD per hour; running instances are charged per minute at this / 60.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 0.0042))]
    pub price_hourly: UsdNum,
    /// USD per hour while stopped, charged per minute too: a stopped machine gives its vCPU and
    /// memory back but keeps its disk (per GB-hour) and, for a VM, its public IPv4 address.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 0.0014))]
    pub stopped_hourly: UsdNum,
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
    pub kind: Kind,
    pub is_default: bool,
}

/// A plan as operators manage it (`GET /api/admin/plans`): retired ones too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorPlan {
    #[serde(flatten)]
    pub plan: Plan,
    /// `false` once retired: not offered; its machines keep running at their price.
    pub active: bool,
    /// Machines (not deleted) on this plan.
    pub machines: i64,
}

/// An image as operators manage it (`GET /api/admin/images`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorImage {
    #[serde(flatten)]
    pub image: Image,
    /// The libvirt base disk or boot line, or the container image reference.
    pub source: String,
    /// An app template (installed and run by a node daemon).
    pub app: bool,
    /// `false` once retired: not offered; machines made from it keep it.
    pub active: bool,
    /// Names of the nodes the last survey found holding it (none: customers are not offered it).
    pub nodes: Vec<String>,
    /// Machines (not deleted) made from it.
    pub machines: i64,
    /// Templates that name it.
    pub templates: i64,
}

/// A template as operators manage it (`GET /api/admin/templates`): retired ones too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorTemplate {
    #[serde(flatten)]
    pub template: Template,
    /// The plan's slug.
    pub plan: String,
    pub active: bool,
}

/// One point of a node's chart: allocation beside the host's own load, averaged over the
/// point's bucket; network as bytes per second over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodePoint {
    /// Epoch ms of the bucket's start (of the sample, for `1h`).
    pub at: i64,
    /// vCPU and memory placement handed out, % of what it may hand out (over-commit included).
    pub allocated_cpu_percent: f64,
    pub allocated_memory_percent: f64,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub disk_percent: Option<f64>,
    pub net_rx_bps: Option<f64>,
    pub net_tx_bps: Option<f64>,
}

/// A VPS as the `/api` dialect shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Vps {
    pub id: String,
    pub name: String,
    pub state: VpsState,
    /// The action in flight, `null` when idle. Power actions are refused (409) while one runs.
    pub transition: Option<Transition>,
    /// Why the VPS is in `error`, or why Hangar stopped it (e.g. the balance ran out).
    pub reason: Option<String>,
    /// While `transition` runs, what it is doing now in a person's words (e.g. `Booting: waiting
    /// for the guest to answer`); `null` otherwise. A VM is `running` only once its guest
    /// answers, so commands and files work as soon as the state says `running`.
    #[serde(default)]
    pub progress: Option<String>,
    pub plan_id: String,
    pub kind: Kind,
    pub image: String,
    pub region: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 0.0042))]
    pub price_hourly: UsdNum,
    /// USD per hour while stopped (its disk and public address, which it keeps).
    #[cfg_attr(feature = "openapi", schema(value_type = f64, example = 0.0014))]
    pub stopped_hourly: UsdNum,
    pub ip: Option<String>,
    pub ssh_key_ids: Vec<String>,
    /// When a TTL applies: the time the VPS is destroyed (RFC 3339).
    pub expires_at: Option<String>,
    pub created_at: String,
    /// Set (RFC 3339) while the node that hosts the machine cannot be reached: `state` is the
    /// last one known, and actions wait until the node answers again. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_since: Option<String>,
    /// The host ports a machine on a node daemon was given, `ip:port/protocol` (an app's
    /// players connect there; `ip` above is the same host). Absent for other machines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// What a container has written to its disk, as its node last measured it (bytes). Hangar
    /// stops a container that writes more than its `disk_gb`. Absent for VMs (their disk image
    /// is the bound) and before the first measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_used_bytes: Option<i64>,
    /// The pool it is shared with: its members see and use it by their role there (a pool
    /// `user` uses its console, commands and files; an `admin` also powers it and takes
    /// snapshots; the pool's owner may also delete it). Its creator pays for it wherever it is.
    /// Absent: only its creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
}

/// A snapshot of a VPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub name: String,
    pub state: SnapshotState,
    pub created_at: String,
    /// Why it failed, when `state` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

/// An instance's internal state: one state machine behind three API dialects (`/api/vps`,
/// `/v1/servers`, `/v1/instances`; docs/API.md). Stored as [`InstanceState::as_str`] in `instances.state`.
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

    /// `state` under `/api/vps`.
    pub const fn vps(self) -> VpsState {
        match self {
            InstanceState::Provisioning => VpsState::Creating,
            InstanceState::Running | InstanceState::Stopping | InstanceState::Rebooting => {
                VpsState::Running
            }
            InstanceState::Stopped => VpsState::Stopped,
            InstanceState::Deleted => VpsState::Deleted,
            InstanceState::Failed => VpsState::Error,
        }
    }

    /// `status` under `/v1/servers`.
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

    /// `status.state` under `/v1/instances` (a failed instance is `stopped` there, with its reason).
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
                (s.vps().as_str(), s.server_status(), s.instance_state()),
                (vps, server, instance)
            );
        }
    }
}

/// What a command printed and how it ended: the answer of `POST /api/vps/{id}/exec` (plus
/// `truncated` and `timed_out`), and what the machine page's "Run command" shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecResult {
    pub stdout: String,
    pub stderr: String,
    /// The command's exit status; `null` when it was killed at its timeout.
    pub exit_code: Option<i64>,
    pub duration_ms: i64,
    /// Output beyond 1 MiB per stream was dropped.
    pub truncated: bool,
    /// The command ran out of time and was killed (what it printed until then is kept).
    pub timed_out: bool,
}

/// A background command as the machine page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandJob {
    pub job_id: String,
    pub command: String,
    pub status: CommandStatus,
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub created_at: String,
}

impl CommandJob {
    /// Still going: worth watching.
    pub fn open(&self) -> bool {
        self.status.is_open()
    }
}

/// Where a background command is (`exec_jobs.status`). `failed` is Hangar's own: it could not run
/// the command or lost it (`reason` says why), so `cancelled` always means somebody cancelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CommandStatus {
    Pending,
    Running,
    Done,
    Timeout,
    Cancelled,
    Failed,
}

impl CommandStatus {
    const ALL: [CommandStatus; 6] = [
        CommandStatus::Pending,
        CommandStatus::Running,
        CommandStatus::Done,
        CommandStatus::Timeout,
        CommandStatus::Cancelled,
        CommandStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Running => "running",
            CommandStatus::Done => "done",
            CommandStatus::Timeout => "timeout",
            CommandStatus::Cancelled => "cancelled",
            CommandStatus::Failed => "failed",
        }
    }

    /// Not ended yet.
    pub const fn is_open(self) -> bool {
        matches!(self, CommandStatus::Pending | CommandStatus::Running)
    }
}

impl std::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CommandStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown command status {s}"))
    }
}

/// What a volume entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// A socket, a FIFO or a device a container made.
    Other,
}

impl EntryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Other => "other",
        }
    }
}

/// One entry of a machine's volume (the file manager of machines on node daemons; the node
/// daemon's listings too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
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

/// One sample of a machine's resource use, about once a second while it runs: the shape of
/// the node daemon API's `stats` event, which `GET /api/vps/{id}/stats` streams too. Network and block
/// figures are totals since the machine started; a rate is the difference of two samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineStats {
    /// Percent of one CPU (200.0: two CPUs busy).
    pub cpu_usage: f64,
    /// Bytes.
    pub memory_usage: u64,
    /// Bytes the machine may use.
    pub memory_limit: u64,
    pub network_rx: u64,
    pub network_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// A machine's resource history at one resolution (`GET /api/vps/{id}/history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageHistory {
    /// `1h`, `24h` or `30d`.
    pub range: String,
    /// Seconds each point covers: 60 for `1h` and `24h`, 3600 for `30d`.
    pub step_seconds: u64,
    /// Oldest first; steps when the machine did not run are absent (a gap, not a zero).
    pub points: Vec<UsagePoint>,
}

/// One step of a machine's resource history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsagePoint {
    /// The step's start (RFC 3339).
    pub at: String,
    /// Percent of one CPU (200.0: two CPUs busy): a one-second sample each minute, and the
    /// average of those over an hour.
    pub cpu: f64,
    /// Bytes in use (an hour's average for hourly points).
    pub memory: u64,
    /// Bytes the machine may use.
    pub memory_limit: u64,
    /// Bytes received and sent during the step.
    pub net_rx: u64,
    pub net_tx: u64,
    /// Bytes read from and written to its disk during the step.
    pub disk_read: u64,
    pub disk_write: u64,
}

/// Turns a Docker-API engine's stats (Docker or Podman, `GET /containers/{id}/stats`) into
/// samples. CPU is the CPU time used since the previous sample over the wall time between the
/// two, counted here rather than from the engine's `precpu_stats`: Podman streams only every
/// 5 s and its `system_cpu_usage` is scaled differently from Docker's, so callers ask for
/// one-shot samples once a second and this reader keeps the baseline. Networks and block
/// devices are summed.
#[cfg(feature = "docker")]
#[derive(Debug, Default)]
pub struct DockerStatsReader {
    /// When the previous sample was read, and the CPU time (ns) it reported.
    last: Option<(time::OffsetDateTime, u64)>,
}

#[cfg(feature = "docker")]
impl DockerStatsReader {
    /// The sample for `s`; `None` when there is nothing to chart: the container is not running
    /// (the engine answers a zero timestamp), or this is the first sample (no baseline yet).
    pub fn sample(&mut self, s: &bollard::models::ContainerStatsResponse) -> Option<MachineStats> {
        use time::{format_description::well_known::Rfc3339, OffsetDateTime};
        let read = s
            .read
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .filter(|t| t.year() > 1)?;
        let total = s
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0);
        let (before, before_total) = self.last.replace((read, total))?;
        let wall = (read - before).whole_nanoseconds() as f64;
        if wall < 1e8 {
            // Too close to the previous one to say anything; keep the older baseline.
            self.last = Some((before, before_total));
            return None;
        }
        let cpu_usage = total.saturating_sub(before_total) as f64 / wall * 100.0;
        let (mut network_rx, mut network_tx) = (0, 0);
        for n in s.networks.iter().flat_map(|n| n.values()) {
            network_rx += n.rx_bytes.unwrap_or(0);
            network_tx += n.tx_bytes.unwrap_or(0);
        }
        let (mut block_read, mut block_write) = (0, 0);
        let io = s
            .blkio_stats
            .as_ref()
            .and_then(|b| b.io_service_bytes_recursive.as_ref());
        for e in io.into_iter().flatten() {
            match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => block_read += e.value.unwrap_or(0),
                Some("write") => block_write += e.value.unwrap_or(0),
                _ => {}
            }
        }
        let memory = s.memory_stats.as_ref();
        Some(MachineStats {
            cpu_usage: (cpu_usage * 100.0).round() / 100.0,
            memory_usage: memory.and_then(|m| m.usage).unwrap_or(0),
            memory_limit: memory.and_then(|m| m.limit).unwrap_or(0),
            network_rx,
            network_tx,
            block_read,
            block_write,
        })
    }
}

/// Samples of the named container, about one a second, handed to `each` until it returns false
/// or the container is not running (gone, stopped: the engine refuses or answers a zero
/// timestamp three times in a row, so one slow answer does not end a chart).
#[cfg(feature = "docker")]
pub async fn follow_docker_stats(
    docker: &bollard::Docker,
    name: &str,
    mut each: impl FnMut(MachineStats) -> bool,
) {
    use futures::StreamExt;
    let mut reader = DockerStatsReader::default();
    let mut misses = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while misses < 3 {
        tick.tick().await;
        let options = bollard::query_parameters::StatsOptions {
            stream: false,
            one_shot: true,
        };
        let answer = docker.stats(name, Some(options)).next().await;
        let Some(Ok(s)) = answer else {
            misses += 1;
            continue;
        };
        if s.read.as_deref().is_none_or(|t| t.starts_with("0001-")) {
            misses += 1;
            continue;
        }
        misses = 0;
        if let Some(sample) = reader.sample(&s) {
            if !each(sample) {
                return;
            }
        }
    }
}

#[cfg(all(test, feature = "docker"))]
mod docker_stats_tests {
    use super::*;
    use bollard::models::{
        ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, ContainerNetworkStats,
        ContainerStatsResponse,
    };

    fn at(read: &str, cpu_ns: u64) -> ContainerStatsResponse {
        ContainerStatsResponse {
            read: Some(read.into()),
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(cpu_ns),
                    ..Default::default()
                }),
                // Podman's counter: wall time, not summed over CPUs (Docker's formula doubles).
                system_cpu_usage: Some(cpu_ns * 3),
                online_cpus: Some(2),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(64 << 20),
                limit: Some(256 << 20),
                ..Default::default()
            }),
            networks: Some(
                [
                    (
                        "eth0".to_owned(),
                        ContainerNetworkStats {
                            rx_bytes: Some(1000),
                            tx_bytes: Some(10),
                            ..Default::default()
                        },
                    ),
                    (
                        "eth1".to_owned(),
                        ContainerNetworkStats {
                            rx_bytes: Some(500),
                            tx_bytes: Some(5),
                            ..Default::default()
                        },
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_is_cpu_time_over_wall_time_between_samples() {
        let mut reader = DockerStatsReader::default();
        assert_eq!(
            reader.sample(&at("2026-11-30T10:00:00.000Z", 1_000_000_000)),
            None,
            "no baseline yet"
        );
        // Half a second of CPU in one second: 50 % of one CPU, whatever the engine's counters.
        let s = reader
            .sample(&at("2026-11-30T10:00:01.000Z", 1_500_000_000))
            .unwrap();
        assert_eq!(s.cpu_usage, 50.0);
        assert_eq!((s.memory_usage, s.memory_limit), (64 << 20, 256 << 20));
        assert_eq!(
            (s.network_rx, s.network_tx),
            (1500, 15),
            "networks are summed"
        );
        // Two CPUs busy for two seconds.
        let s = reader
            .sample(&at("2026-11-30T10:00:03.000Z", 5_500_000_000))
            .unwrap();
        assert_eq!(s.cpu_usage, 200.0);
    }

    #[test]
    fn a_stopped_container_or_a_too_close_sample_gives_nothing() {
        let mut reader = DockerStatsReader::default();
        assert_eq!(
            reader.sample(&at("0001-01-01T00:00:00Z", 0)),
            None,
            "the engine's zero date: not running"
        );
        reader.sample(&at("2026-11-30T10:00:00.000Z", 0));
        assert_eq!(
            reader.sample(&at("2026-11-30T10:00:00.002Z", 1_000_000)),
            None,
            "2 ms says nothing"
        );
        // The baseline stayed the older sample.
        let s = reader
            .sample(&at("2026-11-30T10:00:01.000Z", 250_000_000))
            .unwrap();
        assert_eq!(s.cpu_usage, 25.0);
    }
}

/// One limit of an account and how much of it is used (`GET /api/quotas`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaItem {
    /// `machines`, `vcpu`, `memory`, `disk`, `ipv4`, `consoles`, `background_commands`.
    pub name: String,
    /// What `used` and `limit` count (`MB`, `GB`, ...; empty for a plain count).
    pub unit: String,
    pub used: i64,
    pub limit: i64,
}

/// An account's limits, each with its use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quotas {
    pub items: Vec<QuotaItem>,
}

/// A machine as operators see every machine (`GET /api/admin/machines`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorMachine {
    pub id: String,
    pub name: String,
    /// `creating`, `running`, `stopped` or `error`.
    pub state: String,
    pub transition: Option<String>,
    pub reason: Option<String>,
    pub kind: String,
    pub owner_id: String,
    pub owner: String,
    pub node: Option<String>,
    pub ip: Option<String>,
    pub created_at: String,
}

/// A background job as operators trace it (`GET /api/admin/tasks`): what it did, to which
/// machine of whom on which node, how long its last attempt took and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: String,
    /// `create`, `start`, `stop`, `restart`, `delete`, `snapshot.create`, `snapshot.restore`,
    /// `snapshot.delete` or `mail`.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub machine_id: Option<String>,
    pub machine: Option<String>,
    pub owner_id: Option<String>,
    pub owner: Option<String>,
    pub node: Option<String>,
    pub created_at: String,
    /// When its last attempt started.
    pub started_at: Option<String>,
    /// How long its last attempt took, once it is done or failed.
    pub duration_ms: Option<i64>,
    /// Why it failed (or why its last attempt did, while it is retried).
    pub error: Option<String>,
}
