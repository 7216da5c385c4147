//! What customers choose from: plans (size and price), images and templates (named presets).
//! Operators edit them through `/api/admin/...`; customers read them.

use tracing::instrument;

use crate::fleet::driver::libvirt::BootSource;
pub use crate::fleet::driver::AppSpec;
use crate::fleet::driver::Kind;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::patch::patched;
use model::api::admin_compute::{ImageInput, PlanInput, TemplateInput};
use model::compute::{Image, Plan, Template};
use model::money::UsdNum;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub price_hourly_micros: i64,
    pub active: i64,
}

impl PlanRow {
    /// The plan as the API shows it, with what a machine of it pays while stopped (`held`: the
    /// operator's rates; a VM counts its public IPv4 address).
    pub fn to_api(&self, held: HeldRates) -> Plan {
        Plan {
            id: self.id.clone(),
            slug: self.slug.clone(),
            name: self.name.clone(),
            kind: self.kind(),
            vcpu: self.vcpu,
            memory_mb: self.memory_mb,
            disk_gb: self.disk_gb,
            price_hourly: UsdNum(self.price_hourly_micros),
            stopped_hourly: UsdNum(held.hourly(self.disk_gb, self.kind() == Kind::Vm)),
        }
    }

    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::Vm)
    }
}

const PLAN_COLUMNS: &str =
    "id, slug, name, kind, vcpu, memory_mb, disk_gb, price_hourly_micros, active";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub source: String,
    pub is_default: i64,
    /// An app template's recipe, as JSON ([`AppSpec`]); containers on node daemons only.
    pub app: Option<String>,
    /// 0 once retired: not offered to customers; machines made from it keep it.
    pub active: i64,
}

/// The columns of [`ImageRow`], in its order.
pub const IMAGE_COLUMNS: &str = "slug, name, kind, source, is_default, app, active";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub plan_id: String,
    pub image: String,
    pub vcpu: Option<i64>,
    pub memory_mb: Option<i64>,
    pub disk_gb: Option<i64>,
    pub user_data: Option<String>,
    pub ttl_minutes: Option<i64>,
    pub uses: i64,
    pub active: i64,
}

impl TemplateRow {
    pub fn to_api(&self, plan: &PlanRow) -> Template {
        Template {
            slug: self.slug.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            plan_id: self.plan_id.clone(),
            image: self.image.clone(),
            vcpu: self.vcpu.unwrap_or(plan.vcpu),
            memory_mb: self.memory_mb.unwrap_or(plan.memory_mb),
            disk_gb: self.disk_gb.unwrap_or(plan.disk_gb),
            user_data: self.user_data.clone(),
            ttl_minutes: self.ttl_minutes,
            popularity: self.uses,
        }
    }
}

const TEMPLATE_COLUMNS: &str =
    "id, slug, name, description, plan_id, image, vcpu, memory_mb, disk_gb, user_data, ttl_minutes, uses, active";

/// Active plans that can be placed (some active node is of their kind), cheapest first.
pub async fn plans(db: &Pool) -> ServiceResult<Vec<PlanRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans
         WHERE active = 1 AND kind IN (SELECT kind FROM nodes WHERE status = 'active')
         ORDER BY price_hourly_micros, vcpu, memory_mb, slug"
    ))
    .fetch_all(db)
    .await?)
}

/// A plan by id or slug (inactive plans too: existing instances keep theirs).
pub async fn plan(db: &Pool, id_or_slug: &str) -> ServiceResult<Option<PlanRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE id = $1 OR slug = $1"
    ))
    .bind(id_or_slug)
    .fetch_optional(db)
    .await?)
}

/// Every image, retired ones too (nodes are surveyed for all: a restored image is offered at once).
pub async fn images(db: &Pool) -> ServiceResult<Vec<ImageRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images ORDER BY kind, slug"
    ))
    .fetch_all(db)
    .await?)
}

