//! The marketplace: browse with a filter sidebar whose state lives in the URL, and a server page
//! with the rent checkout.

use crate::components::data;
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use leptos_router::{
    components::A,
    hooks::{use_location, use_params_map, use_query_map},
};
use serde::{Deserialize, Serialize};

use crate::components::format::{balance as balance_text, days as days_text, money};
use crate::components::forms::{
    answer_status, error_message, ActionError, CsrfField, LoadFailed, SubmitButton,
};
use crate::session::use_auth;
use model::market::{MarketServer, Page};
use model::money::usd2;

#[server(prefix = "/_fn", endpoint = "browse")]
pub async fn browse_market(query: String) -> Result<(Vec<MarketServer>, Page), PortalError> {
    use crate::ssr::portal;
    use domain::market::browse;
    let state = portal::state()?;
    let filters = browse::Filters::parse(&query).map_err(PortalError::invalid)?;
    Ok(domain::market::index::browse(&state.db, state.browse_index.as_deref(), &filters).await?)
}

const COUNTRIES: &[(&str, &str)] = &[
    ("US", "United States"),
    ("CA", "Canada"),
    ("DE", "Germany"),
    ("NL", "Netherlands"),
    ("GB", "United Kingdom"),
    ("FR", "France"),
    ("FI", "Finland"),
    ("PL", "Poland"),
    ("SG", "Singapore"),
    ("JP", "Japan"),
    ("AU", "Australia"),
    ("IN", "India"),
    ("BR", "Brazil"),
    ("ZA", "South Africa"),
];

