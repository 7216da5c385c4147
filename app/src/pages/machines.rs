//! Machines (on-demand VPS and containers): the list with live state, the create form, the detail
//! page with power buttons, rename, snapshots and delete, and the SSH keys page.
//!
//! Live state: the browser subscribes to `/events/machines` (Server-Sent Events, sent by the
//! server whenever one of the user's machines changes) and re-renders from each message; the
//! server-rendered page shows the state as it was when the page was made.

use crate::components::data::{self, Data};
use leptos::prelude::*;

use crate::components::format::memory;

use crate::error::PortalError;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::components::format::when;
use crate::components::forms::{
    answer_status, error_message, ActionError, CsrfField, LoadFailed, SubmitButton,
};
use crate::pages::RequireUser;
use model::compute::{Plan, Snapshot, SshKey, Template, Vps};
use model::money::{usd4, usd_rate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachinesData {
    pub machines: Vec<Vps>,
    pub plans: Vec<Plan>,
    pub templates: Vec<Template>,
    pub keys: Vec<SshKey>,
    pub balance: i64,
    /// Images some active node can boot: (slug, name, kind). App images are left out: their
    /// templates carry them.
    pub images: Vec<(String, String, String)>,
    /// Regions with an active node: (region, kind), each once.
    pub regions: Vec<(String, String)>,
    /// The pools the user belongs to (to name a shared machine's, and to share new ones).
    pub pools: Vec<PoolChoice>,
}

/// A pool the user belongs to, as the machine pages offer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolChoice {
    pub id: String,
    pub name: String,
    /// Owner or admin there: may share machines with it.
    pub manages: bool,
}

#[cfg(feature = "ssr")]
async fn pool_choices(
    db: &domain::infra::db::Pool,
    user_id: &str,
) -> Result<Vec<PoolChoice>, PortalError> {
    use model::market::Role;
    Ok(domain::accounts::pools::list(db, user_id)
        .await?
        .into_iter()
        .map(|p| PoolChoice {
            manages: p.user_role != Role::User,
            id: p.id,
            name: p.name,
        })
        .collect())
}

#[server(prefix = "/_fn", endpoint = "machines")]
pub async fn load_machines() -> Result<MachinesData, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::keys;
    use domain::compute::instances;
    use domain::fleet::catalog;
    use domain::fleet::catalog::HeldRates;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let db = &state.db;
    Ok(MachinesData {
        machines: instances::list(db, &user.id)
            .await?
            .iter()
            .map(|i| i.to_vps())
            .collect(),
        plans: catalog::plans(db)
            .await?
            .iter()
            .map(|p| p.to_api(HeldRates::of(&state.config)))
            .collect(),
        templates: catalog::templates(db)
            .await?
            .iter()
            .map(|(t, p)| t.to_api(p))
            .collect(),
        keys: keys::list(db, &user.id)
            .await?
            .iter()
            .map(|k| k.to_api())
            .collect(),
        balance: user.balance_micros,
        images: domain::fleet::survey::available(db)
            .await?
            .into_iter()
            .filter(|i| i.app.is_none())
            .map(|i| (i.slug, i.name, i.kind))
            .collect(),
        regions: {
            let mut regions: Vec<(String, String)> = domain::fleet::nodes::list(db)
                .await?
                .into_iter()
                .filter(|n| n.status == "active")
                .map(|n| (n.region, n.kind.as_str().to_owned()))
                .collect();
            regions.sort();
            regions.dedup();
            regions
        },
        pools: pool_choices(db, &user.id).await?,
    })
}

/// Where a new machine goes and what it boots, each empty for the default: the plan's (or
/// template's) image, any region with room, no pool. The form posts them as `placement[image]`…
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub pool: String,
}

/// A key pasted on the create form (posted as `new_key[name]`, `new_key[public_key]`); empty
/// when none was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewKey {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub public_key: String,
}

/// Creates a machine from a plan or a template. `ssh_key_ids` is comma-separated; a pasted
/// `new_key` is added to the account first (or found there) and installed too.
#[server(prefix = "/_fn", endpoint = "create_machine")]
pub async fn create_machine(
    csrf: String,
    name: String,
    source: String,
    ssh_key_ids: String,
    user_data: String,
    #[server(default)] placement: Placement,
    #[server(default)] new_key: NewKey,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances::{self, NewInstance};
    use domain::Actor;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let (plan, template) = match source.split_once(':') {
        Some(("plan", id)) => (Some(id.to_owned()), None),
        Some(("template", slug)) => (None, Some(slug.to_owned())),
        _ => return Err(PortalError::invalid("Choose a plan or a template")),
    };
    let mut ssh_key_ids: Vec<String> = ssh_key_ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !new_key.public_key.trim().is_empty() {
        let key_name = Some(new_key.name.trim())
            .filter(|n| !n.is_empty())
            .unwrap_or("my key");
        let key =
            domain::accounts::keys::add_or_find(&state.db, &user.id, key_name, &new_key.public_key)
                .await?;
        if !ssh_key_ids.contains(&key.id) {
            ssh_key_ids.push(key.id);
        }
    }
    let req = NewInstance {
        name,
        plan,
        template,
        ssh_key_ids,
        user_data: Some(user_data).filter(|u| !u.trim().is_empty()),
        image: Some(placement.image).filter(|i| !i.is_empty()),
        region: Some(placement.region).filter(|r| !r.is_empty()),
        pool_id: Some(placement.pool).filter(|p| !p.is_empty()),
        ..Default::default()
    };
    let created = instances::create(&state, &Actor::user(&user.id), req).await?;
    Ok(created.instance.id)
}

/// `start`, `stop`, `restart` or `delete`.
#[server(prefix = "/_fn", endpoint = "machine_action")]
/// Answers the action it started, so the page can say what happened after it (a deleted
/// machine's page confirms the deletion instead of calling the machine missing).
pub async fn machine_action(
    csrf: String,
    id: String,
    action: String,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances::{self, Action};
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let action = match action.as_str() {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "delete" => Action::Delete,
        _ => return Err(PortalError::invalid("Unknown action")),
    };
    instances::act(&state, &user.id, &id, action).await?;
    Ok(action_name(action))
}

