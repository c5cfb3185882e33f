//! RFC 7692 §7.2: compressing and decompressing message payloads, and the
//! per-connection [`Extension`] that does it.

use std::fmt;
use std::sync::Arc;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::params::{Direction, MAX_WINDOW_BITS};
use crate::close::CloseCode;
use crate::error::Error;
use crate::extensions::Extension;
use crate::frame::{Frame, Rsv};

/// What a sync flush ends with, stripped by the sender and put back by the
/// receiver (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first output buffer of an inflate is at most this big; it then
/// doubles, by at most [`MAX_GROWTH`] at a time, never past the limit.
const FIRST_OUTPUT: usize = 4 << 10;
const MAX_GROWTH: usize = 1 << 20;

/// The smallest window zlib deflates with: it refuses 8 for raw deflate.
/// A 9-bit zlib compressor never refers further back than 512 − 262 = 250
/// bytes (`MAX_DIST` = window − `MIN_LOOKAHEAD`), so its output also fits a
/// peer's 8-bit window; and inflating with a bigger window than the
/// sender's is always correct.
pub(crate) const ZLIB_MIN_WINDOW_BITS: u8 = 9;

/// Decides per message whether to compress it (Ktor's `compressIf`).
pub(crate) type Predicate = Arc<dyn Fn(&Frame) -> bool + Send + Sync>;

/// Our outgoing direction: a raw DEFLATE compressor, created on the first
/// message and dropped after each one without context takeover.
pub(crate) struct Deflater {
    direction: Direction,
    level: Compression,
    /// Boxed: an idle connection does not carry its 144 bytes.
    state: Option<Box<Compress>>,
}

impl Deflater {
    pub(crate) fn new(direction: Direction, level: u32) -> Self {
        Self {
            direction,
            level: Compression::new(level),
            state: None,
        }
    }

    /// Whether it holds a compressor between messages.
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Compresses one message: DEFLATE with a sync flush, the trailing
    /// `00 00 ff ff` removed.
    pub(crate) fn compress(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        let bits = self.direction.window_bits.max(ZLIB_MIN_WINDOW_BITS);
        let level = self.level;
        let state = self
            .state
            .get_or_insert_with(|| Box::new(Compress::new_with_window_bits(level, false, bits)));
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let start = state.total_in();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let consumed = (state.total_in() - start) as usize;
            state
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Io(std::io::Error::other(format!("deflate: {e}"))))?;
            let consumed = (state.total_in() - start) as usize;
            // A flush is complete once it returns with room to spare.
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
        }
        if self.direction.no_context_takeover {
            self.state = None;
        }
        if !out.ends_with(&TAIL) {
            return Err(Error::Io(std::io::Error::other(
                "deflate: a sync flush that does not end with 00 00 ff ff",
            )));
        }
        out.truncate(out.len() - TAIL.len());
        Ok(out)
    }
}

/// Our incoming direction: a raw DEFLATE decompressor, created on the first
/// compressed message and dropped after each one when the peer does not
/// take over context.
pub(crate) struct Inflater {
    direction: Direction,
    /// Boxed: an idle connection does not carry its 152 bytes.
    state: Option<Box<Decompress>>,
    /// The biggest output buffer allocated so far (for the bomb tests).
    #[cfg(test)]
    pub(crate) peak_output: usize,
}

fn too_big() -> Error {
    Error::Protocol {
        code: CloseCode::TooBig,
        reason: "inflated message over the size limit".into(),
    }
}

fn corrupt(why: impl fmt::Display) -> Error {
    Error::Protocol {
        code: CloseCode::ProtocolError,
        reason: format!("invalid compressed data: {why}"),
    }
}

impl Inflater {
    pub(crate) fn new(direction: Direction) -> Self {
        Self {
            direction,
            state: None,
            #[cfg(test)]
            peak_output: 0,
        }
    }

