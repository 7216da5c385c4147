//! Billing reads and alert addresses (reference 002 "Billing"): balance, paginated history of
//! ledger movements, and the extra addresses that get low-balance emails.

use crate::accounts::users::normalize_email;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::money::ledger::Entry;

/// How many alert addresses one account may have besides its own email.
pub const MAX_NOTIFY_EMAILS: i64 = 10;
pub const HISTORY_MAX_LIMIT: i64 = 100;

/// One page of the caller's ledger, newest first, and the number of movements in all.
pub async fn history(
    db: &Pool,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<Entry>, i64)> {
    page_of(
        db,
        "SELECT id, user_id, amount_micros, kind, description, reference, created_at
           FROM ledger WHERE user_id = $1",
        user_id,
        limit,
        offset,
    )
    .await
}

/// The caller's money movements for people to read: as [`history`], except that the metering's
/// per-minute `usage` entries are summed per hour (one line "Compute usage" per UTC hour, dated
/// at that hour's last charge), so an hour of machines is one line, not sixty. Newest first;
/// `total` counts lines. The API's history stays entry by entry.
pub async fn statement_lines(
    db: &Pool,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<Entry>, i64)> {
    page_of(
        db,
        "SELECT id, user_id, amount_micros, kind, description, reference, created_at
           FROM ledger WHERE user_id = $1 AND kind <> 'usage'
         UNION ALL
         SELECT MIN(id), user_id, CAST(SUM(amount_micros) AS BIGINT), 'usage', 'Compute usage',
                NULL, MAX(created_at)
           FROM ledger WHERE user_id = $1 AND kind = 'usage'
          GROUP BY user_id, created_at / 3600000",
        user_id,
        limit,
        offset,
    )
    .await
}

/// One page (newest first) of the entries `lines` selects for `$1` = `user_id`, and how many
/// there are in all.
async fn page_of(
    db: &Pool,
    lines: &str,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<Entry>, i64)> {
    if !(1..=HISTORY_MAX_LIMIT).contains(&limit) {
        return Err(ServiceError::invalid(format!(
            "limit must be between 1 and {HISTORY_MAX_LIMIT}"
        )));
    }
    if offset < 0 {
        return Err(ServiceError::invalid("offset must not be negative"));
    }
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ({lines}) lines"))
        .bind(user_id)
        .fetch_one(db)
        .await?;
    let rows: Vec<Entry> = sqlx::query_as(&format!(
        "SELECT * FROM ({lines}) lines ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// What one UTC day cost: per-minute machine usage and rentals (with their extensions), in
/// micro-USD as positive numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySpend {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub machines: i64,
    pub rentals: i64,
}

/// The caller's spending over the last `days` UTC days, today included, one entry per day
/// (oldest first; days without spending are zeros). Summed by the database per day and kind, so
/// a month of per-minute usage lines costs one small query.
pub async fn daily_spend(
    db: &Pool,
    user_id: &str,
    days: i64,
    now_ms: i64,
) -> ServiceResult<Vec<DaySpend>> {
    const DAY_MS: i64 = 86_400_000;
    let today = now_ms.div_euclid(DAY_MS);
    let first = today - days + 1;
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT created_at / 86400000 AS day, kind, CAST(SUM(-amount_micros) AS BIGINT)
         FROM ledger
         WHERE user_id = $1 AND created_at >= $2 AND amount_micros < 0
           AND kind IN ('usage', 'rental', 'extension')
         GROUP BY created_at / 86400000, kind",
    )
    .bind(user_id)
    .bind(first * DAY_MS)
    .fetch_all(db)
    .await?;
    let mut out: Vec<DaySpend> = (first..=today)
        .map(|day| DaySpend {
            day,
            ..Default::default()
        })
        .collect();
    for (day, kind, amount) in rows {
        let Some(slot) = out.get_mut((day - first) as usize) else {
            continue;
        };
        if kind == "usage" {
            slot.machines += amount;
        } else {
            slot.rentals += amount;
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotifyEmail {
    pub id: String,
    pub email: String,
    pub created_at: i64,
}

pub async fn list_notify_emails(db: &Pool, user_id: &str) -> ServiceResult<Vec<NotifyEmail>> {
    Ok(sqlx::query_as("SELECT id, email, created_at FROM notify_emails WHERE user_id = $1 ORDER BY created_at, id")
        .bind(user_id)
        .fetch_all(db)
        .await?)
}

/// Adds an alert address: valid, not yet listed, at most [`MAX_NOTIFY_EMAILS`].
pub async fn add_notify_email(db: &Pool, user_id: &str, email: &str) -> ServiceResult<NotifyEmail> {
    let email = normalize_email(email)?;
    let mut tx = crate::infra::db::begin(db).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notify_emails WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_NOTIFY_EMAILS {
        return Err(ServiceError::Conflict(format!(
            "At most {MAX_NOTIFY_EMAILS} notification emails; remove one first"
        )));
    }
    let row = NotifyEmail {
        id: db::new_id(),
        email,
        created_at: db::now_ms(),
    };
    sqlx::query(
        "INSERT INTO notify_emails (id, user_id, email, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&row.id)
    .bind(user_id)
    .bind(&row.email)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ServiceError::Conflict("This address is already on the list".into())
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    Ok(row)
}

pub async fn remove_notify_email(db: &Pool, user_id: &str, id: &str) -> ServiceResult<()> {
    let done = sqlx::query("DELETE FROM notify_emails WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Notification email"));
    }
    Ok(())
}

/// The account address and every low-balance alert address of a user.
pub async fn recipients(db: &Pool, user_id: &str) -> ServiceResult<Vec<String>> {
    let mut to: Vec<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_all(db)
        .await?;
    let extra: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM notify_emails WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    for e in extra {
        if !to.contains(&e) {
            to.push(e);
        }
    }
    Ok(to)
}
