//! # tandem
//!
//! Ktor's WebSockets plugin for Rust: one [`Session`]/[`Frame`] API that runs
//! on tokio (server and client) and in the browser (wasm32, on the browser's
//! `WebSocket`), so the same handler code runs on both ends.
//!
//! A client, the same source on both targets:
//!
//! ```no_run
//! use futures::StreamExt;
//!
//! # async fn run() -> Result<(), tandem::Error> {
//! let mut session = tandem::connect("ws://127.0.0.1:8080/echo").await?;
//! session.send("Ktor").await?;
//! while let Some(frame) = session.incoming().next().await {
//!     if let Some(text) = frame.read_text() {
//!         println!("{text}");
//!     }
//! }
//! println!("closed: {}", session.close_reason().await);
//! # Ok(()) }
//! ```
//!
//! A server (native only), as Ktor's `routing { webSocket("/echo") { … } }`:
//!
//! ```no_run
//! # #[cfg(not(target_arch = "wasm32"))]
//! # async fn run() -> std::io::Result<()> {
//! use futures::StreamExt;
//! use tandem::server::Server;
//!
//! let server = Server::new()
//!     .web_socket("/echo", |mut session: tandem::Session| async move {
//!         while let Some(frame) = session.incoming().next().await {
//!             let _ = session.send(frame).await;
//!         }
//!     })
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! server.wait().await
//! # }
//! ```
//!
//! The crate is laid out as its architecture: [`protocol`] is the sans-I/O
//! RFC 6455 engine; the native backend drives it with tokio; the browser
//! backend maps `WebSocket` events onto the same [`Session`].

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod authority;
mod client;
mod close;
#[cfg(feature = "json")]
pub mod codec;
pub mod demo;
mod error;
pub mod extensions;
mod frame;
pub mod hub;
mod link;
mod options;
pub mod protocol;
mod proxy;
pub mod reconnect;
mod session;

// The backend contract. Each backend module (`native` on tokio, `web` on
// the browser's `WebSocket`) gives the shared code the same names, and the
// shared code (client.rs, session.rs, hub.rs, reconnect.rs) uses nothing
// else of it:
//
// - `connect(ClientBuilder) -> Result<Session, Error>`: opens a session
//   whose driver runs the connection and meets the session at a `Link`
//   (link.rs: the two bounded queues, the close reason, the wakers; the
//   driver pushes what arrives, takes the session's commands, and records
//   how the connection ended);
// - `sleep(Duration)` and `Instant`: one clock, which tests can pause
//   natively (tokio's) and which the browser's timers keep;
// - `random_fraction() -> f64` in [0, 1), for the jitter of reconnects;
// - `MaybeSend`: `Send` natively, nothing in the browser;
// - `check_outgoing(&Frame)`: what this backend refuses to send beyond what
//   every backend refuses (`Frame::check_wire`), before it is queued;
// - `try_send_direct(&Link, Frame)`: takes a checked frame without the link
//   when the backend has a shorter way to its engine (natively, a server
//   handler polled in its driver's task: `native/direct_send.rs`), or gives
//   it back to be queued;
// - `AgreedExtensions`: how a session keeps the extensions its handshake
//   agreed on, a `Deref` to `[ExtensionHeader]` with a `Default` (natively
//   the list the handshake parsed; in the browser the `WebSocket`'s
//   `extensions` string, parsed when first asked for).
cfg_if::cfg_if! {
    if #[cfg(target_arch = "wasm32")] {
        mod web;
        use web as backend;
    } else {
        mod native;
        use native as backend;
        pub use native::rooms;
        pub use native::server;
        pub use native::testing;
        #[cfg(feature = "axum")]
        pub use native::axum;
    }
}

pub use backend::MaybeSend;
pub use client::{connect, ClientBuilder};
pub use close::{CloseCode, CloseReason};
pub use error::Error;
pub use frame::{Frame, FrameType, Rsv};
pub use options::WebSocketOptions;
pub use proxy::Proxy;
pub use session::{ClosedFuture, Incoming, Outgoing, Request, SendFuture, Session};

/// The rustls crate that `wss://` uses natively, for
/// [`ClientBuilder::tls_config`]: build a `ClientConfig` with this version.
///
/// ```
/// let provider = tandem::rustls::crypto::ring::default_provider();
/// assert!(!provider.cipher_suites.is_empty());
/// ```
#[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
pub use tokio_rustls::rustls;
