//! The connections a server holds: every accepted socket, from accept to
//! close, counted against `max_connections` and `max_connections_per_ip`,
//! whatever it is doing (a TLS handshake, plain HTTP, an upgrade or a
//! WebSocket session); and the sessions among them, reachable for the
//! graceful shutdown.
//!
//! A connection takes a [`ConnectionSlot`] at accept and keeps it until its
//! socket is dropped. When an HTTP connection is upgraded its slot becomes
//! the session's, so a session is never counted twice nor left uncounted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::ServerOptions;
use crate::close::{CloseCode, CloseReason};
use crate::link::Link;

/// Where a running server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ServerPhase {
    Running,
    /// Graceful shutdown: sessions were sent 1001, new upgrades get 503,
    /// HTTP connections finish the request in flight and close.
    Stopping,
    /// The deadline passed: remaining connections are dropped.
    Dropping,
}

/// Why a connection was refused at accept (the body of the 503).
pub(super) const SERVER_FULL: &str = "too many connections; try again later";
/// Why a connection was refused at accept for its address.
pub(super) const ADDRESS_FULL: &str = "too many connections from your address; try again later";
/// Why an upgrade was refused during a graceful shutdown.
pub(super) const SHUTTING_DOWN: &str = "the server is shutting down";

/// At most this many refused connections are answered at once; past it a
/// refused connection is closed without an answer, so that a flood of
/// connections over the cap costs no more than a flood of closed ones.
const MAX_REFUSALS: usize = 64;

/// The connections of one server.
#[derive(Debug)]
pub(super) struct Connections {
    table: Mutex<Table>,
    /// How many connections hold a slot.
    count: watch::Sender<usize>,
    /// How many of them are WebSocket sessions or upgrades to one.
    sessions: watch::Sender<usize>,
    phase: watch::Sender<ServerPhase>,
    /// Refused connections being answered right now.
    refusals: AtomicUsize,
}

/// The live connections, by number, and how many each client address holds.
#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, Entry>,
    /// Connections per client address; kept only under a per-address cap.
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug, Default)]
struct Entry {
    /// The client's address, when counted in `per_ip`.
    ip: Option<IpAddr>,
    /// Whether the connection is (being upgraded to) a session.
    session: bool,
    /// The session's link, once the session started.
    link: Option<Arc<Link>>,
}

/// The close reason a graceful shutdown sends.
pub(super) fn going_away() -> CloseReason {
    CloseReason::new(CloseCode::GoingAway, "the server is shutting down")
}

/// What a session still open at the shutdown deadline ends with.
fn dropped_at_deadline() -> CloseReason {
    CloseReason::new(
        CloseCode::GoingAway,
        "the server shut down before the close handshake ended",
    )
}

