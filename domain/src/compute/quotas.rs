//! Quotas: how much one account may hold at once, so one customer cannot take a platform's
//! capacity (or its control plane) from the others. Hetzner's "Limits" are the model: every
//! account has limits, the operator sets defaults (`quota_*` in the config) and raises them per
//! account (`PUT /api/admin/users/{id}/quotas`), the customer sees usage against each
//! (`GET /api/quotas`, the account page), and a refusal names the limit and how to ask for more.
//!
//! Consoles (and screens) are counted per replica, as before (`console_max_per_user` is their
//! default). Live event streams have no quota yet: each ends with its session (see
//! `server::http::events`), but one account may hold several.
//!
//! Machines, vCPU, memory, disk and public IPv4 addresses count every machine that holds them:
//! any state but deleted and failed. The checks run inside the create's transaction after the
//! account's row is locked (`lock_account`), so parallel creates cannot all slip under a limit.

use crate::infra::config::Config;
use crate::infra::db::{self, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use model::compute::{QuotaItem, Quotas};

/// One account's limits, after overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub machines: i64,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub ipv4: i64,
    pub consoles: i64,
    pub background_commands: i64,
}

/// What an account holds now, in the same units.
pub type Usage = Limits;

/// The operator's per-account changes, as stored and as the admin API takes them: `None`
/// leaves the default.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    utoipa::ToSchema,
    sqlx::FromRow,
)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub machines: Option<i64>,
    pub vcpu: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub ipv4: Option<i64>,
    pub consoles: Option<i64>,
    pub background_commands: Option<i64>,
}

impl Limits {
    /// The operator's defaults.
    pub fn defaults(config: &Config) -> Self {
        Limits {
            machines: config.quota_machines,
            vcpu: config.quota_vcpu,
            memory_mb: config.quota_memory_mb,
            disk_gb: config.quota_disk_gb,
            ipv4: config.quota_ipv4,
            consoles: config.console_max_per_user as i64,
            background_commands: config.quota_background_commands,
        }
    }

    fn with(mut self, o: &Overrides) -> Self {
        let pick = |default: i64, set: Option<i64>| set.unwrap_or(default);
        self.machines = pick(self.machines, o.machines);
        self.vcpu = pick(self.vcpu, o.vcpu);
        self.memory_mb = pick(self.memory_mb, o.memory_mb);
        self.disk_gb = pick(self.disk_gb, o.disk_gb);
        self.ipv4 = pick(self.ipv4, o.ipv4);
        self.consoles = pick(self.consoles, o.consoles);
        self.background_commands = pick(self.background_commands, o.background_commands);
        self
    }
}

/// The account's overrides (none set: all `None`).
pub async fn overrides(db: &Pool, user_id: &str) -> ServiceResult<Overrides> {
    Ok(sqlx::query_as(
        "SELECT machines, vcpu, memory_mb, disk_gb, ipv4, consoles, background_commands
         FROM account_quotas WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?
    .unwrap_or_default())
}

/// The account's limits.
pub async fn limits(db: &Pool, config: &Config, user_id: &str) -> ServiceResult<Limits> {
    Ok(Limits::defaults(config).with(&overrides(db, user_id).await?))
}

/// Machines and their sizes the account holds, read inside `tx`.
async fn held(tx: &mut Tx<'_>, user_id: &str) -> ServiceResult<Usage> {
    let (machines, vcpu, memory_mb, disk_gb, ipv4): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(vcpu), 0) AS BIGINT), CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT),
                CAST(COALESCE(SUM(disk_gb), 0) AS BIGINT), COUNT(public_ip)
         FROM instances WHERE user_id = $1 AND state NOT IN ('deleted', 'failed')",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Usage {
        machines,
        vcpu,
        memory_mb,
        disk_gb,
        ipv4,
        ..Usage::default()
    })
}

/// Everything the account uses now (`consoles` is this replica's count).
pub async fn usage(db: &Pool, user_id: &str, consoles: i64) -> ServiceResult<Usage> {
    let mut tx = db::begin(db).await?;
    let mut used = held(&mut tx, user_id).await?;
    tx.commit().await?;
    used.background_commands = background_commands(db, user_id).await?;
    used.consoles = consoles;
    Ok(used)
}

