//! The browse index: each replica keeps the marketplace's filterable columns in memory and
//! answers browse queries from them, so a query nobody asked before costs a scan of compact
//! entries instead of a count over the database (docs/BENCHMARKS.md, "Marketplace browse").
//!
//! **Exact, not eventually consistent.** Every change that can alter browse results bumps the
//! marketplace generation and stamps the rows it touched with the new value, in its own
//! transaction (`browse::bump_generation`). The counter's row lock orders those transactions,
//! so a reader that sees generation N sees every row stamped ≤ N. The index catches up by
//! reading only the rows stamped after its own generation. A browse reads the current
//! generation and answers from the index only when the index is at exactly that generation: the
//! filters, the order and `total` then describe the database as it was at that read. The page's
//! rows must carry the stamps the index knows; a newer stamp (a change committed meanwhile) makes
//! the index catch up and answer again.
//!
//! Availability is decided at query time from `rented_until`, as the SQL path does, so a rental
//! that has run out shows its server again at once, before the expiry sweep.
//!
//! A browse costs one database round trip in the common case: reading the generation. The
//! page's servers come from a bounded map of assembled rows keyed by id *and the generation
//! stamped on the row*, so a stored row can never be an outdated version; rows not there are read
//! by primary key and kept.
//!
//! Memory: about 200 bytes per server (20 MB at 100,000), plus up to [`ROWS_KEPT`] assembled
//! rows (about 2 KB each).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::infra::db::{self, Pool as Db};
use crate::infra::error::ServiceResult;
use crate::market::browse::{self, Filters, ServerRow, Sort, READ_COLUMNS};
use model::market::{MarketServer, Page};

/// How many times a browse lets the index catch up with concurrent changes before it answers
/// from SQL instead (only under a storm of marketplace writes).
const ATTEMPTS: usize = 3;

/// Assembled servers kept for pages (see the module docs); the map starts over when full.
pub const ROWS_KEPT: usize = 8192;

/// The in-memory browse index of one replica (see the module docs).
pub struct BrowseIndex {
    catalog: RwLock<Catalog>,
    /// Assembled servers by id, with the row generation they were read at.
    rows: std::sync::Mutex<KeptRows>,
    /// One catch-up at a time; the others wait for it instead of repeating it.
    catching_up: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for BrowseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.catalog.read().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("BrowseIndex")
            .field("generation", &c.generation)
            .field("servers", &c.entries.len())
            .finish()
    }
}

impl Default for BrowseIndex {
    fn default() -> Self {
        Self {
            catalog: RwLock::new(Catalog {
                generation: NOT_LOADED,
                ..Default::default()
            }),
            catching_up: tokio::sync::Mutex::new(()),
            rows: Default::default(),
        }
    }
}

const NOT_LOADED: i64 = i64::MIN;

/// Assembled servers by id, each with the row generation it was read at.
type KeptRows = HashMap<Box<str>, (i64, Arc<MarketServer>)>;

#[derive(Default)]
struct Catalog {
    /// The marketplace generation the entries describe.
    generation: i64,
    /// The columns nearly every query filters or sorts on, one small row per server, grouped by
    /// country: most browses name one, and then only its servers are scanned, from contiguous
    /// memory (about 40 bytes each instead of the whole entry).
    hot: HashMap<u32, Vec<Hot>>,
    /// Every server ever seen since the index loaded; a retired one stays, never matching, so
    /// positions are stable (a restart compacts).
    entries: Vec<Entry>,
    /// Entry position by server id.
    position: HashMap<Box<str>, usize>,
    names: Names,
}

/// Small strings (countries, regions, categories, RAM and disk types) as numbers.
#[derive(Default)]
struct Names(HashMap<String, u32>);

impl Names {
    fn intern(&mut self, s: &str) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(s.to_owned()).or_insert(next)
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.0.get(s).copied()
    }
}

/// `Entry`'s most selective columns (see `Catalog::hot`).
#[derive(Clone, Copy)]
struct Hot {
    /// `rented_until`, `i64::MIN` when not rented, `i64::MAX` when no longer active.
    free_from: i64,
    min_price_per_day: i64,
    /// `sort_key(Sort::Popularity)`: the default order needs no entry either.
    popularity: i128,
    /// The entry's position.
    at: u32,
    ram_gb: u32,
}

