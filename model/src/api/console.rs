//! Request and response shapes of `server::api::console`.

use serde::{Deserialize, Serialize};

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

/// A fresh ticket: present it within `expires_in` seconds, once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    pub ticket: String,
    /// `console` or `screen`.
    pub kind: &'static str,
    /// The WebSocket path to open with it (`?ticket=` appended).
    pub path: String,
    pub expires_in: u64,
}
