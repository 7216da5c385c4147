//! Users: the account row as the rest of Hangar sees it, the rules for emails, usernames and
//! passwords, password hashing, the per-account sign-in lockout, and lookups. Registering and
//! signing in, which reach into pools and two-factor, are `accounts::entry`.
//!
//! Passwords are hashed with argon2id on the blocking pool (hashing is deliberately slow and would
//! otherwise stall the async runtime), a bounded number at once.

use std::sync::LazyLock;

use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{
    password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString},
    Algorithm, Argon2, Block, Params, Version,
};

use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};

pub const USERNAME_MAX: usize = 100;
pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 8;
/// Long passwords are fine, unbounded ones are a denial-of-service lever on argon2.
pub const PASSWORD_MAX: usize = 256;

/// A user as the rest of Hangar sees it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: String,
    pub is_admin: bool,
    pub balance_micros: i64,
    pub created_at: i64,
    /// Two-factor sign-in (TOTP) is on: sign-in asks for a code after the password.
    pub two_factor: bool,
    /// Bumped by a password change or "sign out everywhere": sessions and JWTs made under an
    /// older version stop working (`accounts::credentials`).
    pub credentials_version: i64,
    /// Why the operators suspended the account, while they do (`operators::customers`).
    pub suspended: Option<String>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    username: String,
    is_admin: i64,
    balance_micros: i64,
    created_at: i64,
    totp_enabled_at: i64,
    credentials_version: i64,
    suspended_at: Option<i64>,
    suspended_reason: Option<String>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            username: r.username,
            is_admin: r.is_admin != 0,
            balance_micros: r.balance_micros,
            created_at: r.created_at,
            two_factor: r.totp_enabled_at > 0,
            credentials_version: r.credentials_version,
            suspended: r
                .suspended_at
                .map(|_| r.suspended_reason.unwrap_or_default()),
        }
    }
}

const USER_COLUMNS: &str =
    "id, email, username, is_admin, balance_micros, created_at, totp_enabled_at, credentials_version, \
     suspended_at, suspended_reason";

/// Normalises and checks an email: trimmed, lower-cased, one `@`, a dotted domain, no spaces.
pub fn normalize_email(raw: &str) -> ServiceResult<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(ServiceError::invalid("Email is required"));
    }
    if email.len() > EMAIL_MAX {
        return Err(ServiceError::invalid(format!(
            "Email must be at most {EMAIL_MAX} characters"
        )));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(ServiceError::invalid("Email is not a valid address"));
    }
    Ok(email)
}

