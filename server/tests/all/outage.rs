//! The database out of reach for 30 s (PostgreSQL pass): `hangar serve` talks to PostgreSQL
//! through a TCP relay the test controls, and the relay drops every connection and refuses new
//! ones for 30 s. Meanwhile requests answer 503 with a clear message and `Retry-After` (never a
//! 500, never a hang), and a create refused then leaves nothing behind. Afterwards everything
//! resumes by itself: requests succeed, a job queued before the outage finishes, the meter
//! catches up, and every balance equals its ledger.

use crate::common;

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use domain::infra::db;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to `target` that can be cut: while cut, open connections are dropped and new
/// ones are closed at once (what a database host going away looks like to its clients).
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection closed
                }
                let target = target.clone();
                let mut cuts = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            cut,
            generation,
        }
    }

    fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_seconds_without_the_database_answer_503_and_everything_resumes() {
    if common::backend() != "postgres" {
        eprintln!("the outage test cuts a PostgreSQL connection: it runs in the PostgreSQL pass");
        return;
    }
    let Some(docker) = common::docker_host() else {
        return;
    };
    let dir = common::TempDir(std::env::temp_dir().join(format!("hangar-outage-{}", db::new_id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let direct = common::fresh_database(&dir.0).await;
    // postgres://user@host:port/name → the same through the relay.
    let (prefix, rest) = direct.split_once('@').unwrap();
    let (host_port, name) = rest.split_once('/').unwrap();
    let relay = Relay::start(host_port.to_owned()).await;
    let relayed = format!("{prefix}@127.0.0.1:{}/{name}", relay.port);

    let env = [
        ("DATABASE_URL", relayed.as_str()),
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
        ("HANGAR_METER_INTERVAL_SECS", "1"),
        ("HANGAR_RECONCILE_INTERVAL_SECS", "2"),
        ("HANGAR_SWEEP_INTERVAL_SECS", "2"),
        ("HANGAR_AUTH_RATE_LIMIT_PER_MINUTE", "10000"),
        ("HANGAR_ADMIN_PASSWORD", "outage-operator-password"),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args([
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--username",
            "ops",
            "--admin",
        ])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = 20_000 + rand::random::<u16>() % 20_000;
    let log = std::fs::File::create(dir.0.join("server.log")).unwrap();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_hangar"))
            .arg("serve")
            .envs(env)
            .env("HANGAR_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let http = Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(url("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let remote = common::Remote {
        http: &http,
        base: url(""),
    };
    let (_, _, user) = remote
        .funded_customer(
            ("ops@example.com", "outage-operator-password"),
            "patient",
            20.0,
        )
        .await;
    let plan = remote.container_plan().await;
    let create = |name: &str| {
        http.post(url("/api/vps"))
            .bearer_auth(&user)
            .json(&json!({"name": name, "plan_id": plan}))
            .send()
    };
    let running = create("before")
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = db::connect(&direct).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state: String = sqlx::query_scalar("SELECT state FROM instances WHERE id = $1")
            .bind(&running)
            .fetch_one(&pool)
            .await
            .unwrap();
        if state == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first machine did not start ({state})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let running_since = Instant::now();
    // A second machine whose create job is in flight when the database goes.
    let res = create("cut-off").await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    tokio::time::sleep(Duration::from_millis(150)).await;

    // The outage: 30 s without the database.
    relay.cut(true);
    let started = Instant::now();
    let mut answers = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let asked = Instant::now();
        let res = http
            .get(url("/api/me"))
            .bearer_auth(&user)
            .send()
            .await
            .expect("an answer, not a hang");
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "answered within the 5 s connection wait"
        );
        let log = || {
            let log = std::fs::read_to_string(dir.0.join("server.log")).unwrap_or_default();
            log.lines()
                .filter(|l| l.to_lowercase().contains("error"))
                .take(6)
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", log());
        assert!(res.headers().contains_key("retry-after"));
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("database is unavailable"),
            "{body}"
        );
        let refused = create("during").await.unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a create during the outage"
        );
        let ready = http.get(url("/readyz")).send().await.unwrap();
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "readiness says so"
        );
        answers += 1;
    }
    assert!(answers >= 3, "asked during the outage ({answers} times)");
    relay.cut(false);

    // Back by itself: requests, a job queued now, the meter.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = http
            .get(url("/api/me"))
            .bearer_auth(&user)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests did not resume: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = create("after").await.unwrap();
    assert!(after.status().is_success(), "{}", after.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<(String, String)> =
            sqlx::query_as("SELECT name, state FROM instances ORDER BY created_at")
                .fetch_all(&pool)
                .await
                .unwrap();
        let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["before", "cut-off", "after"],
            "the create refused during the outage left nothing"
        );
        if states.iter().all(|(_, s)| s == "running") {
            break;
        }
        if Instant::now() >= deadline {
            let why: Vec<(Option<String>, i64, Option<String>)> = sqlx::query_as(
                "SELECT i.reason, j.attempts, j.error FROM instances i JOIN jobs j ON j.instance_id = i.id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            panic!("the job workers did not resume: {states:?} {why:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The meter resumed: the machine that ran through the outage is billed for its first whole
    // minute, which ended after the outage, and up to its last whole minute.
    if let Some(left) = Duration::from_secs(63).checked_sub(running_since.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let (minutes, until): (i64, i64) =
        sqlx::query_as("SELECT metered_minutes, metered_until FROM instances WHERE id = $1")
            .bind(&running)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        minutes >= 1,
        "the minutes of the outage were billed after it ({minutes})"
    );
    assert!(
        db::now_ms() - until < 62_000,
        "billed up to the last whole minute"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args(["admin", "check-ledger"])
        .env("DATABASE_URL", &direct)
        .env("HANGAR_DATA_DIR", dir.0.to_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