    /// Whether it holds a decompressor between messages.
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Decompresses one message (`00 00 ff ff` appended), in bounded steps:
    /// fails with [`CloseCode::TooBig`] as soon as the output would pass
    /// `max_size`, having allocated at most `max_size + 1` bytes for it, and
    /// with [`CloseCode::ProtocolError`] on data that is not DEFLATE.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        max_size: Option<usize>,
    ) -> Result<Vec<u8>, Error> {
        let result = self.inflate(input, max_size);
        if self.direction.no_context_takeover || result.is_err() {
            self.state = None;
        }
        result
    }

    fn inflate(&mut self, input: &[u8], max_size: Option<usize>) -> Result<Vec<u8>, Error> {
        let bits = self
            .direction
            .window_bits
            .clamp(ZLIB_MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        let state = self
            .state
            .get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, bits)));
        // One byte past the limit tells "too big" from "exactly the limit".
        let cap = max_size.map_or(usize::MAX, |max| max.saturating_add(1));
        let mut out: Vec<u8> = Vec::with_capacity(
            input
                .len()
                .saturating_mul(2)
                .clamp(FIRST_OUTPUT.min(cap), cap.min(MAX_GROWTH)),
        );
        for part in [input, &TAIL[..]] {
            let mut pos = 0;
            loop {
                if out.len() == out.capacity() {
                    let room = cap - out.len();
                    if room == 0 {
                        return Err(too_big());
                    }
                    out.reserve_exact(out.capacity().clamp(FIRST_OUTPUT, MAX_GROWTH).min(room));
                }
                #[cfg(test)]
                {
                    self.peak_output = self.peak_output.max(out.capacity());
                }
                let (in_before, out_before) = (state.total_in(), out.len());
                let status = state
                    .decompress_vec(&part[pos..], &mut out, FlushDecompress::Sync)
                    .map_err(corrupt)?;
                let consumed = (state.total_in() - in_before) as usize;
                pos += consumed;
                if out.len() >= cap {
                    return Err(too_big());
                }
                if status == Status::StreamEnd {
                    // A final block (BFINAL) ends the DEFLATE stream: the
                    // next message starts a new one, with a fresh window.
                    // What follows it in the message is padding (RFC 7692
                    // §7.2.3.4 ends such a message with an extra 0x00).
                    state.reset(false);
                    return Ok(out);
                }
                if pos == part.len() && out.len() < out.capacity() {
                    break;
                }
                if consumed == 0 && out.len() == out_before {
                    return Err(corrupt("the decompressor made no progress"));
                }
            }
        }
        Ok(out)
    }
}

/// One connection's permessage-deflate: compresses what it sends, with RSV1
/// on the first frame, and inflates what arrives with RSV1.
pub(crate) struct DeflateExtension {
    pub(crate) deflater: Deflater,
    pub(crate) inflater: Inflater,
    pub(crate) threshold: usize,
    pub(crate) predicate: Option<Predicate>,
}

impl fmt::Debug for DeflateExtension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateExtension")
            .field("outgoing", &self.deflater.direction)
            .field("incoming", &self.inflater.direction)
            .field("compress_if_bigger_than", &self.threshold)
            .field("compress_if", &self.predicate.is_some())
            .finish()
    }
}

impl Extension for DeflateExtension {
    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    fn encode(&mut self, message: Frame) -> Result<Frame, Error> {
        let data = message.read_bytes();
        if message.rsv().contains(Rsv::RSV1)
            || data.len() <= self.threshold
            || self
                .predicate
                .as_ref()
                .is_some_and(|wants| !wants(&message))
        {
            return Ok(message);
        }
        let compressed = self.deflater.compress(data)?;
        Ok(Frame::new(message.frame_type(), compressed).with_rsv(message.rsv() | Rsv::RSV1))
    }

    fn decode(&mut self, message: Frame, max_size: Option<usize>) -> Result<Frame, Error> {
        if !message.rsv().contains(Rsv::RSV1) {
            return Ok(message);
        }
        let data = self.inflater.decompress(message.read_bytes(), max_size)?;
        let rsv = Rsv::from_bits(message.rsv().bits() & !Rsv::RSV1.bits());
        Ok(Frame::new(message.frame_type(), data).with_rsv(rsv))
    }
}
