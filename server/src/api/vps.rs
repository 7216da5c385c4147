//! The `/api` dialect compute: pricing, templates, SSH keys, VPS lifecycle, VNC port, snapshots and
//! batch create/delete. Every action answers at once; slow work runs as a job (poll
//! `GET /api/vps/:id` until `state` is `running`, or watch `transition` become `null`).

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use domain::accounts::keys;
use domain::compute::executor;
use domain::compute::instances::{self, Action, NewInstance};
use domain::fleet::catalog::HeldRates;
use domain::fleet::{catalog, survey};
use domain::AppState;
use model::compute::{Image, MachineStats, Plan, Snapshot, SshKey, Template, Vps};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::{ErrorBody, InsufficientBalanceBody},
    http::{
        auth::Caller,
        error::{ApiJson, AppError, Result},
    },
};
use model::api::vps::{
    Accepted, AddKeyRequest, BatchCreateRequest, BatchDeleteItem, BatchDeleteRequest,
    BatchDeleteResults, BatchItem, BatchResults, CreateVpsRequest, HistoryQuery, RenameRequest,
    ShareRequest, SnapshotRequest, VncPort,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pricing))
        .routes(routes!(list_images))
        .routes(routes!(list_templates))
        .routes(routes!(get_template))
        .routes(routes!(list_keys, add_key))
        .routes(routes!(delete_key))
        .routes(routes!(list_vps, create_vps))
        .routes(routes!(batch_create, batch_delete))
        .routes(routes!(get_vps, rename_vps, delete_vps))
        .routes(routes!(move_vps))
        .routes(routes!(start_vps))
        .routes(routes!(stop_vps))
        .routes(routes!(restart_vps))
        .routes(routes!(vnc_port))
        .routes(routes!(stats))
        .routes(routes!(history))
        .routes(routes!(list_snapshots, create_snapshot))
        .routes(routes!(restore_snapshot))
        .routes(routes!(delete_snapshot))
}

/// Active plans, cheapest first. Use `id` as `plan_id` when creating a VPS.
#[utoipa::path(get, path = "/api/pricing", tag = "compute", responses((status = 200, body = Vec<Plan>)))]
async fn pricing(State(state): State<AppState>) -> Result<ApiJson<Vec<Plan>>> {
    Ok(ApiJson(
        catalog::plans(&state.db)
            .await?
            .iter()
            .map(|p| p.to_api(HeldRates::of(&state.config)))
            .collect(),
    ))
}

/// The images a machine can be created from: those some active node holds, of both kinds
/// (`kind` says which plans take each; `is_default` marks the one used when a create names
/// none). An image in the catalog that no node holds is not listed, and a create naming it is
/// refused (422) with the list of those that work.
#[utoipa::path(get, path = "/api/images", tag = "compute", responses((status = 200, body = Vec<Image>)))]
async fn list_images(State(state): State<AppState>) -> Result<ApiJson<Vec<Image>>> {
    Ok(ApiJson(
        survey::available(&state.db)
            .await?
            .iter()
            .map(|i| i.to_api())
            .collect(),
    ))
}

/// Active templates whose image some node holds, most used first.
#[utoipa::path(get, path = "/api/templates", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<Template>), (status = 401, body = ErrorBody)))]
async fn list_templates(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<ApiJson<Vec<Template>>> {
    Ok(ApiJson(
        catalog::templates(&state.db)
            .await?
            .iter()
            .map(|(t, p)| t.to_api(p))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/templates/{slug}", tag = "compute", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<AppState>,
    _caller: Caller,
    Path(slug): Path<String>,
) -> Result<ApiJson<Template>> {
    let (t, p) = catalog::template(&state.db, &slug).await?;
    Ok(ApiJson(t.to_api(&p)))
}

#[utoipa::path(get, path = "/api/keys", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<SshKey>), (status = 401, body = ErrorBody)))]
async fn list_keys(State(state): State<AppState>, caller: Caller) -> Result<ApiJson<Vec<SshKey>>> {
    Ok(ApiJson(
        keys::list(&state.db, &caller.user.id)
            .await?
            .iter()
            .map(|k| k.to_api())
            .collect(),
    ))
}

/// Upload an SSH public key (validated; the answer shows its SHA-256 fingerprint).
#[utoipa::path(post, path = "/api/keys", tag = "compute", security(("bearer" = [])),
    request_body = AddKeyRequest,
    responses((status = 201, body = SshKey), (status = 400, body = ErrorBody), (status = 409, description = "Key already added", body = ErrorBody)))]
async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AddKeyRequest>,
) -> Result<(StatusCode, ApiJson<SshKey>)> {
    let key = keys::add(&state.db, &caller.user.id, &body.name, &body.public_key).await?;
    Ok((StatusCode::CREATED, ApiJson(key.to_api())))
}

