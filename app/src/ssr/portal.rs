//! What the portal's server functions share: the signed-in user from the browser session, CSRF
//! checks, and domain errors as [`PortalError`]s (`?` converts them: a person's mistake keeps its
//! 4xx status and message, an internal failure is logged here and shown generically).
//!
//! CSRF: every session carries a random token; every form renders it in a hidden `csrf` field and
//! every state-changing server function checks it before doing anything. `SameSite=Lax` cookies
//! already stop most cross-site posts; the token also covers older browsers and same-site attackers.

use leptos::prelude::*;
use rand::{distributions::Alphanumeric, Rng};
use tower_sessions::Session;

use crate::error::PortalError;
use domain::accounts::users::User;
use domain::infra::error::ServiceError;
use domain::AppState;

/// This response's Content-Security-Policy nonce: made by the server's security-headers layer,
/// put in the request's extensions, and given to Leptos by the page shell so its inline
/// hydration scripts carry it.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

impl CspNonce {
    /// 128 random bits, base64url.
    pub fn new() -> Self {
        use base64::Engine;
        let bytes: [u8; 16] = rand::thread_rng().gen();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl Default for CspNonce {
    fn default() -> Self {
        Self::new()
    }
}

/// Provides the request's CSP nonce to the render (see [`CspNonce`]).
pub fn provide_csp_nonce() {
    let nonce = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(n) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(n.0));
    }
}

pub const SESSION_USER: &str = "user_id";
/// The account's credentials version at sign-in: older than the account's, the session is over
/// (a password change or "sign out everywhere" since, `domain::accounts::credentials`).
pub const SESSION_VERSION: &str = "credentials_version";
pub const SESSION_CSRF: &str = "csrf";
/// A token value to show once on the tokens page (works with and without JavaScript).
pub const SESSION_NEW_TOKEN: &str = "new_token";

/// The server state, provided as context by the server.
pub fn state() -> Result<AppState, PortalError> {
    use_context::<AppState>().ok_or_else(PortalError::internal)
}

/// The browser session of the current request.
pub async fn session() -> Result<Session, PortalError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "session unavailable");
        PortalError::internal()
    })
}

fn session_error(e: tower_sessions::session::Error) -> PortalError {
    tracing::error!(error = %e, "session store failed");
    PortalError::internal()
}

/// The name of the cookie that carries a visitor's CSRF token (see [`VisitorCsrf`]).
pub const VISITOR_CSRF_COOKIE: &str = "hangar_csrf";

/// A visitor's CSRF token, read from (or newly set in) the `hangar_csrf` cookie by the portal's
/// middleware and put in the request's extensions. Visitors who have not signed in get no
/// server-side session at all (every anonymous page view used to write a session row, kept two
/// weeks): their sign-in and sign-up forms are protected by this cookie instead — HttpOnly and
/// SameSite=Lax, so another site can neither read it nor send it with a cross-site post, and
/// the form must carry the same value (the double-submit pattern), on top of the same-origin
/// check every portal write passes first.
#[derive(Debug, Clone)]
pub struct VisitorCsrf(pub String);

fn visitor_csrf() -> Option<String> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<VisitorCsrf>().map(|v| v.0.clone()))
}

/// A signed-in session's CSRF token, read (or made) by the portal's middleware before a page is
/// rendered and put in the request's extensions.
#[derive(Debug, Clone)]
pub struct SessionCsrf(pub String);

/// The CSRF token the page being rendered must carry, known without waiting: the session's (put
/// there by the middleware) or else the visitor cookie's. Forms render it while the session
/// resource may still be loading; see `CsrfField`.
pub fn page_csrf() -> Option<String> {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<SessionCsrf>().map(|v| v.0.clone()))
        .or_else(visitor_csrf)
}

/// Whether the session belongs to someone signed in (their session row exists anyway).
pub async fn signed_in_session(session: &Session) -> Result<bool, PortalError> {
    Ok(session
        .get::<String>(SESSION_USER)
        .await
        .map_err(session_error)?
        .is_some())
}

