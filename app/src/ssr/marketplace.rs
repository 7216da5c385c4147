//! The marketplace: inventory of rentable servers, browsing with filters, operator management,
//! and the demo catalog generator.
//!
//! Price per day: a server has a total price for each duration it can be rented for (1, 7, 30
//! days...). Its price per day at a duration is total ÷ days; `min_price_per_day` is the lowest of
//! those, kept in the row whenever prices change. `max_price_per_day` filters on it and the price
//! sorts use it.

use std::collections::BTreeMap;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Deserialize;

use super::{
    db::{self, Pool as Db, Tx},
    error::{ServiceError, ServiceResult},
};
use crate::{
    market::{
        AdditionalSpec, CpuSpec, DiskConfig, DisksSpec, MarketServer, NetworkSpec, Page, Pricing,
        RamSpec, Specs,
    },
    money::{micros_from_usd, usd2},
};

pub const CATEGORIES: &[&str] = &["compute", "memory", "storage", "general", "gpu"];
pub const SCORE_TYPES: &[&str] = &["passmark", "geekbench_single", "geekbench_multi"];
pub const DEFAULT_LIMIT: i64 = 24;
pub const MAX_LIMIT: i64 = 200;

/// A server as an operator describes it (`POST/PUT /api/admin/marketplace/servers`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServerInput {
    pub name: String,
    /// ISO 3166 alpha-2, e.g. `US`.
    pub country: String,
    pub region: String,
    pub city: String,
    pub datacenter: String,
    pub model: String,
    #[serde(default)]
    pub is_vm: bool,
    pub category: String,
    #[serde(default)]
    pub featured: bool,
    #[serde(default = "default_rank")]
    pub popularity_rank: i64,
    #[serde(default = "default_setup")]
    pub setup_time_minutes: i64,
    pub specs: SpecsInput,
    /// Total USD price per rental duration in days, e.g. `{"1": 12, "7": 70, "30": 270}`.
    pub prices: BTreeMap<String, f64>,
}

