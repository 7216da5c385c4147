//! Revocations: what ends a live connection (a console, a screen, an event stream) at once, on
//! this replica, when what authorised it ends. The service that takes the authority away
//! announces it here — a deleted machine, a revoked token, an account signed out everywhere — so
//! that is written once, where the change is made, and every kind of live connection listens.
//! Other replicas notice within seconds by checking their grants again.

use tokio::sync::broadcast;

/// What ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The machine is being deleted.
    Instance(String),
    /// The access token was revoked.
    Token(String),
    /// The account signed out everywhere, changed its password, was suspended or deleted.
    User(String),
}

impl Revocation {
    /// Why a connection ended, in words for the person watching it.
    pub fn reason(&self) -> &'static str {
        match self {
            Revocation::Instance(_) => "The machine is being deleted",
            Revocation::Token(_) => "The access token was revoked",
            Revocation::User(_) => "Signed out everywhere (or the password changed): sign in again",
        }
    }
}

/// This replica's revocations, as a broadcast every live connection subscribes to.
#[derive(Debug)]
pub struct Revocations(broadcast::Sender<Revocation>);

impl Default for Revocations {
    fn default() -> Self {
        // Receivers that fall behind see `Lagged` and check their grant instead.
        Self(broadcast::channel(64).0)
    }
}

impl Revocations {
    /// Ends this replica's live connections that `revocation` names, now.
    pub fn revoke(&self, revocation: Revocation) {
        let _ = self.0.send(revocation);
    }

    /// Revocations from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.0.subscribe()
    }
}
