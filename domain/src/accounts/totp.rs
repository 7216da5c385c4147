//! Optional two-factor sign-in: time-based one-time passwords (TOTP, RFC 6238 over HMAC-SHA1,
//! 30-second steps, 6 digits — what every authenticator app speaks) and one-time recovery codes.
//!
//! Turning it on takes two steps, so a mistyped secret cannot lock anyone out: [`setup`] stores a
//! pending secret and returns it (with an `otpauth://` URI for a QR code); [`enable`] switches
//! it on once a code from the app matches, and returns ten recovery codes, shown once and stored
//! hashed. Sign-in then asks for a code after the password ([`check_sign_in`]); each time step's
//! code is accepted once, and each recovery code once. [`disable`] needs the password and a
//! current code (or a recovery code). Operators can be required to use it
//! (`require_operator_two_factor`): [`check_operator`] is the one gate every operator route uses.
//!
//! The secret is stored as the app holds it: it must be readable to compute codes, so a hash is
//! no option; the database is the trust boundary here as for password hashes.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::users::{self, User};
use crate::infra::{
    audit,
    config::Config,
    db::{self, Pool},
    error::{ServiceError, ServiceResult},
};

/// Seconds per code.
const STEP_SECS: i64 = 30;
/// Codes one step before or after now are accepted too (a clock a little off, a slow typist).
const SKEW_STEPS: i64 = 1;
const RECOVERY_CODES: usize = 10;
/// Shown (and matched by the portal) when a password was right and a code is still needed.
pub use model::accounts::{
    TWO_FACTOR_CODE_REQUIRED as CODE_REQUIRED, TWO_FACTOR_CODE_USED as CODE_USED,
    TWO_FACTOR_CODE_WRONG as CODE_WRONG,
};

/// What [`setup`] hands the user to put in an authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The key in base32 (for typing it in).
    pub secret: String,
    /// `otpauth://totp/...`, the URI a QR code carries.
    pub uri: String,
    /// That QR code as an SVG document, for the portal to show.
    pub qr_svg: String,
}

/// The 6-digit code for `secret` (raw key bytes) at time step `step` (RFC 4226 truncation).
fn code_at(secret: &[u8], step: i64) -> u32 {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    value % 1_000_000
}

/// The step within the window whose code `code` is, if any, newest first.
fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
    let code: u32 = code.parse().ok()?;
    let now = now_ms / 1000 / STEP_SECS;
    (-SKEW_STEPS..=SKEW_STEPS)
        .rev()
        .map(|d| now + d)
        .find(|&step| code_at(secret, step) == code)
}

/// The code an authenticator app holding `secret` (base32) shows at `at_ms`; `None` for a
/// malformed key. For tests and for operators checking a user's clock drift.
pub fn code_for(secret: &str, at_ms: i64) -> Option<String> {
    let key = BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    Some(format!("{:06}", code_at(&key, at_ms / 1000 / STEP_SECS)))
}

fn decode(secret: &str) -> ServiceResult<Vec<u8>> {
    BASE32_NOPAD
        .decode(secret.as_bytes())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("stored TOTP secret: {e}")))
}

/// A code as typed: spaces and dashes dropped, letters lower-cased (recovery codes).
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `https://cloud.example.com:8443/` → `cloud.example.com`.
fn issuer(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        "Hangar".into()
    } else {
        host.to_owned()
    }
}

fn hash_recovery(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Starts turning two-factor sign-in on: a new pending secret (replacing any earlier pending
/// one). Refused while it is already on. The app shows the account under the host of
/// `public_url`, the name people know this installation by.
pub async fn setup(db: &Pool, config: &Config, user: &User) -> ServiceResult<Enrolment> {
    let issuer = issuer(&config.public_url);
    let issuer = issuer.as_str();
    if user.two_factor {
        return Err(ServiceError::Conflict(
            "Two-factor sign-in is already on; turn it off first to use a new authenticator".into(),
        ));
    }
    let mut key = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut key);
    let secret = BASE32_NOPAD.encode(&key);
    sqlx::query("UPDATE users SET totp_secret = $1 WHERE id = $2 AND totp_enabled_at = 0")
        .bind(&secret)
        .bind(&user.id)
        .execute(db)
        .await?;
    let label = format!("{issuer}:{}", user.email);
    let uri = format!(
        "otpauth://totp/{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        utf8_percent_encode(&label, NON_ALPHANUMERIC),
        utf8_percent_encode(issuer, NON_ALPHANUMERIC)
    );
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("QR code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(Enrolment {
        secret,
        uri,
        qr_svg,
    })
}