impl Connections {
    pub(super) fn new() -> Self {
        Self {
            table: Mutex::new(Table::default()),
            count: watch::channel(0).0,
            sessions: watch::channel(0).0,
            phase: watch::channel(ServerPhase::Running).0,
            refusals: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a connection just accepted from `ip`, unless that
    /// would pass the server's cap or the cap per address; the error is the
    /// reason to answer with.
    pub(super) fn try_admit(
        self: &Arc<Self>,
        ip: IpAddr,
        options: &ServerOptions,
    ) -> Result<ConnectionSlot, &'static str> {
        let mut state = self.lock();
        if options
            .max_connections
            .is_some_and(|max| state.live.len() >= max)
        {
            return Err(SERVER_FULL);
        }
        let mut counted_ip = None;
        if let Some(max) = options.max_connections_per_ip {
            // An IPv4 client of a dual-stack listener is one address, however
            // it is written.
            let ip = ip.to_canonical();
            let n = state.per_ip.entry(ip).or_default();
            if *n >= max {
                if *n == 0 {
                    state.per_ip.remove(&ip);
                }
                return Err(ADDRESS_FULL);
            }
            *n += 1;
            counted_ip = Some(ip);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.live.insert(
            id,
            Entry {
                ip: counted_ip,
                ..Entry::default()
            },
        );
        self.count.send_replace(state.live.len());
        Ok(ConnectionSlot {
            connections: self.clone(),
            id,
        })
    }

    /// Takes a place for a session that tandem did not accept the
    /// connection of (an embedding's upgrade), unless a graceful shutdown
    /// began.
    pub(super) fn try_admit_session(self: &Arc<Self>) -> Result<ConnectionSlot, &'static str> {
        if self.phase() != ServerPhase::Running {
            return Err(SHUTTING_DOWN);
        }
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.live.insert(
            id,
            Entry {
                session: true,
                ..Entry::default()
            },
        );
        self.count.send_replace(state.live.len());
        self.sessions.send_modify(|n| *n += 1);
        Ok(ConnectionSlot {
            connections: self.clone(),
            id,
        })
    }

    /// A permit to answer one refused connection, unless [`MAX_REFUSALS`]
    /// are being answered already.
    pub(super) fn try_refusal(self: &Arc<Self>) -> Option<RefusalPermit> {
        let previous = self.refusals.fetch_add(1, Ordering::Relaxed);
        let permit = RefusalPermit {
            connections: self.clone(),
        };
        (previous < MAX_REFUSALS).then_some(permit)
    }

    /// How many connections are open, of every kind.
    pub(super) fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// How many WebSocket sessions are open or being upgraded.
    pub(super) fn session_count(&self) -> usize {
        *self.sessions.borrow()
    }

    pub(super) fn phase(&self) -> ServerPhase {
        *self.phase.borrow()
    }

    /// Follows the phase, for connections that end with it.
    pub(super) fn phases(&self) -> watch::Receiver<ServerPhase> {
        self.phase.subscribe()
    }

    fn links(&self) -> Vec<Arc<Link>> {
        self.lock()
            .live
            .values()
            .filter_map(|e| e.link.clone())
            .collect()
    }

    /// Sends every session 1001 and lets HTTP connections finish their
    /// request in flight; waits up to `deadline` for every connection to
    /// end, sessions and HTTP alike (a download in flight with no session
    /// open is waited for too), then drops those left. Returns how many
    /// sessions were open and how many of them were dropped.
    pub(super) async fn shutdown_gracefully(&self, deadline: Duration) -> (usize, usize) {
        self.phase.send_replace(ServerPhase::Stopping);
        let links = self.links();
        let open = self.session_count();
        info!(
            sessions = open,
            connections = self.count(),
            "graceful shutdown: sending 1001 to every session"
        );
        for link in &links {
            link.request_close(going_away());
        }
        let mut count = self.count.subscribe();
        let _ = tokio::time::timeout(deadline, count.wait_for(|n| *n == 0)).await;
        let dropped = self.session_count();
        let left = self.count();
        if left > 0 {
            warn!(
                sessions = dropped,
                connections = left,
                "graceful shutdown: dropping the connections left at the deadline"
            );
        }
        // The phase first, then the links: a session attached after this
        // snapshot sees the phase itself (ConnectionSlot::attach).
        self.phase.send_replace(ServerPhase::Dropping);
        for link in &self.links() {
            link.drop_connection(dropped_at_deadline());
        }
        (open, dropped)
    }
}

/// A connection's place in [`Connections`]; dropping it frees the place.
#[derive(Debug)]
pub(super) struct ConnectionSlot {
    connections: Arc<Connections>,
    /// The connection's number in the logs.
    pub(super) id: u64,
}

impl ConnectionSlot {
    /// Counts the connection as a WebSocket session from now on, unless a
    /// graceful shutdown began.
    fn begin_session(&self) -> Result<(), &'static str> {
        if self.connections.phase() != ServerPhase::Running {
            return Err(SHUTTING_DOWN);
        }
        let mut state = self.connections.lock();
        if let Some(entry) = state.live.get_mut(&self.id) {
            if !entry.session {
                entry.session = true;
                self.connections.sessions.send_modify(|n| *n += 1);
            }
        }
        Ok(())
    }

    /// Records the session's link; it is sent 1001 at once if a graceful
    /// shutdown already began.
    pub(super) fn attach(&self, link: &Arc<Link>) {
        let mut state = self.connections.lock();
        if let Some(entry) = state.live.get_mut(&self.id) {
            entry.link = Some(link.clone());
        }
        drop(state);
        let phase = self.connections.phase();
        if phase != ServerPhase::Running {
            link.request_close(going_away());
        }
        if phase >= ServerPhase::Dropping {
            link.drop_connection(dropped_at_deadline());
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut state = self.connections.lock();
        let state = &mut *state;
        if let Some(entry) = state.live.remove(&self.id) {
            if entry.session {
                self.connections.sessions.send_modify(|n| *n -= 1);
            }
            if let Some(ip) = entry.ip {
                if let Some(n) = state.per_ip.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        state.per_ip.remove(&ip);
                    }
                }
            }
        }
        self.connections.count.send_replace(state.live.len());
    }
}

/// The slot of an HTTP connection, shared by the connection and its
/// requests: an upgrade takes it for the session, and the connection's
/// place passes to the session without being freed in between.
#[derive(Debug, Clone)]
pub(super) struct SharedSlot(Arc<Mutex<Option<ConnectionSlot>>>);

impl SharedSlot {
    pub(super) fn new(slot: ConnectionSlot) -> Self {
        Self(Arc::new(Mutex::new(Some(slot))))
    }

    /// Takes the slot for a session, unless a graceful shutdown began (then
    /// the slot stays with the HTTP connection).
    pub(super) fn take_for_session(&self) -> Result<ConnectionSlot, &'static str> {
        let mut cell = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slot = cell.take().ok_or("this connection was upgraded already")?;
        match slot.begin_session() {
            Ok(()) => Ok(slot),
            Err(why) => {
                *cell = Some(slot);
                Err(why)
            }
        }
    }
}

/// One refused connection being answered; see [`Connections::try_refusal`].
#[derive(Debug)]
pub(super) struct RefusalPermit {
    connections: Arc<Connections>,
}

impl Drop for RefusalPermit {
    fn drop(&mut self) {
        self.connections.refusals.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves once the server's phase is at least `phase`.
pub(super) async fn reached(mut phases: watch::Receiver<ServerPhase>, phase: ServerPhase) {
    if phases.wait_for(|p| *p >= phase).await.is_err() {
        futures::future::pending::<()>().await;
    }
}
