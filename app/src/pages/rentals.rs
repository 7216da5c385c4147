//! Rentals: the list (yours and your pools') and a rental's page with extension.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_params_map};
use serde::{Deserialize, Serialize};

use crate::components::format::{day, days as days_text, money, when};
use crate::components::forms::{
    answer_status, error_message, ActionError, CopyButton, CsrfField, LoadFailed, SubmitButton,
};
use crate::components::guard::RequireUser;
use model::market::{AccessStatus, Rental, RentalAccess};
use model::money::usd4;

#[server(prefix = "/_fn", endpoint = "rentals")]
pub async fn load_rentals() -> Result<Vec<Rental>, PortalError> {
    use crate::ssr::portal;
    use domain::market::rentals;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let rows = rentals::list_visible(&state.db, &user.id).await?;
    Ok(rentals::to_api_list(&state.db, rows).await?)
}

#[component]
pub fn RentalsPage() -> impl IntoView {
    let data = data::load(|| (), |_| load_rentals());
    view! {
        <Title text="Rentals"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head">
                <h1>"Rentals"</h1>
                <p class="muted">"Servers you rented and those of the pools you belong to."</p>
            </section>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <section class="card">
                                <p data-test="no-rentals">"No rentals yet."</p>
                                <a class="btn" href="/marketplace">"Browse the marketplace"</a>
                            </section>
                        }.into_any(),
                        Ok(list) => view! {
                            <section class="card">
                                <div class="table-wrap">
                                <table class="table" data-test="rental-table">
                                    <thead><tr><th>"Server"</th><th>"Location"</th><th>"Status"</th><th>"Ends"</th><th>"Days left"</th><th>"Paid"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|r| view! {
                                            <tr data-test="rental-row">
                                                <td data-label="Server"><A href=format!("/rentals/{}", r.id)>{r.server.name.clone()}</A></td>
                                                <td data-label="Location">{format!("{}, {}", r.server.city, r.server.country)}</td>
                                                <td data-label="Status"><span class=format!("status status-{}", r.status.as_str())>{r.status.as_str()}</span></td>
                                                <td data-label="Ends">{day(&r.rental_end)}</td>
                                                <td data-label="Days left">{r.remaining_days}</td>
                                                <td data-label="Paid">{format!("${}", r.amount)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            </section>
                        }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

/// A rental page's data: the rental and the caller's balance (µUSD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RentalPageData {
    pub rental: Rental,
    pub balance: i64,
    pub can_extend: bool,
    pub prices: Vec<(i64, i64)>,
    /// Pools the caller may move it into (owner or admin there, and of its pool): (id, name).
    pub move_to: Vec<(String, String)>,
}

#[server(prefix = "/_fn", endpoint = "rental")]
pub async fn load_rental(id: String) -> Result<RentalPageData, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    use domain::market::rentals;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let rental = rentals::detail(&state.db, &user.id, &id).await?;
    let role = pools::role_of(&state.db, &rental.pool_id, &user.id).await?;
    let prices = domain::market::browse::prices(&state.db, &rental.server_id).await?;
    let can_extend = rental.status == model::market::RentalStatus::Active
        && role.is_some_and(pools::Role::can_rent);
    let move_to = if can_extend {
        pools::list(&state.db, &user.id)
            .await?
            .into_iter()
            .filter(|p| p.user_role.can_rent() && p.id != rental.pool_id)
            .map(|p| (p.id, p.name))
            .collect()
    } else {
        Vec::new()
    };
    Ok(RentalPageData {
        can_extend,
        rental,
        balance: user.balance_micros,
        prices,
        move_to,
    })
}

/// Moves the rental into another of the caller's pools.
#[server(prefix = "/_fn", endpoint = "move_rental")]
pub async fn move_rental(
    csrf: String,
    rental_id: String,
    pool_id: String,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::market::rentals;
    use domain::Actor;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    rentals::move_to_pool(&state.db, &Actor::user(&user.id), &rental_id, &pool_id).await?;
    let name = domain::accounts::pools::list(&state.db, &user.id)
        .await?
        .into_iter()
        .find(|p| p.id == pool_id)
        .map(|p| p.name)
        .unwrap_or_default();
    Ok(format!("Moved to {name}: its members see this server now."))
}

#[server(prefix = "/_fn", endpoint = "extend")]
pub async fn extend_rental(
    csrf: String,
    rental_id: String,
    additional_days: i64,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::market::rentals;
    use domain::Actor;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let (_, entry) = rentals::extend(
        &state.db,
        &Actor::user(&user.id),
        &rental_id,
        additional_days,
    )
    .await?;
    Ok(format!(
        "Extended by {}; {} was taken from your balance.",
        days_text(additional_days),
        money(-entry.amount_micros)
    ))
}

#[component]
pub fn RentalPage() -> impl IntoView {
    let params = use_params_map();
    let extend = ServerAction::<ExtendRental>::new();
    let relocate = ServerAction::<MoveRental>::new();
    let data = data::load(
        move || {
            (
                params.with(|p| p.get("id").unwrap_or_default()),
                extend.version().get(),
                relocate.version().get(),
            )
        },
        |(id, ..)| load_rental(id),
    );
    view! {
        <Title text="Rental"/>
        <RequireUser signed_in=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => { answer_status(&e); view! { <section class="card narrow"><h1>"Rental not found"</h1><p>{error_message(&e)}</p></section> }.into_any() }
                        Ok(d) => view! { <RentalDetail data=d extend relocate/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn RentalDetail(
    data: RentalPageData,
    extend: ServerAction<ExtendRental>,
    relocate: ServerAction<MoveRental>,
) -> impl IntoView {
    let r = data.rental;
    let rental_id = r.id.clone();
    let txs = r.transactions.clone().unwrap_or_default();
    let total_days = r.usage_days + r.remaining_days;
    let used_pct = if total_days > 0 {
        r.usage_days * 100 / total_days
    } else {
        100
    };
    let rented =
        leptos_router::hooks::use_query_map().with_untracked(|q| q.get("rented").is_some());
    view! {
        {rented.then(|| view! {
            <p class="alert alert-ok" role="status" data-test="rented">
                {format!("You rented {} for {}; {} was taken from your balance. It is yours until {}.",
                    r.server.name, days_text(total_days), money_text(&r.amount), when(&r.rental_end))}
            </p>
        })}
        <section class="page-head">
            <p class="muted"><a href="/rentals">"Rentals"</a>" / "{r.server.name.clone()}</p>
            <h1>{r.server.name.clone()}</h1>
            <p class="muted">{format!("{} · {}, {} · {}", r.server.model, r.server.city, r.server.country, r.server.datacenter)}</p>
        </section>
        {r.access.clone().map(|a| view! { <AccessCard access=a/> })}
        <div class="split">
            <section class="card">
                <h2>"Rental"</h2>
                <dl class="facts" data-test="rental-facts">
                    <dt>"Status"</dt><dd><span class=format!("status status-{}", r.status.as_str()) data-test="rental-status">{r.status.as_str()}</span></dd>
                    <dt>"Started"</dt><dd>{when(&r.rental_start)}</dd>
                    <dt>"Ends"</dt><dd data-test="rental-end">{when(&r.rental_end)}</dd>
                    <dt>"Days left"</dt><dd data-test="remaining-days">{r.remaining_days}</dd>
                    <dt>"Paid in total"</dt><dd data-test="rental-amount">{format!("${}", r.amount)}</dd>
                    <dt>"Pool"</dt><dd><a href=format!("/pools/{}", r.pool_id)>"View pool"</a></dd>
                </dl>
                <div class="meter" role="img" aria-label=format!("{} of {} days used", r.usage_days, total_days)>
                    <div class="meter-fill" style=format!("width: {used_pct}%")></div>
                </div>
                <p class="muted">{format!("{} of {} days used", r.usage_days, total_days)}</p>
                <h3>"Payments"</h3>
                <ul class="payments">
                    {txs.into_iter().map(|t| view! { <li>{format!("{} — {}", when(&t.created_at), money(t.amount.0))}</li> }).collect_view()}
                </ul>
            </section>
            <section class="card">
                <h2>"Extend"</h2>
                {if data.can_extend {
                    view! {
                        <ActionForm action=extend attr:class="form" attr:data-test="extend-form">
                            <CsrfField/>
                            <input type="hidden" name="rental_id" value=r.id.clone()/>
                            {data.prices.iter().enumerate().map(|(i, (days, price))| view! {
                                <label class="check">
                                    <input type="radio" name="additional_days" value=days.to_string() checked=i == 0/>
                                    {format!("{} more — {}{}", days_text(*days), money(*price), if *price > data.balance { " (balance too low)" } else { "" })}
                                </label>
                            }).collect_view()}
                            <p class="muted">{format!("Your balance: ${}", usd4(data.balance))}</p>
                            <ActionError action=extend/>
                            {move || extend.value().get().and_then(Result::ok).map(|done| view! {
                                <p class="alert alert-ok" role="status" data-test="extended">{done}</p>
                            })}
                            <SubmitButton action=extend label="Extend and pay" busy_label="Extending…"/>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! { <p class="muted">"Only the pool's owner and admins can extend an active rental."</p> }.into_any()
                }}
                <h2>"Pool"</h2>
                {move || relocate.value().get().and_then(Result::ok).map(|done| view! {
                    <p class="alert alert-ok" role="status" data-test="rental-moved">{done}</p>
                })}
                <ActionError action=relocate/>
                {if data.move_to.is_empty() {
                    view! { <p class="muted">{if data.can_extend {
                        "Create another pool to share this server with a different team."
                    } else {
                        "Only the pool's owner and admins can move the rental to another pool."
                    }}</p> }.into_any()
                } else {
                    view! {
                        <ActionForm action=relocate attr:class="form form-row" attr:data-test="move-form">
                            <CsrfField/>
                            <input type="hidden" name="rental_id" value=rental_id.clone()/>
                            <label>"Move to"
                                <select name="pool_id">
                                    {data.move_to.iter().map(|(id, name)| view! { <option value=id.clone()>{name.clone()}</option> }).collect_view()}
                                </select>
                            </label>
                            <SubmitButton action=relocate label="Move" busy_label="Moving…"/>
                        </ActionForm>
                    }.into_any()
                }}
            </section>
        </div>
    }
}

/// How to reach the rented server: setup status, address and the SSH command to copy.
#[component]
fn AccessCard(access: RentalAccess) -> impl IntoView {
    let (badge, note) = match access.status {
        AccessStatus::SettingUp => (
            "Setting up",
            format!(
                "The operator is preparing the server and installing the SSH keys below; expected ready {}.",
                when(&access.ready_at)
            ),
        ),
        AccessStatus::Ready => (
            "Ready",
            "Sign in with one of the SSH keys below.".to_owned(),
        ),
        AccessStatus::Ended => (
            "Ended",
            "The rental is over; the server's address is no longer shown.".to_owned(),
        ),
    };
    view! {
        <section class="card" data-test="access">
            <h2>"Access "<span class=format!("status status-{}", access.status.as_str()) data-test="access-status">{badge}</span></h2>
            <p class="muted">{note}</p>
            {match (access.address.clone(), access.ssh_command.clone()) {
                (Some(address), Some(command)) => view! {
                    <dl class="facts">
                        <dt>"Address"</dt><dd data-test="access-address">{address}</dd>
                        <dt>"User"</dt><dd>{access.user.clone()}</dd>
                        <dt>"SSH port"</dt><dd>{access.port}</dd>
                    </dl>
                    <div class="copy-row">
                        <code data-test="access-command">{command.clone()}</code>
                        <CopyButton text=command test="copy-ssh"/>
                    </div>
                }.into_any(),
                _ if access.status == AccessStatus::Ended => ().into_any(),
                _ => view! {
                    <p data-test="access-pending">"The operator has not published this server's address yet; it will appear here."</p>
                }.into_any(),
            }}
            {(access.status != AccessStatus::Ended).then(|| view! {
                <h3>"SSH keys on the server"</h3>
                {if access.keys.is_empty() {
                    view! { <p class="muted" data-test="access-no-keys">"None: the renter chose no key and the pool shares no member's. Ask the operator how to reach the server."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain-list" data-test="access-keys">
                            {access.keys.clone().into_iter().map(|k| view! {
                                <li data-test="access-key">
                                    <span>{format!("{} ({})", k.name, k.fingerprint)}</span>
                                    <span class="muted">{if k.because == "renter" { format!("{}, the renter", k.owner) } else { format!("{}, pool {}", k.owner, k.because) }}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            })}
        </section>
    }
}

/// A rental amount as the `/api/v1` dialect gives it (`"70.00"`), written like every amount.
fn money_text(amount: &str) -> String {
    format!("${amount}")
}
