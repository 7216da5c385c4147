//! Marketplace inventory: servers as operators describe them (`/api/admin/marketplace/servers`),
//! validated and summarised (`check`), written with their prices, retired, and loaded in bulk.
//!
//! Price per day: a server has a total price for each duration it can be rented for (1, 7, 30
//! days...). Its price per day at a duration is total ÷ days; `min_price_per_day` is the lowest of
//! those, kept in the row whenever prices change. Browse filters and sorts on it.

use std::collections::BTreeMap;

use crate::infra::audit;
use crate::infra::db::{self, Pool as Db, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::patch::patched;
use crate::market::browse::{bump_generation, capacity, get_any, CATEGORIES, SCORE_TYPES};
use model::api::admin::{AccessInput, ServerInput, SpecsInput};
use model::market::MarketServer;
use model::money::micros_from_usd;

/// A validated server with everything derived (totals, summaries, prices in µUSD).
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    input: ServerInput,
    prices: Vec<(i64, i64)>,
    total_gb: i64,
    summary: String,
    disk_types: String,
    min_price_per_day: i64,
}

fn text(field: &str, value: &str, max: usize) -> ServiceResult<()> {
    let n = value.trim().chars().count();
    if n == 0 {
        return Err(ServiceError::invalid(format!("{field} is required")));
    }
    if n > max {
        return Err(ServiceError::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(())
}

fn positive(field: &str, value: i64) -> ServiceResult<()> {
    if value < 0 {
        return Err(ServiceError::invalid(format!(
            "{field} must not be negative"
        )));
    }
    Ok(())
}

/// Validates an operator's description and derives what browse needs (disk totals and
/// summaries, prices in µUSD, the lowest price per day).
pub(crate) fn check(input: ServerInput) -> ServiceResult<Checked> {
    check_place(&input)?;
    check_specs(&input.specs)?;
    if let Some(access) = &input.access {
        check_access(access)?;
    }
    positive("popularity_rank", input.popularity_rank)?;
    positive("setup_time_minutes", input.setup_time_minutes)?;
    let prices = check_prices(&input.prices)?;
    let disks = &input.specs.disks.config;
    let total_gb = disks.iter().map(|d| d.count * d.capacity_gb).sum();
    let summary = disks
        .iter()
        .map(|d| format!("{}x{} {}", d.count, capacity(d.capacity_gb), d.kind))
        .collect::<Vec<_>>()
        .join(" + ");
    let mut types: Vec<String> = disks.iter().map(|d| d.kind.to_lowercase()).collect();
    types.sort();
    types.dedup();
    let disk_types = format!(",{},", types.join(","));
    let min_price_per_day = prices.iter().map(|(d, p)| p / d).min().unwrap_or(0);
    Ok(Checked {
        input,
        prices,
        total_gb,
        summary,
        disk_types,
        min_price_per_day,
    })
}

/// A host name or an IPv4/IPv6 address, a TCP port and a Unix user name.
fn check_access(access: &AccessInput) -> ServiceResult<()> {
    let a = access.address.trim();
    let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':');
    if a.is_empty() || a.len() > 253 || !a.chars().all(host_chars) {
        return Err(ServiceError::invalid(
            "access.address must be a host name or an IP address, such as 203.0.113.10",
        ));
    }
    if !(1..=65535).contains(&access.port) {
        return Err(ServiceError::invalid(
            "access.port must be between 1 and 65535",
        ));
    }
    let u = &access.user;
    let user_ok = (1..=32).contains(&u.len())
        && u.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !user_ok {
        return Err(ServiceError::invalid(
            "access.user must be a Unix user name such as root or admin",
        ));
    }
    Ok(())
}

/// Names, location and category.
fn check_place(input: &ServerInput) -> ServiceResult<()> {
    text("name", &input.name, 100)?;
    text("region", &input.region, 100)?;
    text("city", &input.city, 100)?;
    text("datacenter", &input.datacenter, 100)?;
    text("model", &input.model, 200)?;
    if input.country.len() != 2 || !input.country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ServiceError::invalid(
            "country must be a two-letter upper-case code such as US",
        ));
    }
    if !CATEGORIES.contains(&input.category.as_str()) {
        return Err(ServiceError::invalid(format!(
            "category must be one of {}",
            CATEGORIES.join(", ")
        )));
    }
    Ok(())
}