fn default_rank() -> i64 {
    1000
}
fn default_setup() -> i64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SpecsInput {
    pub cpu: CpuSpec,
    pub ram: RamSpec,
    pub disks: DisksInput,
    pub network: NetworkInput,
    pub additional: AdditionalSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DisksInput {
    pub config: Vec<DiskConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NetworkInput {
    pub bandwidth_mbps: i64,
    pub traffic_tb: Option<i64>,
    #[serde(default)]
    pub traffic_unlimited: bool,
}

/// A validated server with everything derived (totals, summaries, prices in µUSD).
#[derive(Debug, Clone)]
struct Checked {
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

/// `1000` → `1TB`, `480` → `480GB`, `1920` → `1.92TB`.
pub fn capacity(gb: i64) -> String {
    if gb >= 1000 {
        let tb = gb as f64 / 1000.0;
        let s = format!("{tb:.2}");
        format!("{}TB", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{gb}GB")
    }
}

/// `10000` → `10 Gbps`, `500` → `500 Mbps`.
pub fn bandwidth(mbps: i64) -> String {
    if mbps >= 1000 && mbps % 1000 == 0 {
        format!("{} Gbps", mbps / 1000)
    } else if mbps >= 1000 {
        format!("{:.1} Gbps", mbps as f64 / 1000.0)
    } else {
        format!("{mbps} Mbps")
    }
}

fn check(input: ServerInput) -> ServiceResult<Checked> {
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
    let cpu = &input.specs.cpu;
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
    text("specs.ram.type", &input.specs.ram.kind, 50)?;
    if input.specs.ram.capacity_gb < 1 {
        return Err(ServiceError::invalid(
            "specs.ram.capacity_gb must be at least 1",
        ));
    }
    positive("specs.ram.speed_mhz", input.specs.ram.speed_mhz)?;
    if input.specs.disks.config.is_empty() || input.specs.disks.config.len() > 32 {
        return Err(ServiceError::invalid(
            "specs.disks.config needs 1 to 32 entries",
        ));
    }
    for d in &input.specs.disks.config {
        if d.count < 1 || d.capacity_gb < 1 {
            return Err(ServiceError::invalid(
                "every disk needs count ≥ 1 and capacity_gb ≥ 1",
            ));
        }
        text("disk type", &d.kind, 30)?;
        text("disk interface", &d.interface, 50)?;
    }
    positive(
        "specs.network.bandwidth_mbps",
        input.specs.network.bandwidth_mbps,
    )?;
    if !input.specs.network.traffic_unlimited && input.specs.network.traffic_tb.is_none() {
        return Err(ServiceError::invalid(
            "specs.network needs traffic_tb unless traffic_unlimited",
        ));
    }
    positive(
        "specs.additional.ipv4_count",
        input.specs.additional.ipv4_count,
    )?;
    positive("popularity_rank", input.popularity_rank)?;
    positive("setup_time_minutes", input.setup_time_minutes)?;
    if input.prices.is_empty() || input.prices.len() > 20 {
        return Err(ServiceError::invalid("prices needs 1 to 20 durations"));
    }
    let mut prices = Vec::new();
    for (days, usd) in &input.prices {
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
        prices.push((days, micros));
    }
    let total_gb = input
        .specs
        .disks
        .config
        .iter()
        .map(|d| d.count * d.capacity_gb)
        .sum();
    let summary = input
        .specs
        .disks
        .config
        .iter()
        .map(|d| format!("{}x{} {}", d.count, capacity(d.capacity_gb), d.kind))
        .collect::<Vec<_>>()
        .join(" + ");
    let mut types: Vec<String> = input
        .specs
        .disks
        .config
        .iter()
        .map(|d| d.kind.to_lowercase())
        .collect();
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
    traffic_unlimited, ipv4_count, ipv6_enabled, min_price_per_day";

/// Binds the 29 columns of `WRITE_COLUMNS`, in order.
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
        .bind(c.min_price_per_day);
    q
}

async fn insert_checked(tx: &mut Tx<'_>, c: &Checked) -> ServiceResult<String> {
    let id = db::new_id();
    let now = db::now_ms();
    let placeholders: Vec<String> = (4..=32).map(|n| format!("${n}")).collect();
    let sql = format!(
        "INSERT INTO marketplace_servers (id, status, created_at, updated_at, {WRITE_COLUMNS})
         VALUES ($1, 'active', $2, $3, {})",
        placeholders.join(", ")
    );
    bind_server(sqlx::query(&sql).bind(&id).bind(now).bind(now), c)
        .execute(&mut **tx)
        .await?;
    write_prices(tx, &id, &c.prices).await?;
    Ok(id)
}

/// Adds a server to the marketplace.
pub async fn create(db: &Db, input: ServerInput) -> ServiceResult<MarketServer> {
    let checked = check(input)?;
    let mut tx = db.begin().await?;
    let id = insert_checked(&mut tx, &checked).await?;
    bump_generation(&mut tx).await?;
    tx.commit().await?;
    get_any(db, &id).await
}

/// Replaces a server's description and prices. Active rentals keep what they paid.
pub async fn update(db: &Db, id: &str, input: ServerInput) -> ServiceResult<MarketServer> {
    let checked = check(input)?;
    let cols: Vec<&str> = WRITE_COLUMNS.split(',').map(str::trim).collect();
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE marketplace_servers SET {}, updated_at = $30 WHERE id = $31 AND status = 'active'",
        sets.join(", ")
    );
    let mut tx = db.begin().await?;
    let done = bind_server(sqlx::query(&sql), &checked)
        .bind(db::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Server"));
    }
    write_prices(&mut tx, id, &checked.prices).await?;
    bump_generation(&mut tx).await?;
    tx.commit().await?;
    get_any(db, id).await
}

/// Takes a server off the marketplace for good. Current rentals run to their end.
pub async fn retire(db: &Db, id: &str) -> ServiceResult<()> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("UPDATE marketplace_servers SET status = 'retired', updated_at = $1 WHERE id = $2 AND status = 'active'")
        .bind(db::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Server"));
    }
    bump_generation(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading

pub(crate) const READ_COLUMNS: &str = "s.id, s.name, s.country, s.region, s.city, s.datacenter, s.model, s.is_vm,
    s.category, s.featured, s.popularity_rank, s.setup_time_minutes, s.cpu_model, s.cpu_cores, s.cpu_threads,
    s.cpu_score, s.cpu_score_type, s.ram_gb, s.ram_type, s.ram_speed_mhz, s.disks, s.total_storage_gb,
    s.disk_summary, s.bandwidth_mbps, s.traffic_tb, s.traffic_unlimited, s.ipv4_count, s.ipv6_enabled,
    s.min_price_per_day";

#[derive(sqlx::FromRow)]
pub(crate) struct ServerRow {
    id: String,
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
    total_storage_gb: i64,
    disk_summary: String,
    bandwidth_mbps: i64,
    traffic_tb: Option<i64>,
    traffic_unlimited: i64,
    ipv4_count: i64,
    ipv6_enabled: i64,
    min_price_per_day: i64,
}

impl ServerRow {
    pub(crate) fn id_ref(&self) -> &str {
        &self.id
    }

    pub(crate) fn into_server(self, prices: &[(i64, i64)]) -> MarketServer {
        let mut p = BTreeMap::new();
        let mut tiers = BTreeMap::new();
        for (days, price) in prices {
            p.insert(days.to_string(), usd2(*price));
            tiers.insert(days.to_string(), usd2(price / days));
        }
        MarketServer {
            pricing: Pricing {
                prices: p,
                price_tiers: tiers,
                currency: "USD".into(),
                durations: prices.iter().map(|(d, _)| *d).collect(),
                min_price_per_day: usd2(self.min_price_per_day),
            },
            specs: Specs {
                cpu: CpuSpec {
                    model: self.cpu_model,
                    cores: self.cpu_cores,
                    threads: self.cpu_threads,
                    score: self.cpu_score,
                    score_type: self.cpu_score_type,
                },
                ram: RamSpec {
                    capacity_gb: self.ram_gb,
                    kind: self.ram_type,
                    speed_mhz: self.ram_speed_mhz,
                },
                disks: DisksSpec {
                    config: serde_json::from_str(&self.disks).unwrap_or_default(),
                    total_gb: self.total_storage_gb,
                    summary: self.disk_summary,
                },
                network: NetworkSpec {
                    bandwidth_mbps: self.bandwidth_mbps,
                    bandwidth_formatted: bandwidth(self.bandwidth_mbps),
                    traffic_tb: self.traffic_tb,
                    traffic_unlimited: self.traffic_unlimited != 0,
                },
                additional: AdditionalSpec {
                    ipv4_count: self.ipv4_count,
                    ipv6_enabled: self.ipv6_enabled != 0,
                },
            },
            id: self.id,
            name: self.name,
            country: self.country,
            region: self.region,
            city: self.city,
            datacenter: self.datacenter,
            model: self.model,
            is_vm: self.is_vm != 0,
            category: self.category,
            featured: self.featured != 0,
            popularity_rank: self.popularity_rank,
            setup_time_minutes: self.setup_time_minutes,
        }
    }
}

/// Prices of the given servers, keyed by server id, durations ascending.
pub(crate) async fn prices_of(
    db: &Db,
    ids: &[String],
) -> ServiceResult<BTreeMap<String, Vec<(i64, i64)>>> {
    let mut out: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT server_id, days, price FROM marketplace_prices WHERE server_id IN ({}) ORDER BY server_id, days",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for (sid, days, price) in q.fetch_all(db).await? {
            out.entry(sid).or_default().push((days, price));
        }
    }
    Ok(out)
}

async fn assemble(db: &Db, rows: Vec<ServerRow>) -> ServiceResult<Vec<MarketServer>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let prices = prices_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let p = prices.get(&r.id).cloned().unwrap_or_default();
            r.into_server(&p)
        })
        .collect())
}

