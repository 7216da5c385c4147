//! Compute drivers: the one interface Hangar uses to run machines, whatever runs them.
//!
//! [`Driver`] is object safe and lives in state as `Arc<dyn Driver>`; [`Drivers`] hands out one
//! per node, built by [`connect`] from the node's kind and URI. Each backend has its own module:
//! [`libvirt`] for VMs, [`docker`] for containers. Every method says what calling it twice does,
//! because jobs are retried after a crash and the reconciler repeats itself by design: a retried
//! action must land in the same place as a single one.

pub mod daemon;
pub mod docker;
pub mod guest;
pub mod libvirt;

use std::sync::Arc;

use async_trait::async_trait;

/// Which driver family a plan, image or node belongs to (a wire type: `model::compute::Kind`).
pub use model::compute::Kind;

/// Everything a driver needs to make a machine.
#[derive(Clone, PartialEq, Eq)]
pub struct MachineSpec {
    /// The name on the node, `hangar-<instance id>`: how Hangar finds its machines again.
    pub name: String,
    pub instance_id: String,
    /// The owner's account id. A container node keeps each account's machines on a network of
    /// their own (see `model::engine`); empty: the machine gets one to itself.
    pub account: String,
    pub hostname: String,
    pub vcpu: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    /// The image's `source` (a volume or path for VMs, an image reference for containers).
    pub image: String,
    pub user_data: Option<String>,
    /// OpenSSH public keys to authorise for root.
    pub ssh_keys: Vec<String>,
    /// NoCloud seed URL (ends with `/`) where a VM's cloud-init fetches `meta-data` and
    /// `user-data` from Hangar; see `libvirt`.
    pub seed_url: Option<String>,
    /// The public IPv4 address Hangar allocated (VMs in regions with address ranges). libvirt
    /// reserves it for the machine in its network's DHCP; see `libvirt`.
    pub public_ip: Option<String>,
    /// How a node daemon installs and runs the image (app templates); `None` for plain images.
    pub app: Option<AppSpec>,
}

/// An app template's recipe (a wire type: part of an image).
pub use model::api::admin_compute::AppSpec;

/// Checks what the daemon would refuse of an app's recipe, so a bad template fails when it is
/// saved.
pub fn check_app(app: &AppSpec) -> Result<(), String> {
    if let Some(p) = app.start_pattern.as_deref().filter(|p| !p.is_empty()) {
        regex_lite_check(p)?;
    }
    if app.ports > 16 {
        return Err("ports: at most 16".into());
    }
    if app
        .environment
        .keys()
        .any(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
    {
        return Err("environment: names may not be empty or contain `=`".into());
    }
    Ok(())
}

/// The start pattern must compile where the daemon compiles it.
fn regex_lite_check(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(drop)
        .map_err(|e| format!("start_pattern: {e}"))
}

impl std::fmt::Debug for MachineSpec {
    // User data may hold secrets; keys are noise in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineSpec")
            .field("name", &self.name)
            .field("vcpu", &self.vcpu)
            .field("memory_mb", &self.memory_mb)
            .field("disk_gb", &self.disk_gb)
            .field("image", &self.image)
            .field("public_ip", &self.public_ip)
            .finish_non_exhaustive()
    }
}

/// Whether a machine is running, as its driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Running,
    Stopped,
}

/// A machine found on a node by [`Driver::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub name: String,
    pub power: Power,
    /// Bytes the machine has written to its own disk, when the node can tell (a container's
    /// writable layer); `None` for VMs, whose disk image is its own bound.
    pub disk_used: Option<u64>,
}

/// A file on its way into or out of a machine: its size, known before the first byte (a tar
/// header and a browser's progress bar need it), and its bytes as they arrive. Every driver
/// streams both ways (the Docker API's archives, SSH channels into VMs, a node daemon's volume
/// API), so what Hangar holds of a file at once is a chunk, not the file.
/// [`FileStream::whole`] and [`FileStream::collect`] are for the small texts the portal's editor
/// opens and saves.
pub struct FileStream {
    pub size: u64,
    pub bytes: futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
}

impl std::fmt::Debug for FileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl FileStream {
    /// A file already in memory.
    pub fn whole(data: impl Into<bytes::Bytes>) -> Self {
        let data: bytes::Bytes = data.into();
        Self {
            size: data.len() as u64,
            bytes: Box::pin(futures::stream::once(async move { Ok(data) })),
        }
    }

