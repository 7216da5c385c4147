//! Container instances through the Docker Engine API (crate `bollard`). Works with Docker and with
//! Podman's Docker-compatible service.
//!
//! A machine is a container named `hangar-<id>`, labelled `hangar.instance=<id>`, with the plan's
//! CPU (`NanoCpus`) and memory limits, on its account's isolated network
//! (`hangar-acct-<account>`), with a process limit and no new privileges (`model::engine`). Cloud-init does not exist in containers, so user data and SSH
//! keys reach them as environment variables: `HANGAR_USER_DATA` and `HANGAR_SSH_AUTHORIZED_KEYS`
//! (one key per line); images that want them act on them at start.
//!
//! Snapshots are committed images (`hangar-snapshot/<machine>:<snapshot>`); restoring replaces the
//! container with one made from the snapshot's image, keeping its name, limits and environment.
//! Images are never pulled: a node serves the images its operator put on it.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use bollard::{
    errors::Error as BollardError,
    models::{ContainerCreateBody, HostConfig},
    query_parameters::{
        CommitContainerOptions, CreateContainerOptions, ListContainersOptions, ListImagesOptions,
        RemoveContainerOptions, RemoveImageOptions, StopContainerOptions,
    },
    Docker, API_DEFAULT_VERSION,
};

use bollard::{
    container::LogOutput,
    exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults},
    query_parameters::{DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder},
};
use bytes::Bytes;
use futures::StreamExt;

use crate::fleet::driver::{
    kill_script, split_path, Console, ConsoleInput, ConsoleIo, Driver, DriverError, DriverResult,
    ExecOutput, ExecRequest, FileStream, Kind, Machine, MachineSpec, Power, ScreenIo, EXEC_TAG,
};
use std::sync::atomic::Ordering;

const LABEL: &str = "hangar.instance";
/// The installation a machine belongs to (see `Settings::installation`). Machines made before
/// the label existed have none and are still listed, as they always were.
const INSTALLATION_LABEL: &str = "hangar.installation";
const SNAPSHOT_REPO: &str = "hangar-snapshot";
/// On an account's network: whose it is.
const ACCOUNT_LABEL: &str = "hangar.account";

#[derive(Debug, Clone)]
pub struct DockerDriver {
    uri: String,
    stop_timeout: Duration,
    installation: String,
    pids_limit: i64,
}

impl DockerDriver {
    pub fn new(uri: &str, settings: &super::Settings) -> Self {
        Self {
            uri: uri.to_owned(),
            stop_timeout: settings.stop_timeout,
            installation: settings.installation.clone(),
            pids_limit: settings.container_pids_limit,
        }
    }

    /// The network of `account`'s machines (one of the machine's own when there is no account),
    /// made isolated from every other on first use.
    async fn network(&self, docker: &Docker, spec: &MachineSpec) -> DriverResult<String> {
        let owner = if spec.account.is_empty() {
            &spec.instance_id
        } else {
            &spec.account
        };
        let name = format!("hangar-acct-{owner}");
        let labels = [
            (ACCOUNT_LABEL.to_owned(), owner.clone()),
            (INSTALLATION_LABEL.to_owned(), self.installation.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        model::engine::isolated_network(docker, &name, labels)
            .await
            .map_err(backend)?;
        Ok(name)
    }

    /// Whether a container with these labels is one of this installation's.
    fn ours(&self, labels: Option<&HashMap<String, String>>) -> bool {
        match labels.and_then(|l| l.get(INSTALLATION_LABEL)) {
            Some(installation) => {
                self.installation.is_empty() || *installation == self.installation
            }
            None => true,
        }
    }

    /// A client for the node. Cheap: bollard clients share nothing and connect per request.
    fn client(&self) -> DriverResult<Docker> {
        let timeout = 120;
        let client = if let Some(path) = self.uri.strip_prefix("unix://") {
            Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)
        } else {
            let addr = self.uri.replacen("tcp://", "http://", 1);
            Docker::connect_with_http(&addr, timeout, API_DEFAULT_VERSION)
        };
        client.map_err(backend)
    }
}

/// Runs `call` again while Podman answers 500 "image not known": it does so for an image list
/// and for a container create, start, stop, kill or remove when another image (not the
/// machine's) is being removed at the same moment (seen lasting over a second while a committed
/// snapshot image was deleted); and "no such container" for a container list while another
/// container is being removed. Growing pauses, about 5 s in all.
async fn podman_retry<T, F, Fut>(mut call: F) -> Result<T, BollardError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BollardError>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match call().await {
            Err(e)
                if attempt < 8 && status_of(&e) == Some(500) && {
                    let text = e.to_string();
                    text.contains("image not known")
                        || text.contains("no such container")
                        || text.contains("does not exist in database")
                } =>
            {
                tokio::time::sleep(Duration::from_millis((100u64 << attempt.min(4)).min(1000)))
                    .await;
            }
            other => return other,
        }
    }
}

fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn backend(e: BollardError) -> DriverError {
    DriverError::Backend(format!("docker: {e}"))
}

/// Maps "no such container" to `NotFound`, everything else to `Backend`.
fn on_container(name: &str) -> impl Fn(BollardError) -> DriverError + '_ {
    move |e| match status_of(&e) {
        Some(404) => DriverError::NotFound(format!("Machine {name}")),
        _ => backend(e),
    }
}

impl DockerDriver {
    async fn running(&self, docker: &Docker, name: &str) -> DriverResult<Option<bool>> {
        match docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(c.state.and_then(|s| s.running).unwrap_or(false))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn create_container(
        &self,
        docker: &Docker,
        name: &str,
        body: ContainerCreateBody,
    ) -> DriverResult<()> {
        let image = body.image.clone().unwrap_or_default();
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        match podman_retry(|| docker.create_container(Some(options.clone()), body.clone())).await {
            Ok(_) => Ok(()),
            // A concurrent retry made it first: the same end state.
            Err(e) if status_of(&e) == Some(409) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(DriverError::Invalid(format!(
                "Image {image} is not on this node"
            ))),
            Err(e) => Err(backend(e)),
        }
    }

    async fn remove(&self, docker: &Docker, name: &str) -> DriverResult<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match podman_retry(|| docker.remove_container(name, Some(options.clone()))).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    /// The machine's snapshot images as (created, snapshot name, full tag), oldest first.
    async fn snapshots(
        &self,
        docker: &Docker,
        name: &str,
    ) -> DriverResult<Vec<(i64, String, String)>> {
        // Listed unfiltered: engines qualify committed names differently (Podman's compat API
        // stores `docker.io/hangar-snapshot/...`), which `reference` filters do not see through.
        // Listing reads every image's labels, so an image removed meanwhile fails it: retried.
        let images = podman_retry(|| docker.list_images(None::<ListImagesOptions>))
            .await
            .map_err(backend)?;
        let marker = format!("{SNAPSHOT_REPO}/{name}:");
        let mut out: Vec<(i64, String, String)> = images
            .iter()
            .flat_map(|i| {
                i.repo_tags.iter().filter_map(|tag| {
                    let at = tag.find(&marker)?;
                    // Only a registry host may come before the repository.
                    if at > 0 && !tag[..at].ends_with('/') {
                        return None;
                    }
                    Some((i.created, tag[at + marker.len()..].to_owned(), tag.clone()))
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn snapshot_tag(
        &self,
        docker: &Docker,
        name: &str,
        snapshot: &str,
    ) -> DriverResult<Option<String>> {
        Ok(self
            .snapshots(docker, name)
            .await?
            .into_iter()
            .find(|(_, s, _)| s == snapshot)
            .map(|(_, _, tag)| tag))
    }
}

#[async_trait]
impl Driver for DockerDriver {
    fn kind(&self) -> Kind {
        Kind::Container
    }

    /// The image must be in the engine already: Hangar never pulls (a node may reach no
    /// registry, and a pull would happen at the customer's create).
    async fn has_image(&self, source: &str) -> DriverResult<bool> {
        let docker = self.client()?;
        match docker.inspect_image(source).await {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    async fn create(&self, spec: &MachineSpec) -> DriverResult<()> {
        let docker = self.client()?;
        if self.running(&docker, &spec.name).await?.is_none() {
            let mut env = vec![format!(
                "HANGAR_SSH_AUTHORIZED_KEYS={}",
                spec.ssh_keys.join("\n")
            )];
            if let Some(ud) = &spec.user_data {
                env.push(format!("HANGAR_USER_DATA={ud}"));
            }
            let network = self.network(&docker, spec).await?;
            let body = ContainerCreateBody {
                image: Some(spec.image.clone()),
                hostname: Some(spec.hostname.clone()),
                env: Some(env),
                labels: Some(
                    [
                        (LABEL.to_owned(), spec.instance_id.clone()),
                        (INSTALLATION_LABEL.to_owned(), self.installation.clone()),
                    ]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect(),
                ),
                stop_timeout: Some(self.stop_timeout.as_secs() as i64),
                host_config: Some(HostConfig {
                    nano_cpus: Some(i64::from(spec.vcpu) * 1_000_000_000),
                    memory: Some((spec.memory_mb as i64) * 1024 * 1024),
                    ..model::engine::tenant_host_config(&network, self.pids_limit)
                }),
                ..Default::default()
            };
            // The account's last other machine may be deleted meanwhile, taking the network
            // with it: made again, and the container with it.
            let mut body = body;
            let mut attempts = 0;
            loop {
                match self
                    .create_container(&docker, &spec.name, body.clone())
                    .await
                {
                    Err(DriverError::Backend(m)) if m.contains("network") && attempts < 3 => {
                        attempts += 1;
                        let network = self.network(&docker, spec).await?;
                        if let Some(host) = body.host_config.as_mut() {
                            host.network_mode = Some(network);
                        }
                    }
                    other => break other?,
                }
            }
        }
        self.start(&spec.name).await
    }

    async fn start(&self, name: &str) -> DriverResult<()> {
        let docker = self.client()?;
        match podman_retry(|| docker.start_container(name, None)).await {
            Ok(()) => Ok(()),
            // 304: already running.
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(on_container(name)(e)),
        }
    }

    async fn stop(&self, name: &str) -> DriverResult<()> {
        let docker = self.client()?;
        let options = StopContainerOptions {
            t: Some(self.stop_timeout.as_secs() as i32),
            ..Default::default()
        };
        match podman_retry(|| docker.stop_container(name, Some(options.clone()))).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(on_container(name)(e)),
        }
    }

    async fn kill(&self, name: &str) -> DriverResult<()> {
        let docker = self.client()?;
        match self.running(&docker, name).await? {
            None => Err(DriverError::NotFound(format!("Machine {name}"))),
            Some(false) => Ok(()),
            Some(true) => match podman_retry(|| docker.kill_container(name, None)).await {
                Ok(()) => Ok(()),
                // 409: it stopped on its own meanwhile.
                Err(e) if status_of(&e) == Some(409) => Ok(()),
                Err(e) => Err(on_container(name)(e)),
            },
        }
    }

    async fn reboot(&self, name: &str) -> DriverResult<()> {
        let docker = self.client()?;
        docker
            .restart_container(name, None)
            .await
            .map_err(on_container(name))
    }

    async fn destroy(&self, name: &str) -> DriverResult<()> {
        let docker = self.client()?;
        let networks = match docker.inspect_container(name, None).await {
            Ok(c) => model::engine::networks_of(&c),
            Err(_) => Vec::new(),
        };
        self.remove(&docker, name).await?;
        // The account's network goes with its last machine.
        for network in networks.iter().filter(|n| n.starts_with("hangar-acct-")) {
            model::engine::remove_network_if_unused(&docker, network).await;
        }
        for (_, snap, _) in self.snapshots(&docker, name).await? {
            self.snapshot_delete(name, &snap).await?;
        }
        Ok(())
    }

    async fn power(&self, name: &str) -> DriverResult<Option<Power>> {
        let docker = self.client()?;
        Ok(self
            .running(&docker, name)
            .await?
            .map(|r| if r { Power::Running } else { Power::Stopped }))
    }

    async fn list(&self) -> DriverResult<Vec<Machine>> {
        let docker = self.client()?;
        let filters = HashMap::from([("label".to_owned(), vec![LABEL.to_owned()])]);
        // Podman fails a listing when a container goes away while it is being read (another
        // installation's, or a test's beside ours): retried like the image listing.
        let containers = podman_retry(|| {
            docker.list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                // Each container's writable layer (`SizeRw`): the reconciler holds machines to
                // their plan's disk with it, since the engine cannot (see `model::engine`).
                size: true,
                ..Default::default()
            }))
        })
        .await
        .map_err(backend)?;
        Ok(containers
            .into_iter()
            .filter(|c| self.ours(c.labels.as_ref()))
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_owned();
                super::instance_of(&name)?;
                let running = c.state.map(|s| s.to_string() == "running").unwrap_or(false);
                Some(Machine {
                    name,
                    power: if running {
                        Power::Running
                    } else {
                        Power::Stopped
                    },
                    disk_used: c.size_rw.map(|b| b.max(0) as u64),
                })
            })
            .collect())
    }

    async fn snapshot_create(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let docker = self.client()?;
        if self.running(&docker, name).await?.is_none() {
            return Err(DriverError::NotFound(format!("Machine {name}")));
        }
        let options = CommitContainerOptions {
            container: Some(name.to_owned()),
            repo: Some(format!("{SNAPSHOT_REPO}/{name}")),
            tag: Some(snapshot.to_owned()),
            pause: true,
            ..Default::default()
        };
        docker
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map_err(on_container(name))?;
        Ok(())
    }

    async fn snapshot_list(&self, name: &str) -> DriverResult<Vec<String>> {
        let docker = self.client()?;
        if self.running(&docker, name).await?.is_none() {
            return Err(DriverError::NotFound(format!("Machine {name}")));
        }
        Ok(self
            .snapshots(&docker, name)
            .await?
            .into_iter()
            .map(|(_, s, _)| s)
            .collect())
    }

    async fn snapshot_restore(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let docker = self.client()?;
        let current = docker
            .inspect_container(name, None)
            .await
            .map_err(on_container(name))?;
        let image = self
            .snapshot_tag(&docker, name, snapshot)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("Snapshot {snapshot}")))?;
        // Back on the account's network (Podman reports `NetworkMode: bridge` for it).
        let network = model::engine::networks_of(&current)
            .into_iter()
            .find(|n| n.starts_with("hangar-acct-"));
        let config = current.config.unwrap_or_default();
        let body = ContainerCreateBody {
            image: Some(image),
            hostname: config.hostname,
            env: config.env,
            labels: config.labels,
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            stop_timeout: config.stop_timeout,
            host_config: current.host_config.map(|h| HostConfig {
                nano_cpus: h.nano_cpus,
                memory: h.memory,
                network_mode: network.or(h.network_mode),
                pids_limit: h.pids_limit,
                security_opt: h.security_opt,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.remove(&docker, name).await?;
        self.create_container(&docker, name, body).await
    }

    async fn snapshot_delete(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let docker = self.client()?;
        let Some(tag) = self.snapshot_tag(&docker, name, snapshot).await? else {
            return Ok(());
        };
        let options = RemoveImageOptions {
            force: true,
            ..Default::default()
        };
        match docker.remove_image(&tag, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn address(&self, name: &str) -> DriverResult<Option<String>> {
        let docker = self.client()?;
        let c = docker
            .inspect_container(name, None)
            .await
            .map_err(on_container(name))?;
        let settings = c.network_settings.unwrap_or_default();
        Ok(settings
            .networks
            .unwrap_or_default()
            .into_values()
            .filter_map(|n| n.ip_address)
            .find(|ip| !ip.is_empty()))
    }

    async fn console(&self, name: &str) -> DriverResult<Console> {
        let docker = self.client()?;
        match self.running(&docker, name).await? {
            None => Err(DriverError::NotFound(format!("Machine {name}"))),
            Some(_) => Ok(Console { vnc_port: None }),
        }
    }

    async fn exec(&self, name: &str, req: &ExecRequest) -> DriverResult<ExecOutput> {
        let docker = self.client()?;
        let tag_env = format!("{EXEC_TAG}={}", req.tag);
        let created = docker
            .create_exec(
                name,
                CreateExecOptions {
                    cmd: Some(vec!["sh", "-c", req.command.as_str()]),
                    env: Some(vec![tag_env.as_str()]),
                    user: Some("0:0"),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(on_container(name))?;
        let mut out = ExecOutput::default();
        let StartExecResults::Attached { mut output, .. } = docker
            .start_exec(&created.id, None)
            .await
            .map_err(backend)?
        else {
            return Err(DriverError::Backend("docker: exec started detached".into()));
        };
        let max = req.max_output;
        let read = async {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(backend)? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        out.push(false, &message, max)
                    }
                    LogOutput::StdErr { message } => out.push(true, &message, max),
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<_, DriverError>(())
        };
        let finished = tokio::time::timeout(req.timeout, read).await;
        match finished {
            Ok(result) => result?,
            Err(_) => {
                out.timed_out = true;
                self.exec_kill(name, &req.tag).await?;
                return Ok(out);
            }
        }
        out.exit_code = docker
            .inspect_exec(&created.id)
            .await
            .map_err(backend)?
            .exit_code;
        Ok(out)
    }

    async fn exec_kill(&self, name: &str, tag: &str) -> DriverResult<()> {
        let script = kill_script(tag);
        let docker = self.client()?;
        self.status_of_command(&docker, name, &["sh", "-c", &script])
            .await
            .map(|_| ())
    }

    /// Streams the file into the engine as a one-entry tar (header, the bytes as they come,
    /// padding): Hangar holds a chunk at a time, never the file.
    async fn put_file(&self, name: &str, path: &str, file: FileStream) -> DriverResult<()> {
        let (dir, leaf) = split_path(path)?;
        let docker = self.client()?;
        // Engines differ here (Podman creates missing directories, Docker refuses): the directory
        // must exist, on every engine.
        if self
            .status_of_command(&docker, name, &["test", "-d", dir])
            .await?
            != Some(0)
        {
            return Err(DriverError::NotFound(format!("Directory {dir}")));
        }
        let options = UploadToContainerOptionsBuilder::new().path(dir).build();
        let size = file.size;
        // The body must be exactly `size` bytes: a tar whose entry is short or long is not one,
        // and the engine must not keep a file cut short.
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = seen.clone();
        let body = file.bytes.map(move |chunk| {
            let chunk = chunk?;
            let total =
                counted.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if total > size {
                return Err(std::io::Error::other(
                    "the file is longer than it announced",
                ));
            }
            Ok(chunk)
        });
        let tail = futures::stream::once(async move {
            match seen.load(Ordering::Relaxed) {
                n if n < size => Err(std::io::Error::other(format!(
                    "the file ended after {n} of the {size} bytes it announced"
                ))),
                _ => Ok(Bytes::from(vec![0u8; tar_padding(size) + 1024])),
            }
        });
        let header = Bytes::from(tar_header(leaf, size));
        let tar = futures::stream::once(async move { Ok(header) })
            .chain(body)
            .chain(tail);
        let uploaded = docker
            .upload_to_container(name, Some(options), bollard::body_try_stream(tar))
            .await;
        uploaded.map_err(|e| match status_of(&e) {
            Some(404) => DriverError::NotFound(format!("Directory {dir}")),
            Some(400 | 403 | 500) if e.to_string().contains("not a directory") => {
                DriverError::Invalid(format!("{dir} is not a directory"))
            }
            _ => backend(e),
        })
    }

    /// Reads the tar the engine sends up to the entry's header (so a missing file, a folder or
    /// one too large is refused before the first byte), then passes the file's bytes on as they
    /// come.
    async fn get_file(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream> {
        split_path(path)?;
        let docker = self.client()?;
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = docker.download_from_container(name, Some(options));
        let mut head: Vec<u8> = Vec::with_capacity(512);
        while head.len() < 512 {
            let Some(chunk) = stream.next().await else {
                return Err(DriverError::Backend(
                    "docker: the archive ended early".into(),
                ));
            };
            let chunk = chunk.map_err(|e| match status_of(&e) {
                Some(404) => DriverError::NotFound(format!("File {path}")),
                _ => backend(e),
            })?;
            head.extend_from_slice(&chunk);
        }
        let (kind, len) = read_tar_header(&head[..512])?;
        if kind == b'5' {
            return Err(DriverError::Invalid(format!("{path} is a directory")));
        }
        if len > max {
            return Err(DriverError::TooLarge(format!(
                "{path} is {len} bytes; the limit is {max}"
            )));
        }
        let first = Bytes::from(head.split_off(512));
        let rest = stream.map(|chunk| chunk.map_err(std::io::Error::other));
        // The entry's bytes: what followed the header, then the rest, cut at its length (the tar
        // goes on with padding and end blocks).
        let mut left = len;
        let bytes = futures::stream::once(async move { Ok(first) })
            .chain(rest)
            .map(move |chunk: std::io::Result<Bytes>| {
                let mut chunk = chunk?;
                chunk.truncate(left.min(chunk.len() as u64) as usize);
                left -= chunk.len() as u64;
                Ok(chunk)
            })
            .take_while(|chunk| futures::future::ready(!matches!(chunk, Ok(c) if c.is_empty())));
        Ok(FileStream {
            size: len,
            bytes: Box::pin(bytes),
        })
    }

    async fn open_console(&self, name: &str) -> DriverResult<ConsoleIo> {
        let docker = self.client()?;
        if self.running(&docker, name).await? != Some(true) {
            return Err(DriverError::Unreachable(
                "The machine is not running".into(),
            ));
        }
        // A login shell on a TTY: bash when the image has it.
        let created = docker
            .create_exec(
                name,
                CreateExecOptions {
                    cmd: Some(vec![
                        "sh",
                        "-c",
                        "command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l",
                    ]),
                    env: Some(vec!["TERM=xterm-256color"]),
                    user: Some("0:0"),
                    tty: Some(true),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(on_container(name))?;
        let options = StartExecOptions {
            detach: false,
            tty: true,
            output_capacity: None,
        };
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = docker
            .start_exec(&created.id, Some(options))
            .await
            .map_err(backend)?
        else {
            return Err(DriverError::Backend("docker: exec started detached".into()));
        };
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(64);
        let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<ConsoleInput>(64);
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = output.next().await {
                let bytes = match chunk {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => message,
                    LogOutput::StdIn { .. } => continue,
                };
                if out_tx.send(bytes).await.is_err() {
                    break;
                }
            }
        });
        let exec_id = created.id;
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // Ends when the console is dropped: the shell then reads end-of-file and exits.
            while let Some(msg) = in_rx.recv().await {
                match msg {
                    ConsoleInput::Data(bytes) => {
                        if input.write_all(&bytes).await.is_err() {
                            break;
                        }
                        let _ = input.flush().await;
                    }
                    ConsoleInput::Resize { cols, rows } => {
                        let size = ResizeExecOptions {
                            height: rows,
                            width: cols,
                        };
                        if let Err(e) = docker.resize_exec(&exec_id, size).await {
                            tracing::debug!(error = %e, "console resize");
                        }
                    }
                }
            }
            let _ = input.shutdown().await;
        });
        Ok(ConsoleIo {
            output: out_rx,
            input: in_tx,
        })
    }

    async fn open_screen(&self, _name: &str) -> DriverResult<Box<dyn ScreenIo>> {
        Err(DriverError::Unsupported(
            "Containers have no screen; open their console instead".into(),
        ))
    }

    /// One-shot samples from the engine once a second, until the container stops or the
    /// receiver is dropped.
    async fn open_stats(
        &self,
        name: &str,
    ) -> DriverResult<tokio::sync::mpsc::Receiver<model::compute::MachineStats>> {
        let docker = self.client()?;
        if self.running(&docker, name).await? != Some(true) {
            return Err(DriverError::Unreachable(
                "The machine is not running".into(),
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let name = name.to_owned();
        tokio::spawn(async move {
            model::compute::follow_docker_stats(&docker, &name, |sample| {
                // A viewer that falls behind misses samples rather than holding the poller.
                let _ = tx.try_send(sample);
                !tx.is_closed()
            })
            .await;
        });
        Ok(rx)
    }
}

impl DockerDriver {
    /// Runs a program (no shell) inside the machine and returns its exit status.
    async fn status_of_command(
        &self,
        docker: &Docker,
        name: &str,
        argv: &[&str],
    ) -> DriverResult<Option<i64>> {
        let created = docker
            .create_exec(
                name,
                CreateExecOptions {
                    cmd: Some(argv.to_vec()),
                    user: Some("0:0"),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(on_container(name))?;
        if let StartExecResults::Attached { mut output, .. } = docker
            .start_exec(&created.id, None)
            .await
            .map_err(backend)?
        {
            while output.next().await.is_some() {}
        }
        Ok(docker
            .inspect_exec(&created.id)
            .await
            .map_err(backend)?
            .exit_code)
    }
}

/// A ustar header for a regular file `name` (mode 0644, root) of `len` bytes.
fn tar_header(name: &str, len: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    let name = name.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let field = |h: &mut [u8], at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}", w = width - 1);
        h[at..at + width - 1].copy_from_slice(text.as_bytes());
    };
    field(&mut h, 100, 8, 0o644);
    field(&mut h, 108, 8, 0);
    field(&mut h, 116, 8, 0);
    field(&mut h, 124, 12, len);
    field(&mut h, 136, 12, 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// Zero bytes after a file's data up to the next 512-byte block.
fn tar_padding(len: u64) -> usize {
    ((512 - len % 512) % 512) as usize
}

/// The type flag and size of a tar entry (octal size field, or base-256 for large files).
fn read_tar_header(h: &[u8]) -> DriverResult<(u8, u64)> {
    let field = &h[124..136];
    let len = if field[0] & 0x80 != 0 {
        field[1..]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    } else {
        let text: String = field
            .iter()
            .take_while(|b| **b != 0 && **b != b' ')
            .map(|b| *b as char)
            .collect();
        u64::from_str_radix(text.trim(), 8)
            .map_err(|_| DriverError::Backend("docker: unreadable archive header".into()))?
    };
    Ok((h[156], len))
}
