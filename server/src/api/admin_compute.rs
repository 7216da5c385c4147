//! Operator functions for compute under `/api/admin`: nodes, public address ranges, plans,
//! images, templates, and a reconcile on demand. Every route requires an admin.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use domain::compute::reconcile;
use domain::fleet::catalog::HeldRates;
use domain::fleet::{addresses, catalog, nodes, survey};
use domain::operators;
use domain::AppState;
use model::compute::{Image, OperatorImage, OperatorPlan, OperatorTemplate, Plan, Template};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::AdminCaller,
        error::{ApiJson, Result},
    },
};
use model::api::admin_compute::{
    AddressHistory, HistoryQuery, HistoryRange, ReconcileReport, RemoveImage,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes, add_node))
        .routes(routes!(set_node_status, remove_node))
        .routes(routes!(rotate_node_secret))
        .routes(routes!(node_history))
        .routes(routes!(list_ip_pools, add_ip_pool))
        .routes(routes!(remove_ip_pool))
        .routes(routes!(address_history))
        .routes(routes!(list_plans, upsert_plan))
        .routes(routes!(patch_plan, retire_plan))
        .routes(routes!(list_images, upsert_image))
        .routes(routes!(patch_image, remove_image))
        .routes(routes!(list_all_templates, upsert_template))
        .routes(routes!(patch_template, retire_template))
        .routes(routes!(run_reconcile))
}

