//! The echo and chat demos, written once against [`Session`]: the native
//! examples run them, and the demo page (www/) talks to them from the
//! browser through the browser package's JavaScript API.
//!
//! - [`echo`]: greets, answers each text `T` with `Hi, T!`, closes on `bye`.
//! - [`ChatRoom::join`]: names members `user0`, `user1`, … and relays each
//!   text to every member as `[userK]: T`.
//! - [`run_line_client`]: the client side of both, fed by lines of input.
//!
//! ```no_run
//! # #[cfg(not(target_arch = "wasm32"))]
//! # async fn run() -> std::io::Result<()> {
//! use tandem::demo::{echo, ChatRoom};
//! use tandem::server::Server;
//!
//! let room = ChatRoom::new();
//! let server = Server::new()
//!     .web_socket("/echo", echo)
//!     .web_socket("/chat", move |session| room.clone().join(session))
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! server.wait().await
//! # }
//! ```

use std::time::Duration;

use futures::future::{select, Either};
use futures::{Stream, StreamExt};

use tracing::warn;

use crate::close::{CloseCode, CloseReason};
use crate::frame::Frame;
use crate::hub::{Hub, SlowMemberPolicy};
use crate::session::Session;

/// The echo demo's server handler, as in Ktor's guide.
///
/// Sends `Please enter your name`, answers each text `T` with `Hi, T!`, and
/// closes with 1000 `Client said BYE` when the text is `bye` in any case.
///
/// ```no_run
/// # async fn run(session: tandem::Session) {
/// tandem::demo::echo(session).await;
/// # }
/// ```
pub async fn echo(mut session: Session) {
    if session.send("Please enter your name").await.is_err() {
        return;
    }
    while let Some(frame) = session.receive().await {
        let Some(text) = frame.read_text() else {
            continue;
        };
        let sent = if text.eq_ignore_ascii_case("bye") {
            session
                .close(CloseReason::new(CloseCode::Normal, "Client said BYE"))
                .await
        } else {
            session.send(format!("Hi, {text}!")).await
        };
        if sent.is_err() {
            break;
        }
    }
}

/// The chat demo's shared state: who is connected, on a [`Hub`].
///
/// Clone it into each connection's handler; all clones are the same room.
///
/// A member that stops reading cannot stall the room: the room's hub uses
/// [`SlowMemberPolicy::CloseAfter`] with [`ChatRoom::slow_member_timeout`]
/// (5 s by default), so a member that does not empty its full outgoing
/// queue within that long is closed with 1008 and misses the messages from
/// then on. Every other member gets every message, in order per sender.
///
/// ```
/// let room = tandem::demo::ChatRoom::new();
/// assert_eq!(room.len(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct ChatRoom {
    hub: Hub,
    slow_member_timeout: Duration,
}

impl Default for ChatRoom {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatRoom {
    /// An empty room.
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert!(room.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_slow_member_timeout(Duration::from_secs(5))
    }

    /// An empty room that closes members that do not empty their full queue
    /// within `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let room = tandem::demo::ChatRoom::with_slow_member_timeout(Duration::from_secs(1));
    /// assert_eq!(room.slow_member_timeout(), Duration::from_secs(1));
    /// ```
    pub fn with_slow_member_timeout(timeout: Duration) -> Self {
        Self::with_policy(SlowMemberPolicy::CloseAfter(timeout))
    }

    /// An empty room whose hub treats slow members by `policy`.
    ///
    /// ```
    /// use tandem::hub::SlowMemberPolicy;
    /// let room = tandem::demo::ChatRoom::with_policy(SlowMemberPolicy::DropMessage);
    /// assert_eq!(room.hub().policy(), SlowMemberPolicy::DropMessage);
    /// ```
    pub fn with_policy(policy: SlowMemberPolicy) -> Self {
        let slow_member_timeout = match policy {
            SlowMemberPolicy::CloseAfter(timeout) => timeout,
            _ => Duration::ZERO,
        };
        Self {
            hub: Hub::new(policy),
            slow_member_timeout,
        }
    }

    /// How long a member's queue may stay full before it is closed (zero
    /// when the room's policy is not [`SlowMemberPolicy::CloseAfter`]).
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert_eq!(room.slow_member_timeout(), std::time::Duration::from_secs(5));
    /// ```
    pub fn slow_member_timeout(&self) -> Duration {
        self.slow_member_timeout
    }

