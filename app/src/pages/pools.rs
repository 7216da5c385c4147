//! Pools: the list with a create form, a pool's page (servers, members, invitations, roles), and
//! the invitations inbox. What each role may do is decided in `domain::accounts::pools`; the page only hides
//! controls the caller could not use.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_params_map};
use model::market::Role;
use serde::{Deserialize, Serialize};

use crate::components::forms::{
    answer_status, error_message, ActionError, CsrfField, LoadFailed, SubmitButton,
};
use crate::components::guard::RequireUser;
use crate::session::use_auth;
use model::market::{Invitation, Member, Pool, PoolDetail, PoolServer};

#[server(prefix = "/_fn", endpoint = "pools")]
pub async fn load_pools() -> Result<Vec<Pool>, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    Ok(pools::list(&state.db, &user.id).await?)
}

#[server(prefix = "/_fn", endpoint = "create_pool")]
pub async fn create_pool(
    csrf: String,
    name: String,
    description: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let pool = pools::create(&state.db, &user.id, &name, Some(&description), None).await?;
    leptos_axum::redirect(&format!("/pools/{}", pool.id));
    Ok(())
}

#[component]
pub fn PoolsPage() -> impl IntoView {
    let create = ServerAction::<CreatePool>::new();
    let data = data::load(move || create.version().get(), |_| load_pools());
    view! {
        <Title text="Pools"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head">
                <h1>"Pools"</h1>
                <p class="muted">"Share rented servers with your team. Owners and admins rent into a pool and invite people; users see its servers."</p>
            </section>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(pools) => view! {
                            <div class="grid cards" data-test="pool-list">
                                {pools.into_iter().map(|p| view! {
                                    <A href=format!("/pools/{}", p.id) attr:class="card stat" attr:data-test="pool-card">
                                        <span class="stat-label">{if p.is_default { "Default pool".to_owned() } else { format!("You are {}", p.user_role) }}</span>
                                        <span class="pool-name">{p.name.clone()}</span>
                                        <span class="muted">{format!("{} member{} · {} server{}", p.member_count, if p.member_count == 1 { "" } else { "s" },
                                            p.server_count, if p.server_count == 1 { "" } else { "s" })}</span>
                                    </A>
                                }).collect_view()}
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
            <section class="card">
                <h2>"New pool"</h2>
                <ActionForm action=create attr:class="form form-row" attr:data-test="create-pool-form">
                    <CsrfField/>
                    <label>"Name"<input type="text" name="name" required maxlength="100" placeholder="Production team"/></label>
                    <label>"Description"<input type="text" name="description" maxlength="500" placeholder="What the pool is for"/></label>
                    <SubmitButton action=create label="Create pool" busy_label="Creating…"/>
                </ActionForm>
                <ActionError action=create/>
            </section>
        }/>
    }
}

#[server(prefix = "/_fn", endpoint = "pool")]
pub async fn load_pool(id: String) -> Result<(PoolDetail, String), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let pool = pools::get(&state.db, &user.id, &id).await?;
    Ok((pool, user.id))
}

#[server(prefix = "/_fn", endpoint = "invite")]
pub async fn invite_member(
    csrf: String,
    pool_id: String,
    username: String,
    role: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    pools::invite(&state.db, &user.id, &pool_id, &username, &role).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "member_role")]
pub async fn change_member_role(
    csrf: String,
    pool_id: String,
    user_id: String,
    role: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(pools::change_role(&state.db, &user.id, &pool_id, &user_id, &role).await?)
}

#[server(prefix = "/_fn", endpoint = "remove_member")]
pub async fn remove_member(
    csrf: String,
    pool_id: String,
    user_id: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    pools::remove_member(&state.db, &user.id, &pool_id, &user_id).await?;
    if user.id == user_id {
        leptos_axum::redirect("/pools");
    }
    Ok(())
}

/// Which members' SSH keys the pool's rented servers get (`none`, `admins`, `members`); the
/// pool's other settings are kept.
#[server(prefix = "/_fn", endpoint = "pool_member_keys")]
pub async fn set_member_keys(
    csrf: String,
    pool_id: String,
    member_keys: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let mut settings = pools::get(&state.db, &user.id, &pool_id)
        .await?
        .pool
        .settings;
    if !settings.is_object() {
        settings = serde_json::json!({});
    }
    settings["member_keys"] = serde_json::Value::String(member_keys);
    pools::update(&state.db, &user.id, &pool_id, None, None, Some(settings)).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "delete_pool")]
