//! The owner's own account: changing its sign-in email (confirmed by a link sent to the new
//! address) and deleting it.
//!
//! An email change takes effect only when the link is followed, so a typo cannot lock the owner
//! out and nobody can take over an address they do not read. The old address is told when a
//! change is asked for and when it happens, so a stranger with the password is noticed. The link
//! is mailed at once (not by a job): the token then exists only in the mail and as a SHA-256 here.
//!
//! Deleting releases the email and username, ends every session, JWT and API token, and removes
//! SSH keys, alert addresses and pool memberships. It is refused while something would be left
//! behind that the owner pays for or others depend on: machines, active rentals, pools with
//! other members. The account row stays (renamed, with `deleted_at`): the ledger and the audit
//! log refer to it, and the operator may still owe a refund of the balance it holds, which the
//! portal says before asking.

use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::accounts::users::{self, User};
use crate::infra::audit;
use crate::infra::config::Config;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::mail;
use crate::infra::revocations::{Revocation, Revocations};

/// How long an email-change link works.
pub const EMAIL_LINK_MS: i64 = 24 * 3_600_000;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Asks to change the account's sign-in email to `new_email`: checks the password (throttled
/// like sign-in), that the address is new and free, then mails the confirmation link to it and a
/// notice to the current address. Nothing changes until [`confirm_email`].
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user.id))]
pub async fn request_email_change(
    db: &Pool,
    config: &Config,
    user: &User,
    password: &str,
    new_email: &str,
) -> ServiceResult<()> {
    let new_email = users::normalize_email(new_email)?;
    users::check_password(db, &user.id, password).await?;
    if new_email == user.email {
        return Err(ServiceError::invalid("That is already your email"));
    }
    email_free(db, &new_email).await?;
    let token = db::random_key();
    let now = db::now_ms();
    let mut tx = db::begin(db).await?;
    sqlx::query("DELETE FROM email_changes WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO email_changes (user_id, new_email, token_hash, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&user.id)
    .bind(&new_email)
    .bind(hash(&token))
    .bind(now + EMAIL_LINK_MS)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(&user.id),
        "user.email_change_requested",
        "user",
        Some(&user.id),
        serde_json::json!({ "to": new_email }),
    )
    .await?;
    tx.commit().await?;
    let link = format!(
        "{}/account/email?token={token}",
        config.public_url.trim_end_matches('/')
    );
    mail::send(
        config,
        std::slice::from_ref(&new_email),
        "Confirm your new Hangar sign-in email",
        &format!(
            "Hello {},\n\nTo sign in to Hangar with this address from now on, open this link within 24 hours:\n\n{link}\n\nIf you did not ask for this, ignore this message: nothing changes.\n",
            user.username
        ),
    )
    .await?;
    mail::send(
        config,
        std::slice::from_ref(&user.email),
        "A change of your Hangar sign-in email was asked for",
        &format!(
            "Hello {},\n\nSomeone signed in to your account asked to change its sign-in email to {new_email}. It changes only when the link sent there is opened.\n\nIf this was not you, change your password now and sign out everywhere (Account page).\n",
            user.username
        ),
    )
    .await?;
    Ok(())
}

/// 409 when an account (or a deleted one's record) uses `email`.
async fn email_free(db: &Pool, email: &str) -> ServiceResult<()> {
    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(db)
        .await?;
    if taken > 0 {
        return Err(ServiceError::Conflict(
            "An account already uses that email".into(),
        ));
    }
    Ok(())
}

/// Follows an email-change link: the account signs in with the new address from now on; the
/// old one is told. An unknown, used or expired token answers 400 and changes nothing.
#[instrument(skip_all, err(level = "info", Debug))]
pub async fn confirm_email(db: &Pool, config: &Config, token: &str) -> ServiceResult<User> {
    const BAD: &str =
        "This link is not valid any more: ask for the change again on the Account page";
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT user_id, new_email, expires_at FROM email_changes WHERE token_hash = $1",
    )
    .bind(hash(token))
    .fetch_optional(db)
    .await?;
    let Some((user_id, new_email, expires_at)) = row else {
        return Err(ServiceError::invalid(BAD));
    };
    if expires_at <= db::now_ms() {
        return Err(ServiceError::invalid(BAD));
    }
    let old = users::get(db, &user_id).await?;
    email_free(db, &new_email).await?;
    let mut tx = db::begin(db).await?;
    // Claimed by deleting it: a second click (or replica) finds nothing.
    let claimed = sqlx::query("DELETE FROM email_changes WHERE user_id = $1 AND token_hash = $2")
        .bind(&user_id)
        .bind(hash(token))
        .execute(&mut *tx)
        .await?;
    if claimed.rows_affected() == 0 {
        return Err(ServiceError::invalid(BAD));
    }
    sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
        .bind(&new_email)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    // A reset link mailed to the old address stops working with it.
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(&user_id),
        "user.email_change",
        "user",
        Some(&user_id),
        serde_json::json!({ "from": old.email, "to": new_email }),
    )
    .await?;
    tx.commit().await?;
    mail::send(
        config,
        std::slice::from_ref(&old.email),
        "Your Hangar sign-in email was changed",
        &format!(
            "Hello {},\n\nYour account now signs in with {new_email} instead of this address.\n\nIf this was not you, contact the operator of this Hangar at once.\n",
            old.username
        ),
    )
    .await?;
    users::get(db, &user_id).await
}

