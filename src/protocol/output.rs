//! Bytes waiting to be written, as a queue of chunks.
//!
//! Small frames are copied into one growing buffer so that many of them leave
//! in one write. A large unmasked payload is queued as its own chunk without
//! a copy, and so is a frame encoded once for many sessions
//! ([`EncodedFrame`]): a broadcast shares one allocation among all recipients.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use super::header::FrameHeader;
use super::mask::apply_mask;
use crate::frame::{Frame, FrameType, Rsv};

/// Payloads at least this big are queued by reference instead of copied.
const ZERO_COPY_THRESHOLD: usize = 2048;

#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Chunks that go out before `tail`.
    chunks: VecDeque<Bytes>,
    /// The buffer small frames are appended to.
    tail: BytesMut,
    len: usize,
}

impl Output {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives back the batch buffer's memory when nothing waits in it.
    pub(crate) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.chunks = VecDeque::new();
            self.tail = BytesMut::new();
        }
    }

    /// Appends a frame: its header, then its payload, masked with the
    /// header's key if it has one.
    pub(crate) fn push_frame(&mut self, header: &FrameHeader, payload: &Bytes) {
        header.encode(&mut self.tail);
        match header.mask {
            Some(key) => {
                let start = self.tail.len();
                self.tail.extend_from_slice(payload);
                apply_mask(&mut self.tail[start..], key, 0);
            }
            None if payload.len() >= ZERO_COPY_THRESHOLD => {
                self.chunks.push_back(self.tail.split().freeze());
                self.chunks.push_back(payload.clone());
            }
            None => self.tail.extend_from_slice(payload),
        }
        self.len += header.encoded_len() + payload.len();
    }

    /// Appends a frame that was encoded once for many connections: its
    /// bytes are queued by reference, never copied.
    // The browser encodes every frame itself.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn push_encoded(&mut self, wire: Bytes) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.len += wire.len();
        self.chunks.push_back(wire);
    }

    /// Fills `dst` with the pending bytes in order; returns how many slices it used.
    pub(crate) fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let pieces = self
            .chunks
            .iter()
            .map(|c| &c[..])
            .chain(std::iter::once(&self.tail[..]));
        let mut n = 0;
        for piece in pieces.filter(|p| !p.is_empty()) {
            if n == dst.len() {
                break;
            }
            dst[n] = IoSlice::new(piece);
            n += 1;
        }
        n
    }

    /// Drops the first `n` pending bytes (they were written).
    pub(crate) fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(chunk) if chunk.len() <= n => {
                    n -= chunk.len();
                    self.chunks.pop_front();
                }
                Some(chunk) => {
                    chunk.advance(n);
                    return;
                }
                None if n == self.tail.len() => {
                    // All of it written: the next frame is encoded at the
                    // buffer's start, with no reserve to move it back there.
                    self.tail.clear();
                    break;
                }
                None => {
                    self.tail.advance(n);
                    return;
                }
            }
        }
        if self.len == 0 && self.tail.capacity() > 64 * 1024 {
            // Do not keep a burst's buffer for the life of an idle connection.
            self.tail = BytesMut::new();
        }
    }
}

/// A frame encoded once, as a server sends it (unmasked), to be written by
/// many connections: a [`Hub`](crate::hub::Hub) broadcast.
///
/// The header and payload live in one shared allocation; each connection
/// holds a reference count and writes those bytes as they are. A connection
/// that has to encode the frame itself (a client, which masks, or a session
/// whose extensions transform messages) gets the frame back with
/// [`EncodedFrame::into_frame`].
#[derive(Debug, Clone)]
pub(crate) struct EncodedFrame {
    wire: Bytes,
    header_len: u8,
    frame_type: FrameType,
    fin: bool,
    rsv: Rsv,
}

impl EncodedFrame {
    pub(crate) fn new(frame: &Frame) -> Self {
        let header = FrameHeader {
            fin: frame.is_fin(),
            rsv: frame.rsv(),
            opcode: frame.frame_type().opcode(),
            mask: None,
            payload_len: frame.payload().len() as u64,
        };
        let header_len = header.encoded_len();
        let mut wire = BytesMut::with_capacity(header_len + frame.payload().len());
        header.encode(&mut wire);
        wire.extend_from_slice(frame.payload());
        Self {
            wire: wire.freeze(),
            // At most 10 bytes: an unmasked header.
            header_len: header_len as u8,
            frame_type: frame.frame_type(),
            fin: frame.is_fin(),
            rsv: frame.rsv(),
        }
    }

    pub(crate) fn frame_type(&self) -> FrameType {
        self.frame_type
    }

    pub(crate) fn rsv(&self) -> Rsv {
        self.rsv
    }

    /// How many bytes go on the wire: header and payload.
    pub(crate) fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// The bytes on the wire: header, then payload.
    #[cfg(test)]
    pub(crate) fn wire(&self) -> &Bytes {
        &self.wire
    }

    // The browser encodes every frame itself.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn into_wire(self) -> Bytes {
        self.wire
    }

    /// The frame itself, its payload still shared.
    pub(crate) fn into_frame(self) -> Frame {
        let payload = self.wire.slice(usize::from(self.header_len)..);
        Frame::from_parts(self.frame_type, self.fin, self.rsv, payload)
    }
}
