//! The daemon's one error type: a status and the reference's `{"error": "..."}` body. Messages
//! the reference names are used word for word; the rest say what to change.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use crate::confined::FsError;

#[derive(Debug)]
pub struct NodeError {
    pub status: StatusCode,
    pub message: String,
}

pub type NodeResult<T> = Result<T, NodeError>;

impl NodeError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Missing or invalid authorization token",
        )
    }
    /// A backstop ran out (a file operation took too long): try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn volume_not_found() -> Self {
        Self::not_found("Volume not found")
    }
    pub fn container_not_found() -> Self {
        Self::not_found("Container not found")
    }
    pub fn port_not_found() -> Self {
        Self::not_found("Port not found in pool")
    }
}

impl From<sqlx::Error> for NodeError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database operation failed");
        Self::internal("Database operation failed")
    }
}

impl From<FsError> for NodeError {
    fn from(e: FsError) -> Self {
        let status = match &e {
            FsError::NotFound(_) => StatusCode::NOT_FOUND,
            // 413: the request is too large for what the volume may still hold.
            FsError::Quota { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            FsError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "file operation failed");
        }
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for NodeError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// A JSON body that could not be read answers 400 in the reference's shape, not axum's text.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = NodeError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(NodeError::new(
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                },
                format!("Invalid request body: {}", rejection.body_text()),
            )),
        }
    }
}
