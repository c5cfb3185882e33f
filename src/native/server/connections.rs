//! The sessions a server runs: counted for the cap, reachable for the
//! graceful shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::close::{CloseCode, CloseReason};
use crate::link::Link;

/// Where a running server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Phase {
    Running,
    /// Graceful shutdown: sessions were sent 1001, new upgrades get 503.
    Stopping,
    /// The deadline passed: remaining connections are dropped.
    Dropping,
}

/// The sessions a server runs: counted for the cap, reachable for the
/// shutdown.
#[derive(Debug)]
pub(super) struct Sessions {
    state: Mutex<SessionsState>,
    /// How many connections hold a slot.
    pub(super) count: watch::Sender<usize>,
    pub(super) phase: watch::Sender<Phase>,
}

#[derive(Debug, Default)]
pub(super) struct SessionsState {
    next_id: u64,
    /// Every slot; the link is there once the session started.
    pub(super) live: HashMap<u64, Option<Arc<Link>>>,
}

/// The close reason a graceful shutdown sends.
pub(super) fn going_away() -> CloseReason {
    CloseReason::new(CloseCode::GoingAway, "the server is shutting down")
}

impl Sessions {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(SessionsState::default()),
            count: watch::channel(0).0,
            phase: watch::channel(Phase::Running).0,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, SessionsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a new session, unless the cap is reached or the
    /// server is shutting down.
    pub(super) fn try_reserve(
        self: &Arc<Self>,
        max: Option<usize>,
    ) -> Result<SessionSlot, &'static str> {
        if *self.phase.borrow() != Phase::Running {
            return Err("the server is shutting down");
        }
        let mut state = self.lock();
        if max.is_some_and(|max| state.live.len() >= max) {
            return Err("too many connections; try again later");
        }
        let id = state.next_id;
        state.next_id += 1;
        state.live.insert(id, None);
        self.count.send_replace(state.live.len());
        Ok(SessionSlot {
            sessions: self.clone(),
            id,
        })
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// A session's place in [`Sessions`]; dropping it frees the place.
#[derive(Debug)]
pub(super) struct SessionSlot {
    sessions: Arc<Sessions>,
    pub(super) id: u64,
}

impl SessionSlot {
    /// Records the session's link; it is sent 1001 at once if a graceful
    /// shutdown already began.
    pub(super) fn attach(&self, link: &Arc<Link>) {
        let mut state = self.sessions.lock();
        if let Some(slot) = state.live.get_mut(&self.id) {
            *slot = Some(link.clone());
        }
        drop(state);
        let phase = self.sessions.phase();
        if phase != Phase::Running {
            link.request_close(going_away());
        }
        if phase >= Phase::Dropping {
            link.drop_connection();
        }
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut state = self.sessions.lock();
        state.live.remove(&self.id);
        self.sessions.count.send_replace(state.live.len());
    }
}

/// Resolves once the server's phase is at least `phase`.
pub(super) async fn reached(mut phases: watch::Receiver<Phase>, phase: Phase) {
    if phases.wait_for(|p| *p >= phase).await.is_err() {
        futures::future::pending::<()>().await;
    }
}