/// Every node with its capacity and what placed instances hold.
#[utoipa::path(get, path = "/api/admin/nodes", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<nodes::NodeRow>), (status = 403, body = ErrorBody)))]
async fn list_nodes(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<ApiJson<Vec<nodes::NodeRow>>> {
    Ok(ApiJson(nodes::list(&state.db).await?))
}

/// Add a node: a libvirt URI (`vm`) or a Docker API address (`container`) with its capacity.
#[utoipa::path(post, path = "/api/admin/nodes", tag = "admin", security(("bearer" = [])),
    request_body = model::api::admin_compute::NodeInput,
    responses((status = 201, body = nodes::NodeRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_node(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<model::api::admin_compute::NodeInput>,
) -> Result<(StatusCode, ApiJson<nodes::NodeRow>)> {
    let node = nodes::add(&state.db, body).await?;
    let details = json!({"uri": node.uri, "region": node.region, "kind": node.kind.as_str()});
    audited(&state, &admin, "node.add", "node", &node.id, details).await?;
    // What it holds, so machines can be placed on it at once.
    let driver = state.drivers.for_node(&node);
    survey::node(&state.db, &node, driver.as_ref()).await?;
    Ok((StatusCode::CREATED, ApiJson(node)))
}

/// Change a node: status (`active`, `draining`), name, region, address, capacity; fields left
/// out keep their value. Capacity cannot go below what its machines hold (409).
#[utoipa::path(patch, path = "/api/admin/nodes/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = model::api::admin_compute::NodeChange,
    responses((status = 200, body = nodes::NodeRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_node_status(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<model::api::admin_compute::NodeChange>,
) -> Result<ApiJson<nodes::NodeRow>> {
    let action = if body.status.is_some()
        && body.name.is_none()
        && body.uri.is_none()
        && body.region.is_none()
        && body.vcpu.is_none()
        && body.memory_mb.is_none()
        && body.disk_gb.is_none()
    {
        "node.status"
    } else {
        "node.change"
    };
    let ratios = (state.config.cpu_overcommit, state.config.memory_overcommit);
    let node = nodes::change(&state.db, &id, body, ratios).await?;
    let details = json!({"status": node.status, "uri": node.uri, "vcpu": node.vcpu, "memory_mb": node.memory_mb, "disk_gb": node.disk_gb});
    audited(&state, &admin, action, "node", &id, details).await?;
    Ok(ApiJson(node))
}

/// Give a node daemon a new token: the daemon takes it (into its config file) and the panel
/// stores it; the old one stops working at once. 409 if the daemon does not take it (nothing
/// changes then).
#[utoipa::path(post, path = "/api/admin/nodes/{id}/rotate-secret", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = nodes::NodeRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rotate_node_secret(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<ApiJson<nodes::NodeRow>> {
    let node = nodes::rotate_secret(&state.db, &state.drivers, &id).await?;
    audited(&state, &admin, "node.rotate_secret", "node", &id, json!({})).await?;
    Ok(ApiJson(node))
}

/// A node's load over time: what placement handed out (% of what it may, over-commit included)
/// beside what the host reports of itself (CPU, memory, disk %, network bytes/s; absent where
/// its backend cannot say), one point per reconciler pass or bucket.
#[utoipa::path(get, path = "/api/admin/nodes/{id}/history", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), HistoryRange),
    responses((status = 200, body = Vec<nodes::NodePoint>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn node_history(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(id): Path<String>,
    Query(q): Query<HistoryRange>,
) -> Result<ApiJson<Vec<nodes::NodePoint>>> {
    Ok(ApiJson(
        nodes::host_history(
            &state.db,
            &id,
            q.range.as_deref().unwrap_or("24h"),
            state.config.cpu_overcommit,
            state.config.memory_overcommit,
        )
        .await?,
    ))
}

/// Remove a node that holds no instances (409 otherwise).
#[utoipa::path(delete, path = "/api/admin/nodes/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_node(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let name = nodes::get(&state.db, &id).await?.name;
    nodes::remove(&state.db, &id).await?;
    audited(
        &state,
        &admin,
        "node.remove",
        "node",
        &id,
        json!({"name": name}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every public IPv4 range with how many of its addresses instances hold.
#[utoipa::path(get, path = "/api/admin/ip-pools", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<addresses::PoolRow>), (status = 403, body = ErrorBody)))]
async fn list_ip_pools(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<ApiJson<Vec<addresses::PoolRow>>> {
    Ok(ApiJson(addresses::pools(&state.db).await?))
}

/// Add a range of public IPv4 addresses to a region: every VM created there from now on takes
/// one (and a create fails with 409 once all are held). The nodes' libvirt network must serve
/// the range's subnet. Overlapping an existing range is a 409.
#[utoipa::path(post, path = "/api/admin/ip-pools", tag = "admin", security(("bearer" = [])),
    request_body = model::api::admin_compute::PoolInput,
    responses((status = 201, body = addresses::PoolRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_ip_pool(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<model::api::admin_compute::PoolInput>,
) -> Result<(StatusCode, ApiJson<addresses::PoolRow>)> {
    let range = addresses::add_pool(&state.db, body).await?;
    let details =
        json!({"region": range.region, "first": range.first_address, "last": range.last_address});
    audited(
        &state,
        &admin,
        "ip_range.add",
        "ip_range",
        &range.id,
        details,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(range)))
}

/// Remove a range none of whose addresses is held (409 otherwise).
#[utoipa::path(delete, path = "/api/admin/ip-pools/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_ip_pool(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    addresses::remove_pool(&state.db, &id).await?;
    audited(
        &state,
        &admin,
        "ip_range.remove",
        "ip_range",
        &id,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who held a public address and when (kept after machines and ranges are gone), newest first.
#[utoipa::path(get, path = "/api/admin/ip-addresses/{address}", tag = "admin", security(("bearer" = [])),
    params(("address" = String, Path), HistoryQuery),
    responses((status = 200, body = AddressHistory), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn address_history(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(address): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<ApiJson<AddressHistory>> {
    let at = match q.at.as_deref() {
        None => None,
        Some(t) => {
            let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    domain::infra::error::ServiceError::invalid(
                        "at: an RFC 3339 time such as 2026-11-23T10:00:00Z",
                    )
                })?;
            Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
    };
    Ok(ApiJson(addresses::history(&state.db, &address, at).await?))
}

/// Every plan, retired ones too, with how many machines are on each.
#[utoipa::path(get, path = "/api/admin/plans", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<OperatorPlan>)))]
async fn list_plans(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<ApiJson<Vec<OperatorPlan>>> {
    Ok(ApiJson(
        operators::catalog::plans(&state.db, &state.config).await?,
    ))
}

/// Create a plan, or change the one with the body's slug: on an existing plan, fields the body
/// leaves out keep their value (a merge patch). Running machines keep the price they were
/// created at. `"active": true` brings a retired plan back.
#[utoipa::path(put, path = "/api/admin/plans", tag = "admin", security(("bearer" = [])),
    request_body = model::api::admin_compute::PlanInput,
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody)))]
async fn upsert_plan(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<Plan>> {
    let plan = catalog::put_plan(&state.db, body).await?;
    plan_audited(&state, &admin, "plan.put", plan).await
}

/// Change a plan: only the fields named change (RFC 7386 merge patch; the slug cannot).
#[utoipa::path(patch, path = "/api/admin/plans/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = Object,
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn patch_plan(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<Plan>> {
    let plan = catalog::patch_plan(&state.db, &slug, body).await?;
    plan_audited(&state, &admin, "plan.patch", plan).await
}

async fn plan_audited(
    state: &AppState,
    admin: &crate::http::auth::Caller,
    action: &str,
    plan: catalog::PlanRow,
) -> Result<ApiJson<Plan>> {
    let active = plan.active == 1;
    let plan = plan.to_api(HeldRates::of(&state.config));
    let details = json!({"price_hourly": plan.price_hourly.0, "vcpu": plan.vcpu, "memory_mb": plan.memory_mb, "active": active});
    audited(state, admin, action, "plan", &plan.slug, details).await?;
    Ok(ApiJson(plan))
}

/// Retire a plan: gone from pricing and from new machines; existing machines keep their price.
#[utoipa::path(delete, path = "/api/admin/plans/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn retire_plan(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(slug): Path<String>,
) -> Result<StatusCode> {
    catalog::retire(&state.db, catalog::Retire::Plan, &slug).await?;
    audited(&state, &admin, "plan.retire", "plan", &slug, json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every template, retired ones too.
#[utoipa::path(get, path = "/api/admin/templates", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<OperatorTemplate>)))]
async fn list_all_templates(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<ApiJson<Vec<OperatorTemplate>>> {
    Ok(ApiJson(operators::catalog::templates(&state.db).await?))
}

/// Retire a template (`PATCH` it with `"active": true` to bring it back).
#[utoipa::path(delete, path = "/api/admin/templates/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn retire_template(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(slug): Path<String>,
) -> Result<StatusCode> {
    catalog::retire(&state.db, catalog::Retire::Template, &slug).await?;
    audited(
        &state,
        &admin,
        "template.retire",
        "template",
        &slug,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every image, retired ones too, with the nodes holding each (none: customers are not offered
/// it) and the machines and templates using it.
#[utoipa::path(get, path = "/api/admin/images", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<OperatorImage>)))]
async fn list_images(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<ApiJson<Vec<OperatorImage>>> {
    Ok(ApiJson(operators::catalog::images(&state.db).await?))
}

/// Create an image, or change the one with the body's slug (fields left out keep their value).
#[utoipa::path(put, path = "/api/admin/images", tag = "admin", security(("bearer" = [])),
    request_body = model::api::admin_compute::ImageInput,
    responses((status = 200, body = Image), (status = 400, body = ErrorBody)))]
async fn upsert_image(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<Image>> {
    let image = catalog::put_image(&state.db, body).await?;
    image_audited(&state, &admin, "image.put", image).await
}

/// Change an image: only the fields named change (the slug cannot).
#[utoipa::path(patch, path = "/api/admin/images/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = Object,
    responses((status = 200, body = Image), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn patch_image(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<Image>> {
    let image = catalog::patch_image(&state.db, &slug, body).await?;
    image_audited(&state, &admin, "image.patch", image).await
}

async fn image_audited(
    state: &AppState,
    admin: &crate::http::auth::Caller,
    action: &str,
    image: catalog::ImageRow,
) -> Result<ApiJson<Image>> {
    let details = json!({"source": image.source, "kind": image.kind, "active": image.active == 1});
    audited(state, admin, action, "image", &image.slug, details).await?;
    // Which nodes hold it (a changed source may be somewhere else): offered from now on.
    survey::all(&state.db, &state.drivers).await?;
    Ok(ApiJson(image.to_api()))
}

/// Retire an image: customers are no longer offered it; machines made from it keep it (and
/// reinstall from it). `?purge=true` deletes it instead, once nothing uses it.
#[utoipa::path(delete, path = "/api/admin/images/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path), RemoveImage),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_image(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(slug): Path<String>,
    Query(q): Query<RemoveImage>,
) -> Result<StatusCode> {
    let action = if q.purge {
        catalog::delete_image(&state.db, &slug).await?;
        "image.delete"
    } else {
        catalog::retire(&state.db, catalog::Retire::Image, &slug).await?;
        "image.retire"
    };
    audited(&state, &admin, action, "image", &slug, json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a template, or change the one with the body's slug (fields left out keep their
/// value; `null` clears an optional one).
#[utoipa::path(put, path = "/api/admin/templates", tag = "admin", security(("bearer" = [])),
    request_body = model::api::admin_compute::TemplateInput,
    responses((status = 200, body = Template), (status = 400, body = ErrorBody)))]
async fn upsert_template(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<Template>> {
    let (t, p) = catalog::put_template(&state.db, body).await?;
    template_audited(&state, &admin, "template.put", t, p).await
}

/// Change a template: only the fields named change (the slug cannot).
#[utoipa::path(patch, path = "/api/admin/templates/{slug}", tag = "admin", security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body = Object,
    responses((status = 200, body = Template), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn patch_template(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<ApiJson<Template>> {
    let (t, p) = catalog::patch_template(&state.db, &slug, body).await?;
    template_audited(&state, &admin, "template.patch", t, p).await
}

async fn template_audited(
    state: &AppState,
    admin: &crate::http::auth::Caller,
    action: &str,
    t: catalog::TemplateRow,
    p: catalog::PlanRow,
) -> Result<ApiJson<Template>> {
    let details = json!({"plan": p.slug, "image": t.image, "active": t.active == 1});
    audited(state, admin, action, "template", &t.slug, details).await?;
    Ok(ApiJson(t.to_api(&p)))
}

/// Compare every node with the database now and converge (it also runs periodically).
#[utoipa::path(post, path = "/api/admin/reconcile", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ReconcileReport)))]
async fn run_reconcile(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
) -> Result<ApiJson<ReconcileReport>> {
    let r = reconcile::run(&state).await?;
    let details = json!({"failed": r.failed.len(), "stopped": r.stopped.len(), "started": r.started.len(),
        "destroyed": r.destroyed.len(), "unreachable_nodes": r.unreachable_nodes});
    audited(&state, &admin, "reconcile.run", "node", "", details).await?;
    Ok(ApiJson(ReconcileReport {
        failed: r.failed,
        stopped: r.stopped,
        started: r.started,
        destroyed: r.destroyed,
        unreachable_nodes: r.unreachable_nodes,
    }))
}

/// Records an operator's change to the catalog, nodes or address ranges, right after it
/// succeeded (`audit::record_now`).
async fn audited(
    state: &AppState,
    admin: &crate::http::auth::Caller,
    action: &str,
    target_type: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<()> {
    let target = Some(target_id).filter(|t| !t.is_empty());
    domain::infra::audit::record_now(
        &state.db,
        Some(&admin.user.id),
        action,
        target_type,
        target,
        details,
    )
    .await
    .map_err(domain::infra::error::ServiceError::from)?;
    Ok(())
}
