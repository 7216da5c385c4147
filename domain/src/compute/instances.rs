//! Instances: the one row behind a VPS (`/api/vps`), a server (`/v1/servers`) and an instance (`/v1/instances`).
//!
//! Requests never call a driver. Each action checks the instance's state, records the transition
//! and enqueues a job in one transaction (`crate::jobs` runs it, `executor` says what it does), so a crash between the two
//! is impossible and the caller gets an answer at once. One transition at a time: a second
//! action while one runs is a 409 naming the one in flight.

use std::collections::BTreeMap;

use tracing::instrument;

use crate::accounts::keys;
use crate::accounts::pools::{self, Role};
use crate::compute::quotas;
use crate::fleet::catalog::HeldRates;
use crate::fleet::catalog::{self, PlanRow, TemplateRow};
use crate::fleet::driver::Kind;
use crate::fleet::nodes::{self, Backend, Size, Wanted};
use crate::fleet::{addresses, survey};
use crate::infra::audit;
use crate::infra::db::{self, rfc3339, Pool, Tx};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::queue::{self, JobKind};
use crate::Actor;
use crate::AppState;
pub use model::compute::InstanceState;
use model::compute::{Snapshot, Vps};
use model::money::UsdNum;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub kind: Kind,
    pub plan_id: String,
    pub image: String,
    pub template_id: Option<String>,
    pub node_id: Option<String>,
    pub region: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub price_hourly_micros: i64,
    #[sqlx(try_from = "String")]
    pub state: InstanceState,
    pub transition: Option<String>,
    pub reason: Option<String>,
    /// What the action in flight is doing now (see `executor::await_guest`).
    pub progress: Option<String>,
    pub labels: String,
    pub ssh_key_ids: String,
    pub security_groups: String,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub user_data: Option<String>,
    pub backups: i64,
    pub ddos_protection: i64,
    pub public_ip: Option<String>,
    pub private_ip: Option<String>,
    pub vnc_port: Option<i64>,
    pub seed_key: String,
    pub token_id: Option<String>,
    pub expires_at: Option<i64>,
    pub metered_until: Option<i64>,
    pub metered_minutes: i64,
    /// 1 while its vCPU and memory count on its node (0 once stopped, until a start).
    pub holds_compute: i64,
    /// What it pays per hour while stopped (its disk and public address), µUSD.
    pub held_hourly_micros: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// Since when (epoch ms) its node cannot be reached (see `compute::reconcile`).
    pub unreachable_since: Option<i64>,
    /// JSON array of the host ports it got from a node daemon's pool (`ip:port/protocol`).
    pub ports: String,
    /// What it has written to its disk, as its node last reported (containers).
    pub disk_used_bytes: Option<i64>,
    /// The pool it is shared with (see [`access`]); `None`: only its owner.
    pub pool_id: Option<String>,
}

pub const COLUMNS: &str = "id, user_id, name, kind, plan_id, image, template_id, node_id, region, vcpu, memory_mb, disk_gb, \
    price_hourly_micros, state, transition, reason, progress, labels, ssh_key_ids, security_groups, vpc_id, subnet_id, user_data, \
    backups, ddos_protection, public_ip, private_ip, vnc_port, seed_key, token_id, expires_at, metered_until, \
    metered_minutes, holds_compute, held_hourly_micros, created_at, updated_at, deleted_at, unreachable_since, ports, disk_used_bytes, pool_id";

impl InstanceRow {
    pub fn labels(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.labels).unwrap_or_default()
    }

    pub fn ssh_key_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.ssh_key_ids).unwrap_or_default()
    }

    pub fn security_groups(&self) -> Vec<String> {
        serde_json::from_str(&self.security_groups).unwrap_or_default()
    }

    /// The action in flight, if any.
    pub fn transition(&self) -> Option<Transition> {
        self.transition.as_deref().and_then(Transition::parse)
    }

    /// The address to reach the machine at: its public address when it has one, else the private
    /// address its node gave it (Hangar does not allocate public addresses itself yet).
    pub fn address(&self) -> Option<String> {
        self.public_ip.clone().or_else(|| self.private_ip.clone())
    }

    pub fn size(&self) -> Size {
        Size {
            vcpu: self.vcpu,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
        }
    }

    /// The `/api` dialect's view.
    pub fn to_vps(&self) -> Vps {
        Vps {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state.vps(),
            transition: self.transition(),
            reason: self.reason.clone(),
            progress: self.transition.as_ref().and(self.progress.clone()),
            plan_id: self.plan_id.clone(),
            kind: self.kind,
            image: self.image.clone(),
            region: self.region.clone(),
            vcpu: self.vcpu,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
            price_hourly: UsdNum(self.price_hourly_micros),
            stopped_hourly: UsdNum(self.held_hourly_micros),
            ip: self.address(),
            ssh_key_ids: self.ssh_key_ids(),
            expires_at: self.expires_at.map(rfc3339),
            created_at: rfc3339(self.created_at),
            unreachable_since: self.unreachable_since.map(rfc3339),
            ports: serde_json::from_str(&self.ports).unwrap_or_default(),
            disk_used_bytes: self.disk_used_bytes,
            pool_id: self.pool_id.clone(),
        }
    }
}

/// What any of the three APIs asks for, after its own parsing.
#[derive(Debug, Clone, Default)]
pub struct NewInstance {
    pub name: String,
    /// Plan id or slug; may come from the template.
    pub plan: Option<String>,
    pub template: Option<String>,
    /// Image slug; defaults to the template's, then the kind's default image.
    pub image: Option<String>,
    pub region: Option<String>,
    pub vcpu: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub ssh_key_ids: Vec<String>,
    pub user_data: Option<String>,
    pub ttl_minutes: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub vpc_id: Option<String>,
    pub subnet_id: Option<String>,
    pub security_groups: Vec<String>,
    pub backups: bool,
    pub ddos_protection: bool,
    /// A pool to share it with from the start; the caller must be its owner or an admin.
    pub pool_id: Option<String>,
}

