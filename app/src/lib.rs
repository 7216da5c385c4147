//! Hangar's Leptos application, compiled twice: with `ssr` into the server (rendering pages and
//! running server functions, which call the `domain` crate) and with `hydrate` into the browser
//! bundle. The shapes both sides exchange are the `model` crate's.

#![recursion_limit = "256"]

pub mod components;
pub mod error;
pub mod pages;
pub mod session;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use crate::{components::layout::Layout, pages::*};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::portal::provide_csp_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // The content-named stylesheet of this build (see `ssr::bundle_stem`).
                <link rel="stylesheet" id="hangar" href=format!("/{}/{}.css", options.site_pkg_dir, options.output_name)/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The portal: a layout with navigation and one route per page. Pages render on the server once
/// their data has loaded (`SsrMode::Async`): every form is complete HTML that works before the
/// WASM bundle has loaded and with JavaScript off. Pages are small and their queries fast, so
/// waiting for the data costs little and gives one deterministic document to hydrate. (A lesson
/// recorded in `CsrfField`: a `Suspense` nested in every form broke hydration on some loads.)
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Title formatter=|t: String| if t.is_empty() { "Hangar".to_owned() } else { format!("{t} · Hangar") }/>
        <Router>
            <Layout>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("signin") view=SignInPage ssr=SsrMode::Async/>
                    <Route path=path!("signup") view=SignUpPage ssr=SsrMode::Async/>
                    <Route path=path!("account") view=AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("tokens") view=TokensPage ssr=SsrMode::Async/>
                    <Route path=path!("activity") view=ActivityPage ssr=SsrMode::Async/>
                    <Route path=path!("docs/api") view=ApiDocsPage ssr=SsrMode::Async/>
                    <Route path=path!("status") view=StatusPage ssr=SsrMode::Async/>
                    <Route path=path!("marketplace") view=MarketplacePage ssr=SsrMode::Async/>
                    <Route path=path!("marketplace/:id") view=ServerPage ssr=SsrMode::Async/>
                    <Route path=path!("rentals") view=RentalsPage ssr=SsrMode::Async/>
                    <Route path=path!("rentals/:id") view=RentalPage ssr=SsrMode::Async/>
                    <Route path=path!("pools") view=PoolsPage ssr=SsrMode::Async/>
                    <Route path=path!("pools/:id") view=PoolPage ssr=SsrMode::Async/>
                    <Route path=path!("invitations") view=InvitationsPage ssr=SsrMode::Async/>
                    <Route path=path!("machines") view=MachinesPage ssr=SsrMode::Async/>
                    <Route path=path!("machines/:id") view=MachinePage ssr=SsrMode::Async/>
                    <Route path=path!("keys") view=KeysPage ssr=SsrMode::Async/>
                    <Route path=path!("operator") view=OperatorPage ssr=SsrMode::Async/>
                    <Route path=path!("billing") view=BillingPage ssr=SsrMode::Async/>
                    <Route path=path!("billing/success") view=TopupSuccessPage ssr=SsrMode::Async/>
                    <Route path=path!("billing/cancel") view=TopupCancelPage ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}
