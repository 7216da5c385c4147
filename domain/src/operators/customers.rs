//! Customers as the operators see them: finding an account (by e-mail, username or id), its
//! page (balance, spend, machines, rentals, pools, tokens, two-factor, last sign-in), and what
//! an operator does to it — suspend and reinstate, lift a sign-in lockout.
//!
//! A suspension ends every session, JWT and open console of the account at once (its credentials
//! version moves on), refuses its sign-ins and API tokens with the reason (`ServiceError::
//! Suspended`), stops its running machines (their `reason` says so), and mails the customer.
//! Machines are stopped, not deleted, and rentals run on: a suspension is meant to be lifted or
//! turned into a closure, and neither should have destroyed anything. Reinstating lets the
//! customer sign in again; they start their machines themselves.

use model::accounts::{Customer, CustomerDetail, CustomerMachine, CustomerPool, CustomerRental};
use model::money::Usd4;

use crate::compute::instances::{self, Action};
use crate::infra::audit;
use crate::infra::db::{self, rfc3339, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::queue::{self, JobKind};
use crate::AppState;

/// The most customers one search returns.
pub const MAX_LIMIT: i64 = 100;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    email: String,
    username: String,
    is_admin: i64,
    balance_micros: i64,
    created_at: i64,
    machines: i64,
    last_sign_in: Option<i64>,
    suspended_at: Option<i64>,
    suspended_reason: Option<String>,
    deleted_at: Option<i64>,
}

impl Row {
    fn to_api(&self) -> Customer {
        Customer {
            id: self.id.clone(),
            email: self.email.clone(),
            username: self.username.clone(),
            is_admin: self.is_admin != 0,
            balance: Usd4(self.balance_micros),
            created_at: rfc3339(self.created_at),
            machines: self.machines,
            last_sign_in: self.last_sign_in.map(rfc3339),
            suspended: self
                .suspended_at
                .map(|_| self.suspended_reason.clone().unwrap_or_default()),
            deleted: self.deleted_at.is_some(),
        }
    }
}

/// A machine on a customer's page: id, name, state, kind, node name, reason.
type MachineRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

const SELECT: &str = "SELECT u.id, u.email, u.username, u.is_admin, u.balance_micros, u.created_at,
        (SELECT COUNT(*) FROM instances i WHERE i.user_id = u.id AND i.state <> 'deleted') AS machines,
        (SELECT MAX(a.created_at) FROM audit_log a
          WHERE a.actor_id = u.id AND a.action = 'user.sign_in') AS last_sign_in,
        u.suspended_at, u.suspended_reason, u.deleted_at
     FROM users u";

/// Customers whose e-mail or username contains `query` (any case), or whose id it is; newest
/// first. An empty query lists everyone. Returns a page and the number of matches.
pub async fn search(
    db: &Pool,
    query: &str,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<Customer>, i64)> {
    let (query, pattern) = db::search_terms(query)?;
    let matches = "(u.id = $1 OR LOWER(u.email) LIKE $2 ESCAPE '\\' OR LOWER(u.username) LIKE $2 ESCAPE '\\')";
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users u WHERE {matches}"))
        .bind(&query)
        .bind(&pattern)
        .fetch_one(db)
        .await?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE {matches} ORDER BY u.created_at DESC, u.id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(&query)
    .bind(&pattern)
    .bind(limit.clamp(1, MAX_LIMIT))
    .bind(offset.max(0))
    .fetch_all(db)
    .await?;
    Ok((rows.iter().map(Row::to_api).collect(), total))
}

/// Everything an operator needs on one customer.
pub async fn detail(db: &Pool, id: &str) -> ServiceResult<CustomerDetail> {
    let row: Row = sqlx::query_as(&format!("{SELECT} WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("User"))?;
    let now = db::now_ms();
    let spent: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(-SUM(amount_micros), 0) AS BIGINT) FROM ledger
         WHERE user_id = $1 AND amount_micros < 0 AND kind IN ('usage', 'rental', 'extension')
           AND created_at >= $2",
    )
    .bind(id)
    .bind(now - 30 * 24 * 3_600_000)
    .fetch_one(db)
    .await?;
    let (totp, locked_until): (i64, i64) =
        sqlx::query_as("SELECT totp_enabled_at, login_blocked_until FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
    let tokens: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    let machines: Vec<MachineRow> = sqlx::query_as(
        "SELECT i.id, i.name, i.state, i.kind, n.name, i.reason FROM instances i
             LEFT JOIN nodes n ON n.id = i.node_id
             WHERE i.user_id = $1 AND i.state <> 'deleted' ORDER BY i.created_at DESC",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    let rentals: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT r.id, s.name, r.status, r.rental_end FROM rentals r
         JOIN marketplace_servers s ON s.id = r.server_id
         WHERE r.user_id = $1 ORDER BY r.created_at DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    let pools: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT p.id, p.name, m.role FROM pool_members m JOIN pools p ON p.id = m.pool_id
         WHERE m.user_id = $1 AND m.is_authorized = 1 ORDER BY p.name",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(CustomerDetail {
        customer: row.to_api(),
        spent_30d: Usd4(spent),
        two_factor: totp > 0,
        locked_until: (locked_until > now).then(|| rfc3339(locked_until)),
        tokens,
        machine_list: machines
            .into_iter()
            .map(|(id, name, state, kind, node, reason)| CustomerMachine {
                state: instances::InstanceState::try_from(state.clone())
                    .map(|s| s.vps().as_str().to_owned())
                    .unwrap_or(state),
                id,
                name,
                kind,
                node,
                reason,
            })
            .collect(),
        rentals: rentals
            .into_iter()
            .map(|(id, server, status, end)| CustomerRental {
                id,
                server,
                status,
                ends_at: rfc3339(end),
            })
            .collect(),
        pools: pools
            .into_iter()
            .map(|(id, name, role)| CustomerPool { id, name, role })
            .collect(),
    })
}

