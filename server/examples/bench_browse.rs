//! Browse benchmark (issue: marketplace): `GET /api/v1/servers/available` with three filters over
//! 100,000 servers, 32 concurrent keep-alive clients, against an empty axum route in the same run.
//!
//!     cargo run --release -p server --example bench_browse -- [sqlite|postgres] [servers] [seconds]
//!
//! PostgreSQL needs `HANGAR_BENCH_PG_URL` (a server URL without a database name). Latency is
//! measured inside the server (request in → response headers out) and at the client. Results go
//! to docs/BENCHMARKS.md by hand, with the machine they ran on.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{extract::Request, middleware::Next, response::Response, routing::get, Router};
use domain::infra::config::Config;
use domain::infra::db;
use domain::market::{demo, inventory};
use domain::AppState;

const CLIENTS: usize = 32;
const QUERY: &str = "/api/v1/servers/available?country=US&min_ram_gb=64&max_price_per_day=20";

/// 200 different three-filter queries (country × RAM × price), for a mix closer to real traffic.
fn queries() -> Vec<String> {
    let countries = ["US", "DE", "NL", "GB", "FR", "SG", "JP", "AU", "CA", "FI"];
    let rams = [16, 32, 64, 128, 256];
    let prices = [5, 10, 20, 50];
    let mut out = Vec::new();
    for c in countries {
        for r in rams {
            for p in prices {
                out.push(format!(
                    "/api/v1/servers/available?country={c}&min_ram_gb={r}&max_price_per_day={p}"
                ));
            }
        }
    }
    out
}

type Samples = Arc<Mutex<Vec<Duration>>>;

async fn timed(samples: Samples, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let res = next.run(req).await;
    samples.lock().unwrap().push(start.elapsed());
    res
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Run {
    requests: usize,
    rps: f64,
    client_p50: f64,
    client_p99: f64,
    server_p50: f64,
    server_p99: f64,
}

async fn load(router: Router, paths: &[String], seconds: u64) -> Run {
    let server_samples: Samples = Arc::default();
    let s2 = server_samples.clone();
    let router = router.layer(axum::middleware::from_fn(move |req, next| {
        timed(s2.clone(), req, next)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let urls: Arc<Vec<String>> =
        Arc::new(paths.iter().map(|p| format!("http://{addr}{p}")).collect());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    // Warm up connections (and, when on, the cache: every query once).
    for url in urls.iter() {
        let r = client.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
    }
    server_samples.lock().unwrap().clear();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let client = client.clone();
        let urls = urls.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = n;
            while Instant::now() < deadline {
                let t = Instant::now();
                i = (i + 1) % urls.len();
                let r = client.get(&urls[i]).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut client_lat = Vec::new();
    for t in tasks {
        client_lat.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    client_lat.sort();
    let mut server_lat = server_samples.lock().unwrap().clone();
    server_lat.sort();
    Run {
        requests: client_lat.len(),
        rps: client_lat.len() as f64 / elapsed,
        client_p50: pct(&client_lat, 0.5),
        client_p99: pct(&client_lat, 0.99),
        server_p50: pct(&server_lat, 0.5),
        server_p99: pct(&server_lat, 0.99),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args.first().cloned().unwrap_or_else(|| "sqlite".into());
    let servers: i64 = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let seconds: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let url = match backend.as_str() {
        "sqlite" => format!("sqlite:///tmp/hangar-bench-{servers}.db"),
        "postgres" => {
            let base = std::env::var("HANGAR_BENCH_PG_URL")?;
            let name = format!("hangar_bench_{servers}");
            let admin = db::connect(&format!("{base}/postgres")).await?;
            let _ = sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&admin)
                .await;
            format!("{base}/{name}")
        }
        other => anyhow::bail!("unknown backend {other}"),
    };
    let mut env = HashMap::from([
        ("DATABASE_URL".to_string(), url),
        ("HANGAR_LISTEN".to_string(), "127.0.0.1:0".to_string()),
    ]);
    let state = AppState::build(Config::from_sources(None, &env)?).await?;
    env.insert("HANGAR_BROWSE_CACHE_ENTRIES".into(), "0".into());
    let uncached = AppState::build(Config::from_sources(None, &env)?).await?;
    let have = inventory::count(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if have < servers {
        let t = Instant::now();
        inventory::load(
            &state.db,
            demo::demo_servers((servers - have) as usize, 1_000 + have as u64),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!(
            "loaded {} servers in {:.1}s",
            servers - have,
            t.elapsed().as_secs_f64()
        );
    }
    db::analyze(&state.db).await?;

    let one = vec![QUERY.to_owned()];
    let many = queries();
    let empty = load(
        Router::new().route("/", get(|| async { "" })),
        &["/".to_owned()],
        seconds,
    )
    .await;
    let hot = load(hangar_server::http::router(state.clone()), &one, seconds).await;
    let mix = load(hangar_server::http::router(state.clone()), &many, seconds).await;
    let cold_one = load(hangar_server::http::router(uncached.clone()), &one, seconds).await;
    let cold_mix = load(
        hangar_server::http::router(uncached.clone()),
        &many,
        seconds,
    )
    .await;
    println!("backend={backend} servers={servers} clients={CLIENTS} seconds={seconds}");
    println!("| route | requests | req/s | server p50 ms | server p99 ms | client p50 ms | client p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    for (name, r) in [
        ("empty axum route", &empty),
        ("browse, 3 filters, one query, cache on", &hot),
        ("browse, 3 filters, 200 queries, cache on", &mix),
        ("browse, 3 filters, one query, cache off", &cold_one),
        ("browse, 3 filters, 200 queries, cache off", &cold_mix),
    ] {
        println!(
            "| {name} | {} | {:.0} | {:.3} | {:.3} | {:.2} | {:.2} |",
            r.requests, r.rps, r.server_p50, r.server_p99, r.client_p50, r.client_p99
        );
    }
    Ok(())
}
