//! Several nodes, each a real `hangar-node` process in a network namespace of its own, reached
//! by the panel over a veth pair (its own private address; nothing but loopback and those
//! links), all driving the test's Podman through its socket:
//! - placement spreads machines over the nodes (least loaded first);
//! - a draining node keeps its running machines and gets nothing new;
//! - a node lost to the network (its address gone: packets go nowhere, as when a host dies) or
//!   frozen (its daemon stopped with SIGSTOP: connections accepted, never answered) is marked
//!   unreachable with its machines, which keep their last known state and keep being billed;
//!   nothing new goes there; a reconciler pass is not held up by it;
//! - when it returns, the marks go and its machines converge to what it reports (here: one was
//!   stopped on the host while it was away).
//!
//! Needs root (namespaces and links) and Podman. `HANGAR_TEST_NODES` (default 2) nodes,
//! `HANGAR_TEST_NODE_ROUNDS` (default 2) losses, alternating the two ways of losing a node; the
//! long run's figures are in docs/FAULTS.md.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{docker_host, expect_json, TestApp};
use domain::compute::meter::{self, Rules, MINUTE_MS};
use reqwest::StatusCode;
use serde_json::{json, Value};

const NODE_TOKEN: &str = "lightd_feedfacefeedfacefeedfacefeedface";
const RULES: Rules = Rules {
    grace_minutes: 60,
    runway_hours: 24,
    min_runtime_minutes: 60,
    retention_days: 14,
};
/// Longer than a pass over reachable nodes takes by far; a pass held up by a frozen node (the
/// daemon driver's request timeout is two minutes) would not end within it.
const PASS_LIMIT: Duration = Duration::from_secs(60);

