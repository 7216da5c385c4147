//! Consoles and screens: a machine's text console (a VM's serial port, a shell on a TTY in a
//! container) and a VM's screen (VNC), opened from a browser or an API client through Hangar.
//!
//! **Tickets** (Proxmox's vncproxy/vncwebsocket flow): the caller asks for one ([`issue`]) with
//! their session or token; it is bound to user, machine and kind, valid for
//! `console_ticket_secs`, and spent by the first WebSocket upgrade that presents it ([`redeem`]),
//! which must also come from the same user. Only its SHA-256 is stored. The grant it gives is
//! checked again every few seconds while the console is open ([`Grant::still_allowed`]): a
//! deleted machine or a revoked token ends it, and a revocation (`infra::revocations`) ends it at
//! once on this replica.
//!
//! **One console per machine, many viewers**: [`Consoles::attach`] joins the machine's [`Hub`]
//! (made on first use): one driver console (a serial port has one reader) whose output fans out to
//! every viewer, whose input any viewer may send, and which keeps the last [`HISTORY_BYTES`] of
//! output so a new viewer sees the last screenful. When the machine stops the hub says so and
//! tries again every [`RETRY`] until it runs; when the last viewer leaves it closes. Viewers that
//! cannot keep up lose their place (the fan-out channel is bounded) and are told so: a slow
//! viewer never grows the server's memory. Each user may hold `console_max_per_user` consoles and
//! screens at once (on each replica).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc, watch};

use crate::compute::instances::{self, InstanceState};
use crate::fleet::driver::{machine_name, ConsoleInput, DriverError, Kind as MachineKind};
use crate::infra::audit;
use crate::infra::db::{self, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
pub use crate::infra::gates::Seat;
use crate::infra::gates::Seats;
use crate::infra::revocations::Revocation;
use crate::Actor;
use crate::AppState;
use model::api::console::Ticket;

/// Output kept for viewers who join later.
pub const HISTORY_BYTES: usize = 64 * 1024;
/// How often a stopped machine's console is tried again, and a grant checked.
pub const RETRY: Duration = Duration::from_secs(2);
/// Output chunks a viewer may fall behind before it is dropped.
const FAN_OUT: usize = 256;

/// What a ticket opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The text console (xterm.js).
    Console,
    /// A VM's screen (noVNC).
    Screen,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Console => "console",
            Kind::Screen => "screen",
        }
    }

    pub fn parse(s: &str) -> ServiceResult<Self> {
        match s {
            "console" => Ok(Kind::Console),
            "screen" => Ok(Kind::Screen),
            _ => Err(ServiceError::invalid("kind must be `console` or `screen`")),
        }
    }
}

