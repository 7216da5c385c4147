//! The meter: running instances pay per minute from the prepaid balance.
//!
//! An instance is billable while `metered_until` is set, at `metered_rate_micros` per hour: its
//! price from the moment it is running; after it stops, its held rate (its disk per GB-hour and
//! its public IPv4 address per hour, [`HeldRates`](crate::fleet::catalog::HeldRates)), because a stopped machine gives its vCPU and
//! memory back to the node but still holds those; nothing once it fails or is deleted. Each
//! change of rate settles the segment before it ([`bill`]). A tick charges every billable instance for the whole minutes
//! elapsed since `metered_until` and moves `metered_until` on by exactly those minutes, in
//! set-based statements in one transaction: usage rows into the ledger (one per user per tick,
//! tagged with the tick's batch id), the cached balances, each machine's share per hour
//! (`usage_hours`, what statements itemize), the instances. Because the charge is
//! derived from `metered_until` and advances it atomically, a tick that runs late catches up
//! exactly, a tick that runs twice charges nothing the second time, and two replicas are
//! serialised by the `counters` row every tick locks first.
//!
//! Amounts are cumulative: the n-th minute of an instance costs
//! `floor(price × n / 60) − floor(price × (n−1) / 60)` micro-USD, so an hour always costs exactly
//! the hourly price even when it is not divisible by 60, and nothing is rounded away.
//!
//! When an instance leaves a rate, [`settle`] charges the started minute and ends that segment. A balance is never driven below zero: a user's charge is capped at their balance, and
//! the running-out rules ([`tick`]) stop their instances after the grace period — usage beyond the
//! balance during the grace period is not billed (the operator's risk is at most the grace period),
//! and deletes their stopped machines `retention_days` after the balance ran out (the disk and
//! address nobody pays for any more go back to the platform).

use tracing::instrument;

use crate::compute::notices::Notice;
use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::ServiceResult;
use crate::infra::queue::{self, JobKind};

pub const MINUTE_MS: i64 = 60_000;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Users charged.
    pub charged: u64,
    /// Users whose balance just ran out with instances running.
    pub exhausted: Vec<String>,
    /// Instances stopped because their user's grace period ended.
    pub stopped: Vec<String>,
    /// Stopped instances deleted because their user's balance stayed out past the retention.
    pub deleted: Vec<String>,
    /// Users whose runway just fell below the warning threshold.
    pub warned: Vec<String>,
}

