//! One module per portal page.

mod account;
mod activity;
mod api_docs;
mod auth;
mod billing;
mod console;
mod home;
mod inside;
mod machines;
mod market;
mod not_found;
mod operator;
mod pools;
mod rentals;
mod status;
mod tokens;
mod usage;
mod volume;

pub use account::AccountPage;
pub use activity::ActivityPage;
pub use api_docs::ApiDocsPage;
pub use auth::{SignInPage, SignUpPage};
pub use billing::{BillingPage, TopupCancelPage, TopupSuccessPage};
pub use home::HomePage;
pub use machines::{KeysPage, MachinePage, MachinesPage};
pub use market::{MarketplacePage, ServerPage};
pub use not_found::NotFound;
pub use operator::OperatorPage;
pub use pools::{InvitationsPage, PoolPage, PoolsPage};
pub use rentals::{RentalPage, RentalsPage};
pub use status::StatusPage;
pub use tokens::TokensPage;

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::session::use_auth;
use model::accounts::Me;

/// Renders `signed_in` with the current user, or sends the visitor to sign in.
#[component]
pub fn RequireUser<F, V>(signed_in: F) -> impl IntoView
where
    F: Fn(Me) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let auth = use_auth();
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let signed_in = signed_in.clone();
                Suspend::new(async move {
                    match auth.info.await.ok().and_then(|i| i.user) {
                        Some(me) => signed_in(me).into_any(),
                        None => view! { <Redirect path="/signin"/> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}
