//! Who may call the daemon.
//!
//! The panel holds the token from the config file (`authorization.token`): it may do everything,
//! including issuing more tokens with `POST /auth/tokens`. Issued tokens (`lightd_` + 32 hex
//! digits) are stored only as SHA-256 hashes, live for their `ttl`, and may be single-use
//! (`remove_on_use`) or scoped to one container's WebSocket (`container`), which is how the panel
//! hands a console to a browser-facing relay without lending its own token. An issued token may
//! not issue tokens nor read or reload the config.

use sha2::{Digest, Sha256};

use crate::{config, error::NodeError, error::NodeResult, now, Node};

/// The longest `ttl` an issued token may have.
pub const MAX_TTL_SECS: i64 = 30 * 24 * 3600;

/// What a presented token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The config's token: everything.
    Panel,
    /// An issued token: everything but tokens and config, or only one container's WebSocket.
    Issued { container: Option<String> },
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares in time independent of where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Parses a `ttl`: `90` or `90s`, `15m`, `1h`, `7d`; between 1 second and 30 days.
pub fn parse_ttl(raw: &str) -> NodeResult<i64> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 0,
    };
    let secs = digits
        .parse::<i64>()
        .ok()
        .filter(|_| factor > 0)
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| {
            NodeError::bad_request(format!(
                "Invalid ttl {raw:?}: use a number with s, m, h or d, e.g. \"1h\""
            ))
        })?;
    if !(1..=MAX_TTL_SECS).contains(&secs) {
        return Err(NodeError::bad_request(
            "Invalid ttl: it must be between 1 second and 30 days",
        ));
    }
    Ok(secs)
}

/// Issues a token; answers it (shown this once) and when it expires.
pub async fn issue(
    node: &Node,
    ttl_secs: i64,
    remove_on_use: bool,
    container: Option<String>,
) -> NodeResult<(String, i64)> {
    let token = config::new_token();
    let now = now();
    let expires_at = now + ttl_secs;
    // Expired tokens are swept whenever a new one is made: the table never grows without bound.
    sqlx::query("DELETE FROM tokens WHERE expires_at <= ?")
        .bind(now)
        .execute(node.db())
        .await?;
    sqlx::query(
        "INSERT INTO tokens (hash, expires_at, remove_on_use, container, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(hash(&token))
    .bind(expires_at)
    .bind(remove_on_use)
    .bind(container)
    .bind(now)
    .execute(node.db())
    .await?;
    Ok((token, expires_at))
}

/// Checks a presented token. A single-use token is consumed here, atomically: two requests
/// racing with it cannot both pass.
pub async fn check(node: &Node, presented: &str) -> NodeResult<Access> {
    let config = node.config();
    if !config.authorization.enabled {
        return Ok(Access::Panel);
    }
    if same(presented, &config.authorization.token) {
        return Ok(Access::Panel);
    }
    if !presented.starts_with("lightd_") {
        return Err(NodeError::unauthorized());
    }
    let hash = hash(presented);
    let row: Option<(bool, Option<String>)> = sqlx::query_as(
        "SELECT remove_on_use, container FROM tokens WHERE hash = ? AND expires_at > ?",
    )
    .bind(&hash)
    .bind(now())
    .fetch_optional(node.db())
    .await?;
    let Some((remove_on_use, container)) = row else {
        return Err(NodeError::unauthorized());
    };
    if remove_on_use {
        let gone = sqlx::query("DELETE FROM tokens WHERE hash = ?")
            .bind(&hash)
            .execute(node.db())
            .await?;
        if gone.rows_affected() == 0 {
            return Err(NodeError::unauthorized());
        }
    }
    Ok(Access::Issued { container })
}
