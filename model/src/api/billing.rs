//! Request and response shapes of `server::api::billing`.

use crate::money::Usd4;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddFundsRequest {
    /// USD, from 5.00 to 50.00, whole cents.
    #[cfg_attr(feature = "openapi", schema(example = 10))]
    pub amount: f64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckoutUrl {
    /// Send the customer here to pay; they come back to `/billing/success` or `/billing/cancel`.
    pub url: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAnswer {
    pub received: bool,
    /// Whether this delivery credited a balance (a repeated delivery does not).
    pub credited: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Balance {
    /// USD, four decimals.
    pub balance: Usd4,
    pub currency: &'static str,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct HistoryQuery {
    /// 1–100, default 20.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Movement {
    pub id: String,
    /// USD; positive adds to the balance, negative takes from it.
    pub amount: Usd4,
    /// topup | rental | extension | usage | refund | credit
    pub kind: String,
    pub description: String,
    /// What caused it (a rental id, a payment id, ...).
    pub reference: Option<String>,
    pub created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    pub items: Vec<Movement>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MachineUsage {
    pub instance_id: String,
    /// The machine's name at its last charge in the month.
    pub name: String,
    pub minutes: i64,
    /// What it cost, in USD.
    pub amount: Usd4,
}

/// A month's statement. The parts add up exactly:
/// `opening_balance + credits + rentals − machines − other_usage = closing_balance`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statement {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub opening_balance: Usd4,
    pub closing_balance: Usd4,
    /// Top-ups, refunds and operators' adjustments (signed), oldest first.
    pub credits: Vec<Movement>,
    /// Rentals and extensions (negative), oldest first.
    pub rentals: Vec<Movement>,
    /// Per machine, the most expensive first (positive amounts).
    pub machines: Vec<MachineUsage>,
    /// Usage not itemized per machine: charged before itemizing existed, or capped at a
    /// balance that ran out (positive).
    pub other_usage: Usd4,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotifyEmail {
    pub id: String,
    pub email: String,
    pub created_at: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddNotifyEmail {
    pub email: String,
}