    /// All of the file, checked to be exactly the size it announced.
    pub async fn collect(self) -> DriverResult<bytes::Bytes> {
        use futures::StreamExt;
        let mut all = bytes::BytesMut::with_capacity(self.size.min(64 << 20) as usize);
        let mut bytes = self.bytes;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk
                .map_err(|e| DriverError::Invalid(format!("the file did not arrive whole: {e}")))?;
            if (all.len() + chunk.len()) as u64 > self.size {
                return Err(DriverError::Invalid(format!(
                    "the file is longer than the {} bytes it announced",
                    self.size
                )));
            }
            all.extend_from_slice(&chunk);
        }
        if (all.len() as u64) < self.size {
            return Err(DriverError::Invalid(format!(
                "the file ended after {} of the {} bytes it announced",
                all.len(),
                self.size
            )));
        }
        Ok(all.freeze())
    }
}

/// How to reach a machine's screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    /// The VNC port on the node (listening on 127.0.0.1 there); `None` for containers.
    pub vnc_port: Option<u16>,
}

/// A driver failure. `NotFound` and `Invalid` are about the request (the machine, image or
/// snapshot is missing, or the machine is in the wrong state); `Backend` is the hypervisor or
/// engine failing, which jobs retry.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Backend(String),
    /// The node cannot do this for this kind of machine (yet); the message says what works.
    #[error("{0}")]
    Unsupported(String),
    /// A file is larger than the caller's limit.
    #[error("{0}")]
    TooLarge(String),
    /// The way into the machine does not answer now (a VM's SSH while it boots, a host key that
    /// is not the one Hangar gave it); the message says which.
    #[error("{0}")]
    Unreachable(String),
}

pub type DriverResult<T> = Result<T, DriverError>;

/// A node that failed a request (down or broken): the caller can only wait, so a 409 saying so;
/// the node's own words go to the log.
pub fn node_failed(detail: &str, instance_id: &str) -> crate::infra::error::ServiceError {
    tracing::warn!(error = %detail, instance = %instance_id, "the node failed a request");
    crate::infra::error::ServiceError::Conflict(
        "The machine's node does not answer right now; try again shortly".into(),
    )
}

impl DriverError {
    /// The error a request about machine `instance_id` answers: the node's own trouble is a 409
    /// the caller can only wait out (and is logged), a machine missing on its node a 404, the
    /// rest a 409 in the driver's words. Never a 500: nothing is wrong with Hangar.
    pub fn for_request(self, instance_id: &str) -> crate::infra::error::ServiceError {
        use crate::infra::error::ServiceError;
        match self {
            DriverError::Backend(m) => node_failed(&m, instance_id),
            DriverError::NotFound(_) => ServiceError::NotFound("Instance"),
            DriverError::Unsupported(m)
            | DriverError::Unreachable(m)
            | DriverError::Invalid(m)
            | DriverError::TooLarge(m) => ServiceError::Conflict(m),
        }
    }

    /// The error of a request about something inside a machine (a command, a file, a folder),
    /// for its caller: what is missing is `what` (404), a bad path or name is 400, a file too
    /// large 413, a machine that cannot do it (now) 409, a node that failed 502 naming `doing`.
    pub fn for_content(self, what: &'static str, doing: &str) -> crate::infra::error::ServiceError {
        use crate::infra::error::ServiceError;
        match self {
            DriverError::NotFound(_) => ServiceError::NotFound(what),
            DriverError::Invalid(m) => ServiceError::Invalid(m),
            DriverError::TooLarge(m) => ServiceError::TooLarge(m),
            DriverError::Unsupported(m) | DriverError::Unreachable(m) => ServiceError::Conflict(m),
            DriverError::Backend(m) => node_failed(&m, doing),
        }
    }
}

/// The name Hangar gives an instance's machine on its node.
pub fn machine_name(instance_id: &str) -> String {
    format!("hangar-{instance_id}")
}

/// The instance id in a machine name made by [`machine_name`].
pub fn instance_of(machine: &str) -> Option<&str> {
    machine.strip_prefix("hangar-")
}

