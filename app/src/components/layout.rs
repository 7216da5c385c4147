//! The frame around every page: brand, navigation, the balance and the account menu.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::forms::CsrfField;
use crate::session::{use_auth, SignOut};
use model::money::usd4;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    // Inside the router, so actions see errors that a no-JavaScript form post carried back in
    // the URL.
    crate::session::provide_session();
    let menu = RwSignal::new(false);
    // Who the header shows, set once its content has hydrated (by an effect in it): the live
    // figures follow from then on, so a push never lands on a header still hydrating.
    let who = RwSignal::new(None::<String>);
    let live = live_figures(who);
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        location.pathname.track();
        menu.set(false);
    });
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"▲"</span>
                " Hangar"
            </a>
            // On a phone the navigation folds behind a Menu button: a checkbox, so it opens before
            // the page has hydrated too; it closes again whenever the page changes.
            <input type="checkbox" id="nav-toggle" class="nav-toggle" aria-hidden="true" tabindex="-1"
                prop:checked=move || menu.get() on:change=move |ev| menu.set(event_target_checked(&ev))/>
            <label for="nav-toggle" class="nav-toggle-label btn btn-ghost" data-test="nav-menu">"☰ Menu"</label>
            <Nav live/>
            <SessionBox live who/>
        </header>
        <main class="content">{children()}</main>
        <footer class="footer">
            <span>"Hangar — servers by the day, machines by the minute."</span>
            <a href="/openapi.json">"OpenAPI"</a>
            <a href="/status">"Status"</a>
        </footer>
    }
}

/// The main navigation: what a visitor, a customer and an operator may open.
#[component]
fn Nav(live: RwSignal<Option<Figures>>) -> impl IntoView {
    let auth = use_auth();
    view! {
    <nav class="nav" aria-label="Main" data-test="nav">
        <A href="/marketplace">"Marketplace"</A>
        <Transition>
            {move || Suspend::new(async move {
                let info = auth.info.await.ok().filter(|i| i.user.is_some());
                match info {
                    Some(info) => {
                        let pending = info.pending_invitations;
                        let operator = info.user.as_ref().is_some_and(|u| u.is_admin);
                        view! {
                            <A href="/machines">"Machines"</A>
                            <A href="/rentals">"Rentals"</A>
                            <A href="/pools">"Pools"</A>
                            <A href="/invitations">
                                "Invitations"
                                {move || {
                                    let pending = live.get().map_or(pending, |l| l.invitations);
                                    (pending > 0).then(|| view! {
                                        <span class="badge" data-test="invitation-badge" aria-label="pending invitations">{pending}</span>
                                    })
                                }}
                            </A>
                            <A href="/billing">"Billing"</A>
                            {operator.then(|| view! {
                                <div class="nav-group">
                                    <A href="/operator" attr:data-test="nav-operator" attr:aria-haspopup="true">"Operator"</A>
                                    <div class="nav-sub">
                                        <A href="/operator/customers">"Customers"</A>
                                        <A href="/operator/machines">"All machines"</A>
                                        <A href="/operator/tasks">"Tasks"</A>
                                        <A href="/operator/catalog">"Catalog"</A>
                                        <A href="/operator/inventory">"Inventory"</A>
                                    </div>
                                </div>
                            })}
                            // Settings one hover (or focus, or tap) away on a laptop, so the
                            // bar stays one line; listed in full in the phone menu.
                            <div class="nav-group">
                                <A href="/account" attr:data-test="nav-account" attr:aria-haspopup="true">"Account"</A>
                                <div class="nav-sub">
                                    <A href="/keys">"SSH keys"</A>
                                    <A href="/tokens">"API tokens"</A>
                                    <A href="/activity">"Activity"</A>
                                    <A href="/docs/api">"API docs"</A>
                                </div>
                            </div>
                        }.into_any()
                    }
                    None => view! { <A href="/docs/api">"API docs"</A> }.into_any(),
                }
            })}
        </Transition>
    </nav>
    }
}

/// The header's right end: the balance and who is signed in, or the ways in.
#[component]
fn SessionBox(live: RwSignal<Option<Figures>>, who: RwSignal<Option<String>>) -> impl IntoView {
    let auth = use_auth();
    view! {
    <div class="session-box">
        <Transition>
            {move || Suspend::new(async move {
                match auth.info.await {
                    Ok(info) => match info.user {
                        Some(me) => {
                            let id = me.id.clone();
                            Effect::new(move |_| {
                                if who.get_untracked().as_ref() != Some(&id) {
                                    who.set(Some(id.clone()));
                                }
                            });
                            view! {
                            <a href="/billing" class="balance" title="Prepaid balance" data-test="nav-balance">
                                {move || format!("${}", usd4(live.get().map_or(me.balance.0, |l| l.balance)))}
                            </a>
                            <span class="who">{me.username}</span>
                            <SignOutButton action=auth.sign_out/>
                        }.into_any()
                        }
                        None => {
                            Effect::new(move |_| {
                                if who.get_untracked().is_some() {
                                    who.set(None);
                                }
                            });
                            view! {
                            <a class="btn btn-ghost" href="/signin">"Sign in"</a>
                            <a class="btn" href="/signup">"Sign up"</a>
                        }.into_any()
                        }
                    },
                    Err(_) => view! { <span class="muted">"Offline"</span> }.into_any(),
                }
            })}
        </Transition>
    </div>
    }
}

#[component]
fn SignOutButton(action: ServerAction<SignOut>) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline-form">
            <CsrfField/>
            <button type="submit" class="btn btn-ghost" data-test="sign-out">"Sign out"</button>
        </ActionForm>
    }
}

/// The header's figures as `GET /events/me` pushes them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
struct Figures {
    balance: i64,
    invitations: i64,
}

/// Follows `/events/me` while `who` names a signed-in user (opened again when that changes);
/// `None` until the first push, when the server-rendered figures show.
fn live_figures(who: RwSignal<Option<String>>) -> RwSignal<Option<Figures>> {
    let live = RwSignal::new(None);
    #[cfg(not(feature = "hydrate"))]
    let _ = who;
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        live.set(None);
        if who.get().is_some() {
            crate::components::events::follow("/events/me", "message", move |figures| {
                live.set(Some(figures))
            });
        }
    });
    live
}
