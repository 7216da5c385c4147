//! Pools: teams sharing rented servers (the `/api/v1` dialect).
//!
//! Roles and what they may do (enforced here, for the API and the portal alike):
//!
//! | action                                   | owner | admin          | user      |
//! |------------------------------------------|-------|----------------|-----------|
//! | see the pool, its members, servers, rentals | yes | yes           | yes       |
//! | rent a server into the pool, extend its rentals | yes | yes       | no (403)  |
//! | create a machine into the pool, or move one of theirs in | yes | yes | no (403) |
//! | see and use its machines (console, commands, files) | yes | yes  | yes       |
//! | start, stop, restart, rename its machines, snapshots | yes | yes | no (403)  |
//! | delete its machines, move them out       | yes   | only their own | only their own |
//! | invite (as `admin` or `user`)            | yes   | yes            | no (403)  |
//! | remove a member                          | anyone but the owner | `user`s and pending invitations | only themselves (leave) |
//! | change a member's role                   | yes   | no (403)       | no (403)  |
//! | rename / describe / delete the pool      | yes   | no (403)       | no (403)  |
//!
//! Everyone else, including invitees who have not accepted yet, gets 404 for the pool and
//! everything in it. The default pool (one per user, made at registration) cannot be deleted.
//!
//! A machine's creator may do everything with it wherever it is, and pays for it: billing never
//! follows a machine into a pool, so a member cannot spend the owner's balance, and the owner
//! keeps control of what members share (stop or delete it). Deleting a pool returns its machines to
//! their creators alone, and a member who leaves or is removed takes their machines along.

use serde_json::Value;
use tracing::instrument;

use crate::infra::audit;
use crate::infra::db::{self, rfc3339, Pool as Db, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use model::market::{Invitation, Member, Pool, PoolDetail, PoolServer, UserRef};

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
pub const SETTINGS_MAX_BYTES: usize = 16 * 1024;

pub use model::market::Role;

/// A role read back from `pool_members.role`, which is only ever written through
/// [`Role::as_str`]; anything else would be a hand edit, read as the least privileged role.
fn stored(role: &str) -> Role {
    Role::parse(role).unwrap_or(Role::User)
}

/// A role that can be given by invitation or role change (never `owner`).
fn assignable(s: &str) -> ServiceResult<Role> {
    match Role::parse(s) {
        Some(r @ (Role::Admin | Role::User)) => Ok(r),
        _ => Err(ServiceError::invalid("Role must be one of admin, user")),
    }
}

/// Creates `user_id`'s default pool inside `tx` (called at registration).
pub async fn create_default(
    tx: &mut Tx<'_>,
    user_id: &str,
    username: &str,
) -> ServiceResult<String> {
    let id = db::new_id();
    let now = db::now_ms();
    sqlx::query(
        "INSERT INTO pools (id, owner_id, name, description, is_default, settings, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, '{}', $5, $5)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(format!("{username}'s servers"))
    .bind("Default pool")
    .bind(now)
    .execute(&mut **tx)
    .await?;
    add_owner(tx, &id, user_id, now).await?;
    Ok(id)
}

async fn add_owner(tx: &mut Tx<'_>, pool_id: &str, user_id: &str, now: i64) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO pool_members (id, pool_id, user_id, role, is_authorized, invited_by, invited_at, joined_at)
         VALUES ($1, $2, $3, 'owner', 1, NULL, $4, $4)",
    )
    .bind(db::new_id())
    .bind(pool_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The caller's accepted role in a pool, or `None` (not a member, or only invited).
pub async fn role_of<'e, E>(exec: E, pool_id: &str, user_id: &str) -> ServiceResult<Option<Role>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM pool_members WHERE pool_id = $1 AND user_id = $2 AND is_authorized = 1",
    )
    .bind(pool_id)
    .bind(user_id)
    .fetch_optional(exec)
    .await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// The caller's role if it lets them add things to the pool (rent into it, share a machine
/// with it): 403 for a `user`, 404 for anyone who cannot see the pool.
pub async fn require_manager<'e, E>(exec: E, pool_id: &str, user_id: &str) -> ServiceResult<Role>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let role = require_role(exec, pool_id, user_id).await?;
    if role == Role::User {
        return Err(ServiceError::Forbidden(
            "Only the pool's owner and admins may add machines to it",
        ));
    }
    Ok(role)
}

/// The caller's role, or 404 when they cannot see the pool.
pub async fn require_role<'e, E>(exec: E, pool_id: &str, user_id: &str) -> ServiceResult<Role>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if !db::is_id(pool_id) {
        return Err(ServiceError::NotFound("Pool"));
    }
    role_of(exec, pool_id, user_id)
        .await?
        .ok_or(ServiceError::NotFound("Pool"))
}