/// An image by slug, retired or not (a machine made from it reinstalls from it).
pub async fn image(db: &Pool, slug: &str) -> ServiceResult<Option<ImageRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(db)
    .await?)
}

impl ImageRow {
    pub fn to_api(&self) -> Image {
        Image {
            slug: self.slug.clone(),
            name: self.name.clone(),
            kind: Kind::parse(&self.kind).unwrap_or(Kind::Container),
            is_default: self.is_default == 1,
        }
    }
}

/// A template is offered only while some active node holds its image (see `fleet::survey`).
const OFFERED: &str = "EXISTS (SELECT 1 FROM node_images ni JOIN nodes n ON n.id = ni.node_id \
    JOIN images i ON i.slug = ni.image_slug \
    WHERE ni.image_slug = templates.image AND n.status = 'active' AND i.active = 1)";

/// Active templates whose image some active node holds, most used first.
pub async fn templates(db: &Pool) -> ServiceResult<Vec<(TemplateRow, PlanRow)>> {
    let rows: Vec<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE active = 1 AND {OFFERED} ORDER BY uses DESC, slug"
    ))
    .fetch_all(db)
    .await?;
    with_plans(db, rows).await
}

pub async fn template(db: &Pool, slug: &str) -> ServiceResult<(TemplateRow, PlanRow)> {
    let row: Option<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE slug = $1 AND active = 1"
    ))
    .bind(slug)
    .fetch_optional(db)
    .await?;
    let row = row.ok_or(ServiceError::NotFound("Template"))?;
    Ok(with_plans(db, vec![row]).await?.remove(0))
}

/// A template by slug, retired or not (the operator's view).
pub async fn any_template(db: &Pool, slug: &str) -> ServiceResult<Option<(TemplateRow, PlanRow)>> {
    let row: Option<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE slug = $1"
    ))
    .bind(slug)
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some(row) => Some(with_plans(db, vec![row]).await?.remove(0)),
        None => None,
    })
}

async fn with_plans(
    db: &Pool,
    rows: Vec<TemplateRow>,
) -> ServiceResult<Vec<(TemplateRow, PlanRow)>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let plan = plan(db, &row.plan_id)
            .await?
            .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("template without plan")))?;
        out.push((row, plan));
    }
    Ok(out)
}

pub fn slug_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn check_kind(kind: &str) -> ServiceResult<()> {
    Kind::parse(kind)
        .map(|_| ())
        .ok_or_else(|| ServiceError::invalid("kind must be `vm` or `container`"))
}

/// Creates a plan, or updates the one with that slug (operators re-run their setup scripts).
#[instrument(skip_all, err(level = "info", Debug), fields(slug = %input.slug))]
pub async fn upsert_plan(db: &Pool, input: PlanInput) -> ServiceResult<PlanRow> {
    if !slug_ok(&input.slug) {
        return Err(ServiceError::invalid(
            "slug: lower-case letters, digits, `-` and `.`, at most 63",
        ));
    }
    if input.name.trim().is_empty() || input.name.len() > 100 {
        return Err(ServiceError::invalid("name: 1 to 100 characters"));
    }
    check_kind(&input.kind)?;
    if !(1..=512).contains(&input.vcpu)
        || !(16..=16_777_216).contains(&input.memory_mb)
        || !(1..=1_000_000).contains(&input.disk_gb)
    {
        return Err(ServiceError::invalid(
            "vcpu 1 to 512, memory_mb 16 to 16,777,216 (16 TiB) and disk_gb 1 to 1,000,000 are required",
        ));
    }
    let price = model::money::micros_from_usd(input.price_hourly)
        .map_err(|e| ServiceError::invalid(format!("price_hourly: {e}")))?;
    let existing = plan(db, &input.slug).await?;
    let id = existing.map(|p| p.id).unwrap_or_else(db::new_id);
    sqlx::query(
        "INSERT INTO plans (id, slug, name, kind, vcpu, memory_mb, disk_gb, price_hourly_micros, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, vcpu = excluded.vcpu,
           memory_mb = excluded.memory_mb, disk_gb = excluded.disk_gb,
           price_hourly_micros = excluded.price_hourly_micros, active = excluded.active",
    )
    .bind(&id)
    .bind(&input.slug)
    .bind(input.name.trim())
    .bind(&input.kind)
    .bind(input.vcpu)
    .bind(input.memory_mb)
    .bind(input.disk_gb)
    .bind(price)
    .bind(i64::from(input.active))
    .bind(db::now_ms())
    .execute(db)
    .await?;
    plan(db, &id).await?.ok_or(ServiceError::NotFound("Plan"))
}