/// CPU, RAM, disks, network and extras.
fn check_specs(specs: &SpecsInput) -> ServiceResult<()> {
    let cpu = &specs.cpu;
    text("specs.cpu.model", &cpu.model, 200)?;
    if !SCORE_TYPES.contains(&cpu.score_type.as_str()) {
        return Err(ServiceError::invalid(format!(
            "specs.cpu.score_type must be one of {}",
            SCORE_TYPES.join(", ")
        )));
    }
    if cpu.cores < 1 || cpu.threads < cpu.cores {
        return Err(ServiceError::invalid(
            "specs.cpu needs at least one core and threads ≥ cores",
        ));
    }
    positive("specs.cpu.score", cpu.score)?;
    text("specs.ram.type", &specs.ram.kind, 50)?;
    if specs.ram.capacity_gb < 1 {
        return Err(ServiceError::invalid(
            "specs.ram.capacity_gb must be at least 1",
        ));
    }
    positive("specs.ram.speed_mhz", specs.ram.speed_mhz)?;
    if specs.disks.config.is_empty() || specs.disks.config.len() > 32 {
        return Err(ServiceError::invalid(
            "specs.disks.config needs 1 to 32 entries",
        ));
    }
    for d in &specs.disks.config {
        if d.count < 1 || d.capacity_gb < 1 {
            return Err(ServiceError::invalid(
                "every disk needs count ≥ 1 and capacity_gb ≥ 1",
            ));
        }
        text("disk type", &d.kind, 30)?;
        text("disk interface", &d.interface, 50)?;
    }
    positive("specs.network.bandwidth_mbps", specs.network.bandwidth_mbps)?;
    if !specs.network.traffic_unlimited && specs.network.traffic_tb.is_none() {
        return Err(ServiceError::invalid(
            "specs.network needs traffic_tb unless traffic_unlimited",
        ));
    }
    positive("specs.additional.ipv4_count", specs.additional.ipv4_count)
}

/// `{"<days>": <total USD>}` as (days, µUSD).
fn check_prices(prices: &BTreeMap<String, f64>) -> ServiceResult<Vec<(i64, i64)>> {
    if prices.is_empty() || prices.len() > 20 {
        return Err(ServiceError::invalid("prices needs 1 to 20 durations"));
    }
    prices
        .iter()
        .map(|(days, usd)| {
            let days: i64 = days
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "price duration {days:?} must be a number of days, 1 to 3650"
                    ))
                })?;
            let micros = micros_from_usd(*usd)
                .map_err(|m| ServiceError::invalid(format!("price for {days} days: {m}")))?;
            Ok((days, micros))
        })
        .collect()
}

