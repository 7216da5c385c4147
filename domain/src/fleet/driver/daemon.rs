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
use reqwest::Method;
use serde_json::{json, Value};
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

    async fn send(&self, req: reqwest::RequestBuilder) -> DriverResult<(u16, Value)> {
        let res = req.bearer_auth(&self.token).send().await.map_err(|e| {
            DriverError::Backend(format!("node daemon at {} does not answer: {e}", self.base))
        })?;
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> DriverResult<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// The body of a 2xx answer; the daemon's `{error}` as the matching driver error otherwise.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> DriverResult<Value> {
        let (status, value) = self.call(method, path, body).await?;
        answer(status, value)
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
        let token = self
            .ok(
                Method::POST,
                "/auth/tokens",
                Some(json!({"ttl": "1m", "remove_on_use": true, "container": name})),
            )
            .await?;
        let url = format!(
            "{}/containers/{name}/ws?token={}",
            self.base.replacen("http", "ws", 1),
            token["token"].as_str().unwrap_or_default()
        );
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| DriverError::Unreachable(format!("node daemon events: {e}")))?;
        Ok(ws)
    }

    async fn container(&self, name: &str) -> DriverResult<Option<Value>> {
        let (status, value) = self
            .call(Method::GET, &format!("/containers/{name}"), None)
            .await?;
        match status {
            404 => Ok(None),
            _ => answer(status, value).map(Some),
        }
    }

    async fn volume_of(&self, name: &str) -> DriverResult<String> {
        let c = self
            .container(name)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
        Ok(c["volume_id"].as_str().unwrap_or_default().to_owned())
    }

    /// Free pool ports for a new machine, distinct.
    async fn pick_ports(&self, wanted: u8) -> DriverResult<Vec<Value>> {
        let mut picked: Vec<Value> = Vec::new();
        let mut tries = 0;
        while picked.len() < wanted as usize {
            tries += 1;
            if tries > 50 {
                return Err(DriverError::Invalid(
                    "The node has too few free ports for this app".into(),
                ));
            }
            let (status, port) = self
                .call(Method::GET, "/network/ports/random", None)
                .await?;
            if status == 404 {
                return Err(DriverError::Invalid(
                    "The node has no free port for this app".into(),
                ));
            }
            let port = answer(status, port)?;
            if !picked
                .iter()
                .any(|p| p["ip"] == port["ip"] && p["port"] == port["port"])
            {
                picked.push(
                    json!({"ip": port["ip"], "port": port["port"], "protocol": port["protocol"]}),
                );
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
            match c["install_state"].as_str() {
                Some("ready") => return Ok(()),
                Some("failed") => {
                    // The daemon says why (the engine's error, or the script's exit code and
                    // last output); older daemons do not, and the console has the output.
                    let why = c["install_error"].as_str().unwrap_or(
                        "the install script failed; its output is on the machine's console",
                    );
                    return Err(DriverError::Invalid(format!(
                        "The app's install failed: {why}"
                    )));
                }
                _ if tokio::time::Instant::now() > deadline => {
                    return Err(DriverError::Backend(
                        "The install script is still running".into(),
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
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

fn answer(status: u16, value: Value) -> DriverResult<Value> {
    let message = value["error"]
        .as_str()
        .unwrap_or("the node daemon refused")
        .to_owned();
    match status {
        200..=299 => Ok(value),
        404 => Err(DriverError::NotFound(
            message.trim_end_matches(" not found").to_owned(),
        )),
        413 => Err(DriverError::TooLarge(message)),
        400 | 409 => Err(DriverError::Invalid(message)),
        _ => Err(DriverError::Backend(format!("node daemon: {message}"))),
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
        let volume = self
            .ok(
                Method::POST,
                "/volumes",
                Some(json!({"size_limit": spec.disk_gb * 1024 * 1024 * 1024})),
            )
            .await?;
        let volume_id = volume["volume_id"].as_str().unwrap_or_default().to_owned();
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
            let body = json!({
                "internal_id": spec.name,
                "image": spec.image,
                "volume_id": volume_id,
                "startup_command": app.startup_command.clone().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "sh".into()),
                "start_pattern": app.start_pattern,
                "install_script": app.install_script,
                "ports": ports,
                "limits": {"memory": spec.memory_mb * 1024 * 1024, "cpu": spec.vcpu as f64},
                "environment": environment,
                // One isolated network per account on the node (Hangar's extension).
                "network": (!spec.account.is_empty()).then(|| format!("acct-{}", spec.account)),
            });
            self.ok(Method::POST, "/containers", Some(body)).await
        }
        .await;
        if let Err(e) = made {
            // Nothing of a failed create is left on the node.
            let _ = self
                .call(Method::DELETE, &format!("/volumes/{volume_id}"), None)
                .await;
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
        self.ok(Method::POST, &format!("/containers/{name}/start"), None)
            .await?;
        let deadline = tokio::time::Instant::now() + START_WAIT;
        while tokio::time::Instant::now() < deadline {
            let c = self
                .container(name)
                .await?
                .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
            match c["state"].as_str() {
                Some("starting") => tokio::time::sleep(Duration::from_millis(250)).await,
                Some("exit") => {
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
        self.ok(Method::POST, &format!("/containers/{name}/stop"), None)
            .await
            .map(drop)
    }

    async fn kill(&self, name: &str) -> DriverResult<()> {
        self.ok(Method::POST, &format!("/containers/{name}/kill"), None)
            .await
            .map(drop)
    }

    async fn reboot(&self, name: &str) -> DriverResult<()> {
        self.ok(Method::POST, &format!("/containers/{name}/restart"), None)
            .await
            .map(drop)
    }

    /// Idempotent: the container and its volume, whichever of them is still there.
    async fn destroy(&self, name: &str) -> DriverResult<()> {
        let Some(c) = self.container(name).await? else {
            return Ok(());
        };
        let volume = c["volume_id"].as_str().unwrap_or_default().to_owned();
        let (status, body) = self
            .call(Method::DELETE, &format!("/containers/{name}"), None)
            .await?;
        if status != 404 {
            answer(status, body)?;
        }
        let (status, body) = self
            .call(Method::DELETE, &format!("/volumes/{volume}"), None)
            .await?;
        if status != 404 {
            answer(status, body)?;
        }
        Ok(())
    }

    async fn power(&self, name: &str) -> DriverResult<Option<Power>> {
        Ok(self
            .container(name)
            .await?
            .map(|c| match c["state"].as_str() {
                Some("running" | "starting") => Power::Running,
                _ => Power::Stopped,
            }))
    }

    async fn rotate_secret(&self, token: &str) -> DriverResult<()> {
        self.ok(
            Method::POST,
            "/remote/token",
            Some(serde_json::json!({"token": token})),
        )
        .await
        .map(|_| ())
    }

    /// `GET /system/host`: the daemon's version and its host's load, read from `/proc`.
    async fn host(&self) -> DriverResult<super::HostReport> {
        let body = self.ok(Method::GET, "/system/host", None).await?;
        serde_json::from_value(body)
            .map_err(|e| DriverError::Backend(format!("node daemon's host report: {e}")))
    }

    async fn list(&self) -> DriverResult<Vec<Machine>> {
        let all = self.ok(Method::GET, "/containers", None).await?;
        Ok(all["containers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| {
                let name = c["internal_id"].as_str()?;
                name.starts_with("hangar-").then(|| Machine {
                    name: name.to_owned(),
                    power: match c["state"].as_str() {
                        Some("running" | "starting") => Power::Running,
                        _ => Power::Stopped,
                    },
                    // The volume's own quota bounds what goes in through the daemon.
                    disk_used: None,
                })
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
                let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let data = event["data"].as_str().unwrap_or_default();
                let bytes = match event["event"].as_str() {
                    Some("console" | "logs") if !data.is_empty() => data.to_owned(),
                    Some("daemon_message") => format!("\r\n\x1b[2m[node] {data}\x1b[0m\r\n"),
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
                let msg =
                    json!({"event": "console_input", "data": String::from_utf8_lossy(&bytes)});
                if sink
                    .send(Message::Text(msg.to_string().into()))
                    .await
                    .is_err()
                {
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
                let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                // The daemon's socket outlives a stop (it carries the console and the state
                // too), so the samples end here when the container leaves `running`, as the
                // trait promises.
                if event["event"] == "event"
                    && !matches!(event["data"].as_str(), Some("running" | "starting"))
                {
                    break;
                }
                if event["event"] != "stats" {
                    continue;
                }
                let Ok(sample) = serde_json::from_value(event) else {
                    continue;
                };
                if tx.send(sample).await.is_err() {
                    break;
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
            .http
            .get(format!("{}/volumes/{volume}/files", self.base))
            .query(&[
                ("path", path.to_owned()),
                ("offset", offset.to_string()),
                ("limit", limit.to_string()),
            ]);
        let (status, page) = self.send(req).await?;
        let page = answer(status, page)?;
        let about = self
            .ok(Method::GET, &format!("/volumes/{volume}"), None)
            .await?;
        let files = serde_json::from_value(page["files"].clone())
            .map_err(|e| DriverError::Backend(format!("node daemon: a listing it sent: {e}")))?;
        Ok(model::compute::VolumeListing {
            path: page["path"].as_str().unwrap_or_default().to_owned(),
            files,
            total: page["total"].as_u64().unwrap_or(0),
            offset: page["offset"].as_u64().unwrap_or(0),
            next_offset: page["next_offset"].as_u64(),
            used_bytes: about["used_bytes"].as_u64().unwrap_or(0),
            size_limit: about["size_limit"].as_u64(),
        })
    }

    async fn make_folder(&self, name: &str, path: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        self.ok(
            Method::POST,
            &format!("/volumes/{volume}/folders"),
            Some(json!({"path": path})),
        )
        .await
        .map(drop)
    }

    async fn copy(&self, name: &str, from: &str, to: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        self.ok(
            Method::POST,
            &format!("/volumes/{volume}/copy"),
            Some(json!({"source": from, "destination": to})),
        )
        .await
        .map(drop)
    }

    async fn remove(&self, name: &str, path: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        let req = self
            .http
            .delete(format!("{}/volumes/{volume}/files", self.base))
            .query(&[("path", path)]);
        let (status, body) = self.send(req).await?;
        answer(status, body).map(drop)
    }

    async fn compress(&self, name: &str, path: &str, output_name: &str) -> DriverResult<String> {
        let volume = self.volume_of(name).await?;
        let done = self
            .ok(
                Method::POST,
                &format!("/volumes/{volume}/compress"),
                Some(json!({"format": "tar.gz", "output_name": output_name, "path": path})),
            )
            .await?;
        Ok(done["archive_path"].as_str().unwrap_or_default().to_owned())
    }

    async fn decompress(&self, name: &str, archive: &str, destination: &str) -> DriverResult<()> {
        let volume = self.volume_of(name).await?;
        self.ok(
            Method::POST,
            &format!("/volumes/{volume}/decompress"),
            Some(json!({"archive_path": archive, "destination": destination})),
        )
        .await
        .map(drop)
    }

    async fn read(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream> {
        let volume = self.volume_of(name).await?;
        let res = self
            .http
            .get(format!("{}/volumes/{volume}/files/content", self.base))
            .query(&[("path", path)])
            .bearer_auth(&self.token)
            .timeout(TRANSFER_TIMEOUT)
            .send()
            .await
            .map_err(|e| DriverError::Backend(format!("node daemon: {e}")))?;
        let status = res.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(answer(status, res.json().await.unwrap_or(Value::Null))
                .err()
                .unwrap_or_else(|| DriverError::Backend("node daemon: no file".into())));
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
            .http
            .put(format!("{}/volumes/{volume}/files/content", self.base))
            .query(&[("path", path)])
            .timeout(TRANSFER_TIMEOUT)
            .header(reqwest::header::CONTENT_LENGTH, file.size)
            .body(reqwest::Body::wrap_stream(file.bytes));
        let (status, body) = self.send(req).await?;
        answer(status, body).map(drop)
    }

    async fn ports(&self, name: &str) -> DriverResult<Vec<String>> {
        let c = self
            .container(name)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))?;
        Ok(c["ports"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "{}:{}/{}",
                    p["ip"].as_str().unwrap_or("0.0.0.0"),
                    p["port"],
                    p["protocol"].as_str().unwrap_or("tcp")
                )
            })
            .collect())
    }
}
