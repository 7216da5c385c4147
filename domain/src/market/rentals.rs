//! Rentals: renting marketplace servers for a fixed number of days from the prepaid balance.
//!
//! Renting and extending debit the ledger in the same transaction that creates or extends the
//! rental, so money and rental always move together. At most one active rental per server is
//! enforced by a partial unique index: when two customers rent the same server at once, exactly
//! one insert succeeds; the other's transaction rolls back before any money moves.
//! Rentals end on their own: [`expire_due`] is a set-based, idempotent sweep the server runs
//! periodically (safe with several replicas); the server is back on the marketplace as soon as
//! `expires_at` (= `rental_end` + `hold_days`) has passed, even before the sweep runs.

use std::collections::BTreeMap;

use tracing::instrument;

use crate::accounts::pools;
use crate::infra::audit;
use crate::infra::db::{self, rfc3339, Pool as Db, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::market::browse::{self, ServerRow, READ_COLUMNS};
use crate::money::ledger;
use crate::Actor;
use model::market::{MarketServer, Rental, RentalAccess, Transaction};
use model::money::{usd2, UsdNum};

pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RentalRow {
    pub id: String,
    pub user_id: String,
    pub server_id: String,
    pub pool_id: String,
    pub rental_start: i64,
    pub rental_end: i64,
    pub hold_days: i64,
    pub expires_at: i64,
    #[sqlx(try_from = "String")]
    pub status: RentalStatus,
    pub amount: i64,
    pub created_at: i64,
}

/// Where a rental is in its life (`rentals.status`): a wire type.
pub use model::market::{AccessStatus, RentalStatus};

/// Whether the server's marketplace row is active (`marketplace_servers.status`).
const SERVER_ACTIVE: &str = "active";

const RENTAL_COLUMNS: &str =
    "r.id, r.user_id, r.server_id, r.pool_id, r.rental_start, r.rental_end, r.hold_days, r.expires_at, r.status, r.amount, r.created_at";

impl RentalRow {
    /// Whole days left before `rental_end` (0 once it has passed).
    pub fn remaining_days(&self, now: i64) -> i64 {
        if self.status != RentalStatus::Active {
            return 0;
        }
        ((self.rental_end - now).max(0) + DAY_MS - 1) / DAY_MS
    }

    /// Whole days used so far.
    pub fn usage_days(&self, now: i64) -> i64 {
        ((now.min(self.rental_end) - self.rental_start).max(0)) / DAY_MS
    }

    pub fn to_api(&self, server: MarketServer, now: i64) -> Rental {
        Rental {
            id: self.id.clone(),
            rental_start: rfc3339(self.rental_start),
            rental_end: rfc3339(self.rental_end),
            hold_days: self.hold_days,
            status: if self.status == RentalStatus::Active && self.expires_at <= now {
                RentalStatus::Expired
            } else {
                self.status
            },
            amount: usd2(self.amount),
            remaining_days: self.remaining_days(now),
            usage_days: self.usage_days(now),
            server_id: self.server_id.clone(),
            pool_id: self.pool_id.clone(),
            user_id: self.user_id.clone(),
            server,
            transaction: None,
            transactions: None,
            access: None,
        }
    }
}

/// The access block of a rental's detail (see `model::market::RentalAccess`).
async fn access(db: &Db, rental: &Rental, started_ms: i64) -> ServiceResult<RentalAccess> {
    let (address, port, user, setup_minutes): (Option<String>, i64, String, i64) = sqlx::query_as(
        "SELECT access_address, access_port, access_user, setup_time_minutes
             FROM marketplace_servers WHERE id = $1",
    )
    .bind(&rental.server_id)
    .fetch_one(db)
    .await?;
    let ready_ms = started_ms + setup_minutes * 60_000;
    let ended = rental.status != RentalStatus::Active;
    let status = if ended {
        AccessStatus::Ended
    } else if db::now_ms() < ready_ms {
        AccessStatus::SettingUp
    } else {
        AccessStatus::Ready
    };
    let address = address.filter(|_| !ended);
    let ssh_command = address.as_ref().map(|a| {
        // IPv6 literals need brackets only in URLs; ssh takes them bare.
        let port = if port == 22 {
            String::new()
        } else {
            format!("-p {port} ")
        };
        format!("ssh {port}{user}@{a}")
    });
    Ok(RentalAccess {
        status,
        ready_at: rfc3339(ready_ms),
        address,
        port,
        user,
        ssh_command,
        keys: authorized_keys(db, &rental.id)
            .await?
            .into_iter()
            .map(|k| model::market::RentalKey {
                name: k.name,
                fingerprint: k.fingerprint,
                owner: k.owner,
                because: k.because,
            })
            .collect(),
    })
}

/// One SSH key a rented server is set up with, as [`authorized_keys`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuthorizedKey {
    pub name: String,
    pub fingerprint: String,
    pub public_key: String,
    pub owner: String,
    /// `renter`, or the member's pool role.
    pub because: String,
}

