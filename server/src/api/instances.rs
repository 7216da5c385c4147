//! The instances API at `/v1/instances` and `/v1/operations`: the same instances as `/api/vps`, as
//! `{id, metadata, spec, status}`; create answers 201 and delete 202, each with the
//! `operation_id` to follow at `GET /v1/operations/{id}`.
//!
//! Choices where the reference is silent: `spec.type` is a plan slug or id and `spec.image` an
//! image slug; `vcpus`/`memory_mb`/`disk_gb` may only shrink the plan's; `vpc_id`, `subnet_id` and
//! `security_groups` are stored and returned as given (ids up to 64 characters; Hangar does not
//! manage VPCs); `user_data` must be valid base64 (decoded, it is what cloud-init receives). The
//! list takes `label_selector` (also `labelSelector`): comma-separated `key=value`, `key!=value` or
//! `key` (present) terms, all of which must hold.

use domain::compute::instances::InstanceState;
use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use base64::Engine;
use domain::compute::instances::{self, Action, InstanceRow, NewInstance};
use domain::fleet::catalog;
use domain::infra::db::rfc3339;
use domain::infra::queue;
use domain::AppState;
use model::api::instances::Operation;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::{ErrorBody, InsufficientBalanceBody},
    http::{
        auth::Caller,
        error::{ApiJson, ApiQuery, AppError, Result},
    },
};
use model::api::instances::{
    CreateInstance, DeleteAccepted, Instance, InstanceList, ListQuery, Metadata, Spec, Status,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_instances, create_instance))
        .routes(routes!(get_instance, delete_instance))
        .routes(routes!(get_operation))
}

async fn to_instance(
    state: &AppState,
    inst: &InstanceRow,
    operation_id: Option<String>,
) -> Result<Instance> {
    let plan = catalog::plan(&state.db, &inst.plan_id).await?;
    Ok(Instance {
        id: inst.id.clone(),
        metadata: Metadata {
            name: inst.name.clone(),
            labels: inst.labels(),
            created_at: rfc3339(inst.created_at),
        },
        spec: Spec {
            kind: plan.map(|p| p.slug).unwrap_or_else(|| inst.plan_id.clone()),
            image: inst.image.clone(),
            vcpus: Some(inst.vcpu),
            memory_mb: Some(inst.memory_mb),
            disk_gb: Some(inst.disk_gb),
            vpc_id: inst.vpc_id.clone(),
            subnet_id: inst.subnet_id.clone(),
            security_groups: inst.security_groups(),
            ssh_key_ids: inst.ssh_key_ids(),
            user_data: inst
                .user_data
                .as_ref()
                .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
        },
        status: Status {
            state: inst.state.instance_state().to_owned(),
            host_id: inst.node_id.clone().unwrap_or_default(),
            private_ip: inst.private_ip.clone().unwrap_or_default(),
            public_ip: inst.public_ip.clone().unwrap_or_default(),
            reason: if matches!(inst.state, InstanceState::Failed | InstanceState::Stopped) {
                inst.reason.clone()
            } else {
                None
            },
        },
        operation_id,
    })
}

/// One label-selector term.
#[derive(Debug, PartialEq, Eq)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Has(String),
}

fn parse_selector(raw: &str) -> Result<Vec<Term>> {
    raw.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let bad = || {
                AppError::bad_request(format!(
                    "label_selector: cannot read `{t}` (use key=value, key!=value or key)"
                ))
            };
            if let Some((k, v)) = t.split_once("!=") {
                (!k.trim().is_empty())
                    .then(|| Term::Ne(k.trim().into(), v.trim().into()))
                    .ok_or_else(bad)
            } else if let Some((k, v)) = t.split_once('=') {
                let v = v.strip_prefix('=').unwrap_or(v);
                (!k.trim().is_empty())
                    .then(|| Term::Eq(k.trim().into(), v.trim().into()))
                    .ok_or_else(bad)
            } else {
                Ok(Term::Has(t.into()))
            }
        })
        .collect()
}

fn matches(labels: &BTreeMap<String, String>, terms: &[Term]) -> bool {
    terms.iter().all(|t| match t {
        Term::Eq(k, v) => labels.get(k) == Some(v),
        Term::Ne(k, v) => labels.get(k) != Some(v),
        Term::Has(k) => labels.contains_key(k),
    })
}