/// Takes the meter lock (the `counters` row): ticks and settlements run one at a time.
async fn lock(tx: &mut Tx<'_>) -> ServiceResult<()> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'meter'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Charges billable instances up to `now`. `only` limits it to one instance and charges its
/// started minute too, then ends its billing (the settle case).
async fn charge(tx: &mut Tx<'_>, now: i64, only: Option<&str>) -> ServiceResult<u64> {
    let (filter, minutes, next) = match only {
        None => (
            "metered_until IS NOT NULL AND metered_until + 60000 <= $1 AND $2 = ''",
            "(($1 - metered_until) / 60000)",
            "metered_until + (($1 - metered_until) / 60000) * 60000",
        ),
        Some(_) => (
            "metered_until IS NOT NULL AND id = $2",
            "(CASE WHEN $1 > metered_until THEN ($1 - metered_until + 59999) / 60000 ELSE 0 END)",
            "NULL",
        ),
    };
    let batch = db::new_id();
    let id_sql = db::new_id_sql(db::backend_of(tx));
    let inserted = sqlx::query(&format!(
        "INSERT INTO ledger (id, user_id, amount_micros, kind, description, created_at, batch_id, itemized)
         SELECT {id_sql}, d.user_id, -(CASE WHEN d.due > u.balance_micros THEN u.balance_micros ELSE d.due END),
                'usage', 'Compute usage', $1, $3, CASE WHEN d.due > u.balance_micros THEN 0 ELSE 1 END
         FROM (SELECT user_id,
                      CAST(SUM((metered_rate_micros * (metered_minutes + {minutes})) / 60
                               - (metered_rate_micros * metered_minutes) / 60) AS BIGINT) AS due
               FROM instances WHERE {filter} GROUP BY user_id) d
         JOIN users u ON u.id = d.user_id
         WHERE d.due > 0 AND u.balance_micros > 0"
    ))
    .bind(now)
    .bind(only.unwrap_or(""))
    .bind(&batch)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() > 0 {
        sqlx::query(
            "UPDATE users SET balance_micros = balance_micros
                 + (SELECT l.amount_micros FROM ledger l WHERE l.batch_id = $1 AND l.user_id = users.id)
             WHERE id IN (SELECT user_id FROM ledger WHERE batch_id = $1)",
        )
        .bind(&batch)
        .execute(&mut **tx)
        .await?;
    }
    // The breakdown per machine and hour of every usage row charged in full (`itemized`): what
    // statements show. A row capped at a balance that ran out is shown as it is instead, since
    // which machine's minutes went unpaid is not a question with one answer.
    let hour_id_sql = db::new_id_sql(db::backend_of(tx));
    sqlx::query(&format!(
        "INSERT INTO usage_hours (id, instance_id, hour_start, user_id, instance_name,
                                 amount_micros, minutes, last_at)
         SELECT {hour_id_sql}, id, ($1 / 3600000) * 3600000, user_id, name,
                (metered_rate_micros * (metered_minutes + {minutes})) / 60
                    - (metered_rate_micros * metered_minutes) / 60,
                {minutes}, $1
         FROM instances
         WHERE {filter} AND {minutes} > 0
           AND user_id IN (SELECT user_id FROM ledger WHERE batch_id = $3 AND itemized = 1)
         ON CONFLICT (instance_id, hour_start) DO UPDATE SET
             amount_micros = usage_hours.amount_micros + excluded.amount_micros,
             minutes = usage_hours.minutes + excluded.minutes,
             last_at = excluded.last_at"
    ))
    .bind(now)
    .bind(only.unwrap_or(""))
    .bind(&batch)
    .execute(&mut **tx)
    .await?;
    // Usage counts against the spend limit of the token that created the instance (the limit
    // is enforced by stopping its instances in `tick`); counted before the instances move on.
    sqlx::query(&format!(
        "UPDATE access_tokens SET spent_micros = spent_micros + COALESCE((
             SELECT CAST(SUM((metered_rate_micros * (metered_minutes + {minutes})) / 60
                             - (metered_rate_micros * metered_minutes) / 60) AS BIGINT)
             FROM instances WHERE {filter} AND token_id = access_tokens.id), 0)
         WHERE id IN (SELECT token_id FROM instances WHERE {filter} AND token_id IS NOT NULL)"
    ))
    .bind(now)
    .bind(only.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE instances SET metered_minutes = metered_minutes + {minutes}, metered_until = {next},
             billed_micros = billed_micros + (metered_rate_micros * (metered_minutes + {minutes})) / 60
                                           - (metered_rate_micros * metered_minutes) / 60
         WHERE {filter}"
    ))
    .bind(now)
    .bind(only.unwrap_or(""))
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected())
}

/// Ends billing for an instance that stopped, failed or was deleted at `at`, charging its last
/// started minute. Call inside the transaction that changes its state.
pub async fn settle(tx: &mut Tx<'_>, instance_id: &str, at: i64) -> ServiceResult<()> {
    lock(tx).await?;
    charge(tx, at, Some(instance_id)).await?;
    Ok(())
}

/// Which rate an instance pays from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// It runs: its plan's hourly price.
    Running,
    /// It is stopped: what it still holds (`held_hourly_micros`, see [`HeldRates`](crate::fleet::catalog::HeldRates)).
    Held,
}

