//! Clients that reconnect: a stream of sessions, with exponential backoff
//! and jitter between attempts, the same on both targets.
//!
//! [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect) gives a
//! [`Reconnecting`]: each [`next`](Reconnecting::next) waits for the session
//! it gave before to end, decides from how it ended whether to go on, waits
//! out the backoff, and connects again. The loop, as Python's
//! `async for websocket in connect(...)`:
//!
//! ```no_run
//! # async fn run() {
//! use tandem::reconnect::Reconnect;
//! use tandem::ClientBuilder;
//!
//! let mut sessions = ClientBuilder::new("ws://127.0.0.1:8080/feed").reconnect(Reconnect::default());
//! while let Some(mut session) = sessions.next().await {
//!     while let Some(frame) = session.receive().await {
//!         println!("{:?}", frame.read_text());
//!     }
//! }
//! println!("gave up: {}", sessions.ended().expect("the stream ended"));
//! # }
//! ```
//!
//! # The policy
//!
//! [`Reconnect`] holds the numbers; its defaults, and where they come from:
//!
//! | | default | Python `websockets` | Centrifugo SDKs | socket.io-client |
//! |---|---|---|---|---|
//! | first delay | 1 s | 0–5 s, then 3.1 s | 0.5 s | 1 s |
//! | multiplier | 2 | 1.618 | 2 | 2 |
//! | max delay | 30 s | 90 s | 20 s | 5 s |
//! | jitter | 0.5: each delay drawn from [½ d, d] | first delay only | full: [min, d] | ±50 % |
//! | max attempts | none | none | none | none |
//! | reset | after a session of 30 s | after any connection | after any connection | after any connection |
//!
//! The delay before the *n*-th retry in a row is `initial_delay ×
//! multiplier^(n−1)`, at most `max_delay`, then cut by a random fraction
//! of at most `jitter` (so `max_delay` is a true maximum and, with the
//! default jitter, a thousand clients that lost their server at the same
//! moment come back spread over half the delay instead of all at once).
//! Every connection attempt that fails, and every session that ends
//! before it lived `reset_after`, counts as a retry: a server that accepts
//! and closes at once with 1013 is backed off like one that refuses. A
//! session that lived `reset_after` starts the count again, so one flap
//! an hour is retried after the first delay, not the largest.
//!
//! # What is final, what is retried
//!
//! Each end, a connection attempt's error or a session's close reason
//! (as [`Error::ConnectionClosed`]), goes through [`Retry::default_for`]
//! unless [`Reconnect::should_retry`] says otherwise:
//!
//! | how it ended | | why |
//! |---|---|---|
//! | [`Error::Io`]: refused, reset, unreachable, timed out, hung up | retried | the network; it comes back |
//! | [`Error::Io`] of kind `InvalidData` (a certificate that does not verify) | final | a configuration to fix, not a blip |
//! | HTTP 408, 429, 500, 502, 503, 504 and other 5xx | retried, after `Retry-After` if longer | the server is busy or restarting |
//! | HTTP 501, 505 | final | the server can never do this |
//! | other HTTP 4xx (401, 403, 404…), 3xx, 2xx | final | a refusal: the same request gets the same answer |
//! | 1001 going away, 1006 abnormal (also [`Session::terminate`](crate::Session::terminate)), 1011 server error, 1012 restart, 1013 try again later, 1014 bad gateway | retried | the server or the way to it is going and coming |
//! | 1000 normal, 1005 no code | final | the server (or this client) said it is done, as socket.io's `io server disconnect` |
//! | 1002, 1003, 1007, 1008, 1009, 1010, 1015 | final | a protocol error, refused data, a policy: a retry would repeat it |
//! | 3000–4999 (the application's) | final | tandem cannot know what they mean; say it with `should_retry` |
//! | the URL, the options, a subprotocol or header that cannot be sent ([`Error::InvalidUrl`], [`Error::InvalidOptions`], [`Error::Handshake`], [`Error::Unsupported`]…) | final | the caller's own mistake |
//!
//! In the browser, a connection that fails before it opens is always
//! [`Error::Io`] of kind `ConnectionRefused`, whatever the reason (the
//! browser reports none): an HTTP refusal is retried there, bounded by
//! [`Reconnect::max_attempts`] if set.
//!
//! # Changing the request on each attempt
//!
//! [`Reconnecting::new`] takes the connect function itself: it runs before
//! each attempt and may change anything (the URL, a header, a fresh
//! token), which is how a client resumes where it left off
//! (`?last_id=`). It is told why the previous try ended.
//!
//! ```no_run
//! # async fn run() {
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use tandem::reconnect::{Reconnect, Reconnecting};
//! use tandem::ClientBuilder;
//!
//! let last_id = Arc::new(AtomicU64::new(0));
//! let seen = last_id.clone();
//! let mut sessions = Reconnecting::new(Reconnect::default(), move |_previous| {
//!     let url = format!("ws://127.0.0.1:8080/feed?last_id={}", seen.load(Ordering::Relaxed));
//!     ClientBuilder::new(url).connect()
//! });
//! while let Some(mut session) = sessions.next().await {
//!     while let Some(frame) = session.receive().await {
//!         if let Some(id) = frame.read_text().and_then(|t| t.parse().ok()) {
//!             last_id.store(id, Ordering::Relaxed);
//!         }
//!     }
//! }
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::backend::{self, Instant, MaybeSend};
use crate::close::CloseCode;
use crate::error::Error;
use crate::session::{ClosedFuture, Session};

