//! Public IPv4 addresses.
//!
//! Operators add ranges per region ([`add_pool`]). A VM placed in a region that has ranges takes
//! one address in its create transaction ([`allocate`]), so a create that cannot get one changes
//! nothing (409); the address is given back in the transaction that deletes the VM or records its
//! failure ([`release`]). Regions without ranges give their VMs only the node's private address.
//! Containers never take one (they are reached through their node).
//!
//! How the address reaches the guest is the driver's job: libvirt nodes reserve it for the VM's
//! MAC address in the node's network's DHCP service, so any image that asks for DHCP gets it
//! (see `driver::libvirt`). The node's libvirt network must therefore serve the range's subnet
//! (a routed or bridged network on real hosts).
//!
//! Allocation is one conditional `UPDATE` of the longest-free address; under concurrent creates
//! the loser of a row re-checks `instance_id IS NULL`, finds it taken, and tries the next one.
//!
//! Every holding is also recorded in `ip_assignments` (address, instance, user, from, to) and kept
//! after the machine and the range are gone: [`history`] answers "who had this address then?".
//!
//! A released address rests for `public_ip_cooldown_minutes` (default 60, libvirt's DHCP lease
//! time) before another machine gets it: until the old machine's lease expires, the node's DHCP
//! server will not hand the address to a new MAC, and caches elsewhere still point at the old
//! machine.

use std::net::Ipv4Addr;

use tracing::instrument;

use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use model::api::admin_compute::{AddressHistory, Assignment, PoolInput};

/// Most addresses one range may hold (a /16).
const MAX_RANGE: u32 = 65_536;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct PoolRow {
    pub id: String,
    pub region: String,
    pub first_address: String,
    pub last_address: String,
    pub prefix_len: i64,
    pub gateway: Option<String>,
    /// Addresses in the range.
    pub total: i64,
    /// Addresses held by instances.
    pub used: i64,
}

fn parse(field: &str, value: &str) -> ServiceResult<Ipv4Addr> {
    value
        .trim()
        .parse::<Ipv4Addr>()
        .map_err(|_| ServiceError::invalid(format!("{field}: `{value}` is not an IPv4 address")))
}

