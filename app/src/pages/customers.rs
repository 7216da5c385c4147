//! The operator's customers (`/operator/customers`, admins only): search by e-mail, username or
//! id; a customer's page with their money, machines, rentals and pools, and what an operator does
//! for or to them — credit or debit (the customer's line apart from the operators' note), suspend
//! and reinstate, lift a sign-in lockout, stop, start or delete a machine saying why. All of it
//! goes through the same services as `/api/admin/users` and `/api/admin/machines`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use model::accounts::{Customer, CustomerDetail};
use model::compute::OperatorMachine;
use serde::{Deserialize, Serialize};

use crate::components::data;
use crate::components::format::{balance, matching, when};
use crate::components::forms::{
    answer_status, error_message, ActionError, CsrfField, SubmitButton,
};
use crate::components::guard::RequireUser;
use crate::error::PortalError;
use crate::pages::operator::OperatorList;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerList {
    pub customers: Vec<Customer>,
    pub total: i64,
}

#[server(prefix = "/_fn", endpoint = "operator_customers")]
pub async fn load_customers(q: String) -> Result<CustomerList, PortalError> {
    let signed_in = super::operator::require_operator(None).await?;
    let (customers, total) =
        domain::operators::customers::search(&signed_in.state.db, &q, 50, 0).await?;
    Ok(CustomerList { customers, total })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerPageData {
    pub detail: CustomerDetail,
    /// Adjustments above this many USD need the confirmation box.
    pub confirm_over_usd: i64,
    pub max_usd: i64,
}

#[server(prefix = "/_fn", endpoint = "operator_customer")]
pub async fn load_customer(id: String) -> Result<CustomerPageData, PortalError> {
    let signed_in = super::operator::require_operator(None).await?;
    let config = &signed_in.state.config;
    Ok(CustomerPageData {
        detail: domain::operators::customers::detail(&signed_in.state.db, &id).await?,
        confirm_over_usd: config.confirm_adjustment_over_usd,
        max_usd: config.max_adjustment_usd,
    })
}

/// `suspend` (with `reason`), `reinstate` or `unlock`.
#[server(prefix = "/_fn", endpoint = "operator_customer_action")]
pub async fn customer_action(
    csrf: String,
    id: String,
    action: String,
    #[server(default)] reason: String,
) -> Result<String, PortalError> {
    use domain::operators::customers;
    let signed_in = super::operator::require_operator(Some(&csrf)).await?;
    let (state, me) = (&signed_in.state, &signed_in.user.id);
    Ok(match action.as_str() {
        "suspend" => {
            customers::suspend(state, me, &id, &reason).await?;
            "Suspended: signed out everywhere, its machines are stopping, and the customer was mailed the reason.".into()
        }
        "reinstate" => {
            customers::reinstate(state, me, &id).await?;
            "Reinstated: the customer can sign in again (and was mailed).".into()
        }
        "unlock" => {
            customers::unlock(&state.db, me, &id).await?;
            "Sign-ins are open again.".into()
        }
        "password_reset" => {
            domain::accounts::recovery::send_by_operator(&state.db, &state.config, me, &id).await?;
            "A link to set a new password was mailed to the customer (it works for an hour).".into()
        }
        _ => return Err(PortalError::invalid("Unknown action")),
    })
}

/// Credits (positive) or debits (negative) `amount` USD.
#[server(prefix = "/_fn", endpoint = "operator_credit")]
pub async fn credit_customer(
    csrf: String,
    id: String,
    amount: String,
    #[server(default)] description: String,
    #[server(default)] note: String,
    #[server(default)] confirm: String,
) -> Result<String, PortalError> {
    use domain::money::ledger;
    let signed_in = super::operator::require_operator(Some(&csrf)).await?;
    let amount: f64 = amount
        .trim()
        .parse()
        .map_err(|_| PortalError::invalid("The amount is a number of dollars, e.g. 25 or -4.50"))?;
    let words = ledger::AdjustmentWords {
        note: Some(note.as_str()).filter(|n| !n.trim().is_empty()),
        description: Some(description.as_str()).filter(|d| !d.trim().is_empty()),
        confirmed: confirm == "on",
    };
    let done = ledger::adjust(
        &signed_in.state.db,
        &signed_in.state.config,
        &signed_in.user.id,
        &id,
        amount,
        words,
    )
    .await?;
    Ok(format!(
        "Done: {}. The balance is now {}.",
        crate::components::format::movement(done.amount_micros),
        balance(done.balance_micros)
    ))
}

/// `start`, `stop` or `delete` anyone's machine, saying why.
#[server(prefix = "/_fn", endpoint = "operator_machine_action")]
pub async fn operator_machine_action(
    csrf: String,
    id: String,
    action: String,
    why: String,
) -> Result<String, PortalError> {
    use domain::compute::instances::{self, Action};
    let signed_in = super::operator::require_operator(Some(&csrf)).await?;
    let act = match action.as_str() {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "delete" => Action::Delete,
        _ => return Err(PortalError::invalid("Unknown action")),
    };
    let why = why.trim();
    if why.is_empty() {
        return Err(PortalError::invalid(
            "Say why: the machine's owner reads it",
        ));
    }
    let (inst, _) =
        instances::act_as_operator(&signed_in.state, &signed_in.user.id, &id, act, why).await?;
    Ok(format!("{} of {} requested.", action, inst.name))
}

#[component]
pub fn CustomersPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let data = data::load(q, load_customers);
    view! {
        <OperatorList title="Customers" data list=|list| view! { <CustomerTable list/> }>
            <form method="get" action="/operator/customers" class="form form-row" data-test="customer-search">
                <label>"Find by e-mail, username or id"
                    <input type="search" name="q" value=q maxlength="254" placeholder="alice@example.com"/>
                </label>
                <button type="submit" class="btn">"Search"</button>
            </form>
        </OperatorList>
    }
}

