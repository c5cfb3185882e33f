//! [`RedisBackplane`]: the rooms' logs in Redis, one stream per room,
//! shared by every instance of a server that uses the same Redis.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use ::redis::{AsyncConnectionConfig, Client, RedisError, RetryMethod, Script, Value};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tracing::{debug, info, warn};

mod presence;

use super::backplane::{Backplane, Envelope, History, MessageId};
use crate::error::Error;
use crate::frame::{Frame, FrameType};

/// How many messages a room's stream keeps by default.
const DEFAULT_HISTORY: usize = 1024;
/// How long a publish waits for Redis by default.
const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one `XREAD BLOCK` waits for a message before it is sent again
/// (so that a connection that died without a word is noticed).
const READ_BLOCK: Duration = Duration::from_secs(5);
/// How many entries one read takes at most.
const READ_BATCH: usize = 256;
/// The pauses between attempts to reach Redis: doubling from the first to
/// the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_LAST: Duration = Duration::from_secs(1);

/// The entry id before a stream's first entry.
const START: &str = "0-0";

/// Appends a message to a room's stream, once per receipt: returns the id
/// the entry got, now or in an earlier attempt with the same receipt.
///
/// KEYS: the room's stream, the receipt. ARGV: the kind (`t` text, `b`
/// binary), the payload, the history length, the maximum age in
/// milliseconds (0: none), the receipt's lifetime in milliseconds.
///
/// Each entry records the stream's previous id (`p`), so that a reader can
/// tell that it got every entry.
const PUBLISH_SCRIPT: &str = r"
local done = redis.call('GET', KEYS[2])
if done then return done end
local previous = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      previous = info[i + 1]
      break
    end
  end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*',
  'k', ARGV[1], 'd', ARGV[2], 'p', previous)
local age = tonumber(ARGV[4])
if age > 0 then
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  if cutoff > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', cutoff)
  end
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
return id
";

/// Sets up a [`RedisBackplane`]: from [`RedisBackplane::builder`].
///
/// ```no_run
/// # async fn f() -> Result<(), tandem::Error> {
/// use std::time::Duration;
/// let backplane = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/")
///     .history(500)
///     .max_age(Duration::from_secs(3600))
///     .key_prefix("chat:")
///     .publish_timeout(Duration::from_secs(2))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplaneBuilder {
    url: String,
    history: usize,
    max_age: Option<Duration>,
    key_prefix: String,
    publish_timeout: Duration,
}