/// How a [`Reconnecting`] client waits between attempts and when it stops;
/// see [the module](self) for the defaults and the classification.
///
/// ```
/// use std::time::Duration;
/// use tandem::reconnect::Reconnect;
///
/// let policy = Reconnect::default()
///     .initial_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(10))
///     .max_attempts(Some(20));
/// assert_eq!(policy.backoff(1), Duration::from_millis(500));
/// assert_eq!(policy.backoff(2), Duration::from_secs(1));
/// assert_eq!(policy.backoff(9), Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct Reconnect {
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: f64,
    max_attempts: Option<u32>,
    reset_after: Duration,
    should_retry: Option<Arc<ShouldRetry>>,
}

/// A [`Reconnect::should_retry`] hook.
type ShouldRetry = dyn Fn(&Error) -> Retry + Send + Sync;

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
            reset_after: Duration::from_secs(30),
            should_retry: None,
        }
    }
}

impl Reconnect {
    /// The defaults: 1 s first delay, doubling up to 30 s, jitter 0.5, no
    /// limit on attempts, reset after a session of 30 s,
    /// [`Retry::default_for`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = tandem::reconnect::Reconnect::new();
    /// assert_eq!(policy.backoff(1), Duration::from_secs(1));
    /// assert_eq!(policy.backoff(6), Duration::from_secs(30));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the first retry, before jitter (default 1 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = tandem::reconnect::Reconnect::new().initial_delay(Duration::from_millis(250));
    /// assert_eq!(policy.backoff(1), Duration::from_millis(250));
    /// ```
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest delay between attempts, jitter included (default 30 s).
    /// A server's `Retry-After` may ask for longer, and is honoured.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = tandem::reconnect::Reconnect::new().max_delay(Duration::from_secs(5));
    /// assert_eq!(policy.backoff(10), Duration::from_secs(5));
    /// ```
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How much each retry in a row waits longer than the one before
    /// (default 2). Values under 1, and NaN, count as 1: a constant delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = tandem::reconnect::Reconnect::new().multiplier(3.0);
    /// assert_eq!(policy.backoff(3), Duration::from_secs(9));
    /// ```
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier.max(1.0);
        self
    }

    /// The most of each delay that is random (default 0.5): a delay `d`
    /// becomes one drawn uniformly from `[d × (1 − jitter), d]`. 0 waits
    /// exactly `d`; 1 is "full jitter" (anywhere in `[0, d]`), as the
    /// Centrifugo SDKs do. Clamped to `[0, 1]`; NaN counts as 0.
    ///
    /// ```
    /// let exact = tandem::reconnect::Reconnect::new().jitter(0.0);
    /// ```
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The most retries in a row before giving up (default `None`: no
    /// limit). A session that lived [`reset_after`](Reconnect::reset_after)
    /// starts the count again. `Some(0)` never retries: the stream gives
    /// one session at most.
    ///
    /// ```
    /// let policy = tandem::reconnect::Reconnect::new().max_attempts(Some(10));
    /// ```
    pub fn max_attempts(mut self, max: Option<u32>) -> Self {
        self.max_attempts = max;
        self
    }

    /// How long a session must have lived for the backoff to start again
    /// from [`initial_delay`](Reconnect::initial_delay) after it ends
    /// (default 30 s, the default maximum delay).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = tandem::reconnect::Reconnect::new().reset_after(Duration::from_secs(60));
    /// ```
    pub fn reset_after(mut self, lived: Duration) -> Self {
        self.reset_after = lived;
        self
    }

    /// Decides, instead of [`Retry::default_for`], whether an end is
    /// retried: a connection attempt's error, or a session's close reason
    /// as [`Error::ConnectionClosed`]. Call `Retry::default_for` in it for
    /// the cases it does not change.
    ///
    /// ```
    /// use tandem::reconnect::{Reconnect, Retry};
    /// use tandem::{CloseCode, CloseReason, Error};
    ///
    /// // Centrifugo's convention: 3000–3499 and 4000–4499 mean "reconnect".
    /// let policy = Reconnect::new().should_retry(|error| match error.close_code() {
    ///     Some(CloseCode::Other(3000..=3499 | 4000..=4499)) => Retry::Backoff,
    ///     _ => Retry::default_for(error),
    /// });
    /// let closed = |code| Error::ConnectionClosed(Some(CloseReason::new(CloseCode::Other(code), "")));
    /// assert_eq!(policy.retry(&closed(4001)), Retry::Backoff);
    /// assert_eq!(policy.retry(&closed(4501)), Retry::Never);
    /// ```
    pub fn should_retry(mut self, hook: impl Fn(&Error) -> Retry + Send + Sync + 'static) -> Self {
        self.should_retry = Some(Arc::new(hook));
        self
    }

    /// Whether this policy retries after `error`: the
    /// [`should_retry`](Reconnect::should_retry) hook's answer, or else
    /// [`Retry::default_for`].
    ///
    /// ```
    /// use tandem::reconnect::{Reconnect, Retry};
    /// use tandem::{CloseCode, CloseReason, Error};
    /// let restart = Error::ConnectionClosed(Some(CloseReason::new(CloseCode::ServiceRestart, "")));
    /// assert_eq!(Reconnect::new().retry(&restart), Retry::Backoff);
    /// ```
    pub fn retry(&self, error: &Error) -> Retry {
        match &self.should_retry {
            Some(hook) => hook(error),
            None => Retry::default_for(error),
        }
    }

    /// The delay before retry number `retry` in a row (1 for the first),
    /// before jitter: `initial_delay × multiplier^(retry − 1)`, at most
    /// `max_delay`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = tandem::reconnect::Reconnect::new();
    /// let delays: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
    /// assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    /// ```
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial_delay.as_secs_f64() * self.multiplier.powi(exponent);
        if seconds.is_finite() && seconds < self.max_delay.as_secs_f64() {
            Duration::from_secs_f64(seconds)
        } else {
            self.max_delay
        }
    }

    /// [`backoff`](Reconnect::backoff) cut by `random` (in `[0, 1)`) of the jitter.
    fn delay(&self, retry: u32, random: f64) -> Duration {
        self.backoff(retry).mul_f64(1.0 - self.jitter * random)
    }
}

