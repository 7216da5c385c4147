//! Activity: the audit log read back. Everyone sees what they did (rentals, payments, machines,
//! tokens, pools, consoles); operators may look at everyone's, by user and by kind of action.
//! Filters live in the URL (a plain GET form), so a filtered view can be bookmarked or shared.

use crate::components::data;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::format::when;
use crate::components::forms::LoadFailed;
use crate::components::guard::RequireUser;
use crate::error::PortalError;
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
        concerning: None,
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
                        {[("", "All"), ("user.sign_in", "Sign-ins"), ("rental.", "Rentals"), ("billing.", "Payments"), ("user.", "Account and credits"),
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
                                    <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Kind"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|e| view! {
                                            <tr data-test="activity-row" data-action=e.action.clone()>
                                                <td data-label="When">{when(&e.at)}</td>
                                                <td data-label="Who">{e.actor.clone().unwrap_or_else(|| if e.actor_id.is_some() { "a deleted user".into() } else { "Hangar".into() })}</td>
                                                <td data-label="What" data-test="activity-what">{sentence(&e)}</td>
                                                <td data-label="Kind" class="muted"><code>{e.action.clone()}</code></td>
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

/// An entry in words: `Rented gpu-box-1 for 7 days ($20.91)`, `Failed sign-in: wrong password
/// (portal, from 203.0.113.9)`. Things are named by their current name when they still exist
/// ("a machine" otherwise); actions this function does not know read as their code, so nothing
/// recorded is ever hidden.
pub fn sentence(e: &AuditEvent) -> String {
    use crate::components::format::{count, days, money};
    let d = &e.details;
    let text = |k: &str| {
        d.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let int = |k: &str| d.get(k).and_then(serde_json::Value::as_i64);
    let named = |what: &str| match &e.target_name {
        Some(name) => format!("{what} {name}"),
        None => format!("a {what} since deleted"),
    };
    let name = || e.target_name.clone().unwrap_or_else(|| "(deleted)".into());
    let price = || {
        int("price_micros")
            .map(|p| format!(" ({})", money(p)))
            .unwrap_or_default()
    };
    let amount = || int("amount_micros").map(money).unwrap_or_default();
    let origin = || {
        let via = match text("via").as_str() {
            "api" => "API",
            "portal" => "portal",
            _ => "",
        };
        match (via, text("ip")) {
            ("", ip) if ip.is_empty() => String::new(),
            (via, ip) if ip.is_empty() => format!(" ({via})"),
            ("", ip) => format!(" (from {ip})"),
            (via, ip) => format!(" ({via}, from {ip})"),
        }
    };
    let command = || format!("`{}`", text("command"));
    // An operator's action on someone's machine says so, and why.
    let as_operator = || match d.get("by_operator").and_then(|v| v.as_bool()) {
        Some(true) => format!(" as an operator: {}", text("why")),
        _ => String::new(),
    };
    match e.action.as_str() {
        "user.register" => "Opened the account".into(),
        "user.sign_in" => format!("Signed in{}", origin()),
        "user.sign_in_failed" => format!("Failed sign-in: {}{}", text("reason"), origin()),
        "user.credit" => {
            // The customer's own line only: the operators' note stays theirs.
            let line = text("description");
            let line = if line.is_empty() {
                String::new()
            } else {
                format!(": {line}")
            };
            format!("Balance adjusted by the platform, {}{line}", amount())
        }
        "user.quotas" => "Account limits changed by an operator".into(),
        "node.add" => format!("Added {} ({})", named("node"), text("uri")),
        "node.status" => format!("Set {} to {}", named("node"), text("status")),
        "node.remove" => format!("Removed node {}", text("name")),
        "ip_range.add" => format!(
            "Added the addresses {} – {} in {}",
            text("first"),
            text("last"),
            text("region")
        ),
        "ip_range.remove" => "Removed an address range".into(),
        "plan.put" => format!("Saved {}", named("plan")),
        "plan.retire" => format!("Retired {}", named("plan")),
        "template.put" => format!("Saved {}", named("template")),
        "template.retire" => format!("Retired {}", named("template")),
        "image.put" => format!("Saved {} ({})", named("image"), text("source")),
        "reconcile.run" => "Ran the reconciler".into(),
        "user.suspend" => format!("Account suspended by the platform: {}", text("reason")),
        "user.reinstate" => "Account reinstated by the platform".into(),
        "user.unlock" => "Sign-in lockout lifted by the platform".into(),
        "billing.topup" => format!("Added {} by card", amount()),
        "password.change" => "Changed the password".into(),
        "sessions.revoke_all" => match int("tokens_revoked").unwrap_or(0) {
            0 => "Signed out everywhere".into(),
            n => format!(
                "Signed out everywhere and revoked {}",
                count(n, "API token", "API tokens")
            ),
        },
        "two_factor.enable" => "Turned two-factor sign-in on".into(),
        "two_factor.disable" => "Turned two-factor sign-in off".into(),
        "rental.create" => format!(
            "Rented {} for {}{}",
            name(),
            days(int("days").unwrap_or(0)),
            price()
        ),
        "rental.extend" => format!(
            "Extended the rental of {} by {}{}",
            name(),
            days(int("days").unwrap_or(0)),
            price()
        ),
        "rental.move" => format!("Moved the rental of {} to another pool", name()),
        "instance.create" => format!("Created {} on plan {}", named("machine"), text("plan")),
        "instance.start" => format!("Started {}{}", named("machine"), as_operator()),
        "instance.stop" => format!("Stopped {}{}", named("machine"), as_operator()),
        "instance.restart" => format!("Restarted {}", named("machine")),
        "instance.delete" => format!("Deleted {}{}", named("machine"), as_operator()),
        "instance.pool" => match d.get("to").and_then(|v| v.as_str()) {
            Some(_) => format!("Shared {} with a pool", named("machine")),
            None => format!("Took {} out of its pool", named("machine")),
        },
        "instance.snapshot.create" => {
            format!("Took snapshot {} of {}", text("snapshot"), named("machine"))
        }
        "instance.snapshot.restore" => format!(
            "Restored {} to snapshot {}",
            named("machine"),
            text("snapshot")
        ),
        "instance.snapshot.delete" => format!(
            "Deleted snapshot {} of {}",
            text("snapshot"),
            named("machine")
        ),
        "exec.run" => format!("Ran {} on {}", command(), named("machine")),
        "exec.start" => format!(
            "Started {} in the background on {}",
            command(),
            named("machine")
        ),
        "exec.refused" => format!("Was refused {} on {}", command(), named("machine")),
        "exec.cancel" => format!("Cancelled a background command on {}", named("machine")),
        "file.put" => format!("Uploaded {} to {}", text("path"), named("machine")),
        "volume.write" => format!("Saved {} on {}", text("path"), named("machine")),
        "volume.folder" => format!("Made folder {} on {}", text("path"), named("machine")),
        "volume.delete" => format!("Deleted {} on {}", text("path"), named("machine")),
        "volume.copy" => format!(
            "Copied {} to {} on {}",
            text("source"),
            text("destination"),
            named("machine")
        ),
        "volume.compress" => format!(
            "Packed {} into {} on {}",
            text("path"),
            text("archive"),
            named("machine")
        ),
        "volume.decompress" => format!("Unpacked {} on {}", text("path"), named("machine")),
        "console.open" => match text("kind").as_str() {
            "screen" => format!("Opened the screen of {}", named("machine")),
            _ => format!("Opened the console of {}", named("machine")),
        },
        "token.create" => format!("Created API token {}", text("name")),
        "token.revoke" => format!("Revoked {}", named("API token")),
        "key.add" => format!("Added SSH key {}", text("name")),
        "key.delete" => format!("Removed {}", named("SSH key")),
        "pool.create" => format!("Created pool {}", text("name")),
        "pool.delete" => format!("Deleted {}", named("pool")),
        "pool.invite" => format!("Invited someone to {} as {}", named("pool"), text("role")),
        "pool.invitation.accept" => format!("Joined {}", named("pool")),
        "pool.invitation.reject" => format!("Declined an invitation to {}", named("pool")),
        "pool.member.role" => format!("Made a member of {} {}", named("pool"), text("role")),
        "pool.member.remove" => format!("Removed a member from {}", named("pool")),
        "server.create" => format!("Listed server {} on the marketplace", text("name")),
        "server.update" => format!("Updated server {}", text("name")),
        "server.retire" => format!("Retired {}", named("server")),
        other => other.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, target_name: Option<&str>, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            id: "x".into(),
            at: "2026-12-07T10:00:00.000Z".into(),
            actor_id: None,
            actor: None,
            action: action.into(),
            target_type: "instance".into(),
            target_id: Some("6b0c0000000000000000aaaa".into()),
            target_name: target_name.map(str::to_owned),
            details,
        }
    }

    #[test]
    fn entries_read_as_sentences_with_names_and_money() {
        let rented = event(
            "rental.create",
            Some("gpu-box-1"),
            serde_json::json!({"days": 7, "price_micros": 20_910_000, "server_id": "6b0c0000000000000000bbbb"}),
        );
        assert_eq!(sentence(&rented), "Rented gpu-box-1 for 7 days ($20.91)");
        let failed = event(
            "user.sign_in_failed",
            None,
            serde_json::json!({"via": "portal", "ip": "203.0.113.9", "reason": "wrong password"}),
        );
        assert_eq!(
            sentence(&failed),
            "Failed sign-in: wrong password (portal, from 203.0.113.9)"
        );
        let signed = event("user.sign_in", None, serde_json::json!({"via": "api"}));
        assert_eq!(sentence(&signed), "Signed in (API)");
        let gone = event("instance.delete", None, serde_json::json!({}));
        assert_eq!(sentence(&gone), "Deleted a machine since deleted");
        let deleted = event("instance.stop", Some("web-1"), serde_json::json!({}));
        assert_eq!(sentence(&deleted), "Stopped machine web-1");
        let console = event(
            "console.open",
            Some("web-1"),
            serde_json::json!({"kind": "screen"}),
        );
        assert_eq!(sentence(&console), "Opened the screen of machine web-1");
        let unknown = event("something.new", None, serde_json::json!({}));
        assert_eq!(
            sentence(&unknown),
            "something.new",
            "nothing recorded is hidden"
        );
        let topup = event(
            "billing.topup",
            None,
            serde_json::json!({"amount_micros": 12_500_000}),
        );
        assert_eq!(sentence(&topup), "Added $12.50 by card");
    }
}
