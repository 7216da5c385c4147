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
    let auth = use_auth();
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"▲"</span>
                " Hangar"
            </a>
            <nav class="nav" aria-label="Main">
                <A href="/marketplace">"Marketplace"</A>
                <Transition>
                    {move || Suspend::new(async move {
                        let info = auth.info.await.ok().filter(|i| i.user.is_some());
                        info.map(|info| {
                            let pending = info.pending_invitations;
                            let operator = info.user.as_ref().is_some_and(|u| u.is_admin);
                            view! {
                                <A href="/machines">"Machines"</A>
                                <A href="/rentals">"Rentals"</A>
                                <A href="/pools">"Pools"</A>
                                <A href="/invitations">
                                    "Invitations"
                                    {(pending > 0).then(|| view! {
                                        <span class="badge" data-test="invitation-badge" aria-label="pending invitations">{pending}</span>
                                    })}
                                </A>
                                <A href="/billing">"Billing"</A>
                                <A href="/keys">"SSH keys"</A>
                                <A href="/tokens">"API tokens"</A>
                                <A href="/account">"Account"</A>
                                {operator.then(|| view! { <A href="/operator">"Operator"</A> })}
                            }
                        })
                    })}
                </Transition>
                <A href="/docs/api">"API docs"</A>
            </nav>
            <div class="session-box">
                <Transition>
                    {move || Suspend::new(async move {
                        match auth.info.await {
                            Ok(info) => match info.user {
                                Some(me) => view! {
                                    <a href="/billing" class="balance" title="Prepaid balance" data-test="nav-balance">
                                        {format!("${}", usd4(me.balance.0))}
                                    </a>
                                    <span class="who">{me.username}</span>
                                    <SignOutButton action=auth.sign_out/>
                                }.into_any(),
                                None => view! {
                                    <a class="btn btn-ghost" href="/signin">"Sign in"</a>
                                    <a class="btn" href="/signup">"Sign up"</a>
                                }.into_any(),
                            },
                            Err(_) => view! { <span class="muted">"Offline"</span> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
        <main class="content">{children()}</main>
        <footer class="footer">
            <span>"Hangar — servers by the day, machines by the minute."</span>
            <a href="/openapi.json">"OpenAPI"</a>
            <a href="/health">"Status"</a>
        </footer>
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