/// Runs `ip` with `args`; panics with its output when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node daemon's binary, built beside this test by the same `cargo test`/`nextest` run of
/// the workspace (`--package hangar-node`).
fn daemon_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("hangar-node");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p hangar-node` (scripts/test does)",
        bin.display()
    );
    bin
}

/// One node: a network namespace joined to this one by a veth pair, and a `hangar-node`
/// running inside it. Removed (daemon killed, namespace and links deleted) when dropped.
struct Host {
    name: String,
    netns: String,
    /// This namespace's end of the pair.
    outside: String,
    address: String,
    root: PathBuf,
    daemon: std::process::Child,
}

impl Host {
    /// Namespace `i` of this test process, on 10.213.`subnet`.0/30 (host side .1, node .2).
    fn start(i: usize, subnet: u8, docker: &str) -> Host {
        let tag = format!("{}{i}", std::process::id() % 100_000);
        let netns = format!("hangar-t{tag}");
        let outside = format!("hgv{tag}");
        // Leftovers of a killed run of a process with the same id.
        let _ = Command::new("ip").args(["link", "del", &outside]).output();
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        ip(&["netns", "add", &netns]);
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("10.213.{subnet}.1/30"),
            "dev",
            &outside,
        ]);
        ip(&["link", "set", &outside, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &netns, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside(&["link", "set", "lo", "up"]);
        inside(&[
            "addr",
            "add",
            &format!("10.213.{subnet}.2/30"),
            "dev",
            "eth0",
        ]);
        inside(&["link", "set", "eth0", "up"]);

        let root = std::env::temp_dir().join(format!("hangar-nodes-test-{tag}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let config = root.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nhost = \"0.0.0.0\"\nport = 8070\n\n[authorization]\nenabled = true\ntoken = \"{NODE_TOKEN}\"\n\n\
                 [storage]\nroot = \"{}\"\n\n[docker]\nhost = \"{docker}\"\n",
                root.join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.join("daemon.log")).unwrap();
        let daemon = Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(daemon_binary())
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting hangar-node in its namespace");
        Host {
            name: format!("node-{i}"),
            netns,
            outside,
            address: format!("10.213.{subnet}.2"),
            root,
            daemon,
        }
    }

    fn base(&self) -> String {
        format!("http://{}:8070", self.address)
    }

    /// Runs `ip` inside the namespace.
    fn inside(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.netns, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// The host drops off the network: its address goes, so what the panel sends reaches a
    /// link that answers nothing (no refusal, no ARP reply) — a dead host, seen from outside.
    fn cut(&self) {
        self.inside(&["addr", "flush", "dev", "eth0"]);
    }

    fn restore(&self) {
        self.inside(&[
            "addr",
            "add",
            &format!("{}/30", self.address),
            "dev",
            "eth0",
        ]);
    }

    /// The daemon hangs: the kernel still accepts connections, nothing answers them.
    fn freeze(&self, stopped: bool) {
        let signal = if stopped { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &self.daemon.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The daemon's own view: its machines' names and whether each runs.
    async fn machines(&self) -> BTreeMap<String, bool> {
        let res = reqwest::Client::new()
            .get(format!("{}/containers", self.base()))
            .bearer_auth(NODE_TOKEN)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| {
                let name = c["internal_id"].as_str()?.strip_prefix("hangar-")?;
                Some((name.to_owned(), c["state"] == "running"))
            })
            .collect()
    }

    /// Waits until the daemon answers on its address.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let answered = reqwest::Client::new()
                .get(format!("{}/containers", self.base()))
                .bearer_auth(NODE_TOKEN)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not answer within 30 s; its log: {}",
                self.name,
                std::fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.daemon.id().to_string()])
            .status();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // The pair goes with either end; the namespace itself may outlive its name for a while
        // (the kernel frees it when the last socket made in it is gone).
        let _ = Command::new("ip")
            .args(["link", "del", &self.outside])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `n` distinct /30 subnets of 10.213.0.0/16 that no interface here uses yet.
fn free_subnets(n: usize) -> Vec<u8> {
    let used = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .unwrap();
    let used = String::from_utf8_lossy(&used.stdout).into_owned();
    let start = (std::process::id() % 200) as u8;
    (0..=255u8)
        .map(|k| start.wrapping_add(k))
        .filter(|k| !used.contains(&format!("10.213.{k}.")))
        .take(n)
        .collect()
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether this process may make network namespaces. Not being root is a failure, unless
/// `HANGAR_TEST_SKIP_NETNS=1` skips the test on purpose.
fn may_make_namespaces() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root && std::env::var("HANGAR_TEST_SKIP_NETNS").as_deref() == Ok("1") {
        return false;
    }
    assert!(
        root,
        "network namespaces need root: run scripts/test as root, or set HANGAR_TEST_SKIP_NETNS=1"
    );
    true
}

struct Cluster<'a> {
    app: &'a TestApp,
    admin: String,
    token: String,
    /// Node name → node id.
    ids: BTreeMap<String, String>,
    /// The longest reconciler pass so far (for the run's summary).
    longest_pass: std::cell::Cell<Duration>,
}

impl Cluster<'_> {
    async fn create(&self, name: &str) -> String {
        let vps = expect_json(
            self.app
                .post(
                    "/api/vps",
                    Some(&self.token),
                    json!({"name": name, "plan_id": "c-micro"}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
        vps["id"].as_str().unwrap().to_owned()
    }

    async fn machine(&self, id: &str) -> Value {
        expect_json(
            self.app
                .get(&format!("/api/vps/{id}"), Some(&self.token))
                .await,
            StatusCode::OK,
        )
        .await
        .value
    }

    /// Node name → the ids of the machines the database holds there (not deleted).
    async fn placement(&self) -> BTreeMap<String, BTreeSet<String>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT n.name, i.id FROM instances i JOIN nodes n ON n.id = i.node_id
             WHERE i.state <> 'deleted'",
        )
        .fetch_all(&self.app.state.db)
        .await
        .unwrap();
        let mut by_node: BTreeMap<String, BTreeSet<String>> = self
            .ids
            .keys()
            .map(|n| (n.clone(), BTreeSet::new()))
            .collect();
        for (node, id) in rows {
            by_node.entry(node).or_default().insert(id);
        }
        by_node
    }

    async fn set_status(&self, node: &str, status: &str) {
        expect_json(
            self.app
                .patch(
                    &format!("/api/admin/nodes/{}", self.ids[node]),
                    Some(&self.admin),
                    json!({ "status": status }),
                )
                .await,
            StatusCode::OK,
        )
        .await;
    }

    async fn unreachable_nodes(&self) -> BTreeSet<String> {
        let nodes = expect_json(
            self.app.get("/api/admin/nodes", Some(&self.admin)).await,
            StatusCode::OK,
        )
        .await
        .value;
        nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["unreachable_since"].is_i64())
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// One reconciler pass, which must end well within [`PASS_LIMIT`] whatever the nodes do.
    async fn reconcile(&self) -> domain::compute::reconcile::Report {
        let started = std::time::Instant::now();
        let report =
            tokio::time::timeout(PASS_LIMIT, domain::compute::reconcile::run(&self.app.state))
                .await
                .expect("a reconciler pass is not held up by a node that does not answer")
                .unwrap();
        self.longest_pass
            .set(self.longest_pass.get().max(started.elapsed()));
        report
    }

    /// What its minutes have cost so far (µUSD), and whether it is billed at its running price now.
    async fn metered(&self, id: &str) -> (i64, bool) {
        let (billed, until, rate, price): (i64, Option<i64>, i64, i64) = sqlx::query_as(
            "SELECT billed_micros, metered_until, metered_rate_micros, price_hourly_micros FROM instances WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.app.state.db)
        .await
        .unwrap();
        (billed, until.is_some() && rate == price)
    }

    /// Every node and the database agree: the machines each daemon holds are the ones the
    /// database places there, running exactly when the database says `running`.
    async fn assert_agree(&self, hosts: &[Host]) {
        let placement = self.placement().await;
        for host in hosts {
            let held = host.machines().await;
            let expected = &placement[&host.name];
            assert_eq!(
                held.keys().cloned().collect::<BTreeSet<_>>(),
                *expected,
                "{} holds what the database places there",
                host.name
            );
            for (id, running) in held {
                let state = self.machine(&id).await["state"].clone();
                assert_eq!(
                    running,
                    state == "running",
                    "{id} on {}: the node says running={running}, the database {state}",
                    host.name
                );
            }
        }
    }
}

#[tokio::test]
async fn machines_spread_over_nodes_in_their_own_namespaces_and_survive_losing_one() {
    let Some(docker) = docker_host() else { return };
    if !may_make_namespaces() {
        return;
    }
    let nodes = setting("HANGAR_TEST_NODES", 2).max(2);
    let rounds = setting("HANGAR_TEST_NODE_ROUNDS", 2);
    let subnets = free_subnets(nodes);
    let hosts: Vec<Host> = subnets
        .iter()
        .enumerate()
        .map(|(i, &k)| Host::start(i, k, &docker))
        .collect();
    for host in &hosts {
        host.wait_ready().await;
    }

    let app = TestApp::builder()
        .config("stop_timeout_secs", "5")
        .spawn()
        .await;
    let (_, admin) = app.admin("ops").await;
    let mut ids = BTreeMap::new();
    for host in &hosts {
        let node = expect_json(
            app.post("/api/admin/nodes", Some(&admin), json!({"name": host.name, "kind": "container", "region": "local",
                "uri": format!("hangar-node+{}", host.base()), "secret": NODE_TOKEN, "vcpu": 8, "memory_mb": 16384, "disk_gb": 100}))
                .await,
            StatusCode::CREATED,
        )
        .await;
        ids.insert(host.name.clone(), node["id"].as_str().unwrap().to_owned());
    }
    let (_, token) = app.funded_user("tenant", 100.0).await;
    let cluster = Cluster {
        app: &app,
        admin,
        token,
        ids,
        longest_pass: Default::default(),
    };

    // Placement spreads: two machines per node, on the nodes themselves as in the database.
    for i in 0..2 * nodes {
        cluster.create(&format!("spread-{i}")).await;
    }
    app.run_jobs().await;
    let placement = cluster.placement().await;
    for (node, machines) in &placement {
        assert_eq!(machines.len(), 2, "{node}: {placement:?}");
    }
    cluster.assert_agree(&hosts).await;

    // Draining the first node: its machines keep running, new ones go to the others.
    let drained = &hosts[0];
    cluster.set_status(&drained.name, "draining").await;
    let before = cluster.placement().await[&drained.name].clone();
    for i in 0..2 {
        cluster.create(&format!("while-draining-{i}")).await;
    }
    app.run_jobs().await;
    let after = cluster.placement().await;
    assert_eq!(
        after[&drained.name], before,
        "nothing new on a draining node"
    );
    for id in &before {
        assert_eq!(cluster.machine(id).await["state"], "running");
    }
    assert_eq!(
        drained.machines().await.values().filter(|r| **r).count(),
        2,
        "its running machines were not moved or stopped"
    );
    cluster.assert_agree(&hosts).await;
    cluster.set_status(&drained.name, "active").await;

    // Losing a node, and getting it back.
    let podman = bollard::Docker::connect_with_unix(
        docker.trim_start_matches("unix://"),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let mut clock = domain::infra::db::now_ms();
    for round in 0..rounds {
        let lost = &hosts[round % nodes];
        let frozen = round % 2 == 1;
        let held = cluster.placement().await[&lost.name].clone();
        assert!(!held.is_empty(), "{} holds machines to lose", lost.name);
        if frozen {
            lost.freeze(true);
        } else {
            lost.cut();
        }

        let report = cluster.reconcile().await;
        assert_eq!(
            report.unreachable_nodes,
            vec![lost.name.clone()],
            "round {round}"
        );
        assert!(
            report.failed.is_empty() && report.stopped.is_empty(),
            "nothing is failed or stopped on that account: {report:?}"
        );
        assert_eq!(
            cluster.unreachable_nodes().await,
            BTreeSet::from([lost.name.clone()])
        );
        for id in &held {
            let m = cluster.machine(id).await;
            assert_eq!(m["state"], "running", "its last known state: {m}");
            assert!(m["unreachable_since"].is_string(), "{m}");
        }
        for (node, machines) in cluster.placement().await {
            if node != lost.name {
                for id in machines {
                    assert!(cluster
                        .machine(&id)
                        .await
                        .get("unreachable_since")
                        .is_none());
                }
            }
        }

        // Still billed as running while away.
        let billed_before: Vec<(i64, bool)> = {
            let mut v = Vec::new();
            for id in &held {
                v.push(cluster.metered(id).await);
            }
            v
        };
        clock += 3 * MINUTE_MS;
        meter::tick(&app.state.db, clock, RULES).await.unwrap();
        for (id, (minutes, metered)) in held.iter().zip(&billed_before) {
            let (now_minutes, still) = cluster.metered(id).await;
            assert!(*metered && still, "{id} is metered through the loss");
            assert!(
                now_minutes > *minutes,
                "{id} billed while its node is away: {minutes} → {now_minutes}"
            );
        }

        // Nothing new goes there.
        let newcomer = cluster.create(&format!("while-lost-{round}")).await;
        app.run_jobs().await;
        assert!(
            !cluster.placement().await[&lost.name].contains(&newcomer),
            "placed on an unreachable node"
        );
        assert_eq!(cluster.machine(&newcomer).await["state"], "running");

        // While it is away, one of its machines stops on the host (a crash, an operator).
        let crashed = held.iter().next().unwrap().clone();
        podman
            .stop_container(
                &format!("hangar-node-hangar-{crashed}"),
                Some(bollard::query_parameters::StopContainerOptions {
                    t: Some(0),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        if round == 0 {
            // A second pass keeps the node's first time away.
            let since = cluster.machine(&crashed).await["unreachable_since"].clone();
            let again = cluster.reconcile().await;
            assert_eq!(again.unreachable_nodes, vec![lost.name.clone()]);
            assert_eq!(cluster.machine(&crashed).await["unreachable_since"], since);
        }

        // Back: the marks go, and its machines converge to what it reports.
        if frozen {
            lost.freeze(false);
        } else {
            lost.restore();
        }
        let back = cluster.reconcile().await;
        assert!(back.unreachable_nodes.is_empty(), "round {round}: {back:?}");
        assert!(cluster.unreachable_nodes().await.is_empty());
        // A daemon that was frozen learns of the stop only when it runs again, so the next
        // passes may be the ones that see it.
        let mut stopped = back.stopped;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while stopped.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            stopped = cluster.reconcile().await.stopped;
        }
        assert_eq!(stopped, vec![crashed.clone()], "round {round}");
        let m = cluster.machine(&crashed).await;
        assert_eq!(m["state"], "stopped", "{m}");
        assert!(m.get("unreachable_since").is_none(), "{m}");
        assert!(
            !cluster.metered(&crashed).await.1,
            "billing at the running price ended with it"
        );
        for id in held.iter().filter(|id| **id != crashed) {
            let m = cluster.machine(id).await;
            assert_eq!(m["state"], "running", "{m}");
            assert!(m.get("unreachable_since").is_none(), "{m}");
        }
        cluster.assert_agree(&hosts).await;
        // Its owner starts it again, on the node that came back.
        expect_json(
            app.post(
                &format!("/api/vps/{crashed}/start"),
                Some(&cluster.token),
                json!({}),
            )
            .await,
            StatusCode::ACCEPTED,
        )
        .await;
        app.run_jobs().await;
        assert_eq!(cluster.machine(&crashed).await["state"], "running");
    }
    cluster.assert_agree(&hosts).await;

    // Everything deleted leaves nothing on any node.
    let all: Vec<String> = cluster.placement().await.into_values().flatten().collect();
    eprintln!(
        "{nodes} nodes, {} machines, {rounds} losses ({} cut off, {} frozen); longest reconciler pass {:.1} s",
        all.len(),
        rounds.div_ceil(2),
        rounds / 2,
        cluster.longest_pass.get().as_secs_f64()
    );
    for id in &all {
        let res = app
            .delete(&format!("/api/vps/{id}"), Some(&cluster.token))
            .await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    app.run_jobs().await;
    for host in &hosts {
        assert!(host.machines().await.is_empty(), "{} is empty", host.name);
    }
}