/// The email change waiting for its link, if any: (new email, expires at).
pub async fn pending_email_change(
    db: &Pool,
    user_id: &str,
) -> ServiceResult<Option<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT new_email, expires_at FROM email_changes WHERE user_id = $1 AND expires_at > $2",
    )
    .bind(user_id)
    .bind(db::now_ms())
    .fetch_optional(db)
    .await?)
}

/// What stands in the way of deleting an account, in words, and the balance it would leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    /// Empty when the account may be deleted.
    pub blockers: Vec<String>,
    pub balance_micros: i64,
}

/// What deleting the account would need first.
pub async fn closure(db: &Pool, user: &User) -> ServiceResult<Closure> {
    let mut blockers = Vec::new();
    if user.is_admin {
        blockers
            .push("Operator accounts are closed by another operator (hangar admin).".to_owned());
    }
    let machines: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM instances WHERE user_id = $1 AND state <> 'deleted'",
    )
    .bind(&user.id)
    .fetch_one(db)
    .await?;
    if machines > 0 {
        blockers.push(format!(
            "Delete your {machines} machine{} first.",
            if machines == 1 { "" } else { "s" }
        ));
    }
    let rentals: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rentals WHERE user_id = $1 AND status = 'active'")
            .bind(&user.id)
            .fetch_one(db)
            .await?;
    if rentals > 0 {
        blockers.push(format!(
            "{rentals} rental{} still running: wait until {} ends.",
            if rentals == 1 { " is" } else { "s are" },
            if rentals == 1 { "it" } else { "they" }
        ));
    }
    let shared: Vec<String> = sqlx::query_scalar(
        "SELECT p.name FROM pools p WHERE p.owner_id = $1
           AND EXISTS (SELECT 1 FROM pool_members m WHERE m.pool_id = p.id AND m.user_id <> $1)
         ORDER BY p.name",
    )
    .bind(&user.id)
    .fetch_all(db)
    .await?;
    if !shared.is_empty() {
        blockers.push(format!(
            "Remove the other members of your pools first: {}.",
            shared.join(", ")
        ));
    }
    Ok(Closure {
        blockers,
        balance_micros: users::balance(db, &user.id).await?,
    })
}

/// Deletes the owner's account (password checked, throttled like sign-in). Refused with what is
/// in the way (409) while [`closure`] names anything.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user.id))]
pub async fn delete(
    db: &Pool,
    live: &Revocations,
    user: &User,
    password: &str,
) -> ServiceResult<()> {
    users::check_password(db, &user.id, password).await?;
    let closure = closure(db, user).await?;
    if !closure.blockers.is_empty() {
        return Err(ServiceError::Conflict(closure.blockers.join(" ")));
    }
    // A hash of a password nobody knows: the row keeps a well-formed hash, and nothing verifies.
    let unusable = users::hash_password(db::random_key()).await?;
    let now = db::now_ms();
    let mut tx = db::begin(db).await?;
    sqlx::query(
        "UPDATE users SET email = $1, username = $2, password_hash = $3,
             credentials_version = credentials_version + 1, totp_secret = NULL,
             totp_enabled_at = 0, deleted_at = $4
         WHERE id = $5 AND deleted_at IS NULL",
    )
    .bind(format!("deleted-{}@deleted.invalid", user.id))
    .bind(format!("deleted-{}", user.id))
    .bind(&unusable)
    .bind(now)
    .bind(&user.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&user.id)
    .execute(&mut *tx)
    .await?;
    for table in [
        "ssh_keys",
        "notify_emails",
        "email_changes",
        "totp_recovery_codes",
        "pool_members",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
    }
    audit::record(
        &mut tx,
        Some(&user.id),
        "user.delete",
        "user",
        Some(&user.id),
        serde_json::json!({ "username": user.username, "balance_micros": closure.balance_micros }),
    )
    .await?;
    tx.commit().await?;
    live.revoke(Revocation::User(user.id.clone()));
    Ok(())
}
