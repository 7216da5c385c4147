//! `hangar serve` killed with SIGKILL in the middle of work, then started again over the same
//! database, on both databases with real container machines (Podman): during a create, a
//! snapshot, a stop, a delete, and at random moments while the meter ticks every second. Each kill
//! lands at a random point (0–800 ms after the request), so some fall before the job is claimed,
//! some inside the driver call, some after.
//!
//! Afterwards, once the restarted server has settled: no machine is stuck in a transition and no
//! job or snapshot is left half-done; every machine the database holds as running has a running
//! container, every stopped one a stopped container, and deleted or failed ones none (and no
//! container is left for a machine the database does not know as live); no minute is billed twice
//! (each user's usage equals what their machines' billed minutes cost) or lost (every running
//! machine is billed up to the last whole minute); every cached balance equals its ledger.
//!
//! Rounds: 2 in the test command; `HANGAR_TEST_FAULT_ROUNDS=20` for the long run (docs/FAULTS.md).

use crate::common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use domain::infra::db;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// A `hangar serve` child process over one database, restartable.
struct Server {
    child: Option<Child>,
    port: u16,
    env: Vec<(String, String)>,
    log: std::path::PathBuf,
}

impl Server {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hangar"))
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HANGAR_LISTEN", format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self) {
        let http = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the server did not come back: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Create,
    Snapshot,
    Meter,
    Stop,
    Delete,
}

