//! Metering benchmark: one tick over N running instances.
//!
//! `cargo run --release -p server --example bench_meter -- <sqlite|postgres://...> [instances] [per_user]`
//!
//! Loads `instances` running instances (default 100,000) owned by `instances / per_user` users
//! (default 10 each) straight into a fresh database, then times: the first tick (every instance
//! owes one minute), the same tick again (nothing due), a tick an hour late (catch-up), and five
//! further one-minute ticks. Results go to docs/BENCHMARKS.md by hand.

use std::time::Instant;

use domain::compute::meter::{self, Rules, MINUTE_MS};
use domain::infra::db::{self, Backend};

const T0: i64 = 1_900_000_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).map(String::as_str).unwrap_or("sqlite");
    let n: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let per_user: i64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = std::env::temp_dir().join(format!("hangar-bench-meter-{}", db::new_id()));
    std::fs::create_dir_all(&dir)?;
    let url = if target == "sqlite" {
        format!("sqlite://{}", dir.join("bench.db").display())
    } else {
        // A fresh database on the given server.
        let name = format!("bench_meter_{}", db::new_id());
        let admin = db::connect(target).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        format!("{}/{name}", target.trim_end_matches('/'))
    };
    let backend = Backend::of_url(&url);
    let pool = db::connect(&url).await?;
    db::migrate(&pool).await?;

    let users = (n + per_user - 1) / per_user;
    let hex = |col: &str| match backend {
        Backend::Sqlite => format!("printf('%024x', {col})"),
        Backend::Postgres => format!("lpad(to_hex({col}), 24, '0')"),
    };
    let started = Instant::now();
    sqlx::query("INSERT INTO plans (id, slug, name, kind, vcpu, memory_mb, disk_gb, price_hourly_micros, created_at) VALUES ('p', 'nano', 'Nano', 'vm', 1, 512, 10, 4200, 0)")
        .execute(&pool)
        .await?;
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO users (id, email, username, password_hash, balance_micros, created_at)
         SELECT {}, 'u' || i || '@bench', 'u' || i, 'x', 1000000000, 0 FROM n",
        hex("i")
    ))
    .bind(users)
    .execute(&pool)
    .await?;
    // Their opening balance as ledger rows, so the cached balances equal the ledger.
    sqlx::query(
        "INSERT INTO ledger (id, user_id, amount_micros, kind, description, created_at)
         SELECT 'c' || substr(id, 2), id, 1000000000, 'credit', 'bench', 0 FROM users",
    )
    .execute(&pool)
    .await?;
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO instances (id, user_id, name, kind, plan_id, image, region, vcpu, memory_mb, disk_gb,
             price_hourly_micros, state, seed_key, metered_until, metered_minutes, created_at, updated_at)
         SELECT {}, {}, 'vm' || i, 'vm', 'p', 'debian-12', 'local', 1, 512, 10,
             4200 + (i % 7) * 100, 'running', 'k', $2, 0, 0, 0 FROM n",
        hex("i + 1000000000"),
        hex(&format!("((i - 1) / {per_user}) + 1"))
    ))
    .bind(n)
    .bind(T0)
    .execute(&pool)
    .await?;
    db::analyze(&pool).await?;
    println!(
        "loaded {n} running instances for {users} users in {:.1} s ({target})",
        started.elapsed().as_secs_f64()
    );

    let rules = Rules {
        grace_minutes: 60,
        runway_hours: 24,
        min_runtime_minutes: 60,
        retention_days: 14,
    };
    let row = |label: &str, secs: f64| println!("| {label} | {:.0} ms |", secs * 1000.0);
    let time = |at: i64| {
        let pool = pool.clone();
        async move {
            let t = Instant::now();
            let report = meter::tick(&pool, at, rules).await.expect("tick");
            (t.elapsed().as_secs_f64(), report)
        }
    };
    let (secs, report) = time(T0 + MINUTE_MS).await;
    assert_eq!(report.charged as i64, users, "every user charged once");
    row("first tick: every instance owes 1 minute", secs);
    let (secs, report) = time(T0 + MINUTE_MS + 1).await;
    assert_eq!(report.charged, 0);
    row("same minute again: nothing due", secs);
    let (secs, _) = time(T0 + 61 * MINUTE_MS).await;
    row("an hour late: 60 minutes caught up in one tick", secs);
    let mut steady = Vec::new();
    for m in 62..67 {
        steady.push(time(T0 + m * MINUTE_MS).await.0);
    }
    steady.sort_by(f64::total_cmp);
    row("steady state, median of 5 one-minute ticks", steady[2]);
    row("steady state, slowest of 5", steady[4]);

    let mismatches = domain::money::ledger::mismatches(&pool).await?;
    assert!(
        mismatches.is_empty(),
        "cached balances equal the ledger: {mismatches:?}"
    );
    let minutes: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(metered_minutes) AS BIGINT) FROM instances")
            .fetch_one(&pool)
            .await?;
    assert_eq!(minutes, n * 66, "every instance billed exactly 66 minutes");
    println!("checked: ledger consistent, {minutes} instance-minutes billed exactly once");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
