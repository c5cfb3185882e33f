//! The RFC 6455 state machine after the opening handshake.

use std::io::IoSlice;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tracing::{debug, warn};

use super::header::{FrameHeader, LengthOverflow, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::output::{EncodedFrame, Output};
use super::reassembly::{Reassembled, Reassembly, TruncatedText};
use super::role::Role;
use super::timers::{Timer, Timers};
use super::utf8::Utf8Validator;
use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::extensions::Extension;
use crate::frame::{Frame, FrameType, Rsv};
use crate::options::WebSocketOptions;

/// How the engine behaves: limits, masking, timers and mode.
///
/// ```
/// use tandem::protocol::{Config, Role};
/// use tandem::WebSocketOptions;
///
/// let config = Config::new(Role::Server, &WebSocketOptions::default());
/// assert!(!config.mask_outgoing);
/// assert!(!config.raw);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Raw mode: every frame goes to the caller as it is, with no reassembly,
    /// no UTF-8 check and no automatic pong or close reply.
    pub raw: bool,
    /// Whether to mask outgoing frames.
    pub mask_outgoing: bool,
    /// Largest accepted frame payload in bytes.
    pub max_frame_size: Option<usize>,
    /// Largest accepted message in bytes.
    pub max_message_size: Option<usize>,
    /// How often to ping; `None` for never.
    pub ping_period: Option<Duration>,
    /// How long after a ping a frame must arrive.
    pub timeout: Duration,
    /// How long the close handshake and the transport's end may take.
    pub close_timeout: Duration,
    /// RSV bits owned by negotiated extensions; any other set bit is a
    /// protocol error.
    pub allowed_rsv: Rsv,
    /// Seed for the masking keys. Give it fresh OS randomness for a client:
    /// RFC 6455 §10.3 needs keys an attacker cannot predict.
    pub mask_seed: [u8; 32],
}

impl Config {
    /// The engine configuration for `role` from session options.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// let config = Config::new(Role::Client, &WebSocketOptions::default());
    /// assert!(config.mask_outgoing); // clients mask
    /// ```
    pub fn new(role: Role, options: &WebSocketOptions) -> Self {
        Self {
            raw: false,
            mask_outgoing: options.masking.unwrap_or(role.masks_by_default()),
            max_frame_size: options.max_frame_size,
            max_message_size: options.max_message_size,
            ping_period: options.ping_period,
            timeout: options.timeout,
            close_timeout: options.close_timeout,
            allowed_rsv: Rsv::NONE,
            mask_seed: [0; 32],
        }
    }
}

