//! Request and response shapes of `server::api::meta`.

use serde::Serialize;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`; `unavailable` when the database does not answer; `draining` while this replica
    /// shuts down.
    pub status: &'static str,
}
