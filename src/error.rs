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
    #[error("I/O error: {}", IoText(.0))]
    Io(#[from] std::io::Error),
    /// The URL could not be used to connect.
    #[error("invalid URL {}: {reason}", Quoted(.url))]
    InvalidUrl {
        /// The URL as given, with `***` for a password in it.
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
        /// How long the server asked the client to wait before trying
        /// again: its `Retry-After` header in seconds (RFC 9110 §10.2.3),
        /// commonly sent with 503 and 429. `None` without one, or with the
        /// HTTP-date form, which is not read. A
        /// [`Reconnecting`](crate::reconnect::Reconnecting) client waits at
        /// least this long.
        retry_after: Option<std::time::Duration>,
    },
    /// The proxy wants credentials, or did not accept the ones sent: an
    /// HTTP proxy answered `CONNECT` with 407, or a SOCKS5 proxy refused
    /// the client's authentication. Put them in the proxy's URL
    /// (`http://user:password@host:port`, percent-encoded) or give them
    /// with [`Proxy::basic_auth`](crate::Proxy::basic_auth).
    #[error(
        "the proxy at {proxy} wants credentials, or refused the ones sent: put them in the \
         proxy URL (http://user:password@host:port) or give them with Proxy::basic_auth"
    )]
    ProxyAuthenticationRequired {
        /// The proxy, as `scheme://host:port` (no credentials).
        proxy: String,
    },
    /// An HTTP proxy would not open a tunnel to the server: it answered
    /// `CONNECT` with `status` (not 2xx, nor 407). Commonly 403 (its rules
    /// forbid that server or port) or 502/504 (it could not reach the
    /// server). A SOCKS5 proxy's refusal is an [`Error::Io`] naming the
    /// proxy, of kind `ConnectionRefused`, `HostUnreachable`,
    /// `NetworkUnreachable` or `PermissionDenied` as it said.
    #[error("the proxy at {proxy} refused to open a tunnel to the server: HTTP {status}")]
    ProxyRefused {
        /// The proxy, as `scheme://host:port` (no credentials).
        proxy: String,
        /// The HTTP status code of its answer.
        status: u16,
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
    /// A room's backplane failed: it cannot be reached, or a reader fell
    /// behind the history it keeps and messages were lost to it (see
    /// `tandem::rooms`, natively). The text says which.
    #[error("backplane: {0}")]
    Backplane(String),
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

/// `text` in double quotes for an error message, escaped as `{:?}` escapes
/// it wherever an error message needs it (`"`, `\` and control
/// characters) and left as it is otherwise. `str`'s `Debug` would bring its
/// Unicode tables and slicing panics into a wasm build.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        f.write_char('"')?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' || c.is_control() {
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        f.write_char('"')
    }
}

/// An I/O error for a message: natively std's text (the OS error, or the
/// error kind's description). In the browser, where every I/O error tandem
/// makes carries a text of its own, that text, and no description of
/// kinds: std's is a table of some forty strings, 0.8 KB of the gzipped
/// package, which no error of the browser backend would use.
struct IoText<'a>(&'a std::io::Error);

impl std::fmt::Display for IoText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(target_arch = "wasm32")]
        return match self.0.get_ref() {
            Some(text) => std::fmt::Display::fmt(text, f),
            None => f.write_str("no detail"),
        };
        #[cfg(not(target_arch = "wasm32"))]
        std::fmt::Display::fmt(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Quoted;

    #[test]
    fn quoted_escapes_as_debug_does() {
        for text in ["chat", "a \"b\" c\\", "chat\r\nX-Evil: 1\t\u{1b}", "é, 😀"] {
            assert_eq!(Quoted(text).to_string(), format!("{text:?}"));
        }
    }
}