impl fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnect")
            .field("initial_delay", &self.initial_delay)
            .field("max_delay", &self.max_delay)
            .field("multiplier", &self.multiplier)
            .field("jitter", &self.jitter)
            .field("max_attempts", &self.max_attempts)
            .field("reset_after", &self.reset_after)
            .field(
                "should_retry",
                &self.should_retry.as_ref().map(|_| "a hook"),
            )
            .finish()
    }
}

/// Whether to connect again after a session or an attempt ended, and how
/// soon; see [the module](self) for the table.
///
/// ```
/// use tandem::reconnect::Retry;
/// use tandem::Error;
/// let refused = Error::HandshakeRefused { status: 403, body: String::new(), retry_after: None };
/// assert_eq!(Retry::default_for(&refused), Retry::Never);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Final: the stream of sessions ends with this error.
    Never,
    /// Connect again after the policy's backoff.
    Backoff,
    /// Connect again after the policy's backoff, or after this long if
    /// that is longer (a server's `Retry-After`).
    AtLeast(Duration),
}

impl Retry {
    /// tandem's classification (see [the module](self)): transport
    /// errors, 5xx but 501 and 505, 408, 429, and closes with 1001, 1006,
    /// 1011, 1012, 1013 and 1014 are retried, honouring `Retry-After`;
    /// everything else is final.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tandem::reconnect::Retry;
    /// use tandem::{CloseCode, CloseReason, Error};
    ///
    /// let closed = |code| Error::ConnectionClosed(Some(CloseReason::new(code, "")));
    /// assert_eq!(Retry::default_for(&closed(CloseCode::TryAgainLater)), Retry::Backoff);
    /// assert_eq!(Retry::default_for(&closed(CloseCode::ViolatedPolicy)), Retry::Never);
    /// let busy = Error::HandshakeRefused {
    ///     status: 503,
    ///     body: String::new(),
    ///     retry_after: Some(Duration::from_secs(30)),
    /// };
    /// assert_eq!(Retry::default_for(&busy), Retry::AtLeast(Duration::from_secs(30)));
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert_eq!(Retry::default_for(&Error::Io(refused)), Retry::Backoff);
    /// ```
    pub fn default_for(error: &Error) -> Retry {
        match error {
            Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => Retry::Never,
            Error::Io(_) => Retry::Backoff,
            Error::HandshakeRefused {
                status,
                retry_after,
                ..
            } => match (Self::for_status(*status), retry_after) {
                (Retry::Backoff, Some(wait)) => Retry::AtLeast(*wait),
                (retry, _) => retry,
            },
            Error::ProxyRefused { status, .. } => Self::for_status(*status),
            // The session ended with no known reason: as a dropped connection.
            Error::ConnectionClosed(None) => Retry::Backoff,
            Error::ConnectionClosed(Some(reason)) => Self::for_close_code(reason.code),
            Error::Protocol { code, .. } => Self::for_close_code(*code),
            _ => Retry::Never,
        }
    }

