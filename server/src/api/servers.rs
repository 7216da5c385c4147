//! The servers API at `/v1/servers`: the same instances as `/api/vps`, shaped `{data: ...}` with the
//! dialect's own status values (`InstanceState::server_status`). Errors are `{error}` like the `/api` dialect.
//!
//! Choices where the reference is silent: `plan` is a plan slug or id, `os` an image slug, `label`
//! is the instance's name, `region` picks a node region (any when omitted); `backups` and
//! `ddos_protection` are stored and returned (the platform does not sell them separately yet);
//! power actions answer 202 with the server in its new transitional status.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use domain::compute::instances::{self, Action, InstanceRow, NewInstance};
use domain::infra::db::rfc3339;
use domain::AppState;
use model::money::usd_plain;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::{ErrorBody, InsufficientBalanceBody},
    http::{
        auth::Caller,
        error::{ApiJson, Result},
    },
};
use model::api::servers::{CreateServer, Data, Relabel, Server};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, relabel_server, destroy_server))
        .routes(routes!(start_server))
        .routes(routes!(stop_server))
        .routes(routes!(reboot_server))
}

async fn to_server(state: &AppState, inst: &InstanceRow) -> Result<Server> {
    let plan = domain::fleet::catalog::plan(&state.db, &inst.plan_id).await?;
    Ok(Server {
        id: inst.id.clone(),
        label: inst.name.clone(),
        status: inst.state.server_status().to_owned(),
        reason: inst.reason.clone(),
        progress: inst.transition.as_ref().and(inst.progress.clone()),
        region: inst.region.clone(),
        plan: plan.map(|p| p.slug).unwrap_or_else(|| inst.plan_id.clone()),
        os: inst.image.clone(),
        main_ip: inst.address(),
        vcpus: inst.vcpu,
        ram_gb: (inst.memory_mb + 1023) / 1024,
        memory_mb: inst.memory_mb,
        disk_gb: inst.disk_gb,
        price_per_hour: usd_plain(inst.price_hourly_micros),
        stopped_price_per_hour: usd_plain(inst.held_hourly_micros),
        backups: inst.backups == 1,
        ddos_protection: inst.ddos_protection == 1,
        ssh_key_ids: inst.ssh_key_ids(),
        created_at: rfc3339(inst.created_at),
    })
}

/// All of the caller's servers.
#[utoipa::path(get, path = "/v1/servers", tag = "servers", security(("bearer" = [])),
    responses((status = 200, body = Data<Vec<Server>>), (status = 401, body = ErrorBody)))]
async fn list_servers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<ApiJson<Data<Vec<Server>>>> {
    let mut out = Vec::new();
    for inst in instances::list(&state.db, &caller.user.id).await? {
        out.push(to_server(&state, &inst).await?);
    }
    Ok(ApiJson(Data { data: out }))
}

/// Create a server: 201 with `status: "starting"`.
#[utoipa::path(post, path = "/v1/servers", tag = "servers", security(("bearer" = [])),
    request_body = CreateServer,
    responses((status = 201, body = Data<Server>), (status = 400, body = ErrorBody), (status = 402, body = InsufficientBalanceBody), (status = 409, body = ErrorBody)))]
async fn create_server(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateServer>,
) -> Result<(StatusCode, ApiJson<Data<Server>>)> {
    let req = NewInstance {
        name: body.label,
        plan: Some(body.plan),
        image: body.os,
        region: body.region,
        ssh_key_ids: body.ssh_key_ids,
        user_data: body.user_data,
        backups: body.backups,
        ddos_protection: body.ddos_protection,
        ..Default::default()
    };
    let created = instances::create(&state, &caller.actor(), req).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(Data {
            data: to_server(&state, &created.instance).await?,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/servers/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Data<Server>), (status = 404, body = ErrorBody)))]
async fn get_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Data<Server>>> {
    let inst = instances::get(&state.db, &caller.user.id, &id).await?;
    Ok(ApiJson(Data {
        data: to_server(&state, &inst).await?,
    }))
}

/// Update the server's label.
#[utoipa::path(patch, path = "/v1/servers/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Relabel,
    responses((status = 200, body = Data<Server>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn relabel_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Relabel>,
) -> Result<ApiJson<Data<Server>>> {
    let inst = instances::rename(&state.db, &caller.user.id, &id, &body.label).await?;
    Ok(ApiJson(Data {
        data: to_server(&state, &inst).await?,
    }))
}

/// Destroy a server and all its data (204). It is removed from its node by a job.
#[utoipa::path(delete, path = "/v1/servers/{id}", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn destroy_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    instances::act(&state, &caller.user.id, &id, Action::Delete).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn power(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: Action,
) -> Result<(StatusCode, ApiJson<Data<Server>>)> {
    let (inst, _) = instances::act(state, &caller.user.id, id, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Data {
            data: to_server(state, &inst).await?,
        }),
    ))
}

/// Start a stopped server.
#[utoipa::path(post, path = "/v1/servers/{id}/start", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Data<Server>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Data<Server>>)> {
    power(&state, &caller, &id, Action::Start).await
}

/// Stop a running server (graceful).
#[utoipa::path(post, path = "/v1/servers/{id}/stop", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Data<Server>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Data<Server>>)> {
    power(&state, &caller, &id, Action::Stop).await
}

/// Reboot a running server.
#[utoipa::path(post, path = "/v1/servers/{id}/reboot", tag = "servers", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = Data<Server>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reboot_server(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<Data<Server>>)> {
    power(&state, &caller, &id, Action::Restart).await
}