/// Largest accepted user data (cloud-init's own limit for most datasources is 16 KiB;
/// we allow a little more for multi-part documents).
pub const MAX_USER_DATA: usize = 64 * 1024;

pub fn validate_name(name: &str) -> ServiceResult<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(ServiceError::invalid(
            "A name is 1 to 63 letters, digits, `-`, `_` or `.`, and starts with a letter or digit",
        ));
    }
    Ok(name.to_owned())
}

/// A created instance and the operation (job) provisioning it.
#[derive(Debug, Clone)]
pub struct Created {
    pub instance: InstanceRow,
    pub operation_id: String,
}

/// Creates an instance: checks everything, reserves node capacity, records it as `provisioning`
/// and enqueues its create job, all in one transaction. The account's quotas must allow it
/// (403), and its balance must cover the configured minimum runtime of every machine it would
/// then have running, this one included (402; the token's spend limit is checked the same way).
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %actor.user_id))]
pub async fn create(state: &AppState, actor: &Actor, req: NewInstance) -> ServiceResult<Created> {
    let db = &state.db;
    let spec = Spec::check(db, actor, &req).await?;
    let limits = quotas::limits(db, &state.config, &actor.user_id).await?;

    let now = db::now_ms();
    let id = db::new_id();
    let mut tx = crate::infra::db::begin(db).await?;
    // One create (or start) of this account at a time from here: the quota and the money
    // checks read what it holds, and a parallel create must see this one.
    quotas::lock_account(&mut tx, &actor.user_id).await?;
    if let Some(pool) = &req.pool_id {
        // The pool's owner and admins may share a machine with it; it stays theirs to pay.
        pools::require_manager(&mut *tx, pool, &actor.user_id).await?;
    }
    quotas::check_new_machine(
        &mut tx,
        &limits,
        &actor.user_id,
        quotas::Adding {
            vcpu: spec.size.vcpu,
            memory_mb: spec.size.memory_mb,
            disk_gb: spec.size.disk_gb,
            ipv4: false,
        },
    )
    .await?;
    check_capacity_funds(&mut tx, state, actor, spec.plan.price_hourly_micros).await?;
    let kind = spec.plan.kind();
    let (cpu, memory) = (state.config.cpu_overcommit, state.config.memory_overcommit);
    let wanted = |backend| Wanted {
        kind,
        backend,
        region: req.region.as_deref(),
        image: &spec.image,
    };
    let node = match (kind, spec.app) {
        (Kind::Container, true) => {
            nodes::place(&mut tx, wanted(Backend::Daemon), spec.size, cpu, memory).await?
        }
        (Kind::Container, false) => {
            match nodes::place(&mut tx, wanted(Backend::DockerApi), spec.size, cpu, memory).await {
                Err(ServiceError::Conflict(_)) => {
                    nodes::place(&mut tx, wanted(Backend::Any), spec.size, cpu, memory).await?
                }
                other => other?,
            }
        }
        (Kind::Vm, _) => {
            nodes::place(&mut tx, wanted(Backend::Any), spec.size, cpu, memory).await?
        }
    };
    let public_ip = match kind {
        Kind::Vm => {
            let cooldown = state.config.public_ip_cooldown_minutes * 60_000;
            addresses::allocate(&mut tx, &node.region, &id, &actor.user_id, cooldown).await?
        }
        Kind::Container => None,
    };
    if public_ip.is_some() {
        let adding = quotas::Adding {
            vcpu: 0,
            memory_mb: 0,
            disk_gb: 0,
            ipv4: true,
        };
        // The machine itself was counted above; only its address is new here.
        let mut only_ipv4 = limits;
        only_ipv4.machines = i64::MAX;
        quotas::check_new_machine(&mut tx, &only_ipv4, &actor.user_id, adding).await?;
    }
    let held = HeldRates::of(&state.config).hourly(spec.size.disk_gb, public_ip.is_some());
    insert(
        &mut tx,
        &id,
        actor,
        &req,
        &spec,
        &node,
        (public_ip, held),
        now,
    )
    .await?;
    if let Some(t) = &spec.template {
        sqlx::query("UPDATE templates SET uses = uses + 1 WHERE id = $1")
            .bind(&t.id)
            .execute(&mut *tx)
            .await?;
    }
    let operation_id = hand_off(
        state,
        tx,
        Handoff {
            kind: JobKind::Create,
            user_id: &actor.user_id,
            instance_id: &id,
            payload: serde_json::json!({}),
            at: now,
            action: "instance.create",
            details: serde_json::json!({"plan": spec.plan.slug, "node": node.name}),
        },
    )
    .await?;
    let instance = get(db, &actor.user_id, &id).await?;
    Ok(Created {
        instance,
        operation_id,
    })
}

/// A create request checked against the catalog: what the machine will be. Values come from the
/// request, else the template, else the plan.
struct Spec {
    name: String,
    template: Option<TemplateRow>,
    plan: PlanRow,
    image: String,
    /// The image is an app template (it needs a node daemon).
    app: bool,
    size: Size,
    user_data: Option<String>,
    expires_in_minutes: Option<i64>,
}