    /// An HTTP status of a refused upgrade (or a proxy's `CONNECT`).
    fn for_status(status: u16) -> Retry {
        match status {
            // Request Timeout, Too Many Requests.
            408 | 429 => Retry::Backoff,
            // Not Implemented, HTTP Version Not Supported.
            501 | 505 => Retry::Never,
            500..=599 => Retry::Backoff,
            _ => Retry::Never,
        }
    }

    /// A session's close code.
    fn for_close_code(code: CloseCode) -> Retry {
        match u16::from(code) {
            1001 | 1006 | 1011..=1014 => Retry::Backoff,
            _ => Retry::Never,
        }
    }
}

/// Why a [`Reconnecting`] stream ended.
///
/// ```no_run
/// # async fn f(mut sessions: tandem::reconnect::Reconnecting) {
/// use tandem::reconnect::Ended;
/// while let Some(session) = sessions.next().await { /* … */ }
/// match sessions.ended() {
///     Some(Ended::Final(error)) => println!("not retried: {error}"),
///     Some(Ended::GaveUp { retries, last }) => println!("{retries} retries, then {last}"),
///     _ => {}
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Ended {
    /// The last session or connection attempt ended in a way that is not
    /// retried ([`Retry::Never`]); a session's end is
    /// [`Error::ConnectionClosed`] with its close reason.
    Final(Error),
    /// Retrying was allowed, but [`Reconnect::max_attempts`] retries in a
    /// row had failed already.
    GaveUp {
        /// How many retries in a row were made.
        retries: u32,
        /// How the last one ended.
        last: Error,
    },
}

