//! The [`Backplane`] contract: each room's messages in one order, with ids
//! and a bounded history, whoever published them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::Error;
use crate::frame::Frame;

/// Where rooms' messages meet: every instance of a server publishes into
/// it and reads every room it has members in back out of it, in one order
/// per room that is the same for every reader.
///
/// [`LocalBackplane`](super::LocalBackplane) keeps the rooms in this
/// process (the default of [`Rooms::new`](super::Rooms::new)); a shared
/// one (Redis streams, say) makes one room of the instances behind a load
/// balancer. [`Rooms`](super::Rooms) is written against this trait alone:
///
/// - a room's log is an ordered sequence of messages, each with an id
///   that the backplane gives it when it accepts it;
/// - [`publish`](Backplane::publish) resolves once the message is in the
///   log (accepted: it will reach every reader); when the backplane cannot
///   take more (its buffer is full, or it is unreachable) it waits or fails,
///   and never drops a message it has accepted;
/// - [`subscribe`](Backplane::subscribe) reads the log after a given id, in
///   order, without end: what is there, then each message as it comes;
/// - the log keeps a bounded history, so a reader that comes back with the
///   id of the last message it saw gets what it missed, if that is still
///   kept ([`history`](Backplane::history));
/// - presence: each instance states how many members it has in a room,
///   for a time ([`set_presence`](Backplane::set_presence)), and the
///   room's count is the sum over the instances whose statement has not
///   run out ([`presence`](Backplane::presence)), so that the members of
///   an instance that died without a word stop counting;
/// - counters shared by every instance ([`next_number`](Backplane::next_number)),
///   for names that must be unique across them.
///
/// ```
/// use futures::StreamExt;
/// use tandem::rooms::{Backplane, LocalBackplane};
/// use tandem::Frame;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tandem::Error> {
/// let backplane = LocalBackplane::new();
/// let mut reader = backplane.subscribe("lobby", None);
/// let id = backplane.publish("lobby", Frame::text("hello")).await?;
/// let first = reader.next().await.unwrap()?;
/// assert_eq!((first.id, first.frame), (id, Frame::text("hello")));
/// # Ok(()) }
/// ```
pub trait Backplane: Send + Sync + 'static {
    /// Appends `frame` (text or binary) to `room`'s log; resolves with its
    /// id once it is accepted.
    fn publish(&self, room: &str, frame: Frame) -> BoxFuture<'static, Result<MessageId, Error>>;

    /// The id of the last message in `room`'s log, `None` for an empty
    /// log: where a reader that wants only what comes next starts.
    fn head(&self, room: &str) -> BoxFuture<'static, Result<Option<MessageId>, Error>>;

    /// `room`'s messages after `after` (from the start of the kept history
    /// for `None`), in order, and then each new one. An `Err` item means
    /// the reader fell behind the history and messages were lost to it; the
    /// stream ends after it.
    fn subscribe(
        &self,
        room: &str,
        after: Option<MessageId>,
    ) -> BoxStream<'static, Result<Envelope, Error>>;

    /// The messages of `room` after `after` up to and including `through`,
    /// in order, and whether that is all of them (`after` is still in the
    /// kept history, or is the start of the log).
    fn history(
        &self,
        room: &str,
        after: MessageId,
        through: MessageId,
    ) -> BoxFuture<'static, Result<History, Error>>;

    /// States that `room` has `members` members on `instance` (an id that
    /// is unique to one [`Rooms`](super::Rooms) of one process), for `ttl`:
    /// unless stated again within that time they stop counting. Zero
    /// members withdraws the statement at once.
    fn set_presence(
        &self,
        room: &str,
        instance: &str,
        members: usize,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), Error>>;

    /// How many members `room` has on every instance, as they last stated
    /// it, leaving out statements that ran out.
    fn presence(&self, room: &str) -> BoxFuture<'static, Result<usize, Error>>;

    /// The next number of the counter `counter`: 0, then 1, 2, …, each
    /// given once, whichever instance asks.
    fn next_number(&self, counter: &str) -> BoxFuture<'static, Result<u64, Error>>;
}

/// A message's place in its room's log: opaque text that the backplane
/// gave it, for a client to send back when it resumes.
///
/// ```
/// let id: tandem::rooms::MessageId = "17".parse().unwrap();
/// assert_eq!(id.to_string(), "17");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(Arc<str>);

impl MessageId {
    /// The id as text.
    ///
    /// ```
    /// let id: tandem::rooms::MessageId = "1-0".parse().unwrap();
    /// assert_eq!(id.as_str(), "1-0");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for MessageId {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.into()))
    }
}

impl From<String> for MessageId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

/// A message of a room's log, with its id.
///
/// ```
/// use tandem::rooms::Envelope;
/// let envelope = Envelope { id: "3".parse().unwrap(), frame: tandem::Frame::text("hi") };
/// assert_eq!(envelope.id.as_str(), "3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Its place in the room's log.
    pub id: MessageId,
    /// The message, as it was published.
    pub frame: Frame,
}

/// Part of a room's log, from [`Backplane::history`].
///
/// ```
/// let history = tandem::rooms::History { messages: Vec::new(), complete: true };
/// assert!(history.messages.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The messages, in order.
    pub messages: Vec<Envelope>,
    /// Whether they are all the messages asked for: `false` when the
    /// history no longer reaches back that far.
    pub complete: bool,
}
