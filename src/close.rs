//! Close codes and close reasons (RFC 6455 §7.4), named as Ktor names them.

use std::fmt;

/// A WebSocket close status code.
///
/// The named variants are the RFC 6455 codes under the names Ktor gives them;
/// [`CloseCode::Other`] carries any other code, typically an application code in
/// `3000..=4999`.
///
/// ```
/// use tandem::CloseCode;
///
/// assert_eq!(u16::from(CloseCode::Normal), 1000);
/// assert_eq!(CloseCode::from(1009), CloseCode::TooBig);
/// assert_eq!(CloseCode::from(4000), CloseCode::Other(4000));
/// assert!(CloseCode::Other(4000).is_sendable());
/// assert!(!CloseCode::ClosedAbnormally.is_sendable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: the purpose for which the connection was established was fulfilled.
    Normal,
    /// 1001: an endpoint is going away (server shutdown, page navigated away).
    GoingAway,
    /// 1002: the peer violated the protocol.
    ProtocolError,
    /// 1003: the endpoint received a type of data it cannot accept.
    CannotAccept,
    /// 1006: the connection ended without a close handshake. Never sent on the wire.
    ClosedAbnormally,
    /// 1007: a message's data was not consistent with its type (invalid UTF-8 text).
    NotConsistent,
    /// 1008: a message violated the endpoint's policy.
    ViolatedPolicy,
    /// 1009: a frame or message was too big to process.
    TooBig,
    /// 1010: the client expected the server to negotiate an extension it did not.
    NoExtension,
    /// 1011: the server hit an unexpected condition (a handler failed).
    InternalError,
    /// 1012: the service is restarting.
    ServiceRestart,
    /// 1013: the service is overloaded; try again later.
    TryAgainLater,
    /// Any other code, for example an application code in `3000..=4999`.
    Other(u16),
}

impl CloseCode {
    /// Whether this code may appear in a Close frame on the wire (RFC 6455 §7.4).
    ///
    /// 1005, 1006 and 1015 are reserved for local use and codes below 1000,
    /// unassigned codes in 1000–2999 and codes of 5000 and above are invalid.
    ///
    /// ```
    /// use tandem::CloseCode;
    /// assert!(CloseCode::Normal.is_sendable());
    /// assert!(!CloseCode::from(1005).is_sendable());
    /// assert!(!CloseCode::from(999).is_sendable());
    /// assert!(CloseCode::from(3000).is_sendable());
    /// ```
    pub fn is_sendable(self) -> bool {
        matches!(u16::from(self), 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether a session that ended with this code ended in an error (the
    /// `onError` of Ktor's guide and the browser's `error` event) rather
    /// than as agreed (`onClose`). Only 1000 (done), 1001 (going away) and
    /// 1005 (a Close with no code) are not errors, as in Python's
    /// `websockets` (`ConnectionClosedOK`); an application code
    /// (3000–4999) counts as an error, since tandem cannot know what it
    /// means.
    ///
    /// ```
    /// use tandem::CloseCode;
    /// assert!(!CloseCode::Normal.is_error());
    /// assert!(!CloseCode::GoingAway.is_error());
    /// assert!(CloseCode::ClosedAbnormally.is_error()); // the peer vanished
    /// assert!(CloseCode::InternalError.is_error()); // a handler failed
    /// ```
    pub fn is_error(self) -> bool {
        !matches!(u16::from(self), 1000 | 1001 | 1005)
    }
}

impl CloseCode {
    /// [`Error::InvalidFrame`](crate::Error::InvalidFrame) unless this code
    /// may go on the wire.
    pub(crate) fn check_sendable(self) -> Result<(), crate::Error> {
        if self.is_sendable() {
            Ok(())
        } else {
            Err(crate::Error::InvalidFrame(format!(
                "close code {self} cannot be sent on the wire"
            )))
        }
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        match code {
            1000 => Self::Normal,
            1001 => Self::GoingAway,
            1002 => Self::ProtocolError,
            1003 => Self::CannotAccept,
            1006 => Self::ClosedAbnormally,
            1007 => Self::NotConsistent,
            1008 => Self::ViolatedPolicy,
            1009 => Self::TooBig,
            1010 => Self::NoExtension,
            1011 => Self::InternalError,
            1012 => Self::ServiceRestart,
            1013 => Self::TryAgainLater,
            other => Self::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        match code {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::CannotAccept => 1003,
            CloseCode::ClosedAbnormally => 1006,
            CloseCode::NotConsistent => 1007,
            CloseCode::ViolatedPolicy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::NoExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::Other(code) => code,
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", u16::from(*self))
    }
}

/// Why a connection closed: a code and a human-readable message.
///
/// ```
/// use tandem::{CloseCode, CloseReason};
///
/// let reason = CloseReason::new(CloseCode::Normal, "Client said BYE");
/// assert_eq!(reason.code, CloseCode::Normal);
/// assert_eq!(reason.to_string(), "1000 Client said BYE");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The close code.
    pub code: CloseCode,
    /// The reason text; at most 123 bytes go on the wire.
    pub message: String,
}

impl CloseReason {
    /// The most bytes of reason text a Close frame can carry (125 minus the code).
    pub const MAX_MESSAGE_LEN: usize = 123;

    /// A close reason from a code and a message.
    ///
    /// ```
    /// use tandem::{CloseCode, CloseReason};
    /// let reason = CloseReason::new(CloseCode::Other(4001), "room closed");
    /// assert_eq!(u16::from(reason.code), 4001);
    /// ```
    pub fn new(code: impl Into<CloseCode>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `1000 Normal` with an empty message.
    ///
    /// ```
    /// use tandem::{CloseCode, CloseReason};
    /// assert_eq!(CloseReason::normal().code, CloseCode::Normal);
    /// ```
    pub fn normal() -> Self {
        Self::new(CloseCode::Normal, "")
    }

    /// The message cut to at most [`Self::MAX_MESSAGE_LEN`] bytes on a character boundary.
    pub(crate) fn wire_message(&self) -> &str {
        // `get` rather than indexing: no slicing panic (and its message
        // formatting) in a wasm build. `end` reaches 0, a char boundary.
        let mut end = self.message.len().min(Self::MAX_MESSAGE_LEN);
        loop {
            if let Some(message) = self.message.get(..end) {
                return message;
            }
            end -= 1;
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_round_trips() {
        for code in [
            1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
        ] {
            let named = CloseCode::from(code);
            assert!(!matches!(named, CloseCode::Other(_)), "{code} has a name");
            assert_eq!(u16::from(named), code);
        }
    }

    #[test]
    fn reserved_and_out_of_range_codes_are_not_sendable() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!CloseCode::from(code).is_sendable(), "{code}");
        }
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(CloseCode::from(code).is_sendable(), "{code}");
        }
    }

    #[test]
    fn wire_message_is_cut_on_a_char_boundary() {
        let reason = CloseReason::new(CloseCode::Normal, "é".repeat(100));
        assert_eq!(reason.wire_message().len(), 122);
    }
}
