//! The one error type of tandem.

use crate::close::{CloseCode, CloseReason};

/// What went wrong, with what a caller needs to act on it.
///
/// ```
/// use tandem::{CloseCode, Error};
///
/// let error = Error::Protocol { code: CloseCode::TooBig, reason: "message over 1 MiB".into() };
/// assert_eq!(error.close_code(), Some(CloseCode::TooBig));
/// assert!(error.to_string().contains("1009"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session is closed (or closing): nothing more can be sent.
    /// Carries the close reason once it is known.
    #[error("the connection is closed{}", .0.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    ConnectionClosed(Option<CloseReason>),
    /// The peer broke RFC 6455; the session was failed with `code`.
    #[error("protocol violation ({code}): {reason}")]
    Protocol {
        /// The close code the session was failed with (1002, 1007, 1009, …).
        code: CloseCode,
        /// What the peer did.
        reason: String,
    },
    /// A frame built by the caller cannot be sent as it is (for example a
    /// ping over 125 bytes, a close code that is reserved, or a Close
    /// reason that is not UTF-8). Nothing was sent; the session stays open.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// The outgoing queue is full (from `try_send`; `send` waits instead).
    #[error("the outgoing queue is full")]
    QueueFull,
    /// The network failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The URL could not be used to connect.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The server answered the opening handshake with something other than
    /// `101 Switching Protocols`.
    #[error("handshake refused with HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    HandshakeRefused {
        /// The HTTP status code.
        status: u16,
        /// The response body, as text, cut to 1 KiB.
        body: String,
    },
    /// The opening handshake failed: the server's answer broke RFC 6455
    /// (wrong accept key, a subprotocol or extension that was not offered,
    /// …), or the request a client was asked to send is not one (a
    /// subprotocol that is not a token, a header with CR or LF in it, …),
    /// in which case nothing was sent.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The [`WebSocketOptions`](crate::WebSocketOptions) cannot be used
    /// for this connection (for example `masking: Some(false)` on a client:
    /// RFC 6455 §5.1 makes a client mask every frame). Nothing was sent.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A value could not be encoded as a message (a typed send: see
    /// [`codec`](crate::codec)). Nothing was sent.
    #[error("the message could not be encoded: {0}")]
    Encode(String),
    /// A message received does not hold the type asked for (a typed
    /// receive: see [`codec`](crate::codec)); the session stays open, and
    /// the frame is here for the handler to look at.
    #[error("the message could not be decoded: {reason}")]
    Decode {
        /// The message as it arrived.
        frame: crate::Frame,
        /// Why it does not decode (the codec's own words).
        reason: String,
    },
    /// The operation does not exist on this target (for example sending a
    /// ping from a browser, where the browser owns ping/pong).
    #[error("{0} is not supported on this target")]
    Unsupported(&'static str),
}

impl Error {
    /// The close code that goes with this error, if any.
    ///
    /// ```
    /// use tandem::{CloseCode, CloseReason, Error};
    /// let closed = Error::ConnectionClosed(Some(CloseReason::new(CloseCode::GoingAway, "")));
    /// assert_eq!(closed.close_code(), Some(CloseCode::GoingAway));
    /// ```
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::ConnectionClosed(reason) => reason.as_ref().map(|r| r.code),
            Error::Protocol { code, .. } => Some(*code),
            _ => None,
        }
    }
}
