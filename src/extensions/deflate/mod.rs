//! permessage-deflate (RFC 7692), native only: in the browser, the browser
//! negotiates its own.

mod codec;
mod params;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use self::codec::{DeflateExtension, Deflater, Inflater, Predicate};
use self::params::{Params, Wants, MAX_WINDOW_BITS, MIN_WINDOW_BITS, NAME};
use crate::extensions::{Extension, ExtensionFactory, ExtensionHeader};
use crate::frame::{Frame, Rsv};

/// permessage-deflate (RFC 7692): compresses messages with DEFLATE, marks
/// them with RSV1 (Ktor's `WebSocketDeflateExtension`). Add it to a
/// [`Server`](crate::server::Server) or a
/// [`ClientBuilder`](crate::ClientBuilder) with `.extension(…)`.
///
/// ```no_run
/// use tandem::extensions::PerMessageDeflate;
/// use tandem::server::Server;
///
/// # async fn run() -> Result<(), tandem::Error> {
/// let server = Server::new()
///     .extension(PerMessageDeflate::new().compress_if_bigger_than(64))
///     .web_socket("/echo", tandem::demo::echo)
///     .bind("127.0.0.1:8080")
///     .await?;
///
/// let session = tandem::ClientBuilder::new("ws://127.0.0.1:8080/echo")
///     .extension(PerMessageDeflate::new())
///     .connect()
///     .await?;
/// // ["permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12"]
/// println!("{:?}", session.extensions());
/// # Ok(()) }
/// ```
///
/// # Parameters and defaults
///
/// The four parameters of RFC 7692 §7 are named as in the RFC, from the
/// point of view of the connection (the *server's* compressor, the
/// *client's* compressor), so one configuration reads the same on both
/// ends:
///
/// | setting | default | a server… | a client… |
/// |---|---|---|---|
/// | [`server_no_context_takeover`](Self::server_no_context_takeover) | a server: `true`; a client: `false` | resets its compressor after each message, and says so | asks the server to reset its compressor |
/// | [`client_no_context_takeover`](Self::client_no_context_takeover) | `false` | asks the client to reset its compressor | resets its compressor after each message, and says so |
/// | [`server_max_window_bits`](Self::server_max_window_bits) | a server: 12; a client: not asked | compresses with at most this window, and says so | asks the server for at most this window |
/// | [`client_max_window_bits`](Self::client_max_window_bits) | a client: 12; a server: not limited | limits the client's window, if it offered `client_max_window_bits` | compresses with at most this window, and offers `client_max_window_bits` so the server may lower it |
/// | [`compression_level`](Self::compression_level) | 6 | | |
/// | [`compress_if_bigger_than`](Self::compress_if_bigger_than) | 0 (every non-empty message) | | |
/// | [`compress_if`](Self::compress_if) | none (every message) | | |
/// | [`offer_fallback`](Self::offer_fallback) | `false` | | also offers plain `permessage-deflate; client_max_window_bits` |
///
/// So by default each endpoint decides about its own compressor only and
/// asks nothing of its peer: both limit their window to 12 bits (4 KiB);
/// a server compresses each message on its own, so that an idle connection
/// holds no compressor (with many connections, that is what keeps them
/// cheap, see [Memory](#memory)); a client, which has one connection, keeps
/// its context, which makes small similar messages 2–3 times smaller. A
/// client offers `permessage-deflate; client_max_window_bits=12`, which
/// every server that implements the extension accepts; a server answers
/// what browsers offer (`permessage-deflate; client_max_window_bits`) with
/// `permessage-deflate; server_no_context_takeover; server_max_window_bits=12`.
///
/// A server accepts every valid offer, lowering the windows to its limits
/// and adding the `no_context_takeover` parameters it wants; it declines
/// offers with unknown or repeated parameters or invalid values (a window
/// outside 8–15, a value where none belongs). A client fails the
/// connection with 1010 when the answer has such a parameter, has
/// `client_max_window_bits` although no offer had it (or without a value),
/// or does not honour an offer's `server_no_context_takeover` or
/// `server_max_window_bits`.
///
/// **Window bits 8.** zlib (and zlib-rs) cannot deflate with a 256-byte
/// window; a compressor asked for 8 bits uses 9, whose matches never reach
/// further back than 250 bytes (zlib's `MAX_DIST` = 512 − 262), so its
/// output is valid for a peer that inflates with 8 bits. An inflater always
/// uses at least 9 bits, which decodes anything an 8-bit sender produces.
/// Both roles therefore accept 8 wherever the RFC allows it.
///
/// # Messages
///
/// Only whole `Text` and `Binary` messages sent through a session are
/// compressed (never control frames, nor frames sent in raw mode); RSV1 is
/// set on the first frame only. A message is sent uncompressed, RSV1 clear,
/// when it is not bigger than `compress_if_bigger_than` or the
/// `compress_if` predicate says no.
///
/// An incoming message with RSV1 is inflated in bounded steps; **the
/// session's `max_message_size` applies to the inflated size** and is
/// checked while inflating: a message that inflates past it fails the
/// connection with 1009 (`TooBig`) as soon as it passes, with at most
/// `max_message_size + 1` bytes allocated for it, so a decompression bomb
/// costs no more than the limit. Data that is not valid DEFLATE fails the
/// connection with 1002 (`ProtocolError`; RFC 7692 §8.2 says to fail the
/// connection and names no code), invalid UTF-8 in an inflated text
/// message with 1007.
///
/// A peer that ends a message with a final (`BFINAL`) block ends its
/// DEFLATE stream; the next message is inflated with a fresh window.
///
/// # Memory
///
/// Compressor and decompressor are created on the first message that
/// needs them. Without context takeover in a direction, its state is
/// dropped after each message, so an idle connection holds nothing for it;
/// with context takeover it is kept for the life of the connection.
/// Measured with a counting allocator (zlib-rs through flate2, which fixes
/// zlib's `memLevel` at 8), for one server-side connection after 8 messages
/// of 4 KiB each way, by `cargo run --release --example deflate_memory`:
///
/// | window bits | context takeover | compressor, idle | compressor, peak | decompressor, idle | decompressor, peak |
/// |---|---|---|---|---|---|
/// | 8 | yes | 245.1 KiB | 247.2 KiB | 46.4 KiB | 54.5 KiB |
/// | 8 | no | 0 | 247.2 KiB | 0 | 54.4 KiB |
/// | 9 | yes | 245.1 KiB | 247.2 KiB | 46.4 KiB | 54.5 KiB |
/// | 9 | no | 0 | 247.2 KiB | 0 | 54.4 KiB |
/// | 12 | yes | 259.1 KiB | 261.2 KiB | 46.4 KiB | 54.5 KiB |
/// | 12 | no | 0 | 261.2 KiB | 0 | 54.4 KiB |
/// | 15 | yes | 371.1 KiB | 373.2 KiB | 46.4 KiB | 54.5 KiB |
/// | 15 | no | 0 | 373.2 KiB | 0 | 54.4 KiB |
///
/// zlib-rs's compressor has a fixed 128 KiB hash table and, at `memLevel`
/// 8, 112 KiB of symbol buffers, whatever the window; its decompressor
/// always allocates a 32 KiB window. So the window bits change little (12
/// instead of 15 saves 112 KiB per compressor), and context takeover
/// decides: with the defaults an idle server connection holds 46 KiB (the
/// decompressor for a client that keeps its context, as browsers do), 0
/// if the client resets too, and 305 KiB with
/// `server_no_context_takeover(false)`. Context takeover pays for itself
/// with small similar messages (200 JSON messages of 100 bytes: 27% of
/// their size with it, 71% without; of 4 KiB: 14% and 17%).
#[derive(Clone)]
pub struct PerMessageDeflate {
    server_no_context_takeover: Option<bool>,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<u8>,
    level: u32,
    threshold: usize,
    predicate: Option<Predicate>,
    fallback: bool,
}