#[cfg(feature = "ssr")]
fn action_name(action: domain::compute::instances::Action) -> String {
    use domain::compute::instances::Action;
    match action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
        Action::Delete => "delete",
    }
    .to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineData {
    pub vps: Vps,
    pub plan: String,
    pub snapshots: Vec<Snapshot>,
    /// On libvirt's test driver: it does not really run.
    pub simulated: bool,
    /// On a node daemon: the file manager works on its volume (running or not), and commands
    /// do not exist there.
    pub volume: bool,
    /// The caller created it (and pays for it).
    pub creator: bool,
    /// The caller may power it, rename it and work its snapshots (`instances::Need::Operate`).
    pub may_operate: bool,
    /// The caller may delete it and take it out of its pool (`instances::Need::Own`).
    pub may_own: bool,
    /// Who pays for it, when that is not the caller (a pool member's machine).
    pub billed_to: Option<String>,
    /// The pools the caller belongs to.
    pub pools: Vec<PoolChoice>,
}

#[server(prefix = "/_fn", endpoint = "machine")]
pub async fn load_machine(id: String) -> Result<MachineData, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    use domain::fleet::{catalog, nodes};
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let inst = instances::get(&state.db, &user.id, &id).await?;
    let may = instances::rights(&state.db, &user.id, &inst).await?;
    let billed_to = if inst.user_id == user.id {
        None
    } else {
        Some(
            domain::accounts::users::get(&state.db, &inst.user_id)
                .await?
                .username,
        )
    };
    let (simulated, volume) = match &inst.node_id {
        Some(node) => {
            let node = nodes::get(&state.db, node).await?;
            (node.simulated(), node.daemon())
        }
        None => (false, false),
    };
    let plan = catalog::plan(&state.db, &inst.plan_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    let snapshots = instances::snapshots(&state.db, &user.id, &id).await?;
    Ok(MachineData {
        vps: inst.to_vps(),
        plan,
        snapshots: snapshots.iter().map(|s| s.to_api()).collect(),
        simulated,
        volume,
        creator: inst.user_id == user.id,
        may_operate: may >= Some(instances::Need::Operate),
        may_own: may == Some(instances::Need::Own),
        billed_to,
        pools: pool_choices(&state.db, &user.id).await?,
    })
}

/// Shares the machine with the pool `pool`, or takes it out of its pool (`pool` empty).
#[server(prefix = "/_fn", endpoint = "share_machine")]
pub async fn share_machine(csrf: String, id: String, pool: String) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let pool = Some(pool.as_str()).filter(|p| !p.is_empty());
    instances::move_to_pool(&state.db, &user.id, &id, pool).await?;
    Ok(match pool {
        Some(_) => "Shared: the pool's members see it now, by their role there.".into(),
        None => "Taken out of its pool: only its creator sees it now.".into(),
    })
}

#[server(prefix = "/_fn", endpoint = "rename_machine")]
pub async fn rename_machine(csrf: String, id: String, name: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(instances::rename(&state.db, &user.id, &id, &name)
        .await
        .map(|_| ())?)
}

/// `create`, `restore` or `delete` the snapshot `name`.
#[server(prefix = "/_fn", endpoint = "snapshot_action")]
pub async fn snapshot_action(
    csrf: String,
    id: String,
    name: String,
    action: String,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(match action.as_str() {
        "create" => {
            instances::snapshot_create(&state, &user.id, &id, &name).await?;
            format!("Taking snapshot “{name}”: it is listed below, and ready in a moment.")
        }
        "restore" => {
            instances::snapshot_restore(&state, &user.id, &id, &name).await?;
            format!("Restoring “{name}”: the machine's disk goes back to it.")
        }
        "delete" => {
            instances::snapshot_delete(&state, &user.id, &id, &name).await?;
            format!("Snapshot “{name}” deleted.")
        }
        _ => return Err(PortalError::invalid("Unknown action")),
    })
}

/// The user's machines as the server last pushed them (`None` until the first message).
/// Subscribes once per page; the browser reconnects by itself if the stream drops.
fn live_machines() -> RwSignal<Option<Vec<Vps>>> {
    let live = RwSignal::new(None::<Vec<Vps>>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::components::events::follow("/events/machines", "message", move |list| {
            live.set(Some(list))
        });
    });
    live
}

/// `initial` (what the server rendered) until the part of the page that calls this has
/// hydrated, then what `live` gives (while it gives something). A push that landed while the
/// page hydrates would otherwise change the DOM under the hydration walk, which then finds a
/// node it did not expect and panics; the effect runs only once this part is hydrated.
/// `settled` turns true then (pass a fresh signal when nothing else needs to know).
fn after_hydration<T: Clone + Send + Sync + 'static>(
    settled: RwSignal<bool>,
    initial: T,
    live: impl Fn() -> Option<T> + Send + Sync + 'static,
) -> Signal<T> {
    Effect::new(move |_| settled.set(true));
    Signal::derive(move || {
        if settled.get() {
            live().unwrap_or_else(|| initial.clone())
        } else {
            initial.clone()
        }
    })
}

/// A state badge; a transition in flight shows as progress, and a machine whose guest is still
/// booting says so (its `progress` in the tooltip), since it is not usable yet.
#[component]
fn StateBadge(vps: Vps) -> impl IntoView {
    let (class, text) = match (vps.transition.as_deref(), vps.state.as_str()) {
        (Some(_), _) if vps.progress.is_some() => ("status status-busy", "booting…".to_owned()),
        (Some("create"), _) => ("status status-busy", "creating…".to_owned()),
        (Some("delete"), _) => ("status status-busy", "deleting…".to_owned()),
        (Some(t), _) => {
            let verb = match t {
                "stop" => "stopping…",
                "start" => "starting…",
                "restart" => "restarting…",
                "snapshot" => "snapshotting…",
                "restore" => "restoring…",
                other => other,
            };
            ("status status-busy", verb.to_owned())
        }
        (None, "running") => ("status status-active", "running".to_owned()),
        (None, "stopped") => ("status status-expired", "stopped".to_owned()),
        (None, "error") => ("status status-error", "error".to_owned()),
        (None, s) => ("status", s.to_owned()),
    };
    let unreachable = vps.unreachable_since.is_some().then(|| view! {
        <span class="status status-error" data-test="machine-unreachable"
            title="Its node does not answer; the state shown is the last one known">"node unreachable"</span>
    });
    view! {
        <span class=class data-test="machine-state" data-state=vps.state.clone() data-transition=vps.transition.clone().unwrap_or_default()
            title=vps.progress.clone()>{text}</span>
        {unreachable}
    }
}