/// The caller's default pool id.
pub async fn default_pool(db: &Db, user_id: &str) -> ServiceResult<String> {
    sqlx::query_scalar("SELECT id FROM pools WHERE owner_id = $1 AND is_default = 1")
        .bind(user_id)
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("Default pool"))
}

/// membership id, role, is_authorized, invited_at, joined_at, user id, username
type MemberRow = (String, String, i64, i64, Option<i64>, String, String);
/// membership id, pool id, pool name, pool description, role, invited_at, inviter id and name
type InvitationRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
);

#[derive(sqlx::FromRow)]
struct PoolRow {
    id: String,
    owner_id: String,
    name: String,
    description: String,
    is_default: i64,
    settings: String,
    created_at: i64,
    updated_at: i64,
    #[sqlx(try_from = "String")]
    user_role: Role,
    member_count: i64,
    server_count: i64,
}

impl From<PoolRow> for Pool {
    fn from(r: PoolRow) -> Self {
        Pool {
            id: r.id,
            name: r.name,
            description: r.description,
            is_default: r.is_default != 0,
            settings: serde_json::from_str(&r.settings)
                .unwrap_or(Value::Object(Default::default())),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            owner_id: r.owner_id,
            user_role: r.user_role,
            member_count: r.member_count,
            server_count: r.server_count,
        }
    }
}

const POOL_SELECT: &str = "
    SELECT p.id, p.owner_id, p.name, p.description, p.is_default, p.settings, p.created_at, p.updated_at,
           me.role AS user_role,
           (SELECT COUNT(*) FROM pool_members m WHERE m.pool_id = p.id AND m.is_authorized = 1) AS member_count,
           (SELECT COUNT(*) FROM rentals r WHERE r.pool_id = p.id AND r.status = 'active') AS server_count
    FROM pools p
    JOIN pool_members me ON me.pool_id = p.id AND me.user_id = $1 AND me.is_authorized = 1";