impl ImageRow {
    /// The app template's recipe, when the image is one.
    pub fn app(&self) -> Option<AppSpec> {
        self.app
            .as_deref()
            .and_then(|raw| serde_json::from_str(raw).ok())
    }
}

#[instrument(skip_all, err(level = "info", Debug), fields(slug = %input.slug))]
pub async fn upsert_image(db: &Pool, input: ImageInput) -> ServiceResult<ImageRow> {
    if !slug_ok(&input.slug) {
        return Err(ServiceError::invalid(
            "slug: lower-case letters, digits, `-` and `.`, at most 63",
        ));
    }
    check_kind(&input.kind)?;
    if input.source.trim().is_empty() || input.name.trim().is_empty() {
        return Err(ServiceError::invalid("name and source are required"));
    }
    if input.kind == Kind::Vm.as_str() {
        BootSource::parse(&input.source)
            .map_err(|e| ServiceError::invalid(format!("source: {e}")))?;
    }
    if let Some(app) = &input.app {
        if input.kind != Kind::Container.as_str() {
            return Err(ServiceError::invalid(
                "app: only container images can be app templates",
            ));
        }
        crate::fleet::driver::check_app(app)
            .map_err(|e| ServiceError::invalid(format!("app: {e}")))?;
    }
    let app = input
        .app
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let mut tx = crate::infra::db::begin(db).await?;
    if input.is_default {
        sqlx::query("UPDATE images SET is_default = 0 WHERE kind = $1")
            .bind(&input.kind)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO images (slug, name, kind, source, is_default, created_at, app, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (slug) DO UPDATE SET name = excluded.name, kind = excluded.kind,
           source = excluded.source, is_default = excluded.is_default, app = excluded.app,
           active = excluded.active",
    )
    .bind(&input.slug)
    .bind(input.name.trim())
    .bind(&input.kind)
    .bind(input.source.trim())
    .bind(i64::from(input.is_default))
    .bind(db::now_ms())
    .bind(app)
    .bind(i64::from(input.active))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    image(db, &input.slug)
        .await?
        .ok_or(ServiceError::NotFound("Image"))
}

#[instrument(skip_all, err(level = "info", Debug), fields(slug = %input.slug))]
pub async fn upsert_template(
    db: &Pool,
    input: TemplateInput,
) -> ServiceResult<(TemplateRow, PlanRow)> {
    if !slug_ok(&input.slug) {
        return Err(ServiceError::invalid(
            "slug: lower-case letters, digits, `-` and `.`, at most 63",
        ));
    }
    let plan = plan(db, &input.plan)
        .await?
        .ok_or_else(|| ServiceError::invalid("plan: no such plan"))?;
    let image = image(db, &input.image)
        .await?
        .ok_or_else(|| ServiceError::invalid("image: no such image"))?;
    if image.kind != plan.kind {
        return Err(ServiceError::invalid(
            "image and plan are for different kinds of machine",
        ));
    }
    if input.ttl_minutes.is_some_and(|t| t < 1) {
        return Err(ServiceError::invalid("ttl_minutes must be at least 1"));
    }
    sqlx::query(
        "INSERT INTO templates (id, slug, name, description, plan_id, image, vcpu, memory_mb, disk_gb, user_data, ttl_minutes, created_at, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (slug) DO UPDATE SET name = excluded.name, description = excluded.description,
           plan_id = excluded.plan_id, image = excluded.image, vcpu = excluded.vcpu,
           memory_mb = excluded.memory_mb, disk_gb = excluded.disk_gb, user_data = excluded.user_data,
           ttl_minutes = excluded.ttl_minutes, active = excluded.active",
    )
    .bind(db::new_id())
    .bind(&input.slug)
    .bind(input.name.trim())
    .bind(&input.description)
    .bind(&plan.id)
    .bind(&image.slug)
    .bind(input.vcpu)
    .bind(input.memory_mb)
    .bind(input.disk_gb)
    .bind(&input.user_data)
    .bind(input.ttl_minutes)
    .bind(db::now_ms())
    .bind(i64::from(input.active))
    .execute(db)
    .await?;
    any_template(db, &input.slug)
        .await?
        .ok_or(ServiceError::NotFound("Template"))
}

/// The embedded-defaults catalogue: a local VM node on the configured libvirt URI (and a
/// container node when `docker_host` is set), three VM plans, two container plans, images and
/// templates. Only fills what is empty, so it runs at every start; a libvirt URI or a container
/// engine configured after the first start still becomes a node, and a real hypervisor added so
/// drains the simulated one (its machines stay, new VMs go to the real node).
pub async fn seed_defaults(db: &Pool, config: &crate::infra::config::Config) -> ServiceResult<()> {
    let simulated = config.libvirt_uri.starts_with("test:");
    if !node_known(db, &config.libvirt_uri).await? {
        let first = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM nodes")
            .fetch_one(db)
            .await?
            == 0;
        let name = if first || simulated {
            "local-vm"
        } else {
            "local-qemu"
        };
        if first || !simulated {
            let added = add_local_node(db, name, Kind::Vm, &config.libvirt_uri).await?;
            if added && !simulated {
                for node in crate::fleet::nodes::list(db).await? {
                    if node.simulated() {
                        crate::fleet::nodes::set_status(
                            db,
                            &node.id,
                            crate::fleet::nodes::NodeStatus::Draining,
                        )
                        .await?;
                        tracing::info!(node = %node.name, "a real hypervisor is configured: the simulated VM node takes no new machines");
                    }
                }
            }
        }
    }
    if let Some(docker) = &config.docker_host {
        if !node_known(db, docker).await? {
            add_local_node(db, "local-containers", Kind::Container, docker).await?;
        }
    }
    let plans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plans")
        .fetch_one(db)
        .await?;
    if plans == 0 {
        seed_catalogue(db).await?;
        tracing::info!("seeded the default plans, images and templates");
    }
    Ok(())
}

/// Registers the node daemon at `uri` as container node `name` (or gives a registered one its
/// current token), and, the first time there is a daemon, a demo app template so the embedded
/// default shows what app templates do.
pub async fn register_daemon(db: &Pool, name: &str, uri: &str, token: &str) -> ServiceResult<()> {
    if node_known(db, uri).await? {
        sqlx::query("UPDATE nodes SET secret = $1 WHERE uri = $2")
            .bind(token)
            .bind(uri)
            .execute(db)
            .await?;
    } else {
        crate::fleet::nodes::add(
            db,
            model::api::admin_compute::NodeInput {
                name: name.into(),
                kind: Kind::Container.as_str().into(),
                region: "local".into(),
                uri: uri.to_owned(),
                secret: Some(token.to_owned()),
                vcpu: 8,
                memory_mb: 16384,
                disk_gb: 200,
            },
        )
        .await?;
    }
    let apps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE app IS NOT NULL")
        .fetch_one(db)
        .await?;
    if apps == 0 {
        upsert_image(
            db,
            ImageInput {
                active: true,
                slug: "demo-game-server".into(),
                name: "Demo game server (app template)".into(),
                kind: Kind::Container.as_str().into(),
                source: "localhost/hangar-busybox:latest".into(),
                is_default: false,
                app: Some(AppSpec {
                    startup_command: Some(
                        "echo \"Starting $SERVER_NAME\"; sleep 1; echo 'Done! For help, type \"help\"'; \
                         while read line; do echo \"[server] $line\"; done"
                            .into(),
                    ),
                    install_script: Some(
                        "echo 'Installing the demo game server'\necho 'motd=Welcome' > server.properties\nmkdir -p world\necho 'Installed'".into(),
                    ),
                    start_pattern: Some("Done!.*For help".into()),
                    environment: [("SERVER_NAME".to_owned(), "Demo game server".to_owned())]
                        .into_iter()
                        .collect(),
                    ports: 1,
                }),
            },
        )
        .await?;
        // A template, so the portal's "new machine" form offers it (when the plan it names is
        // still there: an operator may have removed it).
        let offered = upsert_template(
            db,
            TemplateInput {
                active: true,
                slug: "demo-game-server".into(),
                name: "Demo game server".into(),
                description: "An app template: installed by its script, running when its console says Done, with a file manager and its own console".into(),
                plan: "c-micro".into(),
                image: "demo-game-server".into(),
                vcpu: None,
                memory_mb: None,
                disk_gb: None,
                user_data: None,
                ttl_minutes: None,
            },
        )
        .await;
        if let Err(e) = offered {
            tracing::warn!(error = %e, "the demo app template is not offered");
        }
    }
    Ok(())
}

async fn node_known(db: &Pool, uri: &str) -> ServiceResult<bool> {
    let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE uri = $1")
        .bind(uri)
        .fetch_one(db)
        .await?;
    Ok(known > 0)
}

/// Adds a node on this host; `false` when a node of that name already exists on another
/// address (the operator's to sort out: it is logged, not fatal).
async fn add_local_node(db: &Pool, name: &str, kind: Kind, uri: &str) -> ServiceResult<bool> {
    let (vcpu, memory_mb, disk_gb) = match kind {
        // libvirt's test driver has a fixed 100 GiB pool, 4 of it base images.
        Kind::Vm if uri.starts_with("test:") => (16, 65536, 96),
        Kind::Vm => (16, 65536, 500),
        Kind::Container => (8, 16384, 200),
    };
    let added = crate::fleet::nodes::add(
        db,
        model::api::admin_compute::NodeInput {
            name: name.into(),
            kind: kind.as_str().into(),
            region: "local".into(),
            uri: uri.to_owned(),
            secret: None,
            vcpu,
            memory_mb,
            disk_gb,
        },
    )
    .await;
    match added {
        Ok(_) => Ok(true),
        Err(e @ ServiceError::Conflict(_)) => {
            tracing::warn!(error = %e, %uri, "not registered as a node");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The default plans, images and templates. (A data table written out: long on purpose.)
async fn seed_catalogue(db: &Pool) -> ServiceResult<()> {
    for (slug, name, kind, vcpu, mem, disk, price) in [
        ("nano", "Nano", "vm", 1, 512, 10, 0.0042),
        ("small", "Small", "vm", 1, 2048, 25, 0.012),
        ("medium", "Medium", "vm", 2, 4096, 50, 0.024),
        ("c-micro", "Container Micro", "container", 1, 256, 1, 0.002),
        ("c-small", "Container Small", "container", 2, 1024, 5, 0.006),
    ] {
        upsert_plan(
            db,
            PlanInput {
                slug: slug.into(),
                name: name.into(),
                kind: kind.into(),
                vcpu,
                memory_mb: mem,
                disk_gb: disk,
                price_hourly: price,
                active: true,
            },
        )
        .await?;
    }
    for (slug, name, kind, source, is_default) in [
        ("debian-12", "Debian 12", "vm", "debian-12", true),
        ("ubuntu-22-04", "Ubuntu 22.04", "vm", "ubuntu-22.04", false),
        (
            "busybox",
            "BusyBox",
            "container",
            "localhost/hangar-busybox:latest",
            true,
        ),
    ] {
        upsert_image(
            db,
            ImageInput {
                active: true,
                slug: slug.into(),
                name: name.into(),
                kind: kind.into(),
                source: source.into(),
                is_default,
                app: None,
            },
        )
        .await?;
    }
    for (slug, name, plan, image, ttl) in [
        (
            "ubuntu-22-small",
            "Ubuntu 22.04 small",
            "small",
            "ubuntu-22-04",
            None,
        ),
        (
            "debian-12-nano",
            "Debian 12 nano",
            "nano",
            "debian-12",
            None,
        ),
        (
            "scratch-1h",
            "Throwaway Debian (1 hour)",
            "nano",
            "debian-12",
            Some(60),
        ),
    ] {
        upsert_template(
            db,
            TemplateInput {
                active: true,
                slug: slug.into(),
                name: name.into(),
                description: String::new(),
                plan: plan.into(),
                image: image.into(),
                vcpu: None,
                memory_mb: None,
                disk_gb: None,
                user_data: None,
                ttl_minutes: ttl,
            },
        )
        .await?;
    }
    Ok(())
}

/// Retires a plan or template (by slug or id): it leaves `/api/pricing` / `/api/templates` and new
/// machines cannot use it; machines made from it keep running at their price. Re-`PUT` to restore.
pub async fn retire(db: &Pool, table: Retire, slug: &str) -> ServiceResult<()> {
    let (sql, what) = match table {
        Retire::Plan => (
            "UPDATE plans SET active = 0 WHERE slug = $1 OR id = $1",
            "Plan",
        ),
        Retire::Template => (
            "UPDATE templates SET active = 0 WHERE slug = $1 OR id = $1",
            "Template",
        ),
        Retire::Image => ("UPDATE images SET active = 0 WHERE slug = $1", "Image"),
    };
    let done = sqlx::query(sql).bind(slug).execute(db).await?;
    if done.rows_affected() == 0 {
        return Err(ServiceError::NotFound(what));
    }
    Ok(())
}

/// What [`retire`] retires.
#[derive(Debug, Clone, Copy)]
pub enum Retire {
    Plan,
    Template,
    Image,
}

/// Every plan, retired ones too, with how many machines (not deleted) are on each: what an
/// operator manages, active first, then by price.
pub async fn all_plans(db: &Pool) -> ServiceResult<Vec<(PlanRow, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        plan: PlanRow,
        machines: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS}, (SELECT COUNT(*) FROM instances i
             WHERE i.plan_id = plans.id AND i.state <> 'deleted') AS machines
         FROM plans ORDER BY active DESC, kind, price_hourly_micros, slug"
    ))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.plan, r.machines)).collect())
}

