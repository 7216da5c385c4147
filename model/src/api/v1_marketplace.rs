//! Request and response shapes of `server::api::v1::marketplace`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentRequest {
    /// One of the server's pricing durations.
    pub rental_days: i64,
    /// A pool where you are owner or admin (24-hex); your default pool when omitted.
    pub pool_id: Option<String>,
    /// Hangar's extension: which of your SSH keys (ids) the server is set up with; all of them
    /// when omitted, none for `[]`. Pool members' keys come on top by the pool's `member_keys`
    /// setting. A key that is not yours answers 404.
    pub ssh_key_ids: Option<Vec<String>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentedRental {
    pub id: String,
    pub server_id: String,
    pub pool_id: String,
    pub rental_start: String,
    pub rental_end: String,
    pub hold_days: i64,
    pub actual_usage_days: i64,
    pub status: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RentResult {
    pub rental: RentedRental,
    pub transaction: crate::market::Transaction,
}