    /// The hub the room broadcasts through.
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert!(room.hub().is_empty());
    /// ```
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// How many members are connected.
    ///
    /// ```
    /// assert_eq!(tandem::demo::ChatRoom::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.hub.len()
    }

    /// Whether nobody is connected.
    ///
    /// ```
    /// assert!(tandem::demo::ChatRoom::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.hub.is_empty()
    }

    /// The names of the members connected (`user0`, `user1`, …), in
    /// connect order: the names their messages are relayed under.
    ///
    /// ```
    /// let room = tandem::demo::ChatRoom::new();
    /// assert!(room.members().is_empty());
    /// ```
    pub fn members(&self) -> Vec<String> {
        self.hub.member_ids().into_iter().map(member_name).collect()
    }

    /// The chat server handler for one connection: names it `userN` in
    /// connect order, welcomes it with the member count, relays each of its
    /// texts to every member as `[userN]: text`, and removes it when it leaves.
    ///
    /// ```no_run
    /// # async fn run(room: tandem::demo::ChatRoom, session: tandem::Session) {
    /// room.join(session).await;
    /// # }
    /// ```
    pub async fn join(self, mut session: Session) {
        let member = self.hub.join(session.outgoing());
        let count = self.hub.len();
        let name = member_name(member.id());
        let welcome = format!("You are connected! There are {count} users here.");
        if session.send(welcome).await.is_ok() {
            while let Some(frame) = session.receive().await {
                if let Some(text) = frame.read_text() {
                    self.broadcast(format!("[{name}]: {text}")).await;
                }
            }
        }
        drop(member);
    }

    /// Sends `text` to every member, all at once; returns when every member
    /// has it queued, or was dealt with by the room's policy.
    ///
    /// ```no_run
    /// # async fn run(room: tandem::demo::ChatRoom) {
    /// room.broadcast("[server]: maintenance at noon".to_string()).await;
    /// # }
    /// ```
    pub async fn broadcast(&self, text: String) {
        if let Err(error) = self.hub.broadcast(Frame::text(text)).await {
            warn!(%error, "a chat message was not broadcast");
        }
    }
}

/// A chat member's name, from its number in the room's hub.
fn member_name(id: u64) -> String {
    format!("user{id}")
}

/// The client side of both demos: each line from `lines` goes out as a text
/// frame, each received text goes to `on_text`. When `lines` ends the session
/// closes with 1000, and what the peer sends before it answers that Close
/// still arrives (a tandem server answers a Close only once its handler has
/// handled the lines that came before it). Returns the close reason once the
/// connection is over.
///
/// The native `client` example feeds it standard input.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use futures::StreamExt;
///
/// let session = tandem::connect("ws://127.0.0.1:8080/echo").await?;
/// // The lines never end: the server closes after `bye`.
/// let lines = futures::stream::iter(vec!["Ktor".to_string(), "bye".to_string()])
///     .chain(futures::stream::pending());
/// let reason = tandem::demo::run_line_client(session, lines, |text| println!("{text}")).await;
/// assert_eq!(reason.message, "Client said BYE");
/// # Ok(()) }
/// ```
pub async fn run_line_client<L>(
    session: Session,
    lines: L,
    mut on_text: impl FnMut(&str),
) -> CloseReason
where
    L: Stream<Item = String> + Unpin,
{
    let (mut incoming, outgoing) = session.split();
    let mut lines = lines.fuse();
    let mut input_open = true;
    loop {
        if !input_open {
            match incoming.next().await {
                Some(frame) => {
                    if let Some(text) = frame.read_text() {
                        on_text(text);
                    }
                    continue;
                }
                None => break,
            }
        }
        match select(incoming.next(), lines.next()).await {
            Either::Left((Some(frame), _)) => {
                if let Some(text) = frame.read_text() {
                    on_text(text);
                }
            }
            Either::Left((None, _)) => break,
            Either::Right((Some(line), _)) => {
                if outgoing.send(line).await.is_err() {
                    input_open = false;
                }
            }
            Either::Right((None, _)) => {
                input_open = false;
                let _ = outgoing.close(CloseReason::normal()).await;
            }
        }
    }
    outgoing.close_reason().await
}