#[component]
pub fn MachinesPage() -> impl IntoView {
    let create = ServerAction::<CreateMachine>::new();
    let data = data::load(move || create.version().get(), |_| load_machines());
    let live = live_machines();
    view! {
        <Title text="Machines"/>
        <RequireUser signed_in=move |_| view! { <Machines create data live/> }/>
    }
}

#[component]
fn Machines(
    create: ServerAction<CreateMachine>,
    data: Data<Result<MachinesData, PortalError>>,
    live: RwSignal<Option<Vec<Vps>>>,
) -> impl IntoView {
    view! {
        <section class="page-head">
            <h1>"Machines"</h1>
            <p class="muted">"On-demand VMs and containers, billed per minute from your balance while they run."</p>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading machines…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                    Ok(d) => {
                        view! {
                            <section class="card">
                                <h2>"Your machines"</h2>
                                <MachineTable initial=d.machines.clone() live pools=d.pools.clone()/>
                            </section>
                            <CreateForm create data=d/>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn MachineTable(
    initial: Vec<Vps>,
    live: RwSignal<Option<Vec<Vps>>>,
    /// To name the pool a machine is shared with.
    pools: Vec<PoolChoice>,
) -> impl IntoView {
    let machines = after_hydration(RwSignal::new(false), initial, move || live.get());
    let pools = StoredValue::new(pools);
    let pool_name = move |id: &Option<String>| {
        let id = id.as_ref()?;
        pools.with_value(|pools| pools.iter().find(|p| &p.id == id).map(|p| p.name.clone()))
    };
    view! {
        <Show when=move || !machines.get().is_empty() fallback=|| view! { <p class="muted" data-test="no-machines">"No machines yet: create one below."</p> }>
            <div class="table-wrap">
                <table class="table" data-test="machine-table">
                    <thead><tr><th>"Name"</th><th>"State"</th><th>"Address"</th><th>"Size"</th><th>"Image"</th><th>"Region"</th><th>"Price"</th></tr></thead>
                    <tbody>
                        <For each=move || machines.get() key=|v| (v.id.clone(), v.state.clone(), v.transition.clone(), v.name.clone(), v.ip.clone(), v.pool_id.clone()) let:vps>
                            <tr data-test="machine-row" data-id=vps.id.clone()>
                                <td data-label="Name"><a href=format!("/machines/{}", vps.id)>{vps.name.clone()}</a>
                                    {pool_name(&vps.pool_id).map(|name| view! {
                                        " "<span class="tag" data-test="machine-pool" title="Shared with this pool">{name}</span>
                                    })}
                                </td>
                                <td data-label="State"><StateBadge vps=vps.clone()/></td>
                                <td data-label="Address" data-test="machine-ip"><code>{vps.ip.clone().unwrap_or_else(|| "—".into())}</code></td>
                                <td data-label="Size">{format!("{} vCPU · {} · {} GiB", vps.vcpu, memory(vps.memory_mb), vps.disk_gb)}</td>
                                <td data-label="Image">{vps.image.clone()}</td>
                                <td data-label="Region">{vps.region.clone()}</td>
                                <td data-label="Price" title="Running price; a stopped machine pays only for its disk and address">{
                                    if vps.state == "stopped" {
                                        format!("${}/h stopped", usd_rate(vps.stopped_hourly.0))
                                    } else {
                                        format!("${}/h", usd4(vps.price_hourly.0))
                                    }
                                }</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </div>
        </Show>
    }
}

#[component]
fn CreateForm(create: ServerAction<CreateMachine>, data: MachinesData) -> impl IntoView {
    let selected_keys = RwSignal::new(Vec::<String>::new());
    let joined = move || selected_keys.get().join(",");
    let created = move || create.value().get().and_then(Result::ok);
    // What the chosen plan or template is: its kind decides the images and regions offered, its
    // prices the estimate. The first plan is what the select shows before any choice.
    let first = data
        .plans
        .first()
        .map(|p| format!("plan:{}", p.id))
        .unwrap_or_default();
    let source = RwSignal::new(first);
    let choice = {
        let plans = data.plans.clone();
        let templates = data.templates.clone();
        Memo::new(move |_| -> Option<(String, bool, i64, i64)> {
            let source = source.get();
            let plan_of = |id: &str| plans.iter().find(|p| p.id == id).cloned();
            let (plan, template) = match source.split_once(':') {
                Some(("plan", id)) => (plan_of(id)?, false),
                Some(("template", slug)) => {
                    let t = templates.iter().find(|t| t.slug == slug)?;
                    (plan_of(&t.plan_id)?, true)
                }
                _ => return None,
            };
            Some((
                plan.kind,
                template,
                plan.price_hourly.0,
                plan.stopped_hourly.0,
            ))
        })
    };
    let kind = Memo::new(move |_| choice.get().map(|c| c.0).unwrap_or_default());
    let from_template = Memo::new(move |_| choice.get().is_some_and(|c| c.1));
    let images = data.images.clone();
    let regions = data.regions.clone();
    let managed: Vec<PoolChoice> = data.pools.iter().filter(|p| p.manages).cloned().collect();
    view! {
        <section class="card">
            <h2>"New machine"</h2>
            <p class="muted">{format!("Your balance: ${}. Creating needs one hour of the price in balance.", usd4(data.balance))}</p>
            <p class="muted" data-test="stopped-pricing">"Each option shows two prices: while the machine runs, and while it is stopped. A stopped machine keeps its disk (and a VM its public IPv4 address) and pays only for those; its CPU and memory go back to the host, so a start can be refused, saying so, when the host has filled up meanwhile."</p>
            <ActionForm action=create attr:class="form" attr:data-test="create-machine-form">
                <CsrfField/>
                <label>"Name"
                    <input type="text" name="name" required maxlength="63" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" title="Up to 63 letters, digits, dots, _ and -, starting with a letter or digit" placeholder="web-01"/>
                </label>
                <fieldset class="choices" data-test="machine-source">
                    <legend>"Size: a plan, with its default image"</legend>
                    <div class="choice-grid">
                        {data.plans.iter().enumerate().map(|(i, p)| {
                            let value = format!("plan:{}", p.id);
                            let pick = value.clone();
                            view! {
                                <label class="choice" data-test="source-card" data-name=p.name.clone() data-kind=p.kind.clone()>
                                    <input type="radio" name="source" value=value required checked=i == 0
                                        on:change=move |_| source.set(pick.clone())/>
                                    <span class="choice-head"><strong>{p.name.clone()}</strong>
                                        <span class="tag">{if p.kind == "vm" { "VM" } else { "container" }}</span></span>
                                    <span class="choice-spec">{format!("{} vCPU · {} · {} GiB", p.vcpu, memory(p.memory_mb), p.disk_gb)}</span>
                                    <span class="choice-price" data-test="source-price">
                                        <strong>{format!("${}/h", usd4(p.price_hourly.0))}</strong>
                                        {format!(" · about {}/mo", crate::components::format::money(p.price_hourly.0 * 730))}
                                    </span>
                                    <small class="muted" data-test="source-stopped">{format!("${}/h stopped", usd_rate(p.stopped_hourly.0))}</small>
                                </label>
                            }
                        }).collect_view()}
                    </div>
                </fieldset>
                {(!data.templates.is_empty()).then(|| view! {
                    <fieldset class="choices" data-test="machine-apps">
                        <legend>"Or an app, ready to run (its own image and size)"</legend>
                        <div class="choice-grid">
                            {data.templates.iter().map(|t| {
                                let value = format!("template:{}", t.slug);
                                let pick = value.clone();
                                let plan = data.plans.iter().find(|p| p.id == t.plan_id);
                                let price = plan.map(|p| format!("${}/h", usd4(p.price_hourly.0))).unwrap_or_default();
                                let month = plan.map(|p| format!(" · about {}/mo", crate::components::format::money(p.price_hourly.0 * 730))).unwrap_or_default();
                                let stopped = plan.map(|p| format!("${}/h stopped", usd_rate(p.stopped_hourly.0))).unwrap_or_default();
                                view! {
                                    <label class="choice" data-test="source-card" data-name=t.name.clone() data-kind="template">
                                        <input type="radio" name="source" value=value required
                                            on:change=move |_| source.set(pick.clone())/>
                                        <span class="choice-head"><strong>{t.name.clone()}</strong><span class="tag">"app"</span></span>
                                        <span class="choice-spec">{format!("{} · {} vCPU · {} · {} GiB", t.image, t.vcpu, memory(t.memory_mb), t.disk_gb)}</span>
                                        <span class="choice-price" data-test="source-price"><strong>{price}</strong>{month}</span>
                                        <small class="muted" data-test="source-stopped">{stopped}</small>
                                    </label>
                                }
                            }).collect_view()}
                        </div>
                    </fieldset>
                })}
                <div class="form-row">
                    <label>"Image"
                        <select name="placement[image]" data-test="machine-image" prop:disabled=move || from_template.get()>
                            <option value="">{move || if from_template.get() { "The template's own" } else { "The plan's default" }}</option>
                            {move || {
                                let kind = kind.get();
                                images.iter().filter(|i| i.2 == kind).map(|(slug, name, _)| view! {
                                    <option value=slug.clone()>{name.clone()}</option>
                                }).collect_view()
                            }}
                        </select>
                    </label>
                    <label>"Region"
                        <select name="placement[region]" data-test="machine-region">
                            <option value="">"Any region with room"</option>
                            {move || {
                                let kind = kind.get();
                                regions.iter().filter(|r| r.1 == kind).map(|(region, _)| view! {
                                    <option value=region.clone()>{region.clone()}</option>
                                }).collect_view()
                            }}
                        </select>
                    </label>
                </div>
                {(!managed.is_empty()).then(|| view! {
                    <label>"Share with a pool"
                        <select name="placement[pool]" data-test="machine-pool-choice">
                            <option value="">"No pool: only you"</option>
                            {managed.iter().map(|p| view! { <option value=p.id.clone()>{p.name.clone()}</option> }).collect_view()}
                        </select>
                        <small class="muted">"Its members see and use it by their role there; you pay for it either way."</small>
                    </label>
                })}
                <p class="estimate" data-test="machine-estimate">
                    {move || choice.get().map(|(_, _, hourly, stopped)| format!(
                        "${}/hour while it runs, about {} a month (730 hours); ${}/hour while stopped. Charged by the minute.",
                        usd4(hourly),
                        crate::components::format::money(hourly * 730),
                        usd_rate(stopped),
                    ))}
                </p>
                <fieldset class="keys">
                    <legend>"SSH keys"</legend>
                    {if data.keys.is_empty() {
                        view! { <p class="muted" data-test="no-keys-yet">"You have no SSH keys yet: paste your public key below to log in to this machine as root (it is saved to your account for the next ones), or skip it and use the browser console."</p> }.into_any()
                    } else {
                        data.keys.iter().map(|k| {
                            let id = k.id.clone();
                            let id2 = k.id.clone();
                            view! {
                                <label class="check">
                                    <input type="checkbox"
                                        prop:checked=move || selected_keys.get().contains(&id)
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            selected_keys.update(|s| {
                                                s.retain(|x| x != &id2);
                                                if on { s.push(id2.clone()); }
                                            });
                                        }/>
                                    {format!("{} ({})", k.name, k.fingerprint)}
                                </label>
                            }
                        }).collect_view().into_any()
                    }}
                    <input type="hidden" name="ssh_key_ids" prop:value=joined/>
                    <details class="new-key" data-test="new-key" open=data.keys.is_empty()>
                        <summary>{if data.keys.is_empty() { "Add a key" } else { "Add another key" }}</summary>
                        <label>"Name" <input type="text" name="new_key[name]" maxlength="64" placeholder="laptop"/></label>
                        <label>"Public key"
                            <textarea name="new_key[public_key]" rows="2" placeholder="ssh-ed25519 AAAA… you@laptop"></textarea>
                            <small class="muted">"The one line of your "<code>"~/.ssh/id_ed25519.pub"</code>" (make one with "<code>"ssh-keygen -t ed25519"</code>")."</small>
                        </label>
                    </details>
                </fieldset>
                <label>"User data (cloud-init, optional)"
                    <textarea name="user_data" rows="3" placeholder="#cloud-config"></textarea>
                </label>
                <SubmitButton action=create label="Create machine" busy_label="Creating…"/>
            </ActionForm>
            <ActionError action=create/>
            {move || created().map(|id| view! {
                <p class="alert alert-ok" data-test="machine-created">"Provisioning started. " <a href=format!("/machines/{id}")>"Open it"</a></p>
            })}
        </section>
    }
}

#[component]
pub fn MachinePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let power = ServerAction::<MachineAction>::new();
    let rename = ServerAction::<RenameMachine>::new();
    let snap = ServerAction::<SnapshotAction>::new();
    let share = ServerAction::<ShareMachine>::new();
    let live = live_machines();
    let settled = RwSignal::new(false);
    // Loaded once per machine: what changes afterwards arrives without reloading the page (the
    // state by push, snapshots by their own reads). Reloading this resource would re-run the
    // Suspend below, dispose what it made while its old view still reacts to pushes, and close
    // an open console.
    let data = data::load(id, load_machine);
    view! {
        <Title text="Machine"/>
        <RequireUser signed_in=move |_| view! { <Machine data live settled actions=Actions { power, rename, snap, share }/> }/>
    }
}

/// What a machine's page can ask of the server.
#[derive(Clone, Copy)]
struct Actions {
    power: ServerAction<MachineAction>,
    rename: ServerAction<RenameMachine>,
    snap: ServerAction<SnapshotAction>,
    share: ServerAction<ShareMachine>,
}

#[component]
fn Machine(
    data: Data<Result<MachineData, PortalError>>,
    live: RwSignal<Option<Vec<Vps>>>,
    /// Set once the details have hydrated.
    settled: RwSignal<bool>,
    actions: Actions,
) -> impl IntoView {
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => { answer_status(&e); view! {
                        <section class="card"><p class="alert alert-error" data-test="machine-missing">
                            {if error_message(&e).contains("not found") { "This machine does not exist (any more): it was deleted, or it is not yours.".to_owned() } else { error_message(&e) }}
                        </p>
                        <p><a href="/machines">"Back to your machines"</a></p></section>
                    }.into_any() }
                    Ok(d) => {
                        view! { <MachineDetail d live settled actions/> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// A machine's page: its state, then power and facts, snapshots, and settings.
#[component]
fn MachineDetail(
    d: MachineData,
    live: RwSignal<Option<Vec<Vps>>>,
    settled: RwSignal<bool>,
    actions: Actions,
) -> impl IntoView {
    let Actions {
        power,
        rename,
        snap,
        share,
    } = actions;
    // Made here, not in the Suspend that renders this: a signal made in the Suspend's future is
    // disposed with it while this view and its effects live on.
    let id = d.vps.id.clone();
    let vps = after_hydration(settled, d.vps.clone(), move || {
        live.get().and_then(|l| l.into_iter().find(|v| v.id == id))
    });
    let busy = Signal::derive(move || vps.get().transition.is_some() || power.pending().get());
    let running = Signal::derive(move || vps.get().state == "running");
    // The deletion has finished: the pushed list no longer has it.
    let gone = {
        let id = d.vps.id.clone();
        Signal::derive(move || {
            settled.get()
                && live.with(|l| l.as_ref().is_some_and(|l| !l.iter().any(|v| v.id == id)))
        })
    };
    view! {
        {move || gone.get().then(|| view! {
            <section class="card">
                {if d.creator {
                    view! { <p class="alert alert-ok" role="status" data-test="machine-deleted">"The machine was deleted, with its disk and snapshots. Billing for it has stopped."</p> }.into_any()
                } else {
                    view! { <p class="alert alert-ok" role="status" data-test="machine-deleted">"This machine is no longer shared with you: it was deleted, or taken out of its pool."</p> }.into_any()
                }}
                <p><a class="btn" href="/machines">"Back to your machines"</a></p>
            </section>
        })}
        <div class="machine-detail" hidden=gone>
        <section class="page-head">
            <p><a href="/machines">"← Machines"</a></p>
            <h1 data-test="machine-name">{move || vps.get().name}</h1>
            <p><StateBadgeLive vps/></p>
            {move || vps.get().reason.map(|r| view! { <p class="alert alert-error multiline" data-test="machine-reason">{r}</p> })}
            {move || vps.get().progress.map(|p| view! { <p class="muted" role="status" data-test="machine-progress">{p}</p> })}
            {move || vps.get().unreachable_since.map(|since| view! {
                <p class="alert alert-warn" data-test="machine-unreachable-note">
                    {format!("The node this machine runs on has not answered since {}. Its state above is the last one known; actions wait until the node is back, and nothing on it is lost.", when(&since))}
                </p>
            })}
            {(!d.vps.ports.is_empty()).then(|| view! {
                <p class="muted" data-test="machine-ports">"Reachable at "<code>{d.vps.ports.join(", ")}</code></p>
            })}
            {d.simulated.then(|| view! {
                <p class="alert alert-warn" data-test="machine-simulated">"Simulated machine: this node is libvirt's test driver (the demo when the host has no usable hypervisor). Its state changes are real records, but nothing boots and nothing can be reached."</p>
            })}
        </section>
        {if d.vps.state == "error" {
            // A machine that failed has nothing to power, reach or snapshot: the page offers
            // what works — reading why (above) and deleting it — and says what to do next.
            view! {
                <section class="card" data-test="machine-failed">
                    <h2>"This machine failed"</h2>
                    <p>"It is not running and cannot be started; it holds no resources and is not billed. Delete it below, then make a new one — if it failed while being made, a new one usually works; if it fails again, the reason above is what to tell your provider."</p>
                    <p><a class="btn" href="/machines#new">"Make a new machine"</a></p>
                </section>
            }.into_any()
        } else {
            view! {
        <PowerCard id=d.vps.id.clone() plan=d.plan vps power busy simulated=d.simulated may_operate=d.may_operate/>
        {if d.simulated {
            view! {
                <section class="card">
                    <h2>"Commands and files"</h2>
                    <p class="muted">"A simulated machine has nothing inside to run commands in. Real VMs and containers have a Run a command card and Files here."</p>
                </section>
            }.into_any()
        } else if d.volume {
            view! {
                <super::console::ConsoleCard id=d.vps.id.clone() vm=false app=true/>
                <super::usage::LazyUsageCard id=d.vps.id.clone() running settled/>
                // Its listing is the browser's own: hydrating the card against the server's
                // render failed now and then (a marker expected where the server had put an
                // element) when the page opened while the machine was being created.
                <super::volume::LazyFileManager id=d.vps.id.clone() state=Signal::derive(move || vps.get().state) settled/>
            }.into_any()
        } else {
            view! {
                <super::console::ConsoleCard id=d.vps.id.clone() vm={d.vps.kind == "vm"}/>
                <super::usage::LazyUsageCard id=d.vps.id.clone() running settled/>
                <super::inside::LazyInsideCards id=d.vps.id.clone() settled/>
            }.into_any()
        }}
        {if d.volume {
            view! {
                <section class="card" data-test="no-snapshots">
                    <h2>"Snapshots"</h2>
                    <p class="muted">"Machines on this node keep their data in their volume: use Pack this folder… under Files for a backup you can download and unpack later."</p>
                </section>
            }.into_any()
        } else {
            view! { <SnapshotsCard id=d.vps.id.clone() snapshots=d.snapshots vps snap busy may_operate=d.may_operate/> }.into_any()
        }}
        <SharingCard id=d.vps.id.clone() vps creator=d.creator may_own=d.may_own billed_to=d.billed_to pools=d.pools share/>
            }.into_any()
        }}
        {(d.may_operate || d.may_own).then(|| view! {
            <SettingsCard id=d.vps.id name=d.vps.name vps power rename may_operate=d.may_operate may_own=d.may_own/>
        })}
        </div>
    }
}

/// Start, stop and restart (each enabled only in the state it applies to), and the facts.
#[component]
fn PowerCard(
    id: String,
    plan: String,
    vps: Signal<Vps>,
    power: ServerAction<MachineAction>,
    busy: Signal<bool>,
    /// On libvirt's test driver: nothing listens at its address.
    simulated: bool,
    /// A pool `user` sees the buttons, disabled, with the reason.
    may_operate: bool,
) -> impl IntoView {
    let power_button = move |action: &'static str,
                             label: &'static str,
                             enabled: fn(&str) -> bool| {
        let id = id.clone();
        view! {
            <ActionForm action=power attr:class="inline-form">
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="action" value=action/>
                <button type="submit" class="btn" data-test=format!("power-{action}")
                    disabled=move || !may_operate || busy.get() || !enabled(&vps.get().state)>{label}</button>
            </ActionForm>
        }
    };
    view! {
        <section class="card">
            <h2>"Power"</h2>
            <div class="actions">
                {power_button("start", "Start", |s| s == "stopped")}
                {power_button("stop", "Stop", |s| s == "running")}
                {power_button("restart", "Restart", |s| s == "running")}
            </div>
            {(!may_operate).then(|| view! {
                <p class="muted" data-test="power-not-allowed">"Your role in this machine's pool lets you use it (console, commands, files), not power it: ask the pool's owner or an admin."</p>
            })}
            <ActionError action=power/>
            <dl class="facts">
                <dt>"Address"</dt><dd data-test="machine-address">{move || match vps.get().ip {
                    // The SSH line only where an SSH server answers: a real VM (containers
                    // have none; a simulated machine has nothing at all), with a word on reach
                    // when the address is private (the node's own network).
                    Some(ip) if vps.get().kind == "vm" && !simulated => {
                        let private = is_private(&ip);
                        view! {
                            <code>{ip.clone()}</code>" · "<code data-test="ssh-line">{format!("ssh root@{ip}")}</code>
                            {private.then(|| view! { <small class="muted">" (a private address: reachable from the node's network)"</small> })}
                        }.into_any()
                    }
                    Some(ip) => view! { <code>{ip.clone()}</code> }.into_any(),
                    None => view! { <span class="muted">"assigned when it starts"</span> }.into_any(),
                }}</dd>
                <dt>"Plan"</dt><dd>{plan}</dd>
                <dt>"Size"</dt><dd data-test="machine-size">{move || {
                    let v = vps.get();
                    let used = v
                        .disk_used_bytes
                        .map(|b| format!(" ({} used)", crate::components::format::bytes(b.max(0) as u64)))
                        .unwrap_or_default();
                    format!("{} vCPU · {} RAM · {} GiB disk{used}", v.vcpu, memory(v.memory_mb), v.disk_gb)
                }}</dd>
                <dt>"Image"</dt><dd>{move || vps.get().image}</dd>
                <dt>"Kind"</dt><dd>{move || vps.get().kind}</dd>
                <dt>"Region"</dt><dd>{move || vps.get().region}</dd>
                <dt>"Price"</dt><dd data-test="machine-price">{move || {
                    let v = vps.get();
                    let kept = if v.kind == "vm" && v.ip.is_some() { "its disk and public address" } else { "its disk" };
                    format!(
                        "${}/hour while running, ${}/hour while stopped ({kept}), charged per minute",
                        usd4(v.price_hourly.0),
                        usd_rate(v.stopped_hourly.0)
                    )
                }}</dd>
                <dt>"Created"</dt><dd>{move || when(&vps.get().created_at)}</dd>
                {move || vps.get().expires_at.map(|e| view! { <dt>"Deleted at"</dt><dd>{when(&e)}" (time-to-live)"</dd> })}
            </dl>
        </section>
    }
}

/// A machine's snapshots, read again on their own (not with the page).
#[server(prefix = "/_fn", endpoint = "machine_snapshots")]
pub async fn machine_snapshots(id: String) -> Result<Vec<Snapshot>, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    Ok(instances::snapshots(&state.db, &user.id, &id)
        .await?
        .iter()
        .map(|s| s.to_api())
        .collect())
}

/// Take a snapshot; list them with restore (only while stopped) and delete. The list starts as
/// the server rendered it and is read again after each snapshot action, and every second while
/// something is in flight (a snapshot being made, or any action on the machine), so a snapshot
/// shows `ready` when its job is done however its pushes arrive.
#[component]
fn SnapshotsCard(
    id: String,
    snapshots: Vec<Snapshot>,
    vps: Signal<Vps>,
    snap: ServerAction<SnapshotAction>,
    busy: Signal<bool>,
    /// Taking, restoring and deleting snapshots; without it the list is read-only.
    may_operate: bool,
) -> impl IntoView {
    let list = RwSignal::new(snapshots);
    #[cfg(feature = "hydrate")]
    {
        let id = id.clone();
        let reads = RwSignal::new(0u32);
        // A read after each action, and one a second later while anything is in flight.
        Effect::new(move |_| {
            snap.version().get();
            reads.get();
            let id = id.clone();
            // The page may be gone by the time an await returns (the person left): every
            // signal is touched with `try_`, which finds a disposed one and stops here instead
            // of panicking on the page they went to.
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = machine_snapshots(id).await {
                    if list.try_set(fresh).is_some() {
                        return;
                    }
                }
                let in_flight = vps
                    .try_with_untracked(|v| v.transition.is_some())
                    .unwrap_or(false)
                    || list
                        .try_with_untracked(|l| l.iter().any(|s| s.state == "creating"))
                        .unwrap_or(false);
                if in_flight {
                    gloo_timers_sleep(1000).await;
                    reads.try_update(|n| *n += 1);
                }
            });
        });
    }
    let snapshot_form =
        move |value: String, name: String, action: &'static str, button: AnyView| {
            view! {
                <ActionForm action=snap attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="id" value=value/>
                    <input type="hidden" name="name" value=name/>
                    <input type="hidden" name="action" value=action/>
                    {button}
                </ActionForm>
            }
        };
    let table = {
        let id = id.clone();
        move || {
            let snapshots = list.get();
            if snapshots.is_empty() {
                return view! { <p class="muted" data-test="no-snapshots">"No snapshots."</p> }
                    .into_any();
            }
            let id = id.clone();
            view! {
                <table class="table" data-test="snapshot-table">
                    <thead><tr><th>"Name"</th><th>"State"</th><th>"Taken"</th><th></th></tr></thead>
                    <tbody>
                        {snapshots.into_iter().map(|s| {
                            // Restoring replaces the disk: the button opens a question first (a
                            // `details`, so it asks without JavaScript too).
                            let restore = view! {
                                <details class="confirm" data-test="restore-confirm">
                                    <summary class="btn btn-sm" title="The machine must be stopped">"Restore…"</summary>
                                    <p>{format!("Replace this machine's disk with “{}”? What was written since is lost.", s.name)}</p>
                                    <button type="submit" class="btn btn-danger btn-sm" data-test="restore-snapshot"
                                        disabled=move || busy.get() || vps.get().state != "stopped">"Replace the disk"</button>
                                </details>
                            }.into_any();
                            let delete = view! { <button type="submit" class="btn btn-danger btn-sm">"Delete"</button> }.into_any();
                            view! {
                                <tr data-test="snapshot-row" data-state=s.state.clone()>
                                    <td data-label="Name">{s.name.clone()}</td>
                                    <td data-label="State" data-test="snapshot-state">{s.state.clone()}{s.reason.clone().map(|r| view! { <span class="muted" data-test="snapshot-reason">{format!(": {r}")}</span> })}</td>
                                    <td data-label="Taken">{when(&s.created_at)}</td>
                                    <td class="actions">
                                        {may_operate.then(|| view! {
                                            {snapshot_form(id.clone(), s.name.clone(), "restore", restore)}
                                            {snapshot_form(id.clone(), s.name.clone(), "delete", delete)}
                                        })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }
    };
    view! {
        <section class="card">
            <h2>"Snapshots"</h2>
            {may_operate.then(|| view! {
                <ActionForm action=snap attr:class="form form-row" attr:data-test="snapshot-form">
                    <CsrfField/>
                    <input type="hidden" name="id" value=id.clone()/>
                    <input type="hidden" name="action" value="create"/>
                    <label>"Name" <input type="text" name="name" required maxlength="63" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]*" title="Up to 63 letters, digits, dots, _ and -, starting with a letter or digit" placeholder="before-upgrade"/></label>
                    <button type="submit" class="btn" disabled=move || busy.get() || snap.pending().get()>"Take snapshot"</button>
                </ActionForm>
            })}
            <ActionError action=snap/>
            {move || snap.value().get().and_then(Result::ok).map(|done| view! {
                <p class="alert alert-ok" role="status" data-test="snapshot-done">{done}</p>
            })}
            <div>{table}</div>
        </section>
    }
}

/// Waits `ms` in the browser.
#[cfg(feature = "hydrate")]
async fn gloo_timers_sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = web_sys::window()
            .expect("a window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Rename, and a delete that needs a ticked confirmation.
#[component]
fn SettingsCard(
    id: String,
    name: String,
    vps: Signal<Vps>,
    power: ServerAction<MachineAction>,
    rename: ServerAction<RenameMachine>,
    may_operate: bool,
    may_own: bool,
) -> impl IntoView {
    let confirm_delete = RwSignal::new(false);
    let delete_sent = RwSignal::new(false);
    let deleted = move || delete_sent.get() && power.value().get().is_some_and(|r| r.is_ok());
    let rename_id = id.clone();
    view! {
        <section class="card">
            <h2>"Settings"</h2>
            {may_operate.then(|| view! {
                <ActionForm action=rename attr:class="form form-row">
                    <CsrfField/>
                    <input type="hidden" name="id" value=rename_id/>
                    <label>"Name" <input type="text" name="name" required maxlength="63" value=name/></label>
                    <SubmitButton action=rename label="Rename" busy_label="Saving…" keep=true/>
                </ActionForm>
                <ActionError action=rename/>
            })}
            {may_own.then(|| view! {
            <h3>"Delete"</h3>
            <p class="muted">"Deleting removes the machine, its disk and its snapshots. It cannot be undone."</p>
            <label class="check"><input type="checkbox" data-test="confirm-delete" prop:checked=move || confirm_delete.get()
                on:change=move |ev| confirm_delete.set(event_target_checked(&ev))/>"I understand, delete this machine"</label>
            <ActionForm action=power attr:class="inline-form">
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="action" value="delete"/>
                <button type="submit" class="btn btn-danger" data-test="power-delete" on:click=move |_| delete_sent.set(true)
                    disabled=move || !confirm_delete.get() || vps.get().transition.as_deref() == Some("delete")>"Delete machine"</button>
            </ActionForm>
            {move || deleted().then(|| view! { <p class="alert alert-ok" data-test="machine-deleting">"Deleting… it disappears from your machines when the node has removed it."</p> })}
            })}
        </section>
    }
}

/// Which pool the machine is shared with and who pays for it; its creator shares it with a pool
/// they manage or takes it out, and the pool's owner may take it out.
#[component]
fn SharingCard(
    id: String,
    vps: Signal<Vps>,
    creator: bool,
    may_own: bool,
    billed_to: Option<String>,
    pools: Vec<PoolChoice>,
    share: ServerAction<ShareMachine>,
) -> impl IntoView {
    let names = pools.clone();
    let pool_name = move || {
        let id = vps.get().pool_id?;
        Some(
            names
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "a pool".into()),
        )
    };
    let managed: Vec<PoolChoice> = pools.into_iter().filter(|p| p.manages).collect();
    let choose = creator && !managed.is_empty();
    let nothing_to_choose = creator && managed.is_empty();
    let take_out = !creator && may_own;
    let out_id = id.clone();
    view! {
        <section class="card" data-test="sharing-card">
            <h2>"Sharing"</h2>
            <p data-test="machine-shared">{move || match (pool_name(), &billed_to) {
                (Some(pool), Some(payer)) => format!("Shared with the pool {pool}. {payer} created it and pays for it."),
                (Some(pool), None) => format!("Shared with the pool {pool}: its members see and use it by their role there (users use it; admins also power it and take snapshots; the pool's owner may also delete it). You pay for it."),
                (None, _) => "Not shared: only you see it.".into(),
            }}</p>
            {choose.then(|| view! {
                <ActionForm action=share attr:class="form form-row" attr:data-test="share-form">
                    <CsrfField/>
                    <input type="hidden" name="id" value=id.clone()/>
                    <label>"Pool"
                        <select name="pool" data-test="share-pool">
                            <option value="" selected=move || vps.get().pool_id.is_none()>"No pool: only you"</option>
                            {managed.iter().map(|p| {
                                let pid = p.id.clone();
                                view! { <option value=p.id.clone() selected=move || vps.get().pool_id.as_deref() == Some(pid.as_str())>{p.name.clone()}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <SubmitButton action=share label="Save" busy_label="Saving…" keep=true/>
                </ActionForm>
            })}
            {nothing_to_choose.then(|| view! {
                <p class="muted">"To share it with a team, create a pool (or be made an admin of one) under " <a href="/pools">"Pools"</a>"."</p>
            })}
            {take_out.then(|| view! {
                <ActionForm action=share attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="id" value=out_id/>
                    <input type="hidden" name="pool" value=""/>
                    <SubmitButton action=share label="Take it out of the pool" busy_label="Saving…"/>
                </ActionForm>
            })}
            <ActionError action=share/>
            {move || share.value().get().and_then(Result::ok).map(|done| view! {
                <p class="alert alert-ok" role="status" data-test="share-done">{done}</p>
            })}
        </section>
    }
}

#[component]
fn StateBadgeLive(vps: Signal<Vps>) -> impl IntoView {
    move || view! { <StateBadge vps=vps.get()/> }
}

// ---- SSH keys ---------------------------------------------------------------------------------

#[server(prefix = "/_fn", endpoint = "ssh_keys")]
pub async fn load_keys() -> Result<Vec<SshKey>, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::keys;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    Ok(keys::list(&state.db, &user.id)
        .await?
        .iter()
        .map(|k| k.to_api())
        .collect())
}

#[server(prefix = "/_fn", endpoint = "add_ssh_key")]
pub async fn add_ssh_key(
    csrf: String,
    name: String,
    public_key: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::keys;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(keys::add(&state.db, &user.id, &name, &public_key)
        .await
        .map(|_| ())?)
}

#[server(prefix = "/_fn", endpoint = "delete_ssh_key")]
pub async fn delete_ssh_key(csrf: String, id: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::keys;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(keys::delete(&state.db, &user.id, &id).await?)
}

#[component]
pub fn KeysPage() -> impl IntoView {
    let add = ServerAction::<AddSshKey>::new();
    let remove = ServerAction::<DeleteSshKey>::new();
    let data = data::load(
        move || (add.version().get(), remove.version().get()),
        |_| load_keys(),
    );
    view! {
        <Title text="SSH keys"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head">
                <h1>"SSH keys"</h1>
                <p class="muted">"Keys you pick when creating a machine are installed for root at first boot."</p>
            </section>
            <section class="card">
                <h2>"Add a key"</h2>
                <ActionForm action=add attr:class="form" attr:data-test="add-key-form">
                    <CsrfField/>
                    <label>"Name" <input type="text" name="name" required maxlength="64" placeholder="laptop"/></label>
                    <label>"Public key" <textarea name="public_key" rows="3" required placeholder="ssh-ed25519 AAAA… you@laptop"></textarea></label>
                    <SubmitButton action=add label="Add key" busy_label="Adding…"/>
                </ActionForm>
                <ActionError action=add/>
            </section>
            <Transition fallback=|| view! { <p class="muted">"Loading keys…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(keys) if keys.is_empty() => view! { <section class="card"><p class="muted" data-test="no-keys">"No keys yet."</p></section> }.into_any(),
                        Ok(keys) => view! {
                            <section class="card">
                                <h2>"Your keys"</h2>
                                <ActionError action=remove/>
                                <table class="table" data-test="key-table">
                                    <thead><tr><th>"Name"</th><th>"Fingerprint"</th><th>"Added"</th><th></th></tr></thead>
                                    <tbody>
                                        {keys.into_iter().map(|k| view! {
                                            <tr data-test="key-row">
                                                <td data-label="Name">{k.name.clone()}</td>
                                                <td data-label="Fingerprint"><code>{k.fingerprint.clone()}</code></td>
                                                <td data-label="Added">{when(&k.created_at)}</td>
                                                <td>
                                                    <ActionForm action=remove attr:class="inline-form">
                                                        <CsrfField/>
                                                        <input type="hidden" name="id" value=k.id.clone()/>
                                                        <button type="submit" class="btn btn-danger btn-sm">"Delete"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </section>
                        }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

/// Whether `ip` is an IPv4 private or loopback address (RFC 1918, 127/8).
fn is_private(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.is_private() || a.is_loopback())
}