/// A server by id whatever its state (rentals show servers that were rented or retired since).
pub async fn get_any(db: &Db, id: &str) -> ServiceResult<MarketServer> {
    let row: Option<ServerRow> = sqlx::query_as(&format!(
        "SELECT {READ_COLUMNS} FROM marketplace_servers s WHERE s.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    let row = row.ok_or(ServiceError::NotFound("Server"))?;
    Ok(assemble(db, vec![row]).await?.remove(0))
}

/// A server that is on the marketplace now (active, not rented); 404 otherwise.
pub async fn get_available(db: &Db, id: &str) -> ServiceResult<MarketServer> {
    let row: Option<ServerRow> = sqlx::query_as(&format!(
        "SELECT {READ_COLUMNS} FROM marketplace_servers s WHERE s.id = $1 AND s.status = 'active'
         AND (s.rented_until IS NULL OR s.rented_until <= $2)"
    ))
    .bind(id)
    .bind(db::now_ms())
    .fetch_optional(db)
    .await?;
    let row = row.ok_or(ServiceError::NotFound("Server"))?;
    Ok(assemble(db, vec![row]).await?.remove(0))
}

/// Browse filters (reference 001) plus sort and pagination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub country: Option<String>,
    pub region: Option<String>,
    pub max_price_per_day: Option<i64>,
    pub available_durations: Vec<i64>,
    pub min_cpu_cores: Option<i64>,
    pub min_cpu_score: Option<i64>,
    pub cpu_score_type: Option<String>,
    pub min_ram_gb: Option<i64>,
    pub ram_types: Vec<String>,
    pub min_total_storage_gb: Option<i64>,
    pub disk_types: Vec<String>,
    pub min_bandwidth_mbps: Option<i64>,
    pub min_traffic_tb: Option<i64>,
    pub unlimited_traffic_only: bool,
    pub category: Option<String>,
    pub featured_only: bool,
    pub sort: Sort,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Featured first, then by popularity rank.
    #[default]
    Popularity,
    PriceAsc,
    PriceDesc,
    CpuScoreDesc,
    RamDesc,
    StorageDesc,
    Newest,
}

impl Sort {
    pub const ALL: &'static [(&'static str, Sort)] = &[
        ("popularity", Sort::Popularity),
        ("price_asc", Sort::PriceAsc),
        ("price_desc", Sort::PriceDesc),
        ("cpu_score_desc", Sort::CpuScoreDesc),
        ("ram_desc", Sort::RamDesc),
        ("storage_desc", Sort::StorageDesc),
        ("newest", Sort::Newest),
    ];

    fn order_by(self) -> &'static str {
        match self {
            Sort::Popularity => "s.featured DESC, s.popularity_rank ASC, s.id ASC",
            Sort::PriceAsc => "s.min_price_per_day ASC, s.id ASC",
            Sort::PriceDesc => "s.min_price_per_day DESC, s.id ASC",
            Sort::CpuScoreDesc => "s.cpu_score DESC, s.id ASC",
            Sort::RamDesc => "s.ram_gb DESC, s.id ASC",
            Sort::StorageDesc => "s.total_storage_gb DESC, s.id ASC",
            Sort::Newest => "s.created_at DESC, s.id DESC",
        }
    }
}