/// Every pool the caller owns or has joined; the default pool first, then by name.
pub async fn list(db: &Db, user_id: &str) -> ServiceResult<Vec<Pool>> {
    let rows: Vec<PoolRow> = sqlx::query_as(&format!(
        "{POOL_SELECT} ORDER BY p.is_default DESC, p.name, p.id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Pool::from).collect())
}

async fn summary(db: &Db, user_id: &str, pool_id: &str) -> ServiceResult<Pool> {
    let row: Option<PoolRow> = sqlx::query_as(&format!("{POOL_SELECT} WHERE p.id = $2"))
        .bind(user_id)
        .bind(pool_id)
        .fetch_optional(db)
        .await?;
    row.map(Pool::from).ok_or(ServiceError::NotFound("Pool"))
}

/// A pool with its members (pending invitations included, for owners and admins) and servers.
pub async fn get(db: &Db, user_id: &str, pool_id: &str) -> ServiceResult<PoolDetail> {
    let role = require_role(db, pool_id, user_id).await?;
    let pool = summary(db, user_id, pool_id).await?;
    let members: Vec<MemberRow> = sqlx::query_as(
        "SELECT m.id, m.role, m.is_authorized, m.invited_at, m.joined_at, u.id, u.username
         FROM pool_members m JOIN users u ON u.id = m.user_id
         WHERE m.pool_id = $1 AND (m.is_authorized = 1 OR $2 = 1)
         ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.username",
    )
    .bind(pool_id)
    .bind(i64::from(role.can_rent()))
    .fetch_all(db)
    .await?;
    let servers: Vec<(String, String, String, i64, String, String)> = sqlx::query_as(
        "SELECT s.id, s.name, r.id, r.rental_end, s.country, s.city
         FROM rentals r JOIN marketplace_servers s ON s.id = r.server_id
         WHERE r.pool_id = $1 AND r.status = 'active'
         ORDER BY s.name",
    )
    .bind(pool_id)
    .fetch_all(db)
    .await?;
    Ok(PoolDetail {
        pool,
        members: members
            .into_iter()
            .map(|(id, role, auth, invited, joined, uid, username)| Member {
                id,
                role: stored(&role),
                is_authorized: auth != 0,
                invited_at: rfc3339(invited),
                joined_at: joined.map(rfc3339),
                user: UserRef {
                    id: uid,
                    alias: username.clone(),
                    username,
                },
            })
            .collect(),
        servers: servers
            .into_iter()
            .map(|(id, name, rental_id, end, country, city)| PoolServer {
                id,
                name,
                rental_id,
                rental_status: "active".into(),
                rental_end: rfc3339(end),
                is_ready: true,
                country,
                city,
            })
            .collect(),
    })
}

/// Checks pool fields; `None` means "not given".
fn validate(
    name: Option<&str>,
    description: Option<&str>,
    settings: Option<&Value>,
) -> ServiceResult<()> {
    if let Some(name) = name {
        let n = name.trim().chars().count();
        if n == 0 {
            return Err(ServiceError::invalid("Pool name is required"));
        }
        if n > NAME_MAX {
            return Err(ServiceError::invalid(format!(
                "Pool name must be at most {NAME_MAX} characters"
            )));
        }
    }
    if description.is_some_and(|d| d.chars().count() > DESCRIPTION_MAX) {
        return Err(ServiceError::invalid(format!(
            "Pool description must be at most {DESCRIPTION_MAX} characters"
        )));
    }
    if let Some(settings) = settings {
        if !settings.is_object() {
            return Err(ServiceError::invalid("Pool settings must be a JSON object"));
        }
        if settings.to_string().len() > SETTINGS_MAX_BYTES {
            return Err(ServiceError::invalid(
                "Pool settings are too large (16 KiB at most)",
            ));
        }
        if let Some(keys) = settings.get("member_keys") {
            if MemberKeys::parse(keys).is_none() {
                return Err(ServiceError::invalid(
                    "member_keys must be \"none\", \"admins\" or \"members\"",
                ));
            }
        }
    }
    Ok(())
}

#[instrument(skip_all, err(level = "info", Debug), fields(user_id))]
pub async fn create(
    db: &Db,
    user_id: &str,
    name: &str,
    description: Option<&str>,
    settings: Option<Value>,
) -> ServiceResult<Pool> {
    validate(Some(name), description, settings.as_ref())?;
    let id = db::new_id();
    let now = db::now_ms();
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query(
        "INSERT INTO pools (id, owner_id, name, description, is_default, settings, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(name.trim())
    .bind(description.unwrap_or("").trim())
    .bind(settings.unwrap_or(Value::Object(Default::default())).to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    add_owner(&mut tx, &id, user_id, now).await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "pool.create",
        "pool",
        Some(&id),
        serde_json::json!({"name": name}),
    )
    .await?;
    tx.commit().await?;
    summary(db, user_id, &id).await
}

/// Owner only. Fields left `None` keep their value.
pub async fn update(
    db: &Db,
    user_id: &str,
    pool_id: &str,
    name: Option<&str>,
    description: Option<&str>,
    settings: Option<Value>,
) -> ServiceResult<()> {
    validate(name, description, settings.as_ref())?;
    let role = require_role(db, pool_id, user_id).await?;
    if role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "Only the pool owner may update the pool",
        ));
    }
    sqlx::query(
        "UPDATE pools SET name = COALESCE($1, name), description = COALESCE($2, description),
                settings = COALESCE($3, settings), updated_at = $4
         WHERE id = $5",
    )
    .bind(name.map(str::trim))
    .bind(description.map(str::trim))
    .bind(settings.map(|s| s.to_string()))
    .bind(db::now_ms())
    .bind(pool_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Owner only; never the default pool. Its active rentals move to the owner's default pool, so
/// nothing paid for is lost.
pub async fn delete(db: &Db, user_id: &str, pool_id: &str) -> ServiceResult<()> {
    let role = require_role(db, pool_id, user_id).await?;
    if role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "Only the pool owner may delete the pool",
        ));
    }
    let is_default: i64 = sqlx::query_scalar("SELECT is_default FROM pools WHERE id = $1")
        .bind(pool_id)
        .fetch_one(db)
        .await?;
    if is_default != 0 {
        return Err(ServiceError::Conflict(
            "The default pool cannot be deleted".into(),
        ));
    }
    let default = default_pool(db, user_id).await?;
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query("UPDATE rentals SET pool_id = $1, updated_at = $2 WHERE pool_id = $3")
        .bind(&default)
        .bind(db::now_ms())
        .bind(pool_id)
        .execute(&mut *tx)
        .await?;
    // Machines shared with it go back to only their owners, who pay for them still.
    sqlx::query("UPDATE instances SET pool_id = NULL, updated_at = $1 WHERE pool_id = $2")
        .bind(db::now_ms())
        .bind(pool_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM pool_members WHERE pool_id = $1")
        .bind(pool_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM pools WHERE id = $1")
        .bind(pool_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "pool.delete",
        "pool",
        Some(pool_id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Owner or admin invites a user by username. Returns the new membership (pending).
#[instrument(skip_all, err(level = "info", Debug), fields(user_id, pool_id))]
pub async fn invite(
    db: &Db,
    user_id: &str,
    pool_id: &str,
    username: &str,
    role: &str,
) -> ServiceResult<Member> {
    let username = crate::accounts::users::validate_username(username)?;
    let new_role = assignable(role)?;
    let my_role = require_role(db, pool_id, user_id).await?;
    if !my_role.can_rent() {
        return Err(ServiceError::Forbidden(
            "Only the pool owner or an admin may invite members",
        ));
    }
    let invitee: Option<(String, String)> =
        sqlx::query_as("SELECT id, username FROM users WHERE LOWER(username) = LOWER($1)")
            .bind(&username)
            .fetch_optional(db)
            .await?;
    let Some((invitee_id, invitee_name)) = invitee else {
        return Err(ServiceError::NotFound("User"));
    };
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT is_authorized FROM pool_members WHERE pool_id = $1 AND user_id = $2",
    )
    .bind(pool_id)
    .bind(&invitee_id)
    .fetch_optional(db)
    .await?;
    match existing {
        Some(1) => {
            return Err(ServiceError::Conflict(
                "This user is already a member of the pool".into(),
            ))
        }
        Some(_) => {
            return Err(ServiceError::Conflict(
                "This user already has a pending invitation".into(),
            ))
        }
        None => {}
    }
    let member = Member {
        id: db::new_id(),
        role: new_role,
        is_authorized: false,
        invited_at: String::new(),
        joined_at: None,
        user: UserRef {
            id: invitee_id.clone(),
            alias: invitee_name.clone(),
            username: invitee_name,
        },
    };
    let now = db::now_ms();
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query(
        "INSERT INTO pool_members (id, pool_id, user_id, role, is_authorized, invited_by, invited_at, joined_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6, NULL)",
    )
    .bind(&member.id)
    .bind(pool_id)
    .bind(&invitee_id)
    .bind(member.role.as_str())
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "pool.invite",
        "pool",
        Some(pool_id),
        serde_json::json!({"invitee": invitee_id, "role": member.role}),
    )
    .await?;
    tx.commit().await?;
    Ok(Member {
        invited_at: rfc3339(now),
        ..member
    })
}

/// The caller's pending invitations, newest first.
pub async fn pending_invitations(db: &Db, user_id: &str) -> ServiceResult<Vec<Invitation>> {
    let rows: Vec<InvitationRow> = sqlx::query_as(
        "SELECT m.id, p.id, p.name, p.description, m.role, m.invited_at, u.id, u.username
         FROM pool_members m
         JOIN pools p ON p.id = m.pool_id
         LEFT JOIN users u ON u.id = m.invited_by
         WHERE m.user_id = $1 AND m.is_authorized = 0
         ORDER BY m.invited_at DESC, m.id DESC",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, pool_id, pool_name, pool_description, role, invited_at, by_id, by_name)| {
                Invitation {
                    id,
                    pool_id,
                    pool_name,
                    pool_description,
                    role: stored(&role),
                    invited_by: UserRef {
                        id: by_id.unwrap_or_default(),
                        alias: by_name.clone().unwrap_or_default(),
                        username: by_name.unwrap_or_default(),
                    },
                    invited_at: rfc3339(invited_at),
                }
            },
        )
        .collect())
}