impl fmt::Debug for RedisBackplaneBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("RedisBackplaneBuilder")
            .field("history", &self.history)
            .field("max_age", &self.max_age)
            .field("key_prefix", &self.key_prefix)
            .field("publish_timeout", &self.publish_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisBackplaneBuilder {
    /// Keeps about the last `history` messages of each room (at least one;
    /// 1,024 by default): how far back a member that comes back can
    /// recover, and what bounds Redis's memory.
    ///
    /// ```
    /// let builder = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/").history(10_000);
    /// # let _ = builder;
    /// ```
    pub fn history(mut self, history: usize) -> Self {
        self.history = history.max(1);
        self
    }

    /// Also drops the messages older than `max_age` (to the millisecond,
    /// by Redis's clock) from a room's stream, when a message is published
    /// to it. None by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/")
    ///     .max_age(Duration::from_secs(24 * 3600));
    /// # let _ = builder;
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The start of every Redis key of this backplane (`tandem:` by
    /// default): room `lobby` is the stream `tandem:room:{lobby}`. Instances
    /// share rooms when they share Redis and the prefix.
    ///
    /// ```
    /// let builder = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/").key_prefix("staging:");
    /// # let _ = builder;
    /// ```
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long [`publish`](Backplane::publish) keeps trying while Redis
    /// cannot be reached (5 s by default, at least 1 ms) before it fails
    /// with `Error::Backplane("redis unreachable: …")`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/")
    ///     .publish_timeout(Duration::from_millis(500));
    /// # let _ = builder;
    /// ```
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Connects to Redis and checks that it is one this backplane can use.
    ///
    /// Fails with [`Error::Backplane`] for a URL that is not a Redis URL, a
    /// Redis that cannot be reached, or one older than 7.0.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tandem::Error> {
    /// let backplane = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/").connect().await?;
    /// # let _ = backplane;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RedisBackplane, Error> {
        let client = Client::open(self.url.as_str())
            .map_err(|e| Error::Backplane(format!("not a redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(self.publish_timeout))
            .set_number_of_retries(1)
            .set_min_delay(BACKOFF_FIRST)
            .set_max_delay(BACKOFF_LAST);
        let mut manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| unreachable(&e))?;
        let server: String = ::redis::cmd("INFO")
            .arg("server")
            .query_async(&mut manager)
            .await
            .map_err(|e| unreachable(&e))?;
        check_version(&server)?;
        Ok(RedisBackplane {
            inner: Arc::new(Inner {
                client,
                manager,
                history: self.history,
                max_age: self.max_age,
                key_prefix: self.key_prefix,
                publish_timeout: self.publish_timeout,
                publish_script: Script::new(PUBLISH_SCRIPT),
                presence_scripts: presence::Scripts::new(),
                degraded: AtomicBool::new(false),
            }),
        })
    }
}

/// A [`Backplane`] in Redis: each room a Redis stream, shared by every
/// instance that uses the same Redis (and key prefix), so that a room's
/// members on all of them get its messages in one order.
///
/// # What it guarantees
///
/// - **One order per room, the same on every instance.** Each room is a
///   Redis stream (`XADD`); every instance reads it (`XREAD`) in the
///   stream's order, and a message's [`MessageId`] is its stream entry id
///   (`1718000000000-0`).
/// - **Every accepted message reaches every reader.** [`publish`] resolves
///   with an id only once Redis has stored the message. Each entry also
///   records the id of the entry before it, so a reader checks that it gets
///   an unbroken chain: if the history was trimmed past it (or the stream
///   was lost), it yields [`Error::Backplane`] and ends, as the
///   [`Backplane`] contract says; it never skips a message silently.
/// - **Outages lose nothing.** While Redis is unreachable, [`publish`]
///   retries for up to the [publish timeout](RedisBackplaneBuilder::publish_timeout)
///   and then fails with `Error::Backplane("redis unreachable: …")`: the
///   sender sees backpressure, then an error, never a silent loss (the
///   message is then not known to be stored: usually it was not, but one
///   whose reply was cut off by the outage may still show up). A publish
///   that is retried after a lost reply is stored once: each publish
///   carries a receipt key that Redis keeps for twice the publish timeout. Readers reconnect with backoff and go on after the last
///   entry they yielded: no gap, no duplicate.
/// - **Presence across instances.** Each instance's member count of a
///   room is a field of the hash `tandem:presence:{room}`, with its end
///   (by Redis's clock) in the sorted set `tandem:presence-ends:{room}`;
///   counts that ran out are dropped whenever a count is read or written,
///   and the keys expire with the last count.
/// - **Bounded memory.** Each stream keeps about the last
///   [`history`](RedisBackplaneBuilder::history) messages (`MAXLEN ~`:
///   Redis trims whole nodes of its radix tree, so a stream holds at least
///   that many and up to `stream-node-max-entries`, 100 by default, more)
///   and, optionally, only those younger than
///   [`max_age`](RedisBackplaneBuilder::max_age).
///
/// # What it needs of Redis
///
/// - Redis 7.0 or later (`XINFO STREAM`'s `last-generated-id`, `XADD`
///   with `MAXLEN ~`, scripts with `TIME`), a single instance or a
///   primary. The keys of a room carry the room's name as a hash tag
///   (`tandem:room:{lobby}`, `tandem:presence:{lobby}`, …), so that they
///   share one Redis Cluster slot, as scripts that touch several of them
///   need; the backplane itself connects to one node, so spreading rooms
///   over several Redis is the application's choice of backplane per room.
/// - **Persistence, for the outage guarantee.** A Redis that restarts
///   without its data has lost the streams: readers notice the broken chain
///   and report lost messages (members are closed with 1012 and come back),
///   but the messages are gone. Run it with the append-only file on
///   (`appendonly yes`; `appendfsync always` loses nothing that was
///   acknowledged, `everysec`, Redis's default, up to a second of it).
/// - Nothing else writes to the `tandem:` keys (the
///   [prefix](RedisBackplaneBuilder::key_prefix) is configurable): an
///   `XDEL` would break the chain that readers check.
///
/// # Connections
///
/// Publishing, [`head`] and [`history`] share one reconnecting, multiplexed
/// connection. Each subscription (one per room that has members on this
/// instance) holds a connection of its own, since `XREAD BLOCK` holds the
/// connection it runs on until a message comes.
///
/// [`publish`]: Backplane::publish
/// [`head`]: Backplane::head
/// [`history`]: Backplane::history
///
/// Cheap to clone: clones share the connection.
///
/// ```no_run
/// # async fn f() -> Result<(), tandem::Error> {
/// use tandem::rooms::{RedisBackplane, Rooms};
/// let rooms = Rooms::with_backplane(
///     RedisBackplane::builder("redis://127.0.0.1/").connect().await?,
/// );
/// # let _ = rooms;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Reconnects by itself; for publishing and the short reads, and for
    /// whatever else this instance keeps in Redis.
    manager: ConnectionManager,
    history: usize,
    max_age: Option<Duration>,
    key_prefix: String,
    publish_timeout: Duration,
    publish_script: Script,
    presence_scripts: presence::Scripts,
    /// Whether the last publish found Redis unreachable: logs the loss
    /// once, and the return once.
    degraded: AtomicBool,
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("redis", &self.inner.client.get_connection_info().addr())
            .field("history", &self.inner.history)
            .field("max_age", &self.inner.max_age)
            .field("key_prefix", &self.inner.key_prefix)
            .field("publish_timeout", &self.inner.publish_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisBackplane {
    /// Starts setting up a backplane on the Redis at `url`
    /// (`redis://[user:password@]host[:port][/db]`).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tandem::Error> {
    /// let backplane = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1:6379/0")
    ///     .connect()
    ///     .await?;
    /// # let _ = backplane;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisBackplaneBuilder {
        RedisBackplaneBuilder {
            url: url.into(),
            history: DEFAULT_HISTORY,
            max_age: None,
            key_prefix: "tandem:".into(),
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
        }
    }

    /// The Redis key of `room`'s stream.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tandem::Error> {
    /// let backplane = tandem::rooms::RedisBackplane::builder("redis://127.0.0.1/").connect().await?;
    /// assert_eq!(backplane.stream_key("lobby"), "tandem:room:{lobby}");
    /// # Ok(()) }
    /// ```
    pub fn stream_key(&self, room: &str) -> String {
        self.room_key("room", room)
    }

    /// The key of one of `room`'s things in Redis: the room's name in
    /// braces, Redis Cluster's hash tag, so that all of them (the scripts
    /// touch several at once) live in one hash slot.
    fn room_key(&self, what: &str, room: &str) -> String {
        format!("{}{what}:{{{room}}}", self.inner.key_prefix)
    }

    fn presence_keys(&self, room: &str) -> presence::Keys {
        presence::Keys {
            counts: self.room_key("presence", room),
            ends: self.room_key("presence-ends", room),
        }
    }

    fn receipt_key(&self, room: &str) -> String {
        format!(
            "{}:{:032x}",
            self.room_key("receipt", room),
            rand::random::<u128>()
        )
    }
}

impl Inner {
    fn lost_redis(&self, error: &RedisError) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            warn!(%error, "redis unreachable: publishes wait for it");
        }
    }

    fn found_redis(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            info!("redis reachable again");
        }
    }
}

