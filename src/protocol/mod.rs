//! The sans-I/O protocol core: RFC 6455 with no socket and no clock.
//!
//! [`Protocol`] is the whole state machine after the opening handshake: it is
//! fed bytes, yields frames, and queues bytes to write. [`handshake`] holds
//! the opening handshake as pure functions. Nothing here knows tokio, hyper
//! or the browser; time comes in as an argument. The native driver moves
//! bytes between a socket and this core; tests and fuzzers drive it directly.
//!
//! ```
//! use std::time::Instant;
//! use tandem::protocol::{Config, Protocol, Role};
//! use tandem::{CloseCode, CloseReason, WebSocketOptions};
//!
//! let now = Instant::now();
//! let options = WebSocketOptions::default();
//! let mut client = Protocol::new(Role::Client, Config::new(Role::Client, &options), now);
//! let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
//!
//! client.close(CloseReason::new(CloseCode::Normal, "bye"), now).unwrap();
//! server.receive_data(&client.output_bytes());
//! assert_eq!(server.poll_event(now), None); // a Close is answered, not returned,
//! server.apply_deferred_close(now); // once the caller handled what came before
//! client.receive_data(&server.output_bytes());
//! client.poll_event(now);
//! assert_eq!(client.close_reason().map(|r| r.code), Some(CloseCode::Normal));
//! ```

mod engine;
pub mod handshake;
mod header;
mod mask;
mod output;
mod role;
mod utf8;

pub use engine::{Config, Protocol, CONTROL_OUTPUT_LIMIT};
pub use header::{FrameHeader, LengthOverflow, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub(crate) use output::EncodedFrame;
pub use role::Role;
pub use utf8::{InvalidUtf8, Utf8Validator};

#[cfg(test)]
mod tests;
