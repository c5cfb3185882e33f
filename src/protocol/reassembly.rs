//! A fragmented message being put back together (default mode): its frames'
//! payloads in order, and the UTF-8 check of its text parked between frames
//! (the frame being received carries it, so that an invalid message fails at
//! the first bad byte instead of after the last frame).
//!
//! Most messages come in one frame: those never open a record here, and the
//! message is the frame's own payload, so receiving one allocates nothing
//! beyond that payload.

use bytes::{Bytes, BytesMut};

use super::utf8::Utf8Validator;
use crate::frame::{Frame, FrameType, Rsv};

#[derive(Debug, Default)]
pub(super) struct Reassembly {
    /// Boxed: a connection between messages, or receiving single-frame
    /// ones, does not carry it.
    fragments: Option<Box<Fragments>>,
}

/// A message whose first frame was not its last.
#[derive(Debug)]
struct Fragments {
    frame_type: FrameType,
    rsv: Rsv,
    /// The payloads of the frames received so far.
    data: BytesMut,
    /// The check of its text, between two of its frames.
    utf8: Option<Utf8Validator>,
}

/// A whole message, as the frames carried it.
pub(super) struct Reassembled {
    pub(super) frame: Frame,
    /// Whether its text was checked for UTF-8 on the way in: not when an
    /// extension owns its payload, which is checked once decoded.
    pub(super) utf8_checked: bool,
}

/// A text message that ends inside a character.
pub(super) struct TruncatedText;

impl Reassembly {
    /// Whether a fragmented message is open, so that the next data frame
    /// must continue it.
    pub(super) fn is_fragmented(&self) -> bool {
        self.fragments.is_some()
    }

    /// How many payload bytes the message's frames so far brought.
    pub(super) fn len(&self) -> usize {
        self.fragments.as_ref().map_or(0, |f| f.data.len())
    }

    /// The text check, handed to a continuation frame as it starts.
    pub(super) fn resume_check(&mut self) -> Option<Utf8Validator> {
        self.fragments.as_mut().and_then(|f| f.utf8.take())
    }

    /// Adds a frame that is not the last, with the text check as that frame
    /// left it. The first such frame opens the message with its type and
    /// RSV bits.
    pub(super) fn push(
        &mut self,
        frame_type: FrameType,
        rsv: Rsv,
        payload: &[u8],
        utf8: Option<Utf8Validator>,
    ) {
        let fragments = self.fragments.get_or_insert_with(|| {
            Box::new(Fragments {
                frame_type,
                rsv,
                data: BytesMut::new(),
                utf8: None,
            })
        });
        fragments.data.extend_from_slice(payload);
        fragments.utf8 = utf8;
    }

    /// The whole message, given its last frame's type, RSV bits, text check
    /// and payload (type and bits count only for a single-frame message,
    /// whose payload is the message itself, with no copy).
    pub(super) fn finish(
        &mut self,
        frame_type: FrameType,
        rsv: Rsv,
        utf8: Option<Utf8Validator>,
        last: Bytes,
    ) -> Result<Reassembled, TruncatedText> {
        let fragments = self.fragments.take();
        if utf8.as_ref().is_some_and(|v| v.finish().is_err()) {
            return Err(TruncatedText);
        }
        let frame = match fragments {
            None => Frame::from_parts(frame_type, true, rsv, last),
            Some(fragments) => {
                let Fragments {
                    frame_type,
                    rsv,
                    mut data,
                    ..
                } = *fragments;
                let data = if data.is_empty() {
                    last
                } else {
                    data.extend_from_slice(&last);
                    data.freeze()
                };
                Frame::from_parts(frame_type, true, rsv, data)
            }
        };
        Ok(Reassembled {
            frame,
            utf8_checked: utf8.is_some(),
        })
    }

    /// Forgets the message being received.
    pub(super) fn clear(&mut self) {
        self.fragments = None;
    }
}
