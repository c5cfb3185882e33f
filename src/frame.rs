//! Frames: what a [`Session`](crate::Session) sends and receives.
//!
//! In the default mode a session hands the handler whole messages as `Text`
//! or `Binary` frames (fragments reassembled, pings answered, close handled).
//! In raw mode ([`web_socket_raw`](crate::server::Routes::web_socket_raw)) the
//! handler sees every frame as it came off the wire, with its `fin` and RSV bits.

use bytes::Bytes;
use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use crate::close::{CloseCode, CloseReason};

/// The type of a frame, from its opcode.
///
/// ```
/// use tandem::{Frame, FrameType};
/// assert_eq!(Frame::text("hi").frame_type(), FrameType::Text);
/// assert!(FrameType::Ping.is_control());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// A continuation of a fragmented message (raw mode only).
    Continuation,
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
    /// Connection close, with an optional code and reason.
    Close,
    /// A ping; the peer answers with a pong carrying the same data.
    Ping,
    /// A pong, the answer to a ping (or an unsolicited heartbeat).
    Pong,
}

impl FrameType {
    /// The opcode of this frame type on the wire.
    ///
    /// ```
    /// use tandem::FrameType;
    /// assert_eq!(FrameType::Text.opcode(), 0x1);
    /// ```
    pub fn opcode(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// The frame type for an opcode, or `None` for a reserved opcode.
    ///
    /// ```
    /// use tandem::FrameType;
    /// assert_eq!(FrameType::from_opcode(0x9), Some(FrameType::Ping));
    /// assert_eq!(FrameType::from_opcode(0x3), None);
    /// ```
    pub fn from_opcode(opcode: u8) -> Option<Self> {
        Some(match opcode {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// Whether frames of this type are control frames (close, ping, pong).
    ///
    /// ```
    /// use tandem::FrameType;
    /// assert!(FrameType::Close.is_control());
    /// assert!(!FrameType::Binary.is_control());
    /// ```
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The three reserved bits of a frame header, owned by extensions.
///
/// ```
/// use tandem::Rsv;
/// let bits = Rsv::RSV1 | Rsv::RSV3;
/// assert!(bits.contains(Rsv::RSV1));
/// assert!(!bits.contains(Rsv::RSV2));
/// assert_eq!(bits.bits(), 0b101);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rsv(u8);

impl Rsv {
    /// No bit set.
    pub const NONE: Rsv = Rsv(0);
    /// RSV1, used by permessage-deflate.
    pub const RSV1: Rsv = Rsv(0b100);
    /// RSV2.
    pub const RSV2: Rsv = Rsv(0b010);
    /// RSV3.
    pub const RSV3: Rsv = Rsv(0b001);

    /// The bits as `0bRSV1_RSV2_RSV3`.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Bits from `0bRSV1_RSV2_RSV3`; higher bits are ignored.
    ///
    /// ```
    /// use tandem::Rsv;
    /// assert_eq!(Rsv::from_bits(0b100), Rsv::RSV1);
    /// ```
    pub fn from_bits(bits: u8) -> Self {
        Rsv(bits & 0b111)
    }

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Rsv) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Rsv {
    type Output = Rsv;
    fn bitor(self, rhs: Rsv) -> Rsv {
        Rsv(self.0 | rhs.0)
    }
}

impl BitOrAssign for Rsv {
    fn bitor_assign(&mut self, rhs: Rsv) {
        self.0 |= rhs.0;
    }
}

/// A WebSocket frame: its type, `fin` flag, RSV bits and payload.
///
/// Build one with [`Frame::text`], [`Frame::binary`], [`Frame::ping`],
/// [`Frame::pong`] or [`Frame::close`]; read it with [`Frame::read_text`] and
/// [`Frame::read_bytes`]. Strings and byte vectors convert into frames, so
/// `session.send("hello")` sends a text frame.
///
/// ```
/// use tandem::{Frame, FrameType};
///
/// let frame = Frame::text("Hi, Ktor!");
/// assert_eq!(frame.read_text(), Some("Hi, Ktor!"));
/// assert!(frame.is_fin());
///
/// let frame: Frame = vec![1u8, 2, 3].into();
/// assert_eq!(frame.frame_type(), FrameType::Binary);
/// assert_eq!(frame.read_bytes(), &[1, 2, 3]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    frame_type: FrameType,
    fin: bool,
    rsv: Rsv,
    payload: Bytes,
}

impl Frame {
    /// A frame of any type, final, with no RSV bit set.
    ///
    /// A Close built this way is checked when it is sent, as one built from
    /// a [`CloseReason`] is: a payload of 1 byte, a code that cannot go on
    /// the wire (1005, 1006, 999, 5000, …) or a reason that is not UTF-8
    /// fails the send with [`Error::InvalidFrame`](crate::Error::InvalidFrame).
    ///
    /// ```
    /// use tandem::{Frame, FrameType};
    /// let frame = Frame::new(FrameType::Binary, vec![0u8; 4]);
    /// assert_eq!(frame.read_bytes().len(), 4);
    /// ```
    pub fn new(frame_type: FrameType, payload: impl Into<Bytes>) -> Self {
        Self {
            frame_type,
            fin: true,
            rsv: Rsv::NONE,
            payload: payload.into(),
        }
    }

    /// A text frame.
    ///
    /// ```
    /// use tandem::Frame;
    /// assert_eq!(Frame::text("hello").read_text(), Some("hello"));
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(FrameType::Text, text.into())
    }

    /// A binary frame.
    ///
    /// ```
    /// use tandem::Frame;
    /// assert_eq!(Frame::binary(&b"\x00\x01"[..]).read_bytes(), b"\x00\x01");
    /// ```
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(FrameType::Binary, data)
    }

    /// A ping frame; its payload must be at most 125 bytes.
    ///
    /// ```
    /// use tandem::{Frame, FrameType};
    /// assert_eq!(Frame::ping("are you there").frame_type(), FrameType::Ping);
    /// ```
    pub fn ping(data: impl Into<Bytes>) -> Self {
        Self::new(FrameType::Ping, data)
    }

    /// A pong frame; its payload must be at most 125 bytes.
    ///
    /// ```
    /// use tandem::{Frame, FrameType};
    /// assert_eq!(Frame::pong("").frame_type(), FrameType::Pong);
    /// ```
    pub fn pong(data: impl Into<Bytes>) -> Self {
        Self::new(FrameType::Pong, data)
    }

    /// A close frame carrying `reason`; the message is cut to 123 bytes.
    ///
    /// ```
    /// use tandem::{CloseCode, CloseReason, Frame};
    /// let frame = Frame::close(CloseReason::new(CloseCode::Normal, "bye"));
    /// assert_eq!(frame.read_close_reason().unwrap().message, "bye");
    /// ```
    pub fn close(reason: CloseReason) -> Self {
        let message = reason.wire_message();
        let mut payload = Vec::with_capacity(2 + message.len());
        payload.extend_from_slice(&u16::from(reason.code).to_be_bytes());
        payload.extend_from_slice(message.as_bytes());
        Self::new(FrameType::Close, payload)
    }

    /// A close frame with no code and no reason.
    ///
    /// ```
    /// use tandem::Frame;
    /// assert_eq!(Frame::close_empty().read_close_reason(), None);
    /// ```
    pub fn close_empty() -> Self {
        Self::new(FrameType::Close, Bytes::new())
    }

    /// This frame with its `fin` flag set to `fin` (raw mode: send a fragment).
    ///
    /// ```
    /// use tandem::{Frame, FrameType};
    /// let first = Frame::text("Hel").with_fin(false);
    /// let last = Frame::new(FrameType::Continuation, "lo");
    /// assert!(!first.is_fin() && last.is_fin());
    /// ```
    pub fn with_fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// This frame with its RSV bits set to `rsv` (raw mode or extensions).
    ///
    /// ```
    /// use tandem::{Frame, Rsv};
    /// assert_eq!(Frame::binary(vec![]).with_rsv(Rsv::RSV1).rsv(), Rsv::RSV1);
    /// ```
    pub fn with_rsv(mut self, rsv: Rsv) -> Self {
        self.rsv = rsv;
        self
    }

    /// The frame's type.
    pub fn frame_type(&self) -> FrameType {
        self.frame_type
    }

    /// Whether this is the final frame of its message.
    pub fn is_fin(&self) -> bool {
        self.fin
    }

    /// The frame's RSV bits.
    pub fn rsv(&self) -> Rsv {
        self.rsv
    }

    /// The text of a text frame, or `None` for other frame types and for a
    /// raw-mode fragment that is not valid UTF-8 on its own.
    ///
    /// ```
    /// use tandem::Frame;
    /// assert_eq!(Frame::text("hi").read_text(), Some("hi"));
    /// assert_eq!(Frame::binary(&b"hi"[..]).read_text(), None);
    /// ```
    pub fn read_text(&self) -> Option<&str> {
        match self.frame_type {
            FrameType::Text => std::str::from_utf8(&self.payload).ok(),
            _ => None,
        }
    }

    /// The value this message holds as JSON; [`Error::Decode`](crate::Error::Decode)
    /// when it holds none. See [`codec`](crate::codec).
    ///
    /// ```
    /// use tandem::Frame;
    /// let frame = Frame::text(r#"{"x": 1, "y": 2}"#);
    /// let point: std::collections::HashMap<String, i32> = frame.json().unwrap();
    /// assert_eq!(point["y"], 2);
    /// ```
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        self.decode::<crate::codec::Json, T>()
    }

    /// The value this message holds in codec `C`'s format.
    ///
    /// ```
    /// use tandem::{codec::Json, Frame};
    /// let numbers: Vec<u8> = Frame::text("[1, 2]").decode::<Json, _>().unwrap();
    /// assert_eq!(numbers, [1, 2]);
    /// ```
    #[cfg(feature = "json")]
    pub fn decode<C: crate::codec::Codec, T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<T, crate::Error> {
        C::decode(self)
    }

    /// The payload bytes, whatever the frame type.
    ///
    /// ```
    /// use tandem::Frame;
    /// assert_eq!(Frame::text("hi").read_bytes(), b"hi");
    /// ```
    pub fn read_bytes(&self) -> &[u8] {
        &self.payload
    }

    /// The payload as shared bytes (cheap to clone).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload, consuming the frame.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// The code and reason of a close frame; `None` for other frames, for an
    /// empty close frame and for a malformed close payload.
    ///
    /// ```
    /// use tandem::{CloseCode, CloseReason, Frame};
    /// let frame = Frame::close(CloseReason::new(CloseCode::TooBig, "limit"));
    /// assert_eq!(frame.read_close_reason(), Some(CloseReason::new(CloseCode::TooBig, "limit")));
    /// ```
    pub fn read_close_reason(&self) -> Option<CloseReason> {
        if self.frame_type != FrameType::Close || self.payload.len() < 2 {
            return None;
        }
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        let message = std::str::from_utf8(&self.payload[2..]).ok()?;
        Some(CloseReason::new(CloseCode::from(code), message))
    }

    /// [`Error::InvalidFrame`](crate::Error::InvalidFrame) for a frame that
    /// RFC 6455 forbids on the wire: a control frame over 125 bytes or with
    /// `fin` unset (§5.5), or a Close whose payload a peer must refuse (§5.5.1, §7.4): 1 byte long,
    /// a code that cannot be sent, or a reason that is not UTF-8. A Close
    /// built by hand with [`Frame::new`] is held to the same rules as one
    /// built from a [`CloseReason`].
    pub(crate) fn check_wire(&self) -> Result<(), crate::Error> {
        let len = self.payload.len();
        if self.frame_type.is_control() && len > 125 {
            return Err(crate::Error::InvalidFrame(format!(
                "{:?} payload of {len} bytes; control frames carry at most 125",
                self.frame_type
            )));
        }
        if self.frame_type.is_control() && !self.fin {
            return Err(crate::Error::InvalidFrame(format!(
                "{:?} frame with fin unset; control frames cannot be fragmented (RFC 6455 §5.5)",
                self.frame_type
            )));
        }
        if self.frame_type == FrameType::Close {
            self.check_close_payload()?;
        }
        Ok(())
    }

    /// A Close payload is empty, or a sendable code and a UTF-8 reason.
    fn check_close_payload(&self) -> Result<(), crate::Error> {
        match &self.payload[..] {
            [] => Ok(()),
            [_] => Err(crate::Error::InvalidFrame(
                "close payload of 1 byte; a close code takes 2".into(),
            )),
            [high, low, reason @ ..] => {
                CloseCode::from(u16::from_be_bytes([*high, *low])).check_sendable()?;
                match std::str::from_utf8(reason) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(crate::Error::InvalidFrame(
                        "close reason is not valid UTF-8".into(),
                    )),
                }
            }
        }
    }

