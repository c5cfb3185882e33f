//! A session's task: the driver of its connection and its handler, polled
//! together once the upgrade completed.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::{debug, error};

use super::connections::ConnectionSlot;
use super::idle::IdleIo;
use crate::close::{CloseCode, CloseReason};
use crate::extensions::Extension;
use crate::link::Link;
use crate::native::driver::Driver;
use crate::options::WebSocketOptions;
use crate::protocol::{Config, Protocol, Role};
use crate::session::{Handshake, Session};

/// A handler for one session, ready to start.
pub(super) type StartHandler = Box<dyn FnOnce(Session) -> BoxFuture<'static, CloseReason> + Send>;

/// What a session starts with after the upgrade.
pub(super) struct SessionParts {
    pub(super) handshake: Handshake,
    pub(super) options: WebSocketOptions,
    pub(super) raw: bool,
    pub(super) extensions: Vec<Box<dyn Extension>>,
    /// The connection's place among the server's (or in a
    /// [`SessionRegistry`](super::SessionRegistry)); freed when it ends.
    pub(super) slot: Option<ConnectionSlot>,
}

/// Numbers the sessions in the logs that have no slot to take one from.
static NEXT_ID: AtomicU64 = AtomicU64::new(1 << 63);

/// Starts one upgraded connection: the driver and the handler in one task of
/// their own.
///
/// The task that waited for the upgrade ends here, and the session's task
/// holds only what the session needs: a [`SessionTask`] is a plain struct, a
/// few hundred bytes smaller than an `async` block joining the same two
/// futures, which also kept the moved-from engine and both arms of the
/// downcast alive. This is most of an idle connection's memory.
pub(super) fn spawn_session(
    upgraded: hyper::upgrade::Upgraded,
    parts: SessionParts,
    handler: StartHandler,
    peer: Option<SocketAddr>,
) {
    let SessionParts {
        handshake,
        options,
        raw,
        extensions,
        slot,
    } = parts;
    let mut config = Config::new(Role::Server, &options);
    config.raw = raw;
    let protocol = Protocol::new(Role::Server, config, crate::native::driver::now())
        .with_extensions(extensions);
    let link = Arc::new(Link::new(&options));
    let session = Session::new(link.clone(), handshake);
    let id = match &slot {
        Some(slot) => {
            slot.attach(&link);
            slot.id
        }
        None => NEXT_ID.fetch_add(1, Ordering::Relaxed),
    };
    debug!(session = id, ?peer, "session open");
    let handler = AssertUnwindSafe(handler(session)).catch_unwind();

    // Use the TCP (or TLS) stream directly when hyper hands it back: no
    // boxed I/O, and no HTTP idle deadline on the session's path. The
    // plain `TokioIo<TcpStream>` is what axum's `serve` runs hyper on.
    let place = match slot {
        Some(slot) => Place::Held(slot),
        None => Place::Freed(id),
    };
    let upgraded = match upgraded.downcast::<TokioIo<IdleIo<TcpStream>>>() {
        Ok(parts) => {
            let io = parts.io.into_inner().into_inner();
            return spawn_on(io, parts.read_buf, protocol, handler, link, place);
        }
        Err(upgraded) => upgraded,
    };
    // tandem::testing's in-memory connections.
    let upgraded = match upgraded.downcast::<TokioIo<IdleIo<tokio::io::DuplexStream>>>() {
        Ok(parts) => {
            let io = parts.io.into_inner().into_inner();
            return spawn_on(io, parts.read_buf, protocol, handler, link, place);
        }
        Err(upgraded) => upgraded,
    };
    let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let io = parts.io.into_inner();
            return spawn_on(io, parts.read_buf, protocol, handler, link, place);
        }
        Err(upgraded) => upgraded,
    };
    #[cfg(feature = "tls")]
    let upgraded =
        match upgraded.downcast::<TokioIo<IdleIo<tokio_rustls::server::TlsStream<TcpStream>>>>() {
            Ok(parts) => {
                let io = parts.io.into_inner().into_inner();
                return spawn_on(io, parts.read_buf, protocol, handler, link, place);
            }
            Err(upgraded) => upgraded,
        };
    let driver = Driver::new(TokioIo::new(upgraded), protocol, link);
    tokio::spawn(SessionTask::new(driver, handler, place));
}

/// Spawns the session's task on the stream hyper gave back after the
/// upgrade, out of its HTTP idle deadline.
fn spawn_on<IO>(
    io: IO,
    read_buf: bytes::Bytes,
    mut protocol: Protocol,
    handler: HandlerTask,
    link: Arc<Link>,
    place: Place,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    protocol.receive_data(&read_buf);
    // It may be a slice of hyper's read buffer: do not keep that buffer
    // alive for the life of the session.
    drop(read_buf);
    let driver = Driver::new(io, protocol, link);
    tokio::spawn(SessionTask::new(driver, handler, place));
}

