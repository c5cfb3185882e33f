//! Rooms: many broadcast groups per process, a member in several of them,
//! on a [`Backplane`] that gives each room one order of messages with ids,
//! so that a member that comes back gets what it missed.
//!
//! [`Rooms`] is Socket.IO's rooms and Phoenix's PubSub topics:
//! [`publish`](Rooms::publish) appends a message to a room's log on the
//! backplane; each process reads every room it has members in from the log,
//! once, and fans each message out to its members through a [`Hub`] (one
//! encoding shared by them all, the hub's [`SlowMemberPolicy`] for the
//! slow ones). With [`LocalBackplane`] (the default) the log is in this
//! process; a shared backplane makes one room of many processes:
//! `RedisBackplane` (cargo feature `redis`) keeps each room in a Redis
//! stream.
//!
//! A member that reconnects with the id of the last message it saw joins
//! with [`join_after`](Rooms::join_after): it gets the messages it missed
//! (as far as the history reaches), then the live ones, with no gap and no
//! duplicate. For a client to know the ids, [`Rooms::render`] builds the
//! frame members get from each message and its id.
//!
//! Presence: [`Rooms::members`] counts a room's members on every instance.
//! Each instance states its own count to the backplane when it changes and
//! at each [heartbeat](Rooms::presence_heartbeat); a count holds for three
//! heartbeats, so the members of an instance that died leave the count
//! within 15 s by default. [`Rooms::next_number`] hands out numbers unique
//! across instances (for names like `user0`, `user1`, …).
//!
//! ```no_run
//! # async fn run(session: tandem::Session) -> Result<(), tandem::Error> {
//! use tandem::rooms::Rooms;
//!
//! let rooms = Rooms::new();
//! let lobby = rooms.join("lobby", session.outgoing()).await?;
//! let news = rooms.join("news", session.outgoing()).await?;
//! rooms.publish("lobby", "hello, lobby").await?;
//! drop(news); // leaves "news", stays in "lobby"
//! # drop(lobby);
//! # Ok(()) }
//! ```

mod backplane;
mod local;
mod presence;
#[cfg(feature = "redis")]
mod redis;
mod room;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::channel::oneshot;
use tokio::sync::mpsc;

#[cfg(feature = "redis")]
pub use self::redis::{RedisBackplane, RedisBackplaneBuilder};
pub use backplane::{Backplane, Envelope, History, MessageId};
pub use local::LocalBackplane;

use crate::error::Error;
use crate::frame::{Frame, FrameType};
use crate::hub::{Hub, Membership, SlowMemberPolicy};
use crate::session::Outgoing;
use presence::Presence;
use room::{Command, RoomTask};

/// Builds the frame that members get from a message of a room's log.
type Render = Arc<dyn Fn(&Envelope) -> Frame + Send + Sync>;

/// The rooms of a server, on a [`Backplane`]. Cheap to clone: every clone
/// is the same set of rooms.
///
/// ```
/// let rooms = tandem::rooms::Rooms::new();
/// assert_eq!(rooms.local_members("lobby"), 0);
/// ```
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

struct Inner {
    backplane: Arc<dyn Backplane>,
    policy: SlowMemberPolicy,
    render: Render,
    presence: Presence,
    rooms: Mutex<HashMap<String, RoomHandle>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, RoomHandle>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn local_members(&self, room: &str) -> usize {
        self.lock().get(room).map_or(0, |handle| handle.hub.len())
    }

    /// The members this instance states it has in `room`: those in it, and
    /// those on their way in.
    fn stated_members(&self, room: &str) -> usize {
        self.lock()
            .get(room)
            .map_or(0, |handle| handle.hub.len() + handle.joining)
    }