impl Spec {
    async fn check(db: &Pool, actor: &Actor, req: &NewInstance) -> ServiceResult<Spec> {
        let name = validate_name(&req.name)?;
        let template = match &req.template {
            Some(slug) => Some(catalog::template(db, slug).await.map_err(|e| match e {
                ServiceError::NotFound(_) => {
                    ServiceError::invalid(format!("template: no template `{slug}`"))
                }
                e => e,
            })?),
            None => None,
        };
        let template = template.map(|(t, _)| t);
        let t = template.as_ref();
        let plan = Self::plan(db, req, t).await?;
        let (image, app) = Self::image(db, req, t, &plan).await?;
        let size = Size {
            vcpu: pick(req.vcpu, t.and_then(|t| t.vcpu), plan.vcpu, "vcpu")?,
            memory_mb: pick(
                req.memory_mb,
                t.and_then(|t| t.memory_mb),
                plan.memory_mb,
                "memory_mb",
            )?,
            disk_gb: pick(
                req.disk_gb,
                t.and_then(|t| t.disk_gb),
                plan.disk_gb,
                "disk_gb",
            )?,
        };
        let user_data = req
            .user_data
            .clone()
            .or_else(|| t.and_then(|t| t.user_data.clone()));
        if user_data.as_ref().is_some_and(|u| u.len() > MAX_USER_DATA) {
            return Err(ServiceError::invalid(format!(
                "user_data is larger than {} KiB",
                MAX_USER_DATA / 1024
            )));
        }
        let ttl = req.ttl_minutes.or_else(|| t.and_then(|t| t.ttl_minutes));
        if ttl.is_some_and(|m| !(1..=525_600).contains(&m)) {
            return Err(ServiceError::invalid(
                "ttl_minutes must be between 1 and 525600",
            ));
        }
        if req.ssh_key_ids.len() > 20 {
            return Err(ServiceError::invalid("at most 20 ssh_key_ids"));
        }
        keys::resolve(db, &actor.user_id, &req.ssh_key_ids).await?;
        check_labels(&req.labels)?;
        Ok(Spec {
            name,
            template,
            plan,
            image,
            app,
            size,
            user_data,
            expires_in_minutes: ttl,
        })
    }

    /// The active plan asked for, or the template's.
    async fn plan(db: &Pool, req: &NewInstance, t: Option<&TemplateRow>) -> ServiceResult<PlanRow> {
        let plan_ref = req
            .plan
            .clone()
            .or_else(|| t.map(|t| t.plan_id.clone()))
            .ok_or_else(|| ServiceError::invalid("plan_id (or a template) is required"))?;
        catalog::plan(db, &plan_ref)
            .await?
            .filter(|p| p.active == 1)
            .ok_or_else(|| ServiceError::invalid(format!("plan: no active plan `{plan_ref}`")))
    }

    /// The image asked for, else the template's, else the default of the plan's kind; it must
    /// be of the plan's kind. Returns its slug and whether it is an app template.
    async fn image(
        db: &Pool,
        req: &NewInstance,
        t: Option<&TemplateRow>,
        plan: &PlanRow,
    ) -> ServiceResult<(String, bool)> {
        let image = match req.image.clone().or_else(|| t.map(|t| t.image.clone())) {
            Some(slug) => catalog::image(db, &slug)
                .await?
                .ok_or_else(|| ServiceError::invalid(format!("image: no image `{slug}`")))?,
            None => survey::default_image(db, plan.kind())
                .await?
                .ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "image: no node holds a {} image right now",
                        plan.kind
                    ))
                })?,
        };
        if image.kind != plan.kind {
            return Err(ServiceError::invalid(format!(
                "image `{}` is for {} plans, `{}` is a {} plan",
                image.slug, image.kind, plan.slug, plan.kind
            )));
        }
        // Refused now, not after the customer paid and the node said no.
        if !survey::is_available(db, &image.slug, plan.kind()).await? {
            let offered: Vec<String> = survey::available(db)
                .await?
                .into_iter()
                .filter(|i| i.kind == plan.kind)
                .map(|i| i.slug)
                .collect();
            return Err(ServiceError::invalid(if offered.is_empty() {
                format!(
                    "image: `{}` is not on any node, and no {} image is available right now",
                    image.slug, plan.kind
                )
            } else {
                format!(
                    "image: `{}` is not on any node; available {} images: {}",
                    image.slug,
                    plan.kind,
                    offered.join(", ")
                )
            }));
        }
        let app = image.app.is_some();
        Ok((image.slug, app))
    }
}

/// One size dimension: the request's, else the template's, else the plan's; never above the plan.
fn pick(
    explicit: Option<i64>,
    from_template: Option<i64>,
    plan_value: i64,
    what: &str,
) -> ServiceResult<i64> {
    let v = explicit.or(from_template).unwrap_or(plan_value);
    if v < 1 || v > plan_value {
        Err(ServiceError::invalid(format!(
            "{what} must be between 1 and the plan's {plan_value}"
        )))
    } else {
        Ok(v)
    }
}

fn check_labels(labels: &BTreeMap<String, String>) -> ServiceResult<()> {
    let bad = labels.len() > 64
        || labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 63 || v.len() > 255);
    if bad {
        return Err(ServiceError::invalid(
            "labels: at most 64, keys 1–63 characters, values up to 255",
        ));
    }
    Ok(())
}

