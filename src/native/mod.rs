//! The native backend: the protocol engine driven by tokio, a server on
//! hyper and a client on a TCP stream, with TLS for `wss://`.

#[cfg(feature = "axum")]
pub mod axum;
mod client;
mod direct_send;
mod driver;
mod proxy;
pub mod rooms;
pub mod server;
mod static_files;
pub mod testing;
#[cfg(feature = "tls")]
mod tls;

pub(crate) use client::{connect, connect_over};
pub(crate) use direct_send::try_send as try_send_direct;

use crate::error::Error;
use crate::frame::Frame;

/// Waits for `duration` on tokio's timer.
pub(crate) async fn sleep(duration: std::time::Duration) {
    tokio::time::sleep(duration).await;
}

/// The clock that [`sleep`] waits on: tokio's, so that a test on a paused
/// clock (`tokio::time::pause()`) measures what it waited.
pub(crate) use tokio::time::Instant;

/// The extensions a session agreed on, as its handshake parsed them.
pub(crate) type AgreedExtensions = Box<[crate::extensions::ExtensionHeader]>;

/// A uniformly random fraction in `[0, 1)`, for jitter.
pub(crate) fn random_fraction() -> f64 {
    rand::random::<f64>()
}

/// `Send`, natively: a value that tandem keeps inside a future of its own
/// (the connect function of a
/// [`Reconnecting`](crate::reconnect::Reconnecting), say) must be `Send`
/// for that future to be, so that tokio may move it between threads. In
/// the browser it asks for nothing: everything runs on one thread there,
/// and the browser's handles are not `Send`. Every type that can be
/// implements it; user code never names it.
///
/// ```
/// fn natively_send<T: tandem::MaybeSend>(_: T) {}
/// natively_send(std::sync::Arc::new(1));
/// ```
pub trait MaybeSend: Send {}

impl<T: Send + ?Sized> MaybeSend for T {}

/// Natively every well-formed frame can be sent.
pub(crate) fn check_outgoing(_frame: &Frame) -> Result<(), Error> {
    Ok(())
}
