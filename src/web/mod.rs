//! The browser backend (wasm32): the browser's `WebSocket` behind the same
//! [`Session`](crate::Session).
//!
//! The browser runs the protocol itself, so this backend has no engine: it
//! maps the `WebSocket`'s events onto the shared [`Link`](crate::link::Link)
//! and a small driver task moves the session's commands to the socket.
//!
//! - [`client`]: opens the `WebSocket` for the shared `ClientBuilder`.
//! - [`driver`]: the event handlers, the outgoing driver and the close-code
//!   mapping (scripts may only send 1000 and 3000–4999).
//! - [`timer`]: a `setTimeout` sleep, for backpressure, the connect timeout
//!   and the waits between reconnection attempts, and the clock they use.
//!
//! What differs from the native backend, and why:
//!
//! - **Headers**: browsers do not let scripts set WebSocket headers;
//!   [`ClientBuilder::header`](crate::ClientBuilder::header) is accepted and `connect` then fails with
//!   [`Error::Unsupported`].
//! - **Ping/pong**: the browser answers pings and never shows them; sending a
//!   ping or pong fails with [`Error::Unsupported`]. `ping_period`, `timeout`
//!   (other than bounding the opening handshake), `close_timeout` and
//!   `masking` have no effect.
//! - **Fragments and RSV bits**: the browser sends whole messages only, so a
//!   non-final frame, a continuation or a frame with RSV bits fails with
//!   [`Error::Unsupported`].
//! - **Close codes**: see [`driver::browser_close`].
//! - **Incoming backpressure**: a browser cannot be told to stop reading, so
//!   a message that arrives while the handler's queue is full
//!   (`incoming_queue` messages or `incoming_queue_bytes` bytes unread) ends
//!   the session with 1008 Policy Violation (sent to the server as 1000 with
//!   "1008" in front of the reason: see [`driver::browser_close`]) instead
//!   of growing the queue. A page that reads as messages come never sees it.
//! - **Outgoing backpressure**: the driver waits while the socket's
//!   `bufferedAmount` is over [`driver::HIGH_WATER_MARK`], so `send` waits
//!   once the outgoing queue is full, as natively.
//! - **Connection errors**: browsers report no reason for a failed
//!   connection (refused, HTTP error, no agreed subprotocol look the same);
//!   `connect` fails with [`Error::Io`] of kind `ConnectionRefused`.

pub(crate) mod client;
pub(crate) mod driver;
pub(crate) mod timer;

pub(crate) use client::{connect, AgreedExtensions};
pub(crate) use timer::{sleep, Instant};

/// A uniformly random fraction in `[0, 1)`, for jitter: JavaScript's
/// `Math.random()` (no seed to find, no `getrandom` backend to pick).
pub(crate) fn random_fraction() -> f64 {
    js_sys::Math::random()
}

/// Nothing, in the browser: everything runs on one thread there, and the
/// browser's handles are not `Send`. Natively it is `Send`, for tokio to
/// move tandem's futures between threads. Every type implements it; user
/// code never names it.
///
/// ```
/// fn natively_send<T: tandem::MaybeSend>(_: T) {}
/// natively_send(std::sync::Arc::new(1));
/// ```
pub trait MaybeSend {}

impl<T: ?Sized> MaybeSend for T {}

use crate::error::Error;
use crate::frame::{Frame, FrameType};
use crate::link::Link;

/// In the browser every frame goes through the link to the socket's
/// driver: gives the frame back.
pub(crate) fn try_send_direct(_link: &Link, frame: Frame) -> Result<(), Frame> {
    Err(frame)
}

/// Refuses, before queueing, frames that a browser cannot send: ping and
/// pong (the browser owns them), fragments, continuations and RSV bits (it
/// sends whole messages), and text frames whose payload is not UTF-8.
pub(crate) fn check_outgoing(frame: &Frame) -> Result<(), Error> {
    match frame.frame_type() {
        FrameType::Ping | FrameType::Pong => {
            return Err(Error::Unsupported("sending ping or pong from a browser"))
        }
        FrameType::Continuation => {
            return Err(Error::Unsupported(
                "sending continuation frames from a browser",
            ))
        }
        FrameType::Text if frame.read_text().is_none() => {
            return Err(Error::InvalidFrame(
                "text frame payload is not UTF-8".into(),
            ))
        }
        _ => {}
    }
    if !frame.is_fin() {
        return Err(Error::Unsupported("sending fragments from a browser"));
    }
    if !frame.rsv().is_empty() {
        return Err(Error::Unsupported("setting RSV bits from a browser"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
