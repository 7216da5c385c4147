//! Request and response shapes of `server::api::admin`.

use crate::money::Usd4;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct InventoryQuery {
    /// Name, id, model, or the renter's username or e-mail (any part, any case).
    #[serde(default)]
    pub q: String,
    /// `available`, `rented` or `retired`; all when absent.
    #[serde(default)]
    pub status: String,
    /// At most 200 (default 50).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    /// USD to add (positive) or take away (negative); never below a zero balance, at most
    /// `max_adjustment_usd` (default 10,000) at once.
    #[cfg_attr(feature = "openapi", schema(example = 10.0))]
    pub amount: f64,
    /// Why, for the operators only (the audit log; ≤ 500 characters). The customer never sees
    /// it.
    pub note: Option<String>,
    /// The line the customer reads on their billing page (≤ 120 characters); default "Credit
    /// from the platform" or "Balance correction".
    pub description: Option<String>,
    /// Required (`true`) above `confirm_adjustment_over_usd` (default 100).
    #[serde(default)]
    pub confirm: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditResponse {
    pub user_id: String,
    pub ledger_entry_id: String,
    pub amount: Usd4,
    pub balance: Usd4,
}