/// The SSH keys rental `rental_id`'s server is set up with: the keys its renter chose, then the
/// keys of the pool's members whose role the pool's `member_keys` setting names (the renter's
/// other keys are not added this way). The operator's provisioning reads this (`GET
/// /api/admin/rentals/{id}/authorized_keys`); customers see it on the rental. No access check.
pub async fn authorized_keys(db: &Db, rental_id: &str) -> ServiceResult<Vec<AuthorizedKey>> {
    let (pool_id, renter, settings): (String, String, String) = sqlx::query_as(
        "SELECT r.pool_id, r.user_id, p.settings FROM rentals r JOIN pools p ON p.id = r.pool_id
         WHERE r.id = $1",
    )
    .bind(rental_id)
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("Rental"))?;
    let mut keys: Vec<AuthorizedKey> = sqlx::query_as(
        "SELECT k.name, k.fingerprint, k.public_key, u.username AS owner, 'renter' AS because
         FROM rental_keys rk JOIN ssh_keys k ON k.id = rk.key_id JOIN users u ON u.id = k.user_id
         WHERE rk.rental_id = $1 ORDER BY k.name, k.fingerprint",
    )
    .bind(rental_id)
    .fetch_all(db)
    .await?;
    let roles = crate::accounts::pools::MemberKeys::of_settings(&settings).roles();
    if !roles.is_empty() {
        let members: Vec<AuthorizedKey> = sqlx::query_as(
            "SELECT k.name, k.fingerprint, k.public_key, u.username AS owner, m.role AS because
             FROM pool_members m JOIN ssh_keys k ON k.user_id = m.user_id
                  JOIN users u ON u.id = m.user_id
             WHERE m.pool_id = $1 AND m.is_authorized = 1 AND m.user_id <> $2
             ORDER BY u.username, k.name",
        )
        .bind(&pool_id)
        .bind(&renter)
        .fetch_all(db)
        .await?;
        keys.extend(
            members
                .into_iter()
                .filter(|k| roles.contains(&k.because.as_str())),
        );
    }
    Ok(keys)
}

/// Records which of the renter's keys the rental's server gets: `chosen`, or every key of
/// theirs when `None`. A key that is not the renter's answers 404, in the rent's transaction.
async fn choose_keys(
    tx: &mut Tx<'_>,
    rental_id: &str,
    renter: &str,
    chosen: Option<&[String]>,
) -> ServiceResult<()> {
    let mut ids: Vec<String> = match chosen {
        Some(ids) => ids.to_vec(),
        None => {
            sqlx::query_scalar("SELECT id FROM ssh_keys WHERE user_id = $1")
                .bind(renter)
                .fetch_all(&mut **tx)
                .await?
        }
    };
    ids.sort();
    ids.dedup();
    for id in ids {
        let inserted = sqlx::query(
            "INSERT INTO rental_keys (rental_id, key_id)
             SELECT $1, id FROM ssh_keys WHERE id = $2 AND user_id = $3",
        )
        .bind(rental_id)
        .bind(&id)
        .bind(renter)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(ServiceError::NotFound("SSH key"));
        }
    }
    Ok(())
}

/// A ledger debit as the `/api/v1` dialect shows it (a positive amount).
pub fn transaction(entry: &ledger::Entry) -> Transaction {
    Transaction {
        id: entry.id.clone(),
        amount: UsdNum(-entry.amount_micros),
        currency: "USD".into(),
        created_at: rfc3339(entry.created_at),
    }
}

async fn price_for(db: &Db, server_id: &str, days: i64) -> ServiceResult<i64> {
    let price: Option<i64> = sqlx::query_scalar(
        "SELECT price FROM marketplace_prices WHERE server_id = $1 AND days = $2",
    )
    .bind(server_id)
    .bind(days)
    .fetch_optional(db)
    .await?;
    if let Some(p) = price {
        return Ok(p);
    }
    let durations: Vec<i64> = sqlx::query_scalar(
        "SELECT days FROM marketplace_prices WHERE server_id = $1 ORDER BY days",
    )
    .bind(server_id)
    .fetch_all(db)
    .await?;
    if durations.is_empty() {
        return Err(ServiceError::NotFound("Server"));
    }
    let list: Vec<String> = durations.iter().map(i64::to_string).collect();
    Err(ServiceError::invalid(format!(
        "This server can be rented for {} days only",
        list.join(", ")
    )))
}

