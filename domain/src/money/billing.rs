//! Billing reads and alert addresses (the `/api` dialect "Billing"): balance, paginated history of
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

/// One line of the billing history people read: a ledger movement, or one machine's usage in
/// one UTC hour (`machine` and `minutes` set).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Line {
    pub id: String,
    pub amount_micros: i64,
    pub kind: String,
    pub description: String,
    /// What caused it (a top-up's checkout session, a rental id, ...), as on the ledger.
    pub reference: Option<String>,
    /// The machine a usage line is for, by the name it had then.
    pub machine: Option<String>,
    /// Minutes of that machine the line charges.
    pub minutes: Option<i64>,
    pub created_at: i64,
}

/// The caller's money movements for people to read: as [`history`], except that the meter's
/// per-minute usage is itemized per machine and UTC hour ("web-1, 60 min"), from `usage_hours`,
/// dated at the hour's last charge. Usage the breakdown does not cover (charged before it
/// existed, or capped at a balance that ran out) is summed per hour as "Compute usage". Newest
/// first; `total` counts lines. The API's history stays entry by entry.
pub async fn statement_lines(
    db: &Pool,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<Line>, i64)> {
    page_of(
        db,
        "SELECT id, amount_micros, kind, description, reference,
                CAST(NULL AS TEXT) AS machine, CAST(NULL AS BIGINT) AS minutes, created_at
           FROM ledger WHERE user_id = $1 AND kind <> 'usage'
         UNION ALL
         SELECT MIN(id), CAST(SUM(amount_micros) AS BIGINT), 'usage', 'Compute usage', NULL,
                NULL, NULL, MAX(created_at)
           FROM ledger WHERE user_id = $1 AND kind = 'usage' AND itemized = 0
          GROUP BY user_id, created_at / 3600000
         UNION ALL
         SELECT id, -amount_micros, 'usage', 'Machine usage', NULL, instance_name, minutes, last_at
           FROM usage_hours WHERE user_id = $1",
        user_id,
        limit,
        offset,
    )
    .await
}

/// One page (newest first) of the rows `lines` selects for `$1` = `user_id`, and how many
/// there are in all.
async fn page_of<T>(
    db: &Pool,
    lines: &str,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<T>, i64)>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
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
    let rows: Vec<T> = sqlx::query_as(&format!(
        "SELECT * FROM ({lines}) lines ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// A calendar month (UTC), the period of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

impl Month {
    /// The month of `ms` since the epoch.
    pub fn of(ms: i64) -> Self {
        let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Self {
            year: t.year(),
            month: t.month() as u8,
        }
    }

    /// Ms since the epoch at the month's first instant.
    pub fn start_ms(self) -> i64 {
        let month = time::Month::try_from(self.month).unwrap_or(time::Month::January);
        time::Date::from_calendar_date(self.year, month, 1)
            .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
            .unwrap_or(0)
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                month: self.month + 1,
                ..self
            }
        }
    }
}

impl Month {
    /// `December 2026`.
    pub fn title(self) -> String {
        let name = time::Month::try_from(self.month).map_or("?".into(), |m| m.to_string());
        format!("{name} {}", self.year)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl std::str::FromStr for Month {
    type Err = ServiceError;

    /// `YYYY-MM`, years 2000 to 9999.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ServiceError::invalid("A month is written YYYY-MM, e.g. 2026-12");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if !(2000..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Self { year, month })
    }
}

/// One machine's usage over a statement's month.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MachineUsage {
    pub instance_id: String,
    /// Its name at its last charge in the month.
    pub name: String,
    pub minutes: i64,
    /// What it cost (µUSD, positive).
    pub amount_micros: i64,
}

/// A monthly statement: the balance at the start and end of a UTC month and everything that
/// moved it, grouped the way a customer checks a bill. The parts add up exactly:
/// `opening + credits + rentals − machines − other_usage = closing`, every amount from the
/// ledger (machines from its breakdown, `usage_hours`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub month: Month,
    pub opening_micros: i64,
    pub closing_micros: i64,
    /// Top-ups, refunds and operators' adjustments, oldest first (signed as on the ledger).
    pub credits: Vec<Entry>,
    /// Rentals and their extensions, oldest first (negative).
    pub rentals: Vec<Entry>,
    /// Per machine, the most expensive first.
    pub machines: Vec<MachineUsage>,
    /// Usage the breakdown does not cover (charged before it existed, or capped at a balance
    /// that ran out), as a positive amount.
    pub other_usage_micros: i64,
}

/// The caller's statement for `month`. Months before the account existed or after the current
/// one are refused (404), so a statement is never an empty page that looks like a real one.
pub async fn statement(
    db: &Pool,
    user_id: &str,
    month: Month,
    now_ms: i64,
) -> ServiceResult<Statement> {
    let created: i64 = sqlx::query_scalar("SELECT created_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(db)
        .await?;
    if month < Month::of(created) || month > Month::of(now_ms) {
        return Err(ServiceError::NotFound("Statement"));
    }
    let (from, to) = (month.start_ms(), month.next().start_ms());
    let balance_before = |at: i64| {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) FROM ledger
             WHERE user_id = $1 AND created_at < $2",
        )
        .bind(user_id)
        .bind(at)
        .fetch_one(db)
    };
    let opening_micros = balance_before(from).await?;
    let closing_micros = balance_before(to).await?;
    let entries: Vec<Entry> = sqlx::query_as(
        "SELECT id, user_id, amount_micros, kind, description, reference, created_at FROM ledger
         WHERE user_id = $1 AND created_at >= $2 AND created_at < $3 AND kind <> 'usage'
         ORDER BY created_at, id",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let (rentals, credits) = entries
        .into_iter()
        .partition(|e| e.kind == "rental" || e.kind == "extension");
    let machines: Vec<MachineUsage> = sqlx::query_as(
        "SELECT instance_id, MAX(instance_name) AS name, CAST(SUM(minutes) AS BIGINT) AS minutes,
                CAST(SUM(amount_micros) AS BIGINT) AS amount_micros
         FROM usage_hours WHERE user_id = $1 AND hour_start >= $2 AND hour_start < $3
         GROUP BY instance_id ORDER BY amount_micros DESC, name",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let other_usage_micros: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(-amount_micros), 0) AS BIGINT) FROM ledger
         WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
           AND kind = 'usage' AND itemized = 0",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_one(db)
    .await?;
    Ok(Statement {
        month,
        opening_micros,
        closing_micros,
        credits,
        rentals,
        machines,
        other_usage_micros,
    })
}

/// The months the caller has statements for, newest first: from the account's first month to
/// the current one (at most the last 24).
pub async fn statement_months(db: &Pool, user_id: &str, now_ms: i64) -> ServiceResult<Vec<Month>> {
    let created: i64 = sqlx::query_scalar("SELECT created_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(db)
        .await?;
    let (first, mut month) = (Month::of(created), Month::of(now_ms));
    let mut months = Vec::new();
    while month >= first && months.len() < 24 {
        months.push(month);
        month = if month.month == 1 {
            Month {
                year: month.year - 1,
                month: 12,
            }
        } else {
            Month {
                month: month.month - 1,
                ..month
            }
        };
    }
    Ok(months)
}

/// A top-up's receipt: the caller's own `topup` ledger entry (404 for anything else).
pub async fn receipt(db: &Pool, user_id: &str, entry_id: &str) -> ServiceResult<Entry> {
    sqlx::query_as(
        "SELECT id, user_id, amount_micros, kind, description, reference, created_at FROM ledger
         WHERE id = $1 AND user_id = $2 AND kind = 'topup'",
    )
    .bind(entry_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("Receipt"))
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
