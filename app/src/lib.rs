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

/// Declares the lazily loaded routes, page by page, in groups. In the browser each group's code
/// (its pages' views, the types their resources carry and their decoders) is a WASM module of its
/// own, plus chunks of code it shares with some other groups, fetched when one of its pages is
/// first shown: a first visit downloads the core (router, layout, reactive system) and the group
/// it lands on, not the whole portal. The server renders them as usual and links the group's
/// modules in the HTML (`<link rel="preload">`, `ssr::preload`); `cargo xtask build` splits the
/// WASM.
///
/// Why groups and not one module per page: every split point multiplies the chunks of code that
/// some pages share, and each chunk is one more module to instantiate (a group needs 50 to 140).
/// Their downloads no longer count: `cargo xtask build` packs each group's modules into one file,
/// `pack_<group>.bin`, compressed as a whole (a third smaller than the modules one by one). So
/// the heavy pages have a group each, the detail pages apart from their lists (a rental, a pool),
/// and only pages small or opened together share one (docs/BENCHMARKS.md, "First load").
///
/// This is what Leptos's `#[lazy_route]` does, with the module named by the group instead of
/// by each page: in the browser the page's view function is a split point
/// (`wasm_split`, which makes it `async` and loads its module on the first call); on the server
/// it runs directly and records the group for the preload links.
macro_rules! lazy_pages {
    ($($group:ident { $($route:ident => $page:ident),* $(,)? })*) => {$($(
        #[allow(non_snake_case)]
        mod $route {
            use super::*;

            #[derive(Debug)]
            pub struct Route;

            #[cfg_attr(
                feature = "hydrate",
                ::leptos::wasm_split::wasm_split(
                    $group,
                    wasm_split_path = ::leptos::wasm_split,
                    preload(load)
                )
            )]
            // Named after the route: the split point's symbols are made from the function's name
            // and where it is written, which must differ between the routes of a group.
            fn $route(_route: Route) -> AnyView {
                view! { <$page/> <PageModules/> }.into_any()
            }

            impl leptos_router::LazyRoute for Route {
                fn data() -> Self {
                    Route
                }

                async fn view(this: Self) -> AnyView {
                    #[cfg(feature = "hydrate")]
                    {
                        $route(this).await
                    }
                    #[cfg(not(feature = "hydrate"))]
                    {
                        ::leptos::prefetch_lazy_fn_on_server(stringify!($group));
                        $route(this)
                    }
                }

                // The router loads the module before it hydrates or shows the page, so that
                // the view is ready when the page's HTML is walked.
                async fn preload() {
                    #[cfg(feature = "hydrate")]
                    load().await;
                }
            }
        }
    )*)*};
}

/// The page's WASM modules, preloaded (links in the head, written on the server only: see
/// `ssr::preload`). Placed after the page, so that its links come after any head tag the page
/// itself adds and the browser's hydration of those tags is not shifted. Renders nothing.
#[component]
fn PageModules() -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::preload::page_modules();
}

lazy_pages! {
    marketplace { MarketplaceRoute => MarketplacePage }
    server { ServerRoute => ServerPage }
    visitor {
        HomeRoute => HomePage,
        SignInRoute => SignInPage,
        SignUpRoute => SignUpPage,
        StatusRoute => StatusPage,
        ApiDocsRoute => ApiDocsPage,
        TopupSuccessRoute => TopupSuccessPage,
        TopupCancelRoute => TopupCancelPage,
        ConfirmEmailRoute => ConfirmEmailPage,
        ResetPasswordRoute => ResetPasswordPage,
    }
    rentals { RentalsRoute => RentalsPage }
    rental { RentalRoute => RentalPage }
    pools { PoolsRoute => PoolsPage, InvitationsRoute => InvitationsPage }
    pool { PoolRoute => PoolPage }
    machines { MachinesRoute => MachinesPage, KeysRoute => KeysPage }
    machine { MachineRoute => MachinePage }
    account { AccountRoute => AccountPage }
    tokens { TokensRoute => TokensPage }
    activity { ActivityRoute => ActivityPage }
    billing { BillingRoute => BillingPage, StatementRoute => StatementPage, ReceiptRoute => ReceiptPage }
    operator { OperatorRoute => OperatorPage }
    customers {
        CustomersRoute => CustomersPage,
        CustomerRoute => CustomerPage,
        AllMachinesRoute => AllMachinesPage,
        TasksRoute => TasksPage,
    }
    catalog { CatalogRoute => CatalogPage, InventoryRoute => InventoryPage }
}

/// The portal: a layout with navigation and one route per page. Pages render on the server once
/// their data has loaded (`SsrMode::Async`): every form is complete HTML that works before the
/// WASM bundle has loaded and with JavaScript off — but those of the cards only the browser can
/// fill (a machine's commands, files and charts), which come after hydration
/// (`components::deferred`). Pages are small and their queries fast, so
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
                    <Route path=path!("") view={Lazy::<HomeRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("signin") view={Lazy::<SignInRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("signup") view={Lazy::<SignUpRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("reset") view={Lazy::<ResetPasswordRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("account") view={Lazy::<AccountRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("account/email") view={Lazy::<ConfirmEmailRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("tokens") view={Lazy::<TokensRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("activity") view={Lazy::<ActivityRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("docs/api") view={Lazy::<ApiDocsRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("status") view={Lazy::<StatusRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("marketplace") view={Lazy::<MarketplaceRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("marketplace/:id") view={Lazy::<ServerRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("rentals") view={Lazy::<RentalsRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("rentals/:id") view={Lazy::<RentalRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("pools") view={Lazy::<PoolsRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("pools/:id") view={Lazy::<PoolRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("invitations") view={Lazy::<InvitationsRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("machines") view={Lazy::<MachinesRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("machines/:id") view={Lazy::<MachineRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("keys") view={Lazy::<KeysRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator") view={Lazy::<OperatorRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator/customers") view={Lazy::<CustomersRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator/customers/:id") view={Lazy::<CustomerRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator/machines") view={Lazy::<AllMachinesRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator/tasks") view={Lazy::<TasksRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator/catalog") view={Lazy::<CatalogRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("operator/inventory") view={Lazy::<InventoryRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing") view={Lazy::<BillingRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing/statements/:month") view={Lazy::<StatementRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing/receipts/:id") view={Lazy::<ReceiptRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing/success") view={Lazy::<TopupSuccessRoute::Route>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("billing/cancel") view={Lazy::<TopupCancelRoute::Route>::new()} ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}
