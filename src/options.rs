//! Session options: Ktor's `install(WebSockets) { … }` block as a struct.

use std::time::Duration;

/// Options for a WebSocket session, the same on every target.
///
/// The names follow Ktor's `WebSockets` plugin (`pingPeriod`, `timeout`,
/// `maxFrameSize`, `masking`); tandem adds bounds that Ktor leaves open.
/// Sizes are in bytes, durations are [`Duration`]s.
///
/// In the browser, `ping_period`, `timeout` and `close_timeout` have no
/// effect: the browser runs the protocol and hides ping/pong from scripts. The size limits and queue bounds are enforced on both
/// targets.
///
/// The defaults are safe for a server on the open internet: a connection
/// costs at most a few MiB whatever its peer sends (the README's "Limits
/// and defaults" gives the formula), and a silent or half-open peer is found
/// within `ping_period + timeout`. Durations too large to add to a clock
/// reading (up to [`Duration::MAX`]) mean "never".
///
/// ```
/// use std::time::Duration;
/// use tandem::WebSocketOptions;
///
/// let options = WebSocketOptions {
///     ping_period: Some(Duration::from_secs(15)),
///     max_frame_size: Some(1 << 20),
///     ..WebSocketOptions::default()
/// };
/// assert_eq!(options.timeout, Duration::from_secs(15));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketOptions {
    /// How often to send a ping when nothing else asks the peer for an
    /// answer; with `timeout`, this is how a silent or half-open peer is
    /// found. Default 30 s (shorter than the 60 s idle timeout of common
    /// proxies, so a quiet session also stays open through them); `None` or
    /// zero sends none.
    pub ping_period: Option<Duration>,
    /// How long to wait for any frame after a ping before giving the
    /// connection up as dead: the session then ends with 1011, said to the
    /// peer in a Close. Default 15 s.
    pub timeout: Duration,
    /// How long to wait for the peer's Close after ours, and for the
    /// transport to end after the close handshake. Default 5 s.
    pub close_timeout: Duration,
    /// The largest frame payload accepted, in bytes; a bigger frame closes
    /// the session with 1009 before its payload is buffered. `None` (the
    /// default, as in Ktor) means no per-frame limit.
    pub max_frame_size: Option<usize>,
    /// The largest message accepted, in bytes, after reassembly of its
    /// fragments; a bigger one closes the session with 1009 as soon as its
    /// size is known. Inflated bytes count: with permessage-deflate the
    /// limit applies to the message after decompression. Default 1 MiB (as
    /// in Python's `websockets`); `None` means no limit.
    pub max_message_size: Option<usize>,
    /// Whether to mask outgoing frames. It only matters for servers: `None`
    /// (the default) follows RFC 6455 (clients mask, servers do not), and a
    /// client always masks (`Some(false)` makes
    /// [`ClientBuilder::connect`](crate::ClientBuilder::connect) fail with
    /// [`Error::InvalidOptions`](crate::Error::InvalidOptions)).
    pub masking: Option<bool>,
    /// How many frames [`Session::send`](crate::Session::send) may queue
    /// before it waits for the connection to catch up. Default 32.
    pub outgoing_queue: usize,
    /// How many payload bytes queued frames may hold before
    /// [`Session::send`](crate::Session::send) waits (and `try_send` fails
    /// with [`Error::QueueFull`](crate::Error::QueueFull)). A frame is taken
    /// while the queue holds less than this, so one frame of any size always
    /// fits in an empty queue. Default 1 MiB.
    pub outgoing_queue_bytes: usize,
    /// How many received messages may wait for the handler before the
    /// session stops reading from the network. Default 16.
    pub incoming_queue: usize,
    /// How many payload bytes received messages (after decompression) may
    /// hold while they wait for the handler before the session stops
    /// reading from the network. A message is queued while the queue holds
    /// less than this. Default 1 MiB.
    pub incoming_queue_bytes: usize,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        Self {
            ping_period: Some(Duration::from_secs(30)),
            timeout: Duration::from_secs(15),
            close_timeout: Duration::from_secs(5),
            max_frame_size: None,
            max_message_size: Some(1 << 20),
            masking: None,
            outgoing_queue: 32,
            outgoing_queue_bytes: 1 << 20,
            incoming_queue: 16,
            incoming_queue_bytes: 1 << 20,
        }
    }
}
