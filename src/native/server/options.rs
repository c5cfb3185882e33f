//! [`ServerOptions`]: the limits and policies of the HTTP side of a server.

use std::time::Duration;

use super::OriginPolicy;

/// Limits and policies of the HTTP side of a [`Server`](super::Server):
/// what it accepts before a connection becomes a WebSocket session, how
/// many connections it holds at once, and which browser origins may open a
/// session.
///
/// Every field has a default that keeps a public server safe; set them with
/// [`Server::server_options`](super::Server::server_options) or one at a
/// time with the builder methods of the same names.
/// The largest values mean no limit: `Duration::MAX` (or any timeout of a
/// century or more) never times out, `usize::MAX` never refuses.
///
/// ```
/// use std::time::Duration;
/// use tandem::server::{OriginPolicy, ServerOptions};
///
/// let options = ServerOptions {
///     max_connections: Some(1_000),
///     origins: OriginPolicy::SameHostOr(vec!["https://chat.example".into()]),
///     ..ServerOptions::default()
/// };
/// assert_eq!(options.handshake_timeout, Duration::from_secs(10));
/// assert_eq!(options.http_idle_timeout, Duration::from_secs(30));
/// assert_eq!(options.max_connections_per_ip, None);
/// assert_eq!(options.max_request_head, 16 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The largest request head (request line and headers) accepted, in
    /// bytes; a bigger one is answered with 431 before it reaches a route.
    /// Default 16 KiB. (hyper buffers at least 8 KiB of a head; the limit is
    /// checked exactly on the parsed head.)
    pub max_request_head: usize,
    /// How long a client may take to send a whole request head, and how long
    /// an accepted upgrade may take to complete. A client that trickles its
    /// request (slowloris), or connects and says nothing, is dropped after
    /// this long; so is a keep-alive connection whose next request does not
    /// come. Default 10 s.
    pub handshake_timeout: Duration,
    /// The longest a plain HTTP connection may wait on its client with no
    /// byte moving either way: a client that stops reading a response (a
    /// large file requested and never read), or a keep-alive connection
    /// that sends nothing, is dropped after this long. (An idle keep-alive
    /// connection is also bounded by `handshake_timeout`, the time to send
    /// its next request head: the shorter of the two ends it.) WebSocket
    /// sessions are not subject to it: they have
    /// [`WebSocketOptions::timeout`](crate::WebSocketOptions::timeout) and
    /// the ping period. Default 30 s.
    pub http_idle_timeout: Duration,
    /// The most connections open at once, of every kind: TLS handshakes,
    /// plain HTTP (static files, keep-alive), upgrades and WebSocket
    /// sessions. It is checked as a socket is accepted, before any TLS
    /// handshake; a socket over it is answered on plain TCP with
    /// `503 Service Unavailable`, `Retry-After` and `Connection: close`, over
    /// TLS closed at once, and open connections are untouched (at most 64
    /// refused connections are answered at a time, each for up to a second;
    /// past that they are closed without an answer). An upgraded connection
    /// keeps the place it had. Default 10 000; `None` means no cap.
    pub max_connections: Option<usize>,
    /// The most connections open at once from one client IP address,
    /// counted and refused as `max_connections` is. Clients behind one NAT
    /// or proxy share an address. Default `None`: no cap per address.
    pub max_connections_per_ip: Option<usize>,
    /// Which browser pages may open a session (against cross-site WebSocket
    /// hijacking). Default [`OriginPolicy::SameHostOr`] with no origin
    /// listed: the server's own pages (an `Origin` naming the host the
    /// request was sent to); an upgrade from another site's page, or with
    /// `Origin: null`, gets 403. Requests without `Origin` (not from a
    /// browser) are accepted under every policy.
    pub origins: OriginPolicy,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_request_head: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(30),
            max_connections: Some(10_000),
            max_connections_per_ip: None,
            origins: OriginPolicy::default(),
        }
    }
}