/// Issues a ticket for the caller's machine `id`. Screens are for VMs; a simulated machine has
/// neither.
pub async fn issue(state: &AppState, actor: &Actor, id: &str, kind: Kind) -> ServiceResult<Ticket> {
    let inst = instances::get(&state.db, &actor.user_id, id).await?;
    if kind == Kind::Screen && inst.kind != MachineKind::Vm {
        return Err(ServiceError::Conflict(
            "Containers have no screen; open their console instead".into(),
        ));
    }
    let node = crate::fleet::nodes::driver_for(state, inst.node_id.as_deref()).await?;
    if node.is_none() {
        return Err(ServiceError::Conflict(
            "The machine is not on a node yet".into(),
        ));
    }
    let ticket = {
        use rand::RngCore;
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let now = db::now_ms();
    let ttl = state.config.console_ticket_secs;
    sqlx::query(
        "INSERT INTO console_tickets (id, user_id, instance_id, kind, token_id, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(hash(&ticket))
    .bind(&actor.user_id)
    .bind(&inst.id)
    .bind(kind.as_str())
    .bind(&actor.token_id)
    .bind(now + (ttl as i64) * 1000)
    .bind(now)
    .execute(&state.db)
    .await?;
    Ok(Ticket {
        ticket,
        kind: kind.as_str(),
        path: format!("/api/vps/{}/{}/ws", inst.id, kind.as_str()),
        expires_in: ttl,
    })
}

/// What a spent ticket allows.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub instance_id: String,
    pub kind: Kind,
    pub token_id: Option<String>,
    /// The account's credentials version when it was opened: a password change or "sign out
    /// everywhere" since ends it (`accounts::credentials`).
    pub version: i64,
}

/// Spends `ticket` for `user_id` on machine `id` and `kind`: single use, unexpired, and bound to
/// exactly these (anything else is a 404, as for a foreign machine). Audited as `console.open`.
pub async fn redeem(
    state: &AppState,
    user_id: &str,
    version: i64,
    id: &str,
    kind: Kind,
    ticket: &str,
) -> ServiceResult<Grant> {
    let now = db::now_ms();
    let mut tx = crate::infra::db::begin(&state.db).await?;
    let row: Option<(String, String, String, Option<String>)> = sqlx::query_as(
        "UPDATE console_tickets SET used_at = $1
         WHERE id = $2 AND used_at IS NULL AND expires_at > $1
         RETURNING user_id, instance_id, kind, token_id",
    )
    .bind(now)
    .bind(hash(ticket))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((owner, instance_id, ticket_kind, token_id)) = row else {
        return Err(ServiceError::NotFound("Ticket"));
    };
    if owner != user_id || instance_id != id || ticket_kind != kind.as_str() {
        return Err(ServiceError::NotFound("Ticket"));
    }
    audit::record(
        &mut tx,
        Some(user_id),
        "console.open",
        "instance",
        Some(id),
        serde_json::json!({ "kind": kind.as_str(), "token_id": token_id }),
    )
    .await?;
    tx.commit().await?;
    let grant = Grant {
        user_id: owner,
        instance_id,
        kind,
        token_id,
        version,
    };
    if !grant.still_allowed(&state.db).await? {
        return Err(ServiceError::NotFound("Instance"));
    }
    Ok(grant)
}

impl Grant {
    /// Whether the machine is still the user's and the token (if any) still valid.
    pub async fn still_allowed(&self, db: &Pool) -> ServiceResult<bool> {
        match instances::get(db, &self.user_id, &self.instance_id).await {
            Ok(inst) if inst.transition() == Some(instances::Transition::Delete) => {
                return Ok(false)
            }
            Ok(_) => {}
            Err(ServiceError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        let credential = crate::accounts::credentials::Credential {
            user_id: self.user_id.clone(),
            token_id: self.token_id.clone(),
            version: self.version,
        };
        credential.still_valid(db).await
    }

    /// Whether `revocation` ends this grant.
    pub fn ended_by(&self, revocation: &Revocation) -> bool {
        match revocation {
            Revocation::Instance(id) => *id == self.instance_id,
            Revocation::Token(id) => self.token_id.as_deref() == Some(id.as_str()),
            Revocation::User(id) => *id == self.user_id,
        }
    }
}

/// Removes tickets that can no longer be used (run with the periodic sweeps).
pub async fn sweep(db: &Pool, now: i64) -> ServiceResult<u64> {
    Ok(
        sqlx::query("DELETE FROM console_tickets WHERE expires_at < $1")
            .bind(now - 3_600_000)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

fn hash(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// What a viewer of a text console receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Output(Bytes),
    State(ConsoleState),
}

/// Whether the machine's console is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message", rename_all = "lowercase")]
pub enum ConsoleState {
    Connecting,
    Running,
    /// Not connected, and why (the machine stopped, is not running yet...).
    Stopped(String),
}

/// The open consoles of this replica.
#[derive(Debug, Default)]
pub struct Consoles {
    hubs: Mutex<HashMap<String, Weak<Hub>>>,
    seats: Seats,
}

impl Consoles {
    /// Consoles and screens open on this replica now (every seat held).
    pub fn open(&self) -> usize {
        self.seats.open()
    }

    /// The consoles and screens `user_id` holds open on this replica.
    pub fn held_by(&self, user_id: &str) -> usize {
        self.seats.held_by(user_id)
    }

    /// Takes one of the user's console seats (held until dropped); 429 when they hold the
    /// maximum.
    pub fn seat(&self, user_id: &str, max: usize) -> ServiceResult<Seat> {
        self.seats.take(user_id, max, || {
            format!("You have {max} consoles and screens open, the most allowed at once; close one first")
        })
    }

    /// Joins machine `grant.instance_id`'s console hub, making it on first use.
    pub fn attach(&self, state: &AppState, grant: &Grant) -> Arc<Hub> {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hub) = hubs.get(&grant.instance_id).and_then(Weak::upgrade) {
            return hub;
        }
        hubs.retain(|_, w| w.strong_count() > 0);
        let hub = Hub::start(state.clone(), grant.instance_id.clone());
        hubs.insert(grant.instance_id.clone(), Arc::downgrade(&hub));
        hub
    }
}

/// One machine's shared text console.
#[derive(Debug)]
pub struct Hub {
    events: broadcast::Sender<Event>,
    input: mpsc::Sender<ConsoleInput>,
    history: Arc<Mutex<VecDeque<u8>>>,
    state: watch::Receiver<ConsoleState>,
    /// Dropped with the hub (the last viewer left): stops its task.
    _stop: watch::Sender<()>,
}

/// A viewer's view of a hub: what was printed before it joined, then everything after.
#[derive(Debug)]
pub struct Subscription {
    pub history: Bytes,
    pub state: ConsoleState,
    pub events: broadcast::Receiver<Event>,
}

impl Hub {
    fn start(state: AppState, instance_id: String) -> Arc<Hub> {
        let (events, _) = broadcast::channel(FAN_OUT);
        let (input, input_rx) = mpsc::channel(64);
        let (state_tx, state_rx) = watch::channel(ConsoleState::Connecting);
        let (stop, stop_rx) = watch::channel(());
        let history = Arc::new(Mutex::new(VecDeque::with_capacity(HISTORY_BYTES)));
        let hub = Arc::new(Hub {
            events: events.clone(),
            input,
            history: history.clone(),
            state: state_rx,
            _stop: stop,
        });
        tokio::spawn(run_hub(
            state,
            instance_id,
            events,
            input_rx,
            history,
            state_tx,
            stop_rx,
        ));
        hub
    }

    /// The history and the live events, with nothing lost or repeated between them.
    pub fn subscribe(&self) -> Subscription {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        Subscription {
            history: Bytes::from(history.iter().copied().collect::<Vec<u8>>()),
            state: self.state.borrow().clone(),
            events: self.events.subscribe(),
        }
    }

    /// Sends a viewer's keystrokes or resize; dropped when the machine is not connected or the
    /// console is flooded.
    pub fn send(&self, input: ConsoleInput) {
        let _ = self.input.try_send(input);
    }
}

async fn run_hub(
    state: AppState,
    instance_id: String,
    events: broadcast::Sender<Event>,
    mut input: mpsc::Receiver<ConsoleInput>,
    history: Arc<Mutex<VecDeque<u8>>>,
    status: watch::Sender<ConsoleState>,
    mut stop: watch::Receiver<()>,
) {
    let set = |s: ConsoleState| {
        if *status.borrow() != s {
            // Under the history lock, so a joining viewer sees either the old state and this
            // event, or the new state.
            let _guard = history.lock().unwrap_or_else(|e| e.into_inner());
            status.send_replace(s.clone());
            let _ = events.send(Event::State(s));
        }
    };
    loop {
        match open(&state, &instance_id).await {
            Ok(mut io) => {
                set(ConsoleState::Running);
                loop {
                    tokio::select! {
                        chunk = io.output.recv() => match chunk {
                            Some(bytes) => {
                                let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
                                h.extend(bytes.iter().copied());
                                let over = h.len().saturating_sub(HISTORY_BYTES);
                                h.drain(..over);
                                let _ = events.send(Event::Output(bytes));
                            }
                            None => break,
                        },
                        typed = input.recv() => match typed {
                            Some(typed) => { let _ = io.input.send(typed).await; }
                            None => return,
                        },
                        _ = stop.changed() => return,
                    }
                }
                set(ConsoleState::Stopped(
                    "The console ended: the machine stopped or restarted".into(),
                ));
            }
            Err(reason) => set(ConsoleState::Stopped(reason)),
        }
        // Until it can be opened again; what viewers type meanwhile goes nowhere.
        let wait = tokio::time::sleep(RETRY);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                typed = input.recv() => if typed.is_none() { return },
                _ = stop.changed() => return,
            }
        }
    }
}

/// The machine's console from its driver, or why there is none now.
async fn open(
    state: &AppState,
    instance_id: &str,
) -> Result<crate::fleet::driver::ConsoleIo, String> {
    let inst = match instances::load(&state.db, instance_id).await {
        Ok(Some(inst)) if inst.state != InstanceState::Deleted => inst,
        Ok(_) => return Err("The machine was deleted".into()),
        Err(e) => return Err(e.to_string()),
    };
    // A machine on its way up (created, started or restarted, its guest still booting: not yet
    // `running`, see `executor::await_guest`) has a console too, and it shows the boot.
    let booting = matches!(
        inst.transition(),
        Some(instances::Transition::Create | instances::Transition::Start)
    );
    if inst.state != InstanceState::Running && !booting {
        return Err(format!("The machine is {}", inst.state.vps()));
    }
    let driver = match crate::fleet::nodes::driver_for(state, inst.node_id.as_deref()).await {
        Ok(Some(driver)) => driver,
        Ok(None) => return Err("The machine is not on a node".into()),
        Err(e) => return Err(e.to_string()),
    };
    driver
        .open_console(&machine_name(&inst.id))
        .await
        .map_err(|e| match e {
            DriverError::Backend(m) => {
                tracing::warn!(error = %m, instance = %inst.id, "console");
                "The console could not be opened; trying again".into()
            }
            other => other.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_counted_per_user_and_given_back() {
        let consoles = Consoles::default();
        let a = consoles.seat("u1", 2).unwrap();
        let _b = consoles.seat("u1", 2).unwrap();
        assert!(matches!(
            consoles.seat("u1", 2),
            Err(ServiceError::TooMany(_))
        ));
        assert!(
            consoles.seat("u2", 2).is_ok(),
            "another user is not counted"
        );
        drop(a);
        assert!(
            consoles.seat("u1", 2).is_ok(),
            "a closed console frees its seat"
        );
    }

    #[test]
    fn revocations_name_what_they_end() {
        let grant = Grant {
            user_id: "u".into(),
            instance_id: "i".into(),
            kind: Kind::Console,
            token_id: Some("t".into()),
            version: 0,
        };
        assert!(grant.ended_by(&Revocation::Instance("i".into())));
        assert!(grant.ended_by(&Revocation::Token("t".into())));
        assert!(!grant.ended_by(&Revocation::Instance("other".into())));
        assert!(!grant.ended_by(&Revocation::Token("other".into())));
        assert!(grant.ended_by(&Revocation::User("u".into())));
        assert!(!grant.ended_by(&Revocation::User("someone else".into())));
    }
}