/// How many invitations wait for the caller (the navigation badge).
pub async fn pending_count(db: &Db, user_id: &str) -> ServiceResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM pool_members WHERE user_id = $1 AND is_authorized = 0",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?)
}

/// Accepts (`true`) or rejects (`false`) one of the caller's pending invitations.
pub async fn answer_invitation(
    db: &Db,
    user_id: &str,
    invitation_id: &str,
    accept: bool,
) -> ServiceResult<()> {
    let mut tx = crate::infra::db::begin(db).await?;
    let done = if accept {
        sqlx::query(
            "UPDATE pool_members SET is_authorized = 1, joined_at = $1
             WHERE id = $2 AND user_id = $3 AND is_authorized = 0",
        )
        .bind(db::now_ms())
        .bind(invitation_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query("DELETE FROM pool_members WHERE id = $1 AND user_id = $2 AND is_authorized = 0")
            .bind(invitation_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
    };
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound("Invitation"));
    }
    audit::record(
        &mut tx,
        Some(user_id),
        if accept {
            "pool.invitation.accept"
        } else {
            "pool.invitation.reject"
        },
        "pool_member",
        Some(invitation_id),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn member_role(db: &Db, pool_id: &str, member_user_id: &str) -> ServiceResult<(Role, bool)> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT role, is_authorized FROM pool_members WHERE pool_id = $1 AND user_id = $2",
    )
    .bind(pool_id)
    .bind(member_user_id)
    .fetch_optional(db)
    .await?;
    row.and_then(|(r, a)| Role::parse(&r).map(|r| (r, a != 0)))
        .ok_or(ServiceError::NotFound("Member"))
}