    pub(crate) fn from_parts(frame_type: FrameType, fin: bool, rsv: Rsv, payload: Bytes) -> Self {
        Self {
            frame_type,
            fin,
            rsv,
            payload,
        }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Frame");
        s.field("type", &self.frame_type).field("fin", &self.fin);
        if !self.rsv.is_empty() {
            s.field("rsv", &self.rsv);
        }
        match self.read_text() {
            Some(text) if text.len() <= 64 => s.field("text", &text),
            _ => s.field("len", &self.payload.len()),
        };
        s.finish()
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Frame::text(text)
    }
}

impl From<&str> for Frame {
    fn from(text: &str) -> Self {
        Frame::text(text)
    }
}

impl From<Vec<u8>> for Frame {
    fn from(data: Vec<u8>) -> Self {
        Frame::binary(data)
    }
}

impl From<&[u8]> for Frame {
    fn from(data: &[u8]) -> Self {
        Frame::binary(Bytes::copy_from_slice(data))
    }
}

impl From<Bytes> for Frame {
    fn from(data: Bytes) -> Self {
        Frame::binary(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frame_with_short_payload_has_no_reason() {
        assert_eq!(
            Frame::new(FrameType::Close, vec![3u8]).read_close_reason(),
            None
        );
    }

    #[test]
    fn close_frames_built_by_hand_are_checked_like_close_reasons() {
        let close = |payload: &[u8]| Frame::new(FrameType::Close, payload.to_vec()).check_wire();
        for (payload, why) in [
            (&b"\x03"[..], "1 byte"),
            (b"\x03\xed", "1005"),
            (b"\x03\xee", "1006"),
            (b"\x03\xe7", "999"),
            (b"\x13\x88", "5000"),
            (b"\x03\xe8\xff\xfe", "UTF-8"),
            (b"\x03\xed\xff", "1005"),
        ] {
            match close(payload) {
                Err(crate::Error::InvalidFrame(message)) => {
                    assert!(message.contains(why), "{payload:?}: {message}")
                }
                other => panic!("{payload:?}: {other:?}"),
            }
        }
        for payload in [&b""[..], b"\x03\xe8", b"\x0f\xa0caf\xc3\xa9"] {
            assert!(close(payload).is_ok(), "{payload:?}");
        }
        let reason = CloseReason::new(CloseCode::Other(4000), "café");
        assert!(Frame::close(reason).check_wire().is_ok());
    }

    #[test]
    fn opcodes_round_trip() {
        for opcode in 0..16u8 {
            if let Some(t) = FrameType::from_opcode(opcode) {
                assert_eq!(t.opcode(), opcode);
            }
        }
    }
}