/// A data frame at least this large makes the next read go straight into
/// the engine's buffer (see [`Protocol::wants_read_buffer`]).
const LARGE_FRAME: usize = 4096;
/// How long a deferred Close (the answer to the peer's Close, or the
/// failure for its violation) waits for the caller to handle the frames
/// before it; then it goes out anyway.
const DEFERRED_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The engine queues the control frames it makes by itself (pongs, its
/// pings) only while its output holds less than this many bytes.
///
/// Past it, a pong waits and a newer ping's pong replaces it (RFC 6455
/// §5.5.3 lets an endpoint answer only the latest ping), and a due ping is
/// skipped, so a peer that pings at line rate and never reads cannot make
/// the output grow: what the engine adds by itself to its output stays under
/// this bound plus two control frames and a Close.
///
/// ```
/// assert_eq!(tandem::protocol::CONTROL_OUTPUT_LIMIT, 16 * 1024);
/// ```
pub const CONTROL_OUTPUT_LIMIT: usize = 16 * 1024;
/// The smallest room [`Protocol::read_buffer`] reserves for a read.
const MIN_READ: usize = 4096;
/// The most room [`Protocol::read_buffer`] reserves at once.
const MAX_RESERVE: usize = 1 << 20;

/// What the engine keeps of its [`Config`], in 48 bytes: the masking seed
/// goes into the key generator at once (a server's engine, which does not
/// mask, keeps neither), sizes are `usize::MAX` when unbounded and
/// durations are [`Span`]s.
#[derive(Debug)]
struct Settings {
    raw: bool,
    allowed_rsv: Rsv,
    max_frame_size: usize,
    max_message_size: usize,
    /// Zero when the engine does not ping.
    ping_period: Span,
    timeout: Span,
    close_timeout: Span,
}

impl Settings {
    fn max_frame_size(&self) -> Option<usize> {
        Some(self.max_frame_size).filter(|&max| max != usize::MAX)
    }

    fn max_message_size(&self) -> Option<usize> {
        Some(self.max_message_size).filter(|&max| max != usize::MAX)
    }

    fn ping_period(&self) -> Option<Duration> {
        Some(self.ping_period.get()).filter(|period| !period.is_zero())
    }

    fn timeout(&self) -> Duration {
        self.timeout.get()
    }

    fn close_timeout(&self) -> Duration {
        self.close_timeout.get()
    }
}

/// A duration in 8 bytes: nanoseconds, `u64::MAX` for any longer than that
/// holds (584 years, [`Duration::MAX`] among them), which reads back as
/// [`Duration::MAX`].
#[derive(Debug, Clone, Copy)]
struct Span(u64);

impl Span {
    fn new(duration: Duration) -> Self {
        Self(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
    }

    fn get(self) -> Duration {
        match self.0 {
            u64::MAX => Duration::MAX,
            nanos => Duration::from_nanos(nanos),
        }
    }
}

/// How far the connection is through its close handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Frames flow both ways.
    Open,
    /// We sent Close and wait for the peer's.
    CloseSent,
    /// (Raw mode) the peer sent Close; the caller has not answered yet.
    CloseReceived,
    /// The close handshake is over or the connection was failed; the
    /// transport is being wound down and input is discarded.
    Closed,
    /// The transport is done.
    Finished,
}

/// The frame being received: its header is consumed, its payload arrives.
#[derive(Debug)]
struct InFrame {
    header: FrameHeader,
    frame_type: FrameType,
    /// Payload bytes already unmasked (and UTF-8 checked, for text).
    done: usize,
    /// The UTF-8 check of its message's text, when it is checked as it
    /// comes: a fragmented message passes it from frame to frame.
    utf8: Option<Utf8Validator>,
}

impl InFrame {
    /// Its payload's length, which fits in memory (checked when the frame
    /// started).
    fn len(&self) -> usize {
        self.header.payload_len as usize
    }
}

/// What a closing connection holds.
#[derive(Debug, Default)]
struct Closing {
    /// How the connection ended, once that is known.
    outcome: Option<CloseReason>,
    deferred: Option<DeferredClose>,
}

/// A Close owed to the peer, sent once the caller has handled what came before.
#[derive(Debug)]
enum DeferredClose {
    /// The peer broke the protocol: fail the connection with this reason.
    Failure(CloseReason),
    /// The peer sent this Close: answer it.
    Answer(CloseReason),
}

/// The WebSocket protocol after the opening handshake, with no I/O inside.
///
/// Feed it bytes with [`Protocol::read_buffer`] (or [`Protocol::receive_data`])
/// and take frames from [`Protocol::poll_event`]; queue frames with
/// [`Protocol::send`] and [`Protocol::close`] and write what
/// [`Protocol::output`] holds. Time only enters as the `now` argument, so a
/// test drives the timers with any clock it likes.
///
/// ```
/// use std::time::Instant;
/// use tandem::protocol::{Config, Protocol, Role};
/// use tandem::{Frame, WebSocketOptions};
///
/// let now = Instant::now();
/// let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
/// server.receive_data(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// assert_eq!(server.poll_event(now), Some(Frame::text("Hello")));
///
/// server.send(Frame::text("Hi"), now).unwrap();
/// assert_eq!(server.output_bytes(), vec![0x81, 0x02, b'H', b'i']);
/// ```
#[derive(Debug)]
pub struct Protocol {
    role: Role,
    config: Settings,
    stage: Stage,
    read: BytesMut,
    in_frame: Option<InFrame>,
    /// The fragmented message being received (default mode).
    message: Reassembly,
    /// Raw mode: a fragmented message is open.
    raw_fragmenting: bool,
    /// The payload length of the last data frame, when it was large (capped
    /// at the largest read reserve): reads are then sized for one like it
    /// and go straight into `read`, not through a copy.
    large_frame_len: u32,
    out: Output,
    /// Masking keys, for an engine that masks: a server's engine does not
    /// carry a generator's 320 bytes.
    rng: Option<Box<StdRng>>,
    close_sent: bool,
    /// Boxed: an open connection does not carry it.
    closing: Option<Box<Closing>>,
    /// Every deadline the engine keeps (see `timers.rs`).
    timers: Timers,
    ping_counter: u32,
    /// The payload of the latest ping, when its pong waits for the output to
    /// drain below [`CONTROL_OUTPUT_LIMIT`].
    pending_pong: Option<Box<Bytes>>,
    shutdown_requested: bool,
    /// Whether the transport goes once our Close is written, whatever the
    /// role: a peer given up for silence is not waited on for its answer.
    peer_given_up: bool,
    /// Negotiated extensions, in negotiation order.
    extensions: Box<[Box<dyn Extension>]>,
}

impl Protocol {
    /// A new engine for an open connection, as of `now`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// let client = Protocol::new(Role::Client, Config::new(Role::Client, &WebSocketOptions::default()), now);
    /// assert_eq!(client.role(), Role::Client);
    /// ```
    pub fn new(role: Role, config: Config, now: Instant) -> Self {
        let ping_period = config.ping_period.filter(|p| !p.is_zero());
        let rng = config
            .mask_outgoing
            .then(|| Box::new(StdRng::from_seed(config.mask_seed)));
        let config = Settings {
            raw: config.raw,
            max_frame_size: config.max_frame_size.unwrap_or(usize::MAX),
            max_message_size: config.max_message_size.unwrap_or(usize::MAX),
            ping_period: Span::new(ping_period.unwrap_or(Duration::ZERO)),
            timeout: Span::new(config.timeout),
            close_timeout: Span::new(config.close_timeout),
            allowed_rsv: config.allowed_rsv,
        };
        Self {
            role,
            config,
            stage: Stage::Open,
            read: BytesMut::new(),
            in_frame: None,
            message: Reassembly::default(),
            raw_fragmenting: false,
            large_frame_len: 0,
            out: Output::default(),
            rng,
            close_sent: false,
            closing: None,
            timers: Timers::new(now, ping_period),
            ping_counter: 0,
            pending_pong: None,
            shutdown_requested: false,
            peer_given_up: false,
            extensions: Box::new([]),
        }
    }

    /// This engine's role.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// assert_eq!(server.role(), Role::Server);
    /// ```
    pub fn role(&self) -> Role {
        self.role
    }

    /// Runs messages through `extensions`, as negotiated in the handshake:
    /// outgoing messages through [`Extension::encode`] in this order,
    /// incoming ones through [`Extension::decode`] in reverse order. Their
    /// RSV bits become legal on the first frame of a message. Raw mode
    /// leaves messages as they are on the wire.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// use tandem::extensions::Extension;
    /// let server = server.with_extensions(Vec::<Box<dyn Extension>>::new());
    /// assert!(server.wants_read());
    /// ```
    pub fn with_extensions(mut self, extensions: Vec<Box<dyn Extension>>) -> Self {
        for extension in &extensions {
            self.config.allowed_rsv |= extension.rsv();
        }
        self.extensions = extensions.into_boxed_slice();
        self
    }

    /// Whether an extension with no RSV bits transforms every message, so
    /// that the bytes on the wire are not the message's text.
    fn transforms_every_message(&self) -> bool {
        !self.config.raw && self.extensions.iter().any(|e| e.rsv().is_empty())
    }

    // ----- input -------------------------------------------------------------

    /// The buffer to read transport bytes into, with room reserved for the
    /// next read. Call [`Protocol::poll_event`] after filling it.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked text frame "Hello" from a client (RFC 6455 §5.7).
    /// # const HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// // A driver reads the socket into this buffer.
    /// server.read_buffer().extend_from_slice(&HELLO);
    /// assert_eq!(server.poll_event(now), Some(Frame::text("Hello")));
    /// ```
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        let remaining = match &self.in_frame {
            Some(f) => f.len().saturating_sub(self.read.len()),
            // Between frames after a large one: room for one like it. Once
            // the handler drops that payload the allocation is unique again
            // and the next reserve reuses it, still in cache (room for
            // several frames measured slower: reads landed in fresh memory).
            None if self.large_frame_len > 0 => self.large_frame_len as usize + MAX_HEADER_LEN,
            None if self.read.is_empty() && self.read.capacity() > 16 * MIN_READ => {
                // Between messages: give back what a large message needed.
                self.read = BytesMut::new();
                0
            }
            None => 0,
        };
        let want = remaining.clamp(MIN_READ, MAX_RESERVE);
        if self.read.capacity() - self.read.len() < want.min(16 * MIN_READ)
            && !self.read.try_reclaim(want)
        {
            // Exactly the room wanted: `reserve` may double the allocation,
            // and a payload sliced from it keeps all of it alive while it
            // waits in the session's queue, counted at its own length.
            let mut fresh = BytesMut::with_capacity(self.read.len() + want);
            fresh.extend_from_slice(&self.read);
            self.read = fresh;
        }
        &mut self.read
    }

    /// How many received bytes wait in the input buffer (a frame that has
    /// not arrived whole yet). A driver reads straight into
    /// [`Protocol::read_buffer`] while this is not zero, and may read
    /// elsewhere and call [`Protocol::receive_data`] when it is.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked text frame "Hello" from a client (RFC 6455 §5.7).
    /// # const HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// server.receive_data(&HELLO[..5]);
    /// assert_eq!(server.poll_event(now), None); // not a whole header yet
    /// assert_eq!(server.buffered_input(), 5);
    /// ```
    pub fn buffered_input(&self) -> usize {
        self.read.len()
    }

    /// Whether the next read should go straight into
    /// [`Protocol::read_buffer`]: a frame is partly read, or the last data
    /// frame was large (4 KiB or more), so the next is likely large too and
    /// copying it in from another buffer would cost more than a buffer of
    /// its own. Otherwise a driver may read into a buffer it shares among
    /// connections and call [`Protocol::receive_data`], so that an idle
    /// connection holds none.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked text frame "Hello" from a client (RFC 6455 §5.7).
    /// # const HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// assert!(!server.wants_read_buffer());
    /// server.receive_data(&HELLO[..5]);
    /// server.poll_event(now);
    /// assert!(server.wants_read_buffer()); // the rest of the frame goes there
    /// ```
    pub fn wants_read_buffer(&self) -> bool {
        !self.read.is_empty() || self.large_frame_len > 0
    }

    /// Gives back the memory of the input and output buffers that hold no
    /// bytes, for a driver whose connection has gone idle. (Parsed payloads
    /// share the input buffer, so an empty one can still keep the last
    /// read's allocation; the output buffer keeps the largest batch's.)
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked text frame "Hello" from a client (RFC 6455 §5.7).
    /// # const HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// server.receive_data(&HELLO);
    /// server.poll_event(now);
    /// server.release_idle_buffers();
    /// assert_eq!(server.buffered_input(), 0);
    /// ```
    pub fn release_idle_buffers(&mut self) {
        if self.read.is_empty() {
            self.read = BytesMut::new();
            self.large_frame_len = 0;
        }
        self.out.release_if_empty();
    }

    /// Appends transport bytes (a copy; drivers read into [`Protocol::read_buffer`]).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked text frame "Hello" from a client (RFC 6455 §5.7).
    /// # const HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// server.receive_data(&HELLO);
    /// assert_eq!(server.poll_event(now), Some(Frame::text("Hello")));
    /// ```
    pub fn receive_data(&mut self, data: &[u8]) {
        if self.stage != Stage::Finished {
            self.read.extend_from_slice(data);
        }
    }

    /// The transport reached end of file.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.receive_eof();
    /// assert!(server.is_finished());
    /// assert_eq!(server.close_reason().map(|r| r.code), Some(CloseCode::ClosedAbnormally));
    /// ```
    pub fn receive_eof(&mut self) {
        if let Some(DeferredClose::Failure(reason) | DeferredClose::Answer(reason)) =
            self.take_deferred()
        {
            self.settle(|| reason);
        }
        if self.stage != Stage::Closed && self.stage != Stage::Finished {
            let why = "the peer closed the connection without a close handshake";
            debug!("{why}");
            self.settle(|| CloseReason::new(CloseCode::ClosedAbnormally, why));
        }
        self.finish();
    }

    /// The transport failed; the connection is over with 1006.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.transport_failed(&std::io::ErrorKind::ConnectionReset.into());
    /// assert_eq!(server.close_reason().map(|r| r.code), Some(CloseCode::ClosedAbnormally));
    /// ```
    pub fn transport_failed(&mut self, error: &std::io::Error) {
        if self.stage != Stage::Closed && self.stage != Stage::Finished {
            debug!(%error, "transport failed");
            self.settle(|| {
                CloseReason::new(
                    CloseCode::ClosedAbnormally,
                    format!("transport error: {error}"),
                )
            });
        }
        self.finish();
    }

    /// The next frame for the caller, parsed from buffered input.
    ///
    /// In the default mode these are whole `Text` and `Binary` messages: pings
    /// are answered, pongs noted and a Close is answered and ends the stream.
    /// In raw mode every frame comes out as it arrived. Returns `None` when
    /// more input is needed, the connection is closed, or the peer broke the
    /// protocol or sent its Close: then [`Protocol::has_deferred_close`] is
    /// true, and the driver calls [`Protocol::apply_deferred_close`] once the
    /// caller has handled the frames that came before.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked text frame "Hello" from a client (RFC 6455 §5.7).
    /// # const HELLO: [u8; 11] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// server.receive_data(&HELLO);
    /// assert_eq!(server.poll_event(now), Some(Frame::text("Hello")));
    /// assert_eq!(server.poll_event(now), None);
    /// ```
    pub fn poll_event(&mut self, now: Instant) -> Option<Frame> {
        loop {
            let parsing = matches!(
                self.stage,
                Stage::Open | Stage::CloseSent | Stage::CloseReceived
            );
            if !parsing || self.has_deferred_close() {
                self.read.clear();
                return None;
            }
            if self.in_frame.is_none() {
                let (header, header_len) = match FrameHeader::parse(&self.read) {
                    Ok(Some(parsed)) => parsed,
                    Ok(None) => return None,
                    Err(LengthOverflow) => {
                        self.violation(CloseCode::ProtocolError, "frame length over 2^63", now);
                        continue;
                    }
                };
                self.read.advance(header_len);
                self.note_activity();
                if header.opcode & 0x8 == 0 {
                    self.large_frame_len = if header.payload_len >= LARGE_FRAME as u64 {
                        header.payload_len.min(MAX_RESERVE as u64) as u32
                    } else {
                        0
                    };
                }
                match self.check_header(&header) {
                    Ok(frame) => self.in_frame = Some(frame),
                    Err((code, why)) => {
                        self.violation(code, why, now);
                        continue;
                    }
                }
            }
            let Some(frame) = self.in_frame.as_mut() else {
                continue;
            };
            let available = self.read.len().min(frame.len());
            if available > frame.done {
                let fresh = &mut self.read[frame.done..available];
                if let Some(key) = frame.header.mask {
                    apply_mask(fresh, key, frame.done);
                }
                if let Some(validator) = frame.utf8.as_mut() {
                    if validator.feed(fresh).is_err() {
                        self.violation(
                            CloseCode::NotConsistent,
                            "invalid UTF-8 in a text message",
                            now,
                        );
                        continue;
                    }
                }
                frame.done = available;
            }
            if available < frame.len() {
                return None;
            }
            let Some(frame) = self.in_frame.take() else {
                continue;
            };
            let payload = self.read.split_to(frame.len()).freeze();
            if let Some(event) = self.on_frame(frame, payload, now) {
                return Some(event);
            }
        }
    }

    /// Validates a header against the RFC, the negotiated RSV bits, masking
    /// rules, fragmentation state and size limits.
    fn check_header(&mut self, h: &FrameHeader) -> Result<InFrame, (CloseCode, &'static str)> {
        use CloseCode::{ProtocolError, TooBig};
        // 0x0 continues a message and 0x8 and up are control frames; a
        // reserved data opcode is refused right after, for itself.
        let starts_message = h.opcode != 0x0 && h.opcode & 0x8 == 0;
        if let Some(why) = self.rsv_refusal(starts_message, h.rsv) {
            return Err((ProtocolError, why));
        }
        let Some(frame_type) = FrameType::from_opcode(h.opcode) else {
            return Err((ProtocolError, "reserved opcode"));
        };
        if h.mask.is_none() && self.role.requires_masked_input() {
            return Err((ProtocolError, "client frame is not masked"));
        }
        if h.mask.is_some() && self.role.requires_unmasked_input() {
            return Err((ProtocolError, "server frame is masked"));
        }
        if frame_type.is_control() {
            if !h.fin {
                return Err((ProtocolError, "fragmented control frame"));
            }
            if h.payload_len > 125 {
                return Err((ProtocolError, "control frame payload over 125 bytes"));
            }
        } else {
            let fragmenting = if self.config.raw {
                self.raw_fragmenting
            } else {
                self.message.is_fragmented()
            };
            match (frame_type, fragmenting) {
                (FrameType::Continuation, false) => {
                    return Err((
                        ProtocolError,
                        "continuation frame with no message to continue",
                    ))
                }
                (FrameType::Text | FrameType::Binary, true) => {
                    return Err((ProtocolError, "new message before the previous one ended"))
                }
                _ => {}
            }
        }
        let too_big = |limit: Option<usize>, len: u64| limit.is_some_and(|max| len > max as u64);
        if too_big(self.config.max_frame_size(), h.payload_len) {
            return Err((TooBig, "frame over the size limit"));
        }
        let so_far = self.message.len() as u64;
        if !frame_type.is_control()
            && too_big(
                self.config.max_message_size(),
                so_far.saturating_add(h.payload_len),
            )
        {
            return Err((TooBig, "message over the size limit"));
        }
        usize::try_from(h.payload_len).map_err(|_| (TooBig, "frame too big for memory"))?;
        let mut utf8 = None;
        if self.config.raw {
            if !frame_type.is_control() {
                self.raw_fragmenting = !h.fin;
            }
        } else if frame_type == FrameType::Text {
            // An extension's payload is checked once it has decoded it.
            if h.rsv.is_empty() && !self.transforms_every_message() {
                utf8 = Some(Utf8Validator::new());
            }
        } else if frame_type == FrameType::Continuation {
            utf8 = self.message.resume_check();
        }
        Ok(InFrame {
            header: *h,
            frame_type,
            done: 0,
            utf8,
        })
    }

    /// Acts on a whole frame; returns what the caller should see, if anything.
    fn on_frame(&mut self, frame: InFrame, payload: Bytes, now: Instant) -> Option<Frame> {
        let h = frame.header;
        debug!(frame_type = ?frame.frame_type, fin = h.fin, len = frame.len(), "frame received");
        if frame.frame_type == FrameType::Close {
            return self.on_close(payload, now);
        }
        if self.config.raw {
            return Some(Frame::from_parts(frame.frame_type, h.fin, h.rsv, payload));
        }
        match frame.frame_type {
            FrameType::Ping => {
                if self.stage == Stage::Open {
                    if self.out.len() < CONTROL_OUTPUT_LIMIT {
                        self.queue(Frame::pong(payload), now);
                    } else {
                        self.pending_pong = Some(Box::new(payload));
                    }
                }
                None
            }
            FrameType::Pong => None,
            _ => self.on_data(frame, payload, now),
        }
    }

    /// A data frame in default mode: completes or extends the open message.
    fn on_data(&mut self, frame: InFrame, payload: Bytes, now: Instant) -> Option<Frame> {
        let InFrame {
            header: h,
            frame_type,
            utf8,
            ..
        } = frame;
        if !h.fin {
            self.message.push(frame_type, h.rsv, &payload, utf8);
            return None;
        }
        let Reassembled {
            frame,
            utf8_checked,
        } = match self.message.finish(frame_type, h.rsv, utf8, payload) {
            Ok(whole) => whole,
            Err(TruncatedText) => {
                self.violation(
                    CloseCode::NotConsistent,
                    "text message ends inside a character",
                    now,
                );
                return None;
            }
        };
        if self.extensions.is_empty() {
            return Some(frame);
        }
        match self.decode(frame) {
            Ok(frame) if !frame.rsv().is_empty() => {
                self.violation(
                    CloseCode::ProtocolError,
                    "reserved bit that no extension handled",
                    now,
                );
                None
            }
            Ok(frame)
                if frame.frame_type() == FrameType::Text
                    && !utf8_checked
                    && std::str::from_utf8(frame.read_bytes()).is_err() =>
            {
                self.violation(
                    CloseCode::NotConsistent,
                    "invalid UTF-8 in a text message",
                    now,
                );
                None
            }
            Ok(frame) => Some(frame),
            Err(Error::Protocol { code, reason }) => {
                self.violation(code, &reason, now);
                None
            }
            Err(error) => {
                warn!(%error, "an extension failed to decode a message");
                self.violation(CloseCode::InternalError, "extension failure", now);
                None
            }
        }
    }

    /// Runs an incoming message through the extensions, last negotiated first.
    fn decode(&mut self, mut frame: Frame) -> Result<Frame, Error> {
        let max = self.config.max_message_size();
        for extension in self.extensions.iter_mut().rev() {
            let bits = extension.rsv();
            let applies = if bits.is_empty() {
                true
            } else {
                frame.rsv().bits() & bits.bits() != 0
            };
            if applies {
                frame = extension.decode(frame, max)?;
            }
        }
        Ok(frame)
    }

    /// The peer's Close frame.
    fn on_close(&mut self, payload: Bytes, now: Instant) -> Option<Frame> {
        let reason = match payload.len() {
            0 => CloseReason::new(CloseCode::Other(1005), ""),
            1 => {
                self.violation(
                    CloseCode::ProtocolError,
                    "close frame with a 1-byte payload",
                    now,
                );
                return None;
            }
            _ => {
                let code = CloseCode::from(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    self.violation(CloseCode::ProtocolError, "invalid close code", now);
                    return None;
                }
                match std::str::from_utf8(&payload[2..]) {
                    Ok(message) => CloseReason::new(code, message),
                    Err(_) => {
                        self.violation(CloseCode::NotConsistent, "close reason is not UTF-8", now);
                        return None;
                    }
                }
            }
        };
        debug!(%reason, "close frame received");
        self.settle(|| reason.clone());
        if self.close_sent {
            self.enter_closed(now);
            return None;
        }
        if self.config.raw {
            self.stage = Stage::CloseReceived;
            self.timers.set(
                Timer::CloseDeadline,
                now.checked_add(self.config.close_timeout()),
            );
            return Some(Frame::from_parts(
                FrameType::Close,
                true,
                Rsv::NONE,
                payload,
            ));
        }
        self.defer(DeferredClose::Answer(reason), now);
        None
    }

    /// Records a protocol violation by the peer: parsing stops and input is
    /// discarded, but the Close goes out only on
    /// [`Protocol::apply_deferred_close`] (or after the close timeout), so
    /// that replies to the frames received before it can still be sent first.
    fn violation(&mut self, code: CloseCode, why: &str, now: Instant) {
        debug!(code = u16::from(code), why, "protocol violation");
        self.defer(DeferredClose::Failure(CloseReason::new(code, why)), now);
    }

    fn defer(&mut self, close: DeferredClose, now: Instant) {
        self.closing_mut().deferred = Some(close);
        self.in_frame = None;
        self.message.clear();
        self.read.clear();
        // The caller normally takes the frames before it at once; one that
        // never reads (a handler that only sends) must not make the peer
        // wait out its close timeout.
        self.timers.set(
            Timer::CloseDeadline,
            now.checked_add(DEFERRED_CLOSE_GRACE.min(self.config.close_timeout())),
        );
    }

    /// Whether a Close waits for [`Protocol::apply_deferred_close`]: the
    /// answer to the peer's Close, or the failure for a violation.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked Close with 1000 from a client (a zero masking key).
    /// # const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    /// server.receive_data(&CLOSE_1000);
    /// assert_eq!(server.poll_event(now), None);
    /// assert!(server.has_deferred_close()); // answered once the caller is ready
    /// ```
    pub fn has_deferred_close(&self) -> bool {
        self.closing.as_ref().is_some_and(|c| c.deferred.is_some())
    }

    fn take_deferred(&mut self) -> Option<DeferredClose> {
        self.closing.as_mut()?.deferred.take()
    }

    fn closing_mut(&mut self) -> &mut Closing {
        self.closing.get_or_insert_with(Box::default)
    }

    fn outcome(&self) -> Option<&CloseReason> {
        self.closing.as_ref()?.outcome.as_ref()
    }

    /// Sends the deferred Close: answers the peer's Close (echoing its code),
    /// or fails the connection with the violation's code (1002, 1007, 1009,
    /// …). A driver calls this once the caller has handled the frames that
    /// came before, so that its replies to them go out first.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked Close with 1000 from a client (a zero masking key).
    /// # const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    /// server.receive_data(&CLOSE_1000);
    /// server.poll_event(now);
    /// server.apply_deferred_close(now);
    /// assert_eq!(server.output_bytes(), [0x88, 0x02, 0x03, 0xe8]); // the answer, 1000
    /// ```
    pub fn apply_deferred_close(&mut self, now: Instant) {
        match self.take_deferred() {
            Some(DeferredClose::Failure(reason)) => self.fail(reason.code, &reason.message, now),
            Some(DeferredClose::Answer(reason)) => {
                let reply = match reason.code {
                    CloseCode::Other(1005) => Frame::close_empty(),
                    code => Frame::close(CloseReason::new(code, "")),
                };
                self.settle(|| reason);
                if !self.close_sent {
                    self.queue(reply, now);
                    self.close_sent = true;
                }
                self.enter_closed(now);
            }
            None => {}
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): sends Close with `code` if it
    /// can, records the reason and discards further input.
    fn fail(&mut self, code: CloseCode, why: &str, now: Instant) {
        warn!(
            code = u16::from(code),
            why, "failing the WebSocket connection"
        );
        let reason = CloseReason::new(code, why);
        if !self.close_sent {
            self.queue(Frame::close(reason.clone()), now);
            self.close_sent = true;
        }
        self.settle(|| reason);
        self.enter_closed(now);
    }

    fn enter_closed(&mut self, now: Instant) {
        self.stage = Stage::Closed;
        self.in_frame = None;
        self.message.clear();
        self.read.clear();
        self.timers.stop_keepalive();
        self.pending_pong = None;
        self.timers.set(
            Timer::CloseDeadline,
            now.checked_add(self.config.close_timeout()),
        );
    }

    fn finish(&mut self) {
        self.stage = Stage::Finished;
        self.in_frame = None;
        self.message.clear();
        self.read = BytesMut::new();
        self.timers.clear();
        self.take_deferred();
        self.pending_pong = None;
        self.out = Output::default();
    }

    fn note_activity(&mut self) {
        self.timers.set(Timer::PingSentAt, None);
    }

    // ----- output ------------------------------------------------------------

    /// Queues `frame` for sending.
    ///
    /// A Close frame starts the close handshake, as [`Protocol::close`] does.
    /// Fails with [`Error::ConnectionClosed`] once a Close was sent, and with
    /// [`Error::InvalidFrame`] for a control frame over 125 bytes.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.send(Frame::text("Hi"), now).unwrap();
    /// assert_eq!(server.output_bytes(), [0x81, 0x02, b'H', b'i']);
    /// ```
    pub fn send(&mut self, frame: Frame, now: Instant) -> Result<(), Error> {
        frame.check_wire()?;
        self.send_checked(frame, now)
    }

    /// [`Protocol::send`] for a frame that passed `Frame::check_wire`
    /// already: a session checks what it queues when it is queued, so that
    /// the sender gets the error.
    pub(crate) fn send_checked(&mut self, frame: Frame, now: Instant) -> Result<(), Error> {
        if !self.accepts_frames() {
            return Err(Error::ConnectionClosed(self.outcome().cloned()));
        }
        self.check_rsv(frame.frame_type(), frame.rsv())?;
        if frame.frame_type() == FrameType::Close {
            self.queue(frame, now);
            self.close_sent = true;
            if self.stage == Stage::CloseReceived {
                self.enter_closed(now);
            } else {
                self.stage = Stage::CloseSent;
                self.timers.set(
                    Timer::CloseDeadline,
                    now.checked_add(self.config.close_timeout()),
                );
            }
            return Ok(());
        }
        let is_message = matches!(frame.frame_type(), FrameType::Text | FrameType::Binary)
            && frame.is_fin()
            && frame.rsv().is_empty();
        let frame = if is_message && !self.config.raw && !self.extensions.is_empty() {
            match self.encode(frame) {
                Ok(frame) => frame,
                Err(error) => {
                    warn!(%error, "an extension failed to encode a message");
                    self.fail(CloseCode::InternalError, "extension failure", now);
                    return Err(error);
                }
            }
        } else {
            frame
        };
        self.queue(frame, now);
        Ok(())
    }

    /// Whether [`Protocol::send`] would take a frame now: no Close sent,
    /// and the connection not closed.
    pub(crate) fn accepts_frames(&self) -> bool {
        !self.close_sent && matches!(self.stage, Stage::Open | Stage::CloseReceived)
    }

    /// Sends a frame encoded once for many connections (a broadcast): its
    /// shared bytes are queued as they are, unless this connection has to
    /// encode the frame itself (a client masks; extensions may transform a
    /// message; a Close changes the state), which [`Protocol::send`] does.
    // The browser encodes every frame itself.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn send_encoded(&mut self, frame: EncodedFrame, now: Instant) -> Result<(), Error> {
        // An engine that masks holds the key generator.
        let as_is = self.rng.is_none()
            && (self.config.raw || self.extensions.is_empty())
            && frame.frame_type() != FrameType::Close;
        if !as_is {
            return self.send(frame.into_frame(), now);
        }
        self.check_rsv(frame.frame_type(), frame.rsv())?;
        if !self.accepts_frames() {
            return Err(Error::ConnectionClosed(self.outcome().cloned()));
        }
        if self.out.is_empty() {
            self.timers.set(Timer::WriteProgressAt, Some(now));
        }
        debug!(frame_type = ?frame.frame_type(), "encoded frame queued");
        self.out.push_encoded(frame.into_wire());
        Ok(())
    }

    /// Why `rsv` may not be set on a frame, either way: bits that no
    /// negotiated extension defines, and (outside raw mode, where the
    /// caller owns them) any bit on a frame that does not start a message.
    fn rsv_refusal(&self, starts_message: bool, rsv: Rsv) -> Option<&'static str> {
        if !rsv.is_empty() && !self.config.raw && !starts_message {
            return Some("reserved bit set on a control or continuation frame");
        }
        if !self.config.allowed_rsv.contains(rsv) {
            return Some("reserved bit set with no extension negotiated for it");
        }
        None
    }

    /// Refuses to send what [`check_header`](Self::check_header) would
    /// fail the connection for on the peer's side.
    fn check_rsv(&self, frame_type: FrameType, rsv: Rsv) -> Result<(), Error> {
        let starts_message = matches!(frame_type, FrameType::Text | FrameType::Binary);
        match self.rsv_refusal(starts_message, rsv) {
            Some(why) => Err(Error::InvalidFrame(format!(
                "{frame_type:?} frame with RSV bits {rsv:?}: {why}"
            ))),
            None => Ok(()),
        }
    }

    /// Runs an outgoing message through the extensions, in negotiation order.
    fn encode(&mut self, mut frame: Frame) -> Result<Frame, Error> {
        for extension in &mut self.extensions {
            frame = extension.encode(frame)?;
        }
        Ok(frame)
    }

    /// Starts the close handshake with `reason`.
    ///
    /// Does nothing if a Close was already sent. Codes that cannot go on the
    /// wire (1005, 1006, 1015, out of range) are refused with
    /// [`Error::InvalidFrame`].
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.close(CloseReason::new(CloseCode::Normal, ""), now).unwrap();
    /// assert_eq!(server.output_bytes(), [0x88, 0x02, 0x03, 0xe8]);
    /// ```
    pub fn close(&mut self, reason: CloseReason, now: Instant) -> Result<(), Error> {
        reason.code.check_sendable()?;
        if !self.accepts_frames() {
            return Ok(());
        }
        self.send(Frame::close(reason), now)
    }

    /// Ends the connection without a close handshake: 1006 with `why`
    /// (unless a reason is already known), and the transport is dropped.
    fn give_up(&mut self, why: String) {
        warn!("{why}");
        self.settle(|| CloseReason::new(CloseCode::ClosedAbnormally, why));
        self.finish();
    }

    /// Records how the connection ended, unless that is known already.
    fn settle(&mut self, reason: impl FnOnce() -> CloseReason) {
        let closing = self.closing_mut();
        if closing.outcome.is_none() {
            closing.outcome = Some(reason());
        }
    }

    fn queue(&mut self, frame: Frame, now: Instant) {
        if self.out.is_empty() {
            self.timers.set(Timer::WriteProgressAt, Some(now));
        }
        self.push_output(frame);
    }

    /// Encodes `frame` (masked, for an engine that masks) at the end of the output.
    fn push_output(&mut self, frame: Frame) {
        let mask = self.rng.as_mut().map(|rng| {
            let mut key = [0u8; 4];
            rng.fill_bytes(&mut key);
            key
        });
        let header = FrameHeader {
            fin: frame.is_fin(),
            rsv: frame.rsv(),
            opcode: frame.frame_type().opcode(),
            mask,
            payload_len: frame.read_bytes().len() as u64,
        };
        debug!(frame_type = ?frame.frame_type(), len = header.payload_len, "frame queued");
        self.out.push_frame(&header, frame.payload());
    }

    /// How many bytes wait to be written.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.send(Frame::text("Hi"), now).unwrap();
    /// assert_eq!(server.output_len(), 4);
    /// ```
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Fills `dst` with slices of the bytes to write, in order; returns how
    /// many it filled. Pass them to a vectored write, then call
    /// [`Protocol::consume_output`] with the number of bytes written.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.send(Frame::text("Hi"), now).unwrap();
    /// let mut slices = [std::io::IoSlice::new(&[]); 8];
    /// let n = server.output(&mut slices);
    /// let bytes: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
    /// assert_eq!(bytes, [0x81, 0x02, b'H', b'i']);
    /// ```
    pub fn output<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.out.slices(dst)
    }

    /// Marks the first `n` output bytes as written at `now`.
    ///
    /// Output that makes no progress for the `timeout` of the options means
    /// the peer stopped reading: [`Protocol::handle_timeout`] then ends the
    /// connection with 1006 instead of holding its buffers forever.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.send(Frame::text("Hi"), now).unwrap();
    /// server.consume_output(4, now); // a write took all four bytes
    /// assert_eq!(server.output_len(), 0);
    /// ```
    pub fn consume_output(&mut self, n: usize, now: Instant) {
        self.out.consume(n);
        self.timers.set(
            Timer::WriteProgressAt,
            (!self.out.is_empty()).then_some(now),
        );
        if self.out.len() < CONTROL_OUTPUT_LIMIT {
            if let Some(payload) = self.pending_pong.take() {
                self.queue(Frame::pong(*payload), now);
            }
        }
    }

    /// Takes all pending output as one vector (for tests and simple drivers).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// server.send(Frame::text("Hi"), now).unwrap();
    /// assert_eq!(server.output_bytes(), [0x81, 0x02, b'H', b'i']);
    /// assert_eq!(server.output_len(), 0);
    /// ```
    pub fn output_bytes(&mut self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.out.len());
        loop {
            if self.out.is_empty() {
                match self.pending_pong.take() {
                    Some(payload) => self.push_output(Frame::pong(*payload)),
                    None => break,
                }
            }
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.out.slices(&mut slices);
            for s in &slices[..n] {
                bytes.extend_from_slice(s);
            }
            let written: usize = slices[..n].iter().map(|s| s.len()).sum();
            self.out.consume(written);
        }
        self.timers.set(Timer::WriteProgressAt, None);
        bytes
    }

    // ----- lifecycle ---------------------------------------------------------

    /// Why the connection closed, once it has: the peer's Close, the code we
    /// failed the connection with, or 1006 when the transport just ended.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked Close with 1000 from a client (a zero masking key).
    /// # const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    /// assert_eq!(server.close_reason(), None);
    /// server.close(CloseReason::new(CloseCode::Normal, "bye"), now).unwrap();
    /// server.receive_data(&CLOSE_1000); // the client's answer
    /// server.poll_event(now);
    /// assert_eq!(server.close_reason().map(|r| r.code), Some(CloseCode::Normal));
    /// ```
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match self.stage {
            Stage::Closed | Stage::Finished => self.outcome(),
            _ => None,
        }
    }

    /// Whether the driver should keep reading the transport.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// assert!(server.wants_read());
    /// server.receive_eof();
    /// assert!(!server.wants_read());
    /// ```
    pub fn wants_read(&self) -> bool {
        self.stage != Stage::Finished
    }

    /// Whether the driver should now shut down the transport's write side:
    /// the handshake is over, the output is flushed, and this end closes first.
    /// Returns `true` once; the driver then keeps reading until end of file.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// # // A masked Close with 1000 from a client (a zero masking key).
    /// # const CLOSE_1000: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    /// server.close(CloseReason::new(CloseCode::Normal, ""), now).unwrap();
    /// server.receive_data(&CLOSE_1000); // the client's answer
    /// server.poll_event(now);
    /// server.output_bytes(); // written
    /// assert!(server.take_shutdown()); // the server closes the TCP connection first
    /// assert!(!server.take_shutdown());
    /// ```
    pub fn take_shutdown(&mut self) -> bool {
        let due = self.stage == Stage::Closed
            && self.out.is_empty()
            && (self.role.closes_transport_first() || self.peer_given_up)
            && !self.shutdown_requested;
        self.shutdown_requested |= due;
        due
    }

    /// Whether the connection is over and the transport can be dropped.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// assert!(!server.is_finished());
    /// server.receive_eof();
    /// assert!(server.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Finished
    }

    // ----- time --------------------------------------------------------------

    /// The next instant at which [`Protocol::handle_timeout`] has work to do.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// let options = WebSocketOptions { ping_period: Some(Duration::from_secs(10)), ..Default::default() };
    /// let pinging = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
    /// assert_eq!(pinging.poll_timeout(), Some(now + Duration::from_secs(10)));
    /// ```
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_due(self.config.timeout())
    }

    /// Runs the timers due at `now`: sends a ping, gives up on a silent peer,
    /// or ends a close handshake that takes too long.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use tandem::protocol::{Config, Protocol, Role};
    /// # use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
    /// # let now = Instant::now();
    /// # let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &WebSocketOptions::default()), now);
    /// let options = WebSocketOptions { ping_period: Some(Duration::from_secs(10)), ..Default::default() };
    /// let mut pinging = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
    /// pinging.handle_timeout(now + Duration::from_secs(10));
    /// assert_eq!(pinging.output_bytes()[0], 0x89); // a ping went out
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.has_deferred_close()
            && self
                .timers
                .get(Timer::CloseDeadline)
                .is_some_and(|d| d <= now)
        {
            self.apply_deferred_close(now);
            return;
        }
        if self
            .timers
            .get(Timer::CloseDeadline)
            .is_some_and(|d| d <= now)
        {
            if self.stage == Stage::Closed {
                self.finish();
            } else {
                self.give_up("close handshake timed out".to_owned());
            }
            return;
        }
        let expired = |at: Option<Instant>| {
            at.filter(|at| {
                at.checked_add(self.config.timeout())
                    .is_some_and(|due| due <= now)
            })
        };
        if let Some(since) = expired(self.timers.get(Timer::WriteProgressAt)) {
            let waited = now.duration_since(since);
            self.give_up(format!(
                "the peer stopped reading: no write progress for {waited:?}"
            ));
            return;
        }
        if let Some(sent) = expired(self.timers.get(Timer::PingSentAt)) {
            // The peer may still read (only its pongs are lost, or it is
            // stuck): a Close tells it why before the transport goes, as
            // Ktor and Python's websockets do. The write deadline and the
            // close timeout bound the wait for that Close to leave.
            let waited = now.duration_since(sent);
            let why =
                format!("keepalive timeout: no frame from the peer within {waited:?} of a ping");
            self.fail(CloseCode::InternalError, &why, now);
            self.peer_given_up = true;
            return;
        }
        if let (Some(at), Some(period)) =
            (self.timers.get(Timer::NextPing), self.config.ping_period())
        {
            if at <= now && self.stage == Stage::Open {
                // Output that does not drain is found by the write deadline;
                // a ping behind it would only add to it.
                if self.out.len() < CONTROL_OUTPUT_LIMIT {
                    self.ping_counter = self.ping_counter.wrapping_add(1);
                    let payload = u64::from(self.ping_counter).to_be_bytes();
                    self.queue(Frame::ping(payload.to_vec()), now);
                    self.timers.set_if_unset(Timer::PingSentAt, now);
                }
                self.timers.set(Timer::NextPing, now.checked_add(period));
            }
        }
    }
}