impl Hot {
    fn of(e: &Entry, at: usize) -> Self {
        Self {
            popularity: sort_key(Sort::Popularity, e),
            at: at as u32,
            free_from: if e.active {
                e.rented_until.unwrap_or(i64::MIN)
            } else {
                i64::MAX
            },
            min_price_per_day: e.min_price_per_day,
            ram_gb: u32::try_from(e.ram_gb).unwrap_or(u32::MAX),
        }
    }
}

/// What browse filters and sorts on, for one active server.
struct Entry {
    id: Box<str>,
    /// The generation stamped on the row when it last changed.
    row_generation: i64,
    active: bool,
    rented_until: Option<i64>,
    country: u32,
    region: u32,
    category: u32,
    score_type: u32,
    /// Lower-cased, as the filter compares it.
    ram_type: u32,
    disk_types: Box<[u32]>,
    /// (days, total µUSD), shortest first.
    prices: Box<[(i64, i64)]>,
    min_price_per_day: i64,
    cpu_cores: i64,
    cpu_score: i64,
    ram_gb: i64,
    total_storage_gb: i64,
    bandwidth_mbps: i64,
    traffic_tb: Option<i64>,
    traffic_unlimited: bool,
    featured: bool,
    popularity_rank: i64,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct IndexRow {
    id: String,
    generation: i64,
    status: String,
    rented_until: Option<i64>,
    country: String,
    region: String,
    category: String,
    cpu_score_type: String,
    ram_type: String,
    disk_types: String,
    min_price_per_day: i64,
    cpu_cores: i64,
    cpu_score: i64,
    ram_gb: i64,
    total_storage_gb: i64,
    bandwidth_mbps: i64,
    traffic_tb: Option<i64>,
    traffic_unlimited: i64,
    featured: i64,
    popularity_rank: i64,
    created_at: i64,
}

/// A page's row with the generation stamped on it.
#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    row: ServerRow,
    generation: i64,
}

/// One server of a page: what the index knows of it, enough to find or read its full row.
struct PageItem {
    id: Box<str>,
    row_generation: i64,
    prices: Box<[(i64, i64)]>,
}

/// Filters with their names resolved to the catalog's numbers. `None` where a named value is
/// unknown to the catalog, which no server can then match.
struct Query<'a> {
    f: &'a Filters,
    country: Option<u32>,
    region: Option<u32>,
    category: Option<u32>,
    score_type: Option<u32>,
    ram_types: Vec<u32>,
    disk_types: Vec<u32>,
    now: i64,
}

impl Query<'_> {
    /// Whether any filter besides availability, country, price and RAM is set.
    fn needs_entry(&self) -> bool {
        let f = self.f;
        self.region.is_some()
            || !f.available_durations.is_empty()
            || f.min_cpu_cores.is_some()
            || f.min_cpu_score.is_some()
            || !self.ram_types.is_empty()
            || f.min_total_storage_gb.is_some()
            || !self.disk_types.is_empty()
            || f.min_bandwidth_mbps.is_some()
            || f.min_traffic_tb.is_some()
            || f.unlimited_traffic_only
            || self.category.is_some()
            || f.featured_only
    }
}