    fn room_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// A room this process has members in: its hub, and the task that reads
/// the room's log into it.
struct RoomHandle {
    hub: Hub,
    commands: mpsc::UnboundedSender<Command>,
    /// Joins counted in the room's presence, not yet in its hub.
    joining: usize,
}

impl fmt::Debug for Rooms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rooms")
            .field("policy", &self.inner.policy)
            .field("rooms", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for Rooms {
    fn default() -> Self {
        Self::new()
    }
}

impl Rooms {
    /// Rooms of this process alone, on a [`LocalBackplane`] that keeps the
    /// last 1,024 messages of each room, with the default slow-member
    /// policy.
    ///
    /// ```
    /// let rooms = tandem::rooms::Rooms::new();
    /// # let _ = rooms;
    /// ```
    pub fn new() -> Self {
        Self::with_backplane(LocalBackplane::new())
    }

    /// Rooms on `backplane`.
    ///
    /// ```
    /// use tandem::rooms::{LocalBackplane, Rooms};
    /// let rooms = Rooms::with_backplane(LocalBackplane::with_history(100));
    /// # let _ = rooms;
    /// ```
    pub fn with_backplane(backplane: impl Backplane) -> Self {
        Self {
            inner: Arc::new(Inner {
                backplane: Arc::new(backplane),
                policy: SlowMemberPolicy::default(),
                render: Arc::new(|envelope: &Envelope| envelope.frame.clone()),
                presence: Presence::new(presence::DEFAULT_HEARTBEAT),
                rooms: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The same rooms with `policy` for members that stop reading (see
    /// [`SlowMemberPolicy`]); for rooms set up before any member joins.
    ///
    /// ```
    /// use tandem::hub::SlowMemberPolicy;
    /// let rooms = tandem::rooms::Rooms::new().policy(SlowMemberPolicy::DropMessage);
    /// # let _ = rooms;
    /// ```
    pub fn policy(self, policy: SlowMemberPolicy) -> Self {
        self.rebuild(|inner| inner.policy = policy)
    }

    /// The same rooms, with members getting `render(envelope)` for each
    /// message instead of the message as published: where a client learns
    /// each message's id, to come back with it. Called once per message and
    /// process, whatever the number of members.
    ///
    /// ```
    /// use tandem::Frame;
    /// let rooms = tandem::rooms::Rooms::new().render(|envelope| {
    ///     Frame::text(format!("{} {}", envelope.id, envelope.frame.read_text().unwrap_or("")))
    /// });
    /// # let _ = rooms;
    /// ```
    pub fn render(self, render: impl Fn(&Envelope) -> Frame + Send + Sync + 'static) -> Self {
        let render: Render = Arc::new(render);
        self.rebuild(|inner| inner.render = render)
    }

    /// The same rooms, restating this instance's member count of each room
    /// to the backplane every `heartbeat` (5 s by default; at least 1 ms)
    /// besides whenever it changes. A count holds for three heartbeats:
    /// the members of an instance that dies without a word (`kill -9`, a
    /// lost machine) leave [`members`](Rooms::members) within three
    /// heartbeats of its last, 15 s by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rooms = tandem::rooms::Rooms::new().presence_heartbeat(Duration::from_secs(2));
    /// # let _ = rooms;
    /// ```
    pub fn presence_heartbeat(self, heartbeat: Duration) -> Self {
        let heartbeat = heartbeat.max(Duration::from_millis(1));
        self.rebuild(|inner| inner.presence = Presence::new(heartbeat))
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            backplane: self.inner.backplane.clone(),
            policy: self.inner.policy,
            render: self.inner.render.clone(),
            presence: Presence::new(self.inner.presence.heartbeat()),
            rooms: Mutex::new(HashMap::new()),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, RoomHandle>> {
        self.inner.lock()
    }

    /// Adds a session (by its outgoing handle) to `room`: it gets every
    /// message published to the room from now on, until the returned
    /// [`RoomMembership`] is dropped.
    ///
    /// Fails with the backplane's error when this is the room's first
    /// member here and the room's log cannot be read.
    ///
    /// ```no_run
    /// # async fn f(rooms: tandem::rooms::Rooms, session: tandem::Session) -> Result<(), tandem::Error> {
    /// let membership = rooms.join("lobby", session.outgoing()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn join(&self, room: &str, outgoing: Outgoing) -> Result<RoomMembership, Error> {
        self.enter(room, outgoing, None, None).await
    }

    /// Adds a session to `room` as [`join`](Rooms::join) does, after giving
    /// it the messages published after `last_seen` (the id of the last one
    /// it got, from [`render`](Rooms::render)), as far as the history
    /// reaches: with no gap and no duplicate between those and the live
    /// ones. [`RoomMembership::recovered`] says whether the history held
    /// every message it missed.
    ///
    /// The missed messages are queued to the member one by one under the
    /// rooms' slow-member policy, while the room's live messages wait for
    /// them: a member that does not take them within the policy's bound is
    /// closed, as in a broadcast.
    ///
    /// ```no_run
    /// # async fn f(rooms: tandem::rooms::Rooms, session: tandem::Session) -> Result<(), tandem::Error> {
    /// let last_seen = "41".parse().unwrap();
    /// let membership = rooms.join_after("lobby", session.outgoing(), last_seen).await?;
    /// if !membership.recovered() {
    ///     session.send("some messages were too old to recover").await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn join_after(
        &self,
        room: &str,
        outgoing: Outgoing,
        last_seen: MessageId,
    ) -> Result<RoomMembership, Error> {
        self.enter(room, outgoing, Some(last_seen), None).await
    }

    /// Adds a session to `room` as [`join`](Rooms::join) does (or as
    /// [`join_after`](Rooms::join_after) with `last_seen`), and queues it
    /// `reply(recovered)` first: after the messages it missed, before any
    /// live one (Phoenix's join reply). Where a welcome must be the first
    /// thing a member gets however busy the room is, or mark where its
    /// catch-up ends.
    ///
    /// ```no_run
    /// # async fn f(rooms: tandem::rooms::Rooms, session: tandem::Session) -> Result<(), tandem::Error> {
    /// let here = rooms.members("lobby").await? + 1;
    /// let welcome = move |_recovered| tandem::Frame::text(format!("There are {here} users here."));
    /// let membership = rooms.join_with_reply("lobby", session.outgoing(), None, welcome).await?;
    /// # Ok(()) }
    /// ```
    pub async fn join_with_reply(
        &self,
        room: &str,
        outgoing: Outgoing,
        last_seen: Option<MessageId>,
        reply: impl FnOnce(bool) -> Frame + Send + 'static,
    ) -> Result<RoomMembership, Error> {
        self.enter(room, outgoing, last_seen, Some(Box::new(reply)))
            .await
    }

    async fn enter(
        &self,
        room: &str,
        outgoing: Outgoing,
        last_seen: Option<MessageId>,
        greeting: Option<room::Greeting>,
    ) -> Result<RoomMembership, Error> {
        let commands = {
            let mut rooms = self.lock();
            let handle = rooms.entry(room.to_owned()).or_insert_with(|| {
                let hub = Hub::new(self.inner.policy);
                let (commands, inbox) = mpsc::unbounded_channel();
                tokio::spawn(
                    RoomTask {
                        rooms: self.clone(),
                        room: room.to_owned(),
                        hub: hub.clone(),
                        inbox,
                        backplane: self.inner.backplane.clone(),
                        render: self.inner.render.clone(),
                    }
                    .run(),
                );
                RoomHandle {
                    hub,
                    commands,
                    joining: 0,
                }
            });
            // The room's task, which leaves the map under the same lock
            // once it has nobody, waits for this join now.
            handle.joining += 1;
            handle.commands.clone()
        };
        let on_the_way = OnTheWay {
            rooms: &self.inner,
            room,
        };
        // Counted before its greeting is queued: whatever the member is
        // told of the room's count next includes itself, and so does what
        // the next member is told.
        let changes = self.inner.presence.changes(&self.inner);
        presence::state_now(&changes, room).await;
        let (reply, joined) = oneshot::channel();
        let join = Command::Join {
            outgoing,
            last_seen,
            greeting,
            reply,
        };
        let ended = || Error::Backplane("the room's task ended".into());
        let joined = match commands.send(join) {
            Ok(()) => joined.await.map_err(|_| ended()).and_then(|joined| joined),
            Err(_) => Err(ended()),
        };
        drop(on_the_way);
        let (membership, recovered) = match joined {
            Ok(joined) => joined,
            Err(error) => {
                presence::state_soon(&changes, room);
                return Err(error);
            }
        };
        Ok(RoomMembership {
            membership: Some(membership),
            room: room.to_owned(),
            recovered,
            commands,
            changes,
        })
    }

    /// Appends `frame` (text or binary) to `room`'s log; resolves with its
    /// id once the backplane has accepted it. Members get it from the
    /// room's task a moment later, in the room's order.
    ///
    /// Fails with [`Error::InvalidFrame`] for a control frame, or with the
    /// backplane's error.
    ///
    /// ```no_run
    /// # async fn f(rooms: tandem::rooms::Rooms) -> Result<(), tandem::Error> {
    /// let id = rooms.publish("lobby", "hello").await?;
    /// println!("published as {id}");
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, room: &str, frame: impl Into<Frame>) -> Result<MessageId, Error> {
        let frame = frame.into();
        if !matches!(frame.frame_type(), FrameType::Text | FrameType::Binary) || !frame.is_fin() {
            return Err(Error::InvalidFrame(
                "only whole text and binary messages can be published to a room".into(),
            ));
        }
        self.inner.backplane.publish(room, frame).await
    }

    /// How many members `room` has in this process.
    ///
    /// ```
    /// assert_eq!(tandem::rooms::Rooms::new().local_members("lobby"), 0);
    /// ```
    pub fn local_members(&self, room: &str) -> usize {
        self.inner.local_members(room)
    }

    /// How many members `room` has on every instance of the backplane,
    /// from the counts they state (see
    /// [`presence_heartbeat`](Rooms::presence_heartbeat)): this instance's
    /// joins are counted by the time they return; another's a moment after
    /// theirs.
    ///
    /// Fails with the backplane's error.
    ///
    /// ```no_run
    /// # async fn f(rooms: tandem::rooms::Rooms, session: tandem::Session) -> Result<(), tandem::Error> {
    /// let membership = rooms.join("lobby", session.outgoing()).await?;
    /// let here = rooms.members("lobby").await?;
    /// session.send(format!("There are {here} users here.")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn members(&self, room: &str) -> Result<usize, Error> {
        self.inner.backplane.presence(room).await
    }

    /// The next number of the counter `counter`, shared by every instance
    /// of the backplane: 0, 1, 2, …, each given once. For names that must
    /// be unique across instances, such as the chat demo's `user0`,
    /// `user1`, ….
    ///
    /// Fails with the backplane's error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tandem::Error> {
    /// let rooms = tandem::rooms::Rooms::new();
    /// assert_eq!(rooms.next_number("users").await?, 0);
    /// assert_eq!(rooms.next_number("users").await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn next_number(&self, counter: &str) -> Result<u64, Error> {
        self.inner.backplane.next_number(counter).await
    }

    /// Forgets `room` if it has no member and no join on its way; called by
    /// the room's task, which ends when this returns `true`.
    fn leave_if_empty(&self, room: &str, inbox: &mut mpsc::UnboundedReceiver<Command>) -> bool {
        let mut rooms = self.lock();
        let Some(handle) = rooms.get(room) else {
            return true;
        };
        if !handle.hub.is_empty() || handle.joining > 0 || !inbox.is_empty() {
            return false;
        }
        rooms.remove(room);
        true
    }
}

/// A join on its way into a room: counted in `joining` until it is in the
/// hub or has failed (or its caller gave up on it).
struct OnTheWay<'a> {
    rooms: &'a Inner,
    room: &'a str,
}

impl Drop for OnTheWay<'_> {
    fn drop(&mut self) {
        let mut rooms = self.rooms.lock();
        if let Some(handle) = rooms.get_mut(self.room) {
            handle.joining -= 1;
            if handle.joining == 0 && handle.hub.is_empty() {
                // Nobody came in: the room's task looks again whether it
                // has anyone left.
                let _ = handle.commands.send(Command::Left);
            }
        }
    }
}

/// A member's place in a room; dropping it leaves the room.
///
/// ```no_run
/// # async fn f(rooms: tandem::rooms::Rooms, session: tandem::Session) -> Result<(), tandem::Error> {
/// let membership = rooms.join("lobby", session.outgoing()).await?;
/// println!("in {}", membership.room());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RoomMembership {
    membership: Option<Membership>,
    room: String,
    recovered: bool,
    commands: mpsc::UnboundedSender<Command>,
    changes: mpsc::UnboundedSender<presence::Changed>,
}

impl RoomMembership {
    /// The room's name.
    ///
    /// ```no_run
    /// # fn f(membership: tandem::rooms::RoomMembership) {
    /// assert_eq!(membership.room(), "lobby");
    /// # }
    /// ```
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Whether the member got every message it missed: `true` after
    /// [`Rooms::join`], and after [`Rooms::join_after`] unless the history
    /// no longer reached back to the id it gave.
    ///
    /// ```no_run
    /// # fn f(membership: tandem::rooms::RoomMembership) {
    /// if !membership.recovered() { /* tell the user some messages are gone */ }
    /// # }
    /// ```
    pub fn recovered(&self) -> bool {
        self.recovered
    }
}

impl Drop for RoomMembership {
    fn drop(&mut self) {
        // Out of the hub first, so that the room's task finds it gone.
        self.membership.take();
        let _ = self.commands.send(Command::Left);
        presence::state_soon(&self.changes, &self.room);
    }
}