pub async fn delete_pool(csrf: String, pool_id: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    pools::delete(&state.db, &user.id, &pool_id).await?;
    leptos_axum::redirect("/pools");
    Ok(())
}

#[component]
pub fn PoolPage() -> impl IntoView {
    let params = use_params_map();
    let invite = ServerAction::<InviteMember>::new();
    let role = ServerAction::<ChangeMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let delete = ServerAction::<DeletePool>::new();
    let keys = ServerAction::<SetMemberKeys>::new();
    let data = data::load(
        move || {
            (
                params.with(|p| p.get("id").unwrap_or_default()),
                keys.version().get(),
                invite.version().get(),
                role.version().get(),
                remove.version().get(),
            )
        },
        |(id, ..)| load_pool(id),
    );
    view! {
        <Title text="Pool"/>
        <RequireUser signed_in=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => { answer_status(&e); view! { <section class="card narrow"><h1>"Pool not found"</h1><p>{error_message(&e)}</p></section> }.into_any() }
                        Ok((pool, me)) => view! { <PoolView pool me invite role remove delete keys/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn PoolView(
    pool: PoolDetail,
    me: String,
    invite: ServerAction<InviteMember>,
    role: ServerAction<ChangeMemberRole>,
    remove: ServerAction<RemoveMember>,
    delete: ServerAction<DeletePool>,
    keys: ServerAction<SetMemberKeys>,
) -> impl IntoView {
    let member_keys = pool
        .pool
        .settings
        .get("member_keys")
        .and_then(|v| v.as_str())
        .unwrap_or("none")
        .to_owned();
    let keys_pool = pool.pool.id.clone();
    let my_role = pool.pool.user_role;
    let is_owner = my_role == Role::Owner;
    let manages = my_role.can_rent();
    let pool_id = pool.pool.id.clone();
    let members = pool.members.clone();
    let servers = pool.servers.clone();
    let invite_pool = pool.pool.id.clone();
    let delete_pool_id = pool.pool.id.clone();
    let is_default = pool.pool.is_default;
    view! {
        <Title text=pool.pool.name.clone()/>
        <section class="page-head">
            <p class="muted"><a href="/pools">"Pools"</a>" / "{pool.pool.name.clone()}</p>
            <h1 data-test="pool-name">{pool.pool.name.clone()}</h1>
            <p class="muted">{pool.pool.description.clone()}" · you are "<strong data-test="my-role">{my_role.as_str()}</strong></p>
        </section>
        <PoolServersCard servers/>
        <MembersCard pool_id members me my_role role remove/>
        {manages.then(|| view! {
            <section class="card">
                <h2>"Invite someone"</h2>
                <ActionForm action=invite attr:class="form form-row" attr:data-test="invite-form">
                    <CsrfField/>
                    <input type="hidden" name="pool_id" value=invite_pool.clone()/>
                    <label>"Username"<input type="text" name="username" required maxlength="100" pattern="[A-Za-z0-9_\\-]+" title="Their username: letters, digits, _ and - only"/></label>
                    <label>"Role"
                        <select name="role">
                            <option value="user">"user — sees the pool's servers"</option>
                            <option value="admin">"admin — also rents, extends and invites"</option>
                        </select>
                    </label>
                    <SubmitButton action=invite label="Send invitation" busy_label="Inviting…"/>
                </ActionForm>
                <ActionError action=invite/>
                {move || invite.value().get().and_then(|r| r.ok()).map(|_| view! { <p class="alert alert-ok" data-test="invite-sent">"Invitation sent."</p> })}
            </section>
        })}
        {is_owner.then(|| view! {
            <section class="card">
                <h2>"SSH keys on the pool's servers"</h2>
                <p class="muted">"The renter chooses their own keys when renting. Members' keys can be set up on every server of the pool too:"</p>
                <ActionForm action=keys attr:class="form form-row" attr:data-test="member-keys-form">
                    <CsrfField/>
                    <input type="hidden" name="pool_id" value=keys_pool.clone()/>
                    <label>"Members' keys"
                        <select name="member_keys" data-test="member-keys">
                            {[("none", "none — only the renter's choice"), ("admins", "the owner's and admins'"), ("members", "every member's")]
                                .into_iter()
                                .map(|(v, l)| view! { <option value=v selected=member_keys == v>{l}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <SubmitButton action=keys label="Save" busy_label="Saving…"/>
                </ActionForm>
                <ActionError action=keys/>
                {move || keys.value().get().and_then(|r| r.ok()).map(|_| view! { <p class="alert alert-ok" data-test="member-keys-saved">"Saved: the servers' key lists follow it."</p> })}
            </section>
        })}
        {(is_owner && !is_default).then(|| view! {
            <section class="card danger-zone">
                <h2>"Delete pool"</h2>
                <p class="muted">"Its rentals move to your default pool; members lose access."</p>
                <ActionForm action=delete attr:class="inline-form">
                    <CsrfField/>
                    <input type="hidden" name="pool_id" value=delete_pool_id.clone()/>
                    <button type="submit" class="btn btn-danger">"Delete this pool"</button>
                </ActionForm>
                <ActionError action=delete/>
            </section>
        })}
    }
}

#[server(prefix = "/_fn", endpoint = "invitations")]
pub async fn load_invitations() -> Result<Vec<Invitation>, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    Ok(pools::pending_invitations(&state.db, &user.id).await?)
}

#[server(prefix = "/_fn", endpoint = "answer_invitation")]
pub async fn answer_invitation(
    csrf: String,
    invitation_id: String,
    accept: String,
) -> Result<Answered, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let pool = pools::pending_invitations(&state.db, &user.id)
        .await?
        .into_iter()
        .find(|i| i.id == invitation_id)
        .map(|i| (i.pool_id, i.pool_name))
        .unwrap_or_default();
    let accepted = accept == "yes";
    pools::answer_invitation(&state.db, &user.id, &invitation_id, accepted).await?;
    Ok(Answered {
        accepted,
        pool_id: pool.0,
        pool_name: pool.1,
    })
}

/// What answering an invitation did, for the confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    pub accepted: bool,
    pub pool_id: String,
    pub pool_name: String,
}

#[component]
pub fn InvitationsPage() -> impl IntoView {
    let answer = ServerAction::<AnswerInvitation>::new();
    let auth = use_auth();
    let data = data::load(move || answer.version().get(), |_| load_invitations());
    // The badge in the navigation follows the inbox.
    Effect::new(move |_| {
        if answer.version().get() > 0 {
            auth.info.refetch();
        }
    });
    view! {
        <Title text="Invitations"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head"><h1>"Invitations"</h1><p class="muted">"Pools you have been invited to."</p></section>
            <ActionError action=answer/>
            {move || answer.value().get().and_then(Result::ok).map(|a| if a.accepted {
                view! {
                    <p class="alert alert-ok" role="status" data-test="invitation-accepted">
                        {format!("You joined {}. ", a.pool_name)}
                        <a href=format!("/pools/{}", a.pool_id)>"Open the pool and its servers →"</a>
                    </p>
                }.into_any()
            } else {
                view! { <p class="alert alert-ok" role="status" data-test="invitation-rejected">{format!("You declined the invitation to {}.", a.pool_name)}</p> }.into_any()
            })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <section class="card"><p data-test="no-invitations">"No pending invitations."</p></section> }.into_any(),
                        Ok(list) => view! {
                            <div class="grid cards">
                                {list.into_iter().map(|i| {
                                    let id2 = i.id.clone();
                                    view! {
                                        <article class="card" data-test="invitation">
                                            <h2>{i.pool_name.clone()}</h2>
                                            <p class="muted">{i.pool_description.clone()}</p>
                                            <p>{format!("{} invited you as {}", i.invited_by.username, i.role)}</p>
                                            <div class="row">
                                                <ActionForm action=answer attr:class="inline-form">
                                                    <CsrfField/>
                                                    <input type="hidden" name="invitation_id" value=i.id.clone()/>
                                                    <input type="hidden" name="accept" value="yes"/>
                                                    <button type="submit" class="btn" data-test="accept-invitation">"Accept"</button>
                                                </ActionForm>
                                                <ActionForm action=answer attr:class="inline-form">
                                                    <CsrfField/>
                                                    <input type="hidden" name="invitation_id" value=id2/>
                                                    <input type="hidden" name="accept" value="no"/>
                                                    <button type="submit" class="btn btn-ghost" data-test="reject-invitation">"Reject"</button>
                                                </ActionForm>
                                            </div>
                                        </article>
                                    }
                                }).collect_view()}
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

/// The servers rented into the pool.
#[component]
fn PoolServersCard(servers: Vec<PoolServer>) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Servers"</h2>
            {if servers.is_empty() {
                view! { <p class="muted" data-test="no-pool-servers">"No servers in this pool yet. Owners and admins can rent into it from the marketplace."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-test="pool-servers">
                        <thead><tr><th>"Server"</th><th>"Location"</th><th>"Status"</th><th>"Rented until"</th></tr></thead>
                        <tbody>{servers.into_iter().map(|s| view! {
                            <tr data-test="pool-server-row">
                                <td data-label="Server"><A href=format!("/rentals/{}", s.rental_id)>{s.name.clone()}</A></td>
                                <td data-label="Location">{format!("{}, {}", s.city, s.country)}</td>
                                <td data-label="Status"><span class="status status-active">{s.rental_status.clone()}</span></td>
                                <td data-label="Rented until">{crate::components::format::day(&s.rental_end)}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

/// Members with their roles; role changes and removals where the caller's role allows them.
#[component]
fn MembersCard(
    pool_id: String,
    members: Vec<Member>,
    me: String,
    my_role: Role,
    role: ServerAction<ChangeMemberRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let is_owner = my_role == Role::Owner;
    view! {
        <section class="card">
            <h2>"Members"</h2>
            <ActionError action=role/>
            <ActionError action=remove/>
            <div class="table-wrap"><table class="table" data-test="members">
                <thead><tr><th>"User"</th><th>"Role"</th><th>"Status"</th><th></th></tr></thead>
                <tbody>{members.into_iter().map(|m| {
                    let is_me = m.user.id == me;
                    // The same rules `domain::accounts::pools` enforces; the page only hides what would be refused.
                    let can_remove = m.role != Role::Owner
                        && (is_me || is_owner || (my_role == Role::Admin && (m.role == Role::User || !m.is_authorized)));
                    let can_change = is_owner && m.role != Role::Owner;
                    let pool_id = pool_id.clone();
                    let pool_id2 = pool_id.clone();
                    let uid = m.user.id.clone();
                    let uid2 = m.user.id.clone();
                    let current = m.role;
                    view! {
                        <tr data-test="member-row" data-username=m.user.username.clone()>
                            <td data-label="User">{m.user.username.clone()}{is_me.then_some(" (you)")}</td>
                            <td data-label="Role">
                                {if can_change {
                                    view! {
                                        <ActionForm action=role attr:class="inline-form role-form">
                                            <CsrfField/>
                                            <input type="hidden" name="pool_id" value=pool_id.clone()/>
                                            <input type="hidden" name="user_id" value=uid.clone()/>
                                            <select name="role" attr:aria-label="Role">
                                                <option value="admin" selected=current == Role::Admin>"admin"</option>
                                                <option value="user" selected=current == Role::User>"user"</option>
                                            </select>
                                            <button type="submit" class="btn btn-sm btn-ghost">"Save"</button>
                                        </ActionForm>
                                    }.into_any()
                                } else {
                                    view! { <span>{current.as_str()}</span> }.into_any()
                                }}
                            </td>
                            <td data-label="Status">{if m.is_authorized { "member" } else { "invited" }}</td>
                            <td>
                                {can_remove.then(|| view! {
                                    <ActionForm action=remove attr:class="inline-form">
                                        <CsrfField/>
                                        <input type="hidden" name="pool_id" value=pool_id2.clone()/>
                                        <input type="hidden" name="user_id" value=uid2.clone()/>
                                        <button type="submit" class="btn btn-sm btn-danger">{if is_me { "Leave" } else if m.is_authorized { "Remove" } else { "Cancel invitation" }}</button>
                                    </ActionForm>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table></div>
        </section>
    }
}
