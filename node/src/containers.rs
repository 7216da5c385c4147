//! Containers: a record per container in the node's database, the engine's
//! containers behind it, and a live part per container that carries its console and events to
//! WebSocket viewers.
//!
//! Life of a container:
//! - **create** stores the record, binds its ports (pool ports only) and runs the install script
//!   once, in a separate install container on the volume (`/home/container`, the script mounted
//!   read-only at `/mnt/install/install.sh`), streaming its output to viewers. `install_state`
//!   goes `installing` → `ready` (or `failed` when the script exits non-zero).
//! - **start** creates the engine container when there is none (`hangar-node-<internal_id>`:
//!   `sh -c <startup_command>` on a TTY with stdin open, the volume at `/home/container`, the
//!   bound ports published on the same port inside, memory, CPU and process limits, no new
//!   privileges, on its group's isolated network: see [`network_of`]), attaches to it
//!   before starting so no output is missed, and reports `starting`, then `running` when a
//!   console line matches `start_pattern` (at once when there is none), and `exit` when it ends.
//! - **reinstall** replaces the engine container and runs the install script again on the same
//!   volume: files are kept unless `"wipe": true` asks for an empty volume first.
//! - **rebind-network** swaps the ports (refused while installing); a running container is
//!   recreated with the new ports and started again.
//! - a daemon restart re-attaches to running containers without restarting them; an install
//!   cut short by the restart runs again from the start.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use bollard::{
    container::LogOutput,
    models::{ContainerCreateBody, HostConfig},
    query_parameters::{
        AttachContainerOptions, CreateContainerOptions, KillContainerOptions,
        RemoveContainerOptions, StartContainerOptions, StopContainerOptions, WaitContainerOptions,
    },
    Docker, API_DEFAULT_VERSION,
};
use futures::StreamExt;
use tokio::{io::AsyncWrite, sync::broadcast};

use crate::{
    error::{NodeError, NodeResult},
    now, Node,
};
pub use model::node::{
    Container, Event, InstallState, Limits, LiveState, Mount, NewContainer, PortBinding,
};

/// Where the volume appears inside the container, as in Pterodactyl's images.
pub const MOUNT: &str = "/home/container";
/// Console output kept for a viewer who connects later (the `logs` event).
const HISTORY_BYTES: usize = 64 * 1024;
/// Events waiting for a slow viewer before it is told it missed some.
const FAN_OUT: usize = 1024;

