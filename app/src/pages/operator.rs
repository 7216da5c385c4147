//! The operator's overview (`/operator`, admins only): each node's load against what placement
//! may still hand out (with drain / activate), the public address ranges and how full they are
//! (add, remove), machines by state, and the reconciler on demand. Everything here is also in the
//! admin API (`/api/admin/...`); this is the view an operator looks at rather than reads.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use model::compute::NodeStatus;
use serde::{Deserialize, Serialize};

use crate::{
    components::forms::{answer_status, error_message, ActionError, CsrfField, SubmitButton},
    components::guard::RequireUser,
    components::meter::{Gauge, Meter},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub region: String,
    pub uri: String,
    pub status: NodeStatus,
    /// Since when (RFC 3339) the reconciler cannot reach it, and why.
    pub unreachable_since: Option<String>,
    pub unreachable_reason: Option<String>,
    /// A node daemon's version, as it last reported it.
    pub agent_version: Option<String>,
    /// A node daemon (it has a token to rotate).
    pub daemon: bool,
    /// Its capacity as entered (before over-commit).
    pub capacity: (i64, i64, i64),
    pub vcpu: Gauge,
    pub memory_mb: Gauge,
    pub disk_gb: Gauge,
    /// Instances placed on it that are not deleted or failed.
    pub machines: i64,
    /// The last 24 hours, one point per reconciler pass: (epoch ms, vCPU %, memory %) of what
    /// placement may hand out.
    pub history: Vec<(i64, i64, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeLoad {
    pub id: String,
    pub region: String,
    pub first: String,
    pub last: String,
    pub addresses: Gauge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorData {
    pub nodes: Vec<NodeLoad>,
    /// The over-commit in force: placement hands out capacity × these of vCPU and memory.
    pub overcommit: (f64, f64),
    pub ranges: Vec<RangeLoad>,
    /// Instances (not deleted) by state, most first.
    pub states: Vec<(String, i64)>,
}

#[cfg(feature = "ssr")]
pub(crate) async fn require_operator(
    csrf: Option<&str>,
) -> Result<crate::ssr::portal::SignedIn, PortalError> {
    let signed_in = crate::ssr::portal::signed_in(csrf).await?;
    if !signed_in.user.is_admin {
        return Err(PortalError::forbidden("This page is for operators only"));
    }
    // Two-factor sign-in, when the configuration requires it of operators.
    domain::accounts::totp::check_operator(&signed_in.state.config, &signed_in.user)?;
    Ok(signed_in)
}

#[server(prefix = "/_fn", endpoint = "operator")]
pub async fn load_operator() -> Result<OperatorData, PortalError> {
    use domain::compute::instances;
    use domain::fleet::{addresses, nodes};
    let state = require_operator(None).await?.state;
    let db = &state.db;
    let per_node = nodes::machines_per_node(db).await?;
    let (cpu, mem) = (state.config.cpu_overcommit, state.config.memory_overcommit);
    let now = domain::infra::db::now_ms();
    let history = nodes::load_history(db, now - HISTORY_MS).await?;
    let nodes = nodes::list(db)
        .await?
        .into_iter()
        .map(|n| NodeLoad {
            daemon: n.daemon(),
            machines: per_node
                .iter()
                .find(|(id, _)| *id == n.id)
                .map_or(0, |(_, c)| *c),
            // The same limits as placement: an integer total within capacity × ratio.
            vcpu: Gauge {
                used: n.used_vcpu,
                limit: (n.vcpu as f64 * cpu).floor() as i64,
            },
            memory_mb: Gauge {
                used: n.used_memory_mb,
                limit: (n.memory_mb as f64 * mem).floor() as i64,
            },
            disk_gb: Gauge {
                used: n.used_disk_gb,
                limit: n.disk_gb,
            },
            name: n.name,
            kind: n.kind.to_string(),
            region: n.region,
            uri: n.uri,
            status: n.status,
            unreachable_since: n.unreachable_since.map(domain::infra::db::rfc3339),
            unreachable_reason: n.unreachable_reason.clone(),
            agent_version: n.agent_version.clone(),
            capacity: (n.vcpu, n.memory_mb, n.disk_gb),
            history: {
                let percent = |used: i64, limit: i64| used * 100 / limit.max(1);
                let (cpu_limit, mem_limit) = (
                    (n.vcpu as f64 * cpu).floor() as i64,
                    (n.memory_mb as f64 * mem).floor() as i64,
                );
                history
                    .iter()
                    .filter(|h| h.node_id == n.id)
                    .map(|h| {
                        (
                            h.at,
                            percent(h.used_vcpu, cpu_limit),
                            percent(h.used_memory_mb, mem_limit),
                        )
                    })
                    .collect()
            },
            id: n.id,
        })
        .collect();
    let ranges = addresses::pools(db)
        .await?
        .into_iter()
        .map(|p| RangeLoad {
            id: p.id,
            region: p.region,
            first: p.first_address,
            last: p.last_address,
            addresses: Gauge {
                used: p.used,
                limit: p.total,
            },
        })
        .collect();
    let states = instances::count_by_state(db).await?;
    Ok(OperatorData {
        nodes,
        overcommit: (cpu, mem),
        ranges,
        states,
    })
}

/// Runs the reconciler now and says what it changed.
#[server(prefix = "/_fn", endpoint = "operator_reconcile")]
pub async fn reconcile_now(csrf: String) -> Result<String, PortalError> {
    use domain::compute::reconcile;
    let signed_in = require_operator(Some(&csrf)).await?;
    let state = &signed_in.state;
    let r = reconcile::run(state).await?;
    let details = serde_json::json!({"failed": r.failed.len(), "stopped": r.stopped.len(),
        "started": r.started.len(), "destroyed": r.destroyed.len(), "unreachable_nodes": r.unreachable_nodes});
    audited(&signed_in, "reconcile.run", "node", None, details).await?;
    let parts: Vec<String> = [
        ("failed (machine gone)", r.failed.len()),
        ("stopped from inside", r.stopped.len()),
        ("started from inside", r.started.len()),
        ("addresses recorded", r.addressed.len()),
        ("orphans destroyed", r.destroyed.len()),
        ("nodes unreachable", r.unreachable_nodes.len()),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{n} {what}"))
    .collect();
    Ok(if parts.is_empty() {
        "Everything agrees with the nodes.".into()
    } else {
        parts.join(" · ")
    })
}

/// A labelled bar. Capacity bars turn amber at 70 % and red at 90 %; `share` bars (parts of a
/// whole, like machines by state) keep one colour.
/// Stops placement on a node (`draining`) or resumes it (`active`).
#[server(prefix = "/_fn", endpoint = "operator_node_status")]
pub async fn set_node_status(csrf: String, id: String, status: String) -> Result<(), PortalError> {
    use domain::fleet::nodes;
    let signed_in = require_operator(Some(&csrf)).await?;
    let node = nodes::set_status(&signed_in.state.db, &id, nodes::parse_status(&status)?).await?;
    let details = serde_json::json!({"status": node.status});
    audited(&signed_in, "node.status", "node", Some(&id), details).await
}

/// What the node forms send: every field optional (an edit changes only what is filled in).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub vcpu: String,
    #[serde(default)]
    pub memory_mb: String,
    #[serde(default)]
    pub disk_gb: String,
}

#[cfg(feature = "ssr")]
impl NodeForm {
    fn number(value: &str, what: &str) -> Result<Option<i64>, PortalError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse()
            .map(Some)
            .map_err(|_| PortalError::invalid(format!("{what}: a whole number, please")))
    }

    fn text(value: &str) -> Option<String> {
        Some(value.trim().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Adds a node (as `POST /api/admin/nodes`), then surveys what it holds.
#[server(prefix = "/_fn", endpoint = "operator_add_node")]
pub async fn add_node(csrf: String, node: NodeForm) -> Result<String, PortalError> {
    use domain::fleet::{nodes, survey};
    let signed_in = require_operator(Some(&csrf)).await?;
    let input = model::api::admin_compute::NodeInput {
        name: node.name.trim().to_owned(),
        kind: node.kind.clone(),
        region: node.region.trim().to_owned(),
        uri: node.uri.trim().to_owned(),
        secret: NodeForm::text(&node.secret),
        vcpu: NodeForm::number(&node.vcpu, "vCPU")?.unwrap_or(0),
        memory_mb: NodeForm::number(&node.memory_mb, "memory")?.unwrap_or(0),
        disk_gb: NodeForm::number(&node.disk_gb, "disk")?.unwrap_or(0),
    };
    let state = &signed_in.state;
    let added = nodes::add(&state.db, input).await?;
    let details =
        serde_json::json!({"uri": added.uri, "region": added.region, "kind": added.kind.as_str()});
    audited(&signed_in, "node.add", "node", Some(&added.id), details).await?;
    let driver = state.drivers.for_node(&added);
    survey::node(&state.db, &added, driver.as_ref()).await?;
    Ok(format!("Node {} added.", added.name))
}

/// Changes a node's name, region, address or capacity (empty fields keep their value).
#[server(prefix = "/_fn", endpoint = "operator_change_node")]
pub async fn change_node(csrf: String, id: String, node: NodeForm) -> Result<String, PortalError> {
    use domain::fleet::nodes;
    let signed_in = require_operator(Some(&csrf)).await?;
    let change = model::api::admin_compute::NodeChange {
        status: None,
        name: NodeForm::text(&node.name),
        region: NodeForm::text(&node.region),
        uri: NodeForm::text(&node.uri),
        vcpu: NodeForm::number(&node.vcpu, "vCPU")?,
        memory_mb: NodeForm::number(&node.memory_mb, "memory")?,
        disk_gb: NodeForm::number(&node.disk_gb, "disk")?,
    };
    let config = &signed_in.state.config;
    let ratios = (config.cpu_overcommit, config.memory_overcommit);
    let changed = nodes::change(&signed_in.state.db, &id, change, ratios).await?;
    let details = serde_json::json!({"uri": changed.uri, "vcpu": changed.vcpu, "memory_mb": changed.memory_mb, "disk_gb": changed.disk_gb});
    audited(&signed_in, "node.change", "node", Some(&id), details).await?;
    Ok(format!("Node {} saved.", changed.name))
}

/// Gives a node daemon a new token (see `nodes::rotate_secret`).
#[server(prefix = "/_fn", endpoint = "operator_rotate_node")]
pub async fn rotate_node(csrf: String, id: String) -> Result<String, PortalError> {
    let signed_in = require_operator(Some(&csrf)).await?;
    let state = &signed_in.state;
    let node = domain::fleet::nodes::rotate_secret(&state.db, &state.drivers, &id).await?;
    audited(
        &signed_in,
        "node.rotate_secret",
        "node",
        Some(&id),
        serde_json::json!({}),
    )
    .await?;
    Ok(format!(
        "Node {} has a new token; the old one no longer works.",
        node.name
    ))
}

/// A node's chart points over `range`, each at its offset into the span (0..1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeChart {
    pub points: Vec<(f64, model::compute::NodePoint)>,
}

#[server(prefix = "/_fn", endpoint = "operator_node_history")]
pub async fn node_history(id: String, range: String) -> Result<NodeChart, PortalError> {
    use domain::fleet::nodes;
    let state = require_operator(None).await?.state;
    let (span, _) = nodes::chart_range(&range)?;
    let points = nodes::host_history(
        &state.db,
        &id,
        &range,
        state.config.cpu_overcommit,
        state.config.memory_overcommit,
    )
    .await?;
    let start = domain::infra::db::now_ms() - span;
    Ok(NodeChart {
        points: points
            .into_iter()
            .map(|p| ((p.at - start) as f64 / span as f64, p))
            .collect(),
    })
}

/// Records an operator's change made from this page, as the API's handlers do.
#[cfg(feature = "ssr")]
pub(crate) async fn audited(
    signed_in: &crate::ssr::portal::SignedIn,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    details: serde_json::Value,
) -> Result<(), PortalError> {
    domain::infra::audit::record_now(
        &signed_in.state.db,
        Some(&signed_in.user.id),
        action,
        target_type,
        target_id,
        details,
    )
    .await
    .map_err(domain::infra::error::ServiceError::from)?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "operator_add_range")]
pub async fn add_range(
    csrf: String,
    region: String,
    first: String,
    last: String,
    prefix_len: String,
    gateway: String,
) -> Result<(), PortalError> {
    use domain::fleet::addresses;
    let signed_in = require_operator(Some(&csrf)).await?;
    let state = &signed_in.state;
    let prefix_len = prefix_len
        .trim()
        .parse()
        .map_err(|_| PortalError::invalid("Prefix length: a number such as 24"))?;
    let range = addresses::add_pool(
        &state.db,
        model::api::admin_compute::PoolInput {
            region,
            first,
            last,
            prefix_len,
            gateway: Some(gateway).filter(|g| !g.trim().is_empty()),
        },
    )
    .await?;
    let details = serde_json::json!({"region": range.region, "first": range.first_address, "last": range.last_address});
    audited(
        &signed_in,
        "ip_range.add",
        "ip_range",
        Some(&range.id),
        details,
    )
    .await
}

#[server(prefix = "/_fn", endpoint = "operator_remove_range")]
pub async fn remove_range(csrf: String, id: String) -> Result<(), PortalError> {
    use domain::fleet::addresses;
    let signed_in = require_operator(Some(&csrf)).await?;
    addresses::remove_pool(&signed_in.state.db, &id).await?;
    audited(
        &signed_in,
        "ip_range.remove",
        "ip_range",
        Some(&id),
        serde_json::json!({}),
    )
    .await
}

/// The actions of the page; every one refetches the overview when it finishes.
#[derive(Clone, Copy)]
struct Actions {
    reconcile: ServerAction<ReconcileNow>,
    node_status: ServerAction<SetNodeStatus>,
    add_range: ServerAction<AddRange>,
    remove_range: ServerAction<RemoveRange>,
    add_node: ServerAction<AddNode>,
    change_node: ServerAction<ChangeNode>,
    rotate_node: ServerAction<RotateNode>,
}

#[component]
pub fn OperatorPage() -> impl IntoView {
    let actions = Actions {
        reconcile: ServerAction::new(),
        node_status: ServerAction::new(),
        add_range: ServerAction::new(),
        remove_range: ServerAction::new(),
        add_node: ServerAction::new(),
        change_node: ServerAction::new(),
        rotate_node: ServerAction::new(),
    };
    let data = data::load(
        move || {
            (
                actions.reconcile.version().get(),
                actions.node_status.version().get(),
                actions.add_range.version().get(),
                actions.remove_range.version().get(),
                actions.add_node.version().get(),
                actions.change_node.version().get(),
                actions.rotate_node.version().get(),
            )
        },
        |_| load_operator(),
    );
    view! {
        <Title text="Operator"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head">
                <h1>"Operator"</h1>
                <p class="muted">"Nodes, address ranges and machines across all customers."</p>
            </section>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => { answer_status(&e); view! { <p class="alert alert-error" data-test="operator-error">{error_message(&e)}</p> }.into_any() }
                        Ok(d) => view! { <Overview d actions/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn Overview(d: OperatorData, actions: Actions) -> impl IntoView {
    let total: i64 = d.states.iter().map(|(_, n)| n).sum();
    let Actions {
        reconcile,
        node_status,
        add_range,
        remove_range,
        add_node,
        change_node,
        rotate_node,
    } = actions;
    let (cpu_ratio, memory_ratio) = d.overcommit;
    view! {
        <section class="card">
            <h2>"Nodes"</h2>
            <div class="grid cards">
                {d.nodes.into_iter().map(|n| {
                    let (edit_id, rotate_id) = (n.id.clone(), n.id.clone());
                    let (name, region, uri) = (n.name.clone(), n.region.clone(), n.uri.clone());
                    view! {
                    <article class="node" data-test="node" data-name=n.name.clone()>
                        <div class="node-head">
                            <strong>{n.name.clone()}</strong>
                            <span class=if n.status == NodeStatus::Active { "status status-active" } else { "status status-expired" }>{n.status.as_str()}</span>
                            {n.unreachable_since.clone().map(|since| view! {
                                <span class="status status-error" data-test="node-unreachable" title=format!("No answer since {since}")>"unreachable"</span>
                            })}
                        </div>
                        {n.unreachable_since.clone().map(|since| view! {
                            <p class="alert alert-error small" data-test="node-unreachable-why">
                                {format!("Since {}: {}", crate::components::format::when(&since), n.unreachable_reason.clone().unwrap_or_else(|| "no answer".into()))}
                            </p>
                        })}
                        <p class="muted small">{format!("{} · {} · {} machine{}", n.kind, n.region, n.machines, if n.machines == 1 { "" } else { "s" })}
                            {n.agent_version.clone().map(|v| view! { " · "<span data-test="node-version">{format!("hangar-node {v}")}</span> })}</p>
                        <p class="muted small mono">{n.uri.clone()}</p>
                        <Meter label="vCPU" gauge=n.vcpu unit=""/>
                        <Meter label="Memory" gauge=n.memory_mb unit="MB"/>
                        <Meter label="Disk" gauge=n.disk_gb unit="GB"/>
                        <p class="muted small" data-test="overcommit">{format!(
                            "Placement hands out up to {}× its {} vCPU and {}× its {} MB of memory; disk is never over-committed.",
                            cpu_ratio, n.capacity.0, memory_ratio, n.capacity.1
                        )}</p>
                        <LoadChart history=n.history.clone()/>
                        <NodeCharts id=n.id.clone()/>
                        <details class="disclosure" data-test="node-edit">
                            <summary class="btn btn-sm btn-ghost">"Edit"</summary>
                            <ActionForm action=change_node attr:class="form form-grid">
                                <CsrfField/>
                                <input type="hidden" name="id" value=edit_id/>
                                <label>"Name" <input type="text" name="node[name]" maxlength="200" value=name/></label>
                                <label>"Region" <input type="text" name="node[region]" maxlength="200" value=region/></label>
                                <label>"Address" <input type="text" name="node[uri]" maxlength="200" value=uri/></label>
                                <label>"vCPU" <input type="number" name="node[vcpu]" min="1" value=n.capacity.0.to_string()/></label>
                                <label>"Memory (MB)" <input type="number" name="node[memory_mb]" min="1" value=n.capacity.1.to_string()/></label>
                                <label>"Disk (GB)" <input type="number" name="node[disk_gb]" min="1" value=n.capacity.2.to_string()/></label>
                                <SubmitButton action=change_node label="Save" busy_label="Saving…" keep=true/>
                            </ActionForm>
                            {n.daemon.then(move || view! {
                                <ActionForm action=rotate_node attr:class="inline-form">
                                    <CsrfField/>
                                    <input type="hidden" name="id" value=rotate_id/>
                                    <button type="submit" class="btn btn-sm" data-test="rotate-secret">"Rotate the daemon's token"</button>
                                </ActionForm>
                            })}
                        </details>
                        <ActionForm action=node_status attr:class="node-actions">
                            <CsrfField/>
                            <input type="hidden" name="id" value=n.id.clone()/>
                            {if n.status == NodeStatus::Active {
                                view! {
                                    <input type="hidden" name="status" value="draining"/>
                                    <button type="submit" class="btn btn-ghost" data-test="drain">"Drain (no new machines)"</button>
                                }.into_any()
                            } else {
                                view! {
                                    <input type="hidden" name="status" value="active"/>
                                    <button type="submit" class="btn" data-test="activate">"Activate"</button>
                                }.into_any()
                            }}
                        </ActionForm>
                    </article>
                    }
                }).collect_view()}
            </div>
            <ActionError action=change_node/>
            <ActionError action=rotate_node/>
            {move || change_node.value().get().and_then(Result::ok).or_else(|| rotate_node.value().get().and_then(Result::ok)).map(|m| view! {
                <p class="alert alert-ok" role="status" data-test="node-done">{m}</p>
            })}
            <details class="disclosure" data-test="add-node">
                <summary class="btn btn-sm">"Add a node"</summary>
                <p class="muted small">"A libvirt URI for VMs (qemu+ssh://root@host/system), or for containers a Docker API address (tcp://host:2375) or a node daemon (hangar-node+http://host:8070, with its token). One engine is driven by one node."</p>
                <ActionForm action=add_node attr:class="form form-grid">
                    <CsrfField/>
                    <label>"Name" <input type="text" name="node[name]" required maxlength="200"/></label>
                    <label>"Kind"
                        <select name="node[kind]">
                            <option value="vm">"VMs (libvirt)"</option>
                            <option value="container">"Containers"</option>
                        </select>
                    </label>
                    <label>"Region" <input type="text" name="node[region]" required maxlength="200" placeholder="local"/></label>
                    <label>"Address" <input type="text" name="node[uri]" required maxlength="200" placeholder="qemu+ssh://root@host/system"/></label>
                    <label>"Daemon token (node daemons)" <input type="password" name="node[secret]" maxlength="256" autocomplete="off"/></label>
                    <label>"vCPU" <input type="number" name="node[vcpu]" required min="1"/></label>
                    <label>"Memory (MB)" <input type="number" name="node[memory_mb]" required min="1"/></label>
                    <label>"Disk (GB)" <input type="number" name="node[disk_gb]" required min="1"/></label>
                    <ActionError action=add_node/>
                    {move || add_node.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="node-added">{m}</p> })}
                    <SubmitButton action=add_node label="Add node" busy_label="Adding…"/>
                </ActionForm>
            </details>
        </section>
        <div class="split">
            <section class="card">
                <h2>"Public address ranges"</h2>
                {if d.ranges.is_empty() {
                    view! { <p class="muted" data-test="no-ranges">"No ranges: machines get only their node's private address. Add one below."</p> }.into_any()
                } else {
                    d.ranges.into_iter().map(|r| view! {
                        <div class="range" data-test="range">
                            <p class="small"><strong>{r.region.clone()}</strong>" "<span class="mono">{format!("{} – {}", r.first, r.last)}</span></p>
                            <Meter label="Addresses" gauge=r.addresses unit=""/>
                            {(r.addresses.used == 0).then(|| view! {
                                <ActionForm action=remove_range attr:class="inline-form">
                                    <CsrfField/>
                                    <input type="hidden" name="id" value=r.id.clone()/>
                                    <button type="submit" class="btn btn-ghost btn-small" data-test="remove-range">"Remove"</button>
                                </ActionForm>
                            })}
                        </div>
                    }).collect_view().into_any()
                }}
                <ActionError action=remove_range/>
                <h3>"Add a range"</h3>
                <ActionForm action=add_range attr:class="form" attr:data-test="add-range-form">
                    <CsrfField/>
                    <div class="form-grid">
                        <label>"Region" <input type="text" name="region" required maxlength="63" placeholder="local"/></label>
                        <label>"First address" <input type="text" name="first" required inputmode="decimal" placeholder="203.0.113.10"/></label>
                        <label>"Last address" <input type="text" name="last" required inputmode="decimal" placeholder="203.0.113.200"/></label>
                        <label>"Prefix length" <input type="number" name="prefix_len" required min="8" max="32" value="24"/></label>
                        <label>"Gateway (optional)" <input type="text" name="gateway" inputmode="decimal" placeholder="203.0.113.1"/></label>
                    </div>
                    <SubmitButton action=add_range label="Add range" busy_label="Adding…"/>
                </ActionForm>
                <ActionError action=add_range/>
            </section>
            <section class="card">
                <h2>"Machines"</h2>
                <p class="muted">{format!("{total} not deleted")}</p>
                <div class="states" data-test="machine-states">
                    {d.states.into_iter().map(|(state, n)| view! {
                        <Meter label=state_label(&state) gauge=Gauge { used: n, limit: total.max(1) } unit="" share=true/>
                    }).collect_view()}
                </div>
                <ActionForm action=reconcile attr:class="form-row">
                    <CsrfField/>
                    <SubmitButton action=reconcile label="Reconcile now" busy_label="Comparing with the nodes…"/>
                </ActionForm>
                <ActionError action=reconcile/>
                {move || reconcile.value().get().and_then(Result::ok).map(|msg| view! {
                    <p class="alert alert-ok" data-test="reconcile-result">{msg}</p>
                })}
            </section>
        </div>
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "running" => "running",
        "stopped" => "stopped",
        "provisioning" => "provisioning",
        "stopping" => "stopping",
        "rebooting" => "rebooting",
        "failed" => "failed",
        _ => "other",
    }
}

/// How far back the operator's node charts look.
const HISTORY_MS: i64 = 86_400_000;

/// A node's vCPU and memory in use (share of what placement may hand out) over the last 24
/// hours, one point per reconciler pass, on a fixed time axis; server-rendered SVG.
#[component]
fn LoadChart(history: Vec<(i64, i64, i64)>) -> impl IntoView {
    const W: f64 = 240.0;
    const H: f64 = 48.0;
    if history.len() < 2 {
        return view! { <p class="muted small" data-test="load-chart-empty">"The chart fills in as Hangar checks the node, once a minute."</p> }.into_any();
    }
    let end = history.last().map_or(0, |h| h.0);
    let start = end - HISTORY_MS;
    let line = |pick: fn(&(i64, i64, i64)) -> i64| {
        history
            .iter()
            .map(|h| {
                let x = (h.0 - start) as f64 / HISTORY_MS as f64 * W;
                let y = H - (pick(h).clamp(0, 100) as f64 / 100.0) * (H - 2.0) - 1.0;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let last = history.last().copied().unwrap_or_default();
    view! {
        <figure class="load-chart" data-test="load-chart" data-points=history.len()>
            <figcaption class="muted small">
                "Last 24 h: "<span class="key cpu"></span>{format!("vCPU {} %", last.1)}" · "
                <span class="key mem"></span>{format!("memory {} %", last.2)}
            </figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label="vCPU and memory in use over the last 24 hours">
                <polyline class="cpu" points=line(|h| h.1)/>
                <polyline class="mem" points=line(|h| h.2)/>
            </svg>
        </figure>
    }.into_any()
}

/// The host's own load beside allocation, over a chosen span (read when chosen, after the page
/// has loaded): CPU and memory as % of the host (solid) and of what placement may hand out
/// (the other line), disk %, network in and out.
#[component]
fn NodeCharts(id: String) -> impl IntoView {
    let range = RwSignal::new("24h");
    // Drawn once the page is live: its data is read from the browser, so the server renders an
    // empty place and hydration finds the same (a chart rendered on both sides did not match).
    let live = RwSignal::new(false);
    Effect::new(move |_| live.set(true));
    let tab = move |label: &'static str| {
        view! {
            <button type="button" class="tab" class:active=move || range.get() == label
                aria-pressed=move || (range.get() == label).to_string()
                data-test=format!("node-range-{label}")
                on:click=move |_| range.set(label)>{label}</button>
        }
    };
    view! {
        <div class="node-charts" data-test="node-charts">
            <div class="tabs" role="group" aria-label="Time span">
                {tab("1h")}{tab("24h")}{tab("7d")}{tab("30d")}
            </div>
            {move || {
                let r = range.get();
                live.get().then(|| view! { <NodeRange id=id.clone() range=r/> })
            }}
        </div>
    }
}

#[component]
fn NodeRange(id: String, range: &'static str) -> impl IntoView {
    use crate::components::charts::{Lines, Series};
    let loaded = LocalResource::new(move || node_history(id.clone(), range.to_owned()));
    let from = Signal::stored(format!("{range} ago"));
    view! {
        <Suspense fallback=|| view! { <p class="muted small">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded.await {
                    Err(e) => view! { <p class="alert alert-error">{error_message(&e)}</p> }.into_any(),
                    Ok(c) if c.points.is_empty() => view! { <p class="muted small" data-test="node-chart-empty">"Nothing recorded in this span yet: the reconciler adds a point each pass."</p> }.into_any(),
                    Ok(c) => {
                        let series = |f: fn(&model::compute::NodePoint) -> Option<f64>| -> Series {
                            Signal::stored(c.points.iter().filter_map(|(x, p)| f(p).map(|v| (*x, v))).collect())
                        };
                        let host_cpu = series(|p| p.cpu_percent);
                        let host_mem = series(|p| p.memory_percent);
                        let disk = series(|p| p.disk_percent);
                        let rx = series(|p| p.net_rx_bps);
                        let tx = series(|p| p.net_tx_bps);
                        let alloc_cpu = series(|p| Some(p.allocated_cpu_percent));
                        let alloc_mem = series(|p| Some(p.allocated_memory_percent));
                        let last = |s: Series| s.with(|v| v.last().map(|p| p.1));
                        let pct = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0} %"));
                        let hundred = Signal::stored(100.0);
                        let net_max = Signal::stored(rx.with(|a| tx.with(|b| a.iter().chain(b).map(|p| p.1).fold(1000.0, f64::max))));
                        let per_second = |v: f64| format!("{}/s", crate::components::format::bytes(v as u64));
                        let reported = host_cpu.with(|v| !v.is_empty()) || host_mem.with(|v| !v.is_empty());
                        view! {
                            <div class="charts" data-test="node-history" data-points=c.points.len().to_string()>
                                <figure class="chart" data-test="node-cpu">
                                    <figcaption>"CPU "<strong class="in">{format!("host {}", pct(last(host_cpu)))}</strong>" "<strong class="out">{format!("allocated {}", pct(last(alloc_cpu)))}</strong></figcaption>
                                    <Lines series=vec![("line in", host_cpu), ("line out", alloc_cpu)] max=hundred scale=|v| format!("{v:.0} %") from/>
                                </figure>
                                <figure class="chart" data-test="node-memory">
                                    <figcaption>"Memory "<strong class="in">{format!("host {}", pct(last(host_mem)))}</strong>" "<strong class="out">{format!("allocated {}", pct(last(alloc_mem)))}</strong></figcaption>
                                    <Lines series=vec![("line in", host_mem), ("line out", alloc_mem)] max=hundred scale=|v| format!("{v:.0} %") from/>
                                </figure>
                                <figure class="chart" data-test="node-disk">
                                    <figcaption>"Disk "<strong>{pct(last(disk))}</strong></figcaption>
                                    <Lines series=vec![("line", disk)] max=hundred scale=|v| format!("{v:.0} %") from/>
                                </figure>
                                <figure class="chart" data-test="node-network">
                                    <figcaption>"Network "
                                        <strong class="in">{format!("↓ {}", last(rx).map_or("—".into(), per_second))}</strong>" "
                                        <strong class="out">{format!("↑ {}", last(tx).map_or("—".into(), per_second))}</strong>
                                    </figcaption>
                                    <Lines series=vec![("line in", rx), ("line out", tx)] max=net_max scale=|v| format!("{}/s", crate::components::format::bytes(v as u64)) from/>
                                </figure>
                            </div>
                            {(!reported).then(|| view! { <p class="muted small" data-test="node-no-host-load">"This kind of node tells Hangar little about its host (a Docker API nothing; libvirt memory and disk), so mostly what Hangar handed out is charted. A node daemon reports CPU, memory, disk and network."</p> })}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// An operator's list page — customers, all machines, tasks, the inventory: the way back to the
/// overview, the title, a search form (`children`: a GET form, so the URL says what is shown and
/// it works before the page is live), and `list` of what loaded for the query. A failure
/// answers with its own status.
#[component]
pub(crate) fn OperatorList<T, L, V>(
    title: &'static str,
    data: data::Data<Result<T, PortalError>>,
    list: L,
    children: ChildrenFn,
) -> impl IntoView
where
    T: Clone + Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    L: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Title text=title/>
        <RequireUser signed_in=move |_| {
            let (search, list) = (children.clone(), list.clone());
            view! {
                <section class="page-head">
                    <p><a href="/operator">"← Operator"</a></p>
                    <h1>{title}</h1>
                    {search()}
                </section>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        let list = list.clone();
                        Suspend::new(async move {
                            match data.await {
                                Err(e) => { answer_status(&e); view! { <p class="alert alert-error">{error_message(&e)}</p> }.into_any() }
                                Ok(found) => list(found).into_any(),
                            }
                        })
                    }}
                </Transition>
            }
        }/>
    }
}
