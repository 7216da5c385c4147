//! The SSH keys page: add a key (checked and shown with its fingerprint), delete one.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::data;
use crate::components::format::when;
use crate::components::forms::{ActionError, CsrfField, LoadFailed, SubmitButton};
use crate::components::guard::RequireUser;
use crate::error::PortalError;
use model::compute::SshKey;

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
