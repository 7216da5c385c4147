//! Request and response shapes of `server::api::admin_customers`.

use crate::accounts::Customer;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct CustomerQuery {
    /// Part of an e-mail or username (any case), or a whole id; empty lists everyone.
    pub q: Option<String>,
    /// At most 100; default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerPage {
    pub data: Vec<Customer>,
    /// Every match, beyond this page.
    pub total: i64,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    /// Why, in words for the customer (they read it when signing in and in the mail).
    #[cfg_attr(feature = "openapi", schema(example = "unpaid invoice 2026-11"))]
    pub reason: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountStatus {
    pub status: &'static str,
}
