//! The accept loop and the HTTP connection that each accepted socket gets,
//! over TLS when the server has a certificate.
//!
//! A socket takes its place among the server's connections as it is
//! accepted, before any TLS handshake; one over the cap is answered with a
//! 503 (on plain TCP) or closed (over TLS), and takes no place.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::connections::{reached, ConnectionSlot, ServerPhase, SharedSlot};
use super::idle::IdleIo;
use super::upgrade::Slot;
use super::{Server, RETRY_AFTER_SECS};

/// How long a refused connection is given to take its 503 and close.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// Accepts connections until `stop` says `true`. A dropped sender (the
/// [`RunningServer`](super::RunningServer) dropped) is no stop: the server
/// keeps serving.
pub(super) async fn accept_loop(
    listener: TcpListener,
    app: Arc<Server>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop_requested(&mut stop) => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let slot = match app.connections.try_admit(peer.ip(), &app.server_options) {
                    Ok(slot) => slot,
                    Err(why) => {
                        refuse(stream, peer, why, &app);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                #[cfg(feature = "tls")]
                if let Some(acceptor) = app.tls.clone() {
                    tokio::spawn(serve_tls_connection(
                        acceptor,
                        stream,
                        peer,
                        app.clone(),
                        slot,
                    ));
                    continue;
                }
                tokio::spawn(serve_connection(stream, peer, app.clone(), slot));
            }
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A timeout as hyper takes it: hyper adds it to the clock at every request
/// head, which panics on a huge one (`Duration::MAX`), so one of a century
/// or more is no timeout.
fn hyper_timeout(timeout: Duration) -> Option<Duration> {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    (timeout < CENTURY).then_some(timeout)
}

/// Resolves once `stop` says `true`; never when its sender is gone.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        futures::future::pending::<()>().await;
    }
}

/// Answers a connection refused at accept: on plain TCP a 503 with
/// `Retry-After` and `Connection: close`, over TLS nothing (the client
/// would not read plain text), then closes it.
fn refuse(stream: TcpStream, peer: SocketAddr, why: &'static str, app: &Arc<Server>) {
    debug!(%peer, why, "connection refused");
    #[cfg(feature = "tls")]
    if app.tls.is_some() {
        return;
    }
    let Some(permit) = app.connections.try_refusal() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_GRACE, answer_503(stream, why)).await;
    });
}

async fn answer_503(mut stream: TcpStream, why: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {RETRY_AFTER_SECS}\r\n\
         Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n{why}\n",
        why.len() + 1
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Read what the client sent until it closes: a socket closed with its
    // request unread is reset, and the reset can destroy the 503 before the
    // client reads it.
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

/// The TLS handshake, bounded by the handshake timeout, then HTTP over it.
#[cfg(feature = "tls")]
async fn serve_tls_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<Server>,
    slot: ConnectionSlot,
) {
    let timeout = app.server_options.handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => serve_connection(tls, peer, app, slot).await,
        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => debug!(%peer, "TLS handshake timed out"),
    }
}

pub(super) async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Arc<Server>,
    slot: ConnectionSlot,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &app.server_options;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(hyper_timeout(limits.handshake_timeout))
        // hyper's minimum; the exact limit is checked on the parsed head.
        .max_buf_size(limits.max_request_head.max(8 * 1024));
    let phases = app.connections.phases();
    let service_app = app.clone();
    let slot = SharedSlot::new(slot);
    let service = hyper::service::service_fn(move |request| {
        let app = service_app.clone();
        let slot = slot.clone();
        // The connection's place among the server's becomes the session's.
        let slot = Slot::Connection(slot.clone());
        async move { Ok::<_, Infallible>(app.respond(request, Some(peer), slot).await) }
    });
    let stream = IdleIo::new(stream, limits.http_idle_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    // A graceful shutdown lets requests in flight finish, then closes; at its
    // deadline the connection is dropped.
    let result = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = reached(phases.clone(), ServerPhase::Stopping) => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => Some(result),
                _ = reached(phases, ServerPhase::Dropping) => None,
            }
        }
    };
    if let Some(Err(error)) = result {
        debug!(%peer, %error, "HTTP connection ended with an error");
    }
}
