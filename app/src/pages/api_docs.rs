use leptos::prelude::*;
use leptos_meta::Title;

/// The API reference: Swagger UI (vendored from npm, served locally) on `/openapi.json`.
#[component]
pub fn ApiDocsPage() -> impl IntoView {
    view! {
        <Title text="API reference"/>
        <section class="page-head">
            <h1>"API reference"</h1>
            <p class="muted">
                "Every route the server has, generated from its code. Authenticate with "
                <code>"Authorization: Bearer <JWT or vtk_ token>"</code>
                ". Raw document: " <a href="/openapi.json">"/openapi.json"</a>
                ", agent manifest: " <a href="/.well-known/agent.json">"/.well-known/agent.json"</a>"."
            </p>
        </section>
        <iframe class="api-frame" src="/api-docs.html" title="API reference"></iframe>
    }
}
