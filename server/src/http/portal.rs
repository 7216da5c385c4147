//! The portal's own routes beside its server functions (file uploads, console tickets): what
//! changes something takes a signed-in session *and* the session's CSRF token in
//! `x-csrf-token` (a cross-site page can send the cookie but cannot read the token). One
//! extractor says so for all of them, and refusals are the portal's error JSON.

use app::{error::PortalError, ssr::portal};
use axum::{
    extract::{FromRef, FromRequestParts},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use domain::accounts::users::User;
use domain::AppState;
use tower_sessions::Session;

/// A signed-in person whose request carries their session's CSRF token.
pub struct PortalChange(pub User);

/// A portal refusal as the browser's scripts read it: `{status, message}` with that status.
pub struct Refusal(pub PortalError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

impl From<PortalError> for Refusal {
    fn from(e: PortalError) -> Self {
        Refusal(e)
    }
}

impl From<domain::infra::error::ServiceError> for Refusal {
    fn from(e: domain::infra::error::ServiceError) -> Self {
        Refusal(e.into())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PortalChange
where
    AppState: FromRef<S>,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let session = Session::from_request_parts(parts, &state)
            .await
            .map_err(|_| PortalError::unauthorized("Please sign in first"))?;
        let user = portal::require_user(&state, &session).await?;
        let token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        portal::check_csrf(&session, token).await?;
        Ok(PortalChange(user))
    }
}