/// Delete an SSH key. Machines that already have it keep it.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    keys::delete(&state.db, &caller.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every VPS of the caller, newest first.
#[utoipa::path(get, path = "/api/vps", tag = "compute", security(("bearer" = [])),
    responses((status = 200, body = Vec<Vps>), (status = 401, body = ErrorBody)))]
async fn list_vps(State(state): State<AppState>, caller: Caller) -> Result<ApiJson<Vec<Vps>>> {
    Ok(ApiJson(
        instances::list(&state.db, &caller.user.id)
            .await?
            .iter()
            .map(|i| i.to_vps())
            .collect(),
    ))
}

/// What a create request asks for, in the domain's terms.
fn new_instance(r: CreateVpsRequest) -> NewInstance {
    NewInstance {
        name: r.name,
        plan: r.plan_id,
        template: r.template,
        image: r.image,
        region: r.region,
        vcpu: r.vcpu,
        memory_mb: r.memory_mb,
        disk_gb: r.disk_gb,
        ssh_key_ids: r.ssh_key_ids,
        user_data: r.user_data,
        ttl_minutes: r.ttl_minutes,
        pool_id: r.pool_id,
        ..Default::default()
    }
}

/// Provision a VPS. Answers 201 at once with `state: "creating"`; poll until `running`. Needs
/// balance for the configured minimum runtime (default one hour of the plan's price), else 402.
#[utoipa::path(post, path = "/api/vps", tag = "compute", security(("bearer" = [])),
    request_body = CreateVpsRequest,
    responses(
        (status = 201, body = Vps),
        (status = 400, body = ErrorBody),
        (status = 402, body = InsufficientBalanceBody),
        (status = 404, description = "`pool_id` names no pool of yours", body = ErrorBody),
        (status = 409, description = "No node has room", body = ErrorBody),
    ))]
async fn create_vps(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateVpsRequest>,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    let created = instances::create(&state, &caller.actor(), new_instance(body)).await?;
    Ok((StatusCode::CREATED, ApiJson(created.instance.to_vps())))
}

/// Share a VPS with a pool, or take it out of one (`pool_id: null`). The pool's members see and
/// use it by their role there; it stays billed to its creator. Only its creator may share it,
/// with a pool where they are owner or admin; its creator or its pool's owner may take it out.
#[utoipa::path(put, path = "/api/vps/{id}/pool", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ShareRequest,
    responses((status = 200, body = Vps), (status = 404, body = ErrorBody)))]
async fn move_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ShareRequest>,
) -> Result<ApiJson<Vps>> {
    let inst =
        instances::move_to_pool(&state.db, &caller.user.id, &id, body.pool_id.as_deref()).await?;
    Ok(ApiJson(inst.to_vps()))
}

#[utoipa::path(get, path = "/api/vps/{id}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vps), (status = 404, body = ErrorBody)))]
async fn get_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Vps>> {
    Ok(ApiJson(
        instances::get(&state.db, &caller.user.id, &id)
            .await?
            .to_vps(),
    ))
}

