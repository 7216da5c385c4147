//! Pages only for signed-in people: [`RequireUser`] renders them with the current user, or
//! sends the visitor to sign in and back.

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
    let here = leptos_router::hooks::use_location();
    // The page this guard belongs to. The session reloads on every navigation, so while a page is
    // being left (signing out, deleting the account) its guard sees "signed out" with the
    // location already elsewhere: that page is going away, and sending the browser to sign in
    // would hijack the navigation.
    let mounted_at = here.pathname.get_untracked();
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let signed_in = signed_in.clone();
                let here = here.clone();
                let mounted_at = mounted_at.clone();
                Suspend::new(async move {
                    match auth.info.await.ok().and_then(|i| i.user) {
                        Some(me) => signed_in(me).into_any(),
                        // Back here once signed in (a link from an e-mail, a bookmark).
                        None if here.pathname.get_untracked() != mounted_at => ().into_any(),
                        None => {
                            let search = here.search.get_untracked();
                            let search = search.trim_start_matches('?');
                            let mut target = here.pathname.get_untracked();
                            if !search.is_empty() {
                                target = format!("{target}?{search}");
                            }
                            // While signing out the location may already be the sign-in page.
                            let path = if target.starts_with("/signin") {
                                "/signin".to_owned()
                            } else {
                                format!("/signin?next={}", urlencoding_path(&target))
                            };
                            view! { <Redirect path=path/> }.into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}

/// `path` made safe inside a query parameter (`/`, letters and digits stay as they are).
fn urlencoding_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