impl Ended {
    /// The error of the last session or attempt, whichever way it ended.
    ///
    /// ```
    /// use tandem::reconnect::Ended;
    /// use tandem::{CloseCode, CloseReason, Error};
    /// let ended = Ended::Final(Error::ConnectionClosed(Some(CloseReason::normal())));
    /// assert_eq!(ended.error().close_code(), Some(CloseCode::Normal));
    /// ```
    pub fn error(&self) -> &Error {
        match self {
            Ended::Final(error) | Ended::GaveUp { last: error, .. } => error,
        }
    }
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Final(error) => write!(f, "{error}"),
            Ended::GaveUp { retries, last } => write!(f, "gave up after {retries} retries: {last}"),
        }
    }
}

/// A connection attempt in progress.
trait Attempt: Future<Output = Result<Session, Error>> + MaybeSend {}

impl<T: Future<Output = Result<Session, Error>> + MaybeSend> Attempt for T {}

/// The function that makes each attempt.
trait Connect: MaybeSend {
    fn start(&mut self, previous: Option<&Error>) -> Pin<Box<dyn Attempt>>;
}

impl<F, A> Connect for F
where
    F: FnMut(Option<&Error>) -> A + MaybeSend,
    A: Future<Output = Result<Session, Error>> + MaybeSend + 'static,
{
    fn start(&mut self, previous: Option<&Error>) -> Pin<Box<dyn Attempt>> {
        Box::pin(self(previous))
    }
}

/// A stream of sessions to one server: a new one each time the one before
/// ended in a way that is retried, after the backoff; see
/// [the module](self). `Send` natively, so the loop can run in a task of
/// its own.
///
/// ```no_run
/// # async fn run() {
/// use tandem::reconnect::Reconnect;
/// let mut sessions = tandem::ClientBuilder::new("ws://127.0.0.1:8080/feed")
///     .reconnect(Reconnect::default());
/// while let Some(session) = sessions.next().await {
///     let reason = session.close_reason().await;
///     println!("session over ({reason}); reconnecting if that is retried");
/// }
/// # }
/// ```
pub struct Reconnecting {
    policy: Reconnect,
    connect: Box<dyn Connect>,
    /// The session given last, until it ends: its close reason, and when
    /// it opened.
    live: Option<(ClosedFuture, Instant)>,
    /// Retries in a row, since the start or the last session that lived
    /// `reset_after`.
    retries: u32,
    /// Why the last try ended, for the connect function.
    previous: Option<Error>,
    /// The wait before the next attempt, and when it began: a `next()`
    /// dropped while waiting leaves the rest of it for the next call.
    wait: Option<(Instant, Duration)>,
    ended: Option<Ended>,
}

impl Reconnecting {
    /// Sessions from `connect`, which runs before each attempt and is told
    /// why the previous try ended (`None` before the first): it may change
    /// the URL, a header or a token each time, or connect some other way
    /// (natively, over a `tandem::testing::TestServer`).
    ///
    /// ```no_run
    /// # async fn run() {
    /// use tandem::reconnect::{Reconnect, Reconnecting};
    /// use tandem::ClientBuilder;
    ///
    /// let mut sessions = Reconnecting::new(Reconnect::default(), |previous| {
    ///     if let Some(why) = previous {
    ///         println!("reconnecting after: {why}");
    ///     }
    ///     ClientBuilder::new("ws://127.0.0.1:8080/feed").header("x-token", "fresh").connect()
    /// });
    /// # }
    /// ```
    pub fn new<F, A>(policy: Reconnect, connect: F) -> Self
    where
        F: FnMut(Option<&Error>) -> A + MaybeSend + 'static,
        A: Future<Output = Result<Session, Error>> + MaybeSend + 'static,
    {
        Self {
            policy,
            connect: Box::new(connect),
            live: None,
            retries: 0,
            previous: None,
            wait: None,
            ended: None,
        }
    }

