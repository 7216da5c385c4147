//! Browser sessions as rows (`sessions`): opaque data under a random id with an expiry, so they
//! survive restarts and every replica sees them. The portal's session store (tower-sessions)
//! encodes and decodes the data; this module only keeps it.

use crate::infra::db::{self, Pool};
use crate::infra::error::ServiceResult;

/// Inserts a new session; `false` when the id is taken (the caller draws another).
pub async fn insert_new(db: &Pool, id: &str, data: &str, expires_at: i64) -> ServiceResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes a session, creating or replacing it.
pub async fn save(db: &Pool, id: &str, data: &str, expires_at: i64) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A session's data, unless it is missing or expired.
pub async fn load(db: &Pool, id: &str) -> ServiceResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(db::now_ms())
            .fetch_optional(db)
            .await?,
    )
}

pub async fn delete(db: &Pool, id: &str) -> ServiceResult<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete_expired(db: &Pool) -> ServiceResult<()> {
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(db::now_ms())
        .execute(db)
        .await?;
    Ok(())
}