#[instrument(skip_all, err(level = "info", Debug), fields(region = %input.region))]
pub async fn add_pool(db: &Pool, input: PoolInput) -> ServiceResult<PoolRow> {
    let region = input.region.trim();
    if region.is_empty() || region.len() > 63 {
        return Err(ServiceError::invalid("region: 1–63 characters"));
    }
    let (first, last) = (parse("first", &input.first)?, parse("last", &input.last)?);
    let (lo, hi) = (u32::from(first), u32::from(last));
    if lo > hi {
        return Err(ServiceError::invalid("first must not come after last"));
    }
    if hi - lo >= MAX_RANGE {
        return Err(ServiceError::invalid(format!(
            "a range holds at most {MAX_RANGE} addresses"
        )));
    }
    if !(8..=32).contains(&input.prefix_len) {
        return Err(ServiceError::invalid("prefix_len must be between 8 and 32"));
    }
    let gateway = match input.gateway.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(g) => {
            let g = parse("gateway", g)?;
            if (lo..=hi).contains(&u32::from(g)) {
                return Err(ServiceError::invalid(
                    "the gateway cannot be one of the range's addresses",
                ));
            }
            Some(g.to_string())
        }
    };
    let unusable = |a: Ipv4Addr| a.is_unspecified() || a.is_broadcast() || a.is_multicast();
    if unusable(first) || unusable(last) || a_loopback(lo, hi) {
        return Err(ServiceError::invalid(
            "the range contains loopback, multicast or broadcast addresses",
        ));
    }

    let mut tx = crate::infra::db::begin(db).await?;
    let overlapping: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM ip_addresses WHERE ordinal BETWEEN $1 AND $2")
            .bind(i64::from(lo))
            .bind(i64::from(hi))
            .fetch_one(&mut *tx)
            .await?;
    if overlapping > 0 {
        return Err(ServiceError::Conflict(format!(
            "{overlapping} of these addresses are already in a range"
        )));
    }
    let id = db::new_id();
    sqlx::query(
        "INSERT INTO ip_pools (id, region, first_address, last_address, prefix_len, gateway, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(region)
    .bind(first.to_string())
    .bind(last.to_string())
    .bind(input.prefix_len)
    .bind(&gateway)
    .bind(db::now_ms())
    .execute(&mut *tx)
    .await?;
    // Multi-row inserts keep a /16 to a few hundred statements. (Placeholders are written out:
    // sqlx's QueryBuilder emits `?` under the Any driver, which PostgreSQL rejects.)
    let all: Vec<u32> = (lo..=hi).collect();
    for chunk in all.chunks(200) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, $1, $2, ${})", 3 + 2 * i, 4 + 2 * i))
            .collect();
        let sql = format!(
            "INSERT INTO ip_addresses (address, pool_id, region, ordinal) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(&id).bind(region);
        for n in chunk {
            q = q.bind(Ipv4Addr::from(*n).to_string()).bind(i64::from(*n));
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    pool(db, &id)
        .await?
        .ok_or(ServiceError::NotFound("IP pool"))
}

fn a_loopback(lo: u32, hi: u32) -> bool {
    let (l0, l1) = (
        u32::from(Ipv4Addr::new(127, 0, 0, 0)),
        u32::from(Ipv4Addr::new(127, 255, 255, 255)),
    );
    lo <= l1 && hi >= l0
}

const POOL_COLUMNS: &str = "p.id, p.region, p.first_address, p.last_address, p.prefix_len, p.gateway,
    (SELECT COUNT(*) FROM ip_addresses a WHERE a.pool_id = p.id) AS total,
    (SELECT COUNT(*) FROM ip_addresses a WHERE a.pool_id = p.id AND a.instance_id IS NOT NULL) AS used";

pub async fn pools(db: &Pool) -> ServiceResult<Vec<PoolRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {POOL_COLUMNS} FROM ip_pools p ORDER BY p.region, p.created_at"
    ))
    .fetch_all(db)
    .await?)
}