/// Update VPS metadata (name only; other fields are refused).
#[utoipa::path(put, path = "/api/vps/{id}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RenameRequest,
    responses((status = 200, body = Vps), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rename_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameRequest>,
) -> Result<ApiJson<Vps>> {
    Ok(ApiJson(
        instances::rename(&state.db, &caller.user.id, &id, &body.name)
            .await?
            .to_vps(),
    ))
}

async fn act(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    let (inst, _) = instances::act(state, &caller.user.id, id, action).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(inst.to_vps())))
}

/// Destroy a VPS: its machine, disk, snapshots and address. Irreversible. 202: the VPS disappears
/// from the list when the node has removed it.
#[utoipa::path(delete, path = "/api/vps/{id}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Vps), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    act(&state, &caller, &id, Action::Delete).await
}

/// Power on a stopped VPS (202; 409 unless stopped and idle).
#[utoipa::path(post, path = "/api/vps/{id}/start", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Vps), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    act(&state, &caller, &id, Action::Start).await
}

/// Graceful shutdown (ACPI), forced off after the configured timeout.
#[utoipa::path(post, path = "/api/vps/{id}/stop", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Vps), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    act(&state, &caller, &id, Action::Stop).await
}

/// Reboot a running VPS.
#[utoipa::path(post, path = "/api/vps/{id}/restart", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Vps), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restart_vps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Vps>)> {
    act(&state, &caller, &id, Action::Restart).await
}

/// The host VNC port of a running VM (read from the live domain). 409 when it is not running or
/// is a container (containers have no screen).
#[utoipa::path(get, path = "/api/vps/{id}/vnc-port", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = VncPort), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn vnc_port(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<VncPort>> {
    let port = executor::vnc_port(&state, &caller.user.id, &id).await?;
    Ok(ApiJson(VncPort { port }))
}

/// Live resource use of a running container: a Server-Sent Events stream of `stats` events, one
/// [`MachineStats`] sample (JSON) about each second, until the machine stops; then one `end`
/// event, after which a client should not reconnect. Nothing is stored here (the minute-by-minute
/// record is `GET /api/vps/{id}/history`); network and block figures are totals since the
/// machine started. Containers and VMs alike; 409 when it is not running.
#[utoipa::path(get, path = "/api/vps/{id}/stats", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "`text/event-stream` of `stats` events, then `end` when the machine stops", content_type = "text/event-stream", body = MachineStats),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response> {
    let samples = domain::compute::stats::open(&state, &caller.user.id, &id).await?;
    Ok(crate::http::events::stats(&state, samples, caller.credential()).await)
}

/// A machine's CPU, memory, network and disk over the last hour, day or 30 days: one sample a
/// minute while it runs (kept a day), rolled up per hour (kept 30 days). Steps when it did not
/// run are absent.
#[utoipa::path(get, path = "/api/vps/{id}/history", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), HistoryQuery),
    responses((status = 200, body = model::compute::UsageHistory), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HistoryQuery>,
) -> Result<ApiJson<model::compute::UsageHistory>> {
    let range = domain::compute::history::Range::parse(query.range.as_deref().unwrap_or("1h"))?;
    let now = domain::infra::db::now_ms();
    Ok(ApiJson(
        domain::compute::history::series(&state.db, &caller.user.id, &id, range, now).await?,
    ))
}

#[utoipa::path(get, path = "/api/vps/{id}/snapshots", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Snapshot>), (status = 404, body = ErrorBody)))]
async fn list_snapshots(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<Snapshot>>> {
    Ok(ApiJson(
        instances::snapshots(&state.db, &caller.user.id, &id)
            .await?
            .iter()
            .map(|s| s.to_api())
            .collect(),
    ))
}

/// Take a snapshot (running or stopped). 202 with `state: "creating"`; it becomes `ready`.
#[utoipa::path(post, path = "/api/vps/{id}/snapshots", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = SnapshotRequest,
    responses((status = 202, body = Snapshot), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SnapshotRequest>,
) -> Result<(StatusCode, ApiJson<Snapshot>)> {
    let snap = instances::snapshot_create(&state, &caller.user.id, &id, &body.name).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(snap.to_api())))
}