fn podman_ids(filters: &[String]) -> usize {
    let mut args = vec!["ps".to_owned(), "-aq".to_owned()];
    for f in filters {
        args.push("--filter".into());
        args.push(f.clone());
    }
    let out = Command::new("podman").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_work_the_server_leaves_nothing_stuck_doubled_or_lost() {
    let Some(docker) = common::docker_host() else {
        return;
    };
    let rounds: usize = std::env::var("HANGAR_TEST_FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let dir = common::TempDir(std::env::temp_dir().join(format!("hangar-faults-{}", db::new_id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let database_url = common::fresh_database(&dir.0).await;
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", database_url.as_str()),
        ("HANGAR_DATA_DIR", dir.0.to_str().unwrap()),
        ("HANGAR_DOCKER_HOST", docker.as_str()),
        (
            "HANGAR_LIBVIRT_URI",
            concat!(
                "test://",
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/libvirt-node.xml"
            ),
        ),
        // A killed worker's job is taken over once its lease runs out: short, to keep rounds short.
        ("HANGAR_JOB_LEASE_SECS", "3"),
        ("HANGAR_METER_INTERVAL_SECS", "1"),
        ("HANGAR_RECONCILE_INTERVAL_SECS", "2"),
        ("HANGAR_SWEEP_INTERVAL_SECS", "2"),
        ("HANGAR_STOP_TIMEOUT_SECS", "5"),
        ("HANGAR_AUTH_RATE_LIMIT_PER_MINUTE", "10000"),
        ("HANGAR_ADMIN_PASSWORD", "faults-operator-password"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hangar"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hangar {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&["migrate"]);
    cli(&[
        "admin",
        "create-user",
        "--email",
        "ops@example.com",
        "--username",
        "ops",
        "--admin",
    ]);
    let mut server = Server {
        child: None,
        port: 20_000 + rand::random::<u16>() % 20_000,
        env: env.clone(),
        log: dir.0.join("server.log"),
    };
    server.start();
    server.ready().await;
    let pool = db::connect(&database_url).await.unwrap();
    let http = Client::new();
    let base = server.url("");
    let url = move |path: &str| format!("{base}{path}");

    let post = |path: &str, token: &str, body: Value| {
        http.post(url(path)).bearer_auth(token).json(&body).send()
    };
    let remote = common::Remote {
        http: &http,
        base: server.url(""),
    };
    let (user_id, _, user) = remote
        .funded_customer(
            ("ops@example.com", "faults-operator-password"),
            "victim",
            100.0,
        )
        .await;
    let plan = remote.container_plan().await;
    // One machine that runs throughout, so every kill also lands on a running meter.
    let keeper = post(
        "/api/vps",
        &user,
        json!({"name": "keeper", "plan_id": plan}),
    )
    .await
    .unwrap();
    assert!(keeper.status().is_success());

    let mut outcomes = Vec::new();
    for round in 0..rounds {
        let mut machine = String::new();
        for fault in [
            Fault::Create,
            Fault::Snapshot,
            Fault::Meter,
            Fault::Stop,
            Fault::Delete,
        ] {
            // The request, then SIGKILL a random moment later.
            let sent = match fault {
                Fault::Create => {
                    let res = post(
                        "/api/vps",
                        &user,
                        json!({"name": format!("victim-{round}"), "plan_id": plan}),
                    )
                    .await
                    .unwrap();
                    assert!(res.status().is_success(), "{}", res.status());
                    let body: Value = res.json().await.unwrap();
                    machine = body["id"].as_str().unwrap().to_owned();
                    StatusCode::OK
                }
                Fault::Snapshot => post(
                    &format!("/api/vps/{machine}/snapshots"),
                    &user,
                    json!({"name": format!("snap-{round}")}),
                )
                .await
                .unwrap()
                .status(),
                Fault::Meter => StatusCode::OK,
                Fault::Stop => post(&format!("/api/vps/{machine}/stop"), &user, json!({}))
                    .await
                    .unwrap()
                    .status(),
                Fault::Delete => http
                    .delete(url(&format!("/api/vps/{machine}")))
                    .bearer_auth(&user)
                    .send()
                    .await
                    .unwrap()
                    .status(),
            };
            assert!(sent.is_success(), "{fault:?} was accepted: {sent}");
            let delay = rand::random::<u64>() % 800;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            server.kill();
            let state: String = sqlx::query_scalar(
                "SELECT state || '/' || COALESCE(transition, '-') FROM instances WHERE id = $1",
            )
            .bind(&machine)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .unwrap_or_else(|| "-".into());
            outcomes.push(format!("{fault:?} +{delay} ms: {state}"));
            server.start();
            server.ready().await;
            settle(&pool).await;
        }
    }

    // Let the reconciler and a few meter ticks run over the final state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    settle(&pool).await;
    eprintln!("{} kills: {outcomes:?}", outcomes.len());

    let stuck: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, state, transition FROM instances
         WHERE transition IS NOT NULL OR state IN ('provisioning', 'stopping', 'rebooting')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        stuck.is_empty(),
        "machines stuck in a transition: {stuck:?}"
    );
    let half_snapshots: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM snapshots WHERE state = 'creating'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(half_snapshots, 0, "snapshots left half-made");

    // The database and the node agree.
    let machines: Vec<(String, String)> = sqlx::query_as("SELECT id, state FROM instances")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        machines.len() > rounds,
        "machines were made ({})",
        machines.len()
    );
    for (id, state) in &machines {
        let label = format!("label=hangar.instance={id}");
        let all = podman_ids(std::slice::from_ref(&label));
        let running = podman_ids(&[label.clone(), "status=running".into()]);
        match state.as_str() {
            "running" => assert_eq!(
                (all, running),
                (1, 1),
                "{id} is running: one running container"
            ),
            "stopped" => assert_eq!(
                (all, running),
                (1, 0),
                "{id} is stopped: one stopped container"
            ),
            _ => assert_eq!(all, 0, "{id} is {state}: no container"),
        }
    }

    // Money: no minute twice, none lost, balances equal to the ledger.
    let (usage, owed): (i64, i64) = sqlx::query_as(
        "SELECT
             (SELECT CAST(COALESCE(-SUM(amount_micros), 0) AS BIGINT) FROM ledger WHERE user_id = $1 AND kind = 'usage'),
             (SELECT CAST(COALESCE(SUM(billed_micros), 0) AS BIGINT) FROM instances WHERE user_id = $1)",
    )
    .bind(&user_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        usage, owed,
        "usage charged equals the billed minutes' price"
    );
    let now = db::now_ms();
    let behind: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, metered_until FROM instances WHERE state = 'running' AND metered_until IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!behind.is_empty(), "the keeper runs and is metered");
    for (id, until) in behind {
        assert!(
            now - until < 60_000 + 5_000,
            "{id} is billed up to the last whole minute ({} ms behind)",
            now - until
        );
    }
    cli(&["admin", "check-ledger"]);
}

/// Waits until no job is queued or running and no machine is in a transition (90 s at most:
/// a killed worker's job waits out its 3 s lease, then runs again).
async fn settle(pool: &db::Pool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (jobs, moving): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')),
                    (SELECT COUNT(*) FROM instances WHERE transition IS NOT NULL)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if jobs == 0 && moving == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {jobs} jobs open, {moving} machines in a transition"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
