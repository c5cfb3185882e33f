//! [`LocalBackplane`]: the rooms' logs in this process.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::backplane::{Backplane, Envelope, History, MessageId};
use crate::error::Error;
use crate::frame::Frame;

/// How many messages a room's log keeps by default.
const DEFAULT_HISTORY: usize = 1024;

/// The backplane of one process: each room's log in memory, the last
/// `history` messages of it kept for members that come back.
///
/// Ids are `EPOCH:1`, `EPOCH:2`, … per room, where `EPOCH` is drawn at
/// random for each backplane: an id from before a restart (which a client
/// that reconnects may bring) is known as one from another log, whose
/// messages are gone, instead of being taken for a place in this one. A
/// reader that has not taken a message
/// yet holds it in the log: a publisher that would push it out waits until
/// every reader has it, so a reader never misses a message (the slowest
/// reader sets the pace, as the hub's [`SlowMemberPolicy`] does for
/// members; [`Rooms`](super::Rooms) reads each room with one task).
///
/// Memory: at most `history` messages per room that was ever published
/// to, for as long as the backplane lives; an application that lets
/// clients name rooms should bound how many there are.
///
/// [`SlowMemberPolicy`]: crate::hub::SlowMemberPolicy
///
/// ```
/// let backplane = tandem::rooms::LocalBackplane::with_history(100);
/// # let _ = backplane;
/// ```
#[derive(Debug, Clone)]
pub struct LocalBackplane {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// This log's mark on its ids.
    epoch: u32,
    history: usize,
    rooms: Mutex<HashMap<String, Arc<RoomLog>>>,
    /// Per room, each instance's statement.
    presence: Mutex<HashMap<String, HashMap<String, Statement>>>,
    counters: Mutex<HashMap<String, u64>>,
}

/// An instance's member count in a room, and when it runs out.
#[derive(Debug)]
struct Statement {
    members: usize,
    until: Instant,
}

#[derive(Debug, Default)]
struct RoomLog {
    state: Mutex<LogState>,
    /// Readers wait on it for the next message.
    arrived: Notify,
    /// Publishers wait on it for a reader to move on.
    moved_on: Notify,
}

#[derive(Debug, Default)]
struct LogState {
    /// The number of `entries[0]` (1 for the first message of the room).
    first: u64,
    entries: VecDeque<Frame>,
    /// Each live reader's next number.
    readers: Vec<Weak<AtomicU64>>,
}

impl LogState {
    /// The number the next message gets.
    fn next(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The smallest number a live reader has yet to read.
    fn slowest_reader(&mut self) -> Option<u64> {
        self.readers.retain(|reader| reader.strong_count() > 0);
        self.readers
            .iter()
            .filter_map(Weak::upgrade)
            .map(|reader| reader.load(Ordering::Acquire))
            .min()
    }

    fn get(&self, number: u64) -> Option<&Frame> {
        let index = number.checked_sub(self.first)?;
        self.entries.get(usize::try_from(index).ok()?)
    }
}

impl Default for LocalBackplane {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBackplane {
    /// A backplane that keeps the last 1,024 messages of each room.
    ///
    /// ```
    /// let backplane = tandem::rooms::LocalBackplane::new();
    /// # let _ = backplane;
    /// ```
    pub fn new() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }

    /// A backplane that keeps the last `history` messages of each room (at
    /// least one).
    ///
    /// ```
    /// let backplane = tandem::rooms::LocalBackplane::with_history(10_000);
    /// # let _ = backplane;
    /// ```
    pub fn with_history(history: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                epoch: rand::random(),
                history: history.max(1),
                rooms: Mutex::new(HashMap::new()),
                presence: Mutex::new(HashMap::new()),
                counters: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn room(&self, room: &str) -> Arc<RoomLog> {
        let mut rooms = lock(&self.inner.rooms);
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| {
                Arc::new(RoomLog {
                    state: Mutex::new(LogState {
                        first: 1,
                        ..LogState::default()
                    }),
                    ..RoomLog::default()
                })
            })
            .clone()
    }
}

impl RoomLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        lock(&self.state)
    }
}

/// The number of a message id of the log marked `epoch`; `None` for any
/// other text.
fn number(epoch: u32, id: &MessageId) -> Option<u64> {
    let (mark, number) = id.as_str().split_once(':')?;
    if u32::from_str_radix(mark, 16).ok()? != epoch {
        return None;
    }
    number.parse().ok()
}

fn id(epoch: u32, number: u64) -> MessageId {
    MessageId::from(format!("{epoch:08x}:{number}"))
}

