//! The HTTP edge's one error type, and the extractors that turn bad input into it.
//!
//! Every API error body is JSON. The `/api` dialect's shape is `{"error": "..."}` (402 adds `balance`
//! and `required`); surfaces with another envelope rewrite it in one place (`surface`).

use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use domain::infra::error::ServiceError;
use model::money::Usd4;
use serde::de::DeserializeOwned;
use serde_json::json;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The request itself is unusable (malformed JSON, wrong types, missing fields).
    #[error("{message}")]
    BadRequest { status: StatusCode, message: String },
    #[error("Authentication required")]
    Unauthenticated,
    #[error("Too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
}

impl AppError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Service(e) => e.status(),
            AppError::BadRequest { status, .. } => *status,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::Service(ServiceError::Internal(source)) => {
                // Logged inside the request's span, so the line carries the request id.
                tracing::error!(error = ?source, "internal error");
                json!({ "error": "Internal server error" })
            }
            AppError::Service(ServiceError::InsufficientBalance {
                balance,
                required,
                message,
            }) => {
                // Typed, not `json!`: a `Value` would reformat 0.0420 as 0.042.
                let body = InsufficientBalance {
                    error: message,
                    balance: Usd4(*balance),
                    required: Usd4(*required),
                };
                return (status, Json(body)).into_response();
            }
            other => json!({ "error": other.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            AppError::TooManyRequests { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            AppError::Service(ServiceError::Unavailable | ServiceError::ProviderUnreachable) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            AppError::Unauthenticated | AppError::Service(ServiceError::Unauthorized(_)) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// The `/api` dialect's 402 body.
#[derive(serde::Serialize)]
struct InsufficientBalance<'a> {
    error: &'a str,
    balance: Usd4,
    required: Usd4,
}

/// `Json<T>` whose rejections are JSON errors with a message naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    let (status, message) = match &rejection {
        JsonRejection::JsonDataError(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Invalid request body: {}",
                strip_axum_prefix(&e.body_text())
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => (
            StatusCode::BAD_REQUEST,
            format!("Malformed JSON: {}", strip_axum_prefix(&e.body_text())),
        ),
        JsonRejection::MissingJsonContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected a JSON body with `Content-Type: application/json`".to_owned(),
        ),
        JsonRejection::BytesRejection(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is too large or could not be read".to_owned(),
        ),
        other => (other.status(), other.body_text()),
    };
    AppError::BadRequest { status, message }
}

fn strip_axum_prefix(text: &str) -> String {
    text.split_once(": ")
        .map(|(_, rest)| rest)
        .unwrap_or(text)
        .to_owned()
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query<T>` with JSON errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| {
                AppError::bad_request(format!(
                    "Invalid query: {}",
                    strip_axum_prefix(&e.body_text())
                ))
            })
    }
}