/// A compute backend. Methods take the machine's name (see [`machine_name`]).
#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> Kind;

    /// Creates the machine with its disk and boots it. Twice: a machine of that name that already
    /// exists is kept (and started if it is stopped), so a retried create finishes the first.
    async fn create(&self, spec: &MachineSpec) -> DriverResult<()>;

    /// Powers a stopped machine on. Twice: a running machine is left running (Ok).
    async fn start(&self, name: &str) -> DriverResult<()>;

    /// Graceful stop (ACPI power button / SIGTERM), forced off when the guest has not stopped
    /// within the driver's timeout. Twice: a stopped machine is Ok.
    async fn stop(&self, name: &str) -> DriverResult<()>;

    /// Immediate power off. Twice: a stopped machine is Ok.
    async fn kill(&self, name: &str) -> DriverResult<()>;

    /// Restarts a running machine; a stopped one is started. Twice: two restarts.
    async fn reboot(&self, name: &str) -> DriverResult<()>;

    /// Removes the machine, its disk and its snapshots. Twice: a missing machine is Ok.
    async fn destroy(&self, name: &str) -> DriverResult<()>;

    /// The machine's power state; `None` when it does not exist.
    async fn power(&self, name: &str) -> DriverResult<Option<Power>>;

    /// Every machine on the node that Hangar made (named `hangar-...`).
    async fn list(&self) -> DriverResult<Vec<Machine>>;

    /// Takes a snapshot named `snapshot`. Twice: an existing snapshot of that name is Ok.
    async fn snapshot_create(&self, name: &str, snapshot: &str) -> DriverResult<()>;

    /// The machine's snapshot names, oldest first.
    async fn snapshot_list(&self, name: &str) -> DriverResult<Vec<String>>;

    /// Puts the machine back to the snapshot, leaving it stopped. Twice: the same result.
    async fn snapshot_restore(&self, name: &str, snapshot: &str) -> DriverResult<()>;

    /// Deletes a snapshot. Twice: a missing snapshot is Ok.
    async fn snapshot_delete(&self, name: &str, snapshot: &str) -> DriverResult<()>;

    /// How to reach the machine's console, read from the live machine.
    async fn console(&self, name: &str) -> DriverResult<Console>;

    /// The machine's private IPv4 address as its node sees it (DHCP lease, container network),
    /// `None` while it has none. Read-only; any number of calls.
    async fn address(&self, name: &str) -> DriverResult<Option<String>>;

    /// Whether this node holds the image whose catalog `source` is given, so machines of it can
    /// be made here (`catalog::survey` records the answer; placement goes only to nodes that
    /// hold a machine's image). `Ok(true)` also when the node cannot be asked (a node daemon has
    /// no image listing; a file outside any storage pool on a remote hypervisor): the operator's
    /// word is then trusted. Read-only; any number of calls.
    async fn has_image(&self, source: &str) -> DriverResult<bool>;

    /// Whether the way inside the running machine answers now: `Ok` when commands and files
    /// would work (a VM's SSH server shows the host key Hangar gave it and takes the platform
    /// key), `Unreachable` while the guest still boots, `Unsupported` when this machine has no
    /// way inside (simulated). Containers are ready once started. Read-only; any number of calls.
    async fn ready(&self, _name: &str) -> DriverResult<()> {
        Ok(())
    }

    /// Runs `req.command` with `sh -c` as root inside the running machine: stdout and stderr
    /// apart, each kept up to `req.max_output` bytes (`truncated` says when more was dropped),
    /// every process of it killed when `req.timeout` passes (`timed_out`; what it printed is
    /// kept). Not idempotent: each call runs the command again.
    async fn exec(&self, name: &str, req: &ExecRequest) -> DriverResult<ExecOutput>;

    /// Kills every process of the exec tagged `tag` (cancel). Twice: nothing left to kill is Ok.
    async fn exec_kill(&self, name: &str, tag: &str) -> DriverResult<()>;

    /// Writes `file` to the absolute `path` inside the machine, replacing a file there (its
    /// directory must exist: `NotFound` otherwise). Twice: the same file. A file that does not
    /// bring exactly the size it announced is refused (`Invalid`).
    async fn put_file(&self, name: &str, path: &str, file: FileStream) -> DriverResult<()>;

    /// The file at the absolute `path` inside the machine: `NotFound` when missing, `Invalid` for
    /// a directory, `TooLarge` beyond `max` bytes, all before the first byte. Read-only.
    async fn get_file(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream>;

    /// Opens the running machine's text console: a VM's serial port, a shell on a TTY in a
    /// container. Output arrives until the console ends (the machine stopped: the receiver then
    /// yields `None`); dropping the [`ConsoleIo`] closes it. Twice: a second session (a VM's
    /// serial port has one reader, so the first is taken over; Hangar shares one per machine).
    async fn open_console(&self, name: &str) -> DriverResult<ConsoleIo>;

    /// A byte stream to the running machine's screen (its VNC server, RFB protocol). Each call is
    /// a new VNC client; VMs only.
    async fn open_screen(&self, name: &str) -> DriverResult<Box<dyn ScreenIo>>;

    /// The machine's volume, where the node keeps one apart from the machine (node daemons):
    /// browsed and changed whether the machine runs or not.
    fn volume(&self) -> Option<&dyn Volume> {
        None
    }

    /// A stream of resource samples (about one a second) while the machine runs; the receiver
    /// yields `None` when the machine stops or the node goes away, and dropping it ends the
    /// stream. Each call is a new stream. Containers only (`Unsupported` elsewhere).
    async fn open_stats(
        &self,
        _name: &str,
    ) -> DriverResult<tokio::sync::mpsc::Receiver<model::compute::MachineStats>> {
        Err(DriverError::Unsupported(
            "Live resource charts are for containers".into(),
        ))
    }
    /// What the host itself reports: its load (CPU, memory, disk, network) and, for a node
    /// daemon, its version. Each field is `None` where the backend cannot say (the Docker API
    /// reports no host load; libvirt reports memory and its storage pool, not CPU or network).
    /// Read-only, any number of times.
    async fn host(&self) -> DriverResult<HostReport> {
        Ok(HostReport::default())
    }

    /// Makes `token` the node's credential from now on (node daemons; `Unsupported` elsewhere).
    /// The caller stores it only once this succeeded. Twice with the same token: Ok.
    async fn rotate_secret(&self, _token: &str) -> DriverResult<()> {
        Err(DriverError::Unsupported(
            "Only node daemons have a token to rotate".into(),
        ))
    }
}

