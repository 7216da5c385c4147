//! Exec benchmark: a sync command's round trip through the API against the same command through
//! the machine's transport directly, and many concurrent execs across machines.
//!
//! `cargo run --release -p server --example bench_exec -- [rounds] [machines] [concurrent]`
//!
//! Containers: needs a Docker-API engine in `HANGAR_TEST_DOCKER_HOST` (scripts/podman starts one)
//! and the locally built busybox image; "direct" is the driver's own exec against the same
//! container, what `docker exec` costs without Hangar. VMs, with `HANGAR_BENCH_VM=1` and the
//! `HANGAR_TEST_QEMU_*` variables `scripts/qemu-tier start DIR` prints: the tier's tiny guest;
//! "direct" is an SSH exec with the platform key on a kept connection, what `ssh root@vm true`
//! costs without Hangar. The server runs in this process on SQLite; the client sends
//! `POST /api/vps/:id/exec {"command": "true"}` over loopback.

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use std::sync::Arc;

use domain::compute::instances;
use domain::fleet::catalog;
use domain::fleet::driver::guest::{GuestKeys, Guests};
use domain::fleet::driver::{machine_name, ExecRequest};
use domain::infra::config::Config;
use domain::infra::db;
use domain::AppState;
use serde_json::{json, Value};

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    let median = pct(&ms, 0.5);
    println!(
        "{name:<28} n={:<5} median {median:7.2} ms   p90 {:7.2} ms   p99 {:7.2} ms",
        ms.len(),
        pct(&ms, 0.9),
        pct(&ms, 0.99)
    );
    median
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let machines: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrent: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let vm = std::env::var("HANGAR_BENCH_VM").as_deref() == Ok("1");
    let var = |k: &str| std::env::var(k).map_err(|_| anyhow::anyhow!("{k} is not set"));
    let dir = std::env::temp_dir().join(format!("hangar-bench-exec-{}", db::new_id()));
    std::fs::create_dir_all(&dir)?;
    // VMs fetch their seed from Hangar: it listens on the host's address on their network.
    let host = if vm {
        var("HANGAR_TEST_QEMU_HOST")?
    } else {
        "127.0.0.1".into()
    };
    let listener = tokio::net::TcpListener::bind((host.as_str(), 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut env = std::collections::HashMap::from([
        (
            "HANGAR_LISTEN".to_string(),
            listener.local_addr()?.to_string(),
        ),
        ("HANGAR_PUBLIC_URL".to_string(), base.clone()),
        ("HANGAR_DATA_DIR".to_string(), dir.display().to_string()),
        ("HANGAR_CPU_OVERCOMMIT".to_string(), "16".to_string()),
        ("HANGAR_STOP_TIMEOUT_SECS".to_string(), "2".to_string()),
    ]);
    if vm {
        env.insert("HANGAR_LIBVIRT_URI".into(), var("HANGAR_TEST_QEMU_URI")?);
        env.insert("HANGAR_LIBVIRT_DOMAIN_TYPE".into(), "qemu".into());
    } else {
        env.insert("HANGAR_DOCKER_HOST".into(), var("HANGAR_TEST_DOCKER_HOST")?);
    }
    let state = AppState::build(Config::from_sources(None, &env)?).await?;
    let router = hangar_server::http::router(state.clone());
    tokio::spawn(async move { hangar_server::http::serve(listener, router).await });
    if vm {
        catalog::upsert_image(
            &state.db,
            model::api::admin_compute::ImageInput {
                slug: "tiny-linux".into(),
                name: "Tiny Linux".into(),
                kind: "vm".into(),
                source: format!(
                    "kernel={} initrd={} append=console=ttyS0 quiet",
                    var("HANGAR_TEST_QEMU_KERNEL")?,
                    var("HANGAR_TEST_QEMU_INITRD")?
                ),
                is_default: true,
                app: None,
                active: true,
            },
        )
        .await?;
    }
    let (plan, what) = if vm {
        ("nano", "VMs")
    } else {
        ("c-micro", "containers")
    };

    let (user_id, token) = support::funded_token(&state, &base).await?;
    let http = reqwest::Client::new();

    // The machines, running.
    let mut ids = Vec::new();
    for i in 0..machines {
        let vps: Value = http
            .post(format!("{base}/api/vps"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench-{i}"), "plan_id": plan}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(vps["id"].as_str().unwrap().to_owned());
    }
    domain::jobs::drain(&state).await?;
    // A VM answers once it has booted and its SSH server is up.
    for id in &ids {
        let url = format!("{base}/api/vps/{id}/exec");
        let boot = Instant::now();
        loop {
            let res = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"command": "true"}))
                .send()
                .await?;
            if res.status().is_success() {
                break;
            }
            let why = res.text().await?;
            anyhow::ensure!(boot.elapsed().as_secs() < 300, "{id} never answered: {why}");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    // Direct: the transport alone, as `docker exec` / `ssh root@vm` would.
    let inst = instances::get(&state.db, &user_id, &ids[0]).await?;
    let driver = domain::fleet::nodes::driver_for(&state, inst.node_id.as_deref())
        .await?
        .unwrap();
    let guests = Guests::new(Arc::new(GuestKeys::new(
        db::stored_secret(&state.db, "guest_ssh").await?.as_bytes(),
    )));
    let addr = driver.address(&machine_name(&ids[0])).await?;
    let mut direct = Vec::new();
    for _ in 0..rounds {
        let req = ExecRequest {
            command: "true".into(),
            timeout: std::time::Duration::from_secs(30),
            max_output: 1 << 20,
            tag: db::new_id(),
        };
        let t = Instant::now();
        let out = match (&addr, vm) {
            (Some(addr), true) => guests.exec(&machine_name(&ids[0]), addr, &req).await?,
            _ => driver.exec(&machine_name(&ids[0]), &req).await?,
        };
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(out.exit_code, Some(0));
    }

    // Through Hangar: HTTP, auth, the guard, the driver, the audit row.
    let mut api = Vec::new();
    let url = format!("{base}/api/vps/{}/exec", ids[0]);
    for _ in 0..rounds {
        let t = Instant::now();
        let r: Value = http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"command": "true"}))
            .send()
            .await?
            .json()
            .await?;
        api.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r["exit_code"], 0, "{r}");
    }
    println!("sync exec of `true`, one of the {what}, {rounds} rounds each:");
    let d = summary(
        if vm {
            "direct (SSH exec)"
        } else {
            "direct (Docker API exec)"
        },
        direct,
    );
    let a = summary("through the API", api);
    println!("added by Hangar at the median: {:.2} ms", a - d);

    // Many at once, spread over the machines: every one answered, none lost.
    let started = Instant::now();
    let calls = (0..concurrent).map(|i| {
        let http = http.clone();
        let url = format!("{base}/api/vps/{}/exec", ids[i % ids.len()]);
        let token = token.clone();
        async move {
            let t = Instant::now();
            let res = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"command": format!("echo {i}")}))
                .send()
                .await;
            let ok = match res {
                Ok(r) => {
                    let status = r.status();
                    let v: Value = r.json().await.unwrap_or_default();
                    let ok = status.is_success() && v["stdout"] == format!("{i}\n");
                    if !ok {
                        eprintln!("exec {i}: {status} {v}");
                    }
                    ok
                }
                Err(e) => {
                    eprintln!("exec {i}: {e}");
                    false
                }
            };
            (ok, t.elapsed().as_secs_f64() * 1000.0)
        }
    });
    let results = futures::future::join_all(calls).await;
    let answered = results.iter().filter(|(ok, _)| *ok).count();
    println!(
        "{concurrent} concurrent execs across {} {what}: {answered} answered with their own output, {} lost, {:.0} ms in all",
        ids.len(),
        concurrent - answered,
        started.elapsed().as_secs_f64() * 1000.0
    );
    summary(
        "concurrent round trips",
        results.into_iter().map(|(_, ms)| ms).collect(),
    );

    for id in &ids {
        http.delete(format!("{base}/api/vps/{id}"))
            .bearer_auth(&token)
            .send()
            .await?;
    }
    domain::jobs::drain(&state).await?;
    Ok(())
}
