//! The node daemon's HTTP API (`hangar-node`), as both of its sides read and write it: the daemon
//! (`node/`) answers with these types and Hangar's driver for it
//! (`domain::fleet::driver::daemon`) reads them, so a field renamed on one side fails to compile
//! on the other instead of reading as empty at run time.
//!
//! Only the shapes the two sides exchange are here; the daemon's own storage types stay in
//! `node/`. Times are seconds since the epoch unless a field says otherwise.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::compute::MachineStats;

/// Where a container's install script stands (`install_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallState {
    Installing,
    Ready,
    Failed,
}

impl InstallState {
    /// The stored and shown text form.
    pub const fn as_str(self) -> &'static str {
        match self {
            InstallState::Installing => "installing",
            InstallState::Ready => "ready",
            InstallState::Failed => "failed",
        }
    }

    /// Reads the text form; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Installing, Self::Ready, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What a container is doing now (`state`, and the WebSocket's `event` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveState {
    Installing,
    /// Installed and not started (or stopped).
    Ready,
    /// Started; its start pattern has not been seen yet.
    Starting,
    Running,
    /// Its process ended.
    Exit,
    /// Its install failed.
    Failed,
}

impl LiveState {
    pub const fn as_str(self) -> &'static str {
        match self {
            LiveState::Installing => "installing",
            LiveState::Ready => "ready",
            LiveState::Starting => "starting",
            LiveState::Running => "running",
            LiveState::Exit => "exit",
            LiveState::Failed => "failed",
        }
    }

    /// Whether its process is up (running, or started and not yet ready).
    pub const fn is_up(self) -> bool {
        matches!(self, LiveState::Running | LiveState::Starting)
    }
}

/// The protocol a port has when none is named.
pub fn tcp() -> String {
    "tcp".into()
}

/// A port of the node's pool bound to a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortBinding {
    pub ip: String,
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

/// A port of the node's pool (`GET /network/ports/random` and the other port routes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PoolPort {
    pub ip: String,
    pub port: u16,
    pub protocol: String,
    pub in_use: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Memory and CPU limits: bytes and cores.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub memory: u64,
    #[serde(default)]
    pub cpu: f64,
    /// Hangar's extension: the most processes the container may hold; 0 takes the daemon's
    /// `limits.container_pids` (and is not shown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pids: u64,
}

/// What `POST /containers` takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContainer {
    pub internal_id: String,
    pub image: String,
    pub volume_id: String,
    pub startup_command: String,
    #[serde(default)]
    pub start_pattern: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub install_script: Option<String>,
    /// Hangar's extension: environment variables for the install script and the container.
    #[serde(default)]
    pub environment: HashMap<String, String>,
    /// Hangar's extension: containers given the same `network` (Hangar gives the owner's
    /// account) share one isolated network; each other container has one of its own.
    #[serde(default)]
    pub network: Option<String>,
}

/// Where a container's volume is mounted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    pub volume: String,
    pub target: String,
}

/// A container as `GET /containers/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub internal_id: String,
    pub container_id: Option<String>,
    pub volume_id: String,
    pub image: String,
    pub startup_command: String,
    pub start_pattern: Option<String>,
    pub install_state: InstallState,
    /// Why the install failed, when `install_state` is `failed`: the engine's error, or the
    /// script's exit code and the last lines it printed.
    pub install_error: Option<String>,
    pub ports: Vec<PortBinding>,
    pub limits: Limits,
    pub environment: HashMap<String, String>,
    /// Hangar's extension: the isolation group whose network the container joins (`null`: its
    /// own network).
    pub network: Option<String>,
    pub mount: Mount,
    pub created_at: i64,
    pub updated_at: i64,
    pub state: LiveState,
}

/// One container in `GET /containers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSummary {
    pub internal_id: String,
    pub container_id: Option<String>,
    pub install_state: InstallState,
    pub image: String,
    pub state: LiveState,
}

/// `GET /containers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerList {
    pub containers: Vec<ContainerSummary>,
}

/// The answer to a container action that goes on in the background (create, power, reinstall,
/// rebind): what was started, for which container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accepted {
    pub message: String,
    pub internal_id: String,
    /// Set by a create: `installing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<LiveState>,
}

