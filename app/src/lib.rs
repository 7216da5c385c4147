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
    path, Lazy, SsrMode,
};

use crate::{components::layout::Layout, pages::*};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        ssr::portal::provide_csp_nonce();
        // Where this build's bundle is, for the pages' module preloads (`ssr::preload`).
        provide_context(options.clone());
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // The content-named stylesheet of this build (see `ssr::leptos_options`).
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

/// Declares one lazily loaded route per page. In the browser each page's code (its views, the
/// types its resources carry and their decoders) is a separate WASM module, fetched when the page
/// is first shown: the first visit downloads the shell (router, layout, reactive system) and the
/// one page it lands on, not the whole portal. The server renders them as usual and links the
/// page's module in the HTML (`<link rel="preload">`), so it arrives alongside the main bundle;
/// `cargo xtask build` does the splitting (docs/BENCHMARKS.md, "First load").
macro_rules! lazy_pages {
    ($($route:ident => $page:ident),* $(,)?) => {$(
        #[derive(Debug)]
        struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page/> <PageModules/> }.into_any()
            }
        }
    )*};
}

/// The page's WASM modules, preloaded (links in the head, written on the server only: see
/// `ssr::preload`). Placed after the page, so that its links come after any head tag the page
/// itself adds and the browser's hydration of those tags is not shifted.
#[component]
fn PageModules() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        ssr::preload::page_modules()
    }
}

lazy_pages! {
    HomeRoute => HomePage,
    SignInRoute => SignInPage,
    SignUpRoute => SignUpPage,
    AccountRoute => AccountPage,
    TokensRoute => TokensPage,
    ActivityRoute => ActivityPage,
    ApiDocsRoute => ApiDocsPage,
    StatusRoute => StatusPage,
    MarketplaceRoute => MarketplacePage,
    ServerRoute => ServerPage,
    RentalsRoute => RentalsPage,
    RentalRoute => RentalPage,
    PoolsRoute => PoolsPage,
    PoolRoute => PoolPage,
    InvitationsRoute => InvitationsPage,
    MachinesRoute => MachinesPage,
    MachineRoute => MachinePage,
    KeysRoute => KeysPage,
    OperatorRoute => OperatorPage,
    BillingRoute => BillingPage,
    TopupSuccessRoute => TopupSuccessPage,
    TopupCancelRoute => TopupCancelPage,
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
                    <Route path=path!("") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("signin") view={Lazy::<SignInRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("signup") view={Lazy::<SignUpRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("account") view={Lazy::<AccountRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("tokens") view={Lazy::<TokensRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("activity") view={Lazy::<ActivityRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("docs/api") view={Lazy::<ApiDocsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("status") view={Lazy::<StatusRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("marketplace") view={Lazy::<MarketplaceRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("marketplace/:id") view={Lazy::<ServerRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("rentals") view={Lazy::<RentalsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("rentals/:id") view={Lazy::<RentalRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("pools") view={Lazy::<PoolsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("pools/:id") view={Lazy::<PoolRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("invitations") view={Lazy::<InvitationsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("machines") view={Lazy::<MachinesRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("machines/:id") view={Lazy::<MachineRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("keys") view={Lazy::<KeysRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator") view={Lazy::<OperatorRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing") view={Lazy::<BillingRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing/success") view={Lazy::<TopupSuccessRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing/cancel") view={Lazy::<TopupCancelRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}
