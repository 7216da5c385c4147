//! The operator's overview (`/operator`, admins only): each node's load against what placement
//! may still hand out (with drain / activate), the public address ranges and how full they are
//! (add, remove), machines by state, and the reconciler on demand. Everything here is also in the
//! admin API (`/api/admin/...`); this is the view an operator looks at rather than reads.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::{
    components::forms::{answer_status, error_message, ActionError, CsrfField, SubmitButton},
    components::meter::{Gauge, Meter},
    pages::RequireUser,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub region: String,
    pub uri: String,
    /// `active` or `draining`.
    pub status: String,
    /// Since when (RFC 3339) the reconciler cannot reach it.
    pub unreachable_since: Option<String>,
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
    use domain::compute::{addresses, instances, nodes};
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
    use domain::compute::nodes;
    let signed_in = require_operator(Some(&csrf)).await?;
    let node =
        nodes::set_status(&signed_in.state.db, &id, nodes::NodeStatus::parse(&status)?).await?;
    let details = serde_json::json!({"status": node.status});
    audited(&signed_in, "node.status", "node", Some(&id), details).await
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
    use domain::compute::addresses;
    let signed_in = require_operator(Some(&csrf)).await?;
    let state = &signed_in.state;
    let prefix_len = prefix_len
        .trim()
        .parse()
        .map_err(|_| PortalError::invalid("Prefix length: a number such as 24"))?;
    let range = addresses::add_pool(
        &state.db,
        addresses::PoolInput {
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
    use domain::compute::addresses;
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
}

#[component]
pub fn OperatorPage() -> impl IntoView {
    let actions = Actions {
        reconcile: ServerAction::new(),
        node_status: ServerAction::new(),
        add_range: ServerAction::new(),
        remove_range: ServerAction::new(),
    };
    let data = data::load(
        move || {
            (
                actions.reconcile.version().get(),
                actions.node_status.version().get(),
                actions.add_range.version().get(),
                actions.remove_range.version().get(),
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
    } = actions;
    view! {
        <section class="card">
            <h2>"Nodes"</h2>
            <div class="grid cards">
                {d.nodes.into_iter().map(|n| view! {
                    <article class="node" data-test="node" data-name=n.name.clone()>
                        <div class="node-head">
                            <strong>{n.name.clone()}</strong>
                            <span class=if n.status == "active" { "status status-active" } else { "status status-expired" }>{n.status.clone()}</span>
                            {n.unreachable_since.clone().map(|since| view! {
                                <span class="status status-error" data-test="node-unreachable" title=format!("No answer since {since}")>"unreachable"</span>
                            })}
                        </div>
                        <p class="muted small">{format!("{} · {} · {} machine{}", n.kind, n.region, n.machines, if n.machines == 1 { "" } else { "s" })}</p>
                        <p class="muted small mono">{n.uri.clone()}</p>
                        <Meter label="vCPU" gauge=n.vcpu unit=""/>
                        <Meter label="Memory" gauge=n.memory_mb unit="MB"/>
                        <Meter label="Disk" gauge=n.disk_gb unit="GB"/>
                        <LoadChart history=n.history.clone()/>
                        <ActionForm action=node_status attr:class="node-actions">
                            <CsrfField/>
                            <input type="hidden" name="id" value=n.id.clone()/>
                            {if n.status == "active" {
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
                }).collect_view()}
            </div>
        </section>
        <div class="split">
            <section class="card">
                <h2>"Public address ranges"</h2>
                {if d.ranges.is_empty() {
                    view! { <p class="muted" data-test="no-ranges">"No ranges: machines get only their node's private address. Add one with POST /api/admin/ip-pools."</p> }.into_any()
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
        return view! { <p class="muted small" data-test="load-chart-empty">"Load over time appears as the reconciler runs."</p> }.into_any();
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