/// Writes the new instance's row, `provisioning` with its create in flight.
#[expect(
    clippy::too_many_arguments,
    reason = "one row from the request, its checked spec and where it landed"
)]
async fn insert(
    tx: &mut Tx<'_>,
    id: &str,
    actor: &Actor,
    req: &NewInstance,
    spec: &Spec,
    node: &nodes::NodeRow,
    (public_ip, held_hourly): (Option<String>, i64),
    now: i64,
) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO instances (id, user_id, name, kind, plan_id, image, template_id, node_id, region, vcpu, memory_mb, disk_gb,
            price_hourly_micros, state, transition, labels, ssh_key_ids, security_groups, vpc_id, subnet_id, user_data,
            backups, ddos_protection, seed_key, token_id, expires_at, created_at, updated_at, public_ip, held_hourly_micros, pool_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'provisioning', 'create', $14, $15, $16, $17, $18, $19,
            $20, $21, $22, $23, $24, $25, $25, $26, $27, $28)",
    )
    .bind(id)
    .bind(&actor.user_id)
    .bind(&spec.name)
    .bind(spec.plan.kind().as_str())
    .bind(&spec.plan.id)
    .bind(&spec.image)
    .bind(spec.template.as_ref().map(|t| t.id.clone()))
    .bind(&node.id)
    .bind(&node.region)
    .bind(spec.size.vcpu)
    .bind(spec.size.memory_mb)
    .bind(spec.size.disk_gb)
    .bind(spec.plan.price_hourly_micros)
    .bind(serde_json::to_string(&req.labels).unwrap_or_default())
    .bind(serde_json::to_string(&req.ssh_key_ids).unwrap_or_default())
    .bind(serde_json::to_string(&req.security_groups).unwrap_or_default())
    .bind(&req.vpc_id)
    .bind(&req.subnet_id)
    .bind(&spec.user_data)
    .bind(i64::from(req.backups))
    .bind(i64::from(req.ddos_protection))
    .bind(db::random_key())
    .bind(&actor.token_id)
    .bind(spec.expires_in_minutes.map(|m| now + m * 60_000))
    .bind(now)
    .bind(&public_ip)
    .bind(held_hourly)
    .bind(&req.pool_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// 402 unless the balance (and the token's remaining spend limit) covers `required`.
/// Money that matches capacity: the balance must cover `min_runtime_minutes` of everything the
/// account would have running — the machines running or on their way (provisioning, rebooting,
/// starting) at their hourly prices, plus `adding` — not just the new one. Read inside `tx`,
/// after [`quotas::lock_account`], so parallel creates each see the others.
pub async fn check_capacity_funds(
    tx: &mut Tx<'_>,
    state: &AppState,
    actor: &Actor,
    adding_hourly: i64,
) -> ServiceResult<()> {
    let running: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(price_hourly_micros), 0) AS BIGINT) FROM instances
         WHERE user_id = $1 AND (state IN ('provisioning', 'running', 'rebooting') OR transition = 'start')",
    )
    .bind(&actor.user_id)
    .fetch_one(&mut **tx)
    .await?;
    let balance: i64 = sqlx::query_scalar("SELECT balance_micros FROM users WHERE id = $1")
        .bind(&actor.user_id)
        .fetch_one(&mut **tx)
        .await?;
    let required = (running + adding_hourly) * state.config.min_runtime_minutes / 60;
    if balance < required {
        return Err(ServiceError::InsufficientBalance {
            balance,
            required,
            message: format!(
                "insufficient balance: running this with what you already run needs {} minutes \
                 of all of it paid ahead",
                state.config.min_runtime_minutes
            ),
        });
    }
    check_token_limit(
        &mut **tx,
        actor,
        balance,
        adding_hourly * state.config.min_runtime_minutes / 60,
    )
    .await
}

/// The token's spend limit must leave room for `required` more.
async fn check_token_limit<'e, E>(
    executor: E,
    actor: &Actor,
    balance: i64,
    required: i64,
) -> ServiceResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if let Some(token_id) = &actor.token_id {
        let row: Option<(Option<i64>, i64)> = sqlx::query_as(
            "SELECT spend_limit_micros, spent_micros FROM access_tokens WHERE id = $1",
        )
        .bind(token_id)
        .fetch_optional(executor)
        .await?;
        if let Some((Some(limit), spent)) = row {
            if spent + required > limit {
                return Err(crate::money::ledger::token_limit_reached(
                    balance, required, limit, spent,
                ));
            }
        }
    }
    Ok(())
}

/// What a caller wants to do with a machine. Its owner (the account that created it, which pays
/// for it) may do everything; a machine shared with a pool gives each accepted member what their
/// role there allows, and anyone else does not know it exists (404):
///
/// | role in the pool | `Use` | `Operate` | `Own` |
/// |------------------|-------|-----------|-------|
/// | user             | yes   |           |       |
/// | admin            | yes   | yes       |       |
/// | owner            | yes   | yes       | yes   |
///
/// A member who may see a machine but not do what they ask gets 403, saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// See it, its charts, snapshots and jobs; use its console, screen, commands and files.
    Use,
    /// Start, stop and restart it, rename it, take, restore and delete its snapshots.
    Operate,
    /// Delete it; move it into or out of a pool.
    Own,
}

impl Need {
    /// What `role` in a machine's pool allows.
    fn of_role(role: Role) -> Self {
        match role {
            Role::Owner => Need::Own,
            Role::Admin => Need::Operate,
            Role::User => Need::Use,
        }
    }
}

/// The most `user_id` may do with `inst`: everything for its creator, by role for its pool's
/// members, `None` (not even know it) for anyone else.
pub async fn rights(db: &Pool, user_id: &str, inst: &InstanceRow) -> ServiceResult<Option<Need>> {
    if inst.user_id == user_id {
        return Ok(Some(Need::Own));
    }
    let Some(pool) = &inst.pool_id else {
        return Ok(None);
    };
    Ok(pools::role_of(db, pool, user_id).await?.map(Need::of_role))
}

