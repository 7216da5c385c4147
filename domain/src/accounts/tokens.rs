//! Access tokens (`vtk_...`, the `/api` dialect "Access Tokens"): long-lived API credentials for CI
//! pipelines and agents, with an optional spend limit and scopes (`model::accounts::Scope`): what
//! kinds of change the token may make. Which scope each API route needs, and which routes no
//! token reaches at all (token management, two-factor, password, sessions, operator routes), is
//! decided in one table at the HTTP edge (`server::http::scopes`).
//!
//! The value is 40 random base62 characters (~238 bits) and is shown once, in the create response.
//! Only its SHA-256 is stored: a slow hash buys nothing for a value this random, and a fast one
//! lets every API request be authenticated with one indexed lookup.

use rand::{distributions::Alphanumeric, Rng};
use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::infra::audit;
use crate::infra::db::rfc3339;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::revocations::{Revocation, Revocations};
use model::accounts::{CreatedToken, Scope, TokenView};
use model::money::Usd4;

pub const PREFIX: &str = "vtk_";
pub const NAME_MAX: usize = 100;
/// How many live tokens one user may hold; a runaway script should not mint millions.
pub const MAX_PER_USER: i64 = 100;

/// A token as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessToken {
    pub id: String,
    pub name: String,
    pub token_hint: String,
    pub spend_limit_micros: Option<i64>,
    pub spent_micros: i64,
    #[sqlx(try_from = "String")]
    pub scopes: Scopes,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A token's scopes as stored (space-separated names), always including `read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// `read` plus `wanted`, each once, in a fixed order; an unknown name is a 400.
    pub fn from_names(wanted: &[String]) -> ServiceResult<Self> {
        let mut scopes = vec![Scope::Read];
        for name in wanted {
            let scope = Scope::parse(name.trim()).ok_or_else(|| {
                ServiceError::invalid(format!(
                    "Unknown scope `{name}`: use read, machines, inside, spend or metrics"
                ))
            })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        Ok(Scopes(scopes))
    }

    pub fn all() -> Self {
        Scopes(Scope::ALL.to_vec())
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    fn stored(&self) -> String {
        self.0
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl TryFrom<String> for Scopes {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let names: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        Scopes::from_names(&names).map_err(|e| e.to_string())
    }
}

/// The secret value, only held between creation and the response that shows it.
pub struct NewTokenValue(pub String);

impl std::fmt::Debug for NewTokenValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewTokenValue([redacted])")
    }
}

/// Who a valid token belongs to, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: String,
    pub token_id: String,
    pub scopes: Scopes,
}

/// A fresh random token value.
pub fn generate() -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("{PREFIX}{body}")
}

