//! Request and response shapes of `server::api::admin_compute`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct HistoryRange {
    /// `1h` (every sample), `24h`, `7d` or `30d` (averaged into at most ~240 points).
    pub range: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct HistoryQuery {
    /// Only the holding that covered this moment (RFC 3339), for abuse reports.
    pub at: Option<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct RemoveImage {
    /// `true` deletes the catalog entry for good (refused with 409 while a machine or template
    /// uses it); otherwise the image is retired.
    #[serde(default)]
    pub purge: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileReport {
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    pub destroyed: Vec<String>,
    pub unreachable_nodes: Vec<String>,
}
