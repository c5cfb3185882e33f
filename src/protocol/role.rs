//! Client and server: where RFC 6455 treats the two ends differently.

/// Which end of the connection the engine plays.
///
/// The roles differ only in data: who masks, which masking is required of
/// the peer, and who closes the TCP connection first (RFC 6455 §5.1, §7.1.1).
///
/// ```
/// use tandem::protocol::Role;
/// assert!(Role::Client.masks_by_default());
/// assert!(Role::Server.closes_transport_first());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection; masks what it sends.
    Client,
    /// The end that accepted the connection; sends unmasked frames.
    Server,
}

impl Role {
    /// Whether this end masks outgoing frames unless told otherwise.
    pub fn masks_by_default(self) -> bool {
        self == Role::Client
    }

    /// Whether frames from the peer must be masked (servers demand it).
    pub fn requires_masked_input(self) -> bool {
        self == Role::Server
    }

    /// Whether frames from the peer must be unmasked (clients demand it).
    pub fn requires_unmasked_input(self) -> bool {
        self == Role::Client
    }

    /// Whether this end closes the transport after the close handshake
    /// instead of waiting for the peer to (the server, RFC 6455 §7.1.1).
    pub fn closes_transport_first(self) -> bool {
        self == Role::Server
    }
}