async fn write_prices(tx: &mut Tx<'_>, id: &str, prices: &[(i64, i64)]) -> ServiceResult<()> {
    sqlx::query("DELETE FROM marketplace_prices WHERE server_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (days, price) in prices {
        sqlx::query("INSERT INTO marketplace_prices (server_id, days, price) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(days)
            .bind(price)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const WRITE_COLUMNS: &str = "name, country, region, city, datacenter, model, is_vm, category, featured, popularity_rank,
    setup_time_minutes, cpu_model, cpu_cores, cpu_threads, cpu_score, cpu_score_type, ram_gb, ram_type,
    ram_speed_mhz, disks, total_storage_gb, disk_summary, disk_types, bandwidth_mbps, traffic_tb,
    traffic_unlimited, ipv4_count, ipv6_enabled, min_price_per_day, access_address, access_port, access_user";

/// Binds the 32 columns of `WRITE_COLUMNS`, in order.
fn bind_server<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    c: &'q Checked,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let i = &c.input;
    let s = &i.specs;
    q = q
        .bind(i.name.trim())
        .bind(&i.country)
        .bind(i.region.trim())
        .bind(i.city.trim())
        .bind(i.datacenter.trim())
        .bind(i.model.trim())
        .bind(i64::from(i.is_vm))
        .bind(&i.category)
        .bind(i64::from(i.featured))
        .bind(i.popularity_rank)
        .bind(i.setup_time_minutes)
        .bind(s.cpu.model.trim())
        .bind(s.cpu.cores)
        .bind(s.cpu.threads)
        .bind(s.cpu.score)
        .bind(&s.cpu.score_type)
        .bind(s.ram.capacity_gb)
        .bind(s.ram.kind.trim())
        .bind(s.ram.speed_mhz)
        .bind(serde_json::to_string(&s.disks.config).unwrap_or_else(|_| "[]".into()))
        .bind(c.total_gb)
        .bind(&c.summary)
        .bind(&c.disk_types)
        .bind(s.network.bandwidth_mbps)
        .bind(if s.network.traffic_unlimited {
            None
        } else {
            s.network.traffic_tb
        })
        .bind(i64::from(s.network.traffic_unlimited))
        .bind(s.additional.ipv4_count)
        .bind(i64::from(s.additional.ipv6_enabled))
        .bind(c.min_price_per_day)
        .bind(i.access.as_ref().map(|a| a.address.trim().to_owned()))
        .bind(i.access.as_ref().map_or(22, |a| a.port))
        .bind(i.access.as_ref().map_or("root", |a| a.user.as_str()));
    q
}

/// Inserts a server stamped with marketplace generation `generation` (`bump_generation`).
async fn insert_checked(tx: &mut Tx<'_>, c: &Checked, generation: i64) -> ServiceResult<String> {
    let id = db::new_id();
    let now = db::now_ms();
    let placeholders: Vec<String> = (5..=36).map(|n| format!("${n}")).collect();
    let sql = format!(
        "INSERT INTO marketplace_servers (id, status, created_at, updated_at, generation, {WRITE_COLUMNS})
         VALUES ($1, 'active', $2, $3, $4, {})",
        placeholders.join(", ")
    );
    bind_server(
        sqlx::query(&sql)
            .bind(&id)
            .bind(now)
            .bind(now)
            .bind(generation),
        c,
    )
    .execute(&mut **tx)
    .await?;
    write_prices(tx, &id, &c.prices).await?;
    Ok(id)
}

/// Adds a server to the marketplace (`actor_id`: the operator, for the audit log).
pub async fn create(db: &Db, actor_id: &str, input: ServerInput) -> ServiceResult<MarketServer> {
    let checked = check(input)?;
    let mut tx = crate::infra::db::begin(db).await?;
    let generation = bump_generation(&mut tx).await?;
    let id = insert_checked(&mut tx, &checked, generation).await?;
    audit::record(
        &mut tx,
        Some(actor_id),
        "server.create",
        "marketplace_server",
        Some(&id),
        serde_json::json!({"name": checked.input.name.trim()}),
    )
    .await?;
    tx.commit().await?;
    get_any(db, &id).await
}

/// Replaces a server's description and prices. Active rentals keep what they paid.
pub async fn update(
    db: &Db,
    actor_id: &str,
    id: &str,
    input: ServerInput,
) -> ServiceResult<MarketServer> {
    let checked = check(input)?;
    let cols: Vec<&str> = WRITE_COLUMNS.split(',').map(str::trim).collect();
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE marketplace_servers SET {}, updated_at = $33, generation = $34 WHERE id = $35 AND status = 'active'",
        sets.join(", ")
    );
    let mut tx = crate::infra::db::begin(db).await?;
    let generation = bump_generation(&mut tx).await?;
    let done = bind_server(sqlx::query(&sql), &checked)
        .bind(db::now_ms())
        .bind(generation)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Server"));
    }
    write_prices(&mut tx, id, &checked.prices).await?;
    audit::record(
        &mut tx,
        Some(actor_id),
        "server.update",
        "marketplace_server",
        Some(id),
        serde_json::json!({"name": checked.input.name.trim()}),
    )
    .await?;
    tx.commit().await?;
    get_any(db, id).await
}

/// Changes the active server `id` by a JSON merge patch (RFC 7386): what the patch leaves out
/// keeps its value, `null` clears what may be empty (`access`), objects merge key by key (a
/// price per duration too: `{"prices": {"7": null}}` drops the week), arrays are replaced. The
/// result is checked whole, like a new server. `PUT` and `PATCH` both come here, so an update
/// never wipes what it does not mention (a repricing once erased a server's SSH access point).
pub async fn patch(
    db: &Db,
    actor_id: &str,
    id: &str,
    patch: serde_json::Value,
) -> ServiceResult<MarketServer> {
    let input: ServerInput = patched(Some(stored(db, id).await?), patch, "server")?;
    update(db, actor_id, id, input).await
}

