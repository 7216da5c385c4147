//! The audit log: who did what to which object, written in the same transaction as the change.

use crate::infra::db::{self, Tx};

/// Appends one audit entry inside `tx`.
pub async fn record(
    tx: &mut Tx<'_>,
    actor_id: Option<&str>,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (id, actor_id, action, target_type, target_id, details, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(db::new_id())
    .bind(actor_id)
    .bind(action)
    .bind(target_type)
    .bind(target_id)
    .bind(details.to_string())
    .bind(db::now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