impl Filters {
    /// Parses a raw query string. Arrays may repeat the key (`a=1&a=2`), use brackets
    /// (`a[]=1`) or commas (`a=1,2`). Unknown keys are ignored; malformed values are errors.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut f = Filters {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        for (key, value) in url_pairs(query) {
            let key = key.trim_end_matches("[]");
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let int = |v: &str| -> Result<i64, String> {
                let n: f64 = v
                    .parse()
                    .map_err(|_| format!("{key} must be a number, got {v:?}"))?;
                if !n.is_finite() || n < 0.0 {
                    return Err(format!("{key} must not be negative"));
                }
                Ok(n.ceil() as i64)
            };
            let flag = |v: &str| -> Result<bool, String> {
                match v {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(format!("{key} must be true or false")),
                }
            };
            let list = |v: &str| -> Vec<String> {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            match key {
                "country" => f.country = Some(value.to_uppercase()),
                "region" => f.region = Some(value.to_owned()),
                "max_price_per_day" => {
                    let usd: f64 = value
                        .parse()
                        .map_err(|_| "max_price_per_day must be a number".to_owned())?;
                    f.max_price_per_day =
                        Some(micros_from_usd(usd).map_err(|m| format!("max_price_per_day: {m}"))?);
                }
                "available_durations" => {
                    for d in list(value) {
                        let d = int(&d)?;
                        if d < 1 {
                            return Err("available_durations must be at least 1 day".into());
                        }
                        f.available_durations.push(d);
                    }
                }
                "min_cpu_cores" => f.min_cpu_cores = Some(int(value)?),
                "min_cpu_score" => f.min_cpu_score = Some(int(value)?),
                "cpu_score_type" => {
                    if !SCORE_TYPES.contains(&value) {
                        return Err(format!(
                            "cpu_score_type must be one of {}",
                            SCORE_TYPES.join(", ")
                        ));
                    }
                    f.cpu_score_type = Some(value.to_owned());
                }
                "min_ram_gb" => f.min_ram_gb = Some(int(value)?),
                "ram_types" => f
                    .ram_types
                    .extend(list(value).into_iter().map(|s| s.to_lowercase())),
                "min_total_storage_gb" => f.min_total_storage_gb = Some(int(value)?),
                "disk_types" => f
                    .disk_types
                    .extend(list(value).into_iter().map(|s| s.to_lowercase())),
                "min_bandwidth_mbps" => f.min_bandwidth_mbps = Some(int(value)?),
                "min_traffic_tb" => f.min_traffic_tb = Some(int(value)?),
                "unlimited_traffic_only" => f.unlimited_traffic_only = flag(value)?,
                "category" => {
                    if !CATEGORIES.contains(&value) {
                        return Err(format!("category must be one of {}", CATEGORIES.join(", ")));
                    }
                    f.category = Some(value.to_owned());
                }
                "featured_only" => f.featured_only = flag(value)?,
                "sort" => {
                    f.sort = Sort::ALL
                        .iter()
                        .find(|(n, _)| *n == value)
                        .map(|(_, s)| *s)
                        .ok_or_else(|| {
                            format!(
                                "sort must be one of {}",
                                Sort::ALL
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })?
                }
                "limit" => {
                    let l = int(value)?;
                    if !(1..=MAX_LIMIT).contains(&l) {
                        return Err(format!("limit must be between 1 and {MAX_LIMIT}"));
                    }
                    f.limit = l;
                }
                "offset" => f.offset = int(value)?,
                _ => {}
            }
        }
        f.available_durations.sort_unstable();
        f.available_durations.dedup();
        if f.min_cpu_score.is_some() && f.cpu_score_type.is_none() {
            // A score means nothing without its benchmark; PassMark is the common default.
            f.cpu_score_type = Some("passmark".into());
        }
        Ok(f)
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The browse-result generation: bumped by [`bump_generation`] in the same transaction as every
/// change that can alter browse results (rentals starting, extending, ending; inventory edits).
pub async fn generation<'e, E>(exec: E) -> ServiceResult<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'marketplace'")
            .fetch_one(exec)
            .await?,
    )
}

