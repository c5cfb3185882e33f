//! A fragmented message being put back together (default mode): its
//! frames' payloads in order, and its text checked for UTF-8 as it arrives,
//! so that an invalid message fails at the first bad byte instead of after
//! the last frame.

use bytes::{Bytes, BytesMut};

use super::utf8::Utf8Validator;
use crate::frame::{Frame, FrameType, Rsv};

#[derive(Debug)]
pub(super) struct Message {
    frame_type: FrameType,
    rsv: Rsv,
    /// The payloads of the frames before the last.
    data: BytesMut,
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

impl Message {
    /// The message that a first frame of `frame_type` (text or binary) with
    /// `rsv` starts; its text is checked as it comes when `check_utf8`.
    pub(super) fn start(frame_type: FrameType, rsv: Rsv, check_utf8: bool) -> Self {
        Self {
            frame_type,
            rsv,
            data: BytesMut::new(),
            utf8: (frame_type == FrameType::Text && check_utf8).then(Utf8Validator::new),
        }
    }

    /// How many payload bytes the frames before the last one brought.
    pub(super) fn len(&self) -> usize {
        self.data.len()
    }

    /// The UTF-8 check that each arriving payload byte goes through, if
    /// this message's text is checked as it comes.
    pub(super) fn validator(&mut self) -> Option<&mut Utf8Validator> {
        self.utf8.as_mut()
    }

    /// Adds a frame that is not the last.
    pub(super) fn push(&mut self, payload: &[u8]) {
        self.data.extend_from_slice(payload);
    }

    /// The whole message, with its last frame's payload: that payload
    /// itself when the message had one frame, with no copy.
    pub(super) fn finish(self, last: Bytes) -> Result<Reassembled, TruncatedText> {
        if self.utf8.as_ref().is_some_and(|v| v.finish().is_err()) {
            return Err(TruncatedText);
        }
        let data = if self.data.is_empty() {
            last
        } else {
            let mut data = self.data;
            data.extend_from_slice(&last);
            data.freeze()
        };
        Ok(Reassembled {
            frame: Frame::from_parts(self.frame_type, true, self.rsv, data),
            utf8_checked: self.utf8.is_some(),
        })
    }
}
