//! This process's part of each room's presence: one task per [`Rooms`]
//! that states to the backplane how many members each room has here, when
//! that changes and every heartbeat, so that a room's count covers every
//! instance and forgets those that stopped stating theirs.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::channel::oneshot;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::Inner;

/// How often an instance restates its counts by default.
pub(super) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// How many heartbeats a statement outlives: one lost or late heartbeat
/// does not make members vanish from the count.
const HEARTBEATS_PER_TTL: u32 = 3;

/// A request to state a room's count now; `done` hears when it is stated.
pub(super) struct Changed {
    room: String,
    done: Option<oneshot::Sender<()>>,
}

/// The presence side of one [`Rooms`](super::Rooms).
pub(super) struct Presence {
    /// This instance's id on the backplane: random, so that two processes
    /// (or two `Rooms` of one process) never share one.
    instance: String,
    heartbeat: Duration,
    /// The task's inbox, once a member has joined (the task needs a
    /// runtime, which a `Rooms` made outside one has not).
    changes: OnceLock<mpsc::UnboundedSender<Changed>>,
}

impl Presence {
    pub(super) fn new(heartbeat: Duration) -> Self {
        Self {
            instance: format!("{:016x}", rand::random::<u64>()),
            heartbeat,
            changes: OnceLock::new(),
        }
    }

    pub(super) fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// How long a statement holds: members of an instance that died stop
    /// counting this long after its last heartbeat.
    pub(super) fn ttl(&self) -> Duration {
        self.heartbeat * HEARTBEATS_PER_TTL
    }

    /// The task's inbox, starting the task on first use.
    pub(super) fn changes(&self, rooms: &Arc<Inner>) -> mpsc::UnboundedSender<Changed> {
        self.changes
            .get_or_init(|| {
                let (changes, inbox) = mpsc::unbounded_channel();
                tokio::spawn(run(Arc::downgrade(rooms), inbox));
                changes
            })
            .clone()
    }
}

/// Asks for `room`'s count here to be stated; resolves once it is (or the
/// backplane failed, which the task logs).
pub(super) async fn state_now(changes: &mpsc::UnboundedSender<Changed>, room: &str) {
    let (done, stated) = oneshot::channel();
    let changed = Changed {
        room: room.to_owned(),
        done: Some(done),
    };
    if changes.send(changed).is_ok() {
        let _ = stated.await;
    }
}

/// Asks for `room`'s count here to be stated soon, without waiting.
pub(super) fn state_soon(changes: &mpsc::UnboundedSender<Changed>, room: &str) {
    let _ = changes.send(Changed {
        room: room.to_owned(),
        done: None,
    });
}

/// States the counts of the rooms that changed, a batch at a time, and of
/// every room here at each heartbeat; one statement at a time, so that the
/// last one made for a room is the latest count. Ends with the `Rooms`.
async fn run(rooms: Weak<Inner>, mut inbox: mpsc::UnboundedReceiver<Changed>) {
    let Some(heartbeat) = rooms.upgrade().map(|inner| inner.presence.heartbeat) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batch = BTreeSet::new();
        let mut waiting = Vec::new();
        tokio::select! {
            changed = inbox.recv() => {
                let Some(mut changed) = changed else { break };
                loop {
                    batch.insert(changed.room);
                    waiting.extend(changed.done);
                    match inbox.try_recv() {
                        Ok(next) => changed = next,
                        Err(_) => break,
                    }
                }
            }
            _ = ticks.tick() => {
                let Some(inner) = rooms.upgrade() else { break };
                batch.extend(inner.room_names());
            }
        }
        let Some(inner) = rooms.upgrade() else { break };
        state(&inner, batch).await;
        for done in waiting {
            let _ = done.send(());
        }
    }
    debug!("presence task ended: the rooms are gone");
}

/// States the count here of each room of `batch`.
async fn state(inner: &Inner, batch: BTreeSet<String>) {
    let presence = &inner.presence;
    let mut failed = 0;
    let mut last_error = None;
    for room in batch {
        let members = inner.stated_members(&room);
        let stated = inner
            .backplane
            .set_presence(&room, &presence.instance, members, presence.ttl())
            .await;
        if let Err(error) = stated {
            failed += 1;
            last_error = Some(error);
        }
    }
    if let Some(error) = last_error {
        warn!(%error, rooms = failed, "could not state this instance's members; the rooms' counts may be off until it can");
    }
}
