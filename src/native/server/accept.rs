//! The accept loop and the HTTP connection that each accepted socket gets,
//! over TLS when the server has a certificate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::connections::{reached, Phase};
use super::Server;

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
                let _ = stream.set_nodelay(true);
                #[cfg(feature = "tls")]
                if let Some(acceptor) = app.tls.clone() {
                    tokio::spawn(serve_tls_connection(acceptor, stream, peer, app.clone()));
                    continue;
                }
                tokio::spawn(serve_connection(stream, peer, app.clone()));
            }
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Resolves once `stop` says `true`; never when its sender is gone.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        futures::future::pending::<()>().await;
    }
}

/// The TLS handshake, bounded by the handshake timeout, then HTTP over it.
#[cfg(feature = "tls")]
async fn serve_tls_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<Server>,
) {
    let timeout = app.server_options.handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => serve_connection(tls, peer, app).await,
        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => debug!(%peer, "TLS handshake timed out"),
    }
}

async fn serve_connection<S>(stream: S, peer: SocketAddr, app: Arc<Server>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &app.server_options;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        // hyper's minimum; the exact limit is checked on the parsed head.
        .max_buf_size(limits.max_request_head.max(8 * 1024));
    let phases = app.sessions.phase.subscribe();
    let service_app = app.clone();
    let service = hyper::service::service_fn(move |request| {
        let app = service_app.clone();
        async move { Ok::<_, Infallible>(app.respond(request, peer).await) }
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    // A graceful shutdown lets requests in flight finish, then closes; at its
    // deadline the connection is dropped.
    let result = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = reached(phases.clone(), Phase::Stopping) => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => Some(result),
                _ = reached(phases, Phase::Dropping) => None,
            }
        }
    };
    if let Some(Err(error)) = result {
        debug!(%peer, %error, "HTTP connection ended with an error");
    }
}