/// Suspends the account `id` for `reason` (told to the customer): see the module's comment.
/// An operator cannot suspend their own account (they would lock themselves out) or another
/// operator's (take their operator role first).
pub async fn suspend(
    state: &AppState,
    operator_id: &str,
    id: &str,
    reason: &str,
) -> ServiceResult<()> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 300 {
        return Err(ServiceError::invalid(
            "Say why in 1 to 300 characters: the customer reads it",
        ));
    }
    if operator_id == id {
        return Err(ServiceError::Conflict(
            "You cannot suspend your own account".into(),
        ));
    }
    let now = db::now_ms();
    let mut tx = db::begin(&state.db).await?;
    let target: Option<(i64, Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT is_admin, suspended_at, deleted_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match target {
        None | Some((_, _, Some(_))) => return Err(ServiceError::NotFound("User")),
        Some((1.., _, _)) => {
            return Err(ServiceError::Conflict(
                "An operator's account cannot be suspended; take the operator role away first"
                    .into(),
            ))
        }
        Some((_, Some(_), _)) => {
            return Err(ServiceError::Conflict(
                "The account is already suspended".into(),
            ))
        }
        Some(_) => {}
    }
    sqlx::query(
        "UPDATE users SET suspended_at = $1, suspended_reason = $2,
            credentials_version = credentials_version + 1 WHERE id = $3",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(operator_id),
        "user.suspend",
        "user",
        Some(id),
        serde_json::json!({ "reason": reason }),
    )
    .await?;
    let mail = serde_json::json!({ "template": "suspended" });
    queue::enqueue(&mut tx, JobKind::Mail, Some(id), None, mail, now).await?;
    tx.commit().await?;
    state
        .revocations
        .revoke(crate::infra::revocations::Revocation::User(id.to_owned()));
    let running: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM instances WHERE user_id = $1 AND state IN ('running', 'rebooting')",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    let why = format!("the account is suspended ({reason})");
    for machine in running {
        // One busy with another action is stopped by the next try of the operator, or stays
        // as it is; the account cannot start anything while suspended either way.
        if let Err(e) =
            instances::act_as_operator(state, operator_id, &machine, Action::Stop, &why).await
        {
            tracing::warn!(machine = %machine, error = %e, "could not stop a suspended account's machine");
        }
    }
    state.jobs_wake.notify_waiters();
    Ok(())
}

/// Lifts a suspension: the customer can sign in again (and is mailed); their machines stay
/// stopped until they start them.
pub async fn reinstate(state: &AppState, operator_id: &str, id: &str) -> ServiceResult<()> {
    let now = db::now_ms();
    let mut tx = db::begin(&state.db).await?;
    let done = sqlx::query(
        "UPDATE users SET suspended_at = NULL, suspended_reason = NULL
         WHERE id = $1 AND suspended_at IS NOT NULL AND deleted_at IS NULL",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        exists(&mut tx, id).await?;
        return Err(ServiceError::Conflict(
            "The account is not suspended".into(),
        ));
    }
    audit::record(
        &mut tx,
        Some(operator_id),
        "user.reinstate",
        "user",
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    let mail = serde_json::json!({ "template": "reinstated" });
    queue::enqueue(&mut tx, JobKind::Mail, Some(id), None, mail, now).await?;
    tx.commit().await?;
    state.jobs_wake.notify_waiters();
    Ok(())
}

/// Lets the account sign in again at once after too many wrong passwords (the customer called
/// support); the count starts over.
pub async fn unlock(db: &Pool, operator_id: &str, id: &str) -> ServiceResult<()> {
    let mut tx = db::begin(db).await?;
    exists(&mut tx, id).await?;
    sqlx::query("UPDATE users SET login_blocked_until = 0, failed_logins = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(operator_id),
        "user.unlock",
        "user",
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// 404 unless the account exists and is not closed.
async fn exists(tx: &mut db::Tx<'_>, id: &str) -> ServiceResult<()> {
    let open: Option<Option<i64>> =
        sqlx::query_scalar("SELECT deleted_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    match open {
        Some(None) => Ok(()),
        _ => Err(ServiceError::NotFound("User")),
    }
}
