//! The browser entry point: hydrates the server-rendered HTML into the live Leptos app.
//!
//! Pages are lazily loaded routes (see `app::App`), so hydration is asynchronous: the router
//! waits for the current page's WASM module before it walks that page's HTML.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async {
        let body = leptos::prelude::document()
            .body()
            .expect("a page has a <body>");
        leptos::mount::hydrate_from_async(body, app::App)
            .await
            .forget();
        // A flag the end-to-end tests (and curious operators) can read: the page is now live.
        if let Some(window) = web_sys::window() {
            let _ = js_sys::Reflect::set(&window, &"__hangarHydrated".into(), &true.into());
        }
    });
}
