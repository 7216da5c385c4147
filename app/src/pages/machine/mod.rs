//! A machine's page: its live state, then cards for power and facts (`power`), snapshots,
//! settings, sharing, its console and screen (`console`), usage charts (`usage`), commands and
//! files inside it (`inside`, `volume`). Each card is a file; this one loads the machine and lays
//! the cards out.

mod console;
mod inside;
mod power;
mod settings;
mod sharing;
mod snapshots;
mod usage;
mod volume;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::machines::pool_choices;
use super::machines::{live_machines, PoolChoice, StateBadgeLive};
use crate::components::data::{self, Data};
use crate::components::events::after_hydration;
use crate::components::format::when;
use crate::components::forms::{answer_status, error_message};
use crate::components::guard::RequireUser;
use crate::error::PortalError;
use model::compute::{Kind, Snapshot, Vps, VpsState};
use power::PowerCard;
use settings::{RenameMachine, SettingsCard};
use sharing::{ShareMachine, SharingCard};
use snapshots::{SnapshotAction, SnapshotsCard};

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
    let running = Signal::derive(move || vps.get().state == VpsState::Running);
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
        {if d.vps.state == VpsState::Error {
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
                <console::ConsoleCard id=d.vps.id.clone() vm=false app=true/>
                <usage::LazyUsageCard id=d.vps.id.clone() running settled/>
                // Its listing is the browser's own: hydrating the card against the server's
                // render failed now and then (a marker expected where the server had put an
                // element) when the page opened while the machine was being created.
                <volume::LazyFileManager id=d.vps.id.clone() state=Signal::derive(move || vps.get().state) settled/>
            }.into_any()
        } else {
            view! {
                <console::ConsoleCard id=d.vps.id.clone() vm={d.vps.kind == Kind::Vm}/>
                <usage::LazyUsageCard id=d.vps.id.clone() running settled/>
                <inside::LazyInsideCards id=d.vps.id.clone() settled/>
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
