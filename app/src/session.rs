//! The browser session as the pages see it: who is signed in, the CSRF token for forms, and the
//! sign-in / sign-up / sign-out actions whose completion refreshes it.

use crate::components::data::{self, Data};
use leptos::prelude::*;

use crate::error::PortalError;
use serde::{Deserialize, Serialize};

use model::accounts::Me;

/// What every page needs to know about the visitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Goes into the hidden `csrf` field of every form.
    pub csrf: String,
    pub user: Option<Me>,
    /// Set when registration asks for a Turnstile CAPTCHA.
    pub turnstile_site_key: Option<String>,
    /// Pool invitations waiting for the user (the navigation badge).
    pub pending_invitations: i64,
}

/// The session, provided as context by [`provide_session`].
#[derive(Clone, Copy)]
pub struct Auth {
    pub info: Data<Result<SessionInfo, PortalError>>,
    pub sign_out: ServerAction<SignOut>,
}

/// Creates the session resource and provides it to the whole app. It reloads on every
/// navigation (signing in or up ends in one, and the balance in the header stays current) and
/// after signing out. Sign-in and sign-up actions belong to their pages: actions created inside
/// the routes are the ones that show an error a no-JavaScript form post carried back in the URL.
pub fn provide_session() {
    let sign_out = ServerAction::<SignOut>::new();
    let location = leptos_router::hooks::use_location();
    let info = data::load(
        move || (location.pathname.get(), sign_out.version().get()),
        |_| get_session_info(),
    );
    provide_context(Auth { info, sign_out });
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

#[server(prefix = "/_fn", endpoint = "session")]
pub async fn get_session_info() -> Result<SessionInfo, PortalError> {
    use crate::ssr::portal;
    let state = portal::state()?;
    let session = portal::session().await?;
    let csrf = portal::csrf_token(&session).await?;
    let user = portal::current_user(&state, &session).await?;
    let pending_invitations = match &user {
        Some(u) => domain::accounts::pools::pending_count(&state.db, &u.id).await?,
        None => 0,
    };
    Ok(SessionInfo {
        csrf,
        user: user.as_ref().map(Me::from),
        turnstile_site_key: state.config.turnstile_site_key.clone(),
        pending_invitations,
    })
}

/// Where a sign-in goes afterwards: `next` when it is a path of this site (the page that sent
/// the person to sign in), the dashboard otherwise. Anything that could leave the site (`//host`,
/// `/\host`, a scheme) or is not a plain path falls back to `/`.
pub fn after_sign_in(next: Option<&str>) -> String {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.starts_with("/\\")
            && n.len() <= 512
            && !n.chars().any(|c| c.is_control() || c == '\\')
            // Not back to signing in (a page that redirected while the person signed out).
            && !matches!(n.split(['?', '#']).next(), Some("/signin" | "/signup"))
    })
    .unwrap_or("/")
    .to_owned()
}

/// Signs in with email and password, then goes back to the page that asked (`next`) or to the
/// dashboard.
#[server(prefix = "/_fn", endpoint = "sign_in")]
pub async fn sign_in(
    csrf: String,
    email: String,
    password: String,
    #[server(default)] code: Option<String>,
    #[server(default)] next: Option<String>,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::entry;
    let state = portal::state()?;
    let session = portal::session().await?;
    portal::check_csrf(&session, &csrf).await?;
    let code = code.filter(|c| !c.trim().is_empty());
    let ip = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .ok()
        .map(|info| info.0.ip());
    let from = entry::SignInFrom { via: "portal", ip };
    let user = entry::authenticate(&state.db, &email, &password, code.as_deref(), from).await?;
    portal::sign_in(&session, &user).await?;
    leptos_axum::redirect(&after_sign_in(next.as_deref()));
    Ok(())
}

/// Creates an account and signs it in.
#[server(prefix = "/_fn", endpoint = "sign_up")]
pub async fn sign_up(
    csrf: String,
    email: String,
    username: String,
    password: String,
    turnstile: Option<String>,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::{captcha, entry};
    let state = portal::state()?;
    let session = portal::session().await?;
    portal::check_csrf(&session, &csrf).await?;
    captcha::verify(&state.http, &state.config, turnstile.as_deref(), None).await?;
    let user = entry::register(
        &state.db,
        entry::NewAccount {
            email,
            username,
            password,
            is_admin: false,
        },
    )
    .await?;
    portal::sign_in(&session, &user).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Ends the session on the server and goes to the front page.
#[server(prefix = "/_fn", endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    let session = portal::session().await?;
    portal::check_csrf(&session, &csrf).await?;
    portal::sign_out(&session).await?;
    leptos_axum::redirect("/signin");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::after_sign_in;

    #[test]
    fn sign_in_returns_only_to_pages_of_this_site() {
        assert_eq!(after_sign_in(Some("/marketplace/abc")), "/marketplace/abc");
        assert_eq!(after_sign_in(Some("/machines?x=1")), "/machines?x=1");
        for away in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/a\nb",
            "",
            "/signin?next=/x",
        ] {
            assert_eq!(after_sign_in(Some(away)), "/", "{away:?}");
        }
        assert_eq!(after_sign_in(None), "/");
    }
}