impl Catalog {
    /// `None` when a filter names a value no server has: nothing matches.
    fn query<'a>(&self, f: &'a Filters, now: i64) -> Option<Query<'a>> {
        let named = |v: &Option<String>| -> Option<Option<u32>> {
            match v {
                None => Some(None),
                Some(s) => self.names.get(s).map(Some),
            }
        };
        let listed = |vs: &[String]| -> Option<Vec<u32>> {
            let ids: Vec<u32> = vs.iter().filter_map(|v| self.names.get(v)).collect();
            (vs.is_empty() || !ids.is_empty()).then_some(ids)
        };
        let score_type = if f.min_cpu_score.is_some() {
            named(&f.cpu_score_type)?
        } else {
            None
        };
        Some(Query {
            f,
            country: named(&f.country)?,
            region: named(&f.region)?,
            category: named(&f.category)?,
            score_type,
            ram_types: listed(&f.ram_types)?,
            disk_types: listed(&f.disk_types)?,
            now,
        })
    }

    /// The availability, price and RAM conditions of `browse::Where::from_filters` (the
    /// country is the group scanned).
    fn matches_hot(q: &Query, h: &Hot) -> bool {
        let f = q.f;
        h.free_from <= q.now
            && f.max_price_per_day.is_none_or(|m| h.min_price_per_day <= m)
            && f.min_ram_gb.is_none_or(|m| i64::from(h.ram_gb) >= m)
    }

    /// The rest of `browse::Where::from_filters`'s conditions, for an entry that passed
    /// [`Self::matches_hot`].
    fn matches(q: &Query, e: &Entry) -> bool {
        let f = q.f;
        let at_least = |min: Option<i64>, v: i64| min.is_none_or(|m| v >= m);
        q.region.is_none_or(|r| e.region == r)
            && f.available_durations
                .iter()
                .all(|d| e.prices.iter().any(|(days, _)| days == d))
            && at_least(f.min_cpu_cores, e.cpu_cores)
            && at_least(f.min_cpu_score, e.cpu_score)
            && q.score_type.is_none_or(|t| e.score_type == t)
            && (q.ram_types.is_empty() || q.ram_types.contains(&e.ram_type))
            && at_least(f.min_total_storage_gb, e.total_storage_gb)
            && (q.disk_types.is_empty() || q.disk_types.iter().any(|t| e.disk_types.contains(t)))
            && at_least(f.min_bandwidth_mbps, e.bandwidth_mbps)
            && f.min_traffic_tb
                .is_none_or(|m| e.traffic_unlimited || e.traffic_tb.is_some_and(|t| t >= m))
            && (!f.unlimited_traffic_only || e.traffic_unlimited)
            && q.category.is_none_or(|c| e.category == c)
            && (!f.featured_only || e.featured)
    }

    /// The matching servers of the requested page, and how many match in all.
    fn page(&self, f: &Filters, now: i64) -> (Vec<PageItem>, i64) {
        let Some(q) = self.query(f, now) else {
            return (Vec::new(), 0);
        };
        let cold = q.needs_entry();
        let check = |h: &Hot| {
            Self::matches_hot(&q, h) && (!cold || Self::matches(&q, &self.entries[h.at as usize]))
        };
        // (sort key, position): ordering on a number first touches no entry, ties aside.
        let key = |h: &Hot| match f.sort {
            Sort::Popularity => (h.popularity, h.at),
            Sort::PriceAsc => (i128::from(h.min_price_per_day), h.at),
            Sort::PriceDesc => (-i128::from(h.min_price_per_day), h.at),
            sort => (sort_key(sort, &self.entries[h.at as usize]), h.at),
        };
        let groups: Vec<&Vec<Hot>> = match q.country {
            Some(c) => self.hot.get(&c).into_iter().collect(),
            None => self.hot.values().collect(),
        };
        let mut hits: Vec<(i128, u32)> = groups
            .into_iter()
            .flatten()
            .filter(|h| check(h))
            .map(key)
            .collect();
        let total = hits.len() as i64;
        let offset = f.offset.clamp(0, total) as usize;
        let end = (f.offset.saturating_add(f.limit)).clamp(0, total) as usize;
        if offset == end {
            return (Vec::new(), total);
        }
        let order = |a: &(i128, u32), b: &(i128, u32)| {
            a.0.cmp(&b.0).then_with(|| {
                let (x, y) = (&self.entries[a.1 as usize], &self.entries[b.1 as usize]);
                match f.sort {
                    Sort::Newest => y.id.cmp(&x.id),
                    _ => x.id.cmp(&y.id),
                }
            })
        };
        // Only the first `end` need ordering: partition around the last one, then sort those.
        if end < hits.len() {
            hits.select_nth_unstable_by(end - 1, order);
        }
        hits[..end].sort_unstable_by(order);
        let page = hits[offset..end]
            .iter()
            .map(|&(_, at)| {
                let e = &self.entries[at as usize];
                PageItem {
                    id: e.id.clone(),
                    row_generation: e.row_generation,
                    prices: e.prices.clone(),
                }
            })
            .collect();
        (page, total)
    }

    fn apply(&mut self, row: IndexRow, prices: Vec<(i64, i64)>) {
        let existing = self.position.get(row.id.as_str()).copied();
        let mut disk_types: Vec<u32> = row
            .disk_types
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| self.names.intern(t))
            .collect();
        disk_types.sort_unstable();
        let entry = Entry {
            row_generation: row.generation,
            active: row.status == "active",
            rented_until: row.rented_until,
            country: self.names.intern(&row.country),
            region: self.names.intern(&row.region),
            category: self.names.intern(&row.category),
            score_type: self.names.intern(&row.cpu_score_type),
            ram_type: self.names.intern(&row.ram_type.to_lowercase()),
            disk_types: disk_types.into(),
            prices: prices.into(),
            min_price_per_day: row.min_price_per_day,
            cpu_cores: row.cpu_cores,
            cpu_score: row.cpu_score,
            ram_gb: row.ram_gb,
            total_storage_gb: row.total_storage_gb,
            bandwidth_mbps: row.bandwidth_mbps,
            traffic_tb: row.traffic_tb,
            traffic_unlimited: row.traffic_unlimited != 0,
            featured: row.featured != 0,
            popularity_rank: row.popularity_rank,
            created_at: row.created_at,
            id: row.id.into(),
        };
        let country = entry.country;
        let at = match existing {
            Some(at) => {
                let was = self.entries[at].country;
                if let Some(group) = self.hot.get_mut(&was) {
                    group.retain(|h| h.at as usize != at);
                }
                self.entries[at] = entry;
                at
            }
            None => {
                let at = self.entries.len();
                self.position.insert(entry.id.clone(), at);
                self.entries.push(entry);
                at
            }
        };
        let hot = Hot::of(&self.entries[at], at);
        self.hot.entry(country).or_default().push(hot);
    }
}

