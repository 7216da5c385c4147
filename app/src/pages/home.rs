use crate::components::data;
use leptos::prelude::*;
use leptos_meta::Title;

use serde::{Deserialize, Serialize};

use crate::error::PortalError;
use crate::session::use_auth;
use model::money::{usd4, usd_rate};

/// What a signed-in user's dashboard counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    /// Micro-USD.
    pub balance: i64,
    pub machines: usize,
    pub running: usize,
    /// What the running machines cost per hour together (micro-USD).
    pub hourly: i64,
    pub rentals: usize,
    /// The active rental that ends first: its server's name and the day it ends.
    pub next_end: Option<(String, String)>,
    pub invitations: i64,
}

/// What a visitor is offered: the marketplace (servers to rent now, from what per day) and the
/// machine plans with their prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferData {
    pub servers: i64,
    /// µUSD per day.
    pub servers_from: Option<i64>,
    pub plans: Vec<model::compute::Plan>,
}

#[server(prefix = "/_fn", endpoint = "offer")]
pub async fn load_offer() -> Result<OfferData, PortalError> {
    use domain::fleet::catalog::HeldRates;
    let state = crate::ssr::portal::state()?;
    let (servers, servers_from) = domain::market::browse::offer(&state.db).await?;
    Ok(OfferData {
        servers,
        servers_from,
        plans: domain::fleet::catalog::plans(&state.db)
            .await?
            .iter()
            .map(|p| p.to_api(HeldRates::of(&state.config)))
            .collect(),
    })
}

/// The front page's offer: what can be rented and run here, at what prices, before signing up.
#[component]
fn Offer() -> impl IntoView {
    use crate::components::format::{memory, money};
    let offer = data::load(|| (), |_| load_offer());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                offer.await.ok().map(|o| view! {
                    <section class="offer" data-test="offer">
                        <div class="card">
                            <h2>"Dedicated servers and VMs by the day"</h2>
                            <p data-test="offer-servers">{match o.servers_from {
                                Some(from) if o.servers > 0 => format!("{} ready to rent now, from {} a day. Rent for a day, a week or a month; extend any time.", crate::components::format::count(o.servers, "server", "servers"), money(from)),
                                _ => "No server is free right now: new ones are listed as they come back.".to_owned(),
                            }}</p>
                            <a class="btn btn-ghost" href="/marketplace">"Browse the marketplace"</a>
                        </div>
                        <div class="card">
                            <h2>"VPS and containers by the minute"</h2>
                            <p class="muted">"Paid from a prepaid balance you top up by card; a stopped machine pays only for its disk."</p>
                            <div class="table-wrap"><table class="table" data-test="offer-plans">
                                <thead><tr><th>"Plan"</th><th>"Size"</th><th class="num">"Per hour"</th><th class="num">"About a month"</th></tr></thead>
                                <tbody>{o.plans.into_iter().map(|p| view! {
                                    <tr>
                                        <td data-label="Plan">{format!("{} ({})", p.name, p.kind.label())}</td>
                                        <td data-label="Size">{format!("{} vCPU · {} · {} GiB", p.vcpu, memory(p.memory_mb), p.disk_gb)}</td>
                                        <td data-label="Per hour" class="num">{format!("${}", usd4(p.price_hourly.0))}</td>
                                        <td data-label="About a month" class="num">{money(p.price_hourly.0 * 730)}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        </div>
                    </section>
                })
            })}
        </Transition>
    }
}