/// A host's own figures at one moment (see [`Driver::host`]).
pub use model::node::HostReport;

/// A machine's persistent volume seen from outside: the portal's file manager. Paths are
/// relative to the volume's root (`/home/container` inside the machine); the node confines them.
#[async_trait]
pub trait Volume: Send + Sync {
    /// One page of a folder, folders first. Read-only.
    async fn list(
        &self,
        name: &str,
        path: &str,
        offset: u64,
        limit: u64,
    ) -> DriverResult<model::compute::VolumeListing>;
    /// Creates the folder and any missing above it. Twice: Ok.
    async fn make_folder(&self, name: &str, path: &str) -> DriverResult<()>;
    /// Copies a file or folder; refused when the destination folder exists. Twice: refused.
    async fn copy(&self, name: &str, from: &str, to: &str) -> DriverResult<()>;
    /// Deletes a file, link or folder (links are not followed). Twice: `NotFound`.
    async fn remove(&self, name: &str, path: &str) -> DriverResult<()>;
    /// Packs `path` into `<output_name>.tar.gz` at the volume's root; answers the archive's path.
    async fn compress(&self, name: &str, path: &str, output_name: &str) -> DriverResult<String>;
    /// Unpacks an archive into `destination`. Twice: the files are written again.
    async fn decompress(&self, name: &str, archive: &str, destination: &str) -> DriverResult<()>;
    /// A file's content as it comes, up to `max` bytes (`TooLarge` beyond, before any byte).
    async fn read(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream>;
    /// Writes a file as its bytes arrive, replacing the old one only once complete (an upload
    /// cut short leaves the old file). Twice: the same file.
    async fn write(&self, name: &str, path: &str, file: FileStream) -> DriverResult<()>;
    /// The host ports the machine was given, as `ip:port/protocol`. Read-only.
    async fn ports(&self, name: &str) -> DriverResult<Vec<String>>;
}

/// The two directions of a text console.
#[derive(Debug)]
pub struct ConsoleIo {
    /// What the machine printed, in chunks.
    pub output: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    /// Keystrokes and resizes for the machine.
    pub input: tokio::sync::mpsc::Sender<ConsoleInput>,
}

/// What a viewer sends a text console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleInput {
    Data(bytes::Bytes),
    /// The terminal's new size (a container's TTY follows it; a serial port has no size).
    Resize {
        cols: u16,
        rows: u16,
    },
}