/// Bills the instance at `rate` from `at`: settles the segment it was billed in (its started
/// minute) and begins a new one. Idempotent: an instance already billed at that rate is left
/// as it is, and a zero rate (a stopped machine that holds nothing billable) ends billing.
/// Call inside the transaction that changes its state.
pub async fn bill(tx: &mut Tx<'_>, instance_id: &str, at: i64, rate: Rate) -> ServiceResult<()> {
    let column = match rate {
        Rate::Running => "price_hourly_micros",
        Rate::Held => "held_hourly_micros",
    };
    let current: Option<(Option<i64>, i64, i64)> = sqlx::query_as(&format!(
        "SELECT metered_until, metered_rate_micros, {column} FROM instances WHERE id = $1"
    ))
    .bind(instance_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((until, current_rate, wanted)) = current else {
        return Ok(());
    };
    if until.is_some() && current_rate == wanted {
        return Ok(());
    }
    if until.is_some() {
        settle(tx, instance_id, at).await?;
    }
    if wanted > 0 {
        sqlx::query(
            "UPDATE instances SET metered_until = $1, metered_minutes = 0, metered_rate_micros = $2 WHERE id = $3",
        )
        .bind(at)
        .bind(wanted)
        .bind(instance_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What an account's billed machines cost per hour, as a subquery over `users`.
const USAGE: &str = "(SELECT COALESCE(SUM(i.metered_rate_micros), 0) FROM instances i WHERE i.user_id = users.id AND i.metered_until IS NOT NULL)";

/// Settings the running-out rules need.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub grace_minutes: i64,
    pub runway_hours: i64,
    /// A top-up ends the running-out state (and so its grace period) only when it covers this
    /// many minutes of what the account runs: the grace period is once per exhaustion, not once
    /// per cent topped up.
    pub min_runtime_minutes: i64,
    /// Days stopped machines are kept after their account's balance ran out.
    pub retention_days: i64,
}

impl Rules {
    pub fn of(config: &crate::infra::config::Config) -> Self {
        Rules {
            grace_minutes: config.balance_grace_minutes,
            runway_hours: config.low_balance_runway_hours,
            min_runtime_minutes: config.min_runtime_minutes,
            retention_days: config.stopped_retention_days,
        }
    }
}

/// One tick at `now`: charge, then apply the running-out rules. Stop jobs and mails are enqueued
/// in the same transaction as the state they report.
#[instrument(skip_all, err(level = "info", Debug), fields(now))]
pub async fn tick(db: &Pool, now: i64, rules: Rules) -> ServiceResult<TickReport> {
    let mut tx = crate::infra::db::begin(db).await?;
    lock(&mut tx).await?;
    let charged = charge(&mut tx, now, None).await?;
    // Follow-up jobs are due at once by the wall clock, whatever clock `now` came from.
    let due = now.min(db::now_ms());

    // A top-up ends the running-out state only when it pays for the minimum runtime of what
    // runs: a cent would otherwise start a new free grace period for every machine at once.
    sqlx::query(&format!(
        "UPDATE users SET exhausted_at = NULL
         WHERE exhausted_at IS NOT NULL AND balance_micros > 0
           AND balance_micros * 60 >= {USAGE} * $1"
    ))
    .bind(rules.min_runtime_minutes)
    .execute(&mut *tx)
    .await?;
    let exhausted: Vec<String> = sqlx::query_scalar(
        "UPDATE users SET exhausted_at = $1
         WHERE exhausted_at IS NULL AND balance_micros = 0
           AND id IN (SELECT user_id FROM instances WHERE metered_until IS NOT NULL)
         RETURNING id",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    mail_each(&mut tx, &exhausted, Notice::Exhausted, due).await?;

    let deadline = now - rules.grace_minutes * MINUTE_MS;
    let stopped: Vec<(String, String)> = sqlx::query_as(
        "UPDATE instances SET state = 'stopping', transition = 'stop', reason = 'Stopped because the balance ran out', updated_at = $1
         WHERE state = 'running' AND transition IS NULL
           AND user_id IN (SELECT id FROM users WHERE exhausted_at IS NOT NULL AND exhausted_at <= $2)
         RETURNING id, user_id",
    )
    .bind(now)
    .bind(deadline)
    .fetch_all(&mut *tx)
    .await?;
    stop_each(&mut tx, &stopped, due).await?;
    // A token that reached its spend limit stops what it started.
    let over_limit: Vec<(String, String)> = sqlx::query_as(
        "UPDATE instances SET state = 'stopping', transition = 'stop',
             reason = 'Stopped because the access token that created it reached its spend limit', updated_at = $1
         WHERE state = 'running' AND transition IS NULL
           AND token_id IN (SELECT id FROM access_tokens WHERE spend_limit_micros IS NOT NULL AND spent_micros >= spend_limit_micros)
         RETURNING id, user_id",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    stop_each(&mut tx, &over_limit, due).await?;
    mail_each(&mut tx, users_of(&stopped), Notice::Stopped, due).await?;

    // A stopped machine of an account that stayed out of money for `retention_days` is deleted:
    // its disk and address would otherwise be held for free for ever. The exhaustion notice
    // said when.
    let retention_deadline = now - rules.retention_days * 24 * 60 * MINUTE_MS;
    let deleted: Vec<(String, String)> = sqlx::query_as(
        "UPDATE instances SET transition = 'delete', updated_at = $1,
             reason = 'Deleted because the balance ran out and was not topped up within the retention period'
         WHERE state = 'stopped' AND transition IS NULL
           AND user_id IN (SELECT id FROM users WHERE exhausted_at IS NOT NULL AND exhausted_at <= $2)
         RETURNING id, user_id",
    )
    .bind(now)
    .bind(retention_deadline)
    .fetch_all(&mut *tx)
    .await?;
    enqueue_each(&mut tx, JobKind::Delete, &deleted, due).await?;
    mail_each(&mut tx, users_of(&deleted), Notice::Deleted, due).await?;

    // Low runway: warn once per crossing; the mark clears when the runway is long again.
    sqlx::query(&format!(
        "UPDATE users SET low_balance_notified_at = NULL
         WHERE low_balance_notified_at IS NOT NULL AND balance_micros >= {USAGE} * $1"
    ))
    .bind(rules.runway_hours)
    .execute(&mut *tx)
    .await?;
    let warned: Vec<String> = sqlx::query_scalar(&format!(
        "UPDATE users SET low_balance_notified_at = $1
         WHERE low_balance_notified_at IS NULL AND balance_micros > 0 AND balance_micros < {USAGE} * $2
         RETURNING id"
    ))
    .bind(now)
    .bind(rules.runway_hours)
    .fetch_all(&mut *tx)
    .await?;
    mail_each(&mut tx, &warned, Notice::LowBalance, due).await?;
    tx.commit().await?;
    Ok(TickReport {
        charged,
        exhausted,
        stopped: stopped
            .into_iter()
            .chain(over_limit)
            .map(|(i, _)| i)
            .collect(),
        deleted: deleted.into_iter().map(|(i, _)| i).collect(),
        warned,
    })
}

/// Enqueues a balance notice for each user.
async fn mail_each<'a>(
    tx: &mut Tx<'_>,
    users: impl IntoIterator<Item = &'a String>,
    notice: Notice,
    due: i64,
) -> ServiceResult<()> {
    for user in users {
        let payload = serde_json::json!({ "template": notice.as_str() });
        queue::enqueue(tx, JobKind::Mail, Some(user), None, payload, due).await?;
    }
    Ok(())
}

/// Each user of (instance, user) pairs, once.
fn users_of(pairs: &[(String, String)]) -> Vec<&String> {
    let mut users: Vec<&String> = pairs.iter().map(|(_, u)| u).collect();
    users.sort();
    users.dedup();
    users
}

/// Enqueues the stop job of each (instance, user) the rules just marked `stopping`.
async fn stop_each(tx: &mut Tx<'_>, stopped: &[(String, String)], due: i64) -> ServiceResult<()> {
    enqueue_each(tx, JobKind::Stop, stopped, due).await
}

/// Enqueues a `kind` job for each (instance, user).
async fn enqueue_each(
    tx: &mut Tx<'_>,
    kind: JobKind,
    pairs: &[(String, String)],
    due: i64,
) -> ServiceResult<()> {
    for (instance, user) in pairs {
        queue::enqueue(
            tx,
            kind,
            Some(user),
            Some(instance),
            serde_json::json!({}),
            due,
        )
        .await?;
    }
    Ok(())
}
