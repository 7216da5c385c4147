//! The browser entry point: hydrates the server-rendered HTML into the live Leptos app.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A flag the end-to-end tests (and curious operators) can read: the page is now live.
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"__hangarHydrated".into(), &true.into());
    }
}