/// Every template, retired ones too, with its plan.
pub async fn all_templates(db: &Pool) -> ServiceResult<Vec<(TemplateRow, PlanRow)>> {
    let rows: Vec<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY active DESC, uses DESC, slug"
    ))
    .fetch_all(db)
    .await?;
    with_plans(db, rows).await
}

/// What uses an image: machines (not deleted) made from it, and templates naming it.
pub async fn image_uses(db: &Pool) -> ServiceResult<Vec<(String, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT i.slug,
            (SELECT COUNT(*) FROM instances m WHERE m.image = i.slug AND m.state <> 'deleted'),
            (SELECT COUNT(*) FROM templates t WHERE t.image = i.slug)
         FROM images i ORDER BY i.slug",
    )
    .fetch_all(db)
    .await?)
}

/// The plan `slug` as the [`PlanInput`] that would make it.
fn plan_input(p: &PlanRow) -> serde_json::Value {
    serde_json::json!({
        "slug": p.slug, "name": p.name, "kind": p.kind, "vcpu": p.vcpu,
        "memory_mb": p.memory_mb, "disk_gb": p.disk_gb,
        "price_hourly": p.price_hourly_micros as f64 / 1e6, "active": p.active == 1,
    })
}

fn image_input(i: &ImageRow) -> serde_json::Value {
    serde_json::json!({
        "slug": i.slug, "name": i.name, "kind": i.kind, "source": i.source,
        "is_default": i.is_default == 1, "app": i.app(), "active": i.active == 1,
    })
}