/// `/marketplace?...`: every filter is a query parameter, so a link reproduces the view and the
/// form works as a plain GET form before (and without) hydration.
#[component]
pub fn MarketplacePage() -> impl IntoView {
    let location = use_location();
    let results = data::load(
        move || location.search.get(),
        |search| browse_market(search.trim_start_matches('?').to_owned()),
    );
    view! {
        <Title text="Marketplace"/>
        <section class="page-head">
            <h1>"Marketplace"</h1>
            <p class="muted">"Dedicated servers and VMs, rented by the day from your prepaid balance."</p>
        </section>
        <div class="market">
            <aside class="filters card">
                <Filters/>
            </aside>
            <section class="results">
                <Suspense fallback=|| view! { <p class="muted">"Loading servers…"</p> }>
                    {move || Suspend::new(async move {
                        match results.await {
                            Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                            Ok((servers, page)) => view! { <Results servers page/> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </div>
    }
}

/// The query fields that narrow the list (what the phone's Filters button counts).
const FILTER_FIELDS: [&str; 12] = [
    "country",
    "category",
    "max_price_per_day",
    "min_cpu_cores",
    "min_ram_gb",
    "min_total_storage_gb",
    "min_bandwidth_mbps",
    "available_durations",
    "disk_types",
    "ram_types",
    "unlimited_traffic_only",
    "featured_only",
];

/// The filter form, filled from the current query (a GET form: its submission is the URL).
#[component]
fn Filters() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.with_untracked(|m| m.get(k).unwrap_or_default());
    let has = move |k: &str, v: &str| {
        query.with_untracked(|m| {
            m.get_all(k)
                .unwrap_or_default()
                .iter()
                .flat_map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_lowercase())
                        .collect::<Vec<_>>()
                })
                .any(|x| x == v.to_lowercase())
        })
    };
    // Filters in use (the sort order is not one).
    let active = query.with_untracked(|m| {
        FILTER_FIELDS
            .iter()
            .filter(|k| {
                m.get_all(k)
                    .is_some_and(|v| v.iter().any(|x| !x.is_empty()))
            })
            .count()
    });
    // Once hydrated, the URL carries only the fields that are set (the browser's own GET
    // submission, without JavaScript, sends every field).
    let navigate = leptos_router::hooks::use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        if let Some(url) = filters_url(&ev) {
            ev.prevent_default();
            navigate(&url, Default::default());
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, &navigate);
    };
    let checkbox = move |name: &'static str, value: &'static str, label: &'static str| {
        view! {
            <label class="check"><input type="checkbox" name=name value=value checked=has(name, value)/>{label}</label>
        }
    };
    view! {
        // On a phone the form folds behind a Filters button (a checkbox: it works before the page
        // has hydrated), so the first server is not screens away.
        <input type="checkbox" id="filters-toggle" class="filters-toggle" aria-hidden="true" tabindex="-1"/>
        <label for="filters-toggle" class="btn btn-ghost filters-toggle-label" data-test="filters-toggle">
            {if active == 0 { "Filters".to_owned() } else { format!("Filters ({active} set)") }}
        </label>
        <form method="get" action="/marketplace" data-test="filters" on:submit=submit>
            <h2>"Filters"</h2>
            <label>"Country"
                <select name="country">
                    <option value="">"Any"</option>
                    {COUNTRIES.iter().map(|(code, name)| view! {
                        <option value=*code selected=q("country").eq_ignore_ascii_case(code)>{*name}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Category"
                <select name="category">
                    <option value="">"Any"</option>
                    {["compute", "memory", "storage", "general", "gpu"].into_iter().map(|c| view! {
                        <option value=c selected=q("category") == c>{c}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Max price per day (USD)"
                <input type="number" name="max_price_per_day" min="0" step="0.01" value=q("max_price_per_day")/>
            </label>
            <label>"Min CPU cores"<input type="number" name="min_cpu_cores" min="0" value=q("min_cpu_cores")/></label>
            <label>"Min RAM (GB)"<input type="number" name="min_ram_gb" min="0" value=q("min_ram_gb")/></label>
            <label>"Min storage (GB)"<input type="number" name="min_total_storage_gb" min="0" value=q("min_total_storage_gb")/></label>
            <label>"Min bandwidth (Mbps)"<input type="number" name="min_bandwidth_mbps" min="0" step="100" value=q("min_bandwidth_mbps")/></label>
            <fieldset><legend>"Rental durations"</legend>
                {checkbox("available_durations", "1", "1 day")}
                {checkbox("available_durations", "7", "7 days")}
                {checkbox("available_durations", "30", "30 days")}
                {checkbox("available_durations", "90", "90 days")}
            </fieldset>
            <fieldset><legend>"Disks"</legend>
                {checkbox("disk_types", "nvme", "NVMe")}
                {checkbox("disk_types", "ssd", "SSD")}
                {checkbox("disk_types", "hdd", "HDD")}
            </fieldset>
            <fieldset><legend>"RAM"</legend>
                {checkbox("ram_types", "ddr5", "DDR5")}
                {checkbox("ram_types", "ecc ddr5", "ECC DDR5")}
                {checkbox("ram_types", "ddr4", "DDR4")}
                {checkbox("ram_types", "ecc ddr4", "ECC DDR4")}
            </fieldset>
            <fieldset><legend>"More"</legend>
                {checkbox("unlimited_traffic_only", "true", "Unlimited traffic")}
                {checkbox("featured_only", "true", "Featured only")}
            </fieldset>
            <label>"Sort by"
                <select name="sort">
                    {[("popularity", "Popularity"), ("price_asc", "Price: low to high"), ("price_desc", "Price: high to low"),
                      ("cpu_score_desc", "CPU score"), ("ram_desc", "Most RAM"), ("storage_desc", "Most storage"), ("newest", "Newest")]
                        .into_iter().map(|(v, l)| view! { <option value=v selected=q("sort") == v>{l}</option> }).collect_view()}
                </select>
            </label>
            <div class="row">
                <button type="submit" class="btn">"Apply filters"</button>
                <a class="btn btn-ghost" href="/marketplace">"Reset"</a>
            </div>
        </form>
    }
}

/// The marketplace URL for the submitted filter form, with only the fields that are set (the
/// default sort order counts as unset); `None` when the form cannot be read.
#[cfg(feature = "hydrate")]
fn filters_url(ev: &leptos::ev::SubmitEvent) -> Option<String> {
    use wasm_bindgen::JsCast;
    let form = ev
        .current_target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())?;
    let data = web_sys::FormData::new_with_form(&form).ok()?;
    let mut pairs = Vec::new();
    for entry in js_sys::try_iter(&data).ok().flatten().into_iter().flatten() {
        let Ok(entry) = entry else { continue };
        let entry = js_sys::Array::from(&entry);
        let (Some(key), Some(value)) = (entry.get(0).as_string(), entry.get(1).as_string()) else {
            continue;
        };
        let default_sort = key == "sort" && value == "popularity";
        if !(key.is_empty() || value.is_empty() || default_sort) {
            pairs.push(format!(
                "{}={}",
                js_sys::encode_uri_component(&key),
                js_sys::encode_uri_component(&value)
            ));
        }
    }
    Some(if pairs.is_empty() {
        "/marketplace".to_owned()
    } else {
        format!("/marketplace?{}", pairs.join("&"))
    })
}

#[component]
fn Results(servers: Vec<MarketServer>, page: Page) -> impl IntoView {
    let location = use_location();
    let link_for = move |offset: i64| {
        let search = location.search.get_untracked();
        let mut pairs: Vec<String> = search
            .trim_start_matches('?')
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("offset="))
            .map(str::to_owned)
            .collect();
        pairs.push(format!("offset={offset}"));
        format!("/marketplace?{}", pairs.join("&"))
    };
    let shown_to = page.offset.saturating_add(servers.len() as i64);
    let prev = (page.offset > 0).then(|| link_for((page.offset - page.limit).max(0)));
    let next = page.next_offset.map(link_for);
    view! {
        <p class="muted" data-test="result-count">
            {if page.total == 0 { "No servers match these filters.".to_owned() }
             else { format!("Showing {}–{} of {} servers", page.offset.saturating_add(1), shown_to, page.total) }}
        </p>
        <div class="grid server-cards">
            {servers.into_iter().map(|s| view! { <ServerCard server=s/> }).collect_view()}
        </div>
        <nav class="pager" aria-label="Pages">
            {prev.map(|href| view! { <a class="btn btn-ghost" href=href>"← Previous"</a> })}
            {next.map(|href| view! { <a class="btn btn-ghost" href=href data-test="next-page">"Next →"</a> })}
        </nav>
    }
}

#[component]
fn ServerCard(server: MarketServer) -> impl IntoView {
    let s = server;
    let traffic = if s.specs.network.traffic_unlimited {
        "unlimited traffic".to_owned()
    } else {
        format!("{} TB traffic", s.specs.network.traffic_tb.unwrap_or(0))
    };
    view! {
        <article class="card server-card" data-test="server-card">
            <header>
                <h3><A href=format!("/marketplace/{}", s.id)>{s.name.clone()}</A></h3>
                <span class=format!("tag tag-{}", s.category)>{s.category.clone()}</span>
                {s.featured.then(|| view! { <span class="tag tag-featured">"featured"</span> })}
                {s.is_vm.then(|| view! { <span class="tag">"VM"</span> })}
            </header>
            <p class="muted">{format!("{} · {}, {} · {}", s.country, s.city, s.region, s.datacenter)}</p>
            <ul class="specs">
                <li><strong>{format!("{}C/{}T", s.specs.cpu.cores, s.specs.cpu.threads)}</strong>" "{s.specs.cpu.model.clone()}</li>
                <li><strong>{format!("{} GB", s.specs.ram.capacity_gb)}</strong>" "{s.specs.ram.kind.clone()}</li>
                <li>{s.specs.disks.summary.clone()}</li>
                <li>{format!("{} · {}", s.specs.network.bandwidth_formatted, traffic)}</li>
            </ul>
            <footer>
                <PriceTag pricing=s.pricing.clone()/>
                <A href=format!("/marketplace/{}", s.id) attr:class="btn btn-sm">"View & rent"</A>
            </footer>
        </article>
    }
}

/// What the server page needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerPageData {
    pub server: MarketServer,
    /// The visitor's balance in µUSD, when signed in.
    pub balance: Option<i64>,
    /// Pools the visitor may rent into: (id, name, is_default).
    pub pools: Vec<(String, String, bool)>,
    /// Total price per duration in µUSD, ascending.
    pub prices: Vec<(i64, i64)>,
    /// The visitor's SSH keys: (id, name, fingerprint).
    pub keys: Vec<(String, String, String)>,
}

#[server(prefix = "/_fn", endpoint = "server_page")]
pub async fn load_server_page(id: String) -> Result<ServerPageData, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::pools;
    use domain::market::browse;
    let state = portal::state()?;
    let session = portal::session().await?;
    let user = portal::current_user(&state, &session).await?;
    let server = browse::get_available(&state.db, &id).await?;
    let prices = browse::prices(&state.db, &id).await?;
    let keys = match &user {
        Some(u) => domain::accounts::keys::list(&state.db, &u.id)
            .await?
            .into_iter()
            .map(|k| (k.id, k.name, k.fingerprint))
            .collect(),
        None => Vec::new(),
    };
    let (balance, pools) = match user {
        Some(u) => {
            let list = pools::list(&state.db, &u.id).await?;
            let rentable = list
                .into_iter()
                .filter(|p| p.user_role.can_rent())
                .map(|p| (p.id, p.name, p.is_default))
                .collect();
            (Some(u.balance_micros), rentable)
        }
        None => (None, Vec::new()),
    };
    Ok(ServerPageData {
        server,
        balance,
        pools,
        prices,
        keys,
    })
}

/// Rents a server from the portal, then shows the new rental.
#[server(prefix = "/_fn", endpoint = "rent")]
pub async fn rent_server(
    csrf: String,
    server_id: String,
    rental_days: i64,
    pool_id: String,
    /// Comma-separated ids of the renter's keys the server gets.
    #[server(default)]
    ssh_key_ids: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::market::rentals;
    use domain::Actor;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let pool = Some(pool_id.as_str()).filter(|p| !p.is_empty());
    let (rental, _) = rentals::rent(
        &state.db,
        &Actor::user(&user.id),
        &server_id,
        rental_days,
        pool,
        state.config.rental_hold_days,
        Some(
            &ssh_key_ids
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        ),
    )
    .await?;
    // The rental's page opens with a confirmation (`rented`).
    leptos_axum::redirect(&format!("/rentals/{}?rented=1", rental.id));
    Ok(())
}

#[component]
pub fn ServerPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let data = data::load(id, load_server_page);
    let rent = ServerAction::<RentServer>::new();
    view! {
        <Title text="Server"/>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => { answer_status(&e); view! {
                        <section class="card narrow">
                            <h1>"Not available"</h1>
                            <p>{error_message(&e)}". It may have just been rented."</p>
                            <a class="btn" href="/marketplace">"Back to the marketplace"</a>
                        </section>
                    }.into_any() }
                    Ok(d) => view! { <ServerDetail data=d rent/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ServerDetail(data: ServerPageData, rent: ServerAction<RentServer>) -> impl IntoView {
    let s = data.server.clone();
    let auth = use_auth();
    let _ = auth;
    let balance = data.balance;
    let default_days = data
        .prices
        .iter()
        .find(|(_, p)| balance.is_some_and(|b| b >= *p))
        .or(data.prices.first())
        .map(|(d, _)| *d)
        .unwrap_or(1);
    // The term the person has chosen (the form's radios; the server renders the default).
    let chosen = RwSignal::new(default_days);
    let disks = s.specs.disks.config.clone();
    view! {
        <Title text=s.name.clone()/>
        <section class="page-head">
            <p class="muted"><a href="/marketplace">"Marketplace"</a>" / "{s.name.clone()}</p>
            <h1>{s.name.clone()}</h1>
            <p class="muted">{format!("{} · {}, {} · {} · {} · ready in about {} min", s.model, s.city, s.country, s.datacenter, s.category, s.setup_time_minutes)}</p>
        </section>
        <div class="split">
            <section class="card">
                <h2>"Specifications"</h2>
                <dl class="facts">
                    <dt>"CPU"</dt><dd>{format!("{} — {} cores / {} threads", s.specs.cpu.model, s.specs.cpu.cores, s.specs.cpu.threads)}</dd>
                    <dt>"CPU score"</dt><dd>{format!("{} ({})", s.specs.cpu.score, s.specs.cpu.score_type.replace('_', " "))}</dd>
                    <dt>"Memory"</dt><dd>{format!("{} GB {} @ {} MHz", s.specs.ram.capacity_gb, s.specs.ram.kind, s.specs.ram.speed_mhz)}</dd>
                    <dt>"Storage"</dt><dd>{format!("{} ({} GB total)", s.specs.disks.summary, s.specs.disks.total_gb)}</dd>
                    <dt>"Disks"</dt><dd>{disks.into_iter().map(|d| format!("{}× {} GB {} ({})", d.count, d.capacity_gb, d.kind, d.interface)).collect::<Vec<_>>().join(", ")}</dd>
                    <dt>"Network"</dt><dd>{format!("{}, {}", s.specs.network.bandwidth_formatted,
                        if s.specs.network.traffic_unlimited { "unlimited traffic".to_owned() } else { format!("{} TB/month", s.specs.network.traffic_tb.unwrap_or(0)) })}</dd>
                    <dt>"Addresses"</dt><dd>{format!("{} IPv4{}", s.specs.additional.ipv4_count, if s.specs.additional.ipv6_enabled { " + IPv6" } else { "" })}</dd>
                    <dt>"Type"</dt><dd>{if s.is_vm { "Virtual machine" } else { "Dedicated server" }}</dd>
                </dl>
            </section>
            <section class="card checkout" data-test="checkout">
                <h2>"Rent this server"</h2>
                {match balance {
                    None => view! {
                        <p>"Sign in to rent this server."</p>
                        <a class="btn" href=format!("/signin?next=/marketplace/{}", s.id) data-test="sign-in-to-rent">"Sign in"</a>
                    }.into_any(),
                    Some(balance) => {
                    // What the chosen term still needs, in whole cents rounded up (what a top-up
                    // must add): 0 when the balance covers it.
                    let prices = data.prices.clone();
                    let affordable = prices.iter().any(|(_, p)| *p <= balance);
                    let needed = Memo::new(move |_| {
                        let days = chosen.get();
                        let price = prices.iter().find(|(d, _)| *d == days).map_or(0, |(_, p)| *p);
                        let short = (price - balance).max(0);
                        (short + 9_999) / 10_000 * 10_000
                    });
                    view! {
                        <ActionForm action=rent attr:class="form" attr:data-test="rent-form">
                            <CsrfField/>
                            <input type="hidden" name="server_id" value=s.id.clone()/>
                            <fieldset>
                                <legend>"Duration"</legend>
                                <table class="table price-table">
                                    <thead><tr><th></th><th>"Term"</th><th>"Price"</th><th>"Per day"</th><th>"Balance after"</th></tr></thead>
                                    <tbody>
                                        {data.prices.iter().map(|(days, price)| {
                                            let after = balance - price;
                                            let short = after < 0;
                                            view! {
                                                <tr class:short=short>
                                                    <td><input type="radio" name="rental_days" value=days.to_string() checked=*days == default_days
                                                        attr:aria-label=days_text(*days) on:change={let days = *days; move |_| chosen.set(days)}/></td>
                                                    <td data-label="Term">{days_text(*days)}</td>
                                                    <td data-label="Price">{money(*price)}</td>
                                                    <td data-label="Per day">{money(price / days)}</td>
                                                    <td data-label="Balance after">{if short {
                                                        format!("short by {}", money(-after))
                                                    } else {
                                                        balance_text(after)
                                                    }}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </fieldset>
                            <label>"Pool"
                                <select name="pool_id">
                                    {data.pools.iter().map(|(id, name, is_default)| view! {
                                        <option value=id.clone() selected=*is_default>{name.clone()}</option>
                                    }).collect_view()}
                                </select>
                                <small class="muted">"Members of the pool see the server; owners and admins can extend it."</small>
                            </label>
                            <RentKeys keys=data.keys.clone()/>
                            <p class="muted">{format!("Your balance: {}", balance_text(balance))}</p>
                            {move || (needed.get() > 0).then(|| {
                                let add = needed.get();
                                view! {
                                    <p class="alert alert-error" data-test="short-balance">
                                        {format!("Your balance is {} short for this term. ", money(add))}
                                        <a href=format!("/billing?amount={}#add-funds", usd2(add)) data-test="short-balance-topup">
                                            {format!("Add {} or more", money(add))}
                                        </a>
                                        {affordable.then_some(" — or choose a term your balance covers.")}
                                    </p>
                                }
                            })}
                            <ActionError action=rent/>
                            <SubmitButton action=rent label="Confirm and pay" busy_label="Renting…"
                                blocked=Signal::derive(move || needed.get() > 0)/>
                        </ActionForm>
                    }.into_any() }
                }}
            </section>
        </div>
    }
}

/// A card's price: the lowest per-day rate with the term it needs, which is the figure the
/// price sort and the "max price per day" filter use (the API's `min_price_per_day`), so a sorted
/// list reads sorted and a cap holds for the big number; and, when the shortest rental costs more
/// per day, that rate too, so nobody meets a surprise at checkout.
#[component]
fn PriceTag(pricing: model::market::Pricing) -> impl IntoView {
    let per_day = |days: &i64| pricing.price_tiers.get(&days.to_string()).cloned();
    let value = |s: &str| s.parse::<f64>().unwrap_or(f64::MAX);
    let cheapest = pricing
        .durations
        .iter()
        .filter_map(|d| Some((*d, per_day(d)?)))
        .min_by(|a, b| value(&a.1).total_cmp(&value(&b.1)).then(a.0.cmp(&b.0)));
    let shortest = pricing
        .durations
        .iter()
        .min()
        .and_then(|d| Some((*d, per_day(d)?)));
    let days = |d: i64| {
        if d == 1 {
            "1 day".to_owned()
        } else {
            format!("{d} days")
        }
    };
    let lead_rate = cheapest.as_ref().map(|c| c.1.clone());
    let differs = move |s: &(i64, String)| lead_rate.as_ref() != Some(&s.1);
    view! {
        <span class="price" data-test="price-per-day" data-price=pricing.min_price_per_day.clone()>
            {cheapest.map(|(d, p)| view! {
                {format!("${p}")}<small>{if d == 1 { " / day".to_owned() } else { format!(" / day for {}", days(d)) }}</small>
            })}
            {shortest.filter(differs).map(|(d, p)| view! {
                <small class="muted price-short" data-test="price-short">{format!("${p}/day for {}", days(d))}</small>
            })}
        </span>
    }
}

/// Which of the renter's SSH keys the server is set up with: all are ticked to start with (and
/// the hidden field carries them all, so the form works before any script runs).
#[component]
fn RentKeys(keys: Vec<(String, String, String)>) -> impl IntoView {
    let chosen = RwSignal::new(keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>());
    let all = keys
        .iter()
        .map(|k| k.0.as_str())
        .collect::<Vec<_>>()
        .join(",");
    view! {
        <fieldset class="keys" data-test="rent-keys">
            <legend>"SSH keys for the server"</legend>
            {if keys.is_empty() {
                view! {
                    <p class="muted" data-test="rent-no-keys">
                        "You have no SSH keys yet, so the server is set up without one of yours. "
                        <a href="/keys">"Add a key"</a>
                        " first to log in with it; keys of your pool's members come too when the pool is set to share them."
                    </p>
                }.into_any()
            } else {
                keys.into_iter().map(|(id, name, fingerprint)| {
                    let (id1, id2) = (id.clone(), id);
                    view! {
                        <label class="check">
                            <input type="checkbox" checked=true
                                prop:checked=move || chosen.get().contains(&id1)
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    chosen.update(|c| {
                                        c.retain(|x| x != &id2);
                                        if on { c.push(id2.clone()); }
                                    });
                                }/>
                            {format!("{name} ({fingerprint})")}
                        </label>
                    }
                }).collect_view().into_any()
            }}
            <input type="hidden" name="ssh_key_ids" value=all prop:value=move || chosen.get().join(",")/>
        </fieldset>
    }
}
