//! API authentication: `Authorization: Bearer <JWT | vtk_ token>`.
//!
//! The `authenticate` middleware resolves the credential once per request and stores the
//! [`Caller`]; handlers ask for `Caller` (401 when absent) or [`AdminCaller`] (403 for non-admins).
//! Every response to an authenticated request carries `X-Balance-Remaining` (the `/api` dialect),
//! read after the handler ran so it reflects what the request just spent.
//! Browser session cookies never authenticate the JSON API, so it needs no CSRF defence.
//!
//! A `vtk_` token passes only to routes its scopes allow (`super::scopes`, one table for every
//! route); the refusal is a 403 naming the scope it lacks, or saying that only the person may.

use axum::{
    extract::{FromRef, FromRequestParts, MatchedPath, Request, State},
    http::{header, request::Parts, HeaderName, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::accounts::tokens::{self, Scopes};
use domain::accounts::users;
use domain::accounts::users::User;
use domain::AppState;
use model::accounts::Scope;
use model::money::usd4;

use super::error::AppError;
use domain::infra::error::ServiceError;

pub static BALANCE_HEADER: HeaderName = HeaderName::from_static("x-balance-remaining");

/// The authenticated user of an API request, and the access token used, if any.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// Set when the request came with a `vtk_` token (spend limits apply to it).
    pub token_id: Option<String>,
    /// The token's scopes; `None` for a person (a JWT from signing in).
    pub scopes: Option<Scopes>,
}

/// Resolves the bearer credential, if one was sent. A credential that is sent but invalid is
/// refused right here: clients should learn at once that their token was revoked or expired.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    let Some(presented) = presented else {
        return next.run(req).await;
    };
    let caller = match resolve(&state, &presented).await {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            return AppError::Service(ServiceError::Unauthorized("Invalid or expired token"))
                .into_response()
        }
        Err(e) => return e.into_response(),
    };
    if let Some(scopes) = &caller.scopes {
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        if let Err(refusal) = allowed(scopes, req.method(), &template) {
            return AppError::Service(refusal).into_response();
        }
    }
    let user_id = caller.user.id.clone();
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    if let Ok(balance) = users::balance(&state.db, &user_id).await {
        if let Ok(value) = HeaderValue::from_str(&usd4(balance)) {
            response.headers_mut().insert(BALANCE_HEADER.clone(), value);
        }
    }
    response
}

/// Whether a token with `scopes` may call `method` on the route `template`.
fn allowed(
    scopes: &Scopes,
    method: &axum::http::Method,
    template: &str,
) -> Result<(), ServiceError> {
    match super::scopes::need(method, template) {
        super::scopes::Need::Person => Err(ServiceError::Forbidden(
            "Access tokens cannot manage tokens, two-factor sign-in or the password, nor reach \
             operator routes: sign in (or use a JWT from POST /api/auth/login) for that",
        )),
        super::scopes::Need::Scope(scope) if !scopes.contains(scope) => {
            Err(ServiceError::Forbidden(match scope {
                Scope::Read => "This token may not read",
                Scope::Machines => {
                    "This token lacks the `machines` scope (power, delete, snapshots, keys, pools); create one with it on the API tokens page"
                }
                Scope::Inside => {
                    "This token lacks the `inside` scope (commands, files, consoles); create one with it on the API tokens page"
                }
                Scope::Spend => {
                    "This token lacks the `spend` scope (creating machines, renting, extending, adding funds); create one with it on the API tokens page"
                }
                Scope::Metrics => {
                    "This token lacks the `metrics` scope (an operator's Prometheus scrapes of /metrics); create one with it on the API tokens page"
                }
            }))
        }
        super::scopes::Need::Scope(_) => Ok(()),
    }
}

async fn resolve(state: &AppState, header_value: &str) -> Result<Option<Caller>, AppError> {
    let Some(credential) = header_value
        .strip_prefix("Bearer ")
        .or_else(|| header_value.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return Ok(None);
    };
    let (user_id, token_id, scopes, version) = if credential.starts_with(tokens::PREFIX) {
        match tokens::authenticate(&state.db, credential).await? {
            Some(owner) => (
                owner.user_id,
                Some(owner.token_id),
                Some(owner.scopes),
                None,
            ),
            None => return Ok(None),
        }
    } else {
        match state.jwt.verify(credential) {
            Some(v) => (v.user_id, None, None, Some(v.version)),
            None => return Ok(None),
        }
    };
    let Some(user) = users::find(&state.db, &user_id).await? else {
        return Ok(None);
    };
    // A suspended account's tokens are refused, saying why (its sessions and JWTs ended with
    // the suspension).
    if let Some(reason) = &user.suspended {
        return Err(domain::infra::error::ServiceError::Suspended(reason.clone()).into());
    }
    // A JWT from before a password change or "sign out everywhere" is over.
    if version.is_some_and(|v| v != user.credentials_version) {
        return Ok(None);
    }
    Ok(Some(Caller {
        user,
        token_id,
        scopes,
    }))
}

impl Caller {
    /// What this request's credential is, for connections that outlive it (streams, consoles).
    pub fn credential(&self) -> domain::accounts::credentials::Credential {
        domain::accounts::credentials::Credential {
            user_id: self.user.id.clone(),
            token_id: self.token_id.clone(),
            version: self.user.credentials_version,
        }
    }

    /// The caller as the domain services see them.
    pub fn actor(&self) -> domain::Actor {
        domain::Actor {
            user_id: self.user.id.clone(),
            token_id: self.token_id.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(AppError::Unauthenticated)
    }
}

/// A caller with the operator flag.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller
where
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        // Also refused by the route table; kept here so an operator route placed anywhere
        // still takes only a person.
        if caller.scopes.is_some() {
            return Err(AppError::Service(ServiceError::Forbidden(
                "Operator routes take a signed-in operator, not an access token",
            )));
        }
        domain::accounts::totp::check_operator(&AppState::from_ref(state).config, &caller.user)?;
        Ok(AdminCaller(caller))
    }
}