/// Rents `server_id` for `days` into `pool_id` (the renter's default pool when `None`).
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %actor.user_id, server_id, days))]
pub async fn rent(
    db: &Db,
    actor: &Actor,
    server_id: &str,
    days: i64,
    pool_id: Option<&str>,
    hold_days: i64,
    ssh_key_ids: Option<&[String]>,
) -> ServiceResult<(RentalRow, ledger::Entry)> {
    if days < 1 {
        return Err(ServiceError::invalid("rental_days must be at least 1"));
    }
    let pool_id = target_pool(db, actor, pool_id).await?;
    let server_name = require_on_market(db, server_id).await?;
    let price = price_for(db, server_id, days).await?;
    let now = db::now_ms();
    let rental = RentalRow {
        id: db::new_id(),
        user_id: actor.user_id.clone(),
        server_id: server_id.to_owned(),
        pool_id,
        rental_start: now,
        rental_end: now + days * DAY_MS,
        hold_days,
        expires_at: now + (days + hold_days) * DAY_MS,
        status: RentalStatus::Active,
        amount: price,
        created_at: now,
    };

    let mut tx = crate::infra::db::begin(db).await?;
    insert(&mut tx, &rental).await?;
    choose_keys(&mut tx, &rental.id, &actor.user_id, ssh_key_ids).await?;
    let generation = browse::bump_generation(&mut tx).await?;
    sqlx::query("UPDATE marketplace_servers SET rented_until = $1, generation = $2 WHERE id = $3")
        .bind(rental.expires_at)
        .bind(generation)
        .bind(server_id)
        .execute(&mut *tx)
        .await?;
    let entry = ledger::post(
        &mut tx,
        ledger::Movement {
            user_id: &actor.user_id,
            amount_micros: -price,
            kind: ledger::Kind::Rental,
            description: &format!("Rental of {server_name} for {}", days_text(days)),
            reference: Some(&rental.id),
            idempotency_key: None,
            token_id: actor.token_id.as_deref(),
        },
    )
    .await?
    .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("rental debit deduplicated")))?;
    audit::record(&mut tx, Some(&actor.user_id), "rental.create", "rental", Some(&rental.id),
        serde_json::json!({"server_id": server_id, "days": days, "price_micros": price, "pool_id": rental.pool_id})).await?;
    tx.commit().await?;
    Ok((rental, entry))
}

