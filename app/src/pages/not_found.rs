use leptos::prelude::*;
use leptos_meta::Title;

/// Unknown paths: a 404 status on the server and a way back.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Not found"/>
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <a class="btn" href="/">"Back to the dashboard"</a>
        </section>
    }
}