    /// The next session, or `None` once the stream has
    /// [`ended`](Reconnecting::ended).
    ///
    /// The first call connects at once. Each later call first waits for
    /// the session given before to end (so drop it, or let it close, before
    /// calling again), then ends the stream if that end is final or the
    /// attempts ran out, or else waits the backoff and connects again,
    /// retrying failed attempts the same way.
    ///
    /// To stop on the client's side, stop calling, or close the session
    /// with 1000 (dropping every handle of it does that); to drop it
    /// without a close handshake and get a new one after the backoff,
    /// [`terminate`](crate::Session::terminate) it (1006, retried).
    ///
    /// **Cancel safety**: dropping the future loses no session. Dropped
    /// while it waits, the next call waits only what is left; dropped
    /// while connecting, that attempt is abandoned and the next call
    /// starts another at once.
    ///
    /// ```no_run
    /// # async fn f(mut sessions: tandem::reconnect::Reconnecting) {
    /// while let Some(mut session) = sessions.next().await {
    ///     while let Some(frame) = session.receive().await { /* … */ }
    /// }
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Session> {
        if let Some((closed, opened)) = &mut self.live {
            let reason = closed.await;
            let lived = opened.elapsed();
            self.live = None;
            if lived >= self.policy.reset_after {
                self.retries = 0;
            }
            self.ended_with(Error::ConnectionClosed(Some(reason)));
        }
        loop {
            if self.ended.is_some() {
                return None;
            }
            if let Some((since, delay)) = self.wait {
                backend::sleep(delay.saturating_sub(since.elapsed())).await;
                self.wait = None;
            }
            debug!(retry = self.retries, "connecting");
            let attempt = self.connect.start(self.previous.as_ref());
            match attempt.await {
                Ok(session) => {
                    self.live = Some((session.close_reason(), Instant::now()));
                    return Some(session);
                }
                Err(error) => self.ended_with(error),
            }
        }
    }

    /// Why the stream ended; `None` while it goes on.
    ///
    /// ```no_run
    /// # async fn f(mut sessions: tandem::reconnect::Reconnecting) {
    /// while let Some(session) = sessions.next().await { /* … */ }
    /// if let Some(ended) = sessions.ended() {
    ///     eprintln!("disconnected for good: {ended}");
    /// }
    /// # }
    /// ```
    pub fn ended(&self) -> Option<&Ended> {
        self.ended.as_ref()
    }

    /// Classifies how the last try ended: the stream ends, or the next
    /// attempt waits its delay.
    fn ended_with(&mut self, error: Error) {
        let at_least = match self.policy.retry(&error) {
            Retry::Never => {
                if matches!(error.close_code().map(u16::from), Some(1000 | 1005)) {
                    debug!(%error, "the session ended normally: not reconnecting");
                } else {
                    warn!(%error, "not reconnecting: that is final");
                }
                self.ended = Some(Ended::Final(error));
                return;
            }
            Retry::Backoff => Duration::ZERO,
            Retry::AtLeast(wait) => wait,
        };
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.retries >= max)
        {
            warn!(retries = self.retries, %error, "giving up reconnecting");
            self.ended = Some(Ended::GaveUp {
                retries: self.retries,
                last: error,
            });
            return;
        }
        self.retries = self.retries.saturating_add(1);
        let delay = self
            .policy
            .delay(self.retries, backend::random_fraction())
            .max(at_least);
        debug!(retry = self.retries, ?delay, %error, "reconnecting after a delay");
        self.wait = Some((Instant::now(), delay));
        self.previous = Some(error);
    }
}