/// Usernames: 1–100 characters of ASCII letters, digits, `_` and `-` (the `/api/v1` dialect invites by
/// username with exactly this rule).
pub fn validate_username(raw: &str) -> ServiceResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("Username is required"));
    }
    if name.chars().count() > USERNAME_MAX {
        return Err(ServiceError::invalid(format!(
            "Username must be at most {USERNAME_MAX} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ServiceError::invalid(
            "Username may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok(name.to_owned())
}

/// The lowest zxcvbn score a new password may have: 3, "safely unguessable", the estimator's
/// own advice for protecting against offline guessing should the hashes ever leak.
pub const PASSWORD_MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// A new password: 8 to [`PASSWORD_MAX`] characters and hard to guess, judged by zxcvbn
/// (Dropbox's estimator: common passwords, dictionary words, names, keyboard patterns, dates and
/// l33t substitutions, and the account's own `about` strings: its email and username). A refusal
/// says why in the estimator's words and how to do better.
pub fn validate_password(password: &str, about: &[&str]) -> ServiceResult<()> {
    let n = password.chars().count();
    if n < PASSWORD_MIN {
        return Err(ServiceError::invalid(format!(
            "Password must be at least {PASSWORD_MIN} characters"
        )));
    }
    if n > PASSWORD_MAX {
        return Err(ServiceError::invalid(format!(
            "Password must be at most {PASSWORD_MAX} characters"
        )));
    }
    let estimate = zxcvbn::zxcvbn(password, about);
    if estimate.score() < PASSWORD_MIN_SCORE {
        let feedback = estimate.feedback();
        let warning = feedback
            .and_then(|f| f.warning())
            .map(|w| format!("{w} "))
            .unwrap_or_default();
        let suggestion = feedback
            .and_then(|f| f.suggestions().first())
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        return Err(ServiceError::invalid(format!(
            "This password is too easy to guess. {warning}Try a few uncommon words together, or a password manager's.{suggestion}"
        ).replace("  ", " ")));
    }
    Ok(())
}

/// Password hashing at once, across the whole process. Each argon2id run takes 19 MiB for its
/// duration: unbounded, a few hundred parallel sign-in guesses take gigabytes (40 of them grew
/// the server by ~100 MB, which glibc then kept). Beyond this many, requests wait their turn,
/// costing a waiting future each instead of 19 MiB.
static ARGON2_SLOTS: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(argon2_slots()));

/// Password hashes running now, and the most ever at once (what the bound guarantees).
static ARGON2_RUNNING: AtomicUsize = AtomicUsize::new(0);
static ARGON2_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most password hashes this process ever ran at once (never above the bound).
pub fn argon2_peak() -> usize {
    ARGON2_PEAK.load(Ordering::Relaxed)
}

/// How many password hashes may run at once.
pub fn argon2_slots() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
}

/// The 19 MiB work areas argon2 runs in, kept and reused: at most [`argon2_slots`] are ever made.
/// Letting argon2 allocate its own each time made the allocator keep every one it had freed in
/// each blocking thread's arena: 40 parallel wrong sign-ins grew a server by ~380 MB for good
/// (docs/BENCHMARKS.md, "Memory after a burst of sign-ins").
static WORK_AREAS: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

/// Runs one argon2 job on the blocking pool within [`ARGON2_SLOTS`], in a reused work area.
async fn argon2_bounded<T: Send + 'static>(
    job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> ServiceResult<T> {
    let _slot = ARGON2_SLOTS
        .acquire()
        .await
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("argon2 slots closed: {e}")))?;
    Ok(tokio::task::spawn_blocking(move || {
        let now = ARGON2_RUNNING.fetch_add(1, Ordering::Relaxed) + 1;
        ARGON2_PEAK.fetch_max(now, Ordering::Relaxed);
        let taken = WORK_AREAS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut work = taken.unwrap_or_default();
        let out = job(&mut work);
        WORK_AREAS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(work);
        ARGON2_RUNNING.fetch_sub(1, Ordering::Relaxed);
        out
    })
    .await?)
}

/// argon2id with the crate's default parameters (19 MiB, 2 passes, 1 lane), computed in `work`.
fn hash_in(work: &mut Vec<Block>, password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let params = Params::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    run_in(
        work,
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        raw_salt,
        &mut out,
    )?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params.try_into()?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant and parameters it
/// names), computed in `work`; the comparison takes the same time wherever they differ.
fn verify_in(work: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let mut check = || -> Result<bool, argon2::password_hash::Error> {
        let parsed = PasswordHash::new(hash)?;
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let mut raw_salt = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut raw_salt)?;
        let mut out = vec![0u8; expected.len()];
        run_in(
            work, algorithm, version, params, password, raw_salt, &mut out,
        )?;
        Ok(Output::new(&out)? == expected)
    };
    check().unwrap_or(false)
}