fn template_input(t: &TemplateRow, p: &PlanRow) -> serde_json::Value {
    serde_json::json!({
        "slug": t.slug, "name": t.name, "description": t.description, "plan": p.slug,
        "image": t.image, "vcpu": t.vcpu, "memory_mb": t.memory_mb, "disk_gb": t.disk_gb,
        "user_data": t.user_data, "ttl_minutes": t.ttl_minutes, "active": t.active == 1,
    })
}

/// The slug a `PUT` body names (checked again, fully, by the upsert).
fn body_slug(body: &serde_json::Value) -> ServiceResult<String> {
    body.get("slug")
        .and_then(|s| s.as_str())
        .map(str::to_owned)
        .ok_or_else(|| ServiceError::invalid("slug is required"))
}

/// Creates a plan, or changes the one with the body's slug: on an existing plan the body is a
/// merge patch (fields it leaves out keep their value), so re-running a setup script that
/// names a price does not also reset what it does not name.
pub async fn put_plan(db: &Pool, body: serde_json::Value) -> ServiceResult<PlanRow> {
    let current = plan(db, &body_slug(&body)?).await?;
    let input: PlanInput = patched(current.as_ref().map(plan_input), body, "plan")?;
    same_kind(
        current.as_ref().map(|p| p.kind.as_str()),
        &input.kind,
        "plan",
    )?;
    upsert_plan(db, input).await
}