/// `browse::Sort::order_by` as one number, ascending; ties are broken by id as the SQL does
/// (descending for `Newest`, ascending otherwise).
fn sort_key(sort: Sort, e: &Entry) -> i128 {
    let v = |n: i64| i128::from(n);
    match sort {
        // Featured first, then by rank: every featured key is below every other.
        Sort::Popularity => v(e.popularity_rank) - if e.featured { 1 << 64 } else { 0 },
        Sort::PriceAsc => v(e.min_price_per_day),
        Sort::PriceDesc => -v(e.min_price_per_day),
        Sort::CpuScoreDesc => -v(e.cpu_score),
        Sort::RamDesc => -v(e.ram_gb),
        Sort::StorageDesc => -v(e.total_storage_gb),
        Sort::Newest => -v(e.created_at),
    }
}

impl BrowseIndex {
    /// Servers on the marketplace now that match `f`, and how many match in all; the same
    /// answer as `browse::browse_uncached`, from memory.
    pub async fn browse(&self, db: &Db, f: &Filters) -> ServiceResult<(Vec<MarketServer>, Page)> {
        for _ in 0..ATTEMPTS {
            // The database's generation first: an index at that generation answers exactly as
            // the database would at this instant.
            let current = browse::generation(db).await?;
            let found = {
                let c = self.catalog.read().unwrap_or_else(|p| p.into_inner());
                (c.generation == current).then(|| c.page(f, db::now_ms()))
            };
            let Some((items, total)) = found else {
                self.catch_up(db, self.generation()).await?;
                continue;
            };
            // `None`: a row changed after `current` was read; catch up and answer again.
            if let Some(servers) = self.servers(db, items).await? {
                return Ok((servers, Page::of(total, f.limit, f.offset)));
            }
        }
        browse::browse_uncached(db, f).await
    }

