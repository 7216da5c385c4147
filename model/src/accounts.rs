//! Types shared by the JSON API, the server functions and the browser: what a client sees.

use serde::{Deserialize, Serialize};

use crate::money::Usd4;

/// `GET /api/me` (reference 002, plus `username`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: String,
    pub email: String,
    pub username: String,
    /// USD, four decimals.
    pub balance: Usd4,
    pub is_admin: bool,
}

/// An access token as listed: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The last four characters of the value, to tell tokens apart.
    pub hint: String,
    /// USD this token may cause to be charged in total; `null` means no limit.
    pub spend_limit: Option<Usd4>,
    /// USD charged through this token so far.
    pub spent: Usd4,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// `POST /api/tokens` answer: the only time the value is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// `vtk_...`; store it now, it is never shown again.
    pub token: String,
    pub spend_limit: Option<Usd4>,
    pub created_at: String,
}
