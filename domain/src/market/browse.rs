//! Marketplace reads: servers by id, and browsing with the `/api/v1` dialect's filters, sorts and
//! pagination, in SQL. Each replica's exact in-memory index (`market::index`) answers the same
//! queries faster and builds on these types; `index::browse` picks one of the two. The
//! marketplace's vocabulary (categories, score types, how sizes are written) lives here too, so
//! the inventory and the index both read it from below.

use std::collections::BTreeMap;

use crate::infra::db::{self, Pool as Db, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use model::market::{
    AdditionalSpec, CpuSpec, DisksSpec, MarketServer, NetworkSpec, Page, Pricing, RamSpec, Specs,
};
use model::money::{micros_from_usd, usd2};

/// The categories a marketplace server may be in, and the CPU benchmarks a score may come from.
pub const CATEGORIES: &[&str] = &["compute", "memory", "storage", "general", "gpu"];
pub const SCORE_TYPES: &[&str] = &["passmark", "geekbench_single", "geekbench_multi"];

pub const DEFAULT_LIMIT: i64 = 24;
pub const MAX_LIMIT: i64 = 200;

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

/// One server's prices as (days, total µUSD), shortest duration first.
pub async fn prices(db: &Db, server_id: &str) -> ServiceResult<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT days, price FROM marketplace_prices WHERE server_id = $1 ORDER BY days",
    )
    .bind(server_id)
    .fetch_all(db)
    .await?)
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

/// What the marketplace offers right now, for the front page: how many servers can be rented
/// and the lowest price per day among them (`None` when there is none).
pub async fn offer(db: &Db) -> ServiceResult<(i64, Option<i64>)> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*), MIN(min_price_per_day) FROM marketplace_servers s
         WHERE s.status = 'active' AND (s.rented_until IS NULL OR s.rented_until <= $1)",
    )
    .bind(db::now_ms())
    .fetch_one(db)
    .await?)
}

/// Browse filters (the `/api/v1` dialect) plus sort and pagination.
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

    pub(crate) fn order_by(self) -> &'static str {
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
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            if !value.is_empty() {
                f.set(key.trim_end_matches("[]"), value)?;
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

    /// Applies one `key=value` of the query (value trimmed, not empty).
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let whole = |v: &str| whole_number(key, v);
        match key {
            "country" => self.country = Some(value.to_uppercase()),
            "region" => self.region = Some(value.to_owned()),
            "max_price_per_day" => {
                let usd: f64 = value
                    .parse()
                    .map_err(|_| "max_price_per_day must be a number".to_owned())?;
                self.max_price_per_day =
                    Some(micros_from_usd(usd).map_err(|m| format!("max_price_per_day: {m}"))?);
            }
            "available_durations" => {
                for d in list(value) {
                    let d = whole(&d)?;
                    if d < 1 {
                        return Err("available_durations must be at least 1 day".into());
                    }
                    self.available_durations.push(d);
                }
            }
            "min_cpu_cores" => self.min_cpu_cores = Some(whole(value)?),
            "min_cpu_score" => self.min_cpu_score = Some(whole(value)?),
            "cpu_score_type" => {
                self.cpu_score_type = Some(one_of(key, value, SCORE_TYPES)?);
            }
            "min_ram_gb" => self.min_ram_gb = Some(whole(value)?),
            "ram_types" => self
                .ram_types
                .extend(list(value).into_iter().map(|s| s.to_lowercase())),
            "min_total_storage_gb" => self.min_total_storage_gb = Some(whole(value)?),
            "disk_types" => self
                .disk_types
                .extend(list(value).into_iter().map(|s| s.to_lowercase())),
            "min_bandwidth_mbps" => self.min_bandwidth_mbps = Some(whole(value)?),
            "min_traffic_tb" => self.min_traffic_tb = Some(whole(value)?),
            "unlimited_traffic_only" => self.unlimited_traffic_only = flag(key, value)?,
            "category" => self.category = Some(one_of(key, value, CATEGORIES)?),
            "featured_only" => self.featured_only = flag(key, value)?,
            "sort" => {
                let names: Vec<&str> = Sort::ALL.iter().map(|(n, _)| *n).collect();
                let name = one_of(key, value, &names)?;
                self.sort = Sort::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(Sort::Popularity, |(_, s)| *s);
            }
            "limit" => {
                let l = whole(value)?;
                if !(1..=MAX_LIMIT).contains(&l) {
                    return Err(format!("limit must be between 1 and {MAX_LIMIT}"));
                }
                self.limit = l;
            }
            "offset" => self.offset = whole(value)?,
            _ => {}
        }
        Ok(())
    }
}

/// A non-negative number, rounded up to a whole one (`min_ram_gb=7.5` asks for 8).
fn whole_number(key: &str, v: &str) -> Result<i64, String> {
    let n: f64 = v
        .parse()
        .map_err(|_| format!("{key} must be a number, got {v:?}"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{key} must not be negative"));
    }
    Ok(n.ceil() as i64)
}

fn flag(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{key} must be true or false")),
    }
}

fn one_of(key: &str, v: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&v) {
        Ok(v.to_owned())
    } else {
        Err(format!("{key} must be one of {}", allowed.join(", ")))
    }
}

/// A comma-separated list, items trimmed, empty ones dropped.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The marketplace generation: bumped by [`bump_generation`] in the same transaction as every
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

/// Moves the marketplace generation on and returns the new value, which the caller stamps on
/// every `marketplace_servers` row it changes (column `generation`) in the same transaction:
/// that is how each replica's browse index finds what changed (`market::index`). The counter's
/// row stays locked until the transaction ends, so generations are handed out in commit order.
pub async fn bump_generation(tx: &mut Tx<'_>) -> ServiceResult<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'marketplace' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?)
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

impl Where {
    /// The `/api/v1` dialect's filters as SQL: servers on the marketplace now (active, not rented)
    /// that match every filter given.
    fn from_filters(f: &Filters) -> Self {
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
            w.any_of("LOWER(s.ram_type)", &f.ram_types);
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
        w
    }

    /// `column IN (...)` over `values`, one placeholder each.
    fn any_of(&mut self, column: &str, values: &[String]) {
        let ps: Vec<String> = values
            .iter()
            .map(|v| self.param(Value::S(v.clone())))
            .collect();
        self.conds.push(format!("{column} IN ({})", ps.join(", ")));
    }
}

/// Servers on the marketplace now that match `f`, and how many match in all.
pub async fn browse_uncached(db: &Db, f: &Filters) -> ServiceResult<(Vec<MarketServer>, Page)> {
    let w = Where::from_filters(f);
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
    Ok((servers, Page::of(total, f.limit, f.offset)))
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
