//! Getting back into an account without its password: a reset link mailed to the account's
//! address, asked for by the customer (`/reset`, `POST /api/auth/password-reset`) or sent by an
//! operator from the customer's page. The link is good for an hour and once; only its SHA-256
//! is kept. Following it sets a new password, ends every session and JWT of the account (its
//! credentials version moves on) and lifts a sign-in lockout; two-factor stays on, so a mailbox
//! alone does not open an account that has it.
//!
//! Asking never says whether an account uses the address (no account discovery): the answer is
//! the same, and only a real, open, unsuspended account gets a mail — at most one a minute.

use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::accounts::users;
use crate::infra::audit;
use crate::infra::config::Config;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::mail;
use crate::infra::revocations::{Revocation, Revocations};

/// How long a reset link works.
pub const RESET_LINK_MS: i64 = 3_600_000;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A customer asks for a reset link for `email`. Answers the same whether or not an account uses
/// it; a malformed address is a 400 (that says nothing about accounts).
#[instrument(skip_all, err(level = "info", Debug))]
pub async fn request(db: &Pool, config: &Config, email: &str) -> ServiceResult<()> {
    let email = users::normalize_email(email)?;
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE email = $1 AND deleted_at IS NULL AND suspended_at IS NULL",
    )
    .bind(&email)
    .fetch_optional(db)
    .await?;
    let Some(id) = found else {
        return Ok(());
    };
    // At most one mail a minute per account, whoever asks: the per-address limit on this route
    // does not stop many addresses filling one person's inbox. The answer stays the same.
    let recent: Option<i64> = sqlx::query_scalar(
        "SELECT created_at FROM password_resets WHERE user_id = $1 AND created_at > $2",
    )
    .bind(&id)
    .bind(db::now_ms() - RESEND_AFTER_MS)
    .fetch_optional(db)
    .await?;
    if recent.is_some() {
        return Ok(());
    }
    let user = users::get(db, &id).await?;
    let link = make_link(db, &id, None).await?;
    // Sent after answering: how long the mail server takes does not tell who has an account,
    // and its failure is logged, not answered (there would be no account to say it about).
    let config = config.clone();
    tokio::spawn(async move {
        if let Err(e) = mail_link(&config, &user, &link, false).await {
            tracing::warn!(error = %e, user = %user.id, "password reset mail not sent");
        }
    });
    Ok(())
}

/// How soon a customer's asking sends another link to the same account.
pub const RESEND_AFTER_MS: i64 = 60_000;

/// An operator sends customer `user_id` a reset link (the operator never sees it). Audited as
/// the operator's.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id))]
pub async fn send_by_operator(
    db: &Pool,
    config: &Config,
    operator_id: &str,
    user_id: &str,
) -> ServiceResult<()> {
    let user = users::get(db, user_id).await?;
    let closed: Option<i64> = sqlx::query_scalar("SELECT deleted_at FROM users WHERE id = $1")
        .bind(&user.id)
        .fetch_one(db)
        .await?;
    if closed.is_some() {
        return Err(ServiceError::Conflict("The account is closed".into()));
    }
    if user.suspended.is_some() {
        return Err(ServiceError::Conflict(
            "The account is suspended: reinstate it first".into(),
        ));
    }
    if config.smtp_url.is_none() {
        return Err(ServiceError::Conflict(
            "This Hangar sends no mail (smtp_url is not set), so the customer cannot get a link: set smtp_url first".into(),
        ));
    }
    let link = make_link(db, &user.id, Some(operator_id)).await?;
    mail_link(config, &user, &link, true).await
}

/// Makes a link (replacing any earlier one): its token, to mail.
async fn make_link(db: &Pool, user_id: &str, operator_id: Option<&str>) -> ServiceResult<String> {
    let token = db::random_key();
    let now = db::now_ms();
    let mut tx = db::begin(db).await?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO password_resets (user_id, token_hash, expires_at, created_at, sent_by)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(hash(&token))
    .bind(now + RESET_LINK_MS)
    .bind(now)
    .bind(operator_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(operator_id.unwrap_or(user_id)),
        "password.reset_sent",
        "user",
        Some(user_id),
        serde_json::json!({ "by_operator": operator_id.is_some() }),
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Mails `user` the link with `token` (`by_operator`: the operators sent it).
async fn mail_link(
    config: &Config,
    user: &users::User,
    token: &str,
    by_operator: bool,
) -> ServiceResult<()> {
    let link = format!(
        "{}/reset?token={token}",
        config.public_url.trim_end_matches('/')
    );
    let why = if by_operator {
        "The operators of this Hangar sent you a link to set a new password"
    } else {
        "Someone (you, we hope) asked to set a new password for your account"
    };
    mail::send(
        config,
        std::slice::from_ref(&user.email),
        "Set a new Hangar password",
        &format!(
            "Hello {},\n\n{why}. Open this link within an hour to choose one:\n\n{link}\n\nIf you did not ask for this, ignore this message: your password stays as it is.\n",
            user.username
        ),
    )
    .await?;
    Ok(())
}

/// Follows a reset link: sets `password`, ends every session and JWT of the account, lifts a
/// sign-in lockout. An unknown, used or expired token answers 400 and changes nothing.
#[instrument(skip_all, err(level = "info", Debug))]
pub async fn reset(
    db: &Pool,
    config: &Config,
    live: &Revocations,
    token: &str,
    password: &str,
) -> ServiceResult<()> {
    const BAD: &str = "This link is not valid any more: ask for a new one";
    // A closed or suspended account is not reopened by a link sent before.
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT r.user_id, r.expires_at FROM password_resets r JOIN users u ON u.id = r.user_id
         WHERE r.token_hash = $1 AND u.deleted_at IS NULL AND u.suspended_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(db)
    .await?;
    let Some((user_id, _)) = row.filter(|(_, at)| *at > db::now_ms()) else {
        return Err(ServiceError::invalid(BAD));
    };
    let user = users::get(db, &user_id).await?;
    users::validate_password(password, &[&user.email, &user.username])?;
    let password_hash = users::hash_password(password.to_owned()).await?;
    let mut tx = db::begin(db).await?;
    // Claimed by deleting it: a second click (or replica) finds nothing.
    let claimed = sqlx::query("DELETE FROM password_resets WHERE user_id = $1 AND token_hash = $2")
        .bind(&user_id)
        .bind(hash(token))
        .execute(&mut *tx)
        .await?;
    if claimed.rows_affected() == 0 {
        return Err(ServiceError::invalid(BAD));
    }
    sqlx::query(
        "UPDATE users SET password_hash = $1, credentials_version = credentials_version + 1,
             failed_logins = 0, login_blocked_until = 0
         WHERE id = $2",
    )
    .bind(&password_hash)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(&user_id),
        "password.reset",
        "user",
        Some(&user_id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    live.revoke(Revocation::User(user_id.clone()));
    mail::send(
        config,
        std::slice::from_ref(&user.email),
        "Your Hangar password was changed",
        &format!(
            "Hello {},\n\nYour password was just set through a reset link, and every session was signed out.\n\nIf this was not you, ask for a new link at once and tell the operators of this Hangar.\n",
            user.username
        ),
    )
    .await?;
    Ok(())
}