/// Records a new active rental; 409 when the server is rented meanwhile (the unique index on
/// active rentals settles the race).
async fn insert(tx: &mut Tx<'_>, rental: &RentalRow) -> ServiceResult<()> {
    let now = rental.created_at;
    // A rental past its end that the sweep has not reached yet must not block a new one.
    sqlx::query("UPDATE rentals SET status = 'expired', updated_at = $1 WHERE server_id = $2 AND status = 'active' AND expires_at <= $1")
        .bind(now)
        .bind(&rental.server_id)
        .execute(&mut **tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO rentals (id, user_id, server_id, pool_id, rental_start, rental_end, hold_days, expires_at, status, amount, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $10)",
    )
    .bind(&rental.id)
    .bind(&rental.user_id)
    .bind(&rental.server_id)
    .bind(&rental.pool_id)
    .bind(rental.rental_start)
    .bind(rental.rental_end)
    .bind(rental.hold_days)
    .bind(rental.expires_at)
    .bind(rental.amount)
    .bind(now)
    .execute(&mut **tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(ServiceError::Conflict(
            "This server is already rented; pick another one".into(),
        )),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// The pool a rental goes into: the one named (where the caller may rent), else their default.
async fn target_pool(db: &Db, actor: &Actor, pool_id: Option<&str>) -> ServiceResult<String> {
    let Some(p) = pool_id else {
        return pools::default_pool(db, &actor.user_id).await;
    };
    if !db::is_id(p) {
        return Err(ServiceError::invalid(
            "pool_id must be a 24-character hex id",
        ));
    }
    let role = pools::require_role(db, p, &actor.user_id).await?;
    if !role.can_rent() {
        return Err(ServiceError::Forbidden(
            "Only the pool owner or an admin may add servers to this pool",
        ));
    }
    Ok(p.to_owned())
}

/// 404 unless the server is on the marketplace (not retired).
/// The server's name, when it is on the market.
async fn require_on_market(db: &Db, server_id: &str) -> ServiceResult<String> {
    if !db::is_id(server_id) {
        return Err(ServiceError::NotFound("Server"));
    }
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT status, name FROM marketplace_servers WHERE id = $1")
            .bind(server_id)
            .fetch_optional(db)
            .await?;
    match row {
        Some((status, name)) if status == SERVER_ACTIVE => Ok(name),
        _ => Err(ServiceError::NotFound("Server")),
    }
}

/// `1 day`, `7 days`: how a billing line names a term.
fn days_text(days: i64) -> String {
    if days == 1 {
        "1 day".into()
    } else {
        format!("{days} days")
    }
}

/// A rental the caller may see (theirs, or in a pool they belong to); 404 otherwise.
pub async fn find_visible(db: &Db, user_id: &str, rental_id: &str) -> ServiceResult<RentalRow> {
    if !db::is_id(rental_id) {
        return Err(ServiceError::NotFound("Rental"));
    }
    let row: Option<RentalRow> = sqlx::query_as(&format!(
        "SELECT {RENTAL_COLUMNS} FROM rentals r WHERE r.id = $1 AND (r.user_id = $2 OR r.pool_id IN
           (SELECT pool_id FROM pool_members WHERE user_id = $2 AND is_authorized = 1))"
    ))
    .bind(rental_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.ok_or(ServiceError::NotFound("Rental"))
}

/// Extends a rental by `days` (one of the server's durations), paid by the caller. Pool owners
/// and admins may extend the pool's rentals.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %actor.user_id, rental_id, days))]
pub async fn extend(
    db: &Db,
    actor: &Actor,
    rental_id: &str,
    days: i64,
) -> ServiceResult<(RentalRow, ledger::Entry)> {
    if days < 1 {
        return Err(ServiceError::invalid("additional_days must be at least 1"));
    }
    let rental = find_visible(db, &actor.user_id, rental_id).await?;
    let role = pools::role_of(db, &rental.pool_id, &actor.user_id).await?;
    if !role.is_some_and(pools::Role::can_rent) {
        return Err(ServiceError::Forbidden(
            "Only the pool owner or an admin may extend this rental",
        ));
    }
    let now = db::now_ms();
    if rental.status != RentalStatus::Active || rental.expires_at <= now {
        return Err(ServiceError::Conflict(
            "This rental has ended and can no longer be extended".into(),
        ));
    }
    let price = price_for(db, &rental.server_id, days).await?;
    let server_name: String =
        sqlx::query_scalar("SELECT name FROM marketplace_servers WHERE id = $1")
            .bind(&rental.server_id)
            .fetch_optional(db)
            .await?
            .unwrap_or_else(|| "a server".into());
    let mut tx = crate::infra::db::begin(db).await?;
    let done = sqlx::query(
        "UPDATE rentals SET rental_end = rental_end + $1, expires_at = expires_at + $1, amount = amount + $2, updated_at = $3
         WHERE id = $4 AND status = 'active'",
    )
    .bind(days * DAY_MS)
    .bind(price)
    .bind(now)
    .bind(rental_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::Conflict(
            "This rental has ended and can no longer be extended".into(),
        ));
    }
    // The server stays off the marketplace until the rental's new end (and hold).
    let generation = browse::bump_generation(&mut tx).await?;
    sqlx::query(
        "UPDATE marketplace_servers SET generation = $1,
             rented_until = (SELECT expires_at FROM rentals WHERE id = $2)
         WHERE id = $3",
    )
    .bind(generation)
    .bind(rental_id)
    .bind(&rental.server_id)
    .execute(&mut *tx)
    .await?;
    let entry = ledger::post(
        &mut tx,
        ledger::Movement {
            user_id: &actor.user_id,
            amount_micros: -price,
            kind: ledger::Kind::Extension,
            description: &format!("{server_name}: rental extended by {}", days_text(days)),
            reference: Some(rental_id),
            idempotency_key: None,
            token_id: actor.token_id.as_deref(),
        },
    )
    .await?
    .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("extension debit deduplicated")))?;
    audit::record(
        &mut tx,
        Some(&actor.user_id),
        "rental.extend",
        "rental",
        Some(rental_id),
        serde_json::json!({"days": days, "price_micros": price}),
    )
    .await?;
    tx.commit().await?;
    Ok((find_visible(db, &actor.user_id, rental_id).await?, entry))
}

