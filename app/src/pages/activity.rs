//! Activity: the audit log read back. Everyone sees what they did (rentals, payments, machines,
//! tokens, pools, consoles); operators may look at everyone's, by user and by kind of action.
//! Filters live in the URL (a plain GET form), so a filtered view can be bookmarked or shared.

use crate::components::data;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::format::when;
use crate::components::forms::LoadFailed;
use crate::error::PortalError;
use crate::pages::RequireUser;
use model::accounts::{AuditEvent, Me};

/// Entries per page.
const PAGE: i64 = 50;

/// The caller's activity, or (operators, `everyone`) anyone's, narrowed by `user` (a username)
/// and `action` (a prefix such as `rental.`), after entry `before` when given.
#[server(prefix = "/_fn", endpoint = "activity")]
pub async fn load_activity(
    everyone: bool,
    user: String,
    action: String,
    before: String,
) -> Result<Vec<AuditEvent>, PortalError> {
    use crate::ssr::portal;
    use domain::infra::audit;
    let portal::SignedIn {
        state, user: me, ..
    } = portal::signed_in(None).await?;
    if everyone {
        domain::accounts::totp::check_operator(&state.config, &me)?;
    }
    let before = Some(before.trim().to_owned()).filter(|s| !s.is_empty());
    if before
        .as_deref()
        .is_some_and(|b| !domain::infra::db::is_id(b))
    {
        return Err(PortalError::invalid(
            "That page link is broken; start from the newest",
        ));
    }
    let some = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = audit::Filter {
        actor_id: (!everyone).then(|| me.id.clone()),
        actor_username: if everyone { some(user) } else { None },
        action: some(action),
        target_id: None,
        before,
        limit: PAGE,
    };
    let entries = audit::list(&state.db, &filter)
        .await
        .map_err(domain::infra::error::ServiceError::from)?;
    Ok(entries.iter().map(audit::Entry::to_api).collect())
}

#[component]
pub fn ActivityPage() -> impl IntoView {
    view! {
        <Title text="Activity"/>
        <RequireUser signed_in=move |me: Me| view! { <Activity me/> }/>
    }
}

#[component]
fn Activity(me: Me) -> impl IntoView {
    let is_admin = me.is_admin;
    let query = use_query_map();
    let get = move |k: &str| query.with(|q| q.get(k).unwrap_or_default());
    let everyone = move || is_admin && get("everyone") == "1";
    let events = data::load(
        move || (everyone(), get("user"), get("action"), get("before")),
        |(everyone, user, action, before)| load_activity(everyone, user, action, before),
    );
    view! {
        <section class="page-head">
            <h1>"Activity"</h1>
            <p class="muted">"What was done with your account, newest first: rentals, payments, machines, tokens, pools, consoles. Each entry is written together with the change it records."</p>
        </section>
        <section class="card">
            <form method="get" action="/activity" class="form form-row" data-test="activity-filter">
                {is_admin.then(|| view! {
                    <label class="check">
                        <input type="checkbox" name="everyone" value="1" checked=get("everyone") == "1"/>
                        "Everyone (operator)"
                    </label>
                    <label>"User"
                        <input type="text" name="user" placeholder="username" value=get("user")/>
                    </label>
                })}
                <label>"Kind"
                    <select name="action">
                        {[("", "All"), ("rental.", "Rentals"), ("billing.", "Payments"), ("user.", "Account and credits"),
                          ("instance.", "Machines"), ("exec.", "Commands"), ("file.", "Files"), ("console.", "Consoles"),
                          ("token.", "API tokens"), ("key.", "SSH keys"), ("pool.", "Pools"), ("server.", "Marketplace inventory")]
                            .into_iter()
                            .map(|(v, l)| view! { <option value=v selected=get("action") == v>{l}</option> })
                            .collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn">"Show"</button>
            </form>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
            {move || Suspend::new(async move {
                match events.await {
                    Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <section class="card"><p class="muted" data-test="activity-empty">"Nothing recorded here yet."</p></section>
                    }.into_any(),
                    Ok(list) => {
                        let older = (list.len() as i64 == PAGE).then(|| {
                            let last = list.last().map(|e| e.id.clone()).unwrap_or_default();
                            let mut href = format!("/activity?before={}", urlencode(&last));
                            for key in ["everyone", "user", "action"] {
                                let v = get(key);
                                if !v.is_empty() {
                                    href.push_str(&format!("&{key}={}", urlencode(&v)));
                                }
                            }
                            href
                        });
                        view! {
                            <section class="card table-wrap">
                                <table class="table activity" data-test="activity">
                                    <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Details"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|e| view! {
                                            <tr data-test="activity-row" data-action=e.action.clone()>
                                                <td data-label="When">{when(&e.at)}</td>
                                                <td data-label="Who">{e.actor.clone().unwrap_or_else(|| if e.actor_id.is_some() { "a deleted user".into() } else { "Hangar".into() })}</td>
                                                <td data-label="What"><code>{e.action.clone()}</code></td>
                                                <td data-label="Details" class="muted">{details(&e)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                {older.map(|href| view! { <p><a href=href data-test="activity-older">"Older entries →"</a></p> })}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The entry's object and recorded fields, one line: `rental 6b0c… · days 7 · price_micros 20910000`.
fn details(e: &AuditEvent) -> String {
    let mut parts = vec![match &e.target_id {
        Some(id) => format!("{} {}", e.target_type, id),
        None => e.target_type.clone(),
    }];
    if let Some(map) = e.details.as_object() {
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{k} {v}"));
        }
    }
    parts.join(" · ")
}

/// Percent-encodes a query value (RFC 3339 times carry `:` and `+`).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
