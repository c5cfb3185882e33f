//! The sans-I/O protocol core: RFC 6455 with no socket and no clock.
//!
//! [`Protocol`] is the whole state machine after the opening handshake: it is
//! fed bytes, yields frames, and queues bytes to write. [`handshake`] holds
//! the opening handshake as pure functions. Nothing here knows tokio, hyper
//! or the browser; time comes in as an argument. The native driver moves
//! bytes between a socket and this core; tests and fuzzers drive it directly.
//!
//! # A walkthrough
//!
//! A client's engine and a server's, wired to each other by hand: what a
//! driver does with a socket in between. The examples on [`Protocol`]'s
//! methods pick up from here, with a server engine and `now`.
//!
//! ```
//! use std::io::IoSlice;
//! use std::time::{Duration, Instant};
//! use tandem::protocol::{Config, Protocol, Role};
//! use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};
//!
//! let now = Instant::now();
//! let options = WebSocketOptions { ping_period: Some(Duration::from_secs(30)), ..Default::default() };
//! let mut client = Protocol::new(Role::Client, Config::new(Role::Client, &options), now);
//! let mut server = Protocol::new(Role::Server, Config::new(Role::Server, &options), now);
//!
//! // Bytes in, frames out: the client masks its frame, the server unmasks it.
//! client.send(Frame::text("Hello"), now).unwrap();
//! server.receive_data(&client.output_bytes());
//! assert_eq!(server.poll_event(now), Some(Frame::text("Hello")));
//!
//! // Frames in, bytes out: a driver writes what `output` lends it (one
//! // vectored write) and says how much the socket took.
//! server.send(Frame::text("Hi"), now).unwrap();
//! let mut slices = [IoSlice::new(&[]); 16];
//! let n = server.output(&mut slices);
//! let written: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
//! server.consume_output(written.len(), now);
//! client.receive_data(&written);
//! assert_eq!(client.poll_event(now), Some(Frame::text("Hi")));
//!
//! // Time: a driver sleeps until `poll_timeout` and then calls
//! // `handle_timeout`. Here the server's ping is due; the client answers it
//! // by itself, and neither shows pings or pongs to its caller.
//! let due = server.poll_timeout().unwrap();
//! assert_eq!(due, now + Duration::from_secs(30));
//! server.handle_timeout(due);
//! client.receive_data(&server.output_bytes());
//! assert_eq!(client.poll_event(due), None);
//! server.receive_data(&client.output_bytes());
//! assert_eq!(server.poll_event(due), None);
//!
//! // Closing: a Close from the peer is answered once the caller has handled
//! // what came before it (`apply_deferred_close`), then the server ends
//! // the TCP connection first (RFC 6455 §7.1.1).
//! client.close(CloseReason::new(CloseCode::Normal, "bye"), due).unwrap();
//! server.receive_data(&client.output_bytes());
//! assert_eq!(server.poll_event(due), None);
//! server.apply_deferred_close(due);
//! client.receive_data(&server.output_bytes());
//! assert_eq!(client.poll_event(due), None);
//! assert_eq!(client.close_reason().map(|r| r.code), Some(CloseCode::Normal));
//! assert!(server.take_shutdown());
//! client.receive_eof();
//! assert!(client.is_finished());
//! ```
//!
//! # Driving it
//!
//! A driver (the native one is `src/native/driver.rs`) owns one engine and
//! one transport, and loops:
//!
//! - **read** into [`Protocol::read_buffer`] (or pass bytes to
//!   [`Protocol::receive_data`]) while [`Protocol::wants_read`]; at the end
//!   of the stream, [`Protocol::receive_eof`]; on an error,
//!   [`Protocol::transport_failed`];
//! - **take events** from [`Protocol::poll_event`] until it gives `None`,
//!   handing each frame to the session; once the session has handled them,
//!   [`Protocol::apply_deferred_close`] sends a Close owed to the peer;
//! - **send** the session's frames with [`Protocol::send`] and
//!   [`Protocol::close`];
//! - **write** what [`Protocol::output`] lends, then
//!   [`Protocol::consume_output`] with what the transport took;
//! - **time**: wake at [`Protocol::poll_timeout`] and call
//!   [`Protocol::handle_timeout`] (the timers are listed in one table in
//!   `src/protocol/timers.rs`);
//! - **end** the transport's write side when [`Protocol::take_shutdown`]
//!   says so, and stop once [`Protocol::is_finished`].
//!
//! The engine never blocks and never allocates on behalf of a slow peer
//! beyond its limits: input past `max_frame_size` / `max_message_size` fails
//! the connection, and [`CONTROL_OUTPUT_LIMIT`] bounds the pongs and pings
//! queued behind output that does not drain.

mod engine;
pub mod handshake;
mod header;
mod mask;
mod output;
mod reassembly;
mod role;
mod timers;
mod utf8;

pub use engine::{Config, Protocol, CONTROL_OUTPUT_LIMIT};
pub use header::{FrameHeader, LengthOverflow, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub(crate) use output::EncodedFrame;
pub use role::Role;
pub use utf8::{InvalidUtf8, Utf8Validator};

#[cfg(test)]
mod tests;