/// A machine's screen connection (VNC).
pub trait ScreenIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> ScreenIo for T {}

/// Why nothing runs inside a machine on libvirt's test driver.
pub const SIMULATED_INSIDE: &str = "This is a simulated machine (libvirt's test driver, a demo node): nothing runs inside it, so commands and files are not available. Real VMs and containers accept them.";

/// The environment variable that marks an exec's processes.
pub const EXEC_TAG: &str = "HANGAR_EXEC";

/// A shell script that kills every process whose environment carries `HANGAR_EXEC=<tag>`: the
/// command and all it started, whatever they became. The killer itself runs without the tag.
pub fn kill_script(tag: &str) -> String {
    format!(
        "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null | grep -qx '{EXEC_TAG}={tag}' && kill -9 ${{p#/proc/}} 2>/dev/null; done; true"
    )
}

/// `s` as one word for `sh`, whatever it contains.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `/dir/file` → (`/dir`, `file`); only absolute paths to a file name.
pub fn split_path(path: &str) -> DriverResult<(&str, &str)> {
    let (dir, file) = path
        .rsplit_once('/')
        .filter(|(_, f)| !f.is_empty() && *f != "." && *f != "..")
        .ok_or_else(|| DriverError::Invalid("path must be an absolute path to a file".into()))?;
    if !path.starts_with('/') {
        return Err(DriverError::Invalid("path must be absolute".into()));
    }
    Ok((if dir.is_empty() { "/" } else { dir }, file))
}

/// A command to run inside a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub command: String,
    pub timeout: std::time::Duration,
    /// Most bytes kept of each of stdout and stderr.
    pub max_output: usize,
    /// Marks every process of this exec (`HANGAR_EXEC=<tag>` in their environment), so
    /// [`Driver::exec_kill`] finds them, however many children the command started.
    pub tag: String,
}

/// What an exec printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the command was killed (timeout) before its exit status was known.
    pub exit_code: Option<i64>,
    pub truncated: bool,
    pub timed_out: bool,
}

impl ExecOutput {
    /// Appends to stdout or stderr, keeping at most `max` bytes of each.
    pub fn push(&mut self, stderr: bool, bytes: &[u8], max: usize) {
        let out = if stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        let room = max.saturating_sub(out.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// How drivers behave on this deployment (from config; the same for every node).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a graceful stop waits before forcing the machine off.
    pub stop_timeout: std::time::Duration,
    /// libvirt domain type on real hosts: hardware virtualisation or software emulation.
    pub libvirt_domain_type: crate::infra::config::DomainType,
    /// The libvirt network guests' NIC joins; see [`crate::infra::config::Network`].
    pub libvirt_network: crate::infra::config::Network,
    /// The platform key and machines' host keys for SSH into VMs; see [`guest`].
    pub guest_keys: Arc<guest::GuestKeys>,
    /// This installation's id (shared by its replicas through the database). Container machines
    /// carry it as a label, and a driver lists only its installation's machines, so two
    /// installations on one engine (staging beside production, or test servers side by side)
    /// never take each other's machines for orphans. Empty: no label, everything listed.
    pub installation: String,
    /// The most processes a container machine may hold (`PidsLimit`; 0: the engine's default).
    pub container_pids_limit: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stop_timeout: std::time::Duration::from_secs(60),
            libvirt_domain_type: crate::infra::config::DomainType::Kvm,
            libvirt_network: crate::infra::config::Network("default".into()),
            guest_keys: Arc::new(guest::GuestKeys::random()),
            installation: String::new(),
            container_pids_limit: 4096,
        }
    }
}

/// Builds the driver for a node of `kind` at `uri` (a node daemon's with its `secret`).
/// Connections are opened lazily, so a node that is down does not stop Hangar from starting.
pub fn connect(
    kind: Kind,
    uri: &str,
    secret: Option<&str>,
    settings: &Settings,
) -> Arc<dyn Driver> {
    match kind {
        Kind::Vm => Arc::new(libvirt::LibvirtDriver::new(uri, settings)),
        Kind::Container if uri.starts_with("hangar-node+") => {
            Arc::new(daemon::DaemonDriver::new(uri, secret.unwrap_or_default()))
        }
        Kind::Container => Arc::new(docker::DockerDriver::new(uri, settings)),
    }
}