impl Backplane for RedisBackplane {
    fn publish(&self, room: &str, frame: Frame) -> BoxFuture<'static, Result<MessageId, Error>> {
        let inner = self.inner.clone();
        let stream = self.stream_key(room);
        let receipt = self.receipt_key(room);
        async move {
            let kind = match frame.frame_type() {
                FrameType::Text => "t",
                FrameType::Binary => "b",
                other => {
                    return Err(Error::InvalidFrame(format!(
                        "a room's log takes text and binary messages, not {other:?}"
                    )))
                }
            };
            let max_age = inner.max_age.map_or(0, |age| age.as_millis().max(1));
            let receipt_lifetime = inner.publish_timeout.as_millis() * 2;
            let deadline = tokio::time::Instant::now() + inner.publish_timeout;
            let mut pause = BACKOFF_FIRST;
            let mut manager = inner.manager.clone();
            let mut last_error = None;
            loop {
                let mut invocation = inner.publish_script.key(&stream);
                invocation
                    .key(&receipt)
                    .arg(kind)
                    .arg(frame.payload().as_ref())
                    .arg(inner.history)
                    .arg(max_age.to_string())
                    .arg(receipt_lifetime.to_string());
                let attempt = invocation.invoke_async::<String>(&mut manager);
                match tokio::time::timeout_at(deadline, attempt).await {
                    Ok(Ok(id)) => {
                        inner.found_redis();
                        return Ok(MessageId::from(id));
                    }
                    Ok(Err(error)) if worth_retrying(&error) => {
                        inner.lost_redis(&error);
                        last_error = Some(error);
                    }
                    Ok(Err(error)) => {
                        return Err(Error::Backplane(format!(
                            "redis refused the message: {error}"
                        )))
                    }
                    Err(_) => break,
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    break;
                }
                tokio::time::sleep_until((now + pause).min(deadline)).await;
                pause = (pause * 2).min(BACKOFF_LAST);
            }
            let cause = last_error.map_or_else(|| "no answer".to_owned(), |e| e.to_string());
            Err(Error::Backplane(format!(
                "redis unreachable for {:?} ({cause}); the message is not known to be stored",
                inner.publish_timeout
            )))
        }
        .boxed()
    }

    fn head(&self, room: &str) -> BoxFuture<'static, Result<Option<MessageId>, Error>> {
        let mut manager = self.inner.manager.clone();
        let stream = self.stream_key(room);
        async move {
            let last: StreamRangeReply = ::redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut manager)
                .await
                .map_err(|e| unreachable(&e))?;
            Ok(last
                .ids
                .into_iter()
                .next()
                .map(|entry| MessageId::from(entry.id)))
        }
        .boxed()
    }

    fn subscribe(
        &self,
        room: &str,
        after: Option<MessageId>,
    ) -> BoxStream<'static, Result<Envelope, Error>> {
        let reader = Reader {
            client: self.inner.client.clone(),
            stream: self.stream_key(room),
            check_chain: after.is_some(),
            last: after.map_or_else(|| START.to_owned(), |id| id.as_str().to_owned()),
            connection: None,
            read: VecDeque::new(),
            pause: BACKOFF_FIRST,
            lost: false,
        };
        futures::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            match reader.next().await {
                Ok(envelope) => Some((Ok(envelope), Some(reader))),
                Err(error) => Some((Err(error), None)),
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
        let mut manager = self.inner.manager.clone();
        let stream = self.stream_key(room);
        async move {
            let (Some(from), Some(to)) = (parse_id(after.as_str()), parse_id(through.as_str()))
            else {
                return Ok(History {
                    messages: Vec::new(),
                    complete: false,
                });
            };
            if from >= to {
                return Ok(History {
                    messages: Vec::new(),
                    complete: true,
                });
            }
            // From `after` itself: finding it says that nothing after it
            // was trimmed.
            let range: StreamRangeReply = ::redis::cmd("XRANGE")
                .arg(&stream)
                .arg(after.as_str())
                .arg(through.as_str())
                .query_async(&mut manager)
                .await
                .map_err(|e| unreachable(&e))?;
            let mut entries = range.ids.into_iter().peekable();
            let complete = match entries.peek() {
                Some(first) if parse_id(&first.id) == Some(from) => {
                    entries.next();
                    true
                }
                Some(first) => previous_id(first).as_deref().and_then(parse_id) == Some(from),
                // Everything after `after`, up to `through`, is gone.
                None => false,
            };
            let messages = entries.map(envelope).collect::<Result<_, _>>()?;
            Ok(History { messages, complete })
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
        let inner = self.inner.clone();
        let keys = self.presence_keys(room);
        let instance = instance.to_owned();
        async move {
            let manager = inner.manager.clone();
            presence::set(
                &inner.presence_scripts,
                manager,
                keys,
                &instance,
                members,
                ttl,
            )
            .await
        }
        .boxed()
    }

    fn presence(&self, room: &str) -> BoxFuture<'static, Result<usize, Error>> {
        let inner = self.inner.clone();
        let keys = self.presence_keys(room);
        async move { presence::count(&inner.presence_scripts, inner.manager.clone(), keys).await }
            .boxed()
    }

    fn next_number(&self, counter: &str) -> BoxFuture<'static, Result<u64, Error>> {
        let key = format!("{}counter:{counter}", self.inner.key_prefix);
        presence::next_number(self.inner.manager.clone(), key).boxed()
    }
}

