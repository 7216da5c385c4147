//! The ledger: immutable money movements in integer micro-USD.
//!
//! A user's balance is the sum of their ledger rows. `users.balance_micros` caches that sum and is
//! changed only by [`post`], in the same transaction as the row it accounts for; the conditional
//! update (`balance + amount >= 0`) is what stops concurrent debits from overspending.

use tracing::instrument;

use model::money::micros_from_usd;

use crate::infra::audit;
use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};

/// What caused a movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Topup,
    Rental,
    Extension,
    Usage,
    Refund,
    /// An operator's manual adjustment.
    Credit,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Topup => "topup",
            Kind::Rental => "rental",
            Kind::Extension => "extension",
            Kind::Usage => "usage",
            Kind::Refund => "refund",
            Kind::Credit => "credit",
        }
    }
}

/// One movement to post.
#[derive(Debug, Clone)]
pub struct Movement<'a> {
    pub user_id: &'a str,
    /// Positive adds to the balance, negative takes from it.
    pub amount_micros: i64,
    pub kind: Kind,
    pub description: &'a str,
    pub reference: Option<&'a str>,
    /// When set, a second movement with the same key is refused (`Ok(None)`), so retried events
    /// (a webhook delivered twice) move money once.
    pub idempotency_key: Option<&'a str>,
    pub token_id: Option<&'a str>,
}

/// A posted ledger row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub user_id: String,
    pub amount_micros: i64,
    pub kind: String,
    pub description: String,
    pub reference: Option<String>,
    pub created_at: i64,
}

/// An operator's balance adjustment, as recorded.
#[derive(Debug, Clone)]
pub struct Adjustment {
    pub entry: Entry,
    pub amount_micros: i64,
    /// The user's balance right after it.
    pub balance_micros: i64,
}

/// What an adjustment says, and to whom.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdjustmentWords<'a> {
    /// For the operators only (audit log), ≤ 500 characters.
    pub note: Option<&'a str>,
    /// The line the customer reads on their billing page, ≤ 120 characters; unset: "Credit
    /// from the platform" or "Balance correction".
    pub description: Option<&'a str>,
    /// The operator confirmed an amount above `confirm_adjustment_over_usd`.
    pub confirmed: bool,
}

/// Credits (or, negative, debits) a user's balance by an operator's hand: one ledger row and an
/// audit entry in one transaction. `amount_usd` must not be zero nor above `max_adjustment_usd`,
/// and above `confirm_adjustment_over_usd` it must be confirmed; the customer reads the
/// description, the note stays in the audit log.
#[instrument(
    skip_all,
    err(level = "info", Debug),
    fields(admin_id, user_id, amount_usd)
)]
pub async fn adjust(
    db: &Pool,
    config: &crate::infra::config::Config,
    admin_id: &str,
    user_id: &str,
    amount_usd: f64,
    words: AdjustmentWords<'_>,
) -> ServiceResult<Adjustment> {
    let magnitude = micros_from_usd(amount_usd.abs()).map_err(ServiceError::invalid)?;
    if magnitude == 0 {
        return Err(ServiceError::invalid("Amount must not be zero"));
    }
    if magnitude > config.max_adjustment_usd.saturating_mul(1_000_000) {
        return Err(ServiceError::invalid(format!(
            "One adjustment is at most ${} (max_adjustment_usd); split a larger one, or raise the limit",
            config.max_adjustment_usd
        )));
    }
    if magnitude > config.confirm_adjustment_over_usd.saturating_mul(1_000_000) && !words.confirmed
    {
        return Err(ServiceError::invalid(format!(
            "Adjustments above ${} need confirming: send \"confirm\": true (the portal asks with a checkbox)",
            config.confirm_adjustment_over_usd
        )));
    }
    let amount = if amount_usd < 0.0 {
        -magnitude
    } else {
        magnitude
    };
    let note = words.note.unwrap_or_default().trim();
    if note.chars().count() > 500 {
        return Err(ServiceError::invalid("Note must be at most 500 characters"));
    }
    let shown = words.description.unwrap_or_default().trim();
    if shown.chars().count() > 120 {
        return Err(ServiceError::invalid(
            "The customer's line is at most 120 characters",
        ));
    }
    // The customer reads the description on their billing page; the note stays with the
    // operators (audit log).
    let description = match (shown.is_empty(), amount > 0) {
        (false, _) => shown,
        (true, true) => "Credit from the platform",
        (true, false) => "Balance correction",
    };
    let mut tx = crate::infra::db::begin(db).await?;
    let movement = Movement {
        user_id,
        amount_micros: amount,
        kind: Kind::Credit,
        description,
        reference: Some(admin_id),
        idempotency_key: None,
        token_id: None,
    };
    let entry = post(&mut tx, movement).await?.ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("credit without key was deduplicated"))
    })?;
    let details = serde_json::json!({
        "amount_micros": amount, "note": note, "description": description, "ledger_id": entry.id,
    });
    audit::record(
        &mut tx,
        Some(admin_id),
        "user.credit",
        "user",
        Some(user_id),
        details,
    )
    .await?;
    tx.commit().await?;
    let balance_micros = crate::accounts::users::balance(db, user_id).await?;
    tracing::info!(admin = %admin_id, user = %user_id, amount, "balance adjusted");
    Ok(Adjustment {
        entry,
        amount_micros: amount,
        balance_micros,
    })
}

