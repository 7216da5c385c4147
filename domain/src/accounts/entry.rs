//! How people come in: registering (which gives every account its default pool) and signing in
//! with a password and, when it is on, a two-factor code. Sign-in with an unknown email still runs
//! a verification, so response time does not reveal which emails have accounts.

use std::sync::LazyLock;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHasher, SaltString},
    Argon2,
};
use tracing::instrument;

use crate::accounts::users::{self, User};
use crate::accounts::{pools, totp};
use crate::infra::audit;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};

/// What a new account needs.
#[derive(Clone)]
pub struct NewAccount {
    pub email: String,
    pub username: String,
    pub password: String,
    pub is_admin: bool,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("email", &self.email)
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

/// A real hash of a random password, verified against when the email is unknown.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"not-a-password-anyone-has", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// Creates an account. Email and username must be unused (409 otherwise).
#[instrument(skip_all, err(level = "info", Debug), fields(username = %input.username))]
pub async fn register(db: &Pool, input: NewAccount) -> ServiceResult<User> {
    let email = users::normalize_email(&input.email)?;
    let username = users::validate_username(&input.username)?;
    users::validate_password(&input.password, &[&email, &username])?;

    // Precise messages for the common case; the unique indexes settle races.
    let taken: Option<(String, String)> = sqlx::query_as(
        "SELECT email, username FROM users WHERE email = $1 OR LOWER(username) = LOWER($2) LIMIT 1",
    )
    .bind(&email)
    .bind(&username)
    .fetch_optional(db)
    .await?;
    if let Some((taken_email, _)) = taken {
        return Err(ServiceError::Conflict(if taken_email == email {
            "An account with this email already exists".into()
        } else {
            "This username is taken".into()
        }));
    }

    let hash = users::hash_password(input.password).await?;
    let user = User {
        id: db::new_id(),
        email,
        username,
        is_admin: input.is_admin,
        balance_micros: 0,
        created_at: db::now_ms(),
        two_factor: false,
        credentials_version: 0,
        suspended: None,
    };
    let mut tx = db::begin(db).await?;
    sqlx::query(
        "INSERT INTO users (id, email, username, password_hash, is_admin, balance_micros, created_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.username)
    .bind(&hash)
    .bind(i64::from(user.is_admin))
    .bind(user.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ServiceError::Conflict("An account with this email or username already exists".into())
        } else {
            e.into()
        }
    })?;
    pools::create_default(&mut tx, &user.id, &user.username).await?;
    audit::record(
        &mut tx,
        Some(&user.id),
        "user.register",
        "user",
        Some(&user.id),
        serde_json::json!({ "username": user.username, "is_admin": user.is_admin }),
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Checks an email and password and, when the account has two-factor sign-in on, `code`
/// ([`totp::check_sign_in`]). Unknown email and wrong password give the same answer.
///
/// Per-account throttling, on top of the per-IP limit of the routes: after [`users::LOGIN_FAILURES`]
/// wrong passwords in a row the account answers 429 for [`users::LOGIN_BLOCK_MS`], whatever the
/// password and wherever the attempt comes from, so guessing spread over many addresses gets
/// five tries per quarter hour (wrong two-factor codes count too). A successful sign-in resets the
/// count. The cost: someone who knows
/// an email can keep its owner from signing in for a quarter hour at a time; the owner's API
/// tokens and open sessions keep working.
///
/// Every attempt on an existing account is written to its activity (`user.sign_in`,
/// `user.sign_in_failed` with the reason), with where it came from (`from`), so the owner can
/// see a stranger's attempts. An unknown email has no account to write to.
#[instrument(skip_all, err(level = "info", Debug))]
pub async fn authenticate(
    db: &Pool,
    email: &str,
    password: &str,
    code: Option<&str>,
    from: SignInFrom,
) -> ServiceResult<User> {
    // An unknown email (or a database error) has no account to write to: it is answered as is.
    let (id, result) = check_known(db, email, password, code).await?;
    let (action, reason) = match &result {
        Ok(_) => ("user.sign_in", None),
        // The password was right and the code is still to come: not an attempt yet.
        Err(ServiceError::Unauthorized(model::accounts::TWO_FACTOR_CODE_REQUIRED)) => {
            return result
        }
        Err(ServiceError::Unauthorized(r)) if *r == INVALID_CREDENTIALS => {
            ("user.sign_in_failed", Some("wrong password"))
        }
        Err(ServiceError::Unauthorized(_)) => {
            ("user.sign_in_failed", Some("wrong two-factor code"))
        }
        Err(ServiceError::TooMany(_)) => (
            "user.sign_in_failed",
            Some("refused: too many failed attempts"),
        ),
        Err(ServiceError::Suspended(_)) => {
            ("user.sign_in_failed", Some("refused: account suspended"))
        }
        Err(_) => return result,
    };
    let mut details = serde_json::json!({ "via": from.via });
    if let Some(ip) = from.ip {
        details["ip"] = ip.to_string().into();
    }
    if let Some(reason) = reason {
        details["reason"] = reason.into();
    }
    let mut tx = db::begin(db).await?;
    audit::record(&mut tx, Some(&id), action, "user", Some(&id), details).await?;
    tx.commit().await?;
    result
}

/// Where a sign-in came from, for the account's activity.
#[derive(Debug, Clone, Copy)]
pub struct SignInFrom {
    /// `portal` or `api`.
    pub via: &'static str,
    pub ip: Option<std::net::IpAddr>,
}

const INVALID_CREDENTIALS: &str = "Invalid email or password";

/// Checks a sign-in: `Err` for an unknown email (and database errors), else the account's id
/// and how the attempt ended.
async fn check_known(
    db: &Pool,
    email: &str,
    password: &str,
    code: Option<&str>,
) -> ServiceResult<(String, ServiceResult<User>)> {
    const INVALID: ServiceError = ServiceError::Unauthorized(INVALID_CREDENTIALS);
    let email = email.trim().to_lowercase();
    if email.len() > users::EMAIL_MAX || password.chars().count() > users::PASSWORD_MAX {
        return Err(INVALID);
    }
    let row: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, password_hash, failed_logins, login_blocked_until FROM users WHERE email = $1",
    )
    .bind(&email)
    .fetch_optional(db)
    .await?;
    let (id, hash, failed, blocked_until) = match row {
        Some(row) => row,
        None => {
            users::verify_password(password.to_owned(), DUMMY_HASH.clone()).await?;
            return Err(INVALID);
        }
    };
    let result = async {
        users::blocked(blocked_until)?;
        if !users::verify_password(password.to_owned(), hash).await? {
            users::count_failed_sign_in(db, &id).await?;
            return Err(INVALID);
        }
        let user = users::get(db, &id).await?;
        // Told only to someone who knows the password.
        if let Some(reason) = &user.suspended {
            return Err(ServiceError::Suspended(reason.clone()));
        }
        // The second factor before the count resets: a wrong code is a failed attempt too.
        totp::check_sign_in(db, &user, code).await?;
        if failed > 0 {
            sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1")
                .bind(&id)
                .execute(db)
                .await?;
        }
        Ok(user)
    }
    .await;
    Ok((id, result))
}
