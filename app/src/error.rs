//! The portal's one error type for server functions. It crosses the wire as JSON
//! (`{"status", "message"}`): a person's mistake keeps the domain error's 4xx status and its
//! message, written for a person; an internal failure is a 500 with a generic message (the
//! details are logged on the server with the request id, never sent). The server's HTTP edge
//! answers server-function errors with `status` (see `server::http::server_fn_status`), so the
//! browser's network panel tells a typo from an outage.

use std::fmt;

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// A failed server function, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalError {
    /// The HTTP status: 4xx for the person's mistakes, 5xx for ours.
    pub status: u16,
    /// What the page shows.
    pub message: String,
}

/// The message for anything that is not the person's fault.
pub const SOMETHING_WENT_WRONG: &str = "Something went wrong on our side; please try again";

impl PortalError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The input is malformed or breaks a rule (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// Not signed in, or the form's CSRF token is wrong (401 / 403).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// Our failure; the details belong in the server's log, not here.
    pub fn internal() -> Self {
        Self::new(500, SOMETHING_WENT_WRONG)
    }
}

impl fmt::Display for PortalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PortalError {}

impl FromServerFnError for PortalError {
    type Encoder = JsonEncoding;

    /// Failures of the server-function machinery itself (network, arguments, encoding).
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(_) => {
                Self::new(503, "Could not reach the server; check your connection")
            }
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                Self::invalid("Some fields are missing or malformed")
            }
            _ => Self::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_the_wire_as_status_and_message() {
        let e = PortalError::new(409, "This username is taken");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"status":409,"message":"This username is taken"}"#);
        assert_eq!(serde_json::from_str::<PortalError>(&json).unwrap(), e);
    }

    #[test]
    fn machinery_failures_are_not_blamed_on_the_person_unless_they_are() {
        let missing =
            PortalError::from_server_fn_error(ServerFnErrorErr::MissingArg("csrf".into()));
        assert_eq!(missing.status, 400);
        let broken = PortalError::from_server_fn_error(ServerFnErrorErr::ServerError("db".into()));
        assert_eq!(
            (broken.status, broken.message.as_str()),
            (500, SOMETHING_WENT_WRONG)
        );
    }
}
