//! Request and response shapes of `server::api::tokens`.

use serde::Deserialize;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTokenRequest {
    /// 1–100 characters.
    #[cfg_attr(feature = "openapi", schema(example = "ci-deploy"))]
    pub name: String,
    /// Optional cap, in USD, on what this token may ever cause to be charged.
    #[cfg_attr(feature = "openapi", schema(example = 25.0))]
    pub spend_limit: Option<f64>,
    /// What it may do: any of `read`, `machines`, `inside`, `spend` (`read` is always given),
    /// and for operators `metrics` (Prometheus scrapes of `/metrics`, never by default).
    /// Omitted: the first four, as tokens had before scopes existed.
    #[cfg_attr(feature = "openapi", schema(example = json!(["read", "inside"])))]
    pub scopes: Option<Vec<String>>,
}