/// Restore a snapshot. The VPS must be stopped (409 otherwise) and stays stopped.
#[utoipa::path(post, path = "/api/vps/{id}/snapshots/{name}/restore", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn restore_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<(StatusCode, ApiJson<Accepted>)> {
    let op = instances::snapshot_restore(&state, &caller.user.id, &id, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Accepted {
            status: "restoring",
            operation_id: op,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/vps/{id}/snapshots/{name}", tag = "compute", security(("bearer" = [])),
    params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    instances::snapshot_delete(&state, &caller.user.id, &id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn item_error(index: usize, err: AppError) -> BatchItem {
    BatchItem {
        index,
        vps: None,
        status: err.status().as_u16(),
        error: Some(err.to_string()),
    }
}

/// Create several VPS in parallel. 207 with one result per item, in order; each succeeds or fails
/// on its own (balance is checked per item, so a batch can be partly created).
#[utoipa::path(post, path = "/api/vps/batch", tag = "compute", security(("bearer" = [])),
    request_body = BatchCreateRequest,
    responses((status = 207, body = BatchResults), (status = 400, body = ErrorBody)))]
async fn batch_create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchCreateRequest>,
) -> Result<(StatusCode, ApiJson<BatchResults>)> {
    let max = state.config.max_batch_size;
    if body.vms.is_empty() || body.vms.len() > max {
        return Err(AppError::bad_request(format!("vms: 1 to {max} items")));
    }
    let actor = caller.actor();
    let tasks = body.vms.into_iter().enumerate().map(|(index, raw)| {
        let state = state.clone();
        let actor = actor.clone();
        async move {
            let req: CreateVpsRequest = match serde_json::from_value(raw) {
                Ok(r) => r,
                Err(e) => {
                    return item_error(index, AppError::bad_request(format!("vms[{index}]: {e}")))
                }
            };
            match instances::create(&state, &actor, new_instance(req)).await {
                Ok(c) => BatchItem {
                    index,
                    vps: Some(c.instance.to_vps()),
                    error: None,
                    status: 201,
                },
                Err(e) => item_error(index, e.into()),
            }
        }
    });
    let results = futures::future::join_all(tasks).await;
    Ok((StatusCode::MULTI_STATUS, ApiJson(BatchResults { results })))
}

/// Destroy several VPS. 207 with one result per id (202 accepted, 404 not yours, 409 busy).
#[utoipa::path(delete, path = "/api/vps/batch", tag = "compute", security(("bearer" = [])),
    request_body = BatchDeleteRequest,
    responses((status = 207, body = BatchDeleteResults), (status = 400, body = ErrorBody)))]
async fn batch_delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchDeleteRequest>,
) -> Result<(StatusCode, ApiJson<BatchDeleteResults>)> {
    let max = state.config.max_batch_size.max(50);
    if body.ids.is_empty() || body.ids.len() > max {
        return Err(AppError::bad_request(format!("ids: 1 to {max} items")));
    }
    let mut seen = BTreeMap::new();
    let tasks = body
        .ids
        .into_iter()
        .filter(|id| seen.insert(id.clone(), ()).is_none())
        .map(|id| {
            let state = state.clone();
            let user = caller.user.id.clone();
            async move {
                match instances::act(&state, &user, &id, Action::Delete).await {
                    Ok(_) => BatchDeleteItem {
                        id,
                        status: 202,
                        error: None,
                    },
                    Err(e) => {
                        let e = AppError::from(e);
                        BatchDeleteItem {
                            id,
                            status: e.status().as_u16(),
                            error: Some(e.to_string()),
                        }
                    }
                }
            }
        });
    let results = futures::future::join_all(tasks).await;
    Ok((
        StatusCode::MULTI_STATUS,
        ApiJson(BatchDeleteResults { results }),
    ))
}
