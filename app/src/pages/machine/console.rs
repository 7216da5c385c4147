//! A machine's console and screen on its page: a **Console** tab (a VM's serial port or a shell
//! in a container, in xterm.js) and, for VMs, a **Screen** tab (the display in noVNC). The page
//! renders the panels and their controls; `/console.js` (public/) opens them, with a ticket from
//! `POST /portal/machines/{id}/console` and the WebSocket it names (see
//! `server::api::console`).

use leptos::prelude::*;

use crate::components::forms::CsrfField;

#[component]
pub fn ConsoleCard(
    id: String,
    vm: bool,
    /// A container run by a node daemon: its console is the app's own.
    #[prop(optional)]
    app: bool,
) -> impl IntoView {
    let tab = RwSignal::new("console");
    let shows = move |name: &'static str| move || tab.get() == name;
    let hides = move |name: &'static str| move || tab.get() != name;
    view! {
        <section class="card console-card" data-test="console-card" data-console-root data-machine=id>
            <CsrfField/>
            <div class="tabs" role="tablist">
                <button type="button" role="tab" class="tab" class:active=shows("console")
                    aria-selected=move || shows("console")().to_string()
                    data-test="tab-console" on:click=move |_| tab.set("console")>"Console"</button>
                {vm.then(|| view! {
                    <button type="button" role="tab" class="tab" class:active=shows("screen")
                        aria-selected=move || shows("screen")().to_string()
                        data-test="tab-screen" on:click=move |_| tab.set("screen")>"Screen"</button>
                })}
            </div>
            <div class="tab-panel" hidden=hides("console") data-test="console-panel">
                <p class="muted">{if vm {
                    "The machine's serial console: what it prints at boot, and a login prompt or shell if its system offers one there."
                } else if app {
                    "The app's own console: what it printed since it started, and each line you type goes to it. Everyone who opens it sees the same console."
                } else {
                    "A shell inside the container, as root. Everyone who opens this console sees the same session."
                }}</p>
                <p class="console-status" data-console-status aria-live="polite"></p>
                <button type="button" class="btn" data-open-console data-test="open-console">"Open console"</button>
                <div class="terminal" data-terminal hidden></div>
            </div>
            {vm.then(|| view! {
                <div class="tab-panel" hidden=hides("screen") data-test="screen-panel">
                    <p class="muted">"The machine's display, as if a monitor were plugged in. Keyboard and mouse go to the machine while the pointer is over it."</p>
                    <p class="muted" data-test="screen-headless">"Some images write only to the serial port (cloud images often do): if the screen stays on “Booting from ROM…”, the machine's boot and login are on the "<strong>"Console"</strong>" tab."</p>
                    <p class="console-status" data-screen-status aria-live="polite"></p>
                    <button type="button" class="btn" data-open-screen data-test="open-screen">"Open screen"</button>
                    <div class="screen-tools" data-screen-tools hidden>
                        <button type="button" class="btn btn-small" data-ctrl-alt-del>"Ctrl-Alt-Del"</button>
                        <button type="button" class="btn btn-small" data-fullscreen>"Full screen"</button>
                        <input type="text" data-paste-text placeholder="Text to paste into the machine" aria-label="Text to paste"/>
                        <button type="button" class="btn btn-small" data-paste>"Paste"</button>
                    </div>
                    <div class="screen" data-screen hidden></div>
                </div>
            })}
            <link rel="stylesheet" href="/vendor/xterm/xterm.css"/>
            <script type="module" src="/console.js"></script>
        </section>
    }
}