#[server(prefix = "/_fn", endpoint = "dashboard")]
pub async fn load_dashboard() -> Result<DashboardData, PortalError> {
    use crate::ssr::portal;
    use domain::compute::instances;
    use domain::market::rentals;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let machines = instances::list(&state.db, &user.id).await?;
    let running: Vec<_> = machines
        .iter()
        .filter(|m| m.to_vps().state == model::compute::VpsState::Running)
        .collect();
    let active: Vec<_> = rentals::list_visible(&state.db, &user.id)
        .await?
        .into_iter()
        .filter(|r| r.status == rentals::RentalStatus::Active)
        .collect();
    let first = active.iter().min_by_key(|r| r.rental_end);
    let next_end = match first {
        Some(r) => {
            let servers = rentals::servers_for(&state.db, std::slice::from_ref(r)).await?;
            let name = servers
                .get(&r.server_id)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| "A server".into());
            Some((
                name,
                domain::infra::db::rfc3339(r.rental_end)[..10].to_owned(),
            ))
        }
        None => None,
    };
    let invitations = domain::accounts::pools::pending_count(&state.db, &user.id).await?;
    Ok(DashboardData {
        balance: user.balance_micros,
        machines: machines.len(),
        running: running.len(),
        // What the account is billed per hour now: running machines at their price, stopped
        // ones for what they keep.
        hourly: machines
            .iter()
            .map(|m| match m.to_vps().state.as_str() {
                "running" => m.price_hourly_micros,
                "stopped" => m.held_hourly_micros,
                _ => 0,
            })
            .sum(),
        rentals: active.len(),
        next_end,
        invitations,
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The signed-in dashboard: money first, then what runs, what is rented, what waits for an
/// answer, each with the next step when there is nothing yet.
#[component]
fn Dashboard() -> impl IntoView {
    let data = data::load(|| (), |_| load_dashboard());
    view! {
        <div>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let Ok(d) = data.await else {
                    return view! { <p class="muted">"The dashboard could not be loaded; the pages above still work."</p> }.into_any();
                };
                let runway = (d.hourly > 0).then(|| {
                    let hours = d.balance.max(0) / d.hourly;
                    if hours >= 48 { format!("About {} days at the current spend", hours / 24) }
                    else { format!("About {} at the current spend — add funds soon", plural(hours as usize, "hour", "hours")) }
                });
                view! {
                    <div class="grid cards" data-test="dashboard">
                        <a class="card stat" href="/billing" data-test="dashboard-balance-card">
                            <span class="stat-label">"Prepaid balance"</span>
                            <span class="stat-value" data-test="dashboard-balance">{format!("${}", usd4(d.balance))}</span>
                            <span class="muted">{runway.unwrap_or_else(|| "Pays for rentals and per-minute machines".into())}</span>
                            <span class="card-link">"Add funds →"</span>
                        </a>
                        <a class="card stat" href="/machines" data-test="dashboard-machines">
                            <span class="stat-label">"Machines"</span>
                            <span class="stat-value">{if d.machines == 0 { "None yet".to_owned() } else { format!("{} running", d.running) }}</span>
                            <span class="muted">{if d.machines == 0 {
                                "VPS and containers, billed per minute while they run".to_owned()
                            } else {
                                format!("{} in all · ${}/hour now", plural(d.machines, "machine", "machines"), usd_rate(d.hourly))
                            }}</span>
                            <span class="card-link">{if d.machines == 0 { "Create your first machine →" } else { "Open machines →" }}</span>
                        </a>
                        <a class="card stat" href=if d.rentals == 0 { "/marketplace" } else { "/rentals" } data-test="dashboard-rentals">
                            <span class="stat-label">"Rentals"</span>
                            <span class="stat-value">{if d.rentals == 0 { "None active".to_owned() } else { format!("{} active", d.rentals) }}</span>
                            <span class="muted">{match &d.next_end {
                                Some((name, day)) => format!("Next to end: {name}, on {day}"),
                                None => "Dedicated servers and VMs, rented by the day".to_owned(),
                            }}</span>
                            <span class="card-link">{if d.rentals == 0 { "Browse the marketplace →" } else { "Open rentals →" }}</span>
                        </a>
                        {(d.invitations > 0).then(|| view! {
                            <a class="card stat highlight" href="/invitations" data-test="dashboard-invitations">
                                <span class="stat-label">"Invitations"</span>
                                <span class="stat-value">{plural(d.invitations as usize, "pending", "pending")}</span>
                                <span class="muted">"A team asked you to join its pool"</span>
                                <span class="card-link">"Answer →"</span>
                            </a>
                        })}
                        <a class="card stat" href="/tokens">
                            <span class="stat-label">"API tokens"</span>
                            <span class="stat-value">"vtk_…"</span>
                            <span class="muted">"Give scripts, CI and agents their own key"</span>
                            <span class="card-link">"Manage tokens →"</span>
                        </a>
                    </div>
                }.into_any()
            })}
        </Transition>
        </div>
    }
}

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
                            <h1>{format!("Welcome, {}", me.username)}</h1>
                            <p class="muted">"Everything you run on Hangar, at a glance."</p>
                        </section>
                        <Dashboard/>
                    }.into_any(),
                    None => view! {
                        {(leptos_router::hooks::use_query_map().with_untracked(|q| q.get("account")) == Some("deleted".into())).then(|| view! {
                            <p class="alert alert-ok" role="status" data-test="account-deleted">"Your account was deleted. Thank you for using Hangar."</p>
                        })}
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
                        <Offer/>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