/// A container as stored (`GET /containers/{id}` shows it with its state: [`Record::view`]).
#[derive(Debug, Clone)]
pub struct Record {
    pub internal_id: String,
    pub container_id: Option<String>,
    pub volume_id: String,
    pub image: String,
    pub startup_command: String,
    pub start_pattern: Option<String>,
    pub install_script: Option<String>,
    pub install_state: InstallState,
    /// Why the install failed, when `install_state` is `failed`: the engine's error, or the
    /// script's exit code and the last lines it printed. `null` otherwise.
    pub install_error: Option<String>,
    pub ports: Vec<PortBinding>,
    pub limits: Limits,
    pub environment: HashMap<String, String>,
    /// Hangar's extension: the isolation group whose network the container joins (`null`: its
    /// own network).
    pub network: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record {
    /// The container as `GET /containers/{id}` shows it (never the install script).
    pub fn view(&self, state: LiveState) -> Container {
        Container {
            internal_id: self.internal_id.clone(),
            container_id: self.container_id.clone(),
            volume_id: self.volume_id.clone(),
            image: self.image.clone(),
            startup_command: self.startup_command.clone(),
            start_pattern: self.start_pattern.clone(),
            install_state: self.install_state,
            install_error: self.install_error.clone(),
            ports: self.ports.clone(),
            limits: self.limits,
            environment: self.environment.clone(),
            network: self.network.clone(),
            mount: Mount {
                volume: self.volume_id.clone(),
                target: MOUNT.into(),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            state,
        }
    }
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "internal_id, container_id, volume_id, image, startup_command, start_pattern, install_script, install_state, ports, limits, environment, created_at, updated_at, install_error, network";

fn record(row: Row) -> Record {
    Record {
        internal_id: row.0,
        container_id: row.1,
        volume_id: row.2,
        image: row.3,
        startup_command: row.4,
        start_pattern: row.5,
        install_script: row.6,
        install_state: InstallState::parse(&row.7).unwrap_or(InstallState::Failed),
        install_error: row.13,
        network: row.14,
        ports: serde_json::from_str(&row.8).unwrap_or_default(),
        limits: serde_json::from_str(&row.9).unwrap_or_default(),
        environment: serde_json::from_str(&row.10).unwrap_or_default(),
        created_at: row.11,
        updated_at: row.12,
    }
}

/// A stats sample, in the reference's fields (shared with the panel).
pub type Stats = model::compute::MachineStats;

type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// The live part of a container: its event stream, recent output, state and console input.
pub struct Live {
    pub events: broadcast::Sender<Event>,
    history: Mutex<String>,
    state: Mutex<LiveState>,
    input: tokio::sync::Mutex<Option<Input>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Live {
    fn new(state: LiveState) -> Arc<Self> {
        Arc::new(Self {
            events: broadcast::channel(FAN_OUT).0,
            history: Mutex::new(String::new()),
            state: Mutex::new(state),
            input: tokio::sync::Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        })
    }

    pub fn state(&self) -> LiveState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn history(&self) -> String {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_state(&self, state: LiveState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        let _ = self.events.send(Event::Event { data: state });
    }

    fn say(&self, message: impl Into<String>) {
        let _ = self.events.send(Event::DaemonMessage {
            data: message.into(),
        });
    }

    fn output(&self, text: String) {
        {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            history.push_str(&text);
            if history.len() > HISTORY_BYTES {
                let mut cut = history.len() - HISTORY_BYTES;
                while !history.is_char_boundary(cut) {
                    cut += 1;
                }
                history.drain(..cut);
            }
        }
        let _ = self.events.send(Event::Console { data: text });
    }

    fn keep(&self, task: tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn stop_tasks(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// Writes console input to the attached container; false when nothing is attached.
    pub async fn send_input(&self, bytes: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        let mut input = self.input.lock().await;
        match input.as_mut() {
            Some(w) => w.write_all(bytes).await.is_ok() && w.flush().await.is_ok(),
            None => false,
        }
    }
}

/// Every container's live part, by internal id.
#[derive(Default)]
pub struct Containers {
    live: Mutex<HashMap<String, Arc<Live>>>,
}

impl Containers {
    pub fn live(&self, id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn insert(&self, id: &str, live: Arc<Live>) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), live);
    }

    fn remove(&self, id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }
}

/// A client for the host's engine (bollard connects per request, so this is cheap).
pub fn docker(host: &str) -> NodeResult<Docker> {
    let client = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 120, API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_http(
            &host.replacen("tcp://", "http://", 1),
            120,
            API_DEFAULT_VERSION,
        )
    };
    client.map_err(|e| NodeError::internal(format!("Docker is unreachable: {e}")))
}

fn engine(e: bollard::errors::Error) -> NodeError {
    NodeError::internal(format!("Docker operation failed: {e}"))
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn main_name(id: &str) -> String {
    format!("hangar-node-{id}")
}

fn install_name(id: &str) -> String {
    format!("hangar-node-install-{id}")
}

fn check_id(id: &str) -> NodeResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(NodeError::bad_request(
            "Invalid internal_id: 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

fn check_limits(limits: &Limits) -> NodeResult<()> {
    if limits.memory != 0 && limits.memory < 6 * 1024 * 1024 {
        return Err(NodeError::bad_request(
            "Invalid limits.memory: at least 6 MiB (6291456), or 0 for none",
        ));
    }
    if !(limits.cpu >= 0.0 && limits.cpu <= 1024.0) {
        return Err(NodeError::bad_request(
            "Invalid limits.cpu: a number of cores from 0 (none) to 1024",
        ));
    }
    Ok(())
}

fn check_pattern(pattern: Option<&str>) -> NodeResult<Option<regex::Regex>> {
    pattern
        .filter(|p| !p.is_empty())
        .map(|p| {
            regex::Regex::new(p)
                .map_err(|e| NodeError::bad_request(format!("Invalid start_pattern: {e}")))
        })
        .transpose()
}

/// Binds `ports` to container `id` in one transaction, releasing what it held before. Every
/// port must be in the pool and free or already this container's.
async fn bind_ports(node: &Node, id: &str, ports: &[PortBinding]) -> NodeResult<()> {
    let mut tx = node.db().begin().await?;
    sqlx::query("UPDATE ports SET container = NULL, in_use = 0 WHERE container = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for binding in ports {
        let (ip, port) =
            crate::ports::validate(&binding.ip, binding.port as u32, &binding.protocol).map_err(
                |_| NodeError::bad_request("Invalid port binding: port not in network pool"),
            )?;
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT protocol, container FROM ports WHERE ip = ? AND port = ?")
                .bind(&ip)
                .bind(port)
                .fetch_optional(&mut *tx)
                .await?;
        match row {
            Some((protocol, None)) if protocol == binding.protocol => {}
            Some((_, Some(other))) => {
                return Err(NodeError::conflict(format!(
                    "Invalid port binding: {ip}:{port} is bound to container {other}"
                )))
            }
            _ => {
                return Err(NodeError::bad_request(
                    "Invalid port binding: port not in network pool",
                ))
            }
        }
        sqlx::query("UPDATE ports SET container = ?, in_use = 1 WHERE ip = ? AND port = ?")
            .bind(id)
            .bind(&ip)
            .bind(port)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn get(node: &Node, id: &str) -> NodeResult<Record> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM containers WHERE internal_id = ?"
    ))
    .bind(id)
    .fetch_optional(node.db())
    .await?;
    row.map(record).ok_or_else(NodeError::container_not_found)
}

pub async fn list(node: &Node) -> NodeResult<Vec<Record>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM containers ORDER BY created_at, internal_id"
    ))
    .fetch_all(node.db())
    .await?;
    Ok(rows.into_iter().map(record).collect())
}

/// The live part of a stored container (made when missing).
pub fn live(node: &Node, record: &Record) -> Arc<Live> {
    if let Some(live) = node.containers().live(&record.internal_id) {
        return live;
    }
    let live = Live::new(match record.install_state {
        InstallState::Installing => LiveState::Installing,
        InstallState::Ready => LiveState::Ready,
        InstallState::Failed => LiveState::Failed,
    });
    node.containers().insert(&record.internal_id, live.clone());
    live
}

/// Records how an install ended; `error` says why when it failed (and is cleared otherwise).
async fn set_install_state(
    node: &Node,
    id: &str,
    state: InstallState,
    error: Option<&str>,
) -> NodeResult<()> {
    sqlx::query(
        "UPDATE containers SET install_state = ?, install_error = ?, updated_at = ? WHERE internal_id = ?",
    )
    .bind(state.as_str())
    .bind(error)
    .bind(now())
    .bind(id)
    .execute(node.db())
    .await?;
    Ok(())
}

async fn set_container_id(node: &Node, id: &str, container_id: Option<&str>) -> NodeResult<()> {
    sqlx::query("UPDATE containers SET container_id = ?, updated_at = ? WHERE internal_id = ?")
        .bind(container_id)
        .bind(now())
        .bind(id)
        .execute(node.db())
        .await?;
    Ok(())
}

pub async fn create(node: &Node, new: NewContainer) -> NodeResult<Record> {
    check_id(&new.internal_id)?;
    if let Some(group) = &new.network {
        check_id(group).map_err(|_| {
            NodeError::bad_request("Invalid network: 1 to 64 letters, digits, '-', '_' or '.'")
        })?;
    }
    check_limits(&new.limits)?;
    check_pattern(new.start_pattern.as_deref())?;
    if new.image.trim().is_empty() || new.startup_command.trim().is_empty() {
        return Err(NodeError::bad_request(
            "image and startup_command are required",
        ));
    }
    node.volumes().get(&new.volume_id)?;
    let now = now();
    let inserted = sqlx::query(
        "INSERT INTO containers (internal_id, container_id, volume_id, image, startup_command, start_pattern, install_script, install_state, ports, limits, environment, created_at, updated_at, network) \
         VALUES (?, NULL, ?, ?, ?, ?, ?, 'installing', ?, ?, ?, ?, ?, ?) ON CONFLICT (internal_id) DO NOTHING",
    )
    .bind(&new.internal_id)
    .bind(&new.volume_id)
    .bind(&new.image)
    .bind(&new.startup_command)
    .bind(&new.start_pattern)
    .bind(&new.install_script)
    .bind(serde_json::to_string(&new.ports).unwrap_or_default())
    .bind(serde_json::to_string(&new.limits).unwrap_or_default())
    .bind(serde_json::to_string(&new.environment).unwrap_or_default())
    .bind(now)
    .bind(now)
    .bind(&new.network)
    .execute(node.db())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(NodeError::conflict(format!(
            "Container {} already exists",
            new.internal_id
        )));
    }
    if let Err(e) = bind_ports(node, &new.internal_id, &new.ports).await {
        sqlx::query("DELETE FROM containers WHERE internal_id = ?")
            .bind(&new.internal_id)
            .execute(node.db())
            .await?;
        return Err(e);
    }
    let record = get(node, &new.internal_id).await?;
    spawn_install(node, &record);
    Ok(record)
}

/// Runs the install in the background; its output and outcome reach viewers as events.
fn spawn_install(node: &Node, record: &Record) {
    let live = live(node, record);
    live.set_state(LiveState::Installing);
    let (node2, record2, live2) = (node.clone(), record.clone(), live.clone());
    live.keep(tokio::spawn(async move {
        let outcome = install(&node2, &record2, &live2).await;
        let failure = match outcome {
            Ok(Installed { code: 0, .. }) => None,
            Ok(Installed { code, tail }) => {
                live2.say(format!("Install script exited with code {code}"));
                let tail = tail.trim_end();
                Some(if tail.is_empty() {
                    format!("The install script exited with code {code} and printed nothing")
                } else {
                    format!("The install script exited with code {code}; its last output:\n{tail}")
                })
            }
            Err(e) => {
                live2.say(format!("Install failed: {}", e.message));
                Some(e.message)
            }
        };
        if let Some(reason) = &failure {
            tracing::warn!(container = %record2.internal_id, %reason, "install failed");
        }
        if let Ok(volume) = node2.volumes().get(&record2.volume_id) {
            volume.mark_stale();
        }
        let (install, state) = if failure.is_some() {
            (InstallState::Failed, LiveState::Failed)
        } else {
            (InstallState::Ready, LiveState::Ready)
        };
        let _ = set_install_state(&node2, &record2.internal_id, install, failure.as_deref()).await;
        live2.set_state(state);
    }));
}

/// How an install script ended: its exit code and the end of what it printed.
struct Installed {
    code: i64,
    tail: String,
}

/// How much of an install's output is kept to explain a failure.
const INSTALL_TAIL_BYTES: usize = 2048;

/// Keeps the last [`INSTALL_TAIL_BYTES`] of `text` appended to `tail`, cut at a line start when
/// one is near, so the reason a person reads begins with a whole line.
fn keep_tail(tail: &mut String, text: &str) {
    tail.push_str(text);
    if tail.len() > INSTALL_TAIL_BYTES {
        let mut cut = tail.len() - INSTALL_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        if let Some(newline) = tail[cut..].find('\n') {
            cut += newline + 1;
        }
        tail.drain(..cut);
    }
}

/// The install container: the script on the volume, its exit code and last output.
async fn install(node: &Node, record: &Record, live: &Live) -> NodeResult<Installed> {
    let script = record.install_script.clone().unwrap_or_default();
    if script.trim().is_empty() {
        return Ok(Installed {
            code: 0,
            tail: String::new(),
        });
    }
    live.say("Running the install script");
    let config = node.config();
    let dir = config
        .storage
        .root
        .join("install")
        .join(&record.internal_id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| NodeError::internal(format!("Failed to prepare the install: {e}")))?;
    tokio::fs::write(dir.join("install.sh"), script.replace("\r\n", "\n"))
        .await
        .map_err(|e| NodeError::internal(format!("Failed to prepare the install: {e}")))?;
    let docker = docker(&config.docker.host)?;
    let name = install_name(&record.internal_id);
    remove_engine_container(&docker, &name).await?;
    let volume = node.volumes().get(&record.volume_id)?;
    let body = ContainerCreateBody {
        image: Some(record.image.clone()),
        entrypoint: Some(vec!["sh".into()]),
        cmd: Some(vec!["/mnt/install/install.sh".into()]),
        working_dir: Some(MOUNT.into()),
        env: Some(environment(record)),
        host_config: Some(HostConfig {
            binds: Some(vec![
                format!("{}:{MOUNT}", volume.dir.display()),
                format!("{}:/mnt/install:ro", dir.display()),
            ]),
            memory: (record.limits.memory > 0).then_some(record.limits.memory as i64),
            ..tenant_host_config(node, &docker, record).await?
        }),
        ..Default::default()
    };
    create_engine_container(&docker, &name, body).await?;
    let attached = docker
        .attach_container(
            &name,
            Some(AttachContainerOptions {
                stream: true,
                stdout: true,
                stderr: true,
                logs: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(engine)?;
    docker
        .start_container(&name, None::<StartContainerOptions>)
        .await
        .map_err(engine)?;
    let mut output = attached.output;
    let mut tail = String::new();
    // The output ends when the script does; in case the engine keeps the stream open after the
    // container exited, the container's state is looked at every few seconds too, and then what
    // is left of the output is read for a moment more.
    let mut exited_at: Option<tokio::time::Instant> = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), output.next()).await;
        match next {
            Ok(Some(Ok(chunk))) => {
                let text = text_of(chunk);
                keep_tail(&mut tail, &text);
                live.output(text);
            }
            Ok(_) => break,
            Err(_) => match exited_at {
                Some(at) if at.elapsed() >= Duration::from_secs(2) => break,
                Some(_) => {}
                None if !is_running(&docker, &name).await => {
                    exited_at = Some(tokio::time::Instant::now())
                }
                None => {}
            },
        }
    }
    // The output ended with the script: it has exited (or is about to). "next-exit" here would
    // wait for an exit after this call, and the script's may already have happened: the install
    // then waited for ever (seen as an intermittent hang of the panel's daemon test).
    let code = exit_code(&docker, &name, Exit::Current).await;
    remove_engine_container(&docker, &name).await?;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(Installed { code, tail })
}

fn environment(record: &Record) -> Vec<String> {
    let mut env: Vec<String> = record
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.sort();
    env.push(format!("HOME={MOUNT}"));
    env
}

fn text_of(chunk: LogOutput) -> String {
    match chunk {
        LogOutput::StdOut { message }
        | LogOutput::StdErr { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => String::from_utf8_lossy(&message).into_owned(),
    }
}

/// Which exit [`exit_code`] waits for.
#[derive(Debug, Clone, Copy)]
enum Exit {
    /// The next one, for a container that may not have started yet ("not running" would answer
    /// at once for a container created and not started).
    Next,
    /// The one under way or just done, for a container known to have started: answers at once
    /// when it has already exited.
    Current,
}

/// The exit code of the container's exit `which`, waiting for it (or of its last one, from
/// `inspect`, when the wait fails).
async fn exit_code(docker: &Docker, name: &str, which: Exit) -> i64 {
    let options = WaitContainerOptions {
        condition: match which {
            Exit::Next => "next-exit".into(),
            Exit::Current => "not-running".into(),
        },
    };
    let mut wait = docker.wait_container(name, Some(options));
    match wait.next().await {
        Some(Ok(done)) => done.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        _ => docker
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.exit_code)
            .unwrap_or(-1),
    }
}

async fn create_engine_container(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> NodeResult<String> {
    let image = body.image.clone().unwrap_or_default();
    let options = CreateContainerOptions {
        name: Some(name.to_owned()),
        ..Default::default()
    };
    let mut created = docker
        .create_container(Some(options.clone()), body.clone())
        .await;
    // The group's last other container may have been deleted meanwhile, taking the network with
    // it: made again, once.
    let network = body
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone());
    if let (Err(e), Some(network)) = (&created, network) {
        if e.to_string().contains("network") {
            let labels = HashMap::from([("hangar.node.network".to_owned(), network.clone())]);
            if model::engine::isolated_network(docker, &network, labels)
                .await
                .is_ok()
            {
                created = docker.create_container(Some(options), body).await;
            }
        }
    }
    match created {
        Ok(created) => Ok(created.id),
        Err(e) if status_of(&e) == Some(404) => Err(NodeError::internal(format!(
            "Failed to create Docker container: image {image} not found"
        ))),
        Err(e) => Err(NodeError::internal(format!(
            "Failed to create Docker container: {e}"
        ))),
    }
}

async fn remove_engine_container(docker: &Docker, name: &str) -> NodeResult<()> {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if status_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(engine(e)),
    }
}

/// The engine network of `record`'s isolation group: `hangar-node-net-<group>`, the group being
/// the `network` Hangar gave (the owner's account), else the container itself. Containers of
/// one group reach each other; no container reaches another group's (see `model::engine`).
fn network_of(record: &Record) -> String {
    let group = record.network.as_deref().unwrap_or(&record.internal_id);
    format!("hangar-node-net-{group}")
}

/// The host configuration every engine container of `record` starts from: its group's isolated
/// network (made on first use), the process limit and no new privileges.
async fn tenant_host_config(
    node: &Node,
    docker: &Docker,
    record: &Record,
) -> NodeResult<HostConfig> {
    let network = network_of(record);
    let labels = HashMap::from([("hangar.node.network".to_owned(), network.clone())]);
    model::engine::isolated_network(docker, &network, labels)
        .await
        .map_err(engine)?;
    let pids = match record.limits.pids {
        0 => node.config().limits.container_pids,
        n => n,
    };
    Ok(model::engine::tenant_host_config(&network, pids as i64))
}

/// The engine container for `record`, created when there is none.
async fn ensure_main(node: &Node, docker: &Docker, record: &Record) -> NodeResult<String> {
    let name = main_name(&record.internal_id);
    if let Ok(found) = docker.inspect_container(&name, None).await {
        return Ok(found.id.unwrap_or(name));
    }
    let volume = node.volumes().get(&record.volume_id)?;
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for p in &record.ports {
        let key = format!("{}/{}", p.port, p.protocol);
        exposed.push(key.clone());
        bindings.insert(
            key,
            Some(vec![bollard::models::PortBinding {
                host_ip: Some(p.ip.clone()),
                host_port: Some(p.port.to_string()),
            }]),
        );
    }
    let body = ContainerCreateBody {
        image: Some(record.image.clone()),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            record.startup_command.clone(),
        ]),
        entrypoint: Some(Vec::new()),
        working_dir: Some(MOUNT.into()),
        env: Some(environment(record)),
        tty: Some(true),
        open_stdin: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        exposed_ports: Some(exposed),
        labels: Some(HashMap::from([(
            "hangar.node.container".to_owned(),
            record.internal_id.clone(),
        )])),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:{MOUNT}", volume.dir.display())]),
            port_bindings: Some(bindings),
            memory: (record.limits.memory > 0).then_some(record.limits.memory as i64),
            nano_cpus: (record.limits.cpu > 0.0).then_some((record.limits.cpu * 1e9) as i64),
            ..tenant_host_config(node, docker, record).await?
        }),
        ..Default::default()
    };
    let id = create_engine_container(docker, &name, body).await?;
    set_container_id(node, &record.internal_id, Some(&id)).await?;
    Ok(id)
}