/// How many handler-then-driver rounds one poll of a session may run.
const SESSION_ROUNDS: usize = 8;

type HandlerTask = futures::future::CatchUnwind<AssertUnwindSafe<BoxFuture<'static, CloseReason>>>;

/// The driver and the handler of one session, polled together (as `join!`
/// would): done when both are. The connection (the driver) ends on its own,
/// or when a graceful shutdown's deadline drops it; its place among the
/// server's connections is freed then, while the handler may run on.
///
/// An idle session's memory is mostly this task: its size is kept to what
/// tokio rounds a task up to (a multiple of 128 bytes with its header; see
/// the size test below).
struct SessionTask<IO> {
    connection: Connection<IO>,
    handler: Option<HandlerTask>,
    place: Place,
}

/// A session's connection: its driver while it runs, then only the link
/// (which the driver held) for the handler's end. The driver is not boxed:
/// it lives in the task's own allocation.
#[allow(clippy::large_enum_variant)]
enum Connection<IO> {
    Open(Driver<IO>),
    Ended(Arc<Link>),
}

/// Where a session is counted: its slot among the server's connections
/// (or in a [`SessionRegistry`](super::SessionRegistry)) until the
/// connection ends, then only its number in the logs ("session open" gives
/// its peer).
enum Place {
    Held(ConnectionSlot),
    Freed(u64),
}

impl Place {
    fn id(&self) -> u64 {
        match self {
            Place::Held(slot) => slot.id,
            Place::Freed(id) => *id,
        }
    }
}

impl<IO> SessionTask<IO> {
    fn new(driver: Driver<IO>, handler: HandlerTask, place: Place) -> Self {
        Self {
            connection: Connection::Open(driver),
            handler: Some(handler),
            place,
        }
    }

    fn link(&self) -> &Link {
        match &self.connection {
            Connection::Open(driver) => driver.link(),
            Connection::Ended(link) => link,
        }
    }

    /// Ends the connection: drops the socket, the engine and the slot.
    fn end_connection(&mut self) {
        if let Connection::Open(driver) = &self.connection {
            self.connection = Connection::Ended(driver.link().clone());
        }
        self.place = Place::Freed(self.place.id());
    }
}

impl<IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Future for SessionTask<IO> {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        use std::task::Poll;
        let this = &mut *self;
        // The handler first, then the driver, which sends what the handler
        // queued and reads what comes next; while that leaves frames for the
        // handler, once more. The link does not wake this task from inside
        // itself (see `link::wake_other`), so this loop is what serves them.
        let mut frames_wait = false;
        for _ in 0..SESSION_ROUNDS {
            if let Some(handler) = this.handler.as_mut() {
                let polled = match &mut this.connection {
                    Connection::Open(driver) => driver.with_outbox(|| handler.poll_unpin(cx)),
                    Connection::Ended(_) => handler.poll_unpin(cx),
                };
                if let Poll::Ready(result) = polled {
                    this.handler = None;
                    let reason = result.unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        error!(session = this.place.id(), panic = %what, "WebSocket handler panicked");
                        CloseReason::new(CloseCode::InternalError, "handler panicked")
                    });
                    this.link().request_close(reason);
                }
            }
            frames_wait = false;
            if let Connection::Open(driver) = &mut this.connection {
                let ended = driver.poll_unpin(cx).is_ready();
                frames_wait = this.handler.is_some() && driver.take_reader_owed();
                if ended {
                    // Drop the socket and the engine's buffers at once.
                    this.end_connection();
                }
            }
            if !frames_wait {
                break;
            }
        }
        if frames_wait {
            // Still busy after a fair share: come back after other tasks.
            cx.waker().wake_by_ref();
        }
        if this.handler.is_none() && matches!(this.connection, Connection::Ended(_)) {
            debug!(session = this.place.id(), "session done");
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    /// Most of an idle session's memory is its task: tokio allocates it
    /// with a 128-byte alignment and 104 bytes of its own (header,
    /// scheduler, id, stage tag, trailer), so 408 bytes of session make a
    /// 512-byte task, and 8 more a 640-byte one.
    #[test]
    fn a_session_task_fits_in_512_bytes_with_tokios_header() {
        let size = std::mem::size_of::<super::SessionTask<tokio::net::TcpStream>>();
        assert!(size <= 408, "SessionTask<TcpStream> is {size} bytes");
    }
}