/// A plan's or image's kind stays: machines, templates and defaults were made for it. A new
/// kind is a new slug.
fn same_kind(current: Option<&str>, wanted: &str, what: &str) -> ServiceResult<()> {
    match current {
        Some(kind) if kind != wanted => Err(ServiceError::invalid(format!(
            "kind cannot change (machines and templates were made for a {kind} {what}); make a new {what}"
        ))),
        _ => Ok(()),
    }
}

/// Changes the plan `slug` by a merge patch; 404 if there is none. Its slug cannot change.
pub async fn patch_plan(db: &Pool, slug: &str, patch: serde_json::Value) -> ServiceResult<PlanRow> {
    let current = plan(db, slug)
        .await?
        .ok_or(ServiceError::NotFound("Plan"))?;
    let input: PlanInput = patched(Some(plan_input(&current)), patch, "plan")?;
    if input.slug != current.slug {
        return Err(ServiceError::invalid("slug cannot change; make a new plan"));
    }
    same_kind(Some(&current.kind), &input.kind, "plan")?;
    upsert_plan(db, input).await
}

/// [`put_plan`] for images.
pub async fn put_image(db: &Pool, body: serde_json::Value) -> ServiceResult<ImageRow> {
    let current = image(db, &body_slug(&body)?).await?;
    let input: ImageInput = patched(current.as_ref().map(image_input), body, "image")?;
    same_kind(
        current.as_ref().map(|i| i.kind.as_str()),
        &input.kind,
        "image",
    )?;
    upsert_image(db, input).await
}