impl Backplane for LocalBackplane {
    fn publish(&self, room: &str, frame: Frame) -> BoxFuture<'static, Result<MessageId, Error>> {
        let log = self.room(room);
        let (epoch, history) = (self.inner.epoch, self.inner.history);
        async move {
            loop {
                let moved_on = pin!(log.moved_on.notified());
                let mut waiting = moved_on;
                waiting.as_mut().enable();
                {
                    let mut state = log.lock();
                    let full = state.entries.len() >= history;
                    // The oldest message may go once every reader has it.
                    if !full || state.slowest_reader().is_none_or(|next| next > state.first) {
                        if full {
                            state.entries.pop_front();
                            state.first += 1;
                        }
                        state.entries.push_back(frame);
                        let number = state.next() - 1;
                        drop(state);
                        log.arrived.notify_waiters();
                        return Ok(id(epoch, number));
                    }
                }
                waiting.await;
            }
        }
        .boxed()
    }

    fn head(&self, room: &str) -> BoxFuture<'static, Result<Option<MessageId>, Error>> {
        let log = self.room(room);
        let epoch = self.inner.epoch;
        async move {
            let next = log.lock().next();
            Ok((next > 1).then(|| id(epoch, next - 1)))
        }
        .boxed()
    }

    fn subscribe(
        &self,
        room: &str,
        after: Option<MessageId>,
    ) -> BoxStream<'static, Result<Envelope, Error>> {
        let log = self.room(room);
        let epoch = self.inner.epoch;
        let cursor = {
            let mut state = log.lock();
            let start = match after.as_ref() {
                // An id this backplane did not give (another process's
                // log): from the start of what is kept.
                Some(after) => number(epoch, after).map_or(state.first, |n| n + 1),
                None => state.first,
            };
            let cursor = Arc::new(AtomicU64::new(start));
            state.readers.push(Arc::downgrade(&cursor));
            cursor
        };
        futures::stream::unfold(Some((log, cursor)), move |reader| async move {
            let (log, cursor) = reader?;
            loop {
                // Armed before looking, so that a message that comes in
                // between wakes it.
                let watched = log.clone();
                let arrived = pin!(watched.arrived.notified());
                let mut waiting = arrived;
                waiting.as_mut().enable();
                let next = cursor.load(Ordering::Acquire);
                let found = {
                    let state = log.lock();
                    if next < state.first {
                        Err(state.first)
                    } else {
                        Ok(state.get(next).cloned())
                    }
                };
                match found {
                    Ok(Some(frame)) => {
                        cursor.store(next + 1, Ordering::Release);
                        log.moved_on.notify_waiters();
                        let envelope = Envelope {
                            id: id(epoch, next),
                            frame,
                        };
                        return Some((Ok(envelope), Some((log, cursor))));
                    }
                    Ok(None) => waiting.await,
                    Err(first) => {
                        let lost = Error::Backplane(format!(
                            "messages {next} to {} are no longer kept",
                            first - 1
                        ));
                        return Some((Err(lost), None));
                    }
                }
            }
        })
        .boxed()
    }

    fn history(
        &self,
        room: &str,
        after: MessageId,
        through: MessageId,
    ) -> BoxFuture<'static, Result<History, Error>> {
        let log = self.room(room);
        let epoch = self.inner.epoch;
        async move {
            let state = log.lock();
            let numbers = (number(epoch, &after), number(epoch, &through));
            let (Some(after), Some(through)) = numbers else {
                return Ok(History {
                    messages: Vec::new(),
                    complete: false,
                });
            };
            let from = (after + 1).max(state.first);
            let messages = (from..=through)
                .map_while(|n| {
                    state.get(n).map(|frame| Envelope {
                        id: id(epoch, n),
                        frame: frame.clone(),
                    })
                })
                .collect();
            Ok(History {
                messages,
                complete: after + 1 >= state.first,
            })
        }
        .boxed()
    }

    fn set_presence(
        &self,
        room: &str,
        instance: &str,
        members: usize,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let mut presence = lock(&self.inner.presence);
        if members == 0 {
            if let Some(instances) = presence.get_mut(room) {
                instances.remove(instance);
                if instances.is_empty() {
                    presence.remove(room);
                }
            }
        } else {
            let until = Instant::now() + ttl;
            presence
                .entry(room.to_owned())
                .or_default()
                .insert(instance.to_owned(), Statement { members, until });
        }
        futures::future::ready(Ok(())).boxed()
    }

    fn presence(&self, room: &str) -> BoxFuture<'static, Result<usize, Error>> {
        let mut presence = lock(&self.inner.presence);
        let now = Instant::now();
        let mut count = 0;
        if let Some(instances) = presence.get_mut(room) {
            instances.retain(|_, statement| statement.until > now);
            count = instances.values().map(|statement| statement.members).sum();
            if instances.is_empty() {
                presence.remove(room);
            }
        }
        futures::future::ready(Ok(count)).boxed()
    }

    fn next_number(&self, counter: &str) -> BoxFuture<'static, Result<u64, Error>> {
        let mut counters = lock(&self.inner.counters);
        let next = counters.entry(counter.to_owned()).or_default();
        let number = *next;
        *next += 1;
        futures::future::ready(Ok(number)).boxed()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl LocalBackplane {
        fn id(&self, number: u64) -> MessageId {
            id(self.inner.epoch, number)
        }
    }

    #[tokio::test]
    async fn an_id_from_another_log_is_not_taken_for_a_place_in_this_one() {
        let before_restart = LocalBackplane::new();
        let old = before_restart
            .publish("r", Frame::text("old"))
            .await
            .unwrap();
        let backplane = LocalBackplane::new();
        for i in 0..3 {
            backplane
                .publish("r", Frame::text(format!("new{i}")))
                .await
                .unwrap();
        }
        let history = backplane.history("r", old, backplane.id(3)).await.unwrap();
        assert!(!history.complete, "the old log's messages are gone");
        assert!(history.messages.is_empty());
    }

    async fn next(reader: &mut BoxStream<'static, Result<Envelope, Error>>) -> Envelope {
        reader.next().await.expect("a message").expect("not lost")
    }

    #[tokio::test]
    async fn readers_get_every_message_in_order_with_ids_from_one() {
        let backplane = LocalBackplane::new();
        assert_eq!(backplane.head("r").await.unwrap(), None);
        let mut reader = backplane.subscribe("r", None);
        for i in 0..3 {
            let id = backplane
                .publish("r", Frame::text(format!("m{i}")))
                .await
                .unwrap();
            assert_eq!(id, backplane.id(i + 1));
        }
        for i in 0..3 {
            assert_eq!(next(&mut reader).await.frame, Frame::text(format!("m{i}")));
        }
        assert_eq!(backplane.head("r").await.unwrap(), Some(backplane.id(3)));
        // Rooms are apart.
        assert_eq!(backplane.head("other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_reader_from_an_id_gets_what_came_after_it() {
        let backplane = LocalBackplane::new();
        for i in 0..5 {
            backplane
                .publish("r", Frame::text(format!("m{i}")))
                .await
                .unwrap();
        }
        let mut reader = backplane.subscribe("r", Some(backplane.id(3)));
        assert_eq!(next(&mut reader).await.id, backplane.id(4));
        assert_eq!(next(&mut reader).await.id, backplane.id(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_publisher_waits_for_the_slowest_reader_instead_of_dropping() {
        let backplane = LocalBackplane::with_history(2);
        let mut reader = backplane.subscribe("r", None);
        backplane.publish("r", Frame::text("a")).await.unwrap();
        backplane.publish("r", Frame::text("b")).await.unwrap();
        let third = backplane.publish("r", Frame::text("c"));
        let mut third = pin!(third);
        assert!(
            futures::poll!(third.as_mut()).is_pending(),
            "the reader has not read a: c must wait"
        );
        assert_eq!(next(&mut reader).await.frame, Frame::text("a"));
        assert_eq!(third.await.unwrap(), backplane.id(3));
        assert_eq!(next(&mut reader).await.frame, Frame::text("b"));
        assert_eq!(next(&mut reader).await.frame, Frame::text("c"));
    }

    #[tokio::test]
    async fn without_readers_the_history_keeps_the_last_messages() {
        let backplane = LocalBackplane::with_history(2);
        for i in 1..=4 {
            backplane
                .publish("r", Frame::text(format!("m{i}")))
                .await
                .unwrap();
        }
        let kept = backplane
            .history("r", backplane.id(2), backplane.id(4))
            .await
            .unwrap();
        assert!(kept.complete);
        assert_eq!(
            kept.messages
                .iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>(),
            [backplane.id(3), backplane.id(4)]
        );
        let gone = backplane
            .history("r", backplane.id(1), backplane.id(4))
            .await
            .unwrap();
        assert!(!gone.complete, "message 2 is no longer kept");
        assert_eq!(gone.messages.len(), 2);
        // A reader from before the history learns it lost messages.
        let mut late = backplane.subscribe("r", Some(backplane.id(0)));
        assert!(matches!(late.next().await, Some(Err(Error::Backplane(_)))));
        assert!(late.next().await.is_none());
    }
}
