//! Operator functions for compute under `/api/admin`: nodes, public address ranges, plans,
//! images, templates, and a reconcile on demand. Every route requires an admin.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use domain::compute::meter::HeldRates;
use domain::compute::{addresses, catalog, nodes, reconcile, survey};
use domain::AppState;
use model::compute::{Image, Plan, Template};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::ErrorBody,
    http::{
        auth::AdminCaller,
        error::{ApiJson, Result},
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes, add_node))
        .routes(routes!(set_node_status, remove_node))
        .routes(routes!(list_ip_pools, add_ip_pool))
        .routes(routes!(remove_ip_pool))
        .routes(routes!(address_history))
        .routes(routes!(upsert_plan))
        .routes(routes!(retire_plan))
        .routes(routes!(list_images, upsert_image))
        .routes(routes!(upsert_template))
        .routes(routes!(retire_template))
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
    request_body = nodes::NodeInput,
    responses((status = 201, body = nodes::NodeRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_node(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<nodes::NodeInput>,
) -> Result<(StatusCode, ApiJson<nodes::NodeRow>)> {
    let node = nodes::add(&state.db, body).await?;
    let details = json!({"uri": node.uri, "region": node.region, "kind": node.kind.as_str()});
    audited(&state, &admin, "node.add", "node", &node.id, details).await?;
    // What it holds, so machines can be placed on it at once.
    let driver = state.drivers.for_node(&node);
    survey::node(&state.db, &node, driver.as_ref()).await?;
    Ok((StatusCode::CREATED, ApiJson(node)))
}

#[derive(Deserialize, ToSchema)]
pub struct NodeStatus {
    /// `active` or `draining` (no new instances).
    pub status: String,
}

#[utoipa::path(patch, path = "/api/admin/nodes/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = NodeStatus,
    responses((status = 200, body = nodes::NodeRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_node_status(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NodeStatus>,
) -> Result<ApiJson<nodes::NodeRow>> {
    let node = nodes::set_status(&state.db, &id, nodes::NodeStatus::parse(&body.status)?).await?;
    let details = json!({"status": node.status});
    audited(&state, &admin, "node.status", "node", &id, details).await?;
    Ok(ApiJson(node))
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
    request_body = addresses::PoolInput,
    responses((status = 201, body = addresses::PoolRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_ip_pool(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<addresses::PoolInput>,
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

#[derive(Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// Only the holding that covered this moment (RFC 3339), for abuse reports.
    pub at: Option<String>,
}

/// Who held a public address and when (kept after machines and ranges are gone), newest first.
#[utoipa::path(get, path = "/api/admin/ip-addresses/{address}", tag = "admin", security(("bearer" = [])),
    params(("address" = String, Path), HistoryQuery),
    responses((status = 200, body = addresses::AddressHistory), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn address_history(
    State(state): State<AppState>,
    _admin: AdminCaller,
    Path(address): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<ApiJson<addresses::AddressHistory>> {
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

/// Create a plan, or update the one with the same slug. Running instances keep the price they
/// were created at.
#[utoipa::path(put, path = "/api/admin/plans", tag = "admin", security(("bearer" = [])),
    request_body = catalog::PlanInput,
    responses((status = 200, body = Plan), (status = 400, body = ErrorBody)))]
async fn upsert_plan(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<catalog::PlanInput>,
) -> Result<ApiJson<Plan>> {
    let plan = catalog::upsert_plan(&state.db, body)
        .await?
        .to_api(HeldRates::of(&state.config));
    let details = json!({"price_hourly": plan.price_hourly.0, "vcpu": plan.vcpu, "memory_mb": plan.memory_mb});
    audited(&state, &admin, "plan.put", "plan", &plan.slug, details).await?;
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

/// Retire a template (re-`PUT` it to bring it back).
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

/// An image as the operator sees it: which nodes hold it (none: customers are not offered it).
#[derive(Serialize, ToSchema)]
pub struct NodeImage {
    #[serde(flatten)]
    pub image: Image,
    /// Names of the nodes the last survey found holding it.
    pub nodes: Vec<String>,
}

#[utoipa::path(get, path = "/api/admin/images", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<NodeImage>)))]
async fn list_images(
    State(state): State<AppState>,
    _admin: AdminCaller,
) -> Result<ApiJson<Vec<NodeImage>>> {
    let held = survey::holders(&state.db).await?;
    Ok(ApiJson(
        catalog::images(&state.db)
            .await?
            .iter()
            .map(|i| NodeImage {
                image: i.to_api(),
                nodes: held
                    .iter()
                    .filter(|(slug, _)| *slug == i.slug)
                    .map(|(_, node)| node.clone())
                    .collect(),
            })
            .collect(),
    ))
}

/// Create or update an image (by slug).
#[utoipa::path(put, path = "/api/admin/images", tag = "admin", security(("bearer" = [])),
    request_body = catalog::ImageInput,
    responses((status = 200, body = Image), (status = 400, body = ErrorBody)))]
async fn upsert_image(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<catalog::ImageInput>,
) -> Result<ApiJson<Image>> {
    let image = catalog::upsert_image(&state.db, body).await?;
    let details = json!({"source": image.source, "kind": image.kind});
    audited(&state, &admin, "image.put", "image", &image.slug, details).await?;
    // Which nodes hold it (a changed source may be somewhere else): offered from now on.
    survey::all(&state.db, &state.drivers).await?;
    Ok(ApiJson(image.to_api()))
}

/// Create or update a template (by slug).
#[utoipa::path(put, path = "/api/admin/templates", tag = "admin", security(("bearer" = [])),
    request_body = catalog::TemplateInput,
    responses((status = 200, body = Template), (status = 400, body = ErrorBody)))]
async fn upsert_template(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    ApiJson(body): ApiJson<catalog::TemplateInput>,
) -> Result<ApiJson<Template>> {
    let (t, p) = catalog::upsert_template(&state.db, body).await?;
    audited(
        &state,
        &admin,
        "template.put",
        "template",
        &t.slug,
        json!({"plan": p.slug}),
    )
    .await?;
    Ok(ApiJson(t.to_api(&p)))
}

#[derive(Serialize, ToSchema)]
pub struct ReconcileReport {
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    pub destroyed: Vec<String>,
    pub unreachable_nodes: Vec<String>,
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