/// The CSRF token forms carry: the session's for someone signed in (made on first use), the
/// visitor cookie's for everyone else, whose session is never written.
pub async fn csrf_token(session: &Session) -> Result<String, PortalError> {
    if let Some(t) = session
        .get::<String>(SESSION_CSRF)
        .await
        .map_err(session_error)?
    {
        return Ok(t);
    }
    if !signed_in_session(session).await? {
        return visitor_csrf().ok_or_else(|| {
            tracing::error!("no visitor CSRF token in the request");
            PortalError::internal()
        });
    }
    ensure_session_csrf(session).await
}

/// Gives a signed-in session its CSRF token if it has none.
pub async fn ensure_session_csrf(session: &Session) -> Result<String, PortalError> {
    if let Some(t) = session
        .get::<String>(SESSION_CSRF)
        .await
        .map_err(session_error)?
    {
        return Ok(t);
    }
    let token = new_csrf_token();
    session
        .insert(SESSION_CSRF, &token)
        .await
        .map_err(session_error)?;
    Ok(token)
}

/// A fresh CSRF token: 32 random letters and digits.
pub fn new_csrf_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Refuses the request unless `provided` matches the session's CSRF token.
pub async fn check_csrf(session: &Session, provided: &str) -> Result<(), PortalError> {
    let mut expected = session
        .get::<String>(SESSION_CSRF)
        .await
        .map_err(session_error)?;
    if expected.is_none() && !signed_in_session(session).await? {
        expected = visitor_csrf();
    }
    let ok = expected.is_some_and(|e| constant_time_eq(e.as_bytes(), provided.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(PortalError::forbidden(
            "Your form expired or came from another site; reload the page and try again",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in user, if any. A session pointing at a deleted user, or made before the
/// account's last password change or "sign out everywhere", counts as signed out.
pub async fn current_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<User>, PortalError> {
    let Some(id) = session
        .get::<String>(SESSION_USER)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let version = session
        .get::<i64>(SESSION_VERSION)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    Ok(domain::accounts::users::find(&state.db, &id)
        .await?
        .filter(|user| user.credentials_version == version))
}

/// The signed-in user, or an error telling the form to sign in.
pub async fn require_user(state: &AppState, session: &Session) -> Result<User, PortalError> {
    current_user(state, session)
        .await?
        .ok_or_else(|| PortalError::unauthorized("Please sign in first"))
}

/// What a signed-in server function works with.
pub struct SignedIn {
    pub state: AppState,
    pub session: Session,
    pub user: User,
}

/// The prologue of every signed-in server function: state, session, the CSRF check when the
/// function changes something (`csrf` given), and the signed-in user.
pub async fn signed_in(csrf: Option<&str>) -> Result<SignedIn, PortalError> {
    let state = state()?;
    let session = session().await?;
    if let Some(csrf) = csrf {
        check_csrf(&session, csrf).await?;
    }
    let user = require_user(&state, &session).await?;
    Ok(SignedIn {
        state,
        session,
        user,
    })
}

/// Signs `user` in: a fresh session id (no fixation), the user id, a fresh CSRF token.
///
/// The token is made here rather than left for the next request to create: right after signing
/// in, the browser sends several requests at once (the page it lands on, the session's reload,
/// a tab opened meanwhile), and each would make its own token with the last save winning — a
/// page could then carry a token the session no longer has, and its first form would be refused
/// as expired (seen in the browser tests).
pub async fn sign_in(session: &Session, user: &User) -> Result<(), PortalError> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(SESSION_USER, &user.id)
        .await
        .map_err(session_error)?;
    session
        .insert(SESSION_VERSION, user.credentials_version)
        .await
        .map_err(session_error)?;
    session
        .insert(SESSION_CSRF, &new_csrf_token())
        .await
        .map_err(session_error)?;
    Ok(())
}

/// Ends the session server-side: the record is deleted, the cookie no longer works anywhere.
pub async fn sign_out(session: &Session) -> Result<(), PortalError> {
    session.flush().await.map_err(session_error)
}

impl From<ServiceError> for PortalError {
    /// A domain error as a form shows it. Internal errors are logged (inside the request's span,
    /// which carries its request id) and never shown.
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Internal(e) => {
                tracing::error!(error = ?e, "internal error in a server function");
                PortalError::internal()
            }
            other => PortalError::new(other.status().as_u16(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
