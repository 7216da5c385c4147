//! SSH public keys (the `/api` dialect "SSH Keys"): parsed and checked, shown with their SHA-256
//! fingerprint, injected into machines named at create time.

use base64::Engine;
use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::infra::audit;
use crate::infra::db::{self, rfc3339, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use model::compute::SshKey;

const TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A checked OpenSSH public key line, normalised to `type base64 [comment]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    pub line: String,
    pub fingerprint: String,
}

/// Parses `ssh-ed25519 AAAA... comment`: a known type, valid base64 whose blob starts with the same
/// type name (as the wire format requires), a sane size.
pub fn parse(raw: &str) -> ServiceResult<ParsedKey> {
    let bad = || {
        ServiceError::invalid(
            "That is not an OpenSSH public key: paste the one line of your `.pub` file, like `ssh-ed25519 AAAA… you@laptop`",
        )
    };
    let raw = raw.trim();
    if raw.contains('\n') || raw.len() > 16_384 {
        return Err(ServiceError::invalid(
            "public_key must be a single key on one line",
        ));
    }
    let mut parts = raw.split_whitespace();
    let kind = parts.next().ok_or_else(bad)?;
    let data = parts.next().ok_or_else(bad)?;
    let comment: Vec<&str> = parts.collect();
    if !TYPES.contains(&kind) {
        return Err(ServiceError::invalid(format!(
            "Unsupported key type `{kind}`; use one of: {}",
            TYPES.join(", ")
        )));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| bad())?;
    if blob.len() < 4 {
        return Err(bad());
    }
    let n = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if blob.get(4..4 + n) != Some(kind.as_bytes()) || blob.len() < 4 + n + 16 {
        return Err(bad());
    }
    let digest = Sha256::digest(&blob);
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    );
    let mut line = format!("{kind} {data}");
    if !comment.is_empty() {
        line.push(' ');
        line.push_str(&comment.join(" "));
    }
    Ok(ParsedKey { line, fingerprint })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: i64,
}

impl KeyRow {
    pub fn to_api(&self) -> SshKey {
        SshKey {
            id: self.id.clone(),
            name: self.name.clone(),
            public_key: self.public_key.clone(),
            fingerprint: self.fingerprint.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// Most keys one account may hold.
pub const MAX_KEYS: i64 = 50;

pub async fn list(db: &Pool, user_id: &str) -> ServiceResult<Vec<KeyRow>> {
    Ok(sqlx::query_as(
        "SELECT id, name, public_key, fingerprint, created_at FROM ssh_keys WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

/// The account's key with the same fingerprint as `public_key` if it has one, else the key added
/// as `name`: pasting a key you already have, while creating a machine, picks that key.
pub async fn add_or_find(
    db: &Pool,
    user_id: &str,
    name: &str,
    public_key: &str,
) -> ServiceResult<KeyRow> {
    let fingerprint = parse(public_key)?.fingerprint;
    let known = list(db, user_id)
        .await?
        .into_iter()
        .find(|k| k.fingerprint == fingerprint);
    match known {
        Some(key) => Ok(key),
        None => add(db, user_id, name, public_key).await,
    }
}

#[instrument(skip_all, err(level = "info", Debug), fields(user_id))]
pub async fn add(db: &Pool, user_id: &str, name: &str, public_key: &str) -> ServiceResult<KeyRow> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ServiceError::invalid("A key's name is 1 to 64 characters"));
    }
    let parsed = parse(public_key)?;
    let mut tx = crate::infra::db::begin(db).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ssh_keys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_KEYS {
        return Err(ServiceError::invalid(format!(
            "At most {MAX_KEYS} SSH keys per account"
        )));
    }
    let row = KeyRow {
        id: db::new_id(),
        name: name.to_owned(),
        public_key: parsed.line,
        fingerprint: parsed.fingerprint,
        created_at: db::now_ms(),
    };
    let inserted = sqlx::query(
        "INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.id)
    .bind(user_id)
    .bind(&row.name)
    .bind(&row.public_key)
    .bind(&row.fingerprint)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(ServiceError::Conflict(format!(
                "This key is already on your account ({})",
                row.fingerprint
            )))
        }
        other => other?,
    };
    audit::record(
        &mut tx,
        Some(user_id),
        "key.add",
        "ssh_key",
        Some(&row.id),
        serde_json::json!({"name": row.name, "fingerprint": row.fingerprint}),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a key. Machines that already have it keep it (the `/api` dialect).
pub async fn delete(db: &Pool, user_id: &str, id: &str) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let done = sqlx::query("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("SSH key"));
    }
    audit::record(
        &mut tx,
        Some(user_id),
        "key.delete",
        "ssh_key",
        Some(id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The caller's keys with these ids, in order; any id that is not theirs is a 400 naming it.
pub async fn resolve(db: &Pool, user_id: &str, ids: &[String]) -> ServiceResult<Vec<KeyRow>> {
    let mine = list(db, user_id).await?;
    ids.iter()
        .map(|id| {
            mine.iter().find(|k| &k.id == id).cloned().ok_or_else(|| {
                ServiceError::invalid(format!("ssh_key_ids: no SSH key {id} on your account"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // Computed independently (Python's hashlib over the base64-decoded blob, unpadded base64),
        // which is what `ssh-keygen -lf` prints.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c me@laptop";
        let parsed = parse(key).unwrap();
        assert_eq!(parsed.line, key);
        assert_eq!(
            parsed.fingerprint,
            "SHA256:4uf+6DwhZDUQsZzPNJ+Gr41UFGn2qW2UKXd4wUVjUwE"
        );
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 !!!",
            "ssh-dss AAAAB3NzaC1kc3M=",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOpGf6s4Zz2qR1b3l7M9m8xH0d7lq1fK2Z8v2wG4bY1c",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
