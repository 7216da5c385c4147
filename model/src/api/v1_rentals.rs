//! Request and response shapes of `server::api::v1::rentals`.

use crate::market::Transaction;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtendRequest {
    /// One of the server's pricing durations.
    pub additional_days: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtendedRental {
    pub id: String,
    pub rental_end: String,
    pub status: String,
    pub amount: String,
    pub remaining_days: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtendResult {
    pub rental: ExtendedRental,
    pub transaction: Transaction,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MoveRequest {
    /// The pool to move the rental into; you must be its owner or an admin.
    pub pool_id: String,
}
