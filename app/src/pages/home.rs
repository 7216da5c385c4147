use leptos::prelude::*;
use leptos_meta::Title;

use crate::session::use_auth;
use model::money::usd4;

/// The front page: a welcome for visitors, the dashboard for signed-in users.
#[component]
pub fn HomePage() -> impl IntoView {
    let auth = use_auth();
    view! {
        <Title text=""/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match auth.info.await.ok().and_then(|i| i.user) {
                    Some(me) => view! {
                        <section class="page-head">
                            <h1>{format!("Welcome back, {}", me.username)}</h1>
                            <p class="muted">"Everything you run on Hangar, at a glance."</p>
                        </section>
                        <div class="grid cards">
                            <a class="card stat" href="/account">
                                <span class="stat-label">"Prepaid balance"</span>
                                <span class="stat-value" data-test="dashboard-balance">{format!("${}", usd4(me.balance.0))}</span>
                                <span class="muted">"Pays for rentals and per-minute machines"</span>
                            </a>
                            <a class="card stat" href="/tokens">
                                <span class="stat-label">"API tokens"</span>
                                <span class="stat-value">"vtk_…"</span>
                                <span class="muted">"Give scripts, CI and agents their own key"</span>
                            </a>
                            <a class="card stat" href="/docs/api">
                                <span class="stat-label">"API"</span>
                                <span class="stat-value">"OpenAPI 3.1"</span>
                                <span class="muted">"Everything the portal does, over JSON"</span>
                            </a>
                        </div>
                    }.into_any(),
                    None => view! {
                        <section class="hero">
                            <h1>"Servers by the day. Machines by the minute."</h1>
                            <p class="lead">
                                "Rent dedicated servers and VMs from the marketplace, run VPS and containers "
                                "billed per minute from a prepaid balance, and share it all with your team."
                            </p>
                            <div class="hero-actions">
                                <a class="btn btn-lg" href="/signup">"Create an account"</a>
                                <a class="btn btn-ghost btn-lg" href="/signin">"Sign in"</a>
                            </div>
                        </section>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