impl PerMessageDeflate {
    /// The window of an endpoint's own compressor unless configured: 12
    /// bits, 4 KiB (as Python's `websockets` chooses).
    ///
    /// ```
    /// assert_eq!(tandem::extensions::PerMessageDeflate::DEFAULT_WINDOW_BITS, 12);
    /// ```
    pub const DEFAULT_WINDOW_BITS: u8 = 12;

    /// The defaults (see the table above).
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new();
    /// ```
    pub fn new() -> Self {
        Self {
            server_no_context_takeover: None,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: 6,
            threshold: 0,
            predicate: None,
            fallback: false,
        }
    }

    /// Whether the server compresses each message on its own
    /// (`server_no_context_takeover`): it then holds no compressor between
    /// messages, at some cost in compression of similar small messages.
    /// A server does by default; a client asks for it only if set.
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new().server_no_context_takeover(true);
    /// ```
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = Some(on);
        self
    }

    /// Whether the client compresses each message on its own
    /// (`client_no_context_takeover`); a server that sets it holds no
    /// decompressor between messages.
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new().client_no_context_takeover(true);
    /// ```
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// The largest LZ77 window of the server's compressor, as a power of
    /// two: 8 (256 bytes) to 15 (32 KiB).
    ///
    /// # Panics
    ///
    /// Outside 8..=15.
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new().server_max_window_bits(15);
    /// ```
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = Some(check_bits(bits));
        self
    }

    /// The largest LZ77 window of the client's compressor, as a power of
    /// two: 8 (256 bytes) to 15 (32 KiB).
    ///
    /// # Panics
    ///
    /// Outside 8..=15.
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new().client_max_window_bits(10);
    /// ```
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = Some(check_bits(bits));
        self
    }

    /// The compression level, 0 (store) to 9 (smallest, slowest); 6 by
    /// default.
    ///
    /// # Panics
    ///
    /// Above 9.
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new().compression_level(1);
    /// ```
    pub fn compression_level(mut self, level: u32) -> Self {
        assert!(level <= 9, "compression level {level} is not 0 to 9");
        self.level = level;
        self
    }

    /// Sends messages of at most `bytes` bytes uncompressed (Ktor's
    /// `compressIfBiggerThan`); 0 by default, which leaves only empty
    /// messages uncompressed.
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::new().compress_if_bigger_than(128);
    /// ```
    pub fn compress_if_bigger_than(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Compresses only the messages for which `predicate` returns `true`
    /// (Ktor's `compressIf { frame -> … }`); it sees each whole `Text` or
    /// `Binary` message before compression.
    ///
    /// ```
    /// use tandem::FrameType;
    /// let deflate = tandem::extensions::PerMessageDeflate::new()
    ///     .compress_if(|frame| frame.frame_type() == FrameType::Text);
    /// ```
    pub fn compress_if(
        mut self,
        predicate: impl Fn(&Frame) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Client side: after the offer this configuration makes, also offer
    /// plain `permessage-deflate; client_max_window_bits` (the RFC's
    /// defaults), for servers that decline the first, e.g. one that does
    /// not support `server_max_window_bits`.
    ///
    /// ```
    /// use tandem::extensions::{ExtensionFactory, PerMessageDeflate};
    /// let deflate = PerMessageDeflate::new().server_max_window_bits(10).offer_fallback(true);
    /// assert_eq!(deflate.offers().len(), 2);
    /// ```
    pub fn offer_fallback(mut self, on: bool) -> Self {
        self.fallback = on;
        self
    }

    fn server_wants(&self) -> Wants {
        Wants {
            server_no_context_takeover: self.server_no_context_takeover.unwrap_or(true),
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: Some(
                self.server_max_window_bits
                    .unwrap_or(Self::DEFAULT_WINDOW_BITS),
            ),
            client_max_window_bits: self.client_max_window_bits,
        }
    }

    fn client_wants(&self) -> Wants {
        Wants {
            server_no_context_takeover: self.server_no_context_takeover.unwrap_or(false),
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: self.server_max_window_bits,
            client_max_window_bits: Some(
                self.client_max_window_bits
                    .unwrap_or(Self::DEFAULT_WINDOW_BITS),
            ),
        }
    }

    fn client_offers(&self) -> Vec<Params> {
        let wants = self.client_wants();
        let first = params::offer(&wants);
        let plain = Params {
            client_no_context_takeover: wants.client_no_context_takeover,
            client_max_window_bits: Some(None),
            ..Params::default()
        };
        if self.fallback && first != plain {
            vec![first, plain]
        } else {
            vec![first]
        }
    }

    fn extension(&self, agreement: params::Agreement) -> Box<dyn Extension> {
        Box::new(DeflateExtension {
            deflater: Deflater::new(agreement.outgoing, self.level),
            inflater: Inflater::new(agreement.incoming),
            threshold: self.threshold,
            predicate: self.predicate.clone(),
        })
    }
}

fn check_bits(bits: u8) -> u8 {
    assert!(
        (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits),
        "window bits {bits} are not 8 to 15"
    );
    bits
}

impl Default for PerMessageDeflate {
    /// The same as [`PerMessageDeflate::new`].
    ///
    /// ```
    /// let deflate = tandem::extensions::PerMessageDeflate::default();
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field(
                "server_no_context_takeover",
                &self.server_no_context_takeover,
            )
            .field(
                "client_no_context_takeover",
                &self.client_no_context_takeover,
            )
            .field("server_max_window_bits", &self.server_max_window_bits)
            .field("client_max_window_bits", &self.client_max_window_bits)
            .field("compression_level", &self.level)
            .field("compress_if_bigger_than", &self.threshold)
            .field("compress_if", &self.predicate.is_some())
            .field("offer_fallback", &self.fallback)
            .finish()
    }
}

impl ExtensionFactory for PerMessageDeflate {
    fn name(&self) -> &str {
        NAME
    }

    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    fn offers(&self) -> Vec<ExtensionHeader> {
        self.client_offers()
            .into_iter()
            .map(Params::to_header)
            .collect()
    }

    fn accept(&self, offer: &ExtensionHeader) -> Option<(ExtensionHeader, Box<dyn Extension>)> {
        let (answer, agreement) = params::answer(&self.server_wants(), offer)?;
        tracing::debug!(?agreement, "permessage-deflate accepted");
        Some((answer.to_header(), self.extension(agreement)))
    }

    fn confirm(&self, answer: &ExtensionHeader) -> Result<Box<dyn Extension>, String> {
        let agreement = params::confirm(&self.client_wants(), &self.client_offers(), answer)?;
        tracing::debug!(?agreement, "permessage-deflate confirmed");
        Ok(self.extension(agreement))
    }
}