pub async fn pool(db: &Pool, id: &str) -> ServiceResult<Option<PoolRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {POOL_COLUMNS} FROM ip_pools p WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Removes a range whose addresses are all free (409 otherwise: those machines keep theirs).
#[instrument(skip(db), err(level = "info", Debug))]
pub async fn remove_pool(db: &Pool, id: &str) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM ip_pools WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Err(ServiceError::NotFound("IP pool"));
    }
    let used: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ip_addresses WHERE pool_id = $1 AND instance_id IS NOT NULL",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if used > 0 {
        return Err(ServiceError::Conflict(format!(
            "{used} addresses of this range are held by instances; delete those first"
        )));
    }
    sqlx::query("DELETE FROM ip_addresses WHERE pool_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM ip_pools WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes a free address of `region` for `instance_id`, inside the create transaction: one never
/// held, or released at least `cooldown_ms` ago. `None` when the region has no ranges; a 409
/// when it has ranges but no address is free.
pub async fn allocate(
    tx: &mut Tx<'_>,
    region: &str,
    instance_id: &str,
    user_id: &str,
    cooldown_ms: i64,
) -> ServiceResult<Option<String>> {
    let now = db::now_ms();
    let rested = now - cooldown_ms;
    let ranges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ip_pools WHERE region = $1")
        .bind(region)
        .fetch_one(&mut **tx)
        .await?;
    if ranges == 0 {
        return Ok(None);
    }
    // A concurrent create may take the chosen row first; the re-checked condition then fails
    // and the next candidate is tried.
    for _ in 0..8 {
        let taken: Option<String> = sqlx::query_scalar(
            "UPDATE ip_addresses SET instance_id = $1, allocated_at = $2
             WHERE address = (SELECT address FROM ip_addresses
                              WHERE region = $3 AND instance_id IS NULL AND released_at <= $4
                              ORDER BY released_at, ordinal LIMIT 1)
               AND instance_id IS NULL
             RETURNING address",
        )
        .bind(instance_id)
        .bind(now)
        .bind(region)
        .bind(rested)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(address) = taken {
            sqlx::query(
                "INSERT INTO ip_assignments (id, address, instance_id, user_id, assigned_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(db::new_id())
            .bind(&address)
            .bind(instance_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            return Ok(Some(address));
        }
        let free: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ip_addresses WHERE region = $1 AND instance_id IS NULL AND released_at <= $2",
        )
        .bind(region)
        .bind(rested)
        .fetch_one(&mut **tx)
        .await?;
        if free == 0 {
            break;
        }
    }
    let resting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM ip_addresses WHERE region = $1 AND instance_id IS NULL AND released_at > $2",
    )
    .bind(region)
    .bind(rested)
    .fetch_one(&mut **tx)
    .await?;
    let mut message = format!("No public IPv4 address is free in region {region}");
    if resting > 0 {
        message += &format!(
            " ({resting} released recently; each is free again {} minutes after its release)",
            cooldown_ms / 60_000
        );
    }
    Err(ServiceError::Conflict(message))
}

/// Gives `instance_id`'s address back, inside the transaction that ends the instance.
pub async fn release(tx: &mut Tx<'_>, instance_id: &str) -> ServiceResult<()> {
    let now = db::now_ms();
    sqlx::query(
        "UPDATE ip_addresses SET instance_id = NULL, allocated_at = NULL, released_at = $1
         WHERE instance_id = $2",
    )
    .bind(now)
    .bind(instance_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE ip_assignments SET released_at = $1 WHERE instance_id = $2 AND released_at IS NULL",
    )
    .bind(now)
    .bind(instance_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Who held `address`, newest first; with `at` (unix ms) only the holding that covered that
/// moment. 404 for an address Hangar never managed.
pub async fn history(db: &Pool, address: &str, at: Option<i64>) -> ServiceResult<AddressHistory> {
    let address = parse("address", address)?.to_string();
    let range: Option<(String, String)> =
        sqlx::query_as("SELECT region, pool_id FROM ip_addresses WHERE address = $1")
            .bind(&address)
            .fetch_optional(db)
            .await?;
    #[expect(clippy::type_complexity, reason = "one row of a join, read once and mapped below")]
    let rows: Vec<(String, Option<String>, String, Option<String>, Option<String>, i64, Option<i64>)> =
        sqlx::query_as(
            "SELECT a.instance_id, i.name, a.user_id, u.username, u.email, a.assigned_at, a.released_at
             FROM ip_assignments a
             LEFT JOIN instances i ON i.id = a.instance_id
             LEFT JOIN users u ON u.id = a.user_id
             WHERE a.address = $1
               AND ($2 < 0 OR (a.assigned_at <= $2 AND (a.released_at IS NULL OR a.released_at > $2)))
             ORDER BY a.assigned_at DESC",
        )
        .bind(&address)
        .bind(at.unwrap_or(-1))
        .fetch_all(db)
        .await?;
    if range.is_none() && rows.is_empty() {
        let ever: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM ip_assignments WHERE address = $1")
                .bind(&address)
                .fetch_one(db)
                .await?;
        if ever == 0 {
            return Err(ServiceError::NotFound("Address"));
        }
    }
    Ok(AddressHistory {
        region: range.as_ref().map(|r| r.0.clone()),
        pool_id: range.map(|r| r.1),
        history: rows
            .into_iter()
            .map(
                |(instance_id, instance_name, user_id, username, email, from, to)| Assignment {
                    instance_id,
                    instance_name,
                    user_id,
                    username,
                    email,
                    assigned_at: db::rfc3339(from),
                    released_at: to.map(db::rfc3339),
                },
            )
            .collect(),
        address,
    })
}
