//! Billing: the balance, every money movement (paginated), and low-balance alert addresses.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::components::forms::{error_message, ActionError, CsrfField, LoadFailed, SubmitButton};
use crate::pages::RequireUser;
use model::money::usd4;

const PAGE: i64 = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingData {
    pub balance: i64,
    /// (id, amount µUSD, kind, description, created_at)
    pub movements: Vec<(String, i64, String, String, String)>,
    pub total: i64,
    pub offset: i64,
    /// (id, email)
    pub notify_emails: Vec<(String, String)>,
    pub account_email: String,
    /// Card top-ups are configured (a Stripe key is set).
    pub payments: bool,
    /// The last 30 UTC days, oldest first: (day `YYYY-MM-DD`, machines µUSD, rentals µUSD).
    pub spend: Vec<(String, i64, i64)>,
}

#[server(prefix = "/_fn", endpoint = "billing")]
pub async fn load_billing(offset: i64) -> Result<BillingData, PortalError> {
    use crate::ssr::portal;
    use domain::infra::db::rfc3339;
    use domain::money::billing;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let offset = offset.max(0);
    let (rows, total) = billing::statement_lines(&state.db, &user.id, PAGE, offset).await?;
    let emails = billing::list_notify_emails(&state.db, &user.id).await?;
    Ok(BillingData {
        balance: user.balance_micros,
        movements: rows
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    e.amount_micros,
                    e.kind,
                    e.description,
                    rfc3339(e.created_at),
                )
            })
            .collect(),
        total,
        offset,
        notify_emails: emails.into_iter().map(|n| (n.id, n.email)).collect(),
        account_email: user.email,
        payments: state.config.stripe_secret_key.is_some(),
        spend: billing::daily_spend(&state.db, &user.id, 30, domain::infra::db::now_ms())
            .await?
            .into_iter()
            .map(|d| {
                (
                    rfc3339(d.day * 86_400_000)[..10].to_owned(),
                    d.machines,
                    d.rentals,
                )
            })
            .collect(),
    })
}

#[server(prefix = "/_fn", endpoint = "add_notify_email")]
pub async fn add_notify_email(csrf: String, email: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::money::billing;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    billing::add_notify_email(&state.db, &user.id, &email).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "remove_notify_email")]
pub async fn remove_notify_email(csrf: String, id: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::money::billing;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    Ok(billing::remove_notify_email(&state.db, &user.id, &id).await?)
}

/// Starts a card top-up and sends the browser to Stripe Checkout.
#[server(prefix = "/_fn", endpoint = "add_funds")]
pub async fn add_funds(csrf: String, amount: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::money::payments;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let usd: f64 = amount
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| PortalError::invalid("Enter an amount in dollars, e.g. 10"))?;
    let micros = model::money::micros_from_usd(usd).map_err(PortalError::invalid)?;
    let url = payments::create_checkout(&state, &user, micros).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

/// The outcome of a top-up, for the page Stripe sends the customer back to.
#[server(prefix = "/_fn", endpoint = "topup_status")]
pub async fn topup_status(session_id: String) -> Result<(String, Option<i64>, i64), PortalError> {
    use crate::ssr::portal;
    use domain::money::payments;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let (status, credited) = payments::topup_status(&state.db, &user.id, &session_id).await?;
    Ok((status, credited, user.balance_micros))
}