pub async fn bump_generation(tx: &mut Tx<'_>) -> ServiceResult<()> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'marketplace'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Browse results cached per filter set for the current generation. Exact: an entry is only
/// served while the generation it was computed under is current, and the generation moves in the
/// same transaction as any change. A server whose rental expired shows up again when the expiry
/// sweep runs (`sweep_interval_secs`); renting it before then works too.
pub struct BrowseCache {
    capacity: usize,
    /// The generation the entries were computed at, and the entries by normalised filters.
    inner: std::sync::Mutex<(i64, std::collections::HashMap<String, CachedPage>)>,
}

type CachedPage = std::sync::Arc<(Vec<MarketServer>, Page)>;

impl std::fmt::Debug for BrowseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowseCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl BrowseCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: std::sync::Mutex::new((i64::MIN, Default::default())),
        }
    }

    fn get(&self, generation: i64, key: &str) -> Option<CachedPage> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.0 == generation)
            .then(|| inner.1.get(key).cloned())
            .flatten()
    }

    fn put(&self, generation: i64, key: String, value: CachedPage) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if generation > inner.0 {
            *inner = (generation, Default::default());
        }
        if generation == inner.0 {
            if inner.1.len() >= self.capacity {
                inner.1.clear();
            }
            inner.1.insert(key, value);
        }
    }
}

/// Servers on the marketplace now that match `f`, and how many match in all, through `cache`.
pub async fn browse(
    db: &Db,
    cache: &BrowseCache,
    f: &Filters,
) -> ServiceResult<(Vec<MarketServer>, Page)> {
    let generation = generation(db).await?;
    let key = format!("{f:?}");
    if let Some(hit) = cache.get(generation, &key) {
        return Ok((*hit).clone());
    }
    let result = browse_uncached(db, f).await?;
    cache.put(generation, key, std::sync::Arc::new(result.clone()));
    Ok(result)
}

/// A value bound to a browse query.
enum Value {
    I(i64),
    S(String),
}

/// WHERE conditions and their values; `$1` is reserved for the current time.
struct Where {
    conds: Vec<String>,
    vals: Vec<Value>,
}

impl Where {
    /// A new placeholder for `v`.
    fn param(&mut self, v: Value) -> String {
        self.vals.push(v);
        format!("${}", self.vals.len() + 1)
    }

    /// Adds `sql` with its `?` replaced by a placeholder for `v`.
    fn cond(&mut self, sql: &str, v: Value) {
        let p = self.param(v);
        self.conds.push(sql.replace('?', &p));
    }
}

/// Binds every value of a [`Where`], in order, to any sqlx query type.
macro_rules! bind_values {
    ($query:expr, $vals:expr) => {{
        let mut q = $query;
        for v in $vals {
            q = match v {
                Value::I(i) => q.bind(*i),
                Value::S(s) => q.bind(s.clone()),
            };
        }
        q
    }};
}

