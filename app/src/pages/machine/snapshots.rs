//! Snapshots: take one, restore (only while stopped), delete.

use leptos::prelude::*;

use crate::components::format::when;
use crate::components::forms::{ActionError, CsrfField};
use crate::error::PortalError;
use model::compute::{Snapshot, Vps, VpsState};

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
pub(super) fn SnapshotsCard(
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
                        .try_with_untracked(|l| {
                            l.iter()
                                .any(|s| s.state == model::compute::SnapshotState::Creating)
                        })
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
                                        disabled=move || busy.get() || vps.get().state != VpsState::Stopped>"Replace the disk"</button>
                                </details>
                            }.into_any();
                            let delete = view! { <button type="submit" class="btn btn-danger btn-sm">"Delete"</button> }.into_any();
                            view! {
                                <tr data-test="snapshot-row" data-state=s.state.as_str()>
                                    <td data-label="Name">{s.name.clone()}</td>
                                    <td data-label="State" data-test="snapshot-state">{s.state.as_str()}{s.reason.clone().map(|r| view! { <span class="muted" data-test="snapshot-reason">{format!(": {r}")}</span> })}</td>
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