/// The machine `id` if `user_id` may do what `need` says with it (deleted ones are gone: 404).
pub async fn access(db: &Pool, user_id: &str, id: &str, need: Need) -> ServiceResult<InstanceRow> {
    let inst: InstanceRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances WHERE id = $1 AND state <> 'deleted'"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(ServiceError::NotFound("Instance"))?;
    let may = rights(db, user_id, &inst)
        .await?
        .ok_or(ServiceError::NotFound("Instance"))?;
    if need > may {
        return Err(ServiceError::Forbidden(match need {
            Need::Own => {
                "Only the machine's creator and its pool's owner may delete it or move it out of the pool"
            }
            _ => "Your role in this machine's pool lets you use it, not power it or change it; ask a pool admin",
        }));
    }
    Ok(inst)
}

/// A machine the caller may use: their own, or one shared with a pool they belong to.
pub async fn get(db: &Pool, user_id: &str, id: &str) -> ServiceResult<InstanceRow> {
    access(db, user_id, id, Need::Use).await
}

/// Every machine (operators), newest first: those whose name, id, owner's username or e-mail
/// match `query`, in `state` (the API's word) when given. Returns a page and the match count.
pub async fn list_all(
    db: &Pool,
    query: &str,
    state: Option<&str>,
    limit: i64,
    offset: i64,
) -> ServiceResult<(Vec<model::compute::OperatorMachine>, i64)> {
    let wanted: Vec<&'static str> = match state {
        None | Some("") => vec![],
        Some(word) => {
            let matching: Vec<_> = InstanceState::ALL
                .into_iter()
                .filter(|s| *s != InstanceState::Deleted && s.vps().as_str() == word)
                .map(InstanceState::as_str)
                .collect();
            if matching.is_empty() {
                return Err(ServiceError::invalid(
                    "state is one of creating, running, stopped and error",
                ));
            }
            matching
        }
    };
    let (query, pattern) = db::search_terms(query)?;
    let mut conds = vec![
        "i.state <> 'deleted'".to_owned(),
        "(i.id = $1 OR LOWER(i.name) LIKE $2 ESCAPE '\\' OR LOWER(u.username) LIKE $2 ESCAPE '\\'
          OR LOWER(u.email) LIKE $2 ESCAPE '\\')"
            .to_owned(),
    ];
    if !wanted.is_empty() {
        let list: Vec<String> = wanted.iter().map(|s| format!("'{s}'")).collect();
        conds.push(format!("i.state IN ({})", list.join(", ")));
    }
    let from = format!(
        "FROM instances i JOIN users u ON u.id = i.user_id LEFT JOIN nodes n ON n.id = i.node_id
         WHERE {}",
        conds.join(" AND ")
    );
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {from}"))
        .bind(&query)
        .bind(&pattern)
        .fetch_one(db)
        .await?;
    let rows: Vec<(InstanceRow, String, Option<String>)> = {
        let ids: Vec<(String, String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT i.id, u.username, n.name {from} ORDER BY i.created_at DESC, i.id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(&query)
        .bind(&pattern)
        .bind(limit.clamp(1, 200))
        .bind(offset.max(0))
        .fetch_all(db)
        .await?;
        let mut rows = Vec::with_capacity(ids.len());
        for (id, owner, node) in ids {
            if let Some(inst) = load(db, &id).await? {
                rows.push((inst, owner, node));
            }
        }
        rows
    };
    let machines = rows
        .into_iter()
        .map(|(i, owner, node)| model::compute::OperatorMachine {
            state: i.state.vps().as_str().to_owned(),
            ip: i.address(),
            created_at: rfc3339(i.created_at),
            owner_id: i.user_id.clone(),
            owner,
            node,
            kind: i.kind.as_str().to_owned(),
            transition: i.transition,
            reason: i.reason,
            name: i.name,
            id: i.id,
        })
        .collect();
    Ok((machines, total))
}

/// Any instance by id, for jobs and the reconciler.
pub async fn load(db: &Pool, id: &str) -> ServiceResult<Option<InstanceRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM instances WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// The machines the caller may use (their own and those shared with their pools), newest first.
pub async fn list(db: &Pool, user_id: &str) -> ServiceResult<Vec<InstanceRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances WHERE state <> 'deleted'
           AND (user_id = $1 OR pool_id IN
                (SELECT pool_id FROM pool_members WHERE user_id = $1 AND is_authorized = 1))
         ORDER BY created_at DESC, id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

pub async fn rename(db: &Pool, user_id: &str, id: &str, name: &str) -> ServiceResult<InstanceRow> {
    let name = validate_name(name)?;
    access(db, user_id, id, Need::Operate).await?;
    sqlx::query("UPDATE instances SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(&name)
        .bind(db::now_ms())
        .bind(id)
        .execute(db)
        .await?;
    get(db, user_id, id).await
}

/// Shares the machine with a pool (`Some`) or takes it out of its pool (`None`). Only the
/// machine's creator may move it into a pool, one where they are the owner or an admin; its
/// creator or its pool's owner may take it out. It stays billed to its creator either way.
pub async fn move_to_pool(
    db: &Pool,
    user_id: &str,
    id: &str,
    pool_id: Option<&str>,
) -> ServiceResult<InstanceRow> {
    let inst = access(db, user_id, id, Need::Own).await?;
    if inst.pool_id.as_deref() == pool_id {
        return Ok(inst);
    }
    let mut tx = crate::infra::db::begin(db).await?;
    if let Some(pool) = pool_id {
        if inst.user_id != user_id {
            return Err(ServiceError::Forbidden(
                "Only the machine's creator may share it with another pool",
            ));
        }
        pools::require_manager(&mut *tx, pool, user_id).await?;
    }
    sqlx::query("UPDATE instances SET pool_id = $1, updated_at = $2 WHERE id = $3")
        .bind(pool_id)
        .bind(db::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Some(user_id),
        "instance.pool",
        "instance",
        Some(id),
        serde_json::json!({ "from": inst.pool_id, "to": pool_id }),
    )
    .await?;
    tx.commit().await?;
    get_any_state(db, id).await
}

/// A power or lifecycle action a caller can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Delete,
}