#[component]
fn CustomerTable(list: CustomerList) -> impl IntoView {
    if list.customers.is_empty() {
        return view! { <section class="card"><p class="muted" data-test="no-customers">"Nobody matches."</p></section> }.into_any();
    }
    let shown = list.customers.len();
    view! {
        <section class="card">
            <p class="muted" data-test="customer-count">{matching(list.total, shown, ("customer", "customers"), "the newest")}</p>
            <div class="table-wrap">
                <table class="table" data-test="customer-table">
                    <thead><tr><th>"Customer"</th><th>"Balance"</th><th>"Machines"</th><th>"Last sign-in"</th><th>"Since"</th></tr></thead>
                    <tbody>
                        {list.customers.into_iter().map(|c| view! {
                            <tr data-test="customer-row">
                                <td data-label="Customer">
                                    <a href=format!("/operator/customers/{}", c.id)>{c.username.clone()}</a>" "
                                    <StatusTags c=c.clone()/>
                                    <br/><small class="muted">{c.email.clone()}</small>
                                </td>
                                <td data-label="Balance" class="num">{balance(c.balance.0)}</td>
                                <td data-label="Machines" class="num">{c.machines}</td>
                                <td data-label="Last sign-in">{c.last_sign_in.as_deref().map(when).unwrap_or_else(|| "never".into())}</td>
                                <td data-label="Since">{when(&c.created_at)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn StatusTags(c: Customer) -> impl IntoView {
    view! {
        {c.is_admin.then(|| view! { <span class="tag">"operator"</span> })}
        {c.suspended.is_some().then(|| view! { <span class="status status-error" data-test="tag-suspended">"suspended"</span> })}
        {c.deleted.then(|| view! { <span class="status">"closed"</span> })}
    }
}

#[component]
pub fn CustomerPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let act = ServerAction::<CustomerAction>::new();
    // Its answer shows beside its button, not under the suspension form.
    let reset = ServerAction::<CustomerAction>::new();
    let credit = ServerAction::<CreditCustomer>::new();
    let machine = ServerAction::<OperatorMachineAction>::new();
    let data = data::load(
        move || {
            (
                id(),
                act.version().get(),
                credit.version().get(),
                machine.version().get(),
            )
        },
        |(id, ..)| load_customer(id),
    );
    view! {
        <Title text="Customer"/>
        <RequireUser signed_in=move |_| view! {
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => { answer_status(&e); view! { <section class="card"><p class="alert alert-error">{error_message(&e)}</p><p><a href="/operator/customers">"All customers"</a></p></section> }.into_any() }
                        Ok(d) => view! { <Customer d act reset credit machine/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn Customer(
    d: CustomerPageData,
    act: ServerAction<CustomerAction>,
    reset: ServerAction<CustomerAction>,
    credit: ServerAction<CreditCustomer>,
    machine: ServerAction<OperatorMachineAction>,
) -> impl IntoView {
    let c = d.detail.clone();
    // Every form carries it, each in a closure of its own.
    let id = StoredValue::new(c.customer.id.clone());
    let amount = RwSignal::new(String::new());
    let threshold = d.confirm_over_usd as f64;
    let needs_confirm =
        move || amount.with(|a| a.trim().parse::<f64>().is_ok_and(|v| v.abs() > threshold));
    let done = move |a: ServerAction<CustomerAction>| {
        move || {
            a.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="customer-done">{m}</p> })
        }
    };
    view! {
        <section class="page-head">
            <p><a href="/operator/customers">"← Customers"</a></p>
            <h1 data-test="customer-name">{c.customer.username.clone()}" "<StatusTags c=c.customer.clone()/></h1>
            <p class="muted">{c.customer.email.clone()}" · "<code>{c.customer.id.clone()}</code></p>
            {c.customer.suspended.clone().map(|r| view! {
                <p class="alert alert-warn" data-test="customer-suspended">{format!("Suspended: {r}")}</p>
            })}
        </section>
        <section class="card">
            <h2>"Account"</h2>
            <dl class="facts" data-test="customer-facts">
                <dt>"Balance"</dt><dd data-test="customer-balance">{balance(c.customer.balance.0)}</dd>
                <dt>"Spent, 30 days"</dt><dd>{crate::components::format::money(c.spent_30d.0)}</dd>
                <dt>"Customer since"</dt><dd>{when(&c.customer.created_at)}</dd>
                <dt>"Last sign-in"</dt><dd>{c.customer.last_sign_in.as_deref().map(when).unwrap_or_else(|| "never".into())}</dd>
                <dt>"Two-factor sign-in"</dt><dd>{if c.two_factor { "on" } else { "off" }}</dd>
                <dt>"API tokens"</dt><dd>{c.tokens}</dd>
                <dt>"Sign-ins"</dt><dd>{match c.locked_until.clone() {
                    Some(until) => view! {
                        {format!("locked until {} (too many wrong passwords) ", when(&until))}
                        <ActionForm action=act attr:class="inline-form">
                            <CsrfField/><input type="hidden" name="id" value=id.get_value()/><input type="hidden" name="action" value="unlock"/>
                            <button type="submit" class="btn btn-sm" data-test="unlock">"Unlock now"</button>
                        </ActionForm>
                    }.into_any(),
                    None => "not locked".into_any(),
                }}</dd>
                <dt>"Password"</dt><dd>
                    <ActionForm action=reset attr:class="inline-form">
                        <CsrfField/><input type="hidden" name="id" value=id.get_value()/><input type="hidden" name="action" value="password_reset"/>
                        <button type="submit" class="btn btn-sm" data-test="send-reset">"Send a reset link"</button>
                    </ActionForm>
                    <ActionError action=reset/>
                    {done(reset)}
                </dd>
            </dl>
        </section>
        <section class="card">
            <h2>"Credit or debit"</h2>
            <ActionForm action=credit attr:class="form" attr:data-test="credit-form">
                <CsrfField/>
                <input type="hidden" name="id" value=id.get_value()/>
                <div class="form-row">
                    <label>"Amount, USD (negative to debit)"
                        <input type="text" name="amount" inputmode="decimal" required placeholder="25.00"
                            on:input=move |ev| amount.set(event_target_value(&ev))/>
                    </label>
                    <label>"What the customer reads"
                        <input type="text" name="description" maxlength="120" placeholder="Credit from the platform"/>
                    </label>
                </div>
                <label>"Note for operators (never shown to the customer)"
                    <input type="text" name="note" maxlength="500" placeholder="ticket #4711: outage compensation"/>
                </label>
                <Show when=needs_confirm>
                    <label class="check" data-test="credit-confirm"><input type="checkbox" name="confirm"/>
                        {format!("Yes, more than ${}: I checked the amount", d.confirm_over_usd)}</label>
                </Show>
                <p class="muted small">{format!("At most ${} at once.", d.max_usd)}</p>
                <SubmitButton action=credit label="Apply" busy_label="Applying…"/>
            </ActionForm>
            <ActionError action=credit/>
            {move || credit.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="credit-done">{m}</p> })}
        </section>
        <section class="card">
            <h2>{format!("Machines ({})", c.machine_list.len())}</h2>
            {if c.machine_list.is_empty() {
                view! { <p class="muted">"None."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-test="customer-machines">
                        <thead><tr><th>"Machine"</th><th>"State"</th><th>"Node"</th><th>"Act"</th></tr></thead>
                        <tbody>
                            {c.machine_list.iter().map(|m| view! {
                                <tr data-test="customer-machine" data-id=m.id.clone()>
                                    <td data-label="Machine">{m.name.clone()}" "<small class="muted">{m.kind.clone()}</small>
                                        {m.reason.clone().map(|r| view! { <br/><small class="muted">{r}</small> })}</td>
                                    <td data-label="State" data-test="customer-machine-state">{m.state.clone()}</td>
                                    <td data-label="Node">{m.node.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td data-label="Act"><MachineActions id=m.id.clone() action=machine/></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <ActionError action=machine/>
            {move || machine.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status">{m}</p> })}
        </section>
        <section class="card">
            <h2>"Rentals and pools"</h2>
            {if c.rentals.is_empty() { view! { <p class="muted">"No rentals."</p> }.into_any() } else {
                view! { <ul>{c.rentals.iter().map(|r| view! { <li>{format!("{} — {}, until {}", r.server, r.status, when(&r.ends_at))}</li> }).collect_view()}</ul> }.into_any()
            }}
            <p>{if c.pools.is_empty() { "In no pool.".to_owned() } else {
                format!("Pools: {}", c.pools.iter().map(|p| format!("{} ({})", p.name, p.role)).collect::<Vec<_>>().join(", "))
            }}</p>
        </section>
        <section class="card">
            <h2>"Suspension"</h2>
            {if c.customer.suspended.is_some() {
                view! {
                    <ActionForm action=act attr:class="inline-form" attr:data-test="reinstate-form">
                        <CsrfField/><input type="hidden" name="id" value=id.get_value()/><input type="hidden" name="action" value="reinstate"/>
                        <SubmitButton action=act label="Reinstate" busy_label="Reinstating…"/>
                    </ActionForm>
                }.into_any()
            } else if c.customer.is_admin || c.customer.deleted {
                view! { <p class="muted">"Operators' and closed accounts are not suspended."</p> }.into_any()
            } else {
                view! {
                    <p class="muted">"Suspending signs the customer out everywhere, refuses their sign-ins and API tokens with the reason, and stops (does not delete) their machines. They are mailed the reason."</p>
                    <ActionForm action=act attr:class="form" attr:data-test="suspend-form">
                        <CsrfField/><input type="hidden" name="id" value=id.get_value()/><input type="hidden" name="action" value="suspend"/>
                        <label>"Reason (the customer reads it)" <input type="text" name="reason" required maxlength="300" placeholder="unpaid invoice 2026-11"/></label>
                        <SubmitButton action=act label="Suspend" busy_label="Suspending…" class="btn-danger"/>
                    </ActionForm>
                }.into_any()
            }}
            <ActionError action=act/>
            {done(act)}
        </section>
    }
}

/// Stop, start or delete with a reason, behind a `details` so a row stays one line.
#[component]
fn MachineActions(id: String, action: ServerAction<OperatorMachineAction>) -> impl IntoView {
    view! {
        <details class="confirm" data-test="machine-act">
            <summary class="btn btn-sm">"Act…"</summary>
            <ActionForm action=action attr:class="form">
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <label>"Action"
                    <select name="action" data-test="op-action">
                        <option value="stop">"Stop"</option>
                        <option value="start">"Start"</option>
                        <option value="delete">"Delete, with its disk"</option>
                    </select>
                </label>
                <label>"Why (the owner reads it)" <input type="text" name="why" required maxlength="300" placeholder="abuse report #12"/></label>
                <SubmitButton action=action label="Do it" busy_label="Asking…" class="btn-sm"/>
            </ActionForm>
        </details>
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineList {
    pub machines: Vec<OperatorMachine>,
    pub total: i64,
}

#[server(prefix = "/_fn", endpoint = "operator_machines")]
pub async fn load_all_machines(q: String, state: String) -> Result<MachineList, PortalError> {
    let signed_in = super::operator::require_operator(None).await?;
    let state = Some(state.as_str()).filter(|s| !s.is_empty());
    let (machines, total) =
        domain::compute::instances::list_all(&signed_in.state.db, &q, state, 100, 0).await?;
    Ok(MachineList { machines, total })
}

#[component]
pub fn AllMachinesPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let state = move || query.read().get("state").unwrap_or_default();
    let machine = ServerAction::<OperatorMachineAction>::new();
    let data = data::load(
        move || (q(), state(), machine.version().get()),
        |(q, state, _)| load_all_machines(q, state),
    );
    view! {
        <OperatorList title="All machines" data list=move |list| view! { <MachineTable list machine/> }>
            <form method="get" action="/operator/machines" class="form form-row" data-test="machine-search">
                <label>"Name, id, or owner" <input type="search" name="q" value=q maxlength="254"/></label>
                <label>"State"
                    <select name="state">
                        {[("", "Any"), ("creating", "Creating"), ("running", "Running"), ("stopped", "Stopped"), ("error", "Error")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=move || state() == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn">"Show"</button>
            </form>
        </OperatorList>
    }
}

#[component]
fn MachineTable(list: MachineList, machine: ServerAction<OperatorMachineAction>) -> impl IntoView {
    if list.machines.is_empty() {
        return view! { <section class="card"><p class="muted" data-test="no-machines">"No machine matches."</p></section> }.into_any();
    }
    view! {
        <section class="card">
            <p class="muted">{matching(list.total, list.machines.len(), ("machine", "machines"), "the newest")}</p>
            <div class="table-wrap"><table class="table" data-test="all-machines">
                    <thead><tr><th>"Machine"</th><th>"Owner"</th><th>"State"</th><th>"Node"</th><th>"Created"</th><th>"Act"</th></tr></thead>
                    <tbody>
                        {list.machines.into_iter().map(|m| view! {
                            <tr data-test="all-machine" data-id=m.id.clone()>
                                <td data-label="Machine">{m.name.clone()}" "<small class="muted">{m.kind.clone()}</small>
                                    {m.reason.clone().map(|r| view! { <br/><small class="muted" data-test="all-machine-reason">{r}</small> })}</td>
                                <td data-label="Owner"><a href=format!("/operator/customers/{}", m.owner_id)>{m.owner.clone()}</a></td>
                                <td data-label="State" data-test="all-machine-state">{m.transition.clone().map(|t| format!("{t}…")).unwrap_or(m.state.clone())}</td>
                                <td data-label="Node">{m.node.clone().unwrap_or_else(|| "—".into())}</td>
                                <td data-label="Created">{when(&m.created_at)}</td>
                                <td data-label="Act"><MachineActions id=m.id.clone() action=machine/></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
                <ActionError action=machine/>
                {move || machine.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="op-machine-done">{m}</p> })}
        </section>
    }
    .into_any()
}

#[server(prefix = "/_fn", endpoint = "operator_tasks")]
pub async fn load_tasks(
    q: String,
    state: String,
) -> Result<Vec<model::compute::Task>, PortalError> {
    let signed_in = super::operator::require_operator(None).await?;
    let filter = domain::infra::queue::TaskFilter {
        state: Some(state).filter(|s| !s.is_empty()),
        query: Some(q),
        limit: 100,
    };
    Ok(domain::infra::queue::tasks(&signed_in.state.db, &filter).await?)
}

/// Background jobs like Proxmox's task log: what ran, on which machine of whom on which node,
/// how long, and how it ended (the error in full).
#[component]
pub fn TasksPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let state = move || query.read().get("state").unwrap_or_default();
    let data = data::load(move || (q(), state()), |(q, state)| load_tasks(q, state));
    view! {
        <OperatorList title="Tasks" data list=|tasks| view! { <TaskTable tasks/> }>
            <form method="get" action="/operator/tasks" class="form form-row" data-test="task-search">
                <label>"Machine, id, or owner" <input type="search" name="q" value=q maxlength="254"/></label>
                <label>"Outcome"
                    <select name="state">
                        {[("", "Any"), ("failed", "Failed"), ("running", "Running"), ("queued", "Queued"), ("done", "Done")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=move || state() == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn">"Show"</button>
            </form>
        </OperatorList>
    }
}

#[component]
fn TaskTable(tasks: Vec<model::compute::Task>) -> impl IntoView {
    if tasks.is_empty() {
        return view! { <section class="card"><p class="muted" data-test="no-tasks">"No task matches."</p></section> }.into_any();
    }
    view! {
            <section class="card">
                <div class="table-wrap"><table class="table" data-test="task-table">
                    <thead><tr><th>"Task"</th><th>"Machine"</th><th>"Owner"</th><th>"Node"</th><th>"Started"</th><th>"Took"</th><th>"Outcome"</th></tr></thead>
                    <tbody>
                        {tasks.into_iter().map(|t| {
                            let outcome_class = match t.state.as_str() {
                                "failed" => "status status-error",
                                "done" => "status status-active",
                                _ => "status status-busy",
                            };
                            view! {
                                <tr data-test="task-row" data-state=t.state.clone()>
                                    <td data-label="Task">{t.kind.clone()}{(t.attempts > 1).then(|| view! { <small class="muted">{format!(" (attempt {})", t.attempts)}</small> })}</td>
                                    <td data-label="Machine">{t.machine.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td data-label="Owner">{match (t.owner_id.clone(), t.owner.clone()) {
                                        (Some(id), Some(name)) => view! { <a href=format!("/operator/customers/{id}")>{name}</a> }.into_any(),
                                        _ => "—".into_any(),
                                    }}</td>
                                    <td data-label="Node">{t.node.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td data-label="Started">{t.started_at.as_deref().map(when).unwrap_or_else(|| "not yet".into())}</td>
                                    <td data-label="Took" class="num">{t.duration_ms.map(|ms| if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }).unwrap_or_default()}</td>
                                    <td data-label="Outcome"><span class=outcome_class>{t.state.clone()}</span>
                                        {t.error.clone().map(|e| view! { <br/><small class="multiline" data-test="task-error">{e}</small> })}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table></div>
            </section>
}
    .into_any()
}