/// Posts a movement inside `tx` and updates the cached balance. A debit larger than the balance
/// fails with `InsufficientBalance` and changes nothing. Returns `None` when the idempotency key
/// was already used.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = m.user_id, amount = m.amount_micros, kind = m.kind.as_str()))]
pub async fn post(tx: &mut Tx<'_>, m: Movement<'_>) -> ServiceResult<Option<Entry>> {
    if let (Some(token_id), true) = (m.token_id, m.amount_micros < 0) {
        charge_token(tx, m.user_id, token_id, -m.amount_micros).await?;
    }
    // Balance first: it takes the row's write lock (and SQLite's write lock) before anything else,
    // so concurrent posts for one user queue up instead of deadlocking.
    let updated = sqlx::query(
        "UPDATE users SET balance_micros = balance_micros + $1
         WHERE id = $2 AND balance_micros + $1 >= 0",
    )
    .bind(m.amount_micros)
    .bind(m.user_id)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance_micros FROM users WHERE id = $1")
                .bind(m.user_id)
                .fetch_optional(&mut **tx)
                .await?;
        return Err(match balance {
            None => ServiceError::NotFound("User"),
            Some(balance) => ServiceError::InsufficientBalance {
                balance,
                required: -m.amount_micros,
                message: "insufficient balance".into(),
            },
        });
    }
    let entry = Entry {
        id: db::new_id(),
        user_id: m.user_id.to_owned(),
        amount_micros: m.amount_micros,
        kind: m.kind.as_str().to_owned(),
        description: m.description.to_owned(),
        reference: m.reference.map(str::to_owned),
        created_at: db::now_ms(),
    };
    let inserted = sqlx::query(
        "INSERT INTO ledger (id, user_id, amount_micros, kind, description, reference, idempotency_key, token_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&entry.id)
    .bind(&entry.user_id)
    .bind(entry.amount_micros)
    .bind(&entry.kind)
    .bind(&entry.description)
    .bind(&entry.reference)
    .bind(m.idempotency_key)
    .bind(m.token_id)
    .bind(entry.created_at)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(Some(entry)),
        // The caller's transaction is now poisoned on PostgreSQL; it must roll back, which also
        // undoes the balance change above.
        Err(e) if m.idempotency_key.is_some() && db::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Counts `amount` against an access token's spend limit, refusing (402) what would pass it.
async fn charge_token(
    tx: &mut Tx<'_>,
    user_id: &str,
    token_id: &str,
    amount: i64,
) -> ServiceResult<()> {
    let done = sqlx::query(
        "UPDATE access_tokens SET spent_micros = spent_micros + $1
         WHERE id = $2 AND (spend_limit_micros IS NULL OR spent_micros + $1 <= spend_limit_micros)",
    )
    .bind(amount)
    .bind(token_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let (limit, spent, balance): (Option<i64>, i64, i64) = sqlx::query_as(
        "SELECT t.spend_limit_micros, t.spent_micros, u.balance_micros FROM access_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.id = $1 AND t.user_id = $2",
    )
    .bind(token_id)
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    Err(token_limit_reached(
        balance,
        amount,
        limit.unwrap_or(0),
        spent,
    ))
}

/// The 402 for a purchase of `required` that a token's spend limit does not allow (µUSD).
pub fn token_limit_reached(balance: i64, required: i64, limit: i64, spent: i64) -> ServiceError {
    ServiceError::InsufficientBalance {
        balance,
        required,
        message: format!(
            "token spend limit reached: this token may spend ${} in all and has spent ${}",
            model::money::usd4(limit),
            model::money::usd4(spent)
        ),
    }
}

/// A user's balance computed from the ledger itself.
pub async fn sum(db: &Pool, user_id: &str) -> ServiceResult<i64> {
    let total: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount_micros) AS BIGINT) FROM ledger WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?;
    Ok(total.unwrap_or(0))
}

/// Users whose cached balance differs from their ledger sum: `(user_id, cached, ledger)`.
/// Empty on a healthy database; `hangar admin check-ledger` prints it.
pub async fn mismatches(db: &Pool) -> ServiceResult<Vec<(String, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT u.id, u.balance_micros, CAST(COALESCE(l.total, 0) AS BIGINT)
         FROM users u
         LEFT JOIN (SELECT user_id, SUM(amount_micros) AS total FROM ledger GROUP BY user_id) l
           ON l.user_id = u.id
         WHERE u.balance_micros <> COALESCE(l.total, 0)",
    )
    .fetch_all(db)
    .await?)
}