impl Action {
    fn job(self) -> JobKind {
        match self {
            Action::Start => JobKind::Start,
            Action::Stop => JobKind::Stop,
            Action::Restart => JobKind::Restart,
            Action::Delete => JobKind::Delete,
        }
    }

    fn transition(self) -> Transition {
        match self {
            Action::Start => Transition::Start,
            Action::Stop => Transition::Stop,
            Action::Restart => Transition::Restart,
            Action::Delete => Transition::Delete,
        }
    }
}

/// The action in flight on an instance (`instances.transition`), and a snapshot's life: wire
/// types, shown as they are in every API.
pub use model::compute::{SnapshotState, Transition};

/// Records `action` on the caller's instance and enqueues its job. Returns the instance as it is
/// now and the operation id. 409 when the instance's state does not allow it or another action is
/// in flight.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user_id, id = %id, action = ?action))]
pub async fn act(
    state: &AppState,
    user_id: &str,
    id: &str,
    action: Action,
) -> ServiceResult<(InstanceRow, String)> {
    let need = if action == Action::Delete {
        Need::Own
    } else {
        Need::Operate
    };
    let inst = access(&state.db, user_id, id, need).await?;
    act_on(state, user_id, inst, action, serde_json::json!({})).await
}

/// An operator's power action on anyone's machine: recorded as the operator's, and the machine's
/// `reason` tells its owner who stopped it and why (stop and delete).
#[instrument(skip_all, err(level = "info", Debug), fields(operator = %operator_id, id = %id, action = ?action))]
pub async fn act_as_operator(
    state: &AppState,
    operator_id: &str,
    id: &str,
    action: Action,
    why: &str,
) -> ServiceResult<(InstanceRow, String)> {
    let inst: InstanceRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances WHERE id = $1 AND state <> 'deleted'"
    ))
    .bind(id)
    .fetch_optional(&state.db)
    .await?
    .ok_or(ServiceError::NotFound("Instance"))?;
    let details = serde_json::json!({ "owner": inst.user_id, "by_operator": true, "why": why });
    let owner = inst.user_id.clone();
    let done = act_on(state, operator_id, inst, action, details).await?;
    if matches!(action, Action::Stop | Action::Delete) {
        let verb = if action == Action::Stop {
            "Stopped"
        } else {
            "Deleted"
        };
        sqlx::query("UPDATE instances SET reason = $1 WHERE id = $2 AND user_id = $3")
            .bind(format!("{verb} by the platform's operators: {why}"))
            .bind(id)
            .bind(&owner)
            .execute(&state.db)
            .await?;
    }
    Ok(done)
}

/// Records `action` on `inst` by `actor_id` (whose access was checked) and enqueues its job.
async fn act_on(
    state: &AppState,
    actor_id: &str,
    inst: InstanceRow,
    action: Action,
    details: serde_json::Value,
) -> ServiceResult<(InstanceRow, String)> {
    let db = &state.db;
    let (user_id, id) = (actor_id, inst.id.as_str());
    if let Some(t) = &inst.transition {
        // A delete is always accepted during a create (the machine goes as soon as the create
        // has finished or never starts) and for a failed instance's stuck action.
        let deletable =
            inst.state == InstanceState::Failed || inst.transition() == Some(Transition::Create);
        if !(action == Action::Delete && deletable) {
            return Err(ServiceError::Conflict(format!(
                "A {t} is in progress; try again when it has finished"
            )));
        }
    }
    let (allowed, new_state) = match action {
        Action::Start => (inst.state == InstanceState::Stopped, InstanceState::Stopped),
        Action::Stop => (
            inst.state == InstanceState::Running,
            InstanceState::Stopping,
        ),
        Action::Restart => (
            inst.state == InstanceState::Running,
            InstanceState::Rebooting,
        ),
        Action::Delete => (true, inst.state),
    };
    if !allowed {
        let hint = match action {
            Action::Start => "only a stopped instance can be started",
            Action::Stop => "only a running instance can be stopped",
            Action::Restart => "only a running instance can be restarted; start it instead",
            Action::Delete => unreachable!(),
        };
        return Err(ServiceError::Conflict(format!(
            "The instance is {}: {hint}",
            inst.state.vps()
        )));
    }
    let now = db::now_ms();
    let mut tx = crate::infra::db::begin(db).await?;
    if action == Action::Start {
        // Starting bills again: its owner's balance must cover it with everything else they
        // run (a pool admin may start a member's machine; the member pays).
        quotas::lock_account(&mut tx, &inst.user_id).await?;
        check_capacity_funds(
            &mut tx,
            state,
            &Actor::user(&inst.user_id),
            inst.price_hourly_micros,
        )
        .await?;
        take_back_compute(&mut tx, state, &inst).await?;
    }
    let updated = sqlx::query(
        "UPDATE instances SET state = $1, transition = $2, updated_at = $3
         WHERE id = $4 AND state = $5
           AND (transition IS NULL OR state = 'failed' OR ($2 = 'delete' AND transition = 'create'))",
    )
    .bind(new_state.as_str())
    .bind(action.transition().as_str())
    .bind(now)
    .bind(id)
    .bind(inst.state.as_str())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ServiceError::Conflict(
            "The instance changed meanwhile; try again".into(),
        ));
    }
    let op = hand_off(
        state,
        tx,
        Handoff {
            kind: action.job(),
            user_id,
            instance_id: id,
            payload: serde_json::json!({}),
            at: now,
            action: &format!("instance.{}", action.job()),
            details,
        },
    )
    .await?;
    if action == Action::Delete {
        // Open consoles and screens of a machine being deleted end now, not when it is gone.
        state
            .revocations
            .revoke(crate::infra::revocations::Revocation::Instance(
                id.to_owned(),
            ));
    }
    Ok((get_any_state(db, id).await?, op))
}