/// The stored form of a token value.
pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn validate_name(raw: &str) -> ServiceResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid("Token name is required"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(ServiceError::invalid(format!(
            "Token name must be at most {NAME_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "Token name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Creates a token for `user_id`. Returns the listing row and the value (shown once).
#[instrument(skip_all, err(level = "info", Debug), fields(user_id))]
pub async fn create(
    db: &Pool,
    user_id: &str,
    name: &str,
    spend_limit_micros: Option<i64>,
    scopes: Scopes,
) -> ServiceResult<(AccessToken, NewTokenValue)> {
    let name = validate_name(name)?;
    if spend_limit_micros.is_some_and(|l| l < 0) {
        return Err(ServiceError::invalid("Spend limit must not be negative"));
    }
    let mut tx = crate::infra::db::begin(db).await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    if live >= MAX_PER_USER {
        return Err(ServiceError::Conflict(format!(
            "You already have {MAX_PER_USER} tokens; revoke one first"
        )));
    }
    let value = generate();
    let token = AccessToken {
        id: db::new_id(),
        name,
        token_hint: value[value.len() - 4..].to_owned(),
        spend_limit_micros,
        spent_micros: 0,
        scopes,
        created_at: db::now_ms(),
        last_used_at: None,
    };
    sqlx::query(
        "INSERT INTO access_tokens (id, user_id, name, token_hash, token_hint, spend_limit_micros, created_at, scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&token.id)
    .bind(user_id)
    .bind(&token.name)
    .bind(hash(&value))
    .bind(&token.token_hint)
    .bind(token.spend_limit_micros)
    .bind(token.created_at)
    .bind(token.scopes.stored())
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "token.create",
        "access_token",
        Some(&token.id),
        serde_json::json!({ "name": token.name, "spend_limit_micros": token.spend_limit_micros, "scopes": token.scopes.stored() }),
    )
    .await?;
    tx.commit().await?;
    Ok((token, NewTokenValue(value)))
}

/// The caller's live tokens, newest first.
pub async fn list(db: &Pool, user_id: &str) -> ServiceResult<Vec<AccessToken>> {
    Ok(sqlx::query_as(
        "SELECT id, name, token_hint, spend_limit_micros, spent_micros, scopes, created_at, last_used_at
         FROM access_tokens WHERE user_id = $1 AND revoked_at IS NULL
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

/// Revokes one of the caller's tokens; it stops working at once. Someone else's token, or one
/// already revoked, is "not found".
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, token_id = id))]
pub async fn revoke(db: &Pool, live: &Revocations, user_id: &str, id: &str) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(db::now_ms())
    .bind(id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Token"));
    }
    audit::record(
        &mut tx,
        Some(user_id),
        "token.revoke",
        "access_token",
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    // Consoles and streams opened with it end now (other replicas notice within seconds).
    live.revoke(Revocation::Token(id.to_owned()));
    Ok(())
}

/// Resolves a presented token value to its owner, or `None` when unknown or revoked.
pub async fn authenticate(db: &Pool, value: &str) -> ServiceResult<Option<TokenOwner>> {
    if !value.starts_with(PREFIX) || value.len() > 200 {
        return Ok(None);
    }
    let row: Option<(String, String, Option<i64>, String)> = sqlx::query_as(
        "SELECT id, user_id, last_used_at, scopes FROM access_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(value))
    .fetch_optional(db)
    .await?;
    let Some((token_id, user_id, last_used, scopes)) = row else {
        return Ok(None);
    };
    // A row this code wrote always parses; anything else reads as `read` only (fail closed).
    let scopes = Scopes::try_from(scopes).unwrap_or_else(|_| Scopes(vec![Scope::Read]));
    // Record use at minute granularity: a busy pipeline should not turn every read into a write.
    let now = db::now_ms();
    if last_used.is_none_or(|t| now - t > 60_000) {
        sqlx::query("UPDATE access_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&token_id)
            .execute(db)
            .await?;
    }
    Ok(Some(TokenOwner {
        user_id,
        token_id,
        scopes,
    }))
}

impl From<AccessToken> for TokenView {
    fn from(t: AccessToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            hint: t.token_hint,
            spend_limit: t.spend_limit_micros.map(Usd4),
            spent: Usd4(t.spent_micros),
            scopes: t.scopes.0,
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
        }
    }
}

/// The answer to a token's creation: the only time its value is shown.
pub fn created_view(t: AccessToken, value: NewTokenValue) -> CreatedToken {
    CreatedToken {
        id: t.id,
        name: t.name,
        token: value.0,
        spend_limit: t.spend_limit_micros.map(Usd4),
        scopes: t.scopes.0,
        created_at: rfc3339(t.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_prefixed_random_and_hash_deterministically() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with("vtk_") && a.len() == 44, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
        assert!(
            !hash(&a).contains(&a[4..]),
            "the hash must not contain the value"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
        assert!(validate_name("bad\u{7}").is_err());
        assert_eq!(validate_name(" ci-deploy ").unwrap(), "ci-deploy");
    }

    #[test]
    fn scopes_always_read_and_refuse_unknown_names() {
        let s = Scopes::from_names(&["spend".into(), "inside".into(), "spend".into()]).unwrap();
        assert_eq!(s.0, vec![Scope::Read, Scope::Inside, Scope::Spend]);
        assert_eq!(s.stored(), "read inside spend");
        assert_eq!(Scopes::try_from(s.stored()).unwrap(), s);
        assert_eq!(Scopes::from_names(&[]).unwrap().0, vec![Scope::Read]);
        assert!(Scopes::from_names(&["admin".into()]).is_err());
    }

    #[test]
    fn new_values_never_print() {
        assert_eq!(
            format!("{:?}", NewTokenValue(generate())),
            "NewTokenValue([redacted])"
        );
    }
}
