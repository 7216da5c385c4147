//! Which pool the machine is shared with, and who pays for it.

use leptos::prelude::*;

use super::PoolChoice;
use crate::components::forms::{ActionError, CsrfField, SubmitButton};
use crate::error::PortalError;
use model::compute::Vps;

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

/// Which pool the machine is shared with and who pays for it; its creator shares it with a pool
/// they manage or takes it out, and the pool's owner may take it out.
#[component]
pub(super) fn SharingCard(
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
