//! Request and response shapes of `server::api::console`.

use serde::Deserialize;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TicketBody {
    /// `console` (text: a VM's serial port, a container's shell) or `screen` (a VM's display).
    pub kind: String,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct TicketQuery {
    /// The ticket from `POST /api/vps/{id}/console`.
    pub ticket: String,
}
