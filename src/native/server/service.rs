//! [`ServerService`]: a [`Server`]'s routes and static files as a tower
//! `Service`, for an application that runs a router or an HTTP server of
//! its own (axum, hyper, anything on tower) and serves tandem's routes
//! there, under a prefix of its choosing.
//!
//! A request is answered as [`Server::bind`] answers it, by the same code:
//! the WebSocket checks, the origin policy, the route's hook, the session
//! options and extensions, the upgrade timeout, static files, 404 for
//! the rest. What belongs to the connection stays with the application's
//! server: TLS, the connection caps, the HTTP timeouts. Sessions take
//! their place in the service's [`SessionRegistry`] for the graceful
//! shutdown.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use tower_service::Service;

use super::upgrade::Slot;
use super::{ResponseBody, Server, SessionRegistry};

/// A [`Server`]'s WebSocket routes and static files as a tower
/// [`Service`], made by [`Server::into_service`].
///
/// Routes match the path of the request the service gets: nested under a
/// prefix by a router that strips it (axum's `nest_service("/ws", …)`),
/// a route `/echo` serves `/ws/echo`, and the session's
/// [`Request::path`](crate::Request::path) is `/echo`. The request body is
/// not read. The connection must be served by hyper with upgrades
/// (`axum::serve` is; a hyper connection needs `.with_upgrades()`).
///
/// The service does not know the client's address: a hook's
/// [`UpgradeRequest::peer_addr`](super::UpgradeRequest::peer_addr) is
/// `None`. Cloning the service is cheap; every clone serves the same
/// routes into the same registry.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::time::Duration;
/// use axum::routing::get;
/// use tandem::server::{Route, Server};
///
/// let tandem = Server::new()
///     .web_socket("/echo", tandem::demo::echo)
///     .web_socket(Route::new("/rooms/{id}").protocol("chat"), |session: tandem::Session| async move {
///         let room = session.request().and_then(|r| r.path_param("id")).unwrap_or_default();
///         let _ = session.send(format!("welcome to {room}")).await;
///     })
///     .into_service();
/// let sessions = tandem.registry();
/// let app = axum::Router::new()
///     .route("/health", get(|| async { "ok" }))
///     .nest_service("/ws", tandem);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async move {
///         let _ = tokio::signal::ctrl_c().await;
///         sessions.shutdown_gracefully(Duration::from_secs(10)).await;
///     })
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct ServerService {
    server: Arc<Server>,
}

impl fmt::Debug for ServerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerService")
            .field("server", &self.server)
            .finish()
    }
}

impl ServerService {
    pub(super) fn new(server: Server) -> Self {
        Self {
            server: Arc::new(server),
        }
    }

    /// The registry of the sessions this service (and every clone of it)
    /// started: its [`shutdown_gracefully`](SessionRegistry::shutdown_gracefully)
    /// closes them with 1001 Going Away, and the service answers upgrades
    /// with 503 from then on.
    ///
    /// ```
    /// let service = tandem::server::Server::new().into_service();
    /// assert_eq!(service.registry().session_count(), 0);
    /// ```
    pub fn registry(&self) -> SessionRegistry {
        SessionRegistry::of(self.server.connections.clone())
    }
}

impl<B> Service<Request<B>> for ServerService
where
    B: hyper::body::Body,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        // No route reads a body (an upgrade has none; files answer GET and
        // HEAD): it is dropped here, so the future is `Send` whatever `B` is.
        let request = request.map(drop);
        let server = self.server.clone();
        ResponseFuture(Box::pin(async move {
            let slot = Slot::Registry(server.connections.clone());
            Ok(server.respond(request, None, slot).await)
        }))
    }
}

/// The future of a [`ServerService`]'s response; it never fails.
///
/// ```no_run
/// # async fn f() {
/// use tower_service::Service;
///
/// let mut service = tandem::server::Server::new().into_service();
/// let future: tandem::server::ResponseFuture =
///     service.call(http::Request::get("/").body(String::new()).unwrap());
/// let response = future.await.unwrap();
/// # }
/// ```
pub struct ResponseFuture(BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>);

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
