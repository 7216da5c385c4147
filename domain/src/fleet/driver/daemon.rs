//! Container machines on a node daemon (`hangar-node`) over its HTTP API.
//!
//! A node's uri is `hangar-node+http://host:8070` and its token is the node's stored secret. A
//! machine is a daemon container whose `internal_id` is the machine's name (`hangar-<id>`), on a
//! volume of its own (the plan's disk as the volume's limit), with as many pool ports as its app
//! template asks for. Images that are app templates bring their startup command, install script,
//! start pattern and environment ([`AppSpec`]); a plain image runs `sh` on its console. User data
//! and SSH keys reach the container as `HANGAR_USER_DATA` and `HANGAR_SSH_AUTHORIZED_KEYS`, as on
//! Docker nodes.
//!
//! `create` returns when the install script has finished (it runs inside the create job, so a
//! failed install fails the job with the script's exit code). Files are the volume's, seen from
//! inside at `/home/container`; other paths are not reachable. The daemon has no exec, snapshots
//! or screen: those answer "unsupported" with what works instead. A daemon that does not answer
//! is a `Backend` error: jobs retry, and the reconciler marks the node unreachable until it is
//! back.

use std::time::Duration;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt, TryStreamExt};
use model::node::{
    CompressRequest, Compressed, Container, ContainerList, CopyRequest, DecompressRequest,
    ErrorBody, Event, FilesPage, FolderRequest, InstallState, IssuedToken, Limits, LiveState,
    NewContainer, NewVolume, PoolPort, PortBinding, RotateToken, TokenRequest, ViewerInput,
    VolumeView,
};
use reqwest::Method;
use serde::{de::DeserializeOwned, de::IgnoredAny, Serialize};
use tokio_tungstenite::tungstenite::Message;

use crate::fleet::driver::{
    Console, ConsoleInput, ConsoleIo, Driver, DriverError, DriverResult, ExecOutput, ExecRequest,
    FileStream, Kind, Machine, MachineSpec, Power, ScreenIo, Volume,
};

