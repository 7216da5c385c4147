//! Containers on the real engine (Podman's Docker API, the locally built busybox image): the
//! install script on the volume, the start pattern, console and stats over the WebSocket, power,
//! reinstall keeping or wiping data, rebinding ports, a daemon restart that re-attaches, delete.

mod common;

use common::{assert_error, console_has, docker_host, is_event, until, Daemon, TOKEN};
use futures::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const IMAGE: &str = "localhost/hangar-busybox:latest";

/// A game-server-like program: prints a banner, then "Done", then echoes what it reads.
const SERVER: &str = "echo booting; sleep 1; echo 'Done (1.2s)! For help, type \"help\"'; while read line; do echo \"got: $line\"; done";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn daemon() -> Option<Daemon> {
    let host = docker_host()?;
    Some(Daemon::start_with(|c| c.docker.host = host).await)
}

fn unique(name: &str) -> String {
    format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn pooled_port(d: &Daemon) -> u16 {
    let port = free_port();
    let (status, body) = d
        .post(
            "/network/ports",
            json!({"ip": "127.0.0.1", "port": port, "protocol": "tcp"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    port
}

async fn create(d: &Daemon, id: &str, volume: &str, port: u16, script: &str) {
    let (status, body) = d
        .post(
            "/containers",
            json!({
                "internal_id": id,
                "image": IMAGE,
                "volume_id": volume,
                "startup_command": SERVER,
                "start_pattern": "Done.*For help",
                "ports": [{"ip": "127.0.0.1", "port": port, "protocol": "tcp"}],
                "limits": {"memory": 64 * 1024 * 1024, "cpu": 0.5},
                "install_script": script,
                "environment": {"GREETING": "hello from the panel"},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"message": "Container creation started", "internal_id": id, "state": "installing"})
    );
}

async fn send_command(ws: &mut common::Ws, line: &str) {
    ws.send(Message::Text(
        json!({"event": "send_command", "data": line})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn install_start_pattern_console_stats_power_and_delete() {
    let Some(d) = daemon().await else { return };
    let (volume, dir) = d.volume(None).await;
    let port = pooled_port(&d).await;
    let id = unique("mc");

    // Ports outside the pool and unknown volumes are refused before anything is made.
    let bad = d
        .post("/containers", json!({"internal_id": unique("x"), "image": IMAGE, "volume_id": volume, "startup_command": "true", "ports": [{"ip": "127.0.0.1", "port": 1, "protocol": "tcp"}]}))
        .await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "Invalid port binding: port not in network pool",
    );
    let bad = d.post("/containers", json!({"internal_id": unique("x"), "image": IMAGE, "volume_id": "nope", "startup_command": "true"})).await;
    assert_error(&bad, StatusCode::NOT_FOUND, "Volume not found");
    let bad = d.post("/containers", json!({"internal_id": "../etc", "image": IMAGE, "volume_id": volume, "startup_command": "true"})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "Invalid internal_id");
    let bad = d.post("/containers", json!({"internal_id": unique("x"), "image": IMAGE, "volume_id": volume, "startup_command": "true", "start_pattern": "(unclosed"})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "Invalid start_pattern");

    let script = "echo \"installing: $GREETING\"\nsleep 2\necho 'eula=true' > eula.txt\nmkdir -p world\necho installed";
    create(&d, &id, &volume, port, script).await;
    let mut ws = d.socket(&id, TOKEN).await;
    // While it installs, it may not start or change ports.
    let answer = d.post(&format!("/containers/{id}/start"), json!({})).await;
    assert_error(
        &answer,
        StatusCode::CONFLICT,
        "Cannot start container while it is installing",
    );
    let answer = d
        .post(
            &format!("/containers/{id}/rebind-network"),
            json!({"ports": []}),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "Cannot rebind network while container is installing",
    );

    let seen = until(&mut ws, 60, |v| is_event(v, "ready")).await;
    assert!(
        seen.iter()
            .any(|v| console_has(v, "installing: hello from the panel")),
        "install output reached the socket: {seen:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("eula.txt")).unwrap(),
        "eula=true\n",
        "the script ran on the volume"
    );
    let (_, shown) = d.get(&format!("/containers/{id}")).await;
    assert_eq!(shown["install_state"], "ready");
    assert_eq!(
        shown["ports"],
        json!([{"ip": "127.0.0.1", "port": port, "protocol": "tcp"}])
    );
    assert_eq!(
        shown["limits"],
        json!({"memory": 64 * 1024 * 1024, "cpu": 0.5})
    );
    let (_, pooled) = d.get(&format!("/network/ports/127.0.0.1/{port}")).await;
    assert_eq!(pooled["in_use"], true, "a bound port is in use");
    let answer = d.delete(&format!("/network/ports/127.0.0.1/{port}")).await;
    assert_error(&answer, StatusCode::CONFLICT, "bound to container");

    let (status, started) = d.post(&format!("/containers/{id}/start"), json!({})).await;
    assert_eq!(
        (status, started),
        (
            StatusCode::OK,
            json!({"message": "Container start initiated", "internal_id": id})
        )
    );
    let seen = until(&mut ws, 30, |v| is_event(v, "running")).await;
    let starting = seen
        .iter()
        .position(|v| is_event(v, "starting"))
        .expect("starting came first");
    let booted = seen
        .iter()
        .position(|v| console_has(v, "Done (1.2s)"))
        .expect("the pattern's line was shown");
    assert!(
        starting < booted,
        "starting, then the banner, then running: {seen:#?}"
    );
    let (_, shown) = d.get(&format!("/containers/{id}")).await;
    assert_eq!(shown["state"], "running");
    assert!(shown["container_id"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));

    send_command(&mut ws, "say hi").await;
    until(&mut ws, 10, |v| console_has(v, "got: say hi")).await;
    let stats = until(&mut ws, 20, |v| v["event"] == "stats")
        .await
        .pop()
        .unwrap();
    assert!(stats["memory_usage"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["memory_limit"].as_u64(), Some(64 * 1024 * 1024));

    // A second viewer gets the history first.
    let mut late = d.socket(&id, TOKEN).await;
    let hello = until(&mut late, 5, |v| v["event"] == "logs")
        .await
        .pop()
        .unwrap();
    assert!(
        hello["data"].as_str().unwrap().contains("got: say hi"),
        "{hello}"
    );

    let (status, stopped) = d.post(&format!("/containers/{id}/stop"), json!({})).await;
    assert_eq!(
        (status, stopped["message"].as_str()),
        (StatusCode::OK, Some("Container stop initiated"))
    );
    until(&mut ws, 30, |v| is_event(v, "exit")).await;

    d.post(&format!("/containers/{id}/start"), json!({})).await;
    until(&mut ws, 30, |v| is_event(v, "running")).await;
    let (status, killed) = d.post(&format!("/containers/{id}/kill"), json!({})).await;
    assert_eq!(
        (status, killed["message"].as_str()),
        (StatusCode::OK, Some("Container kill initiated"))
    );
    until(&mut ws, 30, |v| is_event(v, "exit")).await;

    let (status, list) = d.get("/containers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["containers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["internal_id"] == id.as_str() && c["install_state"] == "ready"));

    let (status, gone) = d.delete(&format!("/containers/{id}")).await;
    assert_eq!(
        (status, gone),
        (
            StatusCode::OK,
            json!({"message": "Container deleted successfully"})
        )
    );
    assert_error(
        &d.get(&format!("/containers/{id}")).await,
        StatusCode::NOT_FOUND,
        "Container not found",
    );
    let (_, pooled) = d.get(&format!("/network/ports/127.0.0.1/{port}")).await;
    assert_eq!(
        pooled["in_use"], false,
        "deleting the container frees its port"
    );
    // The engine's containers went with it: the same id can be created again.
    create(&d, &id, &volume, port, "").await;
    d.delete(&format!("/containers/{id}")).await;
}

#[tokio::test]
async fn a_failed_install_is_reported_and_reinstall_keeps_or_wipes_data() {
    let Some(d) = daemon().await else { return };
    let (volume, dir) = d.volume(None).await;
    let port = pooled_port(&d).await;
    let id = unique("fail");
    create(&d, &id, &volume, port, "echo broken; exit 3").await;
    let mut ws = d.socket(&id, TOKEN).await;
    let seen = until(&mut ws, 60, |v| is_event(v, "failed")).await;
    assert!(
        seen.iter()
            .any(|v| v["event"] == "daemon_message"
                && v["data"] == "Install script exited with code 3"),
        "{seen:#?}"
    );
    let answer = d.post(&format!("/containers/{id}/start"), json!({})).await;
    assert_error(&answer, StatusCode::CONFLICT, "install script failed");

    // Reinstall with a working script; a file the container made survives.
    std::fs::write(dir.join("world.dat"), "the player's world").unwrap();
    let (status, body) = d
        .post(
            &format!("/containers/{id}/reinstall"),
            json!({"install_script": "echo fixed > fixed.txt"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"message": "Container reinstall started", "internal_id": id})
        )
    );
    until(&mut ws, 60, |v| is_event(v, "ready")).await;
    assert_eq!(
        std::fs::read_to_string(dir.join("world.dat")).unwrap(),
        "the player's world"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("fixed.txt")).unwrap(),
        "fixed\n"
    );

    // With "wipe", the volume starts empty.
    let (status, _) = d
        .post(
            &format!("/containers/{id}/reinstall"),
            json!({"wipe": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    until(&mut ws, 60, |v| is_event(v, "ready")).await;
    assert!(!dir.join("world.dat").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("fixed.txt")).unwrap(),
        "fixed\n",
        "the install ran again"
    );
    d.delete(&format!("/containers/{id}")).await;
}

#[tokio::test]
async fn rebinding_moves_a_running_container_to_its_new_port() {
    let Some(d) = daemon().await else { return };
    let (volume, _) = d.volume(None).await;
    let (old, new) = (pooled_port(&d).await, pooled_port(&d).await);
    let id = unique("rebind");
    create(&d, &id, &volume, old, "").await;
    let mut ws = d.socket(&id, TOKEN).await;
    until(&mut ws, 60, |v| is_event(v, "ready")).await;
    d.post(&format!("/containers/{id}/start"), json!({})).await;
    until(&mut ws, 30, |v| is_event(v, "running")).await;

    let answer = d
        .post(
            &format!("/containers/{id}/rebind-network"),
            json!({"ports": [{"ip": "127.0.0.1", "port": 2, "protocol": "tcp"}]}),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "Invalid port binding: port not in network pool",
    );
    let (status, body) = d
        .post(
            &format!("/containers/{id}/rebind-network"),
            json!({"ports": [{"ip": "127.0.0.1", "port": new, "protocol": "tcp"}]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"message": "Network rebinding started", "internal_id": id})
        )
    );
    // It was running, so it runs again.
    until(&mut ws, 30, |v| is_event(v, "running")).await;
    let (_, shown) = d.get(&format!("/containers/{id}")).await;
    assert_eq!(
        shown["ports"],
        json!([{"ip": "127.0.0.1", "port": new, "protocol": "tcp"}])
    );
    assert_eq!(shown["state"], "running");
    assert_eq!(
        d.get(&format!("/network/ports/127.0.0.1/{old}")).await.1["in_use"],
        false
    );
    assert_eq!(
        d.get(&format!("/network/ports/127.0.0.1/{new}")).await.1["in_use"],
        true
    );
    d.delete(&format!("/containers/{id}")).await;
}

#[tokio::test]
async fn a_daemon_restart_reattaches_without_restarting() {
    let Some(d) = daemon().await else { return };
    let (volume, _) = d.volume(None).await;
    let port = pooled_port(&d).await;
    let id = unique("restart");
    create(&d, &id, &volume, port, "").await;
    let mut ws = d.socket(&id, TOKEN).await;
    until(&mut ws, 60, |v| is_event(v, "ready")).await;
    d.post(&format!("/containers/{id}/start"), json!({})).await;
    until(&mut ws, 30, |v| is_event(v, "running")).await;
    send_command(&mut ws, "before").await;
    until(&mut ws, 10, |v| console_has(v, "got: before")).await;
    let (_, before) = d.get(&format!("/containers/{id}")).await;
    drop(ws);

    let (root, config) = d.stop();
    let d = Daemon::start_at(root, config).await;
    let (_, after) = d.get(&format!("/containers/{id}")).await;
    assert_eq!(
        after["container_id"], before["container_id"],
        "the same engine container"
    );
    assert_eq!(after["state"], "running");
    let mut ws = d.socket(&id, TOKEN).await;
    // The program kept its state: it still answers the same loop, it did not boot again.
    send_command(&mut ws, "after").await;
    let seen = until(&mut ws, 10, |v| console_has(v, "got: after")).await;
    assert!(
        !seen
            .iter()
            .any(|v| v["event"] == "console" && console_has(v, "booting")),
        "{seen:#?}"
    );
    d.delete(&format!("/containers/{id}")).await;
}

#[tokio::test]
async fn a_console_token_opens_only_its_containers_socket() {
    let Some(d) = daemon().await else { return };
    let (volume, _) = d.volume(None).await;
    let port = pooled_port(&d).await;
    let id = unique("scoped");
    create(&d, &id, &volume, port, "").await;
    let (_, issued) = d
        .post(
            "/auth/tokens",
            json!({"ttl": "1m", "remove_on_use": true, "container": id}),
        )
        .await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let mut ws = d.socket(&id, &token).await;
    let first: Value = until(&mut ws, 5, |v| v["event"] == "logs")
        .await
        .pop()
        .unwrap();
    assert_eq!(first["event"], "logs");
    // Single use: a second socket with it is refused.
    let url = format!(
        "{}/containers/{id}/ws?token={token}",
        d.base.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!(
            "a used console token opened a socket: {:?}",
            other.map(|_| ())
        ),
    }
    let (_, other) = d
        .post(
            "/auth/tokens",
            json!({"ttl": "1m", "container": "someone-else"}),
        )
        .await;
    let url = format!(
        "{}/containers/{id}/ws?token={}",
        d.base.replace("http://", "ws://"),
        other["token"].as_str().unwrap()
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!(
            "another container's token opened this socket: {:?}",
            other.map(|_| ())
        ),
    }
    let (status, _) = d
        .call(
            Method::GET,
            &format!("/containers/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "used up");
    d.delete(&format!("/containers/{id}")).await;
}

/// Makes and starts a container of isolation group `network` running `command` (no install, no
/// ports); returns its id and a socket on its console, already running.
async fn started(d: &Daemon, network: &str, command: &str) -> (String, common::Ws) {
    let (volume, _) = d.volume(None).await;
    let id = unique("apart");
    let (status, body) = d
        .post(
            "/containers",
            json!({"internal_id": id, "image": IMAGE, "volume_id": volume, "startup_command": command, "network": network}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ws = d.socket(&id, TOKEN).await;
    until(&mut ws, 60, |v| is_event(v, "ready")).await;
    d.post(&format!("/containers/{id}/start"), json!({})).await;
    until(&mut ws, 30, |v| is_event(v, "running")).await;
    (id, ws)
}

/// Containers apart on a node daemon: containers Hangar gives the same `network` (one account's)
/// reach each other, another group's do not, and each runs with the process limit and no new
/// privileges. Before, every container sat on the engine's one bridge.
#[tokio::test]
async fn containers_of_different_groups_cannot_reach_each_other() {
    let Some(d) = daemon().await else { return };
    let engine = hangar_node::containers::docker(&docker_host().unwrap()).unwrap();
    let (web, _web_ws) = started(
        &d,
        "acct-one",
        "mkdir -p /tmp/w && echo hi > /tmp/w/index.html && httpd -f -p 8080 -h /tmp/w",
    )
    .await;
    let inspected = engine
        .inspect_container(&format!("hangar-node-{web}"), None)
        .await
        .unwrap();
    assert_eq!(
        model::engine::networks_of(&inspected),
        vec!["hangar-node-net-acct-one".to_owned()]
    );
    let host = inspected.host_config.clone().unwrap();
    assert_eq!(
        host.pids_limit,
        Some(4096),
        "the daemon's default process limit"
    );
    assert!(
        host.security_opt
            .unwrap_or_default()
            .iter()
            .any(|o| o.starts_with("no-new-privileges")),
        "no new privileges"
    );
    let ip = inspected
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| {
            n.into_values()
                .find_map(|e| e.ip_address.filter(|ip| !ip.is_empty()))
        })
        .expect("the web container's address");
    let probe = format!(
        "sleep 1; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080 2>&1 | head -n 1; echo probe-done"
    );
    let (same, mut same_ws) = started(&d, "acct-one", &probe).await;
    let seen = until(&mut same_ws, 20, |v| console_has(v, "probe-done")).await;
    assert!(
        seen.iter().any(|v| console_has(v, "HTTP/1.")),
        "the same group reaches it: {seen:#?}"
    );
    let (other, mut other_ws) = started(&d, "acct-two", &probe).await;
    let seen = until(&mut other_ws, 20, |v| console_has(v, "probe-done")).await;
    assert!(
        !seen.iter().any(|v| console_has(v, "HTTP/")),
        "another group must not reach it: {seen:#?}"
    );
    for id in [&web, &same, &other] {
        d.delete(&format!("/containers/{id}")).await;
    }
    assert!(
        engine
            .inspect_network("hangar-node-net-acct-two", None)
            .await
            .is_err(),
        "a group's network goes with its last container"
    );
}