/// Turns two-factor sign-in on when `code` matches the pending secret; returns the recovery
/// codes (in clear, this once).
pub async fn enable(db: &Pool, user: &User, code: &str) -> ServiceResult<Vec<String>> {
    let pending: Option<Option<String>> =
        sqlx::query_scalar("SELECT totp_secret FROM users WHERE id = $1 AND totp_enabled_at = 0")
            .bind(&user.id)
            .fetch_optional(db)
            .await?;
    let Some(Some(secret)) = pending else {
        return Err(ServiceError::Conflict(if user.two_factor {
            "Two-factor sign-in is already on".into()
        } else {
            "Start the set-up first: it gives the key for your authenticator app".into()
        }));
    };
    let now = db::now_ms();
    let Some(step) = matching_step(&decode(&secret)?, &normalize(code), now) else {
        return Err(ServiceError::Invalid(
            "That code does not match: scan the key again, or check your phone's clock".into(),
        ));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw = hex::encode(rand::random::<[u8; 5]>());
            format!("{}-{}", &raw[..5], &raw[5..])
        })
        .collect();
    let mut tx = db::begin(db).await?;
    let changed = sqlx::query(
        "UPDATE users SET totp_enabled_at = $1, totp_last_step = $2 WHERE id = $3 AND totp_enabled_at = 0",
    )
    .bind(now)
    .bind(step)
    .bind(&user.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(ServiceError::Conflict(
            "Two-factor sign-in is already on".into(),
        ));
    }
    sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    for code in &codes {
        sqlx::query("INSERT INTO totp_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(&user.id)
            .bind(hash_recovery(&normalize(code)))
            .execute(&mut *tx)
            .await?;
    }
    audit::record(
        &mut tx,
        Some(&user.id),
        "two_factor.enable",
        "user",
        Some(&user.id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// Turns two-factor sign-in off, given the password and a current or recovery code. Wrong ones
/// count as failed sign-ins (five in a row block the account for a quarter hour).
pub async fn disable(db: &Pool, user: &User, password: &str, code: &str) -> ServiceResult<()> {
    if !user.two_factor {
        return Err(ServiceError::Conflict(
            "Two-factor sign-in is not on".into(),
        ));
    }
    // Throttled like sign-in: a stolen session must not get unlimited guesses at the password
    // or the code (each wrong one counts toward the account's block).
    users::check_password(db, &user.id, password).await?;
    let mut tx = db::begin(db).await?;
    if let Some(refusal) = consume_code(&mut tx, &user.id, code).await?.refusal() {
        drop(tx);
        users::count_failed_sign_in(db, &user.id).await?;
        return Err(ServiceError::Unauthorized(refusal));
    }
    sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_enabled_at = 0, totp_last_step = 0 WHERE id = $1",
    )
    .bind(&user.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(&user.id),
        "two_factor.disable",
        "user",
        Some(&user.id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many unused recovery codes a user has left.
pub async fn recovery_codes_left(db: &Pool, user_id: &str) -> ServiceResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM totp_recovery_codes WHERE user_id = $1 AND used_at = 0",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?)
}

/// The second step of a sign-in whose password was right: nothing to do without two-factor;
/// with it, `code` must be a fresh TOTP code or an unused recovery code. A missing code answers
/// [`CODE_REQUIRED`]; a wrong one counts as a failed sign-in (the account throttle).
pub async fn check_sign_in(db: &Pool, user: &User, code: Option<&str>) -> ServiceResult<()> {
    if !user.two_factor {
        return Ok(());
    }
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(ServiceError::Unauthorized(CODE_REQUIRED));
    };
    let mut tx = db::begin(db).await?;
    if let Some(refusal) = consume_code(&mut tx, &user.id, code).await?.refusal() {
        tx.rollback().await?;
        users::count_failed_sign_in(db, &user.id).await?;
        return Err(ServiceError::Unauthorized(refusal));
    }
    tx.commit().await?;
    Ok(())
}

/// What [`consume_code`] made of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    Accepted,
    /// The right code of a step already used: each code counts once.
    Used,
    Wrong,
}

impl Code {
    /// The refusal a person reads, or nothing for an accepted code.
    fn refusal(self) -> Option<&'static str> {
        match self {
            Code::Accepted => None,
            Code::Used => Some(CODE_USED),
            Code::Wrong => Some(CODE_WRONG),
        }
    }
}

/// Accepts `code` once: a TOTP code of a step after the last accepted one, or an unused
/// recovery code (marked used). Both in `tx`, so two sign-ins racing with one code cannot both
/// pass.
async fn consume_code(tx: &mut db::Tx<'_>, user_id: &str, code: &str) -> ServiceResult<Code> {
    let code = normalize(code);
    let secret: Option<String> = sqlx::query_scalar("SELECT totp_secret FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?;
    let Some(secret) = secret else {
        return Ok(Code::Wrong);
    };
    if code.len() == 6 {
        let Some(step) = matching_step(&decode(&secret)?, &code, db::now_ms()) else {
            return Ok(Code::Wrong);
        };
        let taken = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        return Ok(if taken == 1 {
            Code::Accepted
        } else {
            Code::Used
        });
    }
    let used = sqlx::query(
        "UPDATE totp_recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at = 0",
    )
    .bind(db::now_ms())
    .bind(user_id)
    .bind(hash_recovery(&code))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if used == 1 {
        Code::Accepted
    } else {
        Code::Wrong
    })
}

/// The gate of every operator route: an operator, with two-factor sign-in on when the
/// configuration requires it (they can still reach their own account to turn it on).
pub fn check_operator(config: &Config, user: &User) -> ServiceResult<()> {
    if !user.is_admin {
        return Err(ServiceError::Forbidden("Operator access required"));
    }
    if config.require_operator_two_factor && !user.two_factor {
        return Err(ServiceError::Forbidden(
            "Operators must turn on two-factor sign-in first (Account → Two-factor sign-in)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column (the key is "12345678901234567890"), last 6 digits.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
            (20_000_000_000, 353_130),
        ] {
            assert_eq!(code_at(key, time / STEP_SECS), expected, "time {time}");
        }
    }

    #[test]
    fn a_code_matches_within_one_step_either_side_and_not_beyond() {
        let key = b"12345678901234567890";
        let now_ms = 1_111_111_111_000;
        let step = now_ms / 1000 / STEP_SECS;
        for delta in [-1, 0, 1] {
            let code = format!("{:06}", code_at(key, step + delta));
            assert_eq!(matching_step(key, &code, now_ms), Some(step + delta));
        }
        for delta in [-3, 2] {
            let code = format!("{:06}", code_at(key, step + delta));
            assert_ne!(matching_step(key, &code, now_ms), Some(step + delta));
        }
        assert_eq!(matching_step(key, "abcdef", now_ms), None);
    }
}
