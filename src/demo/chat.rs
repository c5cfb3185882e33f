//! The chat demo on [`Rooms`]: one room, `chat`, in this process or shared
//! by every instance on a backplane.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::warn;

use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::frame::Frame;
use crate::hub::SlowMemberPolicy;
use crate::rooms::{Backplane, Envelope, LocalBackplane, MessageId, RoomMembership, Rooms};
use crate::session::Session;

/// The room every member of the demo is in.
const ROOM: &str = "chat";
/// The counter that numbers members across instances.
const USERS: &str = "chat-users";
/// How long a member may leave its full queue unread by default.
const DEFAULT_SLOW_MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// The chat demo: members named `user0`, `user1`, … (numbered across every
/// instance of the backplane), each text relayed to every member, in one
/// order for all of them.
///
/// Two protocols share the room:
///
/// - **text** ([`join`](ChatRoom::join)), Ktor's guide: the server sends
///   `You are connected! There are N users here.`, then each message as
///   `[userK]: T`; each text the client sends is a message;
/// - **JSON** ([`join_json`](ChatRoom::join_json), with the `json`
///   feature), for clients that reconnect: each message comes with its id,
///   and a client that comes back with `?last=ID&name=userK` gets what it
///   missed, then the live ones, under its old name.
///
/// Each message goes into the room's log as `NAME TEXT`, and each protocol
/// renders it once per server for all its members (they are two [`Rooms`]
/// on one backplane, each reading the room's log once). On
/// [`ChatRoom::new`] the log is in this process; on
/// [`ChatRoom::with_backplane`] with a `RedisBackplane`, several servers
/// form one chat, and "There are N users here." counts the members of all
/// of them (see [`Rooms::members`]).
///
/// A member that stops reading cannot stall the room: one that does not
/// empty its full outgoing queue within the slow-member timeout (5 s by
/// default) is closed with 1008 and misses the messages from then on.
///
/// Clone it into each connection's handler; all clones are the same room.
///
/// ```
/// let room = tandem::demo::ChatRoom::new();
/// assert_eq!(room.len(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct ChatRoom {
    text: Rooms,
    #[cfg(feature = "json")]
    json: Rooms,
    /// The numbers of the members connected here (a number reclaimed by a
    /// member coming back may be held twice for a moment).
    here: Arc<Mutex<BTreeMap<u64, usize>>>,
    slow_member_timeout: Duration,
}

impl Default for ChatRoom {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatRoom {
    /// An empty room in this process.
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert!(room.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_backplane(LocalBackplane::new())
    }

    /// The room on `backplane`: every server on the same backplane (the
    /// same Redis, say) is in the same chat.
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # async fn f() -> Result<(), tandem::Error> {
    /// use tandem::rooms::RedisBackplane;
    /// let backplane = RedisBackplane::builder("redis://127.0.0.1:6379/").connect().await?;
    /// let room = tandem::demo::ChatRoom::with_backplane(backplane);
    /// # let _ = room;
    /// # Ok(()) }
    /// ```
    pub fn with_backplane(backplane: impl Backplane + Clone) -> Self {
        let policy = SlowMemberPolicy::CloseAfter(DEFAULT_SLOW_MEMBER_TIMEOUT);
        Self {
            #[cfg(feature = "json")]
            json: Rooms::with_backplane(backplane.clone())
                .policy(policy)
                .render(render_json),
            text: Rooms::with_backplane(backplane)
                .policy(policy)
                .render(render_text),
            here: Arc::default(),
            slow_member_timeout: DEFAULT_SLOW_MEMBER_TIMEOUT,
        }
    }

    /// An empty room in this process that closes members that do not empty
    /// their full queue within `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let room = tandem::demo::ChatRoom::with_slow_member_timeout(Duration::from_secs(1));
    /// assert_eq!(room.slow_member_timeout(), Duration::from_secs(1));
    /// ```
    pub fn with_slow_member_timeout(timeout: Duration) -> Self {
        Self::new().close_slow_members_after(timeout)
    }

    /// The same room, closing members that do not empty their full queue
    /// within `timeout`; for a room nobody has joined yet.
    ///
    /// ```
    /// use std::time::Duration;
    /// let room = tandem::demo::ChatRoom::new().close_slow_members_after(Duration::from_secs(2));
    /// assert_eq!(room.slow_member_timeout(), Duration::from_secs(2));
    /// ```
    pub fn close_slow_members_after(self, timeout: Duration) -> Self {
        let policy = SlowMemberPolicy::CloseAfter(timeout);
        self.rebuild(|rooms| rooms.policy(policy), timeout)
    }

