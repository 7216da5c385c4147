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

/// Appends one audit entry in a transaction of its own, for changes that are one statement of
/// their own (the catalog, nodes, address ranges): written right after the change succeeded.
pub async fn record_now(
    db: &db::Pool,
    actor_id: Option<&str>,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let mut tx = db::begin(db).await?;
    record(&mut tx, actor_id, action, target_type, target_id, details).await?;
    tx.commit().await
}

/// Which audit entries to read: one actor's (a user's own activity) or, for operators, anyone's,
/// optionally narrowed to an action prefix (`rental.`, `instance.delete`) or one target, newest
/// first, `before` an entry's id for the next page.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor_id: Option<String>,
    /// The actor by username (the operators' page filter).
    pub actor_username: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    /// Everything concerning this user: what they did, and what was done to them, their
    /// machines and their rentals (by operators, pool members, Hangar itself).
    pub concerning: Option<String>,
    /// Only entries after this one in the order (newest first): the last id of a page gives the
    /// next page, exactly, even when entries share a millisecond.
    pub before: Option<String>,
    pub limit: i64,
}

/// One entry as read back, with the actor's username when the actor still exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub actor_id: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// What the target is called now (a machine's or server's name, a token's name, ...), while
    /// it exists.
    pub target_name: Option<String>,
    pub details: String,
    pub created_at: i64,
}

/// The most entries one read returns.
pub const MAX_LIMIT: i64 = 200;

/// Entries matching `f`, newest first (at most [`MAX_LIMIT`]).
pub async fn list(db: &db::Pool, f: &Filter) -> Result<Vec<Entry>, sqlx::Error> {
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let param = |binds: &mut Vec<String>, v: String| {
        binds.push(v);
        format!("${}", binds.len())
    };
    if let Some(a) = &f.actor_id {
        let p = param(&mut binds, a.clone());
        conds.push(format!("a.actor_id = {p}"));
    }
    if let Some(u) = &f.actor_username {
        let p = param(&mut binds, u.clone());
        conds.push(format!("u.username = {p}"));
    }
    if let Some(action) = &f.action {
        // A prefix match on the dotted action name; LIKE's wildcards in the input are literal.
        let p = param(&mut binds, format!("{}%", db::like_escaped(action)));
        conds.push(format!("a.action LIKE {p} ESCAPE '\\'"));
    }
    if let Some(t) = &f.target_id {
        let p = param(&mut binds, t.clone());
        conds.push(format!("a.target_id = {p}"));
    }
    if let Some(user) = &f.concerning {
        let p = param(&mut binds, user.clone());
        conds.push(format!(
            "(a.actor_id = {p} OR a.target_id = {p}
              OR a.target_id IN (SELECT id FROM instances WHERE user_id = {p})
              OR a.target_id IN (SELECT id FROM rentals WHERE user_id = {p}))"
        ));
    }
    if let Some(id) = &f.before {
        let p = param(&mut binds, id.clone());
        conds.push(format!(
            "(a.created_at < (SELECT created_at FROM audit_log WHERE id = {p})
              OR (a.created_at = (SELECT created_at FROM audit_log WHERE id = {p}) AND a.id < {p}))"
        ));
    }
    if conds.is_empty() {
        conds.push("true".into());
    }
    let sql = format!(
        "SELECT a.id, a.actor_id, u.username AS actor, a.action, a.target_type, a.target_id,
                CASE a.target_type
                  WHEN 'instance' THEN (SELECT name FROM instances WHERE id = a.target_id)
                  WHEN 'marketplace_server' THEN
                    (SELECT name FROM marketplace_servers WHERE id = a.target_id)
                  WHEN 'rental' THEN
                    (SELECT s.name FROM rentals r JOIN marketplace_servers s ON s.id = r.server_id
                      WHERE r.id = a.target_id)
                  WHEN 'pool' THEN (SELECT name FROM pools WHERE id = a.target_id)
                  WHEN 'access_token' THEN (SELECT name FROM access_tokens WHERE id = a.target_id)
                  WHEN 'ssh_key' THEN (SELECT name FROM ssh_keys WHERE id = a.target_id)
                  WHEN 'user' THEN (SELECT username FROM users WHERE id = a.target_id)
                  WHEN 'node' THEN (SELECT name FROM nodes WHERE id = a.target_id)
                  WHEN 'plan' THEN (SELECT MAX(name) FROM plans WHERE slug = a.target_id)
                  WHEN 'template' THEN (SELECT MAX(name) FROM templates WHERE slug = a.target_id)
                  WHEN 'image' THEN (SELECT MAX(name) FROM images WHERE slug = a.target_id)
                END AS target_name,
                a.details, a.created_at
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
         WHERE {} ORDER BY a.created_at DESC, a.id DESC LIMIT ${}",
        conds.join(" AND "),
        binds.len() + 1
    );
    let mut q = sqlx::query_as::<_, Entry>(&sql);
    for b in binds {
        q = q.bind(b);
    }
    q.bind(f.limit.clamp(1, MAX_LIMIT)).fetch_all(db).await
}

impl Entry {
    /// As the API and the Activity page show it.
    pub fn to_api(&self) -> model::accounts::AuditEvent {
        model::accounts::AuditEvent {
            id: self.id.clone(),
            at: db::rfc3339(self.created_at),
            actor_id: self.actor_id.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            target_type: self.target_type.clone(),
            target_id: self.target_id.clone(),
            target_name: self.target_name.clone(),
            details: serde_json::from_str(&self.details).unwrap_or(serde_json::Value::Null),
        }
    }
}