/// A stopped machine gave its vCPU and memory back to its node; a start takes them again, in the
/// transaction that accepts it, or is refused (409) when other machines have taken them since.
async fn take_back_compute(
    tx: &mut Tx<'_>,
    state: &AppState,
    inst: &InstanceRow,
) -> ServiceResult<()> {
    let (Some(node), 0) = (&inst.node_id, inst.holds_compute) else {
        return Ok(());
    };
    let size = Size {
        disk_gb: 0,
        ..inst.size()
    };
    let how = nodes::Reclaim::IfRoom {
        cpu_ratio: state.config.cpu_overcommit,
        memory_ratio: state.config.memory_overcommit,
    };
    if !nodes::reclaim(tx, node, size, how).await? {
        return Err(ServiceError::Conflict(format!(
            "The node this machine lives on has no free CPU or memory for it right now ({} vCPU, \
             {} MB): a stopped machine gives its share back, and other machines took it. Its disk \
             and address are kept; try again later, or take a snapshot and ask support to move it.",
            inst.vcpu, inst.memory_mb
        )));
    }
    sqlx::query("UPDATE instances SET holds_compute = 1 WHERE id = $1")
        .bind(&inst.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The instance even if it was deleted a moment ago, for the answer to an action whose access
/// was checked.
async fn get_any_state(db: &Pool, id: &str) -> ServiceResult<InstanceRow> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM instances WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(ServiceError::NotFound("Instance"))
}

// ---- snapshots --------------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SnapshotRow {
    pub id: String,
    pub instance_id: String,
    pub name: String,
    pub state: String,
    pub created_at: i64,
    /// Why it failed (`failed` only).
    pub reason: Option<String>,
}

impl SnapshotRow {
    pub fn to_api(&self) -> Snapshot {
        Snapshot {
            name: self.name.clone(),
            // Written only from `SnapshotState`; a value from elsewhere reads as failed.
            state: SnapshotState::parse(&self.state).unwrap_or(SnapshotState::Failed),
            created_at: rfc3339(self.created_at),
            reason: self.reason.clone(),
        }
    }
}

/// Snapshot names become libvirt snapshot names and image tags; the machine-name rule suits both.
pub fn validate_snapshot_name(name: &str) -> ServiceResult<String> {
    validate_name(name)
}

/// Most snapshots one instance may keep.
pub const MAX_SNAPSHOTS: i64 = 20;

pub async fn snapshots(db: &Pool, user_id: &str, id: &str) -> ServiceResult<Vec<SnapshotRow>> {
    get(db, user_id, id).await?;
    Ok(sqlx::query_as(
        "SELECT id, instance_id, name, state, created_at, reason FROM snapshots WHERE instance_id = $1 ORDER BY created_at, name",
    )
    .bind(id)
    .fetch_all(db)
    .await?)
}

async fn snapshot(tx: &mut Tx<'_>, instance_id: &str, name: &str) -> ServiceResult<SnapshotRow> {
    sqlx::query_as("SELECT id, instance_id, name, state, created_at, reason FROM snapshots WHERE instance_id = $1 AND name = $2")
        .bind(instance_id)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(ServiceError::NotFound("Snapshot"))
}

/// Sets `transition` on an idle instance in one of `states`, or explains why not (409).
async fn begin_transition(
    tx: &mut Tx<'_>,
    inst: &InstanceRow,
    transition: Transition,
    states: &[InstanceState],
    why: &str,
) -> ServiceResult<()> {
    if let Some(t) = &inst.transition {
        return Err(ServiceError::Conflict(format!(
            "A {t} is in progress; try again when it has finished"
        )));
    }
    if !states.contains(&inst.state) {
        return Err(ServiceError::Conflict(why.to_owned()));
    }
    let done = sqlx::query("UPDATE instances SET transition = $1, updated_at = $2 WHERE id = $3 AND transition IS NULL AND state = $4")
        .bind(transition.as_str())
        .bind(db::now_ms())
        .bind(&inst.id)
        .bind(inst.state.as_str())
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::Conflict(
            "The instance changed meanwhile; try again".into(),
        ));
    }
    Ok(())
}