/// The caller's instances, optionally filtered by labels.
#[utoipa::path(get, path = "/v1/instances", tag = "instances", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = InstanceList), (status = 400, body = ErrorBody)))]
async fn list_instances(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<InstanceList>> {
    let terms = parse_selector(
        q.label_selector
            .or(q.label_selector_camel)
            .as_deref()
            .unwrap_or(""),
    )?;
    let mut items = Vec::new();
    for inst in instances::list(&state.db, &caller.user.id).await? {
        if matches(&inst.labels(), &terms) {
            items.push(to_instance(&state, &inst, None).await?);
        }
    }
    Ok(ApiJson(InstanceList { items }))
}

fn check_ref(what: &str, v: &Option<String>) -> Result<()> {
    match v {
        Some(s) if s.is_empty() || s.len() > 64 || s.chars().any(char::is_whitespace) => Err(
            AppError::bad_request(format!("{what}: 1 to 64 characters without spaces")),
        ),
        _ => Ok(()),
    }
}

/// Create an instance: 201 with `status.state: "provisioning"` and the `operation_id`.
#[utoipa::path(post, path = "/v1/instances", tag = "instances", security(("bearer" = [])),
    request_body = CreateInstance,
    responses((status = 201, body = Instance), (status = 400, body = ErrorBody), (status = 402, body = InsufficientBalanceBody), (status = 409, body = ErrorBody)))]
async fn create_instance(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateInstance>,
) -> Result<(StatusCode, ApiJson<Instance>)> {
    let spec = body.spec;
    check_ref("spec.vpc_id", &spec.vpc_id)?;
    check_ref("spec.subnet_id", &spec.subnet_id)?;
    for sg in &spec.security_groups {
        check_ref("spec.security_groups", &Some(sg.clone()))?;
    }
    if spec.subnet_id.is_some() && spec.vpc_id.is_none() {
        return Err(AppError::bad_request("spec.subnet_id needs spec.vpc_id"));
    }
    let user_data = spec
        .user_data
        .as_deref()
        .map(|b64| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| AppError::bad_request("spec.user_data must be base64"))?;
            String::from_utf8(bytes)
                .map_err(|_| AppError::bad_request("spec.user_data must decode to UTF-8 text"))
        })
        .transpose()?;
    let req = NewInstance {
        name: body.metadata.name,
        plan: Some(spec.kind),
        image: Some(spec.image),
        vcpu: spec.vcpus,
        memory_mb: spec.memory_mb,
        disk_gb: spec.disk_gb,
        ssh_key_ids: spec.ssh_key_ids,
        user_data,
        labels: body.metadata.labels,
        vpc_id: spec.vpc_id,
        subnet_id: spec.subnet_id,
        security_groups: spec.security_groups,
        ..Default::default()
    };
    let created = instances::create(&state, &caller.actor(), req).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(to_instance(&state, &created.instance, Some(created.operation_id)).await?),
    ))
}

#[utoipa::path(get, path = "/v1/instances/{id}", tag = "instances", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody)))]
async fn get_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Instance>> {
    let inst = instances::get(&state.db, &caller.user.id, &id).await?;
    Ok(ApiJson(to_instance(&state, &inst, None).await?))
}

/// Delete an instance: 202 with the operation tracking it.
#[utoipa::path(delete, path = "/v1/instances/{id}", tag = "instances", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = DeleteAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<DeleteAccepted>)> {
    let (_, op) = instances::act(&state, &caller.user.id, &id, Action::Delete).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(DeleteAccepted {
            id,
            operation_id: op,
        }),
    ))
}

/// An operation's progress and result (`pending` → `running` → `succeeded` | `failed`).
#[utoipa::path(get, path = "/v1/operations/{id}", tag = "instances", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Operation), (status = 404, body = ErrorBody)))]
async fn get_operation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<Operation>> {
    Ok(ApiJson(
        queue::operation(&state.db, &caller.user.id, &id).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("env", "prod"), ("team", "web")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ok = |s: &str| matches(&labels, &parse_selector(s).unwrap());
        assert!(ok(""));
        assert!(ok("env=prod"));
        assert!(ok("env==prod,team"));
        assert!(ok("env!=dev"));
        assert!(!ok("env=dev"));
        assert!(!ok("env=prod,missing"));
        assert!(parse_selector("=x").is_err());
    }
}