/// One argon2 computation into `out`, its memory `work` (grown to what `params` need, never
/// shrunk, so a reused area allocates nothing).
fn run_in(
    work: &mut Vec<Block>,
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::password_hash::Error> {
    let blocks = params.block_count();
    if work.len() < blocks {
        work.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut work[..blocks])
        .map_err(Into::into)
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) off the runtime.
pub async fn hash_password(password: String) -> ServiceResult<String> {
    argon2_bounded(move |work| {
        hash_in(work, password.as_bytes())
            .map_err(|e| ServiceError::internal(anyhow::anyhow!("argon2: {e}")))
    })
    .await?
}

/// Checks a password against a stored hash off the runtime.
pub async fn verify_password(password: String, hash: String) -> ServiceResult<bool> {
    argon2_bounded(move |work| verify_in(work, password.as_bytes(), &hash)).await
}

/// Checks `password` for a signed-in user about to change something that needs it (the
/// password itself, two-factor sign-in), throttled like sign-in: while the account is blocked
/// the answer is 429 whatever the password, and a wrong one counts toward the block. So a stolen
/// session cannot guess the password faster than a stranger at the sign-in form.
pub async fn check_password(db: &Pool, user_id: &str, password: &str) -> ServiceResult<()> {
    if password.chars().count() > PASSWORD_MAX {
        return Err(ServiceError::Unauthorized("The password is not right"));
    }
    let (hash, blocked_until): (String, i64) =
        sqlx::query_as("SELECT password_hash, login_blocked_until FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(db)
            .await?;
    blocked(blocked_until)?;
    if !verify_password(password.to_owned(), hash).await? {
        count_failed_sign_in(db, user_id).await?;
        return Err(ServiceError::Unauthorized("The password is not right"));
    }
    Ok(())
}

/// 429 while an account's sign-ins are blocked.
pub(crate) fn blocked(blocked_until: i64) -> ServiceResult<()> {
    let now = db::now_ms();
    if blocked_until > now {
        let minutes = (blocked_until - now + 59_999) / 60_000;
        return Err(ServiceError::TooMany(format!(
            "Too many failed attempts for this account. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Failed passwords in a row after which an account refuses sign-ins for [`LOGIN_BLOCK_MS`].
pub const LOGIN_FAILURES: i64 = 5;
/// How long an account refuses sign-ins after [`LOGIN_FAILURES`] failed passwords (15 minutes).
pub const LOGIN_BLOCK_MS: i64 = 15 * 60 * 1000;

/// Counts one failed sign-in (a wrong password or two-factor code); the [`LOGIN_FAILURES`]th in
/// a row blocks the account's sign-ins for [`LOGIN_BLOCK_MS`].
pub(crate) async fn count_failed_sign_in(db: &Pool, id: &str) -> ServiceResult<()> {
    let failed: i64 = sqlx::query_scalar(
        "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    if failed >= LOGIN_FAILURES {
        sqlx::query("UPDATE users SET failed_logins = 0, login_blocked_until = $1 WHERE id = $2")
            .bind(db::now_ms() + LOGIN_BLOCK_MS)
            .bind(id)
            .execute(db)
            .await?;
    }
    Ok(())
}

/// Looks a user up by id.
pub async fn get(db: &Pool, id: &str) -> ServiceResult<User> {
    find(db, id).await?.ok_or(ServiceError::NotFound("User"))
}

/// Looks a user up by id, `None` when missing.
pub async fn find(db: &Pool, id: &str) -> ServiceResult<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(User::from))
}

/// A user's cached balance in micro-USD (kept equal to the ledger sum by `ledger::post`).
pub async fn balance(db: &Pool, id: &str) -> ServiceResult<i64> {
    let b: Option<i64> = sqlx::query_scalar("SELECT balance_micros FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    b.ok_or(ServiceError::NotFound("User"))
}

impl From<&User> for model::accounts::Me {
    fn from(u: &User) -> Self {
        model::accounts::Me {
            id: u.id.clone(),
            email: u.email.clone(),
            username: u.username.clone(),
            balance: model::money::Usd4(u.balance_micros),
            is_admin: u.is_admin,
            two_factor: u.two_factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_invitation_rule() {
        assert_eq!(validate_username(" jane_admin-2 ").unwrap(), "jane_admin-2");
        assert!(validate_username("").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username("émile").is_err());
        assert!(validate_username(&"a".repeat(100)).is_ok());
        assert!(validate_username(&"a".repeat(101)).is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email(" You@Example.COM ").unwrap(),
            "you@example.com"
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "@x.com",
            "a@.com",
            "a b@x.com",
            "a@x.com.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn password_hashing_never_runs_more_than_the_bound_at_once() {
        let hashes = (0..24).map(|i| hash_password(format!("password number {i}")));
        let done = futures::future::join_all(hashes).await;
        assert!(done.iter().all(Result::is_ok));
        assert!(argon2_peak() >= 1);
        assert!(
            argon2_peak() <= argon2_slots(),
            "{} at once, bound {}",
            argon2_peak(),
            argon2_slots()
        );
        // Memory stays bounded after the burst too: work areas are reused, never more of them
        // than may run at once (each is 19 MiB).
        let areas = WORK_AREAS.lock().unwrap().len();
        assert!(
            (1..=argon2_slots()).contains(&areas),
            "{areas} work areas kept, bound {}",
            argon2_slots()
        );
    }

    #[tokio::test]
    async fn password_hashes_are_argon2id_and_verify() {
        use argon2::password_hash::PasswordHasher;
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse".into(), hash.clone())
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), hash).await.unwrap());
        // Hashes made by the argon2 crate's own hasher (every stored hash so far) still verify.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("old password".into(), theirs.clone())
            .await
            .unwrap());
        assert!(!verify_password("old passwore".into(), theirs)
            .await
            .unwrap());
        assert!(!verify_password("x".into(), "not a hash".into())
            .await
            .unwrap());
    }
}