#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user_id, id = %id))]
pub async fn snapshot_create(
    state: &AppState,
    user_id: &str,
    id: &str,
    name: &str,
) -> ServiceResult<SnapshotRow> {
    let name = validate_snapshot_name(name)?;
    let inst = access(&state.db, user_id, id, Need::Operate).await?;
    let now = db::now_ms();
    let mut tx = crate::infra::db::begin(&state.db).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots WHERE instance_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_SNAPSHOTS {
        return Err(ServiceError::Conflict(format!(
            "At most {MAX_SNAPSHOTS} snapshots per instance; delete one first"
        )));
    }
    begin_transition(
        &mut tx,
        &inst,
        Transition::Snapshot,
        &[InstanceState::Running, InstanceState::Stopped],
        "Only a running or stopped instance can be snapshotted",
    )
    .await?;
    let row = SnapshotRow {
        id: db::new_id(),
        instance_id: id.to_owned(),
        name: name.clone(),
        state: SnapshotState::Creating.as_str().into(),
        created_at: now,
        reason: None,
    };
    let inserted = sqlx::query("INSERT INTO snapshots (id, instance_id, name, state, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&row.id)
        .bind(id)
        .bind(&name)
        .bind(&row.state)
        .bind(now)
        .execute(&mut *tx)
        .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(ServiceError::Conflict(format!(
                "A snapshot named {name} exists"
            )))
        }
        other => other?,
    };
    hand_off(
        state,
        tx,
        Handoff {
            kind: JobKind::SnapshotCreate,
            user_id,
            instance_id: id,
            payload: serde_json::json!({"snapshot": name}),
            at: now,
            action: "instance.snapshot.create",
            details: serde_json::json!({"snapshot": name}),
        },
    )
    .await?;
    Ok(row)
}

/// Restores a snapshot; the instance must be stopped (409 otherwise) and stays stopped.
#[instrument(skip_all, err(level = "info", Debug), fields(user_id = %user_id, id = %id))]
pub async fn snapshot_restore(
    state: &AppState,
    user_id: &str,
    id: &str,
    name: &str,
) -> ServiceResult<String> {
    let inst = access(&state.db, user_id, id, Need::Operate).await?;
    let mut tx = crate::infra::db::begin(&state.db).await?;
    let snap = snapshot(&mut tx, id, name).await?;
    if snap.state != SnapshotState::Ready.as_str() {
        return Err(ServiceError::Conflict(format!(
            "Snapshot {name} is {}; only a ready snapshot can be restored",
            snap.state
        )));
    }
    begin_transition(
        &mut tx,
        &inst,
        Transition::Restore,
        &[InstanceState::Stopped],
        "Stop the instance before restoring a snapshot",
    )
    .await?;
    let op = hand_off(
        state,
        tx,
        Handoff {
            kind: JobKind::SnapshotRestore,
            user_id,
            instance_id: id,
            payload: serde_json::json!({"snapshot": name}),
            at: db::now_ms(),
            action: "instance.snapshot.restore",
            details: serde_json::json!({"snapshot": name}),
        },
    )
    .await?;
    Ok(op)
}

/// Deletes a snapshot: gone from the list at once, removed from the node by a job.
pub async fn snapshot_delete(
    state: &AppState,
    user_id: &str,
    id: &str,
    name: &str,
) -> ServiceResult<()> {
    let inst = access(&state.db, user_id, id, Need::Operate).await?;
    let mut tx = crate::infra::db::begin(&state.db).await?;
    let snap = snapshot(&mut tx, id, name).await?;
    if inst.transition() == Some(Transition::Restore)
        || snap.state == SnapshotState::Creating.as_str()
    {
        return Err(ServiceError::Conflict(
            "The snapshot is in use by an action in progress".into(),
        ));
    }
    sqlx::query("DELETE FROM snapshots WHERE id = $1")
        .bind(&snap.id)
        .execute(&mut *tx)
        .await?;
    hand_off(
        state,
        tx,
        Handoff {
            kind: JobKind::SnapshotDelete,
            user_id,
            instance_id: id,
            payload: serde_json::json!({"snapshot": name}),
            at: db::now_ms(),
            action: "instance.snapshot.delete",
            details: serde_json::json!({"snapshot": name}),
        },
    )
    .await?;
    Ok(())
}

/// What a request hands to the job queue, and how the account's activity names it.
struct Handoff<'a> {
    kind: JobKind,
    user_id: &'a str,
    instance_id: &'a str,
    payload: serde_json::Value,
    at: i64,
    /// The audit action (`instance.create`, `instance.snapshot.delete`...).
    action: &'a str,
    details: serde_json::Value,
}

/// The end of every request that hands a machine to a job: the job queued and the request
/// audited in `tx`, with the change that asked for them; the transaction committed; this
/// replica's workers woken. Returns the job's id (an operation under `/v1/instances`).
async fn hand_off(state: &AppState, mut tx: Tx<'static>, h: Handoff<'_>) -> ServiceResult<String> {
    let op = queue::enqueue(
        &mut tx,
        h.kind,
        Some(h.user_id),
        Some(h.instance_id),
        h.payload,
        h.at,
    )
    .await?;
    audit::record(
        &mut tx,
        Some(h.user_id),
        h.action,
        "instance",
        Some(h.instance_id),
        h.details,
    )
    .await?;
    tx.commit().await?;
    state.jobs_wake.notify_waiters();
    Ok(op)
}

/// Instances whose TTL has passed get a delete job (set-based: safe with several replicas).
pub async fn expire_due(db: &Pool, now: i64) -> ServiceResult<u64> {
    let mut tx = crate::infra::db::begin(db).await?;
    let due = "state IN ('running', 'stopped', 'failed') AND transition IS NULL AND expires_at IS NOT NULL AND expires_at <= $1";
    queue::enqueue_for_each(&mut tx, JobKind::Delete, due, now).await?;
    let done = sqlx::query(&format!(
        "UPDATE instances SET transition = 'delete', reason = 'TTL expired', updated_at = $1 WHERE {due}"
    ))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Instances that are not deleted, counted by state, most first (the operator page).
pub async fn count_by_state(db: &Pool) -> ServiceResult<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT state, COUNT(*) AS n FROM instances WHERE state <> 'deleted'
         GROUP BY state ORDER BY n DESC, state",
    )
    .fetch_all(db)
    .await?)
}