impl fmt::Debug for Reconnecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnecting")
            .field("policy", &self.policy)
            .field("retries", &self.retries)
            .field("waiting", &self.wait.map(|(_, delay)| delay))
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseReason;

    fn closed(code: u16) -> Error {
        Error::ConnectionClosed(Some(CloseReason::new(code, "")))
    }

    fn refused(status: u16, retry_after: Option<u64>) -> Error {
        Error::HandshakeRefused {
            status,
            body: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn close_codes_are_classified_as_the_table_says() {
        for code in [1001, 1006, 1011, 1012, 1013, 1014] {
            assert_eq!(Retry::default_for(&closed(code)), Retry::Backoff, "{code}");
        }
        for code in [
            1000, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1015, 3000, 4000, 4999,
        ] {
            assert_eq!(Retry::default_for(&closed(code)), Retry::Never, "{code}");
        }
        assert_eq!(
            Retry::default_for(&Error::ConnectionClosed(None)),
            Retry::Backoff
        );
        let failed = Error::Protocol {
            code: CloseCode::TooBig,
            reason: "too big".into(),
        };
        assert_eq!(Retry::default_for(&failed), Retry::Never);
    }

    #[test]
    fn statuses_are_classified_as_the_table_says() {
        for status in [408, 429, 500, 502, 503, 504, 511] {
            assert_eq!(
                Retry::default_for(&refused(status, None)),
                Retry::Backoff,
                "{status}"
            );
        }
        for status in [200, 301, 400, 401, 403, 404, 426, 501, 505] {
            assert_eq!(
                Retry::default_for(&refused(status, None)),
                Retry::Never,
                "{status}"
            );
        }
        // Retry-After counts where the status is retried, and only there.
        assert_eq!(
            Retry::default_for(&refused(429, Some(9))),
            Retry::AtLeast(Duration::from_secs(9))
        );
        assert_eq!(Retry::default_for(&refused(403, Some(9))), Retry::Never);
        let proxy = |status| Error::ProxyRefused {
            proxy: "http://proxy:3128".into(),
            status,
        };
        assert_eq!(Retry::default_for(&proxy(502)), Retry::Backoff);
        assert_eq!(Retry::default_for(&proxy(403)), Retry::Never);
    }

    #[test]
    fn the_callers_own_mistakes_are_final_and_the_network_is_not() {
        use std::io::ErrorKind;
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::TimedOut,
            ErrorKind::UnexpectedEof,
            ErrorKind::NotFound,
        ] {
            assert_eq!(
                Retry::default_for(&Error::Io(kind.into())),
                Retry::Backoff,
                "{kind:?}"
            );
        }
        let untrusted = Error::Io(ErrorKind::InvalidData.into());
        assert_eq!(Retry::default_for(&untrusted), Retry::Never);
        for error in [
            Error::InvalidUrl {
                url: "http://x".into(),
                reason: "scheme".into(),
            },
            Error::InvalidOptions("masking".into()),
            Error::Handshake("bad accept key".into()),
            Error::Unsupported("headers"),
            Error::ProxyAuthenticationRequired {
                proxy: "http://proxy:3128".into(),
            },
        ] {
            assert_eq!(Retry::default_for(&error), Retry::Never, "{error}");
        }
    }

    #[test]
    fn the_backoff_grows_by_the_multiplier_up_to_the_maximum() {
        let policy = Reconnect::new()
            .initial_delay(Duration::from_millis(100))
            .multiplier(1.5)
            .max_delay(Duration::from_secs(1));
        let delays: Vec<u128> = (1..=8).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, [100, 150, 225, 337, 506, 759, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(1));
        // A first delay over the maximum is cut to it; 0 stays 0.
        let policy = Reconnect::new().initial_delay(Duration::from_secs(60));
        assert_eq!(policy.backoff(1), Duration::from_secs(30));
        let policy = Reconnect::new().initial_delay(Duration::ZERO);
        assert_eq!(policy.backoff(40), Duration::ZERO);
        // A shrinking multiplier is a constant delay.
        let policy = Reconnect::new().multiplier(0.5);
        assert_eq!(policy.backoff(5), Duration::from_secs(1));
        let policy = Reconnect::new().multiplier(f64::NAN);
        assert_eq!(policy.backoff(5), Duration::from_secs(1));
    }

    #[test]
    fn jitter_takes_at_most_its_share_of_the_delay() {
        let policy = Reconnect::new();
        assert_eq!(policy.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(policy.delay(3, 0.5), Duration::from_secs(3));
        assert!(policy.delay(3, 0.999_999) > Duration::from_secs(2));
        let full = Reconnect::new().jitter(7.0);
        assert_eq!(full.delay(1, 0.75), Duration::from_millis(250));
        let none = Reconnect::new().jitter(f64::NAN);
        assert_eq!(none.delay(1, 0.75), Duration::from_secs(1));
        for _ in 0..1000 {
            let delay = policy.delay(2, backend::random_fraction());
            assert!(
                (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&delay),
                "{delay:?}"
            );
        }
    }
}
