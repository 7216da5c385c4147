//! How a replica stops without failing anyone's request, for rolling restarts behind a load
//! balancer:
//!
//! 1. **Draining** (on SIGTERM): readiness (`/readyz`) answers 503 so the load balancer stops
//!    sending new requests here, while this replica keeps serving for `shutdown_drain_secs`.
//! 2. **Stopping**: the listener closes and in-flight requests finish; live streams (Server-Sent
//!    Events, consoles) end, so browsers reconnect to another replica; job workers stop claiming
//!    and finish the job in hand — one still running after `shutdown_grace_secs` is handed back to
//!    the queue for another replica at once (drivers are idempotent, so running it again is safe).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    stopping: CancellationToken,
}

impl Lifecycle {
    /// Step 1: readiness fails from now on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Step 2: streams end and workers stop claiming.
    pub fn stop(&self) {
        self.drain();
        self.stopping.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves when [`stop`](Self::stop) is called (at once if it was).
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// An owned future of [`stopping`](Self::stopping), for `'static` streams.
    pub fn stopped(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stopping.clone().cancelled_owned()
    }
}