/// Takes the account's row lock for the rest of `tx` (PostgreSQL's row lock, SQLite's write
/// lock): checks that read what the account holds and then add to it are done one account-
/// transaction at a time, so six parallel creates cannot all pass a check meant for one.
pub async fn lock_account(tx: &mut Tx<'_>, user_id: &str) -> ServiceResult<()> {
    sqlx::query("UPDATE users SET balance_micros = balance_micros WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What a new machine would add.
#[derive(Debug, Clone, Copy)]
pub struct Adding {
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub ipv4: bool,
}

/// Refuses a new machine that would take the account past a limit (inside the create's
/// transaction, after [`lock_account`]).
pub async fn check_new_machine(
    tx: &mut Tx<'_>,
    limits: &Limits,
    user_id: &str,
    adding: Adding,
) -> ServiceResult<()> {
    let held = held(tx, user_id).await?;
    let over = |name: &str, unit: &str, held: i64, add: i64, limit: i64| -> ServiceResult<()> {
        if held + add > limit {
            return Err(ServiceError::QuotaExceeded(format!(
                "This would pass your limit of {limit}{unit} {name} ({held}{unit} in use, {add}{unit} more asked). \
                 Delete something you no longer need, or ask your provider to raise the limit \
                 (your limits are on the account page and at GET /api/quotas)."
            )));
        }
        Ok(())
    };
    over("machines", "", held.machines, 1, limits.machines)?;
    over("vCPUs", "", held.vcpu, adding.vcpu, limits.vcpu)?;
    over(
        "memory",
        " MB",
        held.memory_mb,
        adding.memory_mb,
        limits.memory_mb,
    )?;
    over("disk", " GB", held.disk_gb, adding.disk_gb, limits.disk_gb)?;
    over(
        "public IPv4 addresses",
        "",
        held.ipv4,
        i64::from(adding.ipv4),
        limits.ipv4,
    )?;
    Ok(())
}

/// Background commands of the account not yet ended.
pub async fn background_commands(db: &Pool, user_id: &str) -> ServiceResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM exec_jobs WHERE user_id = $1 AND status IN ('pending', 'running')",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?)
}

/// Refuses another background command past the account's limit.
pub async fn check_background_command(
    db: &Pool,
    config: &Config,
    user_id: &str,
) -> ServiceResult<()> {
    let limit = limits(db, config, user_id).await?.background_commands;
    let running = background_commands(db, user_id).await?;
    if running >= limit {
        return Err(ServiceError::QuotaExceeded(format!(
            "You have {running} background commands pending or running, your limit; wait for one \
             to end or cancel one, or ask your provider to raise the limit."
        )));
    }
    Ok(())
}

/// Sets the account's overrides (`None` fields go back to the default), audited as the
/// operator `by`. Values must be 0 or more.
pub async fn set(db: &Pool, by: &str, user_id: &str, o: &Overrides) -> ServiceResult<()> {
    let all = [
        o.machines,
        o.vcpu,
        o.memory_mb,
        o.disk_gb,
        o.ipv4,
        o.consoles,
        o.background_commands,
    ];
    if all
        .iter()
        .flatten()
        .any(|v| !(0..=1_000_000_000).contains(v))
    {
        return Err(ServiceError::invalid(
            "Quota values are whole numbers from 0 to 1000000000, or null for the default",
        ));
    }
    crate::accounts::users::get(db, user_id).await?;
    let mut tx = db::begin(db).await?;
    sqlx::query(
        "INSERT INTO account_quotas (user_id, machines, vcpu, memory_mb, disk_gb, ipv4, consoles, background_commands, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (user_id) DO UPDATE SET machines = excluded.machines, vcpu = excluded.vcpu,
           memory_mb = excluded.memory_mb, disk_gb = excluded.disk_gb, ipv4 = excluded.ipv4,
           consoles = excluded.consoles, background_commands = excluded.background_commands,
           updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(o.machines)
    .bind(o.vcpu)
    .bind(o.memory_mb)
    .bind(o.disk_gb)
    .bind(o.ipv4)
    .bind(o.consoles)
    .bind(o.background_commands)
    .bind(db::now_ms())
    .execute(&mut *tx)
    .await?;
    crate::infra::audit::record(
        &mut tx,
        Some(by),
        "user.quotas",
        "user",
        Some(user_id),
        serde_json::to_value(o).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The account's limits with their use, as `GET /api/quotas` and the account page show them.
pub async fn of_account(state: &crate::AppState, user_id: &str) -> ServiceResult<Quotas> {
    let limits = limits(&state.db, &state.config, user_id).await?;
    let consoles = state.consoles.held_by(user_id) as i64;
    let used = usage(&state.db, user_id, consoles).await?;
    Ok(view(&limits, &used))
}

/// Limits and usage as the customer sees them.
pub fn view(limits: &Limits, used: &Usage) -> Quotas {
    let item = |name: &str, unit: &str, used: i64, limit: i64| QuotaItem {
        name: name.to_owned(),
        unit: unit.to_owned(),
        used,
        limit,
    };
    Quotas {
        items: vec![
            item("machines", "", used.machines, limits.machines),
            item("vcpu", "vCPU", used.vcpu, limits.vcpu),
            item("memory", "MB", used.memory_mb, limits.memory_mb),
            item("disk", "GB", used.disk_gb, limits.disk_gb),
            item("ipv4", "addresses", used.ipv4, limits.ipv4),
            item("consoles", "open", used.consoles, limits.consoles),
            item(
                "background_commands",
                "running",
                used.background_commands,
                limits.background_commands,
            ),
        ],
    }
}
