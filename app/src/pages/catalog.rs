//! The catalog as operators manage it (admins only): `/operator/catalog` lists every plan, image
//! and template — retired ones too, with what uses each and which nodes hold an image — with
//! retire, restore and (for an image nothing uses) delete, and a form that adds a plan or
//! changes one (fields left empty keep their value); `/operator/inventory` lists the
//! marketplace's servers with who rents each until when. The same services answer
//! `/api/admin/plans`, `/images`, `/templates` and `/marketplace/servers`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use model::compute::{OperatorImage, OperatorPlan, OperatorTemplate};
use model::market::Inventory;
use serde::{Deserialize, Serialize};

use crate::components::data;
use crate::components::format::{balance, count, day, matching, memory, money};
use crate::components::forms::{
    answer_status, error_message, ActionError, CsrfField, SubmitButton,
};
use crate::components::guard::RequireUser;
use crate::error::PortalError;
use crate::pages::operator::OperatorList;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogData {
    pub plans: Vec<OperatorPlan>,
    pub images: Vec<OperatorImage>,
    pub templates: Vec<OperatorTemplate>,
}

#[server(prefix = "/_fn", endpoint = "operator_catalog")]
pub async fn load_catalog() -> Result<CatalogData, PortalError> {
    use domain::operators::catalog;
    let state = super::operator::require_operator(None).await?.state;
    Ok(CatalogData {
        plans: catalog::plans(&state.db, &state.config).await?,
        images: catalog::images(&state.db).await?,
        templates: catalog::templates(&state.db).await?,
    })
}

/// `retire`, `restore` or (images only) `delete` the plan, image or template `slug`; audited as
/// the API's routes are.
#[server(prefix = "/_fn", endpoint = "operator_catalog_action")]
pub async fn catalog_action(
    csrf: String,
    what: String,
    slug: String,
    action: String,
) -> Result<String, PortalError> {
    use domain::fleet::{catalog, survey};
    let s = super::operator::require_operator(Some(&csrf)).await?;
    let db = &s.state.db;
    let restore = serde_json::json!({"active": true});
    match (what.as_str(), action.as_str()) {
        ("plan", "retire") => catalog::retire(db, catalog::Retire::Plan, &slug).await?,
        ("plan", "restore") => {
            catalog::patch_plan(db, &slug, restore).await?;
        }
        ("template", "retire") => catalog::retire(db, catalog::Retire::Template, &slug).await?,
        ("template", "restore") => {
            catalog::patch_template(db, &slug, restore).await?;
        }
        ("image", "retire") => catalog::retire(db, catalog::Retire::Image, &slug).await?,
        ("image", "restore") => {
            catalog::patch_image(db, &slug, restore).await?;
            survey::all(db, &s.state.drivers).await?;
        }
        ("image", "delete") => catalog::delete_image(db, &slug).await?,
        _ => return Err(PortalError::invalid("Unknown action")),
    }
    let verb = match action.as_str() {
        "retire" => "retired",
        "restore" => "offered again",
        _ => "deleted",
    };
    let target = Some(slug.as_str());
    super::operator::audited(
        &s,
        &format!("{what}.{action}"),
        &what,
        target,
        serde_json::json!({}),
    )
    .await?;
    let noun = match what.as_str() {
        "plan" => "Plan",
        "image" => "Image",
        _ => "Template",
    };
    Ok(format!("{noun} {slug} {verb}."))
}

/// What the plan form sends: a new plan whole, or an existing one's changes (empty fields keep
/// their value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanForm {
    pub slug: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub vcpu: String,
    #[serde(default)]
    pub memory_mb: String,
    #[serde(default)]
    pub disk_gb: String,
    #[serde(default)]
    pub price_hourly: String,
}

