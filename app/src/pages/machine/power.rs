//! Start, stop and restart, and the facts a person needs to reach the machine.

use leptos::prelude::*;

use super::MachineAction;
use crate::components::format::{memory, when};
use crate::components::forms::{ActionError, CsrfField};
use model::compute::{Kind, Vps, VpsState};
use model::money::{usd4, usd_rate};

/// Start, stop and restart (each enabled only in the state it applies to), and the facts.
#[component]
pub(super) fn PowerCard(
    id: String,
    plan: String,
    vps: Signal<Vps>,
    power: ServerAction<MachineAction>,
    busy: Signal<bool>,
    /// On libvirt's test driver: nothing listens at its address.
    simulated: bool,
    /// A pool `user` sees the buttons, disabled, with the reason.
    may_operate: bool,
) -> impl IntoView {
    let power_button = move |action: &'static str,
                             label: &'static str,
                             enabled: fn(VpsState) -> bool| {
        let id = id.clone();
        view! {
            <ActionForm action=power attr:class="inline-form">
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="action" value=action/>
                <button type="submit" class="btn" data-test=format!("power-{action}")
                    disabled=move || !may_operate || busy.get() || !enabled(vps.get().state)>{label}</button>
            </ActionForm>
        }
    };
    view! {
        <section class="card">
            <h2>"Power"</h2>
            <div class="actions">
                {power_button("start", "Start", |s| s == VpsState::Stopped)}
                {power_button("stop", "Stop", |s| s == VpsState::Running)}
                {power_button("restart", "Restart", |s| s == VpsState::Running)}
            </div>
            {(!may_operate).then(|| view! {
                <p class="muted" data-test="power-not-allowed">"Your role in this machine's pool lets you use it (console, commands, files), not power it: ask the pool's owner or an admin."</p>
            })}
            <ActionError action=power/>
            <dl class="facts">
                <dt>"Address"</dt><dd data-test="machine-address">{move || match vps.get().ip {
                    // The SSH line only where an SSH server answers: a real VM (containers
                    // have none; a simulated machine has nothing at all), with a word on reach
                    // when the address is private (the node's own network).
                    Some(ip) if vps.get().kind == Kind::Vm && !simulated => {
                        let private = is_private(&ip);
                        view! {
                            <code>{ip.clone()}</code>" · "<code data-test="ssh-line">{format!("ssh root@{ip}")}</code>
                            {private.then(|| view! { <small class="muted">" (a private address: reachable from the node's network)"</small> })}
                        }.into_any()
                    }
                    Some(ip) => view! { <code>{ip.clone()}</code> }.into_any(),
                    None => view! { <span class="muted">"assigned when it starts"</span> }.into_any(),
                }}</dd>
                <dt>"Plan"</dt><dd>{plan}</dd>
                <dt>"Size"</dt><dd data-test="machine-size">{move || {
                    let v = vps.get();
                    let used = v
                        .disk_used_bytes
                        .map(|b| format!(" ({} used)", crate::components::format::bytes(b.max(0) as u64)))
                        .unwrap_or_default();
                    format!("{} vCPU · {} RAM · {} GiB disk{used}", v.vcpu, memory(v.memory_mb), v.disk_gb)
                }}</dd>
                <dt>"Image"</dt><dd>{move || vps.get().image}</dd>
                <dt>"Kind"</dt><dd>{move || vps.get().kind.as_str()}</dd>
                <dt>"Region"</dt><dd>{move || vps.get().region}</dd>
                <dt>"Price"</dt><dd data-test="machine-price">{move || {
                    let v = vps.get();
                    let kept = if v.kind == Kind::Vm && v.ip.is_some() { "its disk and public address" } else { "its disk" };
                    format!(
                        "${}/hour while running, ${}/hour while stopped ({kept}), charged per minute",
                        usd4(v.price_hourly.0),
                        usd_rate(v.stopped_hourly.0)
                    )
                }}</dd>
                <dt>"Created"</dt><dd>{move || when(&vps.get().created_at)}</dd>
                {move || vps.get().expires_at.map(|e| view! { <dt>"Deleted at"</dt><dd>{when(&e)}" (time-to-live)"</dd> })}
            </dl>
        </section>
    }
}

/// Whether `ip` is an IPv4 private or loopback address (RFC 1918, 127/8).
fn is_private(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.is_private() || a.is_loopback())
}
