//! Parts of a page whose code is fetched after the page has hydrated.
//!
//! A page's first load is its group's pack (`app::lazy_pages!`): everything the server rendered
//! must have its code there, since hydration walks all of it. Cards that only the browser can
//! fill (a live chart, a listing read by the browser, a command's output) gain nothing from
//! being in that first load and make it heavier, so the page renders a placeholder for them
//! (on the server and while hydrating alike, so both agree), and once it has hydrated swaps in
//! the card, whose code is a split module of its own (a `#[wasm_split]` function, group named
//! after the card) fetched then. Nothing preloads those modules: they would compete with the
//! page's own pack for the network.

use std::future::Future;

use leptos::prelude::*;

/// Calls a split function: in the browser it fetches the function's module first (an `async`
/// call), on the server it is a plain call. Use inside an `async` block.
#[macro_export]
macro_rules! split_call {
    ($call:expr) => {{
        #[cfg(feature = "hydrate")]
        {
            $call.await
        }
        #[cfg(not(feature = "hydrate"))]
        {
            $call
        }
    }};
}

/// `placeholder` until `settled` (the page has hydrated), then what `load` makes, with the
/// placeholder shown while its module downloads.
#[component]
pub fn Deferred<P, V, L, F>(
    /// Turns true once the page around this has hydrated.
    settled: RwSignal<bool>,
    placeholder: P,
    load: L,
) -> impl IntoView
where
    P: Fn() -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
    L: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = AnyView> + Send + 'static,
{
    move || {
        if settled.get() {
            let view = load();
            view! { <Suspense fallback=placeholder.clone()>{Suspend::new(view)}</Suspense> }
                .into_any()
        } else {
            placeholder().into_any()
        }
    }
}

/// A card's placeholder: its title, and a word on what is happening (or, without JavaScript,
/// why nothing will).
#[component]
pub fn LoadingCard(
    title: &'static str,
    #[prop(optional)] class: &'static str,
    /// `data-test`, for the browser tests.
    test: &'static str,
) -> impl IntoView {
    view! {
        <section class=format!("card {class}") data-test=test aria-busy="true">
            <h2>{title}</h2>
            // Text only in the `noscript`: with scripting on, the browser parses its content as
            // text, which hydration then finds where it expects this text (an element there
            // would not be found).
            <p class="muted">"Loading…"<noscript>" This part of the page needs JavaScript."</noscript></p>
        </section>
    }
}
