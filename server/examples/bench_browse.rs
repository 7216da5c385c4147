//! Browse benchmark (issues: marketplace; portal and speed): `GET /api/v1/servers/available`
//! with three filters and a page over 100,000 servers, 32 concurrent keep-alive clients, each
//! request a query not sent before (random country, minimum RAM, maximum price in cents, page),
//! answered from the browse index and from SQL; the portal's `/marketplace` page rendered for a
//! visitor by 8 clients; an empty axum route in the same run for scale.
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
/// Visitors loading the portal's marketplace page at once.
const PAGE_CLIENTS: usize = 8;
const QUERY: &str = "/api/v1/servers/available?country=US&min_ram_gb=64&max_price_per_day=20";

/// `n` three-filter queries with a page, practically all different: country × minimum RAM ×
/// maximum price in cents × one of the first four pages.
fn random_queries(n: usize) -> Vec<String> {
    use rand::{Rng, SeedableRng};
    let countries = ["US", "DE", "NL", "GB", "FR", "SG", "JP", "AU", "CA", "FI"];
    let rams = [16, 32, 64, 128, 256, 512];
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    (0..n)
        .map(|_| {
            format!(
                "/api/v1/servers/available?country={}&min_ram_gb={}&max_price_per_day={:.2}&offset={}",
                countries[rng.gen_range(0..countries.len())],
                rams[rng.gen_range(0..rams.len())],
                rng.gen_range(300..6_000) as f64 / 100.0,
                24 * rng.gen_range(0..4),
            )
        })
        .collect()
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

async fn load(router: Router, paths: &[String], clients: usize, seconds: u64) -> Run {
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
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    // Warm up connections (and the index: its first load), not the queries themselves.
    for url in urls.iter().take(clients) {
        let r = client.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
    }
    server_samples.lock().unwrap().clear();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..clients {
        let client = client.clone();
        let urls = urls.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            // Each client walks its own stretch of the list: no query is sent twice until the
            // list runs out.
            let mut i = n * urls.len() / clients;
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
    env.insert("HANGAR_BROWSE_INDEX".into(), "false".into());
    let sql = AppState::build(Config::from_sources(None, &env)?).await?;
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
    let many = random_queries(200_000);
    let page = vec!["/marketplace".to_owned()];
    let site = |state: &AppState| hangar_server::http::router(state.clone());
    let empty = load(
        Router::new().route("/", get(|| async { "" })),
        &["/".to_owned()],
        CLIENTS,
        seconds,
    )
    .await;
    let t = Instant::now();
    let index = state.browse_index.as_deref().expect("on by default");
    index
        .load(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("index loaded in {:.2}s", t.elapsed().as_secs_f64());
    let indexed_one = load(site(&state), &one, CLIENTS, seconds).await;
    let indexed_mix = load(site(&state), &many, CLIENTS, seconds).await;
    let sql_one = load(site(&sql), &one, CLIENTS, seconds).await;
    let sql_mix = load(site(&sql), &many, CLIENTS, seconds).await;
    let portal = load(site(&state), &page, PAGE_CLIENTS, seconds).await;
    println!("backend={backend} servers={servers} seconds={seconds}");
    println!("| route | clients | requests | req/s | server p50 ms | server p99 ms | client p50 ms | client p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, clients, r) in [
        ("empty axum route", CLIENTS, &empty),
        ("browse, 3 filters, one query, index", CLIENTS, &indexed_one),
        (
            "browse, 3 filters + page, a new query each time, index",
            CLIENTS,
            &indexed_mix,
        ),
        ("browse, 3 filters, one query, SQL", CLIENTS, &sql_one),
        (
            "browse, 3 filters + page, a new query each time, SQL",
            CLIENTS,
            &sql_mix,
        ),
        (
            "portal /marketplace, visitor (SSR), index",
            PAGE_CLIENTS,
            &portal,
        ),
    ] {
        println!(
            "| {name} | {clients} | {} | {:.0} | {:.3} | {:.3} | {:.2} | {:.2} |",
            r.requests, r.rps, r.server_p50, r.server_p99, r.client_p50, r.client_p99
        );
    }
    Ok(())
}
