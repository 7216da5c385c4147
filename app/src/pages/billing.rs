//! Billing: the balance, every money movement (paginated), and low-balance alert addresses.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::components::forms::{error_message, ActionError, CsrfField, LoadFailed, SubmitButton};
use crate::components::guard::RequireUser;
use model::money::usd4;

const PAGE: i64 = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingData {
    pub balance: i64,
    pub movements: Vec<Movement>,
    pub total: i64,
    pub offset: i64,
    /// (id, email)
    pub notify_emails: Vec<(String, String)>,
    pub account_email: String,
    /// Card top-ups are configured (a Stripe key is set).
    pub payments: bool,
    /// The last 30 UTC days, oldest first: (day `YYYY-MM-DD`, machines µUSD, rentals µUSD).
    pub spend: Vec<(String, i64, i64)>,
    /// Months with a statement, newest first: (`YYYY-MM`, `December 2026`).
    pub statements: Vec<(String, String)>,
}

/// One line of the history as people read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    pub id: String,
    /// µUSD, signed.
    pub amount: i64,
    /// The kind in words: "Top-up", "Machine usage", ...
    pub kind: String,
    pub what: String,
    pub at: String,
    /// A top-up has a receipt (its page is `/billing/receipts/{id}`).
    pub receipt: bool,
}