/// Owner only; the owner's own role cannot change.
pub async fn change_role(
    db: &Db,
    user_id: &str,
    pool_id: &str,
    member_user_id: &str,
    role: &str,
) -> ServiceResult<()> {
    let new_role = assignable(role)?;
    let my_role = require_role(db, pool_id, user_id).await?;
    if my_role != Role::Owner {
        return Err(ServiceError::Forbidden(
            "Only the pool owner may change roles",
        ));
    }
    let (current, _) = member_role(db, pool_id, member_user_id).await?;
    if current == Role::Owner {
        return Err(ServiceError::Conflict(
            "The owner's role cannot be changed".into(),
        ));
    }
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query("UPDATE pool_members SET role = $1 WHERE pool_id = $2 AND user_id = $3")
        .bind(new_role.as_str())
        .bind(pool_id)
        .bind(member_user_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "pool.member.role",
        "pool",
        Some(pool_id),
        serde_json::json!({"member": member_user_id, "role": new_role.as_str()}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Owner removes anyone but themselves; an admin removes `user`s and pending invitations; any
/// member may remove themselves (leave).
pub async fn remove_member(
    db: &Db,
    user_id: &str,
    pool_id: &str,
    member_user_id: &str,
) -> ServiceResult<()> {
    let my_role = require_role(db, pool_id, user_id).await?;
    let (target, authorized) = member_role(db, pool_id, member_user_id).await?;
    if target == Role::Owner {
        return Err(ServiceError::Conflict(
            "The pool owner cannot be removed".into(),
        ));
    }
    let allowed = member_user_id == user_id
        || my_role == Role::Owner
        || (my_role == Role::Admin && (target == Role::User || !authorized));
    if !allowed {
        return Err(ServiceError::Forbidden(match my_role {
            Role::Admin => "Admins may remove only users and pending invitations",
            _ => "Only the pool owner or an admin may remove members",
        }));
    }
    let mut tx = crate::infra::db::begin(db).await?;
    sqlx::query("DELETE FROM pool_members WHERE pool_id = $1 AND user_id = $2")
        .bind(pool_id)
        .bind(member_user_id)
        .execute(&mut *tx)
        .await?;
    // A member who leaves takes the machines they shared (and pay for) with them.
    sqlx::query(
        "UPDATE instances SET pool_id = NULL, updated_at = $1 WHERE pool_id = $2 AND user_id = $3",
    )
    .bind(db::now_ms())
    .bind(pool_id)
    .bind(member_user_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "pool.member.remove",
        "pool",
        Some(pool_id),
        serde_json::json!({"member": member_user_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Which members' SSH keys the pool's rented servers are set up with, besides the renter's own
/// choice: the pool setting `member_keys` (`none` when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKeys {
    None,
    /// The owner's and admins' keys.
    Admins,
    /// Every authorized member's keys.
    Members,
}

impl MemberKeys {
    pub fn parse(value: &Value) -> Option<Self> {
        match value.as_str()? {
            "none" => Some(Self::None),
            "admins" => Some(Self::Admins),
            "members" => Some(Self::Members),
            _ => None,
        }
    }

    /// The pool's setting, read from its stored settings.
    pub fn of_settings(settings: &str) -> Self {
        serde_json::from_str::<Value>(settings)
            .ok()
            .and_then(|s| s.get("member_keys").and_then(Self::parse))
            .unwrap_or(Self::None)
    }

    /// The member roles whose keys go on the pool's servers.
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            Self::None => &[],
            Self::Admins => &["owner", "admin"],
            Self::Members => &["owner", "admin", "user"],
        }
    }
}
