//! Bounds on what one replica does at once, for everyone and for each account, so that one
//! stranger cannot starve the control plane: file transfers, commands, live streams (and, through
//! [`Seats`], consoles).
//!
//! A [`Gate`] is a replica-wide semaphore (work beyond it waits up to [`GLOBAL_WAIT`], then is
//! refused with 503: the replica is busy for everyone) and a per-account count (beyond it, 429
//! at once, saying which limit: the account is asking for too much at once). Both are held by
//! the [`Pass`] the work keeps until it ends, however it ends (an error, a dropped connection).
//! Bounds are per replica: behind a load balancer, an account may hold `replicas × limit`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::infra::config::Config;
use crate::infra::error::{ServiceError, ServiceResult};

/// How long work waits for a replica-wide permit before it is refused (503).
pub const GLOBAL_WAIT: Duration = Duration::from_secs(10);

/// What each account holds of one kind of work on this replica.
#[derive(Debug, Default, Clone)]
pub struct Seats {
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One account's unit of a [`Seats`]: counts until dropped.
#[derive(Debug)]
pub struct Seat {
    account: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut map = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.account) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

impl Seats {
    /// Everything held on this replica now.
    pub fn open(&self) -> usize {
        let map = self.held.lock().unwrap_or_else(|e| e.into_inner());
        map.values().sum()
    }

    /// What `account` holds on this replica now.
    pub fn held_by(&self, account: &str) -> usize {
        let map = self.held.lock().unwrap_or_else(|e| e.into_inner());
        map.get(account).copied().unwrap_or(0)
    }

    /// Takes one of `account`'s seats; 429 with `refusal` when it holds `max` already.
    pub fn take(
        &self,
        account: &str,
        max: usize,
        refusal: impl FnOnce() -> String,
    ) -> ServiceResult<Seat> {
        let mut map = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let held = map.entry(account.to_owned()).or_default();
        if *held >= max {
            if *held == 0 {
                map.remove(account);
            }
            return Err(ServiceError::TooMany(refusal()));
        }
        *held += 1;
        Ok(Seat {
            account: account.to_owned(),
            held: self.held.clone(),
        })
    }
}

/// One bounded kind of work.
#[derive(Debug)]
pub struct Gate {
    /// In a person's words, plural ("file transfers").
    what: &'static str,
    global: Option<Arc<Semaphore>>,
    per_account: usize,
    seats: Seats,
}

/// Held while the work runs.
#[derive(Debug)]
pub struct Pass {
    _seat: Seat,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Gate {
    /// `global` 0: no replica-wide bound.
    pub fn new(what: &'static str, global: usize, per_account: usize) -> Self {
        Self {
            what,
            global: (global > 0).then(|| Arc::new(Semaphore::new(global))),
            per_account,
            seats: Seats::default(),
        }
    }

    /// Lets one more of `account`'s work in: 429 when the account has its limit running, 503
    /// when the replica stayed full for [`GLOBAL_WAIT`].
    pub async fn enter(&self, account: &str) -> ServiceResult<Pass> {
        let (what, max) = (self.what, self.per_account);
        let seat = self.seats.take(account, max, || {
            format!(
                "You have {max} {what} running at once, the most allowed; wait for one to finish"
            )
        })?;
        let permit = match &self.global {
            None => None,
            Some(global) => Some(
                tokio::time::timeout(GLOBAL_WAIT, global.clone().acquire_owned())
                    .await
                    .map_err(|_| ServiceError::Unavailable)?
                    .map_err(|_| ServiceError::Unavailable)?,
            ),
        };
        Ok(Pass {
            _seat: seat,
            _permit: permit,
        })
    }

    /// What `account` holds through this gate on this replica now.
    pub fn held_by(&self, account: &str) -> usize {
        self.seats.held_by(account)
    }
}

/// This replica's gates.
#[derive(Debug)]
pub struct Gates {
    /// Files into and out of machines (`file_transfers_max`, `file_transfers_per_account`).
    pub files: Gate,
    /// Commands answered when they end (`commands_max`, `commands_per_account`).
    pub commands: Gate,
    /// Live event streams: machine states, stats (`streams_per_account`).
    pub streams: Gate,
}

impl Gates {
    pub fn of(config: &Config) -> Self {
        Self {
            files: Gate::new(
                "file transfers",
                config.file_transfers_max,
                config.file_transfers_per_account,
            ),
            commands: Gate::new("commands", config.commands_max, config.commands_per_account),
            streams: Gate::new("live streams", 0, config.streams_per_account),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_refuses_an_account_at_its_limit() {
        let gate = Gate::new("file transfers", 0, 1);
        let held = gate.enter("u1").await.unwrap();
        match gate.enter("u1").await {
            Err(ServiceError::TooMany(m)) => assert!(m.contains("1 file transfers"), "{m}"),
            other => panic!("expected 429, got {other:?}"),
        }
        gate.enter("u2")
            .await
            .expect("another account is not held back");
        drop(held);
        gate.enter("u1")
            .await
            .expect("the pass came back when dropped");
    }

    #[tokio::test]
    async fn a_full_replica_makes_work_wait_and_a_given_up_wait_returns_its_seat() {
        let gate = Arc::new(Gate::new("commands", 1, 5));
        let first = gate.enter("u1").await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter("u2").await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "waits while the replica is full");
        drop(first);
        waiting
            .await
            .unwrap()
            .expect("enters once the permit is free");
        let _held = gate.enter("u1").await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(50), gate.enter("u1")).await;
        assert!(gave_up.is_err(), "still waiting for the replica");
        assert_eq!(
            gate.held_by("u1"),
            1,
            "the abandoned entry gave its seat back"
        );
    }
}
