//! Exec benchmark: a sync command's round trip through the API against the same command through
//! the Docker API directly (the driver alone), and many concurrent execs across machines.
//!
//! `cargo run --release -p server --example bench_exec -- [rounds] [machines] [concurrent]`
//!
//! Needs a Docker-API engine in `HANGAR_TEST_DOCKER_HOST` (scripts/podman starts one) and the
//! locally built busybox image. The server runs in this process on SQLite; the client sends
//! `POST /api/vps/:id/exec {"command": "true"}` over loopback. "Direct" is the driver's own
//! exec against the same container: what `docker exec` costs, without Hangar.

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use domain::compute::driver::{machine_name, ExecRequest};
use domain::compute::{executor, instances};
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
    let docker = std::env::var("HANGAR_TEST_DOCKER_HOST").expect("HANGAR_TEST_DOCKER_HOST");
    let dir = std::env::temp_dir().join(format!("hangar-bench-exec-{}", db::new_id()));
    std::fs::create_dir_all(&dir)?;
    let env = std::collections::HashMap::from([
        ("HANGAR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        ("HANGAR_DATA_DIR".to_string(), dir.display().to_string()),
        ("HANGAR_DOCKER_HOST".to_string(), docker),
        ("HANGAR_CPU_OVERCOMMIT".to_string(), "16".to_string()),
        ("HANGAR_STOP_TIMEOUT_SECS".to_string(), "2".to_string()),
    ]);
    let state = AppState::build(Config::from_sources(None, &env)?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = hangar_server::http::router(state.clone());
    tokio::spawn(async move { hangar_server::http::serve(listener, router).await });

    let (user_id, token) = support::funded_token(&state, &base).await?;
    let http = reqwest::Client::new();

    // The machines, running.
    let mut ids = Vec::new();
    for i in 0..machines {
        let vps: Value = http
            .post(format!("{base}/api/vps"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench-{i}"), "plan_id": "c-micro"}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(vps["id"].as_str().unwrap().to_owned());
    }
    domain::jobs::drain(&state).await?;

    // Direct: the driver's exec, as `docker exec true` through the engine's API.
    let inst = instances::get(&state.db, &user_id, &ids[0]).await?;
    let driver = executor::driver_for(&state, &inst).await?.unwrap();
    let mut direct = Vec::new();
    for _ in 0..rounds {
        let req = ExecRequest {
            command: "true".into(),
            timeout: std::time::Duration::from_secs(30),
            max_output: 1 << 20,
            tag: db::new_id(),
        };
        let t = Instant::now();
        let out = driver.exec(&machine_name(&ids[0]), &req).await?;
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
    println!("sync exec of `true`, one container, {rounds} rounds each:");
    let d = summary("direct (Docker API exec)", direct);
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
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or_default();
                    v["stdout"] == format!("{i}\n")
                }
                _ => false,
            };
            (ok, t.elapsed().as_secs_f64() * 1000.0)
        }
    });
    let results = futures::future::join_all(calls).await;
    let answered = results.iter().filter(|(ok, _)| *ok).count();
    println!(
        "{concurrent} concurrent execs across {} containers: {answered} answered with their own output, {} lost, {:.0} ms in all",
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