    /// The same room, restating this server's member count every
    /// `heartbeat` (see [`Rooms::presence_heartbeat`]): the members of a
    /// server that dies leave the count within three heartbeats.
    ///
    /// ```
    /// use std::time::Duration;
    /// let room = tandem::demo::ChatRoom::new().presence_heartbeat(Duration::from_secs(1));
    /// # let _ = room;
    /// ```
    pub fn presence_heartbeat(self, heartbeat: Duration) -> Self {
        let timeout = self.slow_member_timeout;
        self.rebuild(|rooms| rooms.presence_heartbeat(heartbeat), timeout)
    }

    fn rebuild(self, change: impl Fn(Rooms) -> Rooms, slow_member_timeout: Duration) -> Self {
        Self {
            text: change(self.text),
            #[cfg(feature = "json")]
            json: change(self.json),
            here: self.here,
            slow_member_timeout,
        }
    }

    /// How long a member's queue may stay full before it is closed.
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert_eq!(room.slow_member_timeout(), std::time::Duration::from_secs(5));
    /// ```
    pub fn slow_member_timeout(&self) -> Duration {
        self.slow_member_timeout
    }

    fn here(&self) -> MutexGuard<'_, BTreeMap<u64, usize>> {
        self.here.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many members on this server get the room's messages (a member
    /// closed for being too slow no longer does, while its session closes).
    ///
    /// ```
    /// assert_eq!(tandem::demo::ChatRoom::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        let len = self.text.local_members(ROOM);
        #[cfg(feature = "json")]
        let len = len + self.json.local_members(ROOM);
        len
    }

    /// Whether nobody is connected to this server.
    ///
    /// ```
    /// assert!(tandem::demo::ChatRoom::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the members connected to this server (`user0`,
    /// `user1`, …), by number: the names their messages are relayed under.
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert!(room.members().is_empty());
    /// ```
    pub fn members(&self) -> Vec<String> {
        self.here()
            .keys()
            .map(|&number| member_name(number))
            .collect()
    }

