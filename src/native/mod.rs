//! The native backend: the protocol engine driven by tokio, a server on
//! hyper and a client on a TCP stream, with TLS for `wss://`.

#[cfg(feature = "axum")]
pub mod axum;
mod client;
mod driver;
mod proxy;
pub mod rooms;
pub mod server;
mod static_files;
pub mod testing;
#[cfg(feature = "tls")]
mod tls;

pub(crate) use client::{connect, connect_over};

use crate::error::Error;
use crate::frame::Frame;

/// Waits for `duration` on tokio's timer.
pub(crate) async fn sleep(duration: std::time::Duration) {
    tokio::time::sleep(duration).await;
}

/// Natively every well-formed frame can be sent.
pub(crate) fn check_outgoing(_frame: &Frame) -> Result<(), Error> {
    Ok(())
}