/// One subscription: reads a room's stream on a connection of its own,
/// from the entry after `last`.
struct Reader {
    client: Client,
    stream: String,
    /// The id of the last entry yielded (or the one the reader started
    /// after).
    last: String,
    /// Whether the next entry must name `last` as its previous one: not
    /// for a reader from the start of the kept history.
    check_chain: bool,
    connection: Option<MultiplexedConnection>,
    /// Entries read and not yet yielded.
    read: VecDeque<StreamId>,
    pause: Duration,
    /// Whether Redis was lost since the last read.
    lost: bool,
}

impl Reader {
    async fn next(&mut self) -> Result<Envelope, Error> {
        loop {
            if let Some(entry) = self.read.pop_front() {
                if self.check_chain {
                    let previous = previous_id(&entry);
                    if previous.as_deref().and_then(parse_id) != parse_id(&self.last) {
                        return Err(Error::Backplane(format!(
                            "messages after {} are no longer kept in {} (the next kept one, {}, \
                             follows {})",
                            self.last,
                            self.stream,
                            entry.id,
                            previous.as_deref().unwrap_or("nothing")
                        )));
                    }
                }
                self.check_chain = true;
                self.last = entry.id.clone();
                return envelope(entry);
            }
            let connection = match self.connection.as_mut() {
                Some(connection) => connection,
                None => {
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(READ_BLOCK + CONNECT_TIMEOUT * 5));
                    match self
                        .client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                    {
                        Ok(connection) => {
                            if self.lost {
                                info!(stream = %self.stream, after = %self.last,
                                    "reconnected to redis; reading on");
                            }
                            self.connection.insert(connection)
                        }
                        Err(error) => {
                            self.lose(&error).await;
                            continue;
                        }
                    }
                }
            };
            let options = StreamReadOptions::default()
                .block(READ_BLOCK.as_millis() as usize)
                .count(READ_BATCH);
            let read: Result<Option<StreamReadReply>, RedisError> = ::redis::cmd("XREAD")
                .arg(&options)
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(&self.last)
                .query_async(connection)
                .await;
            match read {
                Ok(reply) => {
                    self.lost = false;
                    self.pause = BACKOFF_FIRST;
                    for key in reply.into_iter().flat_map(|reply| reply.keys) {
                        self.read.extend(key.ids);
                    }
                }
                Err(error) if worth_retrying(&error) => {
                    self.connection = None;
                    self.lose(&error).await;
                }
                Err(error) => {
                    return Err(Error::Backplane(format!(
                        "reading {} after {}: {error}",
                        self.stream, self.last
                    )))
                }
            }
        }
    }

    /// Redis went away: logs it (once per outage) and waits before the next
    /// attempt.
    async fn lose(&mut self, error: &RedisError) {
        if !self.lost {
            warn!(stream = %self.stream, after = %self.last, %error,
                "lost redis; reconnecting");
            self.lost = true;
        } else {
            debug!(stream = %self.stream, %error, "redis still unreachable");
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(BACKOFF_LAST);
    }
}