/// The active server `id` as the input that would make it (`ServerInput`'s shape).
async fn stored(db: &Db, id: &str) -> ServiceResult<serde_json::Value> {
    #[derive(sqlx::FromRow)]
    struct Row {
        name: String,
        country: String,
        region: String,
        city: String,
        datacenter: String,
        model: String,
        is_vm: i64,
        category: String,
        featured: i64,
        popularity_rank: i64,
        setup_time_minutes: i64,
        cpu_model: String,
        cpu_cores: i64,
        cpu_threads: i64,
        cpu_score: i64,
        cpu_score_type: String,
        ram_gb: i64,
        ram_type: String,
        ram_speed_mhz: i64,
        disks: String,
        bandwidth_mbps: i64,
        traffic_tb: Option<i64>,
        traffic_unlimited: i64,
        ipv4_count: i64,
        ipv6_enabled: i64,
        access_address: Option<String>,
        access_port: i64,
        access_user: String,
    }
    let r: Row = sqlx::query_as(
        "SELECT name, country, region, city, datacenter, model, is_vm, category, featured,
            popularity_rank, setup_time_minutes, cpu_model, cpu_cores, cpu_threads, cpu_score,
            cpu_score_type, ram_gb, ram_type, ram_speed_mhz, disks, bandwidth_mbps, traffic_tb,
            traffic_unlimited, ipv4_count, ipv6_enabled, access_address, access_port, access_user
         FROM marketplace_servers WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("Server"))?;
    let prices: Vec<(i64, i64)> =
        sqlx::query_as("SELECT days, price FROM marketplace_prices WHERE server_id = $1")
            .bind(id)
            .fetch_all(db)
            .await?;
    let prices: serde_json::Map<String, serde_json::Value> = prices
        .into_iter()
        .map(|(days, micros)| (days.to_string(), serde_json::json!(micros as f64 / 1e6)))
        .collect();
    let disks: serde_json::Value =
        serde_json::from_str(&r.disks).unwrap_or_else(|_| serde_json::json!([]));
    Ok(serde_json::json!({
        "name": r.name, "country": r.country, "region": r.region, "city": r.city,
        "datacenter": r.datacenter, "model": r.model, "is_vm": r.is_vm != 0,
        "category": r.category, "featured": r.featured != 0,
        "popularity_rank": r.popularity_rank, "setup_time_minutes": r.setup_time_minutes,
        "specs": {
            "cpu": { "model": r.cpu_model, "cores": r.cpu_cores, "threads": r.cpu_threads,
                     "score": r.cpu_score, "score_type": r.cpu_score_type },
            "ram": { "capacity_gb": r.ram_gb, "type": r.ram_type, "speed_mhz": r.ram_speed_mhz },
            "disks": { "config": disks },
            "network": { "bandwidth_mbps": r.bandwidth_mbps, "traffic_tb": r.traffic_tb,
                         "traffic_unlimited": r.traffic_unlimited != 0 },
            "additional": { "ipv4_count": r.ipv4_count, "ipv6_enabled": r.ipv6_enabled != 0 },
        },
        "prices": prices,
        "access": r.access_address.map(|address| serde_json::json!({
            "address": address, "port": r.access_port, "user": r.access_user,
        })),
    }))
}

/// Takes a server off the marketplace for good. Current rentals run to their end.
pub async fn retire(db: &Db, actor_id: &str, id: &str) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let generation = bump_generation(&mut tx).await?;
    let done = sqlx::query("UPDATE marketplace_servers SET status = 'retired', updated_at = $1, generation = $2 WHERE id = $3 AND status = 'active'")
        .bind(db::now_ms())
        .bind(generation)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Server"));
    }
    audit::record(
        &mut tx,
        Some(actor_id),
        "server.retire",
        "marketplace_server",
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts `servers` in batches of one transaction each. Returns how many were added.
pub async fn load(db: &Db, servers: Vec<ServerInput>) -> ServiceResult<usize> {
    let mut added = 0;
    for batch in servers.chunks(500) {
        let mut tx = crate::infra::db::begin(db).await?;
        let generation = bump_generation(&mut tx).await?;
        for s in batch {
            let checked = check(s.clone())?;
            insert_checked(&mut tx, &checked, generation).await?;
            added += 1;
        }
        tx.commit().await?;
    }
    db::analyze(db).await?;
    Ok(added)
}

/// How many servers the marketplace has (any state).
pub async fn count(db: &Db) -> ServiceResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM marketplace_servers")
            .fetch_one(db)
            .await?,
    )
}