    /// How many members the room has on every server of its backplane.
    ///
    /// Fails with the backplane's error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tandem::Error> {
    /// assert_eq!(tandem::demo::ChatRoom::new().users().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn users(&self) -> Result<usize, Error> {
        self.text.members(ROOM).await
    }

    /// The text protocol's handler for one connection (Ktor's guide): names
    /// it `userN`, welcomes it with the room's member count, relays each of
    /// its texts to every member as `[userN]: text`, and removes it when it
    /// leaves. A message the backplane did not take is reported to its
    /// sender as `[server]: …`; when the room cannot be joined, the session
    /// closes with 1013 (try again later).
    ///
    /// ```no_run
    /// # async fn run(room: tandem::demo::ChatRoom, session: tandem::Session) {
    /// room.join(session).await;
    /// # }
    /// ```
    pub async fn join(self, mut session: Session) {
        let welcome = |_: &str, users, _| {
            Frame::text(format!("You are connected! There are {users} users here."))
        };
        let Some(member) = self.enter(&self.text, &session, None, None, welcome).await else {
            return;
        };
        while let Some(frame) = session.receive().await {
            let Some(text) = frame.read_text() else {
                continue;
            };
            if let Err(error) = self.say(&member.name(), text).await {
                let notice = format!("[server]: your message was not sent ({error})");
                if session.send(notice).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Relays `text` to every member as said by `from` (a name without
    /// spaces); resolves with the message's id once the room's log has it.
    ///
    /// ```no_run
    /// # async fn run(room: tandem::demo::ChatRoom) -> Result<(), tandem::Error> {
    /// room.say("admin", "maintenance at noon").await?; // [admin]: maintenance at noon
    /// # Ok(()) }
    /// ```
    pub async fn say(&self, from: &str, text: &str) -> Result<MessageId, Error> {
        self.text.publish(ROOM, format!("{from} {text}")).await
    }

    /// Takes a number for a new member (or the one it comes back with) and
    /// joins it to the room, with `welcome(name, users, recovered)` as the
    /// first thing it gets after what it missed. `users` counts the room
    /// before the join, and the member. `None` once the session is closed
    /// for want of the backplane.
    async fn enter(
        &self,
        rooms: &Rooms,
        session: &Session,
        last_seen: Option<MessageId>,
        number: Option<u64>,
        welcome: impl FnOnce(&str, usize, bool) -> Frame + Send + 'static,
    ) -> Option<Member> {
        let entered = async {
            let number = match number {
                Some(number) => number,
                None => rooms.next_number(USERS).await?,
            };
            let users = rooms.members(ROOM).await? + 1;
            let welcome = move |recovered| welcome(&member_name(number), users, recovered);
            let membership = rooms
                .join_with_reply(ROOM, session.outgoing(), last_seen, welcome)
                .await?;
            Ok::<_, Error>((number, membership))
        };
        match entered.await {
            Ok((number, membership)) => {
                *self.here().entry(number).or_default() += 1;
                Some(Member {
                    number,
                    _membership: membership,
                    here: self.here.clone(),
                })
            }
            Err(error) => {
                warn!(%error, "a chat member could not join");
                let reason = CloseReason::new(CloseCode::TryAgainLater, "the chat is unavailable");
                let _ = session.close(reason).await;
                None
            }
        }
    }
}

#[cfg(feature = "json")]
impl ChatRoom {
    /// The JSON protocol's handler for one connection, for clients that
    /// reconnect and resume. The server sends
    ///
    /// - `{"type":"message","id":ID,"from":"userK","text":T}` for each
    ///   message, in the room's order;
    /// - `{"type":"welcome","name":"userN","users":N,"recovered":BOOL}`
    ///   once the member is in: after the messages it missed, when it came
    ///   back with `?last=ID` (`recovered` says whether the history still
    ///   held all of them);
    /// - `{"type":"error","text":…}` when what the client sent is not
    ///   `{"text":T}`, or the room's log did not take it.
    ///
    /// The client sends `{"text":T}`. It comes back after a disconnect with
    /// `?last=ID` (the id of the last message it got) and `&name=userN`
    /// (its name, which the server then keeps: the demo trusts it, where
    /// an application would take the name from its authentication).
    ///
    /// ```no_run
    /// # async fn run(room: tandem::demo::ChatRoom, session: tandem::Session) {
    /// room.join_json(session).await;
    /// # }
    /// ```
    pub async fn join_json(self, mut session: Session) {
        let query = |name| {
            session
                .request()
                .and_then(|request| request.query_param(name))
                .map(|value| value.into_owned())
        };
        let last_seen = query("last").map(MessageId::from);
        // A name is kept only by a member that comes back.
        let number = last_seen
            .as_ref()
            .and_then(|_| query("name"))
            .and_then(|name| name.strip_prefix("user")?.parse().ok());
        let welcome = |name: &str, users, recovered| {
            let welcome = serde_json::json!({
                "type": "welcome",
                "name": name,
                "users": users,
                "recovered": recovered,
            });
            Frame::text(welcome.to_string())
        };
        let rooms = &self.json;
        let Some(member) = self
            .enter(rooms, &session, last_seen, number, welcome)
            .await
        else {
            return;
        };
        while let Some(frame) = session.receive().await {
            let said = frame
                .json::<serde_json::Value>()
                .ok()
                .and_then(|value| value.get("text")?.as_str().map(str::to_owned));
            let problem = match said {
                Some(text) => match self.say(&member.name(), &text).await {
                    Ok(_) => continue,
                    Err(error) => format!("your message was not sent ({error})"),
                },
                None => "expected {\"text\": \"…\"}".to_owned(),
            };
            let error = serde_json::json!({ "type": "error", "text": problem });
            if session.send_json(&error).await.is_err() {
                break;
            }
        }
    }
}

/// A member's place in the chat; leaving drops it.
struct Member {
    number: u64,
    _membership: RoomMembership,
    here: Arc<Mutex<BTreeMap<u64, usize>>>,
}

impl Member {
    fn name(&self) -> String {
        member_name(self.number)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut here = self.here.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = here.get_mut(&self.number) {
            *count -= 1;
            if *count == 0 {
                here.remove(&self.number);
            }
        }
    }
}

fn member_name(number: u64) -> String {
    format!("user{number}")
}

/// A message of the log as its sender's name and text (`NAME TEXT`); what
/// is not in that form (published to the room by other code) has no name.
fn said(envelope: &Envelope) -> (&str, &str) {
    let text = envelope.frame.read_text().unwrap_or_default();
    text.split_once(' ').unwrap_or(("", text))
}

fn render_text(envelope: &Envelope) -> Frame {
    match said(envelope) {
        ("", text) => Frame::text(text.to_owned()),
        (from, text) => Frame::text(format!("[{from}]: {text}")),
    }
}

#[cfg(feature = "json")]
fn render_json(envelope: &Envelope) -> Frame {
    let (from, text) = said(envelope);
    let message = serde_json::json!({
        "type": "message",
        "id": envelope.id.as_str(),
        "from": from,
        "text": text,
    });
    Frame::text(message.to_string())
}
