//! Server-Sent Events in the browser: the live parts of the portal (machine states, the header's
//! balance, a machine's usage charts) each follow one stream, and [`after_hydration`] keeps a
//! pushed value from changing the page before it has hydrated.

use leptos::prelude::*;

/// Opens `url` and hands each `event` (`"message"` for unnamed ones) that parses as `T` to
/// `each`; the stream closes when the calling reactive scope is cleaned up (the effect runs
/// again, or the page goes), or when the server sends `end` (the stream is over). The browser
/// reconnects by itself after a drop; a stream answered with an error status (signed out,
/// machine stopped) is not retried.
#[cfg(feature = "hydrate")]
pub fn follow<T>(url: &str, event: &str, mut each: impl FnMut(T) + 'static)
where
    T: serde::de::DeserializeOwned + 'static,
{
    use leptos::prelude::on_cleanup;
    use wasm_bindgen::{closure::Closure, JsCast};
    let Ok(source) = web_sys::EventSource::new(url) else {
        return;
    };
    let on_event =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(value) = ev
                .data()
                .as_string()
                // From bytes, as server functions read: one decoder per type in the bundle
                // (`components::data`).
                .and_then(|text| serde_json::from_slice(text.as_bytes()).ok())
            {
                each(value);
            }
        });
    let _ = source.add_event_listener_with_callback(event, on_event.as_ref().unchecked_ref());
    on_event.forget();
    // A stream that is over says `end` (a machine's samples once it stops or goes); without
    // closing here the browser would reconnect to it.
    let closing = source.clone();
    let on_end = Closure::<dyn FnMut()>::new(move || closing.close());
    let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
    on_end.forget();
    let source = send_wrapper::SendWrapper::new(source);
    on_cleanup(move || source.close());
}

/// `initial` (what the server rendered) until the part of the page that calls this has
/// hydrated, then what `live` gives (while it gives something). A push that landed while the
/// page hydrates would otherwise change the DOM under the hydration walk, which then finds a
/// node it did not expect and panics; the effect runs only once this part is hydrated.
/// `settled` turns true then (pass a fresh signal when nothing else needs to know).
pub fn after_hydration<T: Clone + Send + Sync + 'static>(
    settled: RwSignal<bool>,
    initial: T,
    live: impl Fn() -> Option<T> + Send + Sync + 'static,
) -> Signal<T> {
    Effect::new(move |_| settled.set(true));
    Signal::derive(move || {
        if settled.get() {
            live().unwrap_or_else(|| initial.clone())
        } else {
            initial.clone()
        }
    })
}
