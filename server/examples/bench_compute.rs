//! Compute benchmark: create→running through the API against the driver call alone, and 100
//! concurrent creates.
//!
//! `cargo run --release -p server --example bench_compute -- <vm|container> [rounds] [concurrent]`
//!
//! `vm` uses libvirt's test driver with the shipped fixture; `container` needs a Docker-API engine
//! in `HANGAR_TEST_DOCKER_HOST` (scripts/podman starts one) and the locally built busybox image.
//! The server runs in this process on SQLite with its job workers; the client polls
//! `GET /api/vps/:id` every 2 ms until `state` is `running`. After the concurrent round every
//! machine is deleted and the node is checked for leftovers.

#[path = "support/mod.rs"]
mod support;

use std::{sync::Arc, time::Instant};

use domain::fleet::driver::{self, Kind, MachineSpec};
use domain::infra::config::Config;
use domain::infra::db;
use domain::AppState;
use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kind = match args.get(1).map(String::as_str).unwrap_or("vm") {
        "container" => Kind::Container,
        _ => Kind::Vm,
    };
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let concurrent: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let dir = std::env::temp_dir().join(format!("hangar-bench-compute-{}", db::new_id()));
    std::fs::create_dir_all(&dir)?;
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/libvirt-node.xml");
    let docker = std::env::var("HANGAR_TEST_DOCKER_HOST").ok();
    let mut env = std::collections::HashMap::from([
        ("HANGAR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("HANGAR_DATA_DIR".to_string(), dir.display().to_string()),
        (
            "HANGAR_LIBVIRT_URI".to_string(),
            format!("test://{}", fixture.display()),
        ),
        // Room for the concurrent round on the default nodes.
        ("HANGAR_CPU_OVERCOMMIT".to_string(), "16".to_string()),
        ("HANGAR_MEMORY_OVERCOMMIT".to_string(), "4".to_string()),
        ("HANGAR_STOP_TIMEOUT_SECS".to_string(), "2".to_string()),
        ("HANGAR_JOB_WORKERS".to_string(), "8".to_string()),
    ]);
    if kind == Kind::Container {
        env.insert(
            "HANGAR_DOCKER_HOST".into(),
            docker.clone().expect("HANGAR_TEST_DOCKER_HOST"),
        );
    }
    let config = Config::from_sources(None, &env)?;
    let state = AppState::build(config).await?;
    // libvirt's test driver has a fixed 100 GiB pool per connection (4 of it base images), and
    // disk is never over-committed: a 1 GB plan and a second test-driver node (its own
    // connection, so its own pool) give the concurrent round room.
    sqlx::query("UPDATE nodes SET disk_gb = 96 WHERE kind = 'vm'")
        .execute(&state.db)
        .await?;
    domain::fleet::catalog::upsert_plan(
        &state.db,
        model::api::admin_compute::PlanInput {
            slug: "bench-1g".into(),
            name: "Bench".into(),
            kind: "vm".into(),
            vcpu: 1,
            memory_mb: 64,
            disk_gb: 1,
            price_hourly: 0.001,
            active: true,
        },
    )
    .await?;
    if kind == Kind::Vm {
        domain::fleet::nodes::add(
            &state.db,
            model::api::admin_compute::NodeInput {
                name: "bench-b".into(),
                kind: "vm".into(),
                region: "local".into(),
                uri: format!("test://{}", fixture.display()),
                secret: None,
                vcpu: 16,
                memory_mb: 65536,
                disk_gb: 96,
            },
        )
        .await?;
    }
    for _ in 0..state.config.job_workers {
        tokio::spawn(domain::jobs::worker(state.clone()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = hangar_server::http::router(state.clone());
    tokio::spawn(async move { hangar_server::http::serve(listener, router).await });

    let (_, token) = support::funded_token(&state, &base).await?;
    let http = reqwest::Client::new();
    let plan = if kind == Kind::Vm {
        "bench-1g"
    } else {
        "c-micro"
    };
    let node = domain::fleet::nodes::list(&state.db)
        .await?
        .into_iter()
        .find(|n| n.kind == kind)
        .unwrap();
    let drv: Arc<dyn driver::Driver> = state.drivers.for_node(&node);
    let image = if kind == Kind::Vm {
        "debian-12".to_owned()
    } else {
        "localhost/hangar-busybox:latest".to_owned()
    };

    // The driver alone.
    let mut alone = Vec::new();
    for i in 0..rounds {
        let id = db::new_id();
        let spec = MachineSpec {
            name: driver::machine_name(&id),
            instance_id: id.clone(),
            account: "bench".into(),
            hostname: format!("d{i}"),
            vcpu: 1,
            memory_mb: 256,
            disk_gb: 1,
            image: image.clone(),
            user_data: None,
            ssh_keys: vec![],
            seed_url: None,
            public_ip: None,
            app: None,
        };
        let t = Instant::now();
        drv.create(&spec).await?;
        alone.push(t.elapsed().as_secs_f64() * 1000.0);
        drv.destroy(&spec.name).await?;
    }

    // Through the API: POST, then poll until running.
    let create_and_wait = |name: String| {
        let http = http.clone();
        let base = base.clone();
        let token = token.clone();
        async move {
            let t = Instant::now();
            let res = http
                .post(format!("{base}/api/vps"))
                .bearer_auth(&token)
                .json(&json!({"name": name, "plan_id": plan}))
                .send()
                .await?;
            anyhow::ensure!(
                res.status() == 201,
                "create answered {}: {}",
                res.status(),
                res.text().await?
            );
            let vps: Value = res.json().await?;
            let id = vps["id"].as_str().unwrap().to_owned();
            loop {
                let v: Value = http
                    .get(format!("{base}/api/vps/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                match v["state"].as_str() {
                    Some("running") => break,
                    Some("error") => anyhow::bail!("{id} failed: {}", v["reason"]),
                    _ => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
                }
            }
            Ok::<_, anyhow::Error>((id, t.elapsed().as_secs_f64() * 1000.0))
        }
    };
    let mut api = Vec::new();
    for i in 0..rounds {
        let (id, ms) = create_and_wait(format!("api-{i}")).await?;
        api.push(ms);
        http.delete(format!("{base}/api/vps/{id}"))
            .bearer_auth(&token)
            .send()
            .await?;
    }
    alone.sort_by(f64::total_cmp);
    api.sort_by(f64::total_cmp);
    let (a50, p50) = (pct(&alone, 0.5), pct(&api, 0.5));
    println!(
        "| {:?} | {rounds} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} ms ({:.0} %) |",
        kind,
        a50,
        pct(&alone, 0.95),
        p50,
        pct(&api, 0.95),
        p50 - a50,
        (p50 - a50) / a50 * 100.0
    );

    // Concurrent creates: all reach running, then all are deleted, nothing leaks.
    let t = Instant::now();
    let results =
        futures::future::join_all((0..concurrent).map(|i| create_and_wait(format!("c-{i}")))).await;
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    let ids: Vec<String> = results
        .into_iter()
        .filter_map(Result::ok)
        .map(|(id, _)| id)
        .collect();
    println!(
        "{concurrent} concurrent creates: {} running, {} errors, {:.1} s",
        ids.len(),
        errors.len(),
        t.elapsed().as_secs_f64()
    );
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    for id in &ids {
        http.delete(format!("{base}/api/vps/{id}"))
            .bearer_auth(&token)
            .send()
            .await?;
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let left: Vec<Value> = http
            .get(format!("{base}/api/vps"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut leaked = Vec::new();
    let mut held = 0;
    for n in domain::fleet::nodes::list(&state.db)
        .await?
        .into_iter()
        .filter(|n| n.kind == kind)
    {
        let d = state.drivers.for_node(&n);
        leaked.extend(d.list().await?.into_iter().map(|m| m.name));
        held += n.used_vcpu;
    }
    println!(
        "after deleting: {} machines left on the nodes {:?}, capacity still held: {held} vCPU",
        leaked.len(),
        leaked.iter().take(3).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