#[server(prefix = "/_fn", endpoint = "operator_put_plan")]
pub async fn put_plan(csrf: String, plan: PlanForm) -> Result<String, PortalError> {
    let s = super::operator::require_operator(Some(&csrf)).await?;
    let mut body = serde_json::Map::new();
    body.insert("slug".into(), plan.slug.trim().into());
    let text = [("name", &plan.name), ("kind", &plan.kind)];
    for (key, value) in text {
        if !value.trim().is_empty() {
            body.insert(key.into(), value.trim().into());
        }
    }
    let numbers = [
        ("vcpu", &plan.vcpu),
        ("memory_mb", &plan.memory_mb),
        ("disk_gb", &plan.disk_gb),
        ("price_hourly", &plan.price_hourly),
    ];
    for (key, value) in numbers {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let number: f64 = value
            .parse()
            .map_err(|_| PortalError::invalid(format!("{key}: a number, please")))?;
        let json = if key == "price_hourly" {
            serde_json::json!(number)
        } else {
            serde_json::json!(number as i64)
        };
        body.insert(key.into(), json);
    }
    let row = domain::fleet::catalog::put_plan(&s.state.db, body.into()).await?;
    let details = serde_json::json!({"price_hourly": row.price_hourly_micros, "vcpu": row.vcpu, "memory_mb": row.memory_mb});
    super::operator::audited(&s, "plan.put", "plan", Some(&row.slug), details).await?;
    Ok(format!("Plan {} saved.", row.slug))
}