async fn is_running(docker: &Docker, name: &str) -> bool {
    docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|c| c.state)
        .and_then(|s| s.running)
        .unwrap_or(false)
}

pub async fn start(node: &Node, id: &str) -> NodeResult<()> {
    let record = get(node, id).await?;
    match record.install_state {
        InstallState::Installing => {
            return Err(NodeError::conflict(
                "Cannot start container while it is installing",
            ))
        }
        InstallState::Failed => {
            return Err(NodeError::conflict(
                "The install script failed; reinstall the container first",
            ))
        }
        InstallState::Ready => {}
    }
    let docker = docker(&node.config().docker.host)?;
    let name = main_name(id);
    ensure_main(node, &docker, &record).await?;
    if is_running(&docker, &name).await {
        return Ok(());
    }
    let live = live(node, &record);
    live.set_state(LiveState::Starting);
    watch(node, &docker, &record, &live, false).await?;
    if let Err(e) = docker
        .start_container(&name, None::<StartContainerOptions>)
        .await
    {
        live.stop_tasks();
        live.set_state(LiveState::Exit);
        return Err(engine(e));
    }
    live.say("Container started");
    Ok(())
}

/// Attaches to the engine container and follows it: console output (and the start pattern),
/// stats, and its end. `running_already` when re-attaching after a daemon restart.
async fn watch(
    node: &Node,
    docker: &Docker,
    record: &Record,
    live: &Arc<Live>,
    running_already: bool,
) -> NodeResult<()> {
    let name = main_name(&record.internal_id);
    let attached = docker
        .attach_container(
            &name,
            Some(AttachContainerOptions {
                stream: true,
                stdin: true,
                stdout: true,
                stderr: true,
                logs: false,
                ..Default::default()
            }),
        )
        .await
        .map_err(engine)?;
    *live.input.lock().await = Some(attached.input);
    let pattern = check_pattern(record.start_pattern.as_deref())?;
    if pattern.is_none() || running_already {
        live.set_state(LiveState::Running);
    }
    let mut output = attached.output;
    let follower = live.clone();
    live.keep(tokio::spawn(async move {
        let mut waiting = pattern;
        let mut line = String::new();
        while let Some(Ok(chunk)) = output.next().await {
            let text = text_of(chunk);
            if let Some(re) = &waiting {
                line.push_str(&text);
                let matched = line
                    .split('\n')
                    .any(|l| re.is_match(l.trim_end_matches('\r')));
                if let Some(last) = line.rfind('\n') {
                    line.drain(..=last);
                }
                follower.output(text);
                if matched {
                    waiting = None;
                    follower.set_state(LiveState::Running);
                }
                continue;
            }
            follower.output(text);
        }
    }));
    let (stats_docker, stats_live, stats_name) = (docker.clone(), live.clone(), name.clone());
    live.keep(tokio::spawn(async move {
        follow_stats(stats_docker, stats_name, stats_live).await
    }));
    let (wait_docker, wait_live, wait_node, volume_id) = (
        docker.clone(),
        live.clone(),
        node.clone(),
        record.volume_id.clone(),
    );
    live.keep(tokio::spawn(async move {
        let code = exit_code(&wait_docker, &name, Exit::Next).await;
        *wait_live.input.lock().await = None;
        if let Ok(volume) = wait_node.volumes().get(&volume_id) {
            volume.mark_stale();
        }
        wait_live.say(format!("Container exited with code {code}"));
        wait_live.set_state(LiveState::Exit);
    }));
    Ok(())
}