    fn generation(&self) -> i64 {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// The page's servers, in order: kept ones from memory, the others read by primary key.
    /// `None` when a row read carries a newer generation than the index knows (it changed after
    /// the index's answer was computed).
    async fn servers(
        &self,
        db: &Db,
        items: Vec<PageItem>,
    ) -> ServiceResult<Option<Vec<MarketServer>>> {
        let mut out: Vec<Option<MarketServer>> = {
            let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            items
                .iter()
                .map(|i| {
                    rows.get(&i.id)
                        .filter(|(g, _)| *g == i.row_generation)
                        .map(|(_, s)| MarketServer::clone(s))
                })
                .collect()
        };
        let missing: Vec<&PageItem> = items
            .iter()
            .zip(&out)
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i)
            .collect();
        if missing.is_empty() {
            return Ok(Some(out.into_iter().flatten().collect()));
        }
        let placeholders: Vec<String> = (1..=missing.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {READ_COLUMNS}, s.generation FROM marketplace_servers s WHERE s.id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, PageRow>(&sql);
        for i in &missing {
            q = q.bind(i.id.as_ref());
        }
        let mut read: HashMap<String, PageRow> = q
            .fetch_all(db)
            .await?
            .into_iter()
            .map(|r| (r.row.id_ref().to_owned(), r))
            .collect();
        let mut kept = Vec::with_capacity(missing.len());
        for (item, slot) in items.iter().zip(out.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            // A row's content changes only with a new stamp, so an equal stamp is the very
            // version the index filtered and sorted.
            match read.remove(item.id.as_ref()) {
                Some(r) if r.generation == item.row_generation => {
                    let server = Arc::new(r.row.into_server(&item.prices));
                    *slot = Some(MarketServer::clone(&server));
                    kept.push((item.id.clone(), (item.row_generation, server)));
                }
                _ => return Ok(None),
            }
        }
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.len() + kept.len() > ROWS_KEPT {
            rows.clear();
        }
        rows.extend(kept);
        Ok(Some(out.into_iter().flatten().collect()))
    }

    /// Loads the whole catalog if the index has not been loaded yet (at start, so the first
    /// browse need not wait for it).
    pub async fn load(&self, db: &Db) -> ServiceResult<()> {
        self.catch_up(db, NOT_LOADED).await
    }

    /// Reads the rows changed since the index's generation (all of them the first time). `seen`
    /// is the generation the caller found stale: if another task has moved past it meanwhile,
    /// there is nothing left to do.
    async fn catch_up(&self, db: &Db, seen: i64) -> ServiceResult<()> {
        let _one = self.catching_up.lock().await;
        let since = {
            let c = self.catalog.read().unwrap_or_else(|p| p.into_inner());
            if c.generation != seen {
                return Ok(());
            }
            c.generation
        };
        let before = browse::generation(db).await?;
        let rows: Vec<IndexRow> = sqlx::query_as(
            "SELECT id, generation, status, rented_until, country, region, category, cpu_score_type, ram_type,
                    disk_types, min_price_per_day, cpu_cores, cpu_score, ram_gb, total_storage_gb,
                    bandwidth_mbps, traffic_tb, traffic_unlimited, featured, popularity_rank, created_at
             FROM marketplace_servers WHERE generation > $1",
        )
        .bind(since)
        .fetch_all(db)
        .await?;
        let price_rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT p.server_id, p.days, p.price FROM marketplace_prices p
             JOIN marketplace_servers s ON s.id = p.server_id
             WHERE s.generation > $1 AND s.status = 'active' ORDER BY p.server_id, p.days",
        )
        .bind(since)
        .fetch_all(db)
        .await?;
        // Unchanged counter: nothing committed between the two reads, so the rows are the
        // complete change set up to `before`. Otherwise the next attempt reads again.
        if browse::generation(db).await? != before {
            return Ok(());
        }
        let mut prices: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for (id, days, price) in price_rows {
            prices.entry(id).or_default().push((days, price));
        }
        let mut c = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        if since == NOT_LOADED {
            *c = Catalog::default();
        }
        for row in rows {
            let p = prices.remove(&row.id).unwrap_or_default();
            c.apply(row, p);
        }
        c.generation = before;
        Ok(())
    }
}

/// Servers on the marketplace now that match `f`, and how many match in all: from this
/// replica's browse index when there is one, from SQL otherwise. Both give the same answer.
pub async fn browse(
    db: &Db,
    index: Option<&BrowseIndex>,
    f: &Filters,
) -> ServiceResult<(Vec<MarketServer>, Page)> {
    match index {
        Some(index) => index.browse(db, f).await,
        None => browse::browse_uncached(db, f).await,
    }
}
