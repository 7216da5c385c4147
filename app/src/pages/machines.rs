//! Machines (on-demand VPS and containers): the list with live state and the create form. A
//! machine's own page is `pages::machine`, the SSH keys page `pages::keys`.
//!
//! Live state: the browser subscribes to `/events/machines` (Server-Sent Events, sent by the
//! server whenever one of the user's machines changes) and re-renders from each message; the
//! server-rendered page shows the state as it was when the page was made.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::data::{self, Data};
use crate::components::format::memory;
use crate::components::forms::{ActionError, CsrfField, LoadFailed, SubmitButton};
use crate::components::guard::RequireUser;
use crate::error::PortalError;
use model::compute::{Plan, SshKey, Template, Transition, Vps, VpsState};
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
pub(super) async fn pool_choices(
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
                .filter(|n| n.status == model::compute::NodeStatus::Active)
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

/// The user's machines as the server last pushed them (`None` until the first message).
/// Subscribes once per page; the browser reconnects by itself if the stream drops.
pub(super) fn live_machines() -> RwSignal<Option<Vec<Vps>>> {
    let live = RwSignal::new(None::<Vec<Vps>>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::components::events::follow("/events/machines", "message", move |list| {
            live.set(Some(list))
        });
    });
    live
}

/// A state badge; a transition in flight shows as progress, and a machine whose guest is still
/// booting says so (its `progress` in the tooltip), since it is not usable yet.
#[component]
fn StateBadge(vps: Vps) -> impl IntoView {
    let (class, text) = match (vps.transition, vps.state) {
        (Some(_), _) if vps.progress.is_some() => ("status status-busy", "booting…"),
        (Some(t), _) => {
            let verb = match t {
                Transition::Create => "creating…",
                Transition::Delete => "deleting…",
                Transition::Stop => "stopping…",
                Transition::Start => "starting…",
                Transition::Restart => "restarting…",
                Transition::Snapshot => "snapshotting…",
                Transition::Restore => "restoring…",
            };
            ("status status-busy", verb)
        }
        (None, VpsState::Running) => ("status status-active", "running"),
        (None, VpsState::Stopped) => ("status status-expired", "stopped"),
        (None, VpsState::Error) => ("status status-error", "error"),
        (None, s) => ("status", s.as_str()),
    };
    let unreachable = vps.unreachable_since.is_some().then(|| view! {
        <span class="status status-error" data-test="machine-unreachable"
            title="Its node does not answer; the state shown is the last one known">"node unreachable"</span>
    });
    view! {
        <span class=class data-test="machine-state" data-state=vps.state.as_str() data-transition=vps.transition.map(Transition::as_str).unwrap_or_default()
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
    let machines =
        crate::components::events::after_hydration(RwSignal::new(false), initial, move || {
            live.get()
        });
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
                        <For each=move || machines.get() key=|v| (v.id.clone(), v.state, v.transition, v.name.clone(), v.ip.clone(), v.pool_id.clone()) let:vps>
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
                                    if vps.state == VpsState::Stopped {
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
                plan.kind.as_str().to_owned(),
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
                                <label class="choice" data-test="source-card" data-name=p.name.clone() data-kind=p.kind.as_str()>
                                    <input type="radio" name="source" value=value required checked=i == 0
                                        on:change=move |_| source.set(pick.clone())/>
                                    <span class="choice-head"><strong>{p.name.clone()}</strong>
                                        <span class="tag">{p.kind.label()}</span></span>
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
pub(super) fn StateBadgeLive(vps: Signal<Vps>) -> impl IntoView {
    move || view! { <StateBadge vps=vps.get()/> }
}
