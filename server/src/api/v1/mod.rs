//! The marketplace dialect under `/api/v1`: marketplace, rentals, pools. Every answer is
//! `{statusCode, message, data}`; errors too (`data` is `null`, or `{balance, required}` on 402).

pub mod marketplace;
pub mod pools;
pub mod rentals;

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use domain::AppState;
use model::market::Page;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(marketplace::router())
        .merge(rentals::router())
        .merge(pools::router())
}

/// A successful `/api/v1` answer.
pub struct V1<T> {
    pub status: StatusCode,
    pub message: &'static str,
    pub data: T,
    pub pagination: Option<Page>,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    #[serde(rename = "statusCode")]
    status_code: u16,
    message: &'a str,
    data: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pagination: Option<Page>,
}

impl<T: Serialize> V1<T> {
    pub fn ok(message: &'static str, data: T) -> Self {
        Self {
            status: StatusCode::OK,
            message,
            data,
            pagination: None,
        }
    }

    pub fn created(message: &'static str, data: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            message,
            data,
            pagination: None,
        }
    }
}

impl<T: Serialize> IntoResponse for V1<T> {
    fn into_response(self) -> Response {
        let body = Envelope {
            status_code: self.status.as_u16(),
            message: self.message,
            data: self.data,
            pagination: self.pagination,
        };
        (self.status, Json(body)).into_response()
    }
}

/// `{"success": true}`, as the `/api/v1` dialect answers updates and deletions.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Success {
    pub success: bool,
}

pub const SUCCESS: Success = Success { success: true };

/// Rewrites the edge's `{"error": ...}` answers on `/api/v1/...` into the `/api/v1`
/// envelope. Raw JSON values are kept as sent, so `balance: 0.0420` keeps its four decimals.
/// Layered outside the authentication middleware (`http::router`), so its refusals (an expired
/// token, a token without the scope) come in the envelope too.
pub async fn envelope_errors(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Some(bytes) = crate::http::error_body(body).await else {
        return (status, "").into_response();
    };
    type Fields = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;
    let fields: Fields = serde_json::from_slice(&bytes).unwrap_or_default();
    let message = fields
        .get("error")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    let data = match (fields.get("balance"), fields.get("required")) {
        (Some(b), Some(r)) => format!("{{\"balance\":{},\"required\":{}}}", b.get(), r.get()),
        _ => "null".to_owned(),
    };
    let text = format!(
        "{{\"statusCode\":{},\"message\":{},\"data\":{data}}}",
        status.as_u16(),
        serde_json::to_string(&message).unwrap_or_else(|_| "\"Error\"".into())
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(text))
}
