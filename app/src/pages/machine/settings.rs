//! Rename, and a delete that needs a ticked confirmation.

use leptos::prelude::*;

use super::MachineAction;
use crate::components::forms::{ActionError, CsrfField, SubmitButton};
use crate::error::PortalError;
use model::compute::{Transition, Vps};

#[server(prefix = "/_fn", endpoint = "rename_machine")]
pub async fn rename_machine(csrf: String, id: String, name: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(instances::rename(&state.db, &user.id, &id, &name)
        .await
        .map(|_| ())?)
}

/// Rename, and a delete that needs a ticked confirmation.
#[component]
pub(super) fn SettingsCard(
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
                    disabled=move || !confirm_delete.get() || vps.get().transition == Some(Transition::Delete)>"Delete machine"</button>
            </ActionForm>
            {move || deleted().then(|| view! { <p class="alert alert-ok" data-test="machine-deleting">"Deleting… it disappears from your machines when the node has removed it."</p> })}
            })}
        </section>
    }
}