/// What viewers of a container's WebSocket receive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A resource sample, once a second while the container runs.
    Stats(MachineStats),
    /// Console output.
    Console { data: String },
    /// The container's state changed (the first one sent is the state at connection).
    Event { data: LiveState },
    /// A note from the daemon itself (a viewer fell behind, input to a stopped container).
    DaemonMessage { data: String },
    /// Recent console output, sent once when a viewer connects.
    Logs { data: String },
}

/// What a viewer sends on a container's WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum ViewerInput {
    /// A line for the process's input (the newline is added).
    SendCommand(String),
    /// Raw keystrokes.
    ConsoleInput(String),
}

fn one_hour() -> String {
    "1h".into()
}

/// `POST /auth/tokens`: a token for the WebSocket, issued with the node's own token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `30s`, `1m`, `1h`, `7d`...
    #[serde(default = "one_hour")]
    pub ttl: String,
    #[serde(default)]
    pub remove_on_use: bool,
    /// Hangar's extension: scope the token to one container's WebSocket.
    #[serde(default)]
    pub container: Option<String>,
}

/// An issued token; `expires_at` is RFC 3339.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: String,
}

/// `POST /remote/token`: the daemon's own token, rotated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateToken {
    pub token: String,
}

/// `POST /volumes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVolume {
    /// Disk limit in bytes; absent: the daemon's `limits.volume_bytes`.
    #[serde(default)]
    pub size_limit: Option<u64>,
}

/// A volume as `GET /volumes/{id}` shows it (and `POST /volumes` answers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeView {
    pub volume_id: String,
    pub path: String,
    pub used_bytes: u64,
    pub size_limit: Option<u64>,
    pub created_at: i64,
}

/// `GET /volumes/{id}/files`: one page of a folder, folders first then by name; `total` is the
/// folder's entry count and `next_offset` where the next page starts (absent on the last page).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilesPage {
    pub path: String,
    pub files: Vec<crate::compute::VolumeEntry>,
    pub total: u64,
    pub offset: u64,
    pub next_offset: Option<u64>,
}

/// `POST /volumes/{id}/folders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderRequest {
    pub path: String,
}

/// `POST /volumes/{id}/copy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    pub source: String,
    pub destination: String,
}

fn tar_gz() -> String {
    "tar.gz".into()
}

/// `POST /volumes/{id}/compress`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressRequest {
    /// `tar.gz` (default) or `zip`.
    #[serde(default = "tar_gz")]
    pub format: String,
    pub output_name: String,
    /// Hangar's extension: what to pack (default: the whole volume).
    #[serde(default)]
    pub path: String,
}

/// What `POST /volumes/{id}/compress` made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Compressed {
    pub message: String,
    pub archive_path: String,
    pub size: u64,
}

/// `POST /volumes/{id}/decompress`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecompressRequest {
    pub archive_path: String,
    /// Default: the volume's root.
    #[serde(default)]
    pub destination: String,
}

/// A host's own figures at one moment (`GET /system/host`, and what every driver reports for
/// its node). Network counters are totals since the host booted; the charts turn two readings
/// into a rate. A figure that cannot be read is left out rather than guessed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// The node daemon's version (`hangar-node`); other backends have none.
    pub version: Option<String>,
    /// Busy CPU time over a short interval, in thousandths of all CPUs.
    pub cpu_permille: Option<i64>,
    pub memory_used_mb: Option<i64>,
    pub memory_total_mb: Option<i64>,
    /// The filesystem or storage pool machines' disks live on.
    pub disk_used_mb: Option<i64>,
    pub disk_total_mb: Option<i64>,
    pub net_rx_bytes: Option<i64>,
    pub net_tx_bytes: Option<i64>,
}

/// An error answer: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_what_they_write() {
        for s in [
            InstallState::Installing,
            InstallState::Ready,
            InstallState::Failed,
        ] {
            assert_eq!(InstallState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(InstallState::parse("done"), None);
        let event: Event = serde_json::from_str(r#"{"event":"event","data":"running"}"#).unwrap();
        assert_eq!(
            event,
            Event::Event {
                data: LiveState::Running
            }
        );
        let input = serde_json::to_value(ViewerInput::ConsoleInput("ls\r".into())).unwrap();
        assert_eq!(
            input,
            serde_json::json!({"event": "console_input", "data": "ls\r"})
        );
    }
}
