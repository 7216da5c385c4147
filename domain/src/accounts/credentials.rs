//! Credentials a person can take back: changing the password and signing out everywhere.
//!
//! Both bump the account's `credentials_version`. Every browser session and every JWT carries
//! the version it was made under (`app::ssr::portal::sign_in`, `jwt::JwtKeys::issue`) and stops
//! working once it is older; open consoles and live streams check the same (each holds a
//! [`Credential`] and asks [`Credential::still_valid`] every few seconds), and this replica's
//! end at once: the services that take a credential back announce it (`infra::revocations`).
//! Access tokens are separate credentials, revoked one by one or, on request, all together here.

use tracing::instrument;

use crate::accounts::users::{self, User};
use crate::infra::audit;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::revocations::{Revocation, Revocations};

/// What a long-lived connection (console, screen, event stream) was opened with, so it can be
/// checked again while it stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user_id: String,
    /// The access token, when one was used (its own revocation ends the connection).
    pub token_id: Option<String>,
    /// The account's credentials version the session or JWT was made under.
    pub version: i64,
}

impl Credential {
    /// A person's session or JWT of `user`, as of now.
    pub fn person(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            token_id: None,
            version: user.credentials_version,
        }
    }

    /// Whether `revocation` ends connections opened with this credential.
    pub fn ended_by(&self, revocation: &Revocation) -> bool {
        match revocation {
            Revocation::User(id) => *id == self.user_id,
            Revocation::Token(id) => self.token_id.as_deref() == Some(id.as_str()),
            Revocation::Instance(_) => false,
        }
    }

    /// Whether it would still be accepted: the token not revoked, or the session's version
    /// still the account's.
    pub async fn still_valid(&self, db: &Pool) -> ServiceResult<bool> {
        if let Some(token) = &self.token_id {
            let live: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM access_tokens WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(token)
            .bind(&self.user_id)
            .fetch_one(db)
            .await?;
            return Ok(live > 0);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT credentials_version FROM users WHERE id = $1")
                .bind(&self.user_id)
                .fetch_optional(db)
                .await?;
        Ok(version == Some(self.version))
    }
}

/// Changes the password (the current one is checked, throttled like sign-in) and signs out every
/// other session and JWT. Returns the account's new credentials version, which the caller's own
/// session takes so it stays signed in.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user.id))]
pub async fn change_password(
    db: &Pool,
    live: &Revocations,
    user: &User,
    current: &str,
    new: &str,
) -> ServiceResult<i64> {
    users::validate_password(new, &[&user.email, &user.username])?;
    users::check_password(db, &user.id, current).await?;
    if current == new {
        return Err(ServiceError::invalid(
            "The new password must differ from the current one",
        ));
    }
    let hash = users::hash_password(new.to_owned()).await?;
    let mut tx = db::begin(db).await?;
    let version: i64 = sqlx::query_scalar(
        "UPDATE users SET password_hash = $1, credentials_version = credentials_version + 1,
            failed_logins = 0
         WHERE id = $2 RETURNING credentials_version",
    )
    .bind(&hash)
    .bind(&user.id)
    .fetch_one(&mut *tx)
    .await?;
    // A reset link asked for before does not outlive the password it was for.
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(&user.id),
        "password.change",
        "user",
        Some(&user.id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    live.revoke(Revocation::User(user.id.clone()));
    Ok(version)
}

/// Ends every browser session and JWT of the account (the caller's own too), and with
/// `revoke_tokens` every access token. Returns the new credentials version and how many tokens
/// were revoked.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id))]
pub async fn sign_out_everywhere(
    db: &Pool,
    live: &Revocations,
    user_id: &str,
    revoke_tokens: bool,
) -> ServiceResult<(i64, Vec<String>)> {
    let mut tx = db::begin(db).await?;
    let version: i64 = sqlx::query_scalar(
        "UPDATE users SET credentials_version = credentials_version + 1 WHERE id = $1
         RETURNING credentials_version",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    let revoked: Vec<String> = if revoke_tokens {
        sqlx::query_scalar(
            "UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL
             RETURNING id",
        )
        .bind(db::now_ms())
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?
    } else {
        Vec::new()
    };
    audit::record(
        &mut tx,
        Some(user_id),
        "sessions.revoke_all",
        "user",
        Some(user_id),
        serde_json::json!({ "tokens_revoked": revoked.len() }),
    )
    .await?;
    tx.commit().await?;
    // Ends the account's live connections, whichever credential opened them.
    live.revoke(Revocation::User(user_id.to_owned()));
    Ok((version, revoked))
}
