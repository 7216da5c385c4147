//! The panel and a node daemon together: an operator registers a `hangar-node` as a container
//! node and an app template; a customer's machine lands on the daemon with its install script
//! run, its pool port and its volume; the panel's files and console reach into it; power and
//! delete go through; a daemon that goes away makes its node unreachable until it is back.

use crate::common;

use std::time::Duration;

use common::console::{console, read_until, type_in};
use common::{docker_host, expect_json, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const NODE_TOKEN: &str = "lightd_0123456789abcdef0123456789abcdef";
const SERVER: &str = "echo booting; echo 'Done (0.4s)! For help, type \"help\"'; while read line; do echo \"got: $line\"; done";

/// A node daemon on a random port, driving the test's Podman; its base URL and storage dir.
async fn node_daemon(docker: &str) -> (String, std::path::PathBuf, tokio::task::JoinHandle<()>) {
    let root = std::env::temp_dir().join(format!(
        "hangar-daemon-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (base, server) = serve_daemon(docker, &root, listener).await;
    (base, root, server)
}

/// The daemon of `root` (a new one, or one that ran there before: it recovers its state) on
/// `listener`.
async fn serve_daemon(
    docker: &str,
    root: &std::path::Path,
    listener: tokio::net::TcpListener,
) -> (String, tokio::task::JoinHandle<()>) {
    let mut config = hangar_node::config::Config::default();
    config.authorization.token = NODE_TOKEN.into();
    config.storage.root = root.join("storage");
    config.docker.host = docker.to_owned();
    std::fs::create_dir_all(root).unwrap();
    // On disk too, as a real daemon's is: a token rotation rewrites it.
    std::fs::write(
        root.join("config.toml"),
        toml::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    let node = hangar_node::Node::open(config, root.join("config.toml"))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = hangar_node::api::router(node);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, server)
}

/// The first `stats` sample of `GET /api/vps/{id}/stats` (Server-Sent Events).
async fn first_stats(app: &TestApp, token: &str, id: &str) -> Value {
    let mut res = reqwest::Client::new()
        .get(app.url(&format!("/api/vps/{id}/stats")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("a stats sample within 20 s")
            .unwrap()
            .expect("the stream stays open while the machine runs");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(event) = text.split("\n\n").find(|e| e.contains("event: stats")) {
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            return serde_json::from_str(data).unwrap();
        }
    }
}

async fn daemon_get(base: &str, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(NODE_TOKEN)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// A daemon whose config names its storage root relatively (as `scripts/run` once wrote it) and
/// an app whose install fails: the failure says why everywhere a person looks, and an app that
/// installs fine does so from that relative root (the engine refuses relative bind sources, so
/// before the root was resolved every install on the embedded default failed, saying nothing).
#[tokio::test]
async fn a_failed_install_says_why_and_a_relative_storage_root_works() {
    let Some(docker) = docker_host() else { return };
    let root = std::env::temp_dir().join(format!(
        "hangar-daemon-rel-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&root).unwrap();
    let mut config = hangar_node::config::Config::default();
    config.authorization.token = NODE_TOKEN.into();
    config.storage.root = std::path::PathBuf::from("storage");
    config.docker.host = docker.clone();
    let node = hangar_node::Node::open(config, root.join("config.toml"))
        .await
        .unwrap();
    assert_eq!(node.config().storage.root, root.join("storage"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = hangar_node::api::router(node);
    let daemon = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });

    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    expect_json(
        app.post("/api/admin/nodes", Some(&admin), json!({"name": "apps", "kind": "container", "region": "local", "uri": format!("hangar-node+{base}"), "secret": NODE_TOKEN, "vcpu": 8, "memory_mb": 16384, "disk_gb": 100}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    for (slug, script) in [
        (
            "broken-app",
            "echo preparing the world\necho 'cannot fetch the server jar' >&2\nexit 3",
        ),
        ("fine-app", "echo installed > installed.txt"),
    ] {
        let saved = app
            .put("/api/admin/images", Some(&admin), json!({"slug": slug, "name": slug, "kind": "container", "source": "localhost/hangar-busybox:latest",
                   "app": {"startup_command": SERVER, "install_script": script, "start_pattern": "Done.*For help"}}))
            .await;
        assert_eq!(saved.status(), StatusCode::OK);
    }
    let (_, token) = app.funded_user("gamer", 10.0).await;
    let create = |image: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            let vps = expect_json(
                app.post(
                    "/api/vps",
                    Some(&token),
                    json!({"name": image, "plan_id": "c-micro", "image": image}),
                )
                .await,
                StatusCode::CREATED,
            )
            .await;
            vps["id"].as_str().unwrap().to_owned()
        }
    };

    let broken = create("broken-app").await;
    app.run_jobs().await;
    let shown = machine(&app, &token, &broken).await;
    assert_eq!(shown["state"], "error", "{shown}");
    let reason = shown["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("exited with code 3") && reason.contains("cannot fetch the server jar"),
        "the machine says why: {shown}"
    );
    let server = expect_json(
        app.get(&format!("/v1/servers/{broken}"), Some(&token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        server["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("exited with code 3"),
        "{server:?}"
    );
    // The daemon keeps the failed container (and says why) for the operator to look at.
    let (_, c) = daemon_get(&base, &format!("/containers/hangar-{broken}")).await;
    assert_eq!(c["install_state"], "failed", "{c}");
    assert!(
        c["install_error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot fetch"),
        "{c}"
    );

    let fine = create("fine-app").await;
    app.run_jobs().await;
    let shown = machine(&app, &token, &fine).await;
    assert_eq!(shown["state"], "running", "{shown}");
    let (_, c) = daemon_get(&base, &format!("/containers/hangar-{fine}")).await;
    assert_eq!(c["install_state"], "ready", "{c}");
    assert_eq!(c["install_error"], Value::Null);
    for id in [&broken, &fine] {
        let _ = app.delete(&format!("/api/vps/{id}"), Some(&token)).await;
    }
    app.run_jobs().await;
    daemon.abort();
    let _ = std::fs::remove_dir_all(&root);
}

async fn machine(app: &TestApp, token: &str, id: &str) -> Value {
    expect_json(
        app.get(&format!("/api/vps/{id}"), Some(token)).await,
        StatusCode::OK,
    )
    .await
    .value
}

#[tokio::test]
async fn a_machine_on_a_node_daemon_installs_runs_and_answers_through_the_panel() {
    let Some(docker) = docker_host() else { return };
    let (base, root, daemon) = node_daemon(&docker).await;
    let pool_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let added = reqwest::Client::new()
        .post(format!("{base}/network/ports"))
        .bearer_auth(NODE_TOKEN)
        .json(&json!({"ip": "127.0.0.1", "port": pool_port, "protocol": "tcp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);

    let app = TestApp::builder()
        .config("stop_timeout_secs", "5")
        .spawn()
        .await;
    let (_, admin) = app.admin("ops").await;
    // A daemon node needs its token; the token is never shown back.
    let refused = app
        .post("/api/admin/nodes", Some(&admin), json!({"name": "games-1", "kind": "container", "region": "local", "uri": format!("hangar-node+{base}"), "vcpu": 8, "memory_mb": 16384, "disk_gb": 100}))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let node = expect_json(
        app.post("/api/admin/nodes", Some(&admin), json!({"name": "games-1", "kind": "container", "region": "local", "uri": format!("hangar-node+{base}"), "secret": NODE_TOKEN, "vcpu": 8, "memory_mb": 16384, "disk_gb": 100}))
            .await,
        StatusCode::CREATED,
    )
    .await
    .value;
    assert!(
        !node.to_string().contains(NODE_TOKEN),
        "the node's token is not shown: {node}"
    );
    let listed = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await
    .value;
    assert!(!listed.to_string().contains(NODE_TOKEN));

    // An app template: a game-server-like program with an install script and a start pattern.
    let bad = app
        .put("/api/admin/images", Some(&admin), json!({"slug": "bad-game", "name": "Bad", "kind": "container", "source": "localhost/hangar-busybox:latest", "app": {"start_pattern": "(unclosed"}}))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let template = app
        .put(
            "/api/admin/images",
            Some(&admin),
            json!({"slug": "mine-game", "name": "Mine game", "kind": "container", "source": "localhost/hangar-busybox:latest",
                   "app": {"startup_command": SERVER, "install_script": "echo installing the game; echo eula=true > eula.txt", "start_pattern": "Done.*For help", "ports": 1, "environment": {"MOTD": "welcome"}}}),
        )
        .await;
    assert_eq!(
        template.status(),
        StatusCode::OK,
        "{:?}",
        template.text().await
    );

    let (_, token) = app.funded_user("gamer", 10.0).await;
    let vps = expect_json(
        app.post(
            "/api/vps",
            Some(&token),
            json!({"name": "my-game", "plan_id": "c-micro", "image": "mine-game"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
    .value;
    let id = vps["id"].as_str().unwrap().to_owned();
    app.run_jobs().await;
    let shown = machine(&app, &token, &id).await;
    assert_eq!(shown["state"], "running", "{shown}");
    assert_eq!(
        shown["ports"],
        json!([format!("127.0.0.1:{pool_port}/tcp")]),
        "the API says where players connect"
    );
    assert_eq!(shown["ip"], "127.0.0.1");

    // On the daemon: installed on its own volume, with the pool's port, running.
    let name = format!("hangar-{id}");
    let (status, c) = daemon_get(&base, &format!("/containers/{name}")).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["install_state"], "ready");
    assert_eq!(
        c["ports"],
        json!([{"ip": "127.0.0.1", "port": pool_port, "protocol": "tcp"}])
    );
    assert_eq!(
        c["limits"]["memory"],
        256 * 1024 * 1024,
        "the plan's memory"
    );
    let volume = c["volume_id"].as_str().unwrap().to_owned();
    let (_, v) = daemon_get(&base, &format!("/volumes/{volume}")).await;
    assert_eq!(
        v["size_limit"].as_u64(),
        Some(shown["disk_gb"].as_u64().unwrap() * 1024 * 1024 * 1024)
    );
    let eula =
        std::fs::read_to_string(std::path::Path::new(v["path"].as_str().unwrap()).join("eula.txt"))
            .unwrap();
    assert_eq!(
        eula, "eula=true\n",
        "the install script ran on the machine's volume"
    );

    // Files through the panel: the volume, seen at /home/container.
    let client = reqwest::Client::new();
    let put = client
        .put(app.url(&format!(
            "/api/vps/{id}/files?path=/home/container/server.properties"
        )))
        .bearer_auth(&token)
        .body("motd=hello\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let got = client
        .get(app.url(&format!(
            "/api/vps/{id}/files?path=/home/container/eula.txt"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.unwrap(), "eula=true\n");
    let outside = client
        .get(app.url(&format!("/api/vps/{id}/files?path=/etc/passwd")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(outside.status().is_client_error(), "{}", outside.status());

    // The console: the program's own, through the panel's relay and the daemon's socket.
    let mut ws = console(&app, &token, &id).await;
    read_until(&mut ws, "Done (0.4s)", Duration::from_secs(20)).await;
    type_in(&mut ws, "say hi\n").await;
    read_until(&mut ws, "got: say hi", Duration::from_secs(20)).await;
    drop(ws);

    // Live usage for the charts, from the daemon's stats events, in the node daemon API's fields.
    let sample = first_stats(&app, &token, &id).await;
    assert_eq!(
        sample["memory_limit"].as_u64(),
        Some(256 * 1024 * 1024),
        "measured against the plan's memory: {sample}"
    );
    assert!(sample["memory_usage"].as_u64().unwrap() > 0, "{sample}");
    assert!(sample["cpu_usage"].as_f64().unwrap() >= 0.0, "{sample}");
    let (_, stranger) = app.funded_user("stranger", 1.0).await;
    let foreign = app
        .get(&format!("/api/vps/{id}/stats"), Some(&stranger))
        .await;
    assert_eq!(
        foreign.status(),
        StatusCode::NOT_FOUND,
        "another user's machine"
    );

    // Power through the panel, with a stats stream open.
    let mut open = reqwest::Client::new()
        .get(app.url(&format!("/api/vps/{id}/stats")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    expect_json(
        app.post(&format!("/api/vps/{id}/stop"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(machine(&app, &token, &id).await["state"], "stopped");
    // The open stream ends with `end`, which tells a browser not to reconnect to it.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Some(chunk) = tokio::time::timeout_at(deadline, open.chunk())
        .await
        .expect("the stream ends once the machine stops")
        .unwrap()
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.trim_end()
            .rsplit("\n\n")
            .next()
            .unwrap()
            .contains("event: end"),
        "the last event is `end`: {text}"
    );
    let (_, c) = daemon_get(&base, &format!("/containers/{name}")).await;
    assert_eq!(c["state"], "exit");
    let idle = app.get(&format!("/api/vps/{id}/stats"), Some(&token)).await;
    assert_eq!(
        idle.status(),
        StatusCode::CONFLICT,
        "no charts while stopped"
    );

    // The file manager works on the volume while the machine is stopped.
    volume_story(&app, &token, &id).await;
    let foreign = app
        .get(&format!("/api/vps/{id}/volume?path="), Some(&stranger))
        .await;
    assert_eq!(
        foreign.status(),
        StatusCode::NOT_FOUND,
        "another user's machine"
    );

    // A daemon that goes away: the reconciler marks its node and machines unreachable, new
    // machines go elsewhere (here: nowhere), and nothing is lost.
    expect_json(
        app.post(&format!("/api/vps/{id}/start"), Some(&token), json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.run_jobs().await;
    assert_eq!(machine(&app, &token, &id).await["state"], "running");
    let address = base.trim_start_matches("http://").to_owned();
    daemon.abort();
    let _ = daemon.await;
    let report = domain::compute::reconcile::run(&app.state).await.unwrap();
    assert!(
        report.unreachable_nodes.iter().any(|n| n == "games-1"),
        "{report:?}"
    );
    let away = machine(&app, &token, &id).await;
    assert_eq!(away["state"], "running", "the last state known: {away}");
    assert!(away["unreachable_since"].is_string(), "{away}");
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await
    .value;
    assert!(nodes[0]["unreachable_since"].is_i64(), "{nodes}");
    let elsewhere = app
        .post(
            "/api/vps",
            Some(&token),
            json!({"name": "second", "plan_id": "c-micro", "image": "mine-game"}),
        )
        .await;
    let status = elsewhere.status();
    let body = elsewhere.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no capacity but the unreachable node: {body}"
    );
    // A second pass keeps the first time.
    domain::compute::reconcile::run(&app.state).await.unwrap();
    assert_eq!(
        machine(&app, &token, &id).await["unreachable_since"],
        away["unreachable_since"]
    );

    // Back on the same address with its state: the mark goes, the machine still runs there
    // (re-attached by the daemon, not restarted) and answers on its console.
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let (_, daemon) = serve_daemon(&docker, &root, listener).await;
    let report = domain::compute::reconcile::run(&app.state).await.unwrap();
    assert!(report.unreachable_nodes.is_empty(), "{report:?}");
    let back = machine(&app, &token, &id).await;
    assert_eq!(back["state"], "running", "{back}");
    assert!(back.get("unreachable_since").is_none(), "{back}");
    let mut ws = console(&app, &token, &id).await;
    type_in(&mut ws, "still there\n").await;
    read_until(&mut ws, "got: still there", Duration::from_secs(20)).await;
    drop(ws);
    app.delete(&format!("/api/vps/{id}"), Some(&token)).await;
    app.run_jobs().await;
    daemon.abort();

    let _ = std::fs::remove_dir_all(&root);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hangar serve` with `node_listen`: the daemon runs in the same process, is registered as
/// `local-node` with the demo app template, and a customer's app machine runs there.
#[tokio::test]
async fn the_embedded_daemon_registers_itself_and_runs_app_templates() {
    let Some(docker) = docker_host() else { return };
    let dir = common::TempDir(
        std::env::temp_dir().join(format!("hangar-embedded-{}", uuid::Uuid::new_v4().simple())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let (web, node) = (free_port(), free_port());
    let database = format!("sqlite://{}", dir.0.join("hangar.db").display());
    let env = |cmd: &mut std::process::Command| {
        cmd.env("DATABASE_URL", &database)
            .env("HANGAR_DATA_DIR", &dir.0)
            .env("HANGAR_LISTEN", format!("127.0.0.1:{web}"))
            .env("HANGAR_DOCKER_HOST", &docker)
            .env("HANGAR_NODE_LISTEN", format!("127.0.0.1:{node}"))
            .env("HANGAR_ADMIN_PASSWORD", "embedded-admin-password");
    };
    let mut create = std::process::Command::new(env!("CARGO_BIN_EXE_hangar"));
    env(&mut create);
    let out = create
        .args([
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--username",
            "ops",
            "--admin",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_hangar"));
    serve
        .arg("serve")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null());
    env(serve.as_std_mut());
    let _server = serve.spawn().unwrap();
    let base = format!("http://127.0.0.1:{web}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "hangar serve answered");
    let ping: Value = http
        .get(format!("http://127.0.0.1:{node}/api/v1/public/ping"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ping["status"], "ok",
        "the embedded daemon answers on node_listen"
    );

    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "ops@example.com", "password": "embedded-admin-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = login["token"].as_str().unwrap().to_owned();
    let nodes: Value = http
        .get(format!("{base}/api/admin/nodes"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let local = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "local-node")
        .cloned()
        .unwrap_or_else(|| panic!("{nodes}"));
    assert_eq!(local["uri"], format!("hangar-node+http://127.0.0.1:{node}"));
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "local-containers"),
        "the Docker-API node stays for plain images"
    );

    // The operator's account is funded and makes the demo app; it lands on the daemon.
    let me: Value = http
        .get(format!("{base}/api/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credit = http
        .post(format!(
            "{base}/api/admin/users/{}/credit",
            me["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .json(&json!({"amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(credit.status(), StatusCode::OK);
    let vps: Value = http
        .post(format!("{base}/api/vps"))
        .bearer_auth(&admin)
        .json(&json!({"name": "demo-game", "plan_id": "c-micro", "image": "demo-game-server"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = vps["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{vps}"))
        .to_owned();
    let mut state = Value::Null;
    for _ in 0..300 {
        let v: Value = http
            .get(format!("{base}/api/vps/{id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = v["state"].clone();
        if state == "running" || state == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "running");
    let c: Value = http
        .get(format!("http://127.0.0.1:{node}/containers/hangar-{id}"))
        .bearer_auth(local_token(&dir.0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["install_state"], "ready", "{c}");
    assert_eq!(c["state"], "running", "{c}");
    let deleted = http
        .delete(format!("{base}/api/vps/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    // A minute at most: the delete job stops the container first, and an app that ignores
    // SIGTERM (a shell as PID 1 does) holds the engine's stop for its whole grace period.
    for _ in 0..300 {
        let gone = http
            .get(format!("http://127.0.0.1:{node}/containers/hangar-{id}"))
            .bearer_auth(local_token(&dir.0))
            .send()
            .await
            .unwrap()
            .status();
        if gone == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the machine's container was not removed from the embedded daemon");
}

/// The embedded daemon's token, from its config file under the data directory.
fn local_token(data_dir: &std::path::Path) -> String {
    let config = hangar_node::config::Config::load(&data_dir.join("node/config.toml")).unwrap();
    config.authorization.token
}

/// Browse, make a folder, write and read, copy, pack and unpack, delete; hostile paths refused.
async fn volume_story(app: &TestApp, token: &str, id: &str) {
    let listing = expect_json(
        app.get(&format!("/api/vps/{id}/volume?path="), Some(token))
            .await,
        StatusCode::OK,
    )
    .await
    .value;
    let names: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"eula.txt") && names.contains(&"server.properties"),
        "{listing}"
    );
    assert!(
        listing["size_limit"].as_u64().is_some() && listing["used_bytes"].as_u64().unwrap() > 0
    );

    expect_json(
        app.post(
            &format!("/api/vps/{id}/volume/folders"),
            Some(token),
            json!({"path": "plugins/essentials"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let client = reqwest::Client::new();
    let config = app.url(&format!(
        "/api/vps/{id}/volume/content?path=plugins/essentials/config.yml"
    ));
    let read_config = || async {
        let got = client.get(&config).bearer_auth(token).send().await.unwrap();
        got.text().await.unwrap()
    };
    let put = client
        .put(&config)
        .bearer_auth(token)
        .body("enabled: true\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(read_config().await, "enabled: true\n");
    // Files stream into the volume: an upload broken off half-way leaves the old file.
    common::inside::upload_cut_short(config.clone(), token, 1 << 20, 256 * 1024).await;
    assert_eq!(read_config().await, "enabled: true\n");
    expect_json(
        app.post(
            &format!("/api/vps/{id}/volume/copy"),
            Some(token),
            json!({"source": "plugins", "destination": "backup/plugins"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let packed = expect_json(
        app.post(
            &format!("/api/vps/{id}/volume/compress"),
            Some(token),
            json!({"path": "plugins", "output_name": "plugins-backup"}),
        )
        .await,
        StatusCode::OK,
    )
    .await
    .value;
    assert_eq!(packed["archive_path"], "plugins-backup.tar.gz");
    expect_json(
        app.post(
            &format!("/api/vps/{id}/volume/decompress"),
            Some(token),
            json!({"archive_path": "plugins-backup.tar.gz", "destination": "restored"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let restored = expect_json(
        app.get(
            &format!("/api/vps/{id}/volume?path=restored/plugins/essentials"),
            Some(token),
        )
        .await,
        StatusCode::OK,
    )
    .await
    .value;
    assert_eq!(restored["files"][0]["name"], "config.yml");
    expect_json(
        app.delete(&format!("/api/vps/{id}/volume?path=backup"), Some(token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/vps/{id}/volume?path=backup"), Some(token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    for bad in ["../../etc", "plugins/../../x"] {
        let res = app
            .get(&format!("/api/vps/{id}/volume?path={bad}"), Some(token))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// A node daemon reports its version and its host's load (charted per node), and takes a new
/// token from the panel: the old one stops working at once, the new one is in its config file
/// (0600) and the panel keeps driving the node with it.
#[tokio::test]
async fn a_node_daemon_reports_its_host_and_takes_a_new_token() {
    let Some(docker) = docker_host() else { return };
    let (base, root, daemon) = node_daemon(&docker).await;
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ops").await;
    let node = expect_json(
        app.post("/api/admin/nodes", Some(&admin), json!({"name": "host-1", "kind": "container", "region": "local", "uri": format!("hangar-node+{base}"), "secret": NODE_TOKEN, "vcpu": 4, "memory_mb": 4096, "disk_gb": 40}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = node["id"].as_str().unwrap().to_owned();
    domain::compute::reconcile::run(&app.state).await.unwrap();
    let nodes = expect_json(
        app.get("/api/admin/nodes", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    let listed = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(listed["unreachable_since"].is_null(), "{listed}");
    let history = expect_json(
        app.get(
            &format!("/api/admin/nodes/{id}/history?range=1h"),
            Some(&admin),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let last = history.as_array().unwrap().last().cloned().unwrap();
    for figure in ["cpu_percent", "memory_percent", "disk_percent"] {
        let value = last[figure].as_f64().unwrap_or(-1.0);
        assert!(
            (0.0..=100.0).contains(&value),
            "{figure} of the host: {last}"
        );
    }
    assert!(last["memory_percent"].as_f64().unwrap() > 0.0);

    // A token the daemon issued with the old one (as for a console): it goes with it.
    let issued = reqwest::Client::new()
        .post(format!("{base}/auth/tokens"))
        .bearer_auth(NODE_TOKEN)
        .json(&json!({"ttl": "30d"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_issued = |token: String| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/containers"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(with_issued(issued.clone()).await, StatusCode::OK);

    // Rotation: the daemon takes a new token, the old one is refused from then on.
    let rotated = app
        .post(
            &format!("/api/admin/nodes/{id}/rotate-secret"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let (status, _) = daemon_get(&base, "/containers").await;
    assert_eq!(status, 401, "the old token no longer opens the daemon");
    assert_eq!(
        with_issued(issued).await,
        StatusCode::UNAUTHORIZED,
        "nor does a token issued with it"
    );
    let file = root.join("config.toml");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        !written.contains(NODE_TOKEN),
        "the config file has the new token"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let report = domain::compute::reconcile::run(&app.state).await.unwrap();
    assert!(
        report.unreachable_nodes.is_empty(),
        "the panel drives the node with the new token: {report:?}"
    );
    daemon.abort();
    let _ = std::fs::remove_dir_all(&root);
}