/// Whether `error` may go away by itself: Redis unreachable, restarting,
/// loading its data.
fn worth_retrying(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_timeout()
        || matches!(
            error.retry_method(),
            RetryMethod::Reconnect
                | RetryMethod::ReconnectFromInitialConnections
                | RetryMethod::WaitAndRetry
                | RetryMethod::RetryImmediately
        )
}

fn unreachable(error: &RedisError) -> Error {
    Error::Backplane(format!("redis unreachable: {error}"))
}

/// A stream entry id's two numbers, `None` for text that is not one.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The id of the entry before `entry` in its stream, as it recorded it.
fn previous_id(entry: &StreamId) -> Option<String> {
    entry.get("p")
}

/// An entry of a room's stream as a message.
fn envelope(entry: StreamId) -> Result<Envelope, Error> {
    let malformed = |what: &str| {
        Error::Backplane(format!(
            "entry {} of a room's stream is not tandem's: {what}",
            entry.id
        ))
    };
    let payload = match entry.map.get("d") {
        Some(Value::BulkString(bytes)) => Bytes::copy_from_slice(bytes),
        _ => return Err(malformed("no payload")),
    };
    let frame = match entry.get::<String>("k").as_deref() {
        Some("t") => {
            if std::str::from_utf8(&payload).is_err() {
                return Err(malformed("text that is not UTF-8"));
            }
            Frame::new(FrameType::Text, payload)
        }
        Some("b") => Frame::new(FrameType::Binary, payload),
        _ => return Err(malformed("no kind")),
    };
    Ok(Envelope {
        id: MessageId::from(entry.id),
        frame,
    })
}