/// Moves an active rental into another pool: its members see the server from then on, the old
/// pool's no longer (unless they belong to both). The caller must be able to rent into both
/// pools (owner or admin of each: 403 otherwise); a rental the caller cannot see is a 404, an
/// ended one a 409, and moving it where it already is changes nothing. Audited.
pub async fn move_to_pool(
    db: &Db,
    actor: &Actor,
    rental_id: &str,
    pool_id: &str,
) -> ServiceResult<RentalRow> {
    let rental = find_visible(db, &actor.user_id, rental_id).await?;
    let from = pools::role_of(db, &rental.pool_id, &actor.user_id).await?;
    if !from.is_some_and(pools::Role::can_rent) {
        return Err(ServiceError::Forbidden(
            "Only the owner or an admin of the rental's pool may move it",
        ));
    }
    let to = target_pool(db, actor, Some(pool_id)).await?;
    if to == rental.pool_id {
        return Ok(rental);
    }
    let mut tx = crate::infra::db::begin(db).await?;
    let done = sqlx::query(
        "UPDATE rentals SET pool_id = $1, updated_at = $2 WHERE id = $3 AND status = 'active' AND pool_id = $4",
    )
    .bind(&to)
    .bind(db::now_ms())
    .bind(rental_id)
    .bind(&rental.pool_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::Conflict(
            "This rental has ended (or moved meanwhile) and cannot be moved".into(),
        ));
    }
    audit::record(
        &mut tx,
        Some(&actor.user_id),
        "rental.move",
        "rental",
        Some(rental_id),
        serde_json::json!({"from_pool": rental.pool_id, "to_pool": to}),
    )
    .await?;
    tx.commit().await?;
    find_visible(db, &actor.user_id, rental_id).await
}

/// The caller's rentals and those of their pools, newest first, active and ended.
pub async fn list_visible(db: &Db, user_id: &str) -> ServiceResult<Vec<RentalRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RENTAL_COLUMNS} FROM rentals r WHERE r.user_id = $1 OR r.pool_id IN
           (SELECT pool_id FROM pool_members WHERE user_id = $1 AND is_authorized = 1)
         ORDER BY r.created_at DESC, r.id DESC"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

/// Servers of the given rentals, by server id.
pub async fn servers_for(
    db: &Db,
    rows: &[RentalRow],
) -> ServiceResult<BTreeMap<String, MarketServer>> {
    let mut ids: Vec<String> = rows.iter().map(|r| r.server_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let prices = browse::prices_of(db, &ids).await?;
    for chunk in ids.chunks(500) {
        let ps: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {READ_COLUMNS} FROM marketplace_servers s WHERE s.id IN ({})",
            ps.join(", ")
        );
        let mut q = sqlx::query_as::<_, ServerRow>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(db).await? {
            let id = row_id(&row);
            let p = prices.get(&id).cloned().unwrap_or_default();
            out.insert(id, row.into_server(&p));
        }
    }
    Ok(out)
}

fn row_id(row: &ServerRow) -> String {
    row.id_ref().to_owned()
}

/// Rentals as the `/api/v1` dialect lists them.
pub async fn to_api_list(db: &Db, rows: Vec<RentalRow>) -> ServiceResult<Vec<Rental>> {
    let servers = servers_for(db, &rows).await?;
    let now = db::now_ms();
    Ok(rows
        .into_iter()
        .filter_map(|r| servers.get(&r.server_id).cloned().map(|s| r.to_api(s, now)))
        .collect())
}

/// One rental with its server and payments.
pub async fn detail(db: &Db, user_id: &str, rental_id: &str) -> ServiceResult<Rental> {
    let row = find_visible(db, user_id, rental_id).await?;
    let entries: Vec<ledger::Entry> = sqlx::query_as(
        "SELECT id, user_id, amount_micros, kind, description, reference, created_at FROM ledger
         WHERE reference = $1 AND kind IN ('rental', 'extension') ORDER BY created_at, id",
    )
    .bind(rental_id)
    .fetch_all(db)
    .await?;
    let server = browse::get_any(db, &row.server_id).await?;
    let mut rental = row.to_api(server, db::now_ms());
    rental.access = Some(access(db, &rental, row.rental_start).await?);
    let txs: Vec<Transaction> = entries.iter().map(transaction).collect();
    rental.transaction = txs.first().cloned();
    rental.transactions = Some(txs);
    Ok(rental)
}

/// Ends every rental whose time (and hold) is over and frees its server. Idempotent; returns how
/// many ended.
pub async fn expire_due(db: &Db, now: i64) -> ServiceResult<u64> {
    let mut tx = crate::infra::db::begin(db).await?;
    let done = sqlx::query("UPDATE rentals SET status = 'expired', updated_at = $1 WHERE status = 'active' AND expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() > 0 {
        let generation = browse::bump_generation(&mut tx).await?;
        sqlx::query("UPDATE marketplace_servers SET rented_until = NULL, generation = $1 WHERE rented_until <= $2")
            .bind(generation)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected())
}
