//! Request and response shapes of `server::api::v1::pools`.

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatePoolRequest {
    /// At most 100 characters.
    pub name: String,
    /// At most 500 characters.
    pub description: Option<String>,
    /// Any JSON object.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<Value>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdatePoolRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub settings: Option<Value>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteRequest {
    /// 1–100 characters: letters, digits, `_`, `-`.
    pub username: String,
    /// `admin` or `user`.
    pub role: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleRequest {
    /// `admin` or `user`.
    pub role: String,
}