/// Servers on the marketplace now that match `f`, and how many match in all.
pub async fn browse_uncached(db: &Db, f: &Filters) -> ServiceResult<(Vec<MarketServer>, Page)> {
    let mut w = Where {
        conds: vec![
            "s.status = 'active'".into(),
            "(s.rented_until IS NULL OR s.rented_until <= $1)".into(),
        ],
        vals: Vec::new(),
    };
    if let Some(c) = &f.country {
        w.cond("s.country = ?", Value::S(c.clone()));
    }
    if let Some(r) = &f.region {
        w.cond("s.region = ?", Value::S(r.clone()));
    }
    if let Some(m) = f.max_price_per_day {
        w.cond("s.min_price_per_day <= ?", Value::I(m));
    }
    if !f.available_durations.is_empty() {
        let ps: Vec<String> = f
            .available_durations
            .iter()
            .map(|d| w.param(Value::I(*d)))
            .collect();
        let n = w.param(Value::I(f.available_durations.len() as i64));
        w.conds.push(format!(
            "(SELECT COUNT(*) FROM marketplace_prices mp WHERE mp.server_id = s.id AND mp.days IN ({})) = {n}",
            ps.join(", ")
        ));
    }
    if let Some(v) = f.min_cpu_cores {
        w.cond("s.cpu_cores >= ?", Value::I(v));
    }
    if let Some(v) = f.min_cpu_score {
        w.cond("s.cpu_score >= ?", Value::I(v));
        if let Some(t) = &f.cpu_score_type {
            w.cond("s.cpu_score_type = ?", Value::S(t.clone()));
        }
    }
    if let Some(v) = f.min_ram_gb {
        w.cond("s.ram_gb >= ?", Value::I(v));
    }
    if !f.ram_types.is_empty() {
        let ps: Vec<String> = f
            .ram_types
            .iter()
            .map(|t| w.param(Value::S(t.clone())))
            .collect();
        w.conds
            .push(format!("LOWER(s.ram_type) IN ({})", ps.join(", ")));
    }
    if let Some(v) = f.min_total_storage_gb {
        w.cond("s.total_storage_gb >= ?", Value::I(v));
    }
    if !f.disk_types.is_empty() {
        let ps: Vec<String> = f
            .disk_types
            .iter()
            .map(|t| {
                format!(
                    "s.disk_types LIKE {}",
                    w.param(Value::S(format!("%,{t},%")))
                )
            })
            .collect();
        w.conds.push(format!("({})", ps.join(" OR ")));
    }
    if let Some(v) = f.min_bandwidth_mbps {
        w.cond("s.bandwidth_mbps >= ?", Value::I(v));
    }
    if let Some(v) = f.min_traffic_tb {
        w.cond(
            "(s.traffic_unlimited = 1 OR s.traffic_tb >= ?)",
            Value::I(v),
        );
    }
    if f.unlimited_traffic_only {
        w.conds.push("s.traffic_unlimited = 1".into());
    }
    if let Some(c) = &f.category {
        w.cond("s.category = ?", Value::S(c.clone()));
    }
    if f.featured_only {
        w.conds.push("s.featured = 1".into());
    }
    let where_ = w.conds.join(" AND ");
    let now = db::now_ms();

    let count_sql = format!("SELECT COUNT(*) FROM marketplace_servers s WHERE {where_}");
    let total = bind_values!(sqlx::query_scalar::<_, i64>(&count_sql).bind(now), &w.vals)
        .fetch_one(db)
        .await?;

    let limit_p = w.vals.len() + 2;
    let list_sql = format!(
        "SELECT {READ_COLUMNS} FROM marketplace_servers s WHERE {where_} ORDER BY {} LIMIT ${limit_p} OFFSET ${}",
        f.sort.order_by(),
        limit_p + 1
    );
    let rows = bind_values!(sqlx::query_as::<_, ServerRow>(&list_sql).bind(now), &w.vals)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(db)
        .await?;
    let servers = assemble(db, rows).await?;
    let next_offset = (f.offset + f.limit < total).then_some(f.offset + f.limit);
    Ok((
        servers,
        Page {
            total,
            limit: f.limit,
            offset: f.offset,
            next_offset,
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Demo catalog

const LOCATIONS: &[(&str, &str, &str, &str)] = &[
    ("US", "us-east", "New York", "NYC"),
    ("US", "us-east", "Ashburn", "IAD"),
    ("US", "us-west", "Los Angeles", "LAX"),
    ("US", "us-central", "Dallas", "DFW"),
    ("CA", "ca-east", "Montreal", "YUL"),
    ("DE", "eu-central", "Frankfurt", "FRA"),
    ("DE", "eu-central", "Falkenstein", "FSN"),
    ("NL", "eu-west", "Amsterdam", "AMS"),
    ("GB", "eu-west", "London", "LON"),
    ("FR", "eu-west", "Paris", "PAR"),
    ("FI", "eu-north", "Helsinki", "HEL"),
    ("PL", "eu-central", "Warsaw", "WAW"),
    ("SG", "ap-southeast", "Singapore", "SIN"),
    ("JP", "ap-northeast", "Tokyo", "TYO"),
    ("AU", "ap-southeast", "Sydney", "SYD"),
    ("IN", "ap-south", "Mumbai", "BOM"),
    ("BR", "sa-east", "São Paulo", "GRU"),
    ("ZA", "af-south", "Johannesburg", "JNB"),
];

/// (model, cores, threads, passmark, geekbench single, geekbench multi)
const CPUS: &[(&str, i64, i64, i64, i64, i64)] = &[
    ("Intel Xeon E-2388G", 8, 16, 24_800, 1_950, 9_800),
    ("Intel Xeon E5-2680 v4", 14, 28, 17_900, 980, 8_900),
    ("Intel Xeon Gold 6338", 32, 64, 48_000, 1_300, 21_000),
    ("Intel Xeon Platinum 8480+", 56, 112, 98_000, 1_700, 38_000),
    ("AMD Ryzen 9 7950X", 16, 32, 63_000, 2_900, 20_500),
    ("AMD Ryzen 7 7700", 8, 16, 35_000, 2_700, 13_000),
    ("AMD EPYC 7443P", 24, 48, 52_000, 1_600, 19_000),
    ("AMD EPYC 7763", 64, 128, 88_000, 1_500, 33_000),
    ("AMD EPYC 9454P", 48, 96, 102_000, 2_000, 36_000),
    ("Ampere Altra Q80-30", 80, 80, 45_000, 1_100, 27_000),
];

/// Deterministic, varied, realistic servers for demos and benchmarks.
pub fn demo_servers(count: usize, seed: u64) -> Vec<ServerInput> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let (country, region, city, dc) = LOCATIONS[rng.gen_range(0..LOCATIONS.len())];
        let (cpu_model, cores, threads, pm, gs, gm) = CPUS[rng.gen_range(0..CPUS.len())];
        let category = CATEGORIES[n % CATEGORIES.len()];
        let is_vm = rng.gen_bool(0.3);
        let (cores, threads) = if is_vm {
            (cores.min(8), threads.min(16))
        } else {
            (cores, threads)
        };
        let ram_choices: &[i64] = match category {
            "memory" => &[256, 512, 768, 1024],
            "gpu" => &[128, 256, 512],
            _ => &[16, 32, 64, 128, 256],
        };
        let ram = ram_choices[rng.gen_range(0..ram_choices.len())];
        let ram_type = ["DDR4", "DDR5", "ECC DDR4", "ECC DDR5"][rng.gen_range(0..4)];
        let speed = if ram_type.contains("DDR5") {
            4800
        } else {
            3200
        };
        let mut disks = vec![DiskConfig {
            count: if rng.gen_bool(0.7) { 2 } else { 1 },
            capacity_gb: [480, 960, 1000, 1920, 3840][rng.gen_range(0..5)],
            kind: ["NVMe", "SSD"][rng.gen_range(0..2)].into(),
            interface: "PCIe 4.0".into(),
        }];
        if disks[0].kind == "SSD" {
            disks[0].interface = "SATA".into();
        }
        if category == "storage" || rng.gen_bool(0.15) {
            disks.push(DiskConfig {
                count: [4, 6, 8, 12][rng.gen_range(0..4)],
                capacity_gb: [8000, 12000, 16000, 20000][rng.gen_range(0..4)],
                kind: "HDD".into(),
                interface: "SATA".into(),
            });
        }
        let bandwidth = [1000, 1000, 2500, 10_000, 25_000][rng.gen_range(0..5)];
        let unlimited = rng.gen_bool(0.35);
        let score_kind = rng.gen_range(0..3);
        let (score_type, score) = match score_kind {
            0 => ("passmark", pm),
            1 => ("geekbench_single", gs),
            _ => ("geekbench_multi", gm),
        };
        // Roughly what such a machine rents for, per day, in µUSD.
        let mut per_day = 400_000
            + cores * 60_000
            + ram * 9_000
            + disks.iter().map(|d| d.count * d.capacity_gb).sum::<i64>() * 25;
        if category == "gpu" {
            per_day += 25_000_000;
        }
        if is_vm {
            per_day /= 3;
        }
        let per_day = (per_day as f64 * rng.gen_range(0.85..1.2)) as i64 / 10_000 * 10_000;
        let mut prices = BTreeMap::new();
        prices.insert("1".to_string(), per_day as f64 / 1e6);
        prices.insert(
            "7".to_string(),
            (per_day * 7 * 90 / 100 / 10_000 * 10_000) as f64 / 1e6,
        );
        prices.insert(
            "30".to_string(),
            (per_day * 30 * 75 / 100 / 10_000 * 10_000) as f64 / 1e6,
        );
        if rng.gen_bool(0.3) {
            prices.insert(
                "90".to_string(),
                (per_day * 90 * 65 / 100 / 10_000 * 10_000) as f64 / 1e6,
            );
        }
        if rng.gen_bool(0.2) {
            prices.remove("1");
        }
        out.push(ServerInput {
            name: format!(
                "{}-{}-{}",
                if is_vm { "vm" } else { "node" },
                dc.to_lowercase(),
                n + 1
            ),
            country: country.into(),
            region: region.into(),
            city: city.into(),
            datacenter: format!("{dc}-DC{}", rng.gen_range(1..4)),
            model: if is_vm {
                format!("KVM on {cpu_model}")
            } else {
                format!("{cpu_model} server")
            },
            is_vm,
            category: category.into(),
            featured: rng.gen_bool(0.08),
            popularity_rank: (n as i64) + 1,
            setup_time_minutes: if is_vm {
                5
            } else {
                [15, 30, 60, 240][rng.gen_range(0..4)]
            },
            specs: SpecsInput {
                cpu: CpuSpec {
                    model: cpu_model.into(),
                    cores,
                    threads,
                    score,
                    score_type: score_type.into(),
                },
                ram: RamSpec {
                    capacity_gb: ram,
                    kind: ram_type.into(),
                    speed_mhz: speed,
                },
                disks: DisksInput { config: disks },
                network: NetworkInput {
                    bandwidth_mbps: bandwidth,
                    traffic_tb: if unlimited {
                        None
                    } else {
                        Some([10, 20, 50, 100][rng.gen_range(0..4)])
                    },
                    traffic_unlimited: unlimited,
                },
                additional: AdditionalSpec {
                    ipv4_count: [1, 1, 1, 5, 8][rng.gen_range(0..5)],
                    ipv6_enabled: rng.gen_bool(0.9),
                },
            },
            prices,
        });
    }
    out
}

/// Inserts `servers` in batches of one transaction each. Returns how many were added.
pub async fn load(db: &Db, servers: Vec<ServerInput>) -> ServiceResult<usize> {
    let mut added = 0;
    for batch in servers.chunks(500) {
        let mut tx = db.begin().await?;
        for s in batch {
            let checked = check(s.clone())?;
            insert_checked(&mut tx, &checked).await?;
            added += 1;
        }
        bump_generation(&mut tx).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_parse_in_every_usual_form() {
        let a = Filters::parse("available_durations=7&available_durations=30").unwrap();
        let b = Filters::parse("available_durations=7,30").unwrap();
        let c = Filters::parse("available_durations[]=30&available_durations[]=7").unwrap();
        assert_eq!(a.available_durations, vec![7, 30]);
        assert_eq!(a, b);
        assert_eq!(b, c);
        let d = Filters::parse("disk_types=NVMe%2CHDD&ram_types=DDR5").unwrap();
        assert_eq!(d.disk_types, vec!["nvme", "hdd"]);
        assert_eq!(d.ram_types, vec!["ddr5"]);
    }

    #[test]
    fn bad_values_are_errors_not_silence() {
        assert!(Filters::parse("min_cpu_cores=lots")
            .unwrap_err()
            .contains("min_cpu_cores"));
        assert!(Filters::parse("category=toaster").is_err());
        assert!(Filters::parse("cpu_score_type=cinebench").is_err());
        assert!(Filters::parse("limit=0").is_err());
        assert!(Filters::parse("min_ram_gb=-4").is_err());
        assert!(Filters::parse("sort=random").is_err());
        assert_eq!(
            Filters::parse("min_cpu_score=1000")
                .unwrap()
                .cpu_score_type
                .as_deref(),
            Some("passmark")
        );
        assert_eq!(
            Filters::parse("max_price_per_day=12.5")
                .unwrap()
                .max_price_per_day,
            Some(12_500_000)
        );
        assert_eq!(
            Filters::parse("country=de&unknown=1")
                .unwrap()
                .country
                .as_deref(),
            Some("DE")
        );
    }

    #[test]
    fn demo_catalog_is_varied_and_valid() {
        let servers = demo_servers(500, 7);
        let countries: std::collections::BTreeSet<_> =
            servers.iter().map(|s| s.country.clone()).collect();
        let cpus: std::collections::BTreeSet<_> =
            servers.iter().map(|s| s.specs.cpu.model.clone()).collect();
        assert!(countries.len() >= 10, "{countries:?}");
        assert!(cpus.len() >= 5);
        for c in CATEGORIES {
            assert!(servers.iter().any(|s| s.category == *c), "category {c}");
        }
        assert!(servers.iter().any(|s| s.specs.network.traffic_unlimited));
        assert!(servers.iter().any(|s| !s.specs.network.traffic_unlimited));
        assert!(servers
            .iter()
            .any(|s| s.specs.disks.config.iter().any(|d| d.kind == "HDD")));
        for s in servers {
            check(s).expect("every demo server is valid");
        }
    }

    #[test]
    fn summaries_read_like_a_spec_sheet() {
        assert_eq!(capacity(1000), "1TB");
        assert_eq!(capacity(15000), "15TB");
        assert_eq!(capacity(1920), "1.92TB");
        assert_eq!(capacity(480), "480GB");
        assert_eq!(bandwidth(10_000), "10 Gbps");
        assert_eq!(bandwidth(2500), "2.5 Gbps");
        assert_eq!(bandwidth(500), "500 Mbps");
    }
}