/// Stats events about once a second while the container starts or runs and someone watches
/// (no viewer, no polling: a host with hundreds of idle containers asks its engine nothing).
async fn follow_stats(docker: Docker, name: String, live: Arc<Live>) {
    let wanted = |live: &Live| live.events.receiver_count() > 0 && live.state().is_up();
    loop {
        if wanted(&live) {
            model::compute::follow_docker_stats(&docker, &name, |sample| {
                let _ = live.events.send(Event::Stats(sample));
                wanted(&live)
            })
            .await;
        }
        if !live.state().is_up() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Stops (`kill` false: SIGTERM, then SIGKILL after 10 s) or kills the container.
pub async fn halt(node: &Node, id: &str, kill: bool) -> NodeResult<()> {
    let record = get(node, id).await?;
    let docker = docker(&node.config().docker.host)?;
    let name = main_name(id);
    if !is_running(&docker, &name).await {
        return Ok(());
    }
    let live = live(node, &record);
    live.say(if kill {
        "Killing the container"
    } else {
        "Stopping the container"
    });
    let result = if kill {
        docker
            .kill_container(&name, None::<KillContainerOptions>)
            .await
    } else {
        docker
            .stop_container(
                &name,
                Some(StopContainerOptions {
                    t: Some(10),
                    ..Default::default()
                }),
            )
            .await
    };
    match result {
        Ok(()) => {}
        Err(e) if matches!(status_of(&e), Some(304) | Some(409)) => {}
        Err(e) => return Err(engine(e)),
    }
    // Answer once the follower has seen the end, so the state reads `exit` right after.
    for _ in 0..50 {
        if !live.state().is_up() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

pub async fn restart(node: &Node, id: &str) -> NodeResult<()> {
    halt(node, id, false).await?;
    // Give the follower a moment to report the exit before the next start.
    let docker = docker(&node.config().docker.host)?;
    for _ in 0..50 {
        if !is_running(&docker, &main_name(id)).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start(node, id).await
}

/// Replaces the engine container and runs the install again on the same volume (emptied first
/// when `wipe`).
pub async fn reinstall(
    node: &Node,
    id: &str,
    image: Option<String>,
    script: Option<String>,
    wipe: bool,
) -> NodeResult<()> {
    let record = get(node, id).await?;
    if record.install_state == InstallState::Installing {
        return Err(NodeError::conflict(
            "Cannot reinstall container while it is installing",
        ));
    }
    let docker = docker(&node.config().docker.host)?;
    if let Some(live) = node.containers().live(id) {
        live.stop_tasks();
    }
    remove_engine_container(&docker, &main_name(id)).await?;
    if wipe {
        let volume = node.volumes().get(&record.volume_id)?;
        crate::volumes::blocking(move || {
            let tree = volume.tree()?;
            let root = crate::confined::VolPath::parse("")?;
            for entry in tree.list(&root)? {
                let freed = tree.remove(&root.join(&entry.name))?;
                crate::confined::Budget::release(&volume.quota, freed);
            }
            Ok(())
        })
        .await?;
    }
    sqlx::query(
        "UPDATE containers SET image = COALESCE(?, image), install_script = COALESCE(?, install_script), container_id = NULL, install_state = 'installing', install_error = NULL, updated_at = ? WHERE internal_id = ?",
    )
    .bind(image.filter(|i| !i.trim().is_empty()))
    .bind(script)
    .bind(now())
    .bind(id)
    .execute(node.db())
    .await?;
    let record = get(node, id).await?;
    spawn_install(node, &record);
    Ok(())
}

/// New ports for the container; a running one is recreated with them and started again.
pub async fn rebind(node: &Node, id: &str, ports: Vec<PortBinding>) -> NodeResult<()> {
    let record = get(node, id).await?;
    if record.install_state == InstallState::Installing {
        return Err(NodeError::bad_request(
            "Cannot rebind network while container is installing",
        ));
    }
    bind_ports(node, id, &ports).await?;
    sqlx::query("UPDATE containers SET ports = ?, container_id = NULL, updated_at = ? WHERE internal_id = ?")
        .bind(serde_json::to_string(&ports).unwrap_or_default())
        .bind(now())
        .bind(id)
        .execute(node.db())
        .await?;
    let docker = docker(&node.config().docker.host)?;
    let was_running = is_running(&docker, &main_name(id)).await;
    if let Some(live) = node.containers().live(id) {
        live.stop_tasks();
        live.say("Network rebinding: recreating the container");
    }
    remove_engine_container(&docker, &main_name(id)).await?;
    if was_running {
        start(node, id).await?;
    }
    Ok(())
}

pub async fn delete(node: &Node, id: &str) -> NodeResult<()> {
    let record = get(node, id).await?;
    let docker = docker(&node.config().docker.host)?;
    if let Some(live) = node.containers().remove(id) {
        live.stop_tasks();
        live.say("Container deleted");
    }
    remove_engine_container(&docker, &install_name(id)).await?;
    remove_engine_container(&docker, &main_name(id)).await?;
    // The group's network goes with its last container.
    model::engine::remove_network_if_unused(&docker, &network_of(&record)).await;
    let mut tx = node.db().begin().await?;
    sqlx::query("UPDATE ports SET container = NULL, in_use = 0 WHERE container = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM containers WHERE internal_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let _ = tokio::fs::remove_dir_all(node.config().storage.root.join("install").join(id)).await;
    Ok(())
}

/// After a daemon restart: follow running containers again (without restarting them) and run
/// installs that were cut short again.
pub async fn recover(node: &Node) -> NodeResult<()> {
    let records = list(node).await?;
    if records.is_empty() {
        return Ok(());
    }
    let docker = docker(&node.config().docker.host)?;
    for record in records {
        let live = live(node, &record);
        if record.install_state == InstallState::Installing {
            tracing::info!(container = %record.internal_id, "install was cut short; running it again");
            spawn_install(node, &record);
            continue;
        }
        if is_running(&docker, &main_name(&record.internal_id)).await {
            live.say("Daemon restarted: console re-attached");
            if let Err(e) = watch(node, &docker, &record, &live, true).await {
                tracing::warn!(container = %record.internal_id, error = %e.message, "could not re-attach");
            }
        } else {
            *live.state.lock().unwrap_or_else(|e| e.into_inner()) = LiveState::Exit;
        }
    }
    Ok(())
}