/// [`patch_plan`] for images.
pub async fn patch_image(
    db: &Pool,
    slug: &str,
    patch: serde_json::Value,
) -> ServiceResult<ImageRow> {
    let current = image(db, slug)
        .await?
        .ok_or(ServiceError::NotFound("Image"))?;
    let input: ImageInput = patched(Some(image_input(&current)), patch, "image")?;
    if input.slug != current.slug {
        return Err(ServiceError::invalid(
            "slug cannot change; make a new image",
        ));
    }
    same_kind(Some(&current.kind), &input.kind, "image")?;
    upsert_image(db, input).await
}

/// [`put_plan`] for templates.
pub async fn put_template(
    db: &Pool,
    body: serde_json::Value,
) -> ServiceResult<(TemplateRow, PlanRow)> {
    let stored = any_template(db, &body_slug(&body)?)
        .await?
        .map(|(t, p)| template_input(&t, &p));
    upsert_template(db, patched(stored, body, "template")?).await
}

/// [`patch_plan`] for templates.
pub async fn patch_template(
    db: &Pool,
    slug: &str,
    patch: serde_json::Value,
) -> ServiceResult<(TemplateRow, PlanRow)> {
    let (t, p) = any_template(db, slug)
        .await?
        .ok_or(ServiceError::NotFound("Template"))?;
    let input: TemplateInput = patched(Some(template_input(&t, &p)), patch, "template")?;
    if input.slug != t.slug {
        return Err(ServiceError::invalid(
            "slug cannot change; make a new template",
        ));
    }
    upsert_template(db, input).await
}