/// `/billing/success?session_id=...`: what really happened, read from the ledger's side.
#[component]
pub fn TopupSuccessPage() -> impl IntoView {
    let query = use_query_map();
    let status = data::load(
        move || query.with(|q| q.get("session_id").unwrap_or_default()),
        topup_status,
    );
    view! {
        <Title text="Top-up"/>
        <RequireUser signed_in=move |_| view! {
            <section class="card narrow" data-test="topup-result">
                <Transition fallback=|| view! { <p class="muted">"Checking your payment…"</p> }>
                    {move || Suspend::new(async move {
                        match status.await {
                            Ok((s, Some(credited), balance)) if s == "paid" => view! {
                                <h1>"Funds added"</h1>
                                <p data-test="topup-paid">{format!("{} was added to your balance. New balance: {}.", crate::components::format::money(credited), crate::components::format::balance(balance))}</p>
                                <a class="btn" href="/billing">"Back to billing"</a>
                            }.into_any(),
                            Ok(_) => view! {
                                <h1>"Payment being confirmed"</h1>
                                <p data-test="topup-pending">"Stripe has not confirmed this payment yet. Your balance updates as soon as it does; reload in a moment."</p>
                                <a class="btn btn-ghost" href="/billing">"Back to billing"</a>
                            }.into_any(),
                            Err(e) => view! {
                                <h1>"Unknown payment"</h1>
                                <p>{error_message(&e)}</p>
                                <a class="btn btn-ghost" href="/billing">"Back to billing"</a>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}

/// `/billing/cancel`: the customer left Checkout without paying.
#[component]
pub fn TopupCancelPage() -> impl IntoView {
    view! {
        <Title text="Top-up cancelled"/>
        <section class="card narrow" data-test="topup-cancelled">
            <h1>"Top-up cancelled"</h1>
            <p>"Nothing was charged and your balance is unchanged."</p>
            <a class="btn" href="/billing">"Back to billing"</a>
        </section>
    }
}

#[component]
pub fn BillingPage() -> impl IntoView {
    let query = use_query_map();
    let topup = ServerAction::<AddFunds>::new();
    let add = ServerAction::<AddNotifyEmail>::new();
    let remove = ServerAction::<RemoveNotifyEmail>::new();
    let data = data::load(
        move || {
            let offset = query.with(|q| {
                q.get("offset")
                    .and_then(|o| o.parse::<i64>().ok())
                    .unwrap_or(0)
            });
            (offset, add.version().get(), remove.version().get())
        },
        |(offset, ..)| load_billing(offset),
    );
    view! {
        <Title text="Billing"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head">
                <h1>"Billing"</h1>
                <p class="muted">"Your prepaid balance pays for rentals (by the day) and machines (by the minute)."</p>
            </section>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(d) => view! { <Billing data=d add remove topup/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn Billing(
    data: BillingData,
    add: ServerAction<AddNotifyEmail>,
    remove: ServerAction<RemoveNotifyEmail>,
    topup: ServerAction<AddFunds>,
) -> impl IntoView {
    let prev =
        (data.offset > 0).then(|| format!("/billing?offset={}", (data.offset - PAGE).max(0)));
    // A page that sent the person here to pay for something asks for what it needs (`?amount=`,
    // within the top-up's bounds); $10 otherwise.
    let amount = use_query_map().with_untracked(|q| {
        q.get("amount")
            .and_then(|a| a.parse::<f64>().ok())
            .filter(|a| a.is_finite())
            .map_or_else(|| "10".to_owned(), |a| format!("{:.2}", a.clamp(5.0, 50.0)))
    });
    let next = (data.offset.saturating_add(PAGE) < data.total)
        .then(|| format!("/billing?offset={}", data.offset + PAGE));
    view! {
        <div class="grid cards">
            <div class="card stat">
                <span class="stat-label">"Balance"</span>
                <span class="stat-value" data-test="billing-balance">{format!("${}", usd4(data.balance))}</span>
            </div>
            <div class="card" id="add-funds">
                <h2>"Add funds"</h2>
                {if data.payments { view! {
                <ActionForm action=topup attr:class="form form-row" attr:data-test="add-funds-form">
                    <CsrfField/>
                    <label>"Amount (USD, $5–$50)"
                        <input type="number" name="amount" min="5" max="50" step="0.01" required value=amount/>
                    </label>
                    <SubmitButton action=topup label="Pay with card" busy_label="Opening checkout…"/>
                </ActionForm>
                <ActionError action=topup/>
                <p class="muted">"You pay on Stripe's secure page and come back here."</p>
                }.into_any() } else { view! {
                    <p class="muted" data-test="payments-off">"Card payments are not set up on this Hangar. Ask its operator to add funds to your account."</p>
                }.into_any() }}
            </div>
        </div>
        <SpendChart spend=data.spend.clone()/>
        <section class="card">
            <h2>"History"</h2>
            {if data.movements.is_empty() {
                view! { <p class="muted" data-test="no-movements">"No money has moved yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-test="history">
                        <thead><tr><th>"When"</th><th>"What"</th><th>"Kind"</th><th class="num">"Amount"</th></tr></thead>
                        <tbody>{data.movements.into_iter().map(|(_, amount, kind, description, at)| view! {
                            <tr data-test="movement">
                                <td data-label="When">{crate::components::format::when(&at)}</td>
                                <td data-label="What">{description}</td>
                                <td data-label="Kind">{kind}</td>
                                <td data-label="Amount" class=if amount < 0 { "num debit" } else { "num credit" }>
                                    {crate::components::format::movement(amount)}
                                </td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                    <nav class="pager">
                        {prev.map(|h| view! { <a class="btn btn-ghost" href=h>"← Newer"</a> })}
                        <span class="muted">{format!("{} movements", data.total)}</span>
                        {next.map(|h| view! { <a class="btn btn-ghost" href=h>"Older →"</a> })}
                    </nav>
                }.into_any()
            }}
        </section>
        <section class="card">
            <h2>"Low-balance alerts"</h2>
            <p class="muted">{format!("Alerts go to {} and to these addresses:", data.account_email)}</p>
            <ul class="plain-list" data-test="notify-emails">
                {data.notify_emails.into_iter().map(|(id, email)| view! {
                    <li>
                        <span>{email}</span>
                        <ActionForm action=remove attr:class="inline-form">
                            <CsrfField/>
                            <input type="hidden" name="id" value=id/>
                            <button type="submit" class="btn btn-sm btn-danger">"Remove"</button>
                        </ActionForm>
                    </li>
                }).collect_view()}
            </ul>
            <ActionForm action=add attr:class="form form-row" attr:data-test="notify-form">
                <CsrfField/>
                <label>"Add an address"<input type="email" name="email" required maxlength="254" placeholder="ops@example.com"/></label>
                <SubmitButton action=add label="Add" busy_label="Adding…"/>
            </ActionForm>
            <ActionError action=add/>
            <ActionError action=remove/>
        </section>
    }
}

/// Spending per day over the last 30 days as stacked bars (machines below, rentals above), drawn
/// on the server as SVG: readable before any script runs, and on a phone (it scales to the
/// card). Each bar's tooltip gives the day's figures; the caption gives the totals.
#[component]
fn SpendChart(spend: Vec<(String, i64, i64)>) -> impl IntoView {
    use crate::components::format::money;
    const W: f64 = 300.0;
    const H: f64 = 100.0;
    let machines: i64 = spend.iter().map(|d| d.1).sum();
    let rentals: i64 = spend.iter().map(|d| d.2).sum();
    let top = spend.iter().map(|d| d.1 + d.2).max().unwrap_or(0).max(1) as f64;
    let slot = W / spend.len().max(1) as f64;
    let bar = |i: usize, from: i64, amount: i64, class: &'static str| {
        let h = amount as f64 / top * (H - 2.0);
        let y = H - from as f64 / top * (H - 2.0) - h;
        (amount > 0).then(|| view! {
            <rect class=class x=format!("{:.2}", i as f64 * slot + slot * 0.15) y=format!("{y:.2}")
                width=format!("{:.2}", slot * 0.7) height=format!("{h:.2}")/>
        })
    };
    let first = spend.first().map(|d| d.0.clone()).unwrap_or_default();
    let last = spend.last().map(|d| d.0.clone()).unwrap_or_default();
    view! {
        <section class="card spend-card" data-test="spend-chart">
            <h2>"Spending, last 30 days"</h2>
            {if machines + rentals == 0 {
                view! { <p class="muted" data-test="no-spend">"Nothing spent in the last 30 days."</p> }.into_any()
            } else {
                view! {
                    <p class="muted" data-test="spend-total">
                        {format!("{} in all: ", money(machines + rentals))}
                        <span class="key machines"></span>{format!("machines {} · ", money(machines))}
                        <span class="key rentals"></span>{format!("rentals {}", money(rentals))}
                    </p>
                    <div class="plot">
                        <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img"
                            aria-label=format!("Spending per day from {first} to {last}")>
                            {spend.iter().enumerate().map(|(i, (day, m, r))| view! {
                                <g data-day=day.clone()>
                                    <title>{format!("{day}: machines {}, rentals {}", money(*m), money(*r))}</title>
                                    <rect class="hit" x=format!("{:.2}", i as f64 * slot) y="0" width=format!("{slot:.2}") height=H/>
                                    {bar(i, 0, *m, "machines")}
                                    {bar(i, *m, *r, "rentals")}
                                </g>
                            }).collect_view()}
                        </svg>
                        <span class="scale top">{money(top as i64)}</span>
                        <span class="scale left">{first}</span>
                        <span class="scale right">{last}</span>
                    </div>
                }.into_any()
            }}
        </section>
    }
}