/// Where the machine's volume appears inside its container.
const MOUNT: &str = "/home/container";
/// How long `create` waits for an install script.
const INSTALL_WAIT: Duration = Duration::from_secs(30 * 60);
/// How long a start waits for the app's start pattern before calling it running anyway.
const START_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct DaemonDriver {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// How long one file may take to travel to or from a node daemon's volume (the client's usual
/// 120 s bound is for calls, not for a file of `file_max_bytes` on a slow link).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl DaemonDriver {
    pub fn new(uri: &str, token: &str) -> Self {
        let base = uri
            .trim_start_matches("hangar-node+")
            .trim_end_matches('/')
            .to_owned();
        Self {
            base,
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    async fn raw(&self, req: reqwest::RequestBuilder) -> DriverResult<reqwest::Response> {
        req.bearer_auth(&self.token).send().await.map_err(|e| {
            DriverError::Backend(format!("node daemon at {} does not answer: {e}", self.base))
        })
    }

    /// Sends a request and reads a 2xx answer as `T`; the daemon's `{error}` as the matching
    /// driver error otherwise.
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> DriverResult<T> {
        let res = self.raw(req).await?;
        if !res.status().is_success() {
            return Err(refusal(res).await);
        }
        res.json().await.map_err(|e| {
            DriverError::Backend(format!("node daemon: an answer that does not read: {e}"))
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> DriverResult<T> {
        self.send(self.request(Method::GET, path)).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> DriverResult<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// A call whose answer says nothing the driver needs (the daemon's `{"message": ...}`).
    async fn act(&self, method: Method, path: &str) -> DriverResult<()> {
        self.send::<IgnoredAny>(self.request(method, path))
            .await
            .map(drop)
    }

    /// A delete that is done when the thing is gone already.
    async fn delete_if_there(&self, path: &str) -> DriverResult<()> {
        match self.act(Method::DELETE, path).await {
            Err(DriverError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    /// The running container's WebSocket (console, stats and state events), opened with a
    /// single-use token scoped to this container.
    async fn events(
        &self,
        name: &str,
    ) -> DriverResult<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    > {
        if self.power(name).await? != Some(Power::Running) {
            return Err(DriverError::Unreachable(
                "The machine is not running".into(),
            ));
        }
        let token: IssuedToken = self
            .post(
                "/auth/tokens",
                &TokenRequest {
                    ttl: "1m".into(),
                    remove_on_use: true,
                    container: Some(name.to_owned()),
                },
            )
            .await?;
        let url = format!(
            "{}/containers/{name}/ws?token={}",
            self.base.replacen("http", "ws", 1),
            token.token
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| DriverError::Unreachable(format!("node daemon events: {e}")))?;
        Ok(ws)
    }

    async fn container(&self, name: &str) -> DriverResult<Option<Container>> {
        match self.get(&format!("/containers/{name}")).await {
            Err(DriverError::NotFound(_)) => Ok(None),
            other => other.map(Some),
        }
    }

    async fn volume_of(&self, name: &str) -> DriverResult<String> {
        let c = self
            .container(name)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
        Ok(c.volume_id)
    }

    /// Free pool ports for a new machine, distinct.
    async fn pick_ports(&self, wanted: u8) -> DriverResult<Vec<PortBinding>> {
        let mut picked: Vec<PortBinding> = Vec::new();
        let mut tries = 0;
        while picked.len() < wanted as usize {
            tries += 1;
            if tries > 50 {
                return Err(DriverError::Invalid(
                    "The node has too few free ports for this app".into(),
                ));
            }
            let port: PoolPort = match self.get("/network/ports/random").await {
                Err(DriverError::NotFound(_)) => {
                    return Err(DriverError::Invalid(
                        "The node has no free port for this app".into(),
                    ))
                }
                other => other?,
            };
            if !picked
                .iter()
                .any(|p| p.ip == port.ip && p.port == port.port)
            {
                picked.push(PortBinding {
                    ip: port.ip,
                    port: port.port,
                    protocol: port.protocol,
                });
            }
        }
        Ok(picked)
    }

    async fn wait_installed(&self, name: &str) -> DriverResult<()> {
        let deadline = tokio::time::Instant::now() + INSTALL_WAIT;
        loop {
            let c = self
                .container(name)
                .await?
                .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
            match c.install_state {
                InstallState::Ready => return Ok(()),
                InstallState::Failed => {
                    // The daemon says why (the engine's error, or the script's exit code and
                    // last output); older daemons do not, and the console has the output.
                    let why = c.install_error.as_deref().unwrap_or(
                        "the install script failed; its output is on the machine's console",
                    );
                    return Err(DriverError::Invalid(format!(
                        "The app's install failed: {why}"
                    )));
                }
                InstallState::Installing if tokio::time::Instant::now() > deadline => {
                    return Err(DriverError::Backend(
                        "The install script is still running".into(),
                    ))
                }
                InstallState::Installing => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    fn path_in_volume(path: &str) -> DriverResult<&str> {
        let rel = path
            .strip_prefix(MOUNT)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .ok_or_else(|| {
                DriverError::Invalid(format!(
                    "On this node only the machine's volume is reachable: paths start with {MOUNT}/"
                ))
            })?;
        Ok(rel.trim_start_matches('/'))
    }
}

/// A refusal as the matching driver error, in the daemon's words (`{"error": ...}`).
async fn refusal(res: reqwest::Response) -> DriverError {
    let status = res.status().as_u16();
    let message = res
        .json::<ErrorBody>()
        .await
        .map(|b| b.error)
        .unwrap_or_else(|_| "the node daemon refused".into());
    match status {
        404 => DriverError::NotFound(message.trim_end_matches(" not found").to_owned()),
        413 => DriverError::TooLarge(message),
        400 | 409 => DriverError::Invalid(message),
        _ => DriverError::Backend(format!("node daemon: {message}")),
    }
}

/// Running for Hangar once the process is up, its start pattern seen or not.
fn power_of(state: LiveState) -> Power {
    if state.is_up() {
        Power::Running
    } else {
        Power::Stopped
    }
}

fn unsupported(what: &str) -> DriverError {
    DriverError::Unsupported(format!(
        "{what} are not available for containers on node daemons"
    ))
}

#[async_trait]
impl Driver for DaemonDriver {
    fn kind(&self) -> Kind {
        Kind::Container
    }

    /// A node daemon has no image listing (its API is containers, volumes and ports), so the
    /// operator's catalog is trusted; a missing image fails the install with the engine's words.
    async fn has_image(&self, _source: &str) -> DriverResult<bool> {
        Ok(true)
    }

    /// Makes the volume and the container, waits for the install script and starts it.
    /// Idempotent: a machine that exists already is kept, its install awaited and it is started
    /// (the daemon's start leaves a running container as it is).
    async fn create(&self, spec: &MachineSpec) -> DriverResult<()> {
        if self.container(&spec.name).await?.is_some() {
            self.wait_installed(&spec.name).await?;
            return self.start(&spec.name).await;
        }
        let app = spec.app.clone().unwrap_or_default();
        let volume: VolumeView = self
            .post(
                "/volumes",
                &NewVolume {
                    size_limit: Some(spec.disk_gb * 1024 * 1024 * 1024),
                },
            )
            .await?;
        let volume_id = volume.volume_id;
        let mut environment = app.environment.clone();
        if let Some(data) = &spec.user_data {
            environment.insert("HANGAR_USER_DATA".into(), data.clone());
        }
        if !spec.ssh_keys.is_empty() {
            environment.insert(
                "HANGAR_SSH_AUTHORIZED_KEYS".into(),
                spec.ssh_keys.join("\n"),
            );
        }
        let made = async {
            let ports = self.pick_ports(app.ports).await?;
            let body = NewContainer {
                internal_id: spec.name.clone(),
                image: spec.image.clone(),
                volume_id: volume_id.clone(),
                startup_command: app
                    .startup_command
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .unwrap_or_else(|| "sh".into()),
                start_pattern: app.start_pattern.clone(),
                install_script: app.install_script.clone(),
                ports,
                limits: Limits {
                    memory: spec.memory_mb * 1024 * 1024,
                    cpu: spec.vcpu as f64,
                    pids: 0,
                },
                environment: environment.into_iter().collect(),
                // One isolated network per account on the node (Hangar's extension).
                network: (!spec.account.is_empty()).then(|| format!("acct-{}", spec.account)),
            };
            self.post::<_, IgnoredAny>("/containers", &body).await
        }
        .await;
        if let Err(e) = made {
            // Nothing of a failed create is left on the node.
            let _ = self.delete_if_there(&format!("/volumes/{volume_id}")).await;
            return match e {
                // A concurrent retry made it first: the same end state.
                DriverError::Invalid(m) if m.contains("already exists") => {
                    self.wait_installed(&spec.name).await?;
                    self.start(&spec.name).await
                }
                e => Err(e),
            };
        }
        self.wait_installed(&spec.name).await?;
        self.start(&spec.name).await
    }

    /// Starts the container and waits (up to [`START_WAIT`]) for its start pattern, so the
    /// machine reads `running` when the app is up; a container that exits meanwhile fails the
    /// start with what its console said last.
    async fn start(&self, name: &str) -> DriverResult<()> {
        self.act(Method::POST, &format!("/containers/{name}/start"))
            .await?;
        let deadline = tokio::time::Instant::now() + START_WAIT;
        while tokio::time::Instant::now() < deadline {
            let c = self
                .container(name)
                .await?
                .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
            match c.state {
                LiveState::Starting => tokio::time::sleep(Duration::from_millis(250)).await,
                LiveState::Exit => {
                    return Err(DriverError::Invalid(
                        "The app exited while starting; its console shows why".into(),
                    ))
                }
                _ => return Ok(()),
            }
        }
        // Still starting: it runs, and its console says how far it got.
        Ok(())
    }

    async fn stop(&self, name: &str) -> DriverResult<()> {
        self.act(Method::POST, &format!("/containers/{name}/stop"))
            .await
    }

    async fn kill(&self, name: &str) -> DriverResult<()> {
        self.act(Method::POST, &format!("/containers/{name}/kill"))
            .await
    }

    async fn reboot(&self, name: &str) -> DriverResult<()> {
        self.act(Method::POST, &format!("/containers/{name}/restart"))
            .await
    }

    /// Idempotent: the container and its volume, whichever of them is still there.
    async fn destroy(&self, name: &str) -> DriverResult<()> {
        let Some(c) = self.container(name).await? else {
            return Ok(());
        };
        self.delete_if_there(&format!("/containers/{name}")).await?;
        self.delete_if_there(&format!("/volumes/{}", c.volume_id))
            .await
    }

    async fn power(&self, name: &str) -> DriverResult<Option<Power>> {
        Ok(self.container(name).await?.map(|c| power_of(c.state)))
    }

    async fn rotate_secret(&self, token: &str) -> DriverResult<()> {
        self.post::<_, IgnoredAny>(
            "/remote/token",
            &RotateToken {
                token: token.to_owned(),
            },
        )
        .await
        .map(drop)
    }

    /// `GET /system/host`: the daemon's version and its host's load, read from `/proc`.
    async fn host(&self) -> DriverResult<super::HostReport> {
        self.get("/system/host").await
    }

    async fn list(&self) -> DriverResult<Vec<Machine>> {
        let all: ContainerList = self.get("/containers").await?;
        Ok(all
            .containers
            .into_iter()
            .filter(|c| c.internal_id.starts_with("hangar-"))
            .map(|c| Machine {
                name: c.internal_id,
                power: power_of(c.state),
                // The volume's own quota bounds what goes in through the daemon.
                disk_used: None,
            })
            .collect())
    }

    async fn snapshot_create(&self, _: &str, _: &str) -> DriverResult<()> {
        Err(unsupported("Snapshots"))
    }

    async fn snapshot_list(&self, _: &str) -> DriverResult<Vec<String>> {
        Ok(Vec::new())
    }

    async fn snapshot_restore(&self, _: &str, _: &str) -> DriverResult<()> {
        Err(unsupported("Snapshots"))
    }

    async fn snapshot_delete(&self, _: &str, _: &str) -> DriverResult<()> {
        Err(unsupported("Snapshots"))
    }

    async fn console(&self, name: &str) -> DriverResult<Console> {
        self.volume_of(name).await?;
        Ok(Console { vnc_port: None })
    }

    /// The host address of its first pool port (where its players connect); none without ports.
    async fn address(&self, name: &str) -> DriverResult<Option<String>> {
        Ok(Volume::ports(self, name)
            .await?
            .first()
            .and_then(|p| p.rsplit_once(':'))
            .map(|(ip, _)| ip.to_owned()))
    }

    async fn exec(&self, _: &str, _: &ExecRequest) -> DriverResult<ExecOutput> {
        Err(DriverError::Unsupported(
            "Commands are not available for containers on node daemons; use the machine's console"
                .into(),
        ))
    }

    async fn exec_kill(&self, _: &str, _: &str) -> DriverResult<()> {
        Ok(())
    }

    async fn put_file(&self, name: &str, path: &str, file: FileStream) -> DriverResult<()> {
        let rel = Self::path_in_volume(path)?;
        Volume::write(self, name, rel, file).await
    }

    async fn get_file(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream> {
        let rel = Self::path_in_volume(path)?;
        Volume::read(self, name, rel, max).await
    }

    fn volume(&self) -> Option<&dyn Volume> {
        Some(self)
    }

    /// The container's own console through the daemon's WebSocket, opened with a single-use
    /// token scoped to this container: console output and daemon messages come out, keystrokes
    /// go in. The daemon's TTY keeps its size; resizes are not forwarded.
    async fn open_console(&self, name: &str) -> DriverResult<ConsoleIo> {
        let ws = self.events(name).await?;
        let (mut sink, mut stream) = ws.split();
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(64);
        let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<ConsoleInput>(64);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(event) = serde_json::from_str::<Event>(text.as_str()) else {
                    continue;
                };
                let bytes = match event {
                    Event::Console { data } | Event::Logs { data } if !data.is_empty() => data,
                    Event::DaemonMessage { data } => {
                        format!("\r\n\x1b[2m[node] {data}\x1b[0m\r\n")
                    }
                    _ => continue,
                };
                if out_tx.send(bytes::Bytes::from(bytes)).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(input) = in_rx.recv().await {
                let ConsoleInput::Data(bytes) = input else {
                    continue;
                };
                let msg = ViewerInput::ConsoleInput(String::from_utf8_lossy(&bytes).into_owned());
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        Ok(ConsoleIo {
            output: out_rx,
            input: in_tx,
        })
    }

    async fn open_screen(&self, _: &str) -> DriverResult<Box<dyn ScreenIo>> {
        Err(DriverError::Unsupported(
            "Containers have no screen; use the console".into(),
        ))
    }

    /// The `stats` events of the container's WebSocket (one a second while it runs).
    async fn open_stats(
        &self,
        name: &str,
    ) -> DriverResult<tokio::sync::mpsc::Receiver<model::compute::MachineStats>> {
        let (_sink, mut stream) = self.events(name).await?.split();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                // The daemon's socket outlives a stop (it carries the console and the state
                // too), so the samples end here when the container leaves `running`, as the
                // trait promises.
                match serde_json::from_str::<Event>(text.as_str()) {
                    Ok(Event::Event { data }) if !data.is_up() => break,
                    Ok(Event::Stats(sample)) => {
                        if tx.send(sample).await.is_err() {
                            break;
                        }
                    }
                    _ => continue,
                }
            }
        });
        Ok(rx)
    }
}

#[async_trait]
impl Volume for DaemonDriver {
    async fn list(
        &self,
        name: &str,
        path: &str,
        offset: u64,
        limit: u64,
    ) -> DriverResult<model::compute::VolumeListing> {
        let volume = self.volume_of(name).await?;
        let req = self
            .request(Method::GET, &format!("/volumes/{volume}/files"))
            .query(&[
                ("path", path.to_owned()),
                ("offset", offset.to_string()),
                ("limit", limit.to_string()),
            ]);
        let page: FilesPage = self.send(req).await?;
        let about: VolumeView = self.get(&format!("/volumes/{volume}")).await?;
        Ok(model::compute::VolumeListing {
            path: page.path,
            files: page.files,
            total: page.total,
            offset: page.offset,
            next_offset: page.next_offset,
            used_bytes: about.used_bytes,
            size_limit: about.size_limit,
        })
    }

    async fn make_folder(&self, name: &str, path: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        self.post::<_, IgnoredAny>(
            &format!("/volumes/{volume}/folders"),
            &FolderRequest {
                path: path.to_owned(),
            },
        )
        .await
        .map(drop)
    }

    async fn copy(&self, name: &str, from: &str, to: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        self.post::<_, IgnoredAny>(
            &format!("/volumes/{volume}/copy"),
            &CopyRequest {
                source: from.to_owned(),
                destination: to.to_owned(),
            },
        )
        .await
        .map(drop)
    }

    async fn remove(&self, name: &str, path: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        let req = self
            .request(Method::DELETE, &format!("/volumes/{volume}/files"))
            .query(&[("path", path)]);
        self.send::<IgnoredAny>(req).await.map(drop)
    }

    async fn compress(&self, name: &str, path: &str, output_name: &str) -> DriverResult<String> {
        let volume = self.volume_of(name).await?;
        let done: Compressed = self
            .post(
                &format!("/volumes/{volume}/compress"),
                &CompressRequest {
                    format: "tar.gz".into(),
                    output_name: output_name.to_owned(),
                    path: path.to_owned(),
                },
            )
            .await?;
        Ok(done.archive_path)
    }

    async fn decompress(&self, name: &str, archive: &str, destination: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        self.post::<_, IgnoredAny>(
            &format!("/volumes/{volume}/decompress"),
            &DecompressRequest {
                archive_path: archive.to_owned(),
                destination: destination.to_owned(),
            },
        )
        .await
        .map(drop)
    }

    async fn read(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream> {
        let volume = self.volume_of(name).await?;
        let res = self
            .raw(
                self.request(Method::GET, &format!("/volumes/{volume}/files/content"))
                    .query(&[("path", path)])
                    .timeout(TRANSFER_TIMEOUT),
            )
            .await?;
        if !res.status().is_success() {
            return Err(refusal(res).await);
        }
        // The daemon always says how long the file is; a download without a length would
        // leave the browser without progress and Hangar without a bound.
        let size = res.content_length().ok_or_else(|| {
            DriverError::Backend("node daemon: a file download without a length".into())
        })?;
        if size > max {
            return Err(DriverError::TooLarge(format!(
                "{path} is {size} bytes; the limit is {max}"
            )));
        }
        Ok(FileStream {
            size,
            bytes: res.bytes_stream().map_err(std::io::Error::other).boxed(),
        })
    }

    async fn write(&self, name: &str, path: &str, file: FileStream) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        let req = self
            .request(Method::PUT, &format!("/volumes/{volume}/files/content"))
            .query(&[("path", path)])
            .timeout(TRANSFER_TIMEOUT)
            .header(reqwest::header::CONTENT_LENGTH, file.size)
            .body(reqwest::Body::wrap_stream(file.bytes));
        self.send::<IgnoredAny>(req).await.map(drop)
    }

    async fn ports(&self, name: &str) -> DriverResult<Vec<String>> {
        let c = self
            .container(name)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
        Ok(c.ports
            .iter()
            .map(|p| format!("{}:{}/{}", p.ip, p.port, p.protocol))
            .collect())
    }
}