#[component]
pub fn CatalogPage() -> impl IntoView {
    let act = ServerAction::<CatalogAction>::new();
    let put = ServerAction::<PutPlan>::new();
    let data = data::load(
        move || (act.version().get(), put.version().get()),
        |_| load_catalog(),
    );
    view! {
        <Title text="Catalog"/>
        <RequireUser signed_in=move |_| view! {
            <section class="page-head">
                <p><a href="/operator">"← Operator"</a></p>
                <h1>"Catalog"</h1>
                <p class="muted">"What customers choose from. Retiring takes a plan, image or template off the offer; machines already made from it keep running (and keep their price)."</p>
            </section>
            <ActionError action=act/>
            {move || act.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="catalog-done">{m}</p> })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => { answer_status(&e); view! { <p class="alert alert-error">{error_message(&e)}</p> }.into_any() }
                        Ok(d) => view! {
                            <Plans plans=d.plans act put/>
                            <Images images=d.images act/>
                            <Templates templates=d.templates act/>
                        }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

/// Retire / restore (and delete, when `delete`) buttons for one catalog entry.
#[component]
fn EntryActions(
    what: &'static str,
    slug: String,
    active: bool,
    #[prop(optional)] delete: bool,
    act: ServerAction<CatalogAction>,
) -> impl IntoView {
    let button = move |action: &'static str, label: &'static str, class: &'static str| {
        let slug = slug.clone();
        view! {
            <ActionForm action=act attr:class="inline-form">
                <CsrfField/>
                <input type="hidden" name="what" value=what/>
                <input type="hidden" name="slug" value=slug/>
                <input type="hidden" name="action" value=action/>
                <button type="submit" class=format!("btn btn-sm {class}") data-test=format!("{what}-{action}")>{label}</button>
            </ActionForm>
        }
    };
    view! {
        <div class="row-actions">
            {if active { button("retire", "Retire", "btn-ghost").into_any() } else { button("restore", "Offer again", "").into_any() }}
            {delete.then(|| button("delete", "Delete", "btn-danger"))}
        </div>
    }
}

fn status_tag(active: bool) -> impl IntoView {
    if active {
        view! { <span class="status status-ok">"offered"</span> }.into_any()
    } else {
        view! { <span class="status" data-test="retired">"retired"</span> }.into_any()
    }
}

#[component]
fn Plans(
    plans: Vec<OperatorPlan>,
    act: ServerAction<CatalogAction>,
    put: ServerAction<PutPlan>,
) -> impl IntoView {
    view! {
        <section class="card" data-test="plans">
            <h2>"Plans"</h2>
            <div class="table-wrap"><table class="table">
                <thead><tr><th>"Plan"</th><th>"Size"</th><th>"Per hour"</th><th>"Machines"</th><th>"Status"</th><th></th></tr></thead>
                <tbody>
                    {plans.into_iter().map(|p| view! {
                        <tr data-test="plan-row" data-slug=p.plan.slug.clone()>
                            <td data-label="Plan">{p.plan.name.clone()}<br/><small class="muted"><code>{p.plan.slug.clone()}</code>" · "{p.plan.kind.as_str()}</small></td>
                            <td data-label="Size">{format!("{} vCPU · {} · {} GB", p.plan.vcpu, memory(p.plan.memory_mb), p.plan.disk_gb)}</td>
                            <td data-label="Per hour" class="num">{balance(p.plan.price_hourly.0)}</td>
                            <td data-label="Machines" class="num">{p.machines}</td>
                            <td data-label="Status">{status_tag(p.active)}</td>
                            <td><EntryActions what="plan" slug=p.plan.slug.clone() active=p.active act/></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
            <details class="disclosure" data-test="plan-form">
                <summary class="btn btn-sm">"Add a plan, or change one"</summary>
                <p class="muted small">"Name a new slug to add a plan (every field needed), or an existing one to change it: fields left empty keep their value. Running machines keep the price they were created at."</p>
                <ActionForm action=put attr:class="form form-grid">
                    <CsrfField/>
                    <label>"Slug" <input type="text" name="plan[slug]" required maxlength="63" pattern="[a-z0-9.\\-]+" placeholder="small"/></label>
                    <label>"Name" <input type="text" name="plan[name]" maxlength="100" placeholder="Small"/></label>
                    <label>"Kind"
                        <select name="plan[kind]">
                            <option value="">"(unchanged)"</option>
                            <option value="vm">"VM"</option>
                            <option value="container">"Container"</option>
                        </select>
                    </label>
                    <label>"vCPU" <input type="number" name="plan[vcpu]" min="1" max="512"/></label>
                    <label>"Memory (MB)" <input type="number" name="plan[memory_mb]" min="16"/></label>
                    <label>"Disk (GB)" <input type="number" name="plan[disk_gb]" min="1"/></label>
                    <label>"USD per hour" <input type="number" name="plan[price_hourly]" min="0" step="0.0001"/></label>
                    <ActionError action=put/>
                    {move || put.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="plan-saved">{m}</p> })}
                    <SubmitButton action=put label="Save plan" busy_label="Saving…"/>
                </ActionForm>
            </details>
        </section>
    }
}

#[component]
fn Images(images: Vec<OperatorImage>, act: ServerAction<CatalogAction>) -> impl IntoView {
    view! {
        <section class="card" data-test="images">
            <h2>"Images"</h2>
            <p class="muted small">"Customers are offered an image while it is not retired and some active node holds it. An image nothing uses can be deleted (nodes keep their copy)."</p>
            <div class="table-wrap"><table class="table">
                <thead><tr><th>"Image"</th><th>"Source"</th><th>"Held by"</th><th>"Used by"</th><th>"Status"</th><th></th></tr></thead>
                <tbody>
                    {images.into_iter().map(|i| {
                        let unused = i.machines == 0 && i.templates == 0;
                        view! {
                            <tr data-test="image-row" data-slug=i.image.slug.clone()>
                                <td data-label="Image">{i.image.name.clone()}{i.image.is_default.then(|| view! { " "<span class="tag">"default"</span> })}{i.app.then(|| view! { " "<span class="tag">"app"</span> })}
                                    <br/><small class="muted"><code>{i.image.slug.clone()}</code>" · "{i.image.kind.as_str()}</small></td>
                                <td data-label="Source" class="wrap"><small><code>{i.source.clone()}</code></small></td>
                                <td data-label="Held by" data-test="image-nodes">{if i.nodes.is_empty() { "no node".to_owned() } else { i.nodes.join(", ") }}</td>
                                <td data-label="Used by">{format!("{}, {}", count(i.machines, "machine", "machines"), count(i.templates, "template", "templates"))}</td>
                                <td data-label="Status">{status_tag(i.active)}</td>
                                <td><EntryActions what="image" slug=i.image.slug.clone() active=i.active delete=unused act/></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}

#[component]
fn Templates(templates: Vec<OperatorTemplate>, act: ServerAction<CatalogAction>) -> impl IntoView {
    view! {
        <section class="card" data-test="templates">
            <h2>"Templates"</h2>
            {if templates.is_empty() {
                view! { <p class="muted">"No templates. Add one with PUT /api/admin/templates."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table">
                        <thead><tr><th>"Template"</th><th>"Plan · image"</th><th>"Used"</th><th>"Status"</th><th></th></tr></thead>
                        <tbody>
                            {templates.into_iter().map(|t| view! {
                                <tr data-test="template-row" data-slug=t.template.slug.clone()>
                                    <td data-label="Template">{t.template.name.clone()}<br/><small class="muted"><code>{t.template.slug.clone()}</code></small></td>
                                    <td data-label="Plan · image"><code>{t.plan.clone()}</code>" · "<code>{t.template.image.clone()}</code></td>
                                    <td data-label="Used" class="num">{t.template.popularity}</td>
                                    <td data-label="Status">{status_tag(t.active)}</td>
                                    <td><EntryActions what="template" slug=t.template.slug.clone() active=t.active act/></td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

#[server(prefix = "/_fn", endpoint = "operator_inventory")]
pub async fn load_inventory(q: String, status: String) -> Result<Inventory, PortalError> {
    let state = super::operator::require_operator(None).await?.state;
    Ok(domain::operators::catalog::inventory(&state.db, &q, &status, 100, 0).await?)
}

/// The marketplace's servers: search, filter by status, and who rents each until when.
#[component]
pub fn InventoryPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let status = move || query.read().get("status").unwrap_or_default();
    let data = data::load(move || (q(), status()), |(q, s)| load_inventory(q, s));
    view! {
        <OperatorList title="Marketplace inventory" data list=|list| view! { <InventoryTable list/> }>
            <form method="get" action="/operator/inventory" class="form form-row" data-test="inventory-search">
                <label>"Server, model or renter" <input type="search" name="q" value=q maxlength="254"/></label>
                <label>"Status"
                    <select name="status">
                        {[("", "Any"), ("available", "Available"), ("rented", "Rented"), ("retired", "Retired")]
                            .into_iter().map(|(v, l)| view! { <option value=v selected=move || status() == v>{l}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn">"Show"</button>
            </form>
            <p class="muted small">"Add, reprice or retire servers with /api/admin/marketplace/servers (PATCH changes only the fields it names)."</p>
        </OperatorList>
    }
}

#[component]
fn InventoryTable(list: Inventory) -> impl IntoView {
    if list.servers.is_empty() {
        return view! { <section class="card"><p class="muted" data-test="no-servers">"No server matches."</p></section> }.into_any();
    }
    view! {
        <section class="card">
            <p class="muted" data-test="inventory-count">{matching(list.total, list.servers.len(), ("server", "servers"), "the first")}</p>
            <div class="table-wrap"><table class="table" data-test="inventory">
                <thead><tr><th>"Server"</th><th>"Where"</th><th>"From / day"</th><th>"Status"</th><th>"Rented by"</th></tr></thead>
                <tbody>
                    {list.servers.into_iter().map(|s| view! {
                        <tr data-test="inventory-row" data-id=s.id.clone()>
                            <td data-label="Server">{s.name.clone()}<br/><small class="muted">{s.model.clone()}</small></td>
                            <td data-label="Where">{format!("{}, {}", s.city, s.country)}</td>
                            <td data-label="From / day" class="num">{money(s.price_per_day.0)}</td>
                            <td data-label="Status" data-test="inventory-status">{s.status.clone()}</td>
                            <td data-label="Rented by">{match s.rental.clone() {
                                Some(r) => view! { <a href=format!("/operator/customers/{}", r.user_id)>{r.username}</a>" until "{day(&r.rental_end)} }.into_any(),
                                None => view! { "—" }.into_any(),
                            }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
    .into_any()
}