/// Deletes the image `slug` for good. Refused (409, saying what holds it) while a machine or a
/// template uses it: retire it instead, and delete it once they are gone. Nodes keep their
/// copy of the disk or container image; only the catalog entry goes.
pub async fn delete_image(db: &Pool, slug: &str) -> ServiceResult<()> {
    image(db, slug)
        .await?
        .ok_or(ServiceError::NotFound("Image"))?;
    let (_, machines, templates) = image_uses(db)
        .await?
        .into_iter()
        .find(|(s, ..)| s == slug)
        .unwrap_or_default();
    if machines > 0 || templates > 0 {
        return Err(ServiceError::Conflict(format!(
            "`{slug}` is in use by {machines} machine(s) and {templates} template(s); retire it \
             instead (customers stop being offered it) and delete it once nothing uses it"
        )));
    }
    let mut tx = crate::infra::db::begin(db).await?;
    // Checked again in the DELETE itself: a machine made from it meanwhile keeps it.
    let deleted = sqlx::query(
        "DELETE FROM images WHERE slug = $1
           AND NOT EXISTS (SELECT 1 FROM instances WHERE image = $1 AND state <> 'deleted')
           AND NOT EXISTS (SELECT 1 FROM templates WHERE image = $1)",
    )
    .bind(slug)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(ServiceError::Conflict(format!(
            "`{slug}` came into use meanwhile; retire it instead"
        )));
    }
    sqlx::query("DELETE FROM node_images WHERE image_slug = $1")
        .bind(slug)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What a stopped machine pays for what it keeps: each GB of its disk and its public IPv4
/// address, per hour (config `stopped_disk_gb_hourly`, `stopped_ipv4_hourly`). The figures
/// follow what providers charge for storage and an address (about $0.044 per GB-month and $0.58
/// per address-month by default), so that holding a machine without running it is never free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldRates {
    pub disk_gb_hourly_micros: i64,
    pub ipv4_hourly_micros: i64,
}

impl HeldRates {
    pub fn of(config: &crate::infra::config::Config) -> Self {
        HeldRates {
            disk_gb_hourly_micros: config.stopped_disk_gb_hourly_micros,
            ipv4_hourly_micros: config.stopped_ipv4_hourly_micros,
        }
    }

    /// The hourly rate of a stopped machine with `disk_gb` and, when `ipv4`, a public address.
    pub fn hourly(self, disk_gb: i64, ipv4: bool) -> i64 {
        disk_gb * self.disk_gb_hourly_micros + if ipv4 { self.ipv4_hourly_micros } else { 0 }
    }
}