/// Fails for a Redis older than 7.0, from the text of `INFO server`.
fn check_version(info: &str) -> Result<(), Error> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("unknown");
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if major >= 7 => Ok(()),
        _ => Err(Error::Backplane(format!(
            "the rooms' backplane needs Redis 7.0 or later; this one is {version}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[(&str, &[u8])]) -> StreamId {
        StreamId {
            id: id.into(),
            map: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::BulkString(v.to_vec())))
                .collect(),
            ..StreamId::default()
        }
    }

    #[test]
    fn entries_become_the_frames_that_were_published() {
        let text = envelope(entry("5-1", &[("k", b"t"), ("d", b"hi"), ("p", b"5-0")])).unwrap();
        assert_eq!(text.id.as_str(), "5-1");
        assert_eq!(text.frame, Frame::text("hi"));
        let binary = envelope(entry("6-0", &[("k", b"b"), ("d", &[0, 255])])).unwrap();
        assert_eq!(binary.frame, Frame::binary(vec![0u8, 255]));
        for bad in [
            entry("1-0", &[("k", b"t"), ("d", &[0xff])]),
            entry("1-0", &[("k", b"x"), ("d", b"")]),
            entry("1-0", &[("k", b"t")]),
        ] {
            assert!(matches!(envelope(bad), Err(Error::Backplane(_))));
        }
    }

    #[test]
    fn entries_name_the_one_before_them() {
        let e = entry("7-0", &[("k", b"t"), ("d", b""), ("p", b"6-3")]);
        assert_eq!(previous_id(&e).as_deref(), Some("6-3"));
        assert_eq!(previous_id(&entry("7-0", &[])), None);
    }

    #[test]
    fn ids_parse_with_or_without_a_sequence() {
        assert_eq!(parse_id("1718000000000-3"), Some((1_718_000_000_000, 3)));
        assert_eq!(parse_id("12"), Some((12, 0)));
        assert_eq!(parse_id("x-1"), None);
        assert_eq!(parse_id("1-y"), None);
        assert!(parse_id("2-0") > parse_id("1-9"));
    }

    #[test]
    fn redis_before_7_is_refused_with_its_version() {
        assert!(check_version("# Server\r\nredis_version:7.0.15\r\n").is_ok());
        assert!(check_version("redis_version:8.2.1\r\n").is_ok());
        let old = check_version("redis_version:6.2.14\r\n").unwrap_err();
        assert!(old.to_string().contains("6.2.14"), "{old}");
        assert!(check_version("").is_err());
    }
}