/// A ledger kind as people say it.
#[cfg(feature = "ssr")]
fn kind_in_words(kind: &str) -> &'static str {
    match kind {
        "topup" => "Top-up",
        "rental" => "Rental",
        "extension" => "Rental extension",
        "usage" => "Machine usage",
        "refund" => "Refund",
        "credit" => "Adjustment",
        _ => "Other",
    }
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
            .map(|line| Movement {
                receipt: line.kind == "topup",
                kind: kind_in_words(&line.kind).to_owned(),
                what: match (&line.machine, line.minutes) {
                    (Some(machine), Some(minutes)) => {
                        format!(
                            "{machine} · {}",
                            crate::components::format::count(minutes, "minute", "minutes")
                        )
                    }
                    _ => line.description,
                },
                id: line.id,
                amount: line.amount_micros,
                at: rfc3339(line.created_at),
            })
            .collect(),
        total,
        offset,
        notify_emails: emails.into_iter().map(|n| (n.id, n.email)).collect(),
        account_email: user.email,
        payments: state.config.stripe_secret_key.is_some(),
        statements: billing::statement_months(&state.db, &user.id, domain::infra::db::now_ms())
            .await?
            .into_iter()
            .map(|m| (m.to_string(), m.title()))
            .collect(),
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
                        <tbody>{data.movements.into_iter().map(|m| view! {
                            <tr data-test="movement">
                                <td data-label="When">{crate::components::format::when(&m.at)}</td>
                                <td data-label="What">{m.what}
                                    {m.receipt.then(|| view! {
                                        " " <a class="receipt-link" data-test="receipt-link" href=format!("/billing/receipts/{}", m.id)>"Receipt"</a>
                                    })}
                                </td>
                                <td data-label="Kind">{m.kind}</td>
                                <td data-label="Amount" class=if m.amount < 0 { "num debit" } else { "num credit" }>
                                    {crate::components::format::movement(m.amount)}
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
        <section class="card" data-test="statements">
            <h2>"Monthly statements"</h2>
            <p class="muted">"Everything that moved your balance in a month, per machine and rental, ready to print or save as PDF."</p>
            <ul class="chips">
                {data.statements.into_iter().map(|(month, title)| view! {
                    <li><a class="chip" data-test="statement-link" href=format!("/billing/statements/{month}")>{title}</a></li>
                }).collect_view()}
            </ul>
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

/// Who sells and who buys, as printed at the top of receipts and statements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parties {
    pub seller: String,
    pub seller_details: Vec<String>,
    pub customer: String,
    pub email: String,
}

#[cfg(feature = "ssr")]
fn parties(
    config: &domain::infra::config::Config,
    user: &domain::accounts::users::User,
) -> Parties {
    Parties {
        seller: config.business_name.clone(),
        seller_details: config
            .business_details
            .as_deref()
            .map(|d| d.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
        customer: user.username.clone(),
        email: user.email.clone(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementData {
    pub parties: Parties,
    /// `2026-12`
    pub month: String,
    /// `December 2026`
    pub title: String,
    pub opening: i64,
    pub closing: i64,
    pub credits: Vec<Movement>,
    pub rentals: Vec<Movement>,
    /// (machine, minutes, µUSD)
    pub machines: Vec<(String, i64, i64)>,
    pub other_usage: i64,
    /// When it was made (a statement of the current month is not final).
    pub issued: String,
    pub current: bool,
}

#[server(prefix = "/_fn", endpoint = "statement")]
pub async fn load_statement(month: String) -> Result<StatementData, PortalError> {
    use crate::ssr::portal;
    use domain::infra::db::{now_ms, rfc3339};
    use domain::money::billing;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let month: billing::Month = month.parse()?;
    let now = now_ms();
    let st = billing::statement(&state.db, &user.id, month, now).await?;
    let movement = |e: domain::money::ledger::Entry| Movement {
        receipt: e.kind == "topup",
        kind: kind_in_words(&e.kind).to_owned(),
        what: e.description,
        id: e.id,
        amount: e.amount_micros,
        at: rfc3339(e.created_at),
    };
    Ok(StatementData {
        parties: parties(&state.config, &user),
        month: month.to_string(),
        title: month.title(),
        opening: st.opening_micros,
        closing: st.closing_micros,
        credits: st.credits.into_iter().map(movement).collect(),
        rentals: st.rentals.into_iter().map(movement).collect(),
        machines: st
            .machines
            .into_iter()
            .map(|m| (m.name, m.minutes, m.amount_micros))
            .collect(),
        other_usage: st.other_usage_micros,
        issued: rfc3339(now),
        current: month == billing::Month::of(now),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptData {
    pub parties: Parties,
    pub number: String,
    pub at: String,
    pub amount: i64,
    pub what: String,
    /// The payment's reference at the card processor (the Stripe Checkout session).
    pub reference: Option<String>,
}

#[server(prefix = "/_fn", endpoint = "receipt")]
pub async fn load_receipt(id: String) -> Result<ReceiptData, PortalError> {
    use crate::ssr::portal;
    use domain::infra::db::rfc3339;
    use domain::money::billing;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let e = billing::receipt(&state.db, &user.id, &id).await?;
    Ok(ReceiptData {
        parties: parties(&state.config, &user),
        number: e.id,
        at: rfc3339(e.created_at),
        amount: e.amount_micros,
        what: e.description,
        reference: e.reference,
    })
}

/// The seller and the customer, side by side at the top of a document.
#[component]
fn PartiesHead(parties: Parties) -> impl IntoView {
    view! {
        <div class="doc-parties">
            <div data-test="seller">
                <strong>{parties.seller}</strong>
                {parties.seller_details.into_iter().map(|l| view! { <br/>{l} }).collect_view()}
            </div>
            <div class="doc-customer" data-test="customer">
                <span class="muted">"Customer"</span><br/>
                <strong>{parties.customer}</strong><br/>{parties.email}
            </div>
        </div>
    }
}

/// The buttons above a document; hidden when it is printed.
#[component]
fn DocumentActions(#[prop(optional)] narrow: bool) -> impl IntoView {
    view! {
        <div class="doc-actions no-print" class:narrow=narrow>
            <a class="btn btn-ghost" href="/billing">"← Billing"</a>
            <button type="button" class="btn" data-test="print"
                on:click=|_| { let _ = window().print(); }>"Print or save as PDF"</button>
        </div>
    }
}

/// `/billing/statements/{YYYY-MM}`: one month, printable.
#[component]
pub fn StatementPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let data = data::load(
        move || params.with(|p| p.get("month").unwrap_or_default()),
        load_statement,
    );
    view! {
        <Title text="Statement"/>
        <RequireUser signed_in=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(d) => view! { <Statement data=d/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn Statement(data: StatementData) -> impl IntoView {
    use crate::components::format::{count, day, money, movement, when};
    let machines_total: i64 = data.machines.iter().map(|m| m.2).sum();
    let rentals_total: i64 = data.rentals.iter().map(|m| -m.amount).sum();
    let credits_total: i64 = data.credits.iter().map(|m| m.amount).sum();
    let rows = |lines: Vec<Movement>| {
        lines
            .into_iter()
            .map(|m| {
                view! {
                    <tr data-test="statement-line">
                        <td>{day(&m.at)}</td>
                        <td>{m.what}" "<span class="muted">{format!("({})", m.kind)}</span></td>
                        <td class="num">{movement(m.amount)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <Title text=format!("Statement {}", data.title)/>
        <DocumentActions/>
        <article class="card document" data-test="statement">
            <PartiesHead parties=data.parties/>
            <h1>{format!("Statement for {}", data.title)}</h1>
            <p class="muted">
                {format!("Issued {}", when(&data.issued))}
                {data.current.then_some(" — this month is not over: the statement grows until it ends.")}
            </p>
            <table class="table doc-summary" data-test="statement-summary">
                <tbody>
                    <tr><td>"Balance at the start of the month"</td><td class="num" data-test="opening">{money(data.opening)}</td></tr>
                    <tr><td>"Top-ups, refunds and adjustments"</td><td class="num">{movement(credits_total)}</td></tr>
                    <tr><td>"Rentals"</td><td class="num">{movement(-rentals_total)}</td></tr>
                    <tr><td>"Machines"</td><td class="num">{movement(-(machines_total + data.other_usage))}</td></tr>
                    <tr class="doc-total"><td>"Balance at the end of the month"</td><td class="num" data-test="closing">{money(data.closing)}</td></tr>
                </tbody>
            </table>
            <h2>"Machines"</h2>
            {if data.machines.is_empty() && data.other_usage == 0 {
                view! { <p class="muted">"No machine ran this month."</p> }.into_any()
            } else {
                view! {
                    <table class="table" data-test="statement-machines">
                        <thead><tr><th>"Machine"</th><th class="num">"Time"</th><th class="num">"Cost"</th></tr></thead>
                        <tbody>
                            {data.machines.into_iter().map(|(name, minutes, amount)| view! {
                                <tr data-test="statement-machine">
                                    <td>{name}</td>
                                    <td class="num">{if minutes >= 120 { format!("{:.1} hours", minutes as f64 / 60.0) } else { count(minutes, "minute", "minutes") }}</td>
                                    <td class="num">{movement(-amount)}</td>
                                </tr>
                            }).collect_view()}
                            {(data.other_usage != 0).then(|| view! {
                                <tr data-test="statement-other-usage">
                                    <td colspan="2">"Usage while the balance ran out (charged up to the balance)"</td>
                                    <td class="num">{movement(-data.other_usage)}</td>
                                </tr>
                            })}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <h2>"Rentals"</h2>
            {if data.rentals.is_empty() {
                view! { <p class="muted">"No rental this month."</p> }.into_any()
            } else {
                view! { <table class="table" data-test="statement-rentals"><tbody>{rows(data.rentals)}</tbody></table> }.into_any()
            }}
            <h2>"Top-ups, refunds and adjustments"</h2>
            {if data.credits.is_empty() {
                view! { <p class="muted">"None this month."</p> }.into_any()
            } else {
                view! { <table class="table" data-test="statement-credits"><tbody>{rows(data.credits)}</tbody></table> }.into_any()
            }}
            <p class="muted doc-foot">"Amounts in US dollars. Machines are charged per minute from the prepaid balance; rentals when they start or are extended."</p>
        </article>
    }
}

/// `/billing/receipts/{id}`: a card top-up's receipt, printable.
#[component]
pub fn ReceiptPage() -> impl IntoView {
    let params = leptos_router::hooks::use_params_map();
    let data = data::load(
        move || params.with(|p| p.get("id").unwrap_or_default()),
        load_receipt,
    );
    view! {
        <Title text="Receipt"/>
        <RequireUser signed_in=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(r) => view! {
                            <DocumentActions narrow=true/>
                            <article class="card document narrow" data-test="receipt">
                                <PartiesHead parties=r.parties/>
                                <h1>"Receipt"</h1>
                                <table class="table doc-summary">
                                    <tbody>
                                        <tr><td>"Receipt number"</td><td class="num" data-test="receipt-number">{r.number}</td></tr>
                                        <tr><td>"Date"</td><td class="num">{crate::components::format::when(&r.at)}</td></tr>
                                        <tr><td>"For"</td><td class="num">{r.what}</td></tr>
                                        <tr><td>"Paid by"</td><td class="num">"Card, through Stripe"</td></tr>
                                        {r.reference.map(|p| view! { <tr><td>"Payment reference"</td><td class="num ref">{p}</td></tr> })}
                                        <tr class="doc-total"><td>"Amount paid"</td><td class="num" data-test="receipt-amount">{crate::components::format::money(r.amount)}</td></tr>
                                    </tbody>
                                </table>
                                <p class="muted doc-foot">"Added to your prepaid balance, which pays for machines and rentals."</p>
                            </article>
                        }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}
