//! The server: Ktor's `routing { webSocket("/echo") { … } }` on tokio and hyper.
//!
//! A [`Server`] holds WebSocket routes, session options and static-file
//! folders; [`Server::bind`] starts it. HTTP/1.1 and the upgrade go through
//! hyper; after the upgrade the connection belongs to tandem's own driver.
//! With [`Server::tls_config`] it serves `https://` and `wss://` instead.
//!
//! ```no_run
//! use futures::StreamExt;
//! use tandem::server::{Route, Server};
//! use tandem::{CloseCode, CloseReason, Session};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::new()
//!     .web_socket("/echo", |mut session: Session| async move {
//!         while let Some(frame) = session.incoming().next().await {
//!             if session.send(frame).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//!     .web_socket(Route::new("/chat").protocol("chat"), |session: Session| async move {
//!         let _ = session.close(CloseReason::new(CloseCode::TryAgainLater, "closed for today")).await;
//!     })
//!     .static_files("/", "www")
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! println!("listening on {}", server.local_addr());
//! server.wait().await
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use http::{header, HeaderValue, Request as HttpRequest, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming as HyperBody;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::driver::Driver;
use super::static_files::{FileBody, StaticFiles};
use crate::close::{CloseCode, CloseReason};
use crate::extensions::{Extension, ExtensionFactory, ExtensionHeader, Extensions, Negotiated};
use crate::link::Link;
use crate::options::WebSocketOptions;
use crate::protocol::{handshake, Config, Protocol, Role};
use crate::session::{Handshake, Request, Session};
use accept::accept_loop;
use connections::{ConnectionSlot, Connections, SharedSlot};
use idle::IdleIo;

mod accept;
mod connections;
mod idle;
mod options;
mod origin;

pub use options::ServerOptions;
pub use origin::OriginPolicy;

/// A response body: a short text or an empty body of tandem's own, or a
/// file streamed from disk.
type Body = Either<Full<Bytes>, FileBody>;

/// The `Retry-After` of a 503 for a server that is full or shutting down,
/// in seconds.
const RETRY_AFTER_SECS: u32 = 5;
type Handler = Arc<dyn Fn(Session) -> BoxFuture<'static, CloseReason> + Send + Sync>;

/// What a handler's return value means for its session's close.
///
/// `()` closes with 1000; `Ok(())` closes with 1000 and `Err(e)` with 1011
/// and `e` as the reason text.
///
/// ```
/// use tandem::server::HandlerOutput;
/// use tandem::CloseCode;
/// assert_eq!(().into_close_reason().code, CloseCode::Normal);
/// let failed: Result<(), String> = Err("database down".into());
/// assert_eq!(failed.into_close_reason().code, CloseCode::InternalError);
/// ```
pub trait HandlerOutput {
    /// The reason to close the session with when the handler returns.
    fn into_close_reason(self) -> CloseReason;
}

impl HandlerOutput for () {
    fn into_close_reason(self) -> CloseReason {
        CloseReason::normal()
    }
}

impl<E: fmt::Display> HandlerOutput for Result<(), E> {
    fn into_close_reason(self) -> CloseReason {
        match self {
            Ok(()) => CloseReason::normal(),
            Err(error) => {
                warn!(%error, "WebSocket handler failed");
                CloseReason::new(CloseCode::InternalError, error.to_string())
            }
        }
    }
}

/// A WebSocket route: a path, the subprotocols it speaks and its options.
///
/// A `&str` converts into a route with no subprotocol and the server's options.
///
/// ```
/// use tandem::server::Route;
/// let route = Route::new("/chat").protocol("chat.v2").protocol("chat");
/// assert_eq!(route.path(), "/chat");
/// ```
#[derive(Debug, Clone)]
pub struct Route {
    path: String,
    protocols: Vec<String>,
    options: Option<WebSocketOptions>,
}

impl Route {
    /// A route at `path` (matched exactly, without the query).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            protocols: Vec::new(),
            options: None,
        }
    }

    /// Adds a subprotocol this route speaks, in preference order (Ktor's
    /// `webSocket(path, protocol)`). A route with subprotocols refuses
    /// clients that offer none of them with 400.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Options for this route's sessions instead of the server's.
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The route's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl From<&str> for Route {
    fn from(path: &str) -> Self {
        Route::new(path)
    }
}

impl From<String> for Route {
    fn from(path: String) -> Self {
        Route::new(path)
    }
}

struct WsRoute {
    route: Route,
    raw: bool,
    handler: Handler,
}

/// What [`RunningServer::shutdown_gracefully`] did.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::time::Duration;
/// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
/// let report = server.shutdown_gracefully(Duration::from_secs(5)).await;
/// assert_eq!(report.sessions, report.closed + report.dropped);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions open when the shutdown began.
    pub sessions: usize,
    /// Sessions whose connection ended before the deadline.
    pub closed: usize,
    /// Sessions still open at the deadline, whose connections were dropped.
    pub dropped: usize,
}

/// A WebSocket server under construction: routes, options, static files.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use tandem::server::Server;
/// let server = Server::new()
///     .web_socket("/hello", |session: tandem::Session| async move {
///         let _ = session.send("hello").await;
///     })
///     .bind("127.0.0.1:0")
///     .await?;
/// # Ok(()) }
/// ```
pub struct Server {
    options: WebSocketOptions,
    server_options: ServerOptions,
    connections: Arc<Connections>,
    routes: Vec<WsRoute>,
    static_files: StaticFiles,
    extensions: Extensions,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.options)
            .field("server_options", &self.server_options)
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| &r.route.path)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with no routes and default options.
    pub fn new() -> Self {
        Self {
            options: WebSocketOptions::default(),
            server_options: ServerOptions::default(),
            connections: Arc::new(Connections::new()),
            routes: Vec::new(),
            static_files: StaticFiles::default(),
            extensions: Extensions::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Serves TLS (`https://` and `wss://`) with `config`'s certificate,
    /// instead of plain TCP (Ktor's `sslConnector`). The TLS handshake is
    /// bounded by the handshake timeout, like the HTTP request after it.
    /// With the `tls` feature (on by default).
    ///
    /// ```no_run
    /// # async fn run(chain: Vec<tandem::rustls::pki_types::CertificateDer<'static>>,
    /// #              key: tandem::rustls::pki_types::PrivateKeyDer<'static>) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use tandem::rustls::{self, ServerConfig};
    /// use tandem::server::Server;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = ServerConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_no_client_auth()
    ///     .with_single_cert(chain, key)?;
    /// let server = Server::new()
    ///     .tls_config(Arc::new(config))
    ///     .web_socket("/echo", tandem::demo::echo)
    ///     .bind("0.0.0.0:8443")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<crate::rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
        self
    }

    /// Session options for every route (Ktor's `install(WebSockets) { … }`).
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Limits and policies of the HTTP side: request head size, handshake
    /// timeout, connection cap, allowed origins (see [`ServerOptions`]).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use tandem::server::{Server, ServerOptions};
    /// let server = Server::new()
    ///     .server_options(ServerOptions { max_connections: Some(100), ..Default::default() })
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn server_options(mut self, options: ServerOptions) -> Self {
        self.server_options = options;
        self
    }

    /// The largest request head accepted, in bytes (default 16 KiB); a
    /// bigger one gets 431.
    ///
    /// ```
    /// let server = tandem::server::Server::new().max_request_head(8 * 1024);
    /// ```
    pub fn max_request_head(mut self, bytes: usize) -> Self {
        self.server_options.max_request_head = bytes;
        self
    }

    /// How long a client may take to send its request head and complete the
    /// upgrade (default 10 s); slower clients are dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = tandem::server::Server::new().handshake_timeout(Duration::from_secs(3));
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.server_options.handshake_timeout = timeout;
        self
    }

    /// The longest a plain HTTP connection may wait on its client with no
    /// byte moving (default 30 s): a client that stops reading a response,
    /// or keeps a connection open and quiet, is dropped. WebSocket sessions
    /// are not subject to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = tandem::server::Server::new().http_idle_timeout(Duration::from_secs(60));
    /// ```
    pub fn http_idle_timeout(mut self, timeout: Duration) -> Self {
        self.server_options.http_idle_timeout = timeout;
        self
    }

    /// The most connections open at once, HTTP and WebSocket alike
    /// (default 10 000; `None`: no cap). A connection over it is refused as
    /// it is accepted: a 503 with `Retry-After` on plain TCP, closed over
    /// TLS; open connections are untouched.
    ///
    /// ```
    /// let server = tandem::server::Server::new().max_connections(Some(500));
    /// ```
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.server_options.max_connections = max;
        self
    }

    /// The most connections open at once from one client IP address
    /// (default `None`: no cap per address), refused as over
    /// [`Server::max_connections`].
    ///
    /// ```
    /// let server = tandem::server::Server::new().max_connections_per_ip(Some(50));
    /// ```
    pub fn max_connections_per_ip(mut self, max: Option<usize>) -> Self {
        self.server_options.max_connections_per_ip = max;
        self
    }

    /// Accepts upgrades from browser pages of `origins` as well as from the
    /// server's own pages (others get 403; requests without `Origin` are
    /// accepted): [`OriginPolicy::SameHostOr`]. Replaces the policy set
    /// before.
    ///
    /// ```
    /// let server = tandem::server::Server::new()
    ///     .allowed_origins(["https://app.example", "http://localhost:3000"]);
    /// ```
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.server_options.origins =
            OriginPolicy::SameHostOr(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts upgrades from pages of any origin, `null` included
    /// ([`OriginPolicy::Any`]): only for sessions that do not rely on what a
    /// browser sends by itself (cookies, HTTP authentication), or pages
    /// served from elsewhere. Replaces the policy set before.
    ///
    /// ```
    /// let server = tandem::server::Server::new().allow_any_origin();
    /// ```
    pub fn allow_any_origin(mut self) -> Self {
        self.server_options.origins = OriginPolicy::Any;
        self
    }

    /// Serves WebSocket sessions at `route` with `handler` (Ktor's
    /// `webSocket(path) { … }`).
    ///
    /// The handler gets whole messages; pings are answered and the close
    /// handshake is handled for it. When it returns the session closes with
    /// 1000 (or 1011 for an `Err`); when it panics, with 1011, and the server
    /// keeps serving.
    pub fn web_socket<H, F>(self, route: impl Into<Route>, handler: H) -> Self
    where
        H: Fn(Session) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        self.add(route.into(), false, handler)
    }

    /// Serves raw sessions at `route` (Ktor's `webSocketRaw`): the handler
    /// sees every frame as it arrived (ping, pong, close and fragments, with
    /// their `fin` and RSV bits) and nothing is answered for it.
    pub fn web_socket_raw<H, F>(self, route: impl Into<Route>, handler: H) -> Self
    where
        H: Fn(Session) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        self.add(route.into(), true, handler)
    }

    fn add<H, F>(mut self, route: Route, raw: bool, handler: H) -> Self
    where
        H: Fn(Session) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        // `map`, not an `async` block: the block would hold the handler's
        // future twice (captured, then awaited), in every session's memory.
        let handler: Handler = Arc::new(move |session| {
            Box::pin(handler(session).map(HandlerOutput::into_close_reason))
        });
        self.routes.push(WsRoute {
            route,
            raw,
            handler,
        });
        self
    }

    /// Negotiates an extension with clients that offer it (Ktor's
    /// `extensions { install(…) }`), e.g. a custom [`ExtensionFactory`].
    /// Extensions are agreed in the order the client lists its offers.
    ///
    /// # Panics
    ///
    /// When the extension claims an RSV bit that one added before claims, or
    /// is added twice.
    ///
    /// ```no_run
    /// # #[derive(Debug)] struct MyExtension;
    /// # impl tandem::extensions::ExtensionFactory for MyExtension {
    /// #     fn name(&self) -> &str { "x-my" }
    /// #     fn rsv(&self) -> tandem::Rsv { tandem::Rsv::NONE }
    /// #     fn offers(&self) -> Vec<tandem::extensions::ExtensionHeader> { vec![] }
    /// #     fn accept(&self, _: &tandem::extensions::ExtensionHeader) -> Option<(tandem::extensions::ExtensionHeader, Box<dyn tandem::extensions::Extension>)> { None }
    /// #     fn confirm(&self, _: &tandem::extensions::ExtensionHeader) -> Result<Box<dyn tandem::extensions::Extension>, String> { Err("no".into()) }
    /// # }
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new()
    ///     .extension(MyExtension)
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn extension(mut self, factory: impl ExtensionFactory) -> Self {
        self.extensions.add(Arc::new(factory));
        self
    }

    /// Serves the files under `dir` at URL prefix `prefix` (GET and HEAD;
    /// a folder serves its `index.html`), streamed from disk, with byte
    /// ranges, `304 Not Modified` for a cached copy that is still current,
    /// and `FILE.br` or `FILE.gz` sent in place of `FILE` to clients that
    /// accept it. Paths that leave `dir`, also through a symbolic link, and
    /// hidden paths (a segment that starts with `.`) get 404. Every file
    /// response has `X-Content-Type-Options: nosniff` and
    /// `Cache-Control: no-cache` (revalidated before each use).
    ///
    /// ```
    /// let server = tandem::server::Server::new()
    ///     .static_files("/pkg", "pkg")
    ///     .static_files("/", "www");
    /// ```
    pub fn static_files(mut self, prefix: &str, dir: impl Into<PathBuf>) -> Self {
        self.static_files.add(prefix, dir.into());
        self
    }

    /// Binds `addr` and starts serving in the background.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> std::io::Result<RunningServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let app = Arc::new(self);
        info!(%local_addr, "tandem server listening");
        let connections = app.connections.clone();
        let task = tokio::spawn(accept_loop(listener, app, stopped));
        Ok(RunningServer {
            local_addr,
            stop,
            task,
            connections,
        })
    }
}

/// A server that is running; dropping this handle does not stop it (the
/// server then serves until the process ends).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
/// let port = server.local_addr().port();
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    connections: Arc<Connections>,
}

impl RunningServer {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections; sessions already open run on (see
    /// [`RunningServer::shutdown_gracefully`] to end them too).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// server.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// How many WebSocket sessions are open (or being upgraded) right now.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// assert_eq!(server.session_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn session_count(&self) -> usize {
        self.connections.session_count()
    }

    /// How many connections are open right now, of every kind: TLS
    /// handshakes, plain HTTP, upgrades and WebSocket sessions (what
    /// [`ServerOptions::max_connections`] caps).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// assert_eq!(server.connection_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn connection_count(&self) -> usize {
        self.connections.count()
    }

    /// Stops the server gracefully: stops accepting connections, sends every
    /// session a Close with 1001 Going Away, waits up to `deadline` for their
    /// close handshakes (and for HTTP requests in flight), then drops the
    /// connections that are left. Upgrades that arrive meanwhile get 503.
    ///
    /// Handlers see the session end with the peer's answer to the 1001
    /// (1001 itself from a well-behaved peer), and sessions dropped at the
    /// deadline end with 1001 too. Handlers are not cancelled: each runs on
    /// until it returns.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let server = tandem::server::Server::new().bind("127.0.0.1:0").await?;
    /// let report = server.shutdown_gracefully(Duration::from_secs(5)).await;
    /// println!("{} closed, {} dropped", report.closed, report.dropped);
    /// # Ok(()) }
    /// ```
    pub async fn shutdown_gracefully(self, deadline: Duration) -> ShutdownReport {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let (open, dropped) = self.connections.shutdown_gracefully(deadline).await;
        ShutdownReport {
            sessions: open,
            closed: open.saturating_sub(dropped),
            dropped,
        }
    }

    /// Runs until the server stops (it stops only on [`RunningServer::shutdown`]).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)
    }
}

/// The size of a request head as it was on the wire (request line and
/// headers, with their separators).
fn request_head_len<B>(request: &HttpRequest<B>) -> usize {
    let line =
        request.method().as_str().len() + request.uri().to_string().len() + "HTTP/1.1".len() + 4;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    line + headers + 2
}

fn text_response(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body.into() + "\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Server {
    async fn respond(
        &self,
        request: HttpRequest<HyperBody>,
        peer: SocketAddr,
        slot: &SharedSlot,
    ) -> Response<Body> {
        let head_len = request_head_len(&request);
        if head_len > self.server_options.max_request_head {
            debug!(%peer, head_len, "request head over the limit");
            let mut response = text_response(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request head is {head_len} bytes; this server accepts {}",
                    self.server_options.max_request_head
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        let path = request.uri().path();
        if let Some(route) = self.routes.iter().find(|r| r.route.path == path) {
            return self.upgrade(route, request, peer, slot);
        }
        match self.static_files.serve(&request).await {
            Some(Ok(response)) => return response.map(Either::Right),
            Some(Err(error)) => {
                error!(%peer, %path, %error, "reading a static file failed");
                return text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{path} could not be read"),
                );
            }
            None => {}
        }
        text_response(StatusCode::NOT_FOUND, format!("no route for {path}"))
    }

    fn upgrade(
        &self,
        route: &WsRoute,
        mut request: HttpRequest<HyperBody>,
        peer: SocketAddr,
        slot: &SharedSlot,
    ) -> Response<Body> {
        let accept = match handshake::check_request(
            request.method(),
            request.version(),
            request.headers(),
        ) {
            Ok(accept) => accept,
            Err(rejection) => {
                debug!(%peer, status = %rejection.status, reason = %rejection.reason, "upgrade refused");
                let mut response = text_response(rejection.status, rejection.reason);
                if rejection.status == StatusCode::UPGRADE_REQUIRED {
                    response
                        .headers_mut()
                        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                    response.headers_mut().insert(
                        header::SEC_WEBSOCKET_VERSION,
                        HeaderValue::from_static("13"),
                    );
                }
                return response;
            }
        };
        let protocol = if route.route.protocols.is_empty() {
            None
        } else {
            let offered = handshake::offered_protocols(request.headers());
            match handshake::select_protocol(&route.route.protocols, &offered) {
                Some(p) => Some(p.to_owned()),
                None => {
                    return text_response(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "{} speaks the subprotocols {:?}; the client offered {:?}",
                            route.route.path, route.route.protocols, offered
                        ),
                    )
                }
            }
        };

        if !self.origin_allowed(&request) {
            debug!(
                %peer,
                origin = ?request.headers().get(header::ORIGIN),
                host = ?request.headers().get(header::HOST),
                "upgrade refused: origin not allowed"
            );
            return text_response(
                StatusCode::FORBIDDEN,
                "this origin may not open a WebSocket session here: \
                 it is neither this server's host nor an allowed origin",
            );
        }
        // The connection's place among the server's becomes the session's.
        let slot = match slot.take_for_session() {
            Ok(slot) => slot,
            Err(why) => {
                debug!(%peer, why, "upgrade refused with 503");
                let mut response = text_response(StatusCode::SERVICE_UNAVAILABLE, why);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                return response;
            }
        };
        let handshake_timeout = self.server_options.handshake_timeout;

        // Packed: this copies the headers out of hyper's read buffer (its
        // values are slices of it, which a clone would keep alive for the life
        // of the session) and takes far less memory than a `HeaderMap`.
        let info = Request::packed(
            request.uri().path(),
            request.uri().query(),
            request.headers(),
        );
        let options = route
            .route
            .options
            .clone()
            .unwrap_or_else(|| self.options.clone());
        let handler = route.handler.clone();
        let raw = route.raw;
        let upgrade = hyper::upgrade::on(&mut request);
        let session_protocol = protocol.clone();
        let (answers, extensions) = self.negotiate_extensions(request.headers(), raw);
        let answer_header = ExtensionHeader::format_list(&answers);
        tokio::spawn(async move {
            let upgraded = match tokio::time::timeout(handshake_timeout, upgrade).await {
                Ok(upgraded) => upgraded,
                Err(_) => {
                    debug!(%peer, "the upgrade did not complete in time");
                    return;
                }
            };
            match upgraded {
                Ok(upgraded) => {
                    let handshake = Handshake {
                        protocol: session_protocol,
                        extensions: answers,
                        request: Some(info),
                    };
                    let session = SessionParts {
                        handshake,
                        options,
                        raw,
                        extensions,
                        slot,
                    };
                    spawn_session(upgraded, session, handler, peer);
                }
                Err(error) => debug!(%peer, %error, "upgrade failed"),
            }
        });

        let mut response = Response::new(Either::Left(Full::new(Bytes::new())));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        if let Some(value) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        if !answer_header.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&answer_header) {
                headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }
        response
    }

    /// Whether the upgrade's `Origin` passes the server's policy; the host
    /// is the `Host` header's, or the request target's authority.
    fn origin_allowed<B>(&self, request: &HttpRequest<B>) -> bool {
        let policy = &self.server_options.origins;
        let Some(origin) = request.headers().get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return *policy == OriginPolicy::Any;
        };
        let host = match request.headers().get(header::HOST) {
            Some(host) => host.to_str().ok(),
            None => request.uri().authority().map(|a| a.as_str()),
        };
        policy.allows(Some(origin), host)
    }

    /// Accepts what the client offers of the configured extensions. A
    /// malformed offer list is declined whole; raw routes negotiate nothing.
    fn negotiate_extensions(&self, headers: &http::HeaderMap, raw: bool) -> Negotiated {
        if self.extensions.is_empty() || raw {
            return (Vec::new(), Vec::new());
        }
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        match ExtensionHeader::parse_list(&offered.join(",")) {
            Ok(offers) => self.extensions.accept(&offers),
            Err(error) => {
                debug!(%error, "declining a malformed extension offer");
                (Vec::new(), Vec::new())
            }
        }
    }
}

/// What a session starts with after the upgrade.
struct SessionParts {
    handshake: Handshake,
    options: WebSocketOptions,
    raw: bool,
    extensions: Vec<Box<dyn Extension>>,
    /// The connection's place among the server's; freed when it ends.
    slot: ConnectionSlot,
}

/// Starts one upgraded connection: the driver and the handler in one task of
/// their own.
///
/// The task that waited for the upgrade ends here, and the session's task
/// holds only what the session needs: a [`SessionTask`] is a plain struct, a
/// few hundred bytes smaller than an `async` block joining the same two
/// futures, which also kept the moved-from engine and both arms of the
/// downcast alive. This is most of an idle connection's memory.
fn spawn_session(
    upgraded: hyper::upgrade::Upgraded,
    parts: SessionParts,
    handler: Handler,
    peer: SocketAddr,
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
    let protocol =
        Protocol::new(Role::Server, config, std::time::Instant::now()).with_extensions(extensions);
    let link = Arc::new(Link::new(&options));
    let session = Session::new(link.clone(), handshake);
    slot.attach(&link);
    debug!(session = slot.id, %peer, "session open");
    let handler = AssertUnwindSafe(handler(session)).catch_unwind();

    // Use the TCP (or TLS) stream directly when hyper hands it back: no
    // boxed I/O, and no HTTP idle deadline on the session's path.
    let upgraded = match upgraded.downcast::<TokioIo<IdleIo<TcpStream>>>() {
        Ok(parts) => return spawn_on(parts, protocol, handler, link, slot),
        Err(upgraded) => upgraded,
    };
    #[cfg(feature = "tls")]
    let upgraded =
        match upgraded.downcast::<TokioIo<IdleIo<tokio_rustls::server::TlsStream<TcpStream>>>>() {
            Ok(parts) => return spawn_on(parts, protocol, handler, link, slot),
            Err(upgraded) => upgraded,
        };
    let driver = Driver::new(TokioIo::new(upgraded), protocol, link.clone());
    tokio::spawn(SessionTask::new(driver, handler, link, slot));
}

/// Spawns the session's task on the stream hyper gave back after the
/// upgrade, out of its HTTP idle deadline.
fn spawn_on<IO>(
    parts: hyper::upgrade::Parts<TokioIo<IdleIo<IO>>>,
    mut protocol: Protocol,
    handler: HandlerTask,
    link: Arc<Link>,
    slot: ConnectionSlot,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    protocol.receive_data(&parts.read_buf);
    // It may be a slice of hyper's read buffer: do not keep that buffer
    // alive for the life of the session.
    drop(parts.read_buf);
    let driver = Driver::new(parts.io.into_inner().into_inner(), protocol, link.clone());
    tokio::spawn(SessionTask::new(driver, handler, link, slot));
}

/// How many handler-then-driver rounds one poll of a session may run.
const SESSION_ROUNDS: usize = 8;

type HandlerTask = futures::future::CatchUnwind<AssertUnwindSafe<BoxFuture<'static, CloseReason>>>;

/// The driver and the handler of one session, polled together (as `join!`
/// would): done when both are. The connection (the driver) ends on its own,
/// or when a graceful shutdown's deadline drops it; its place among the
/// server's connections is freed then, while the handler may run on.
struct SessionTask<IO> {
    driver: Option<Driver<IO>>,
    handler: Option<HandlerTask>,
    link: Arc<Link>,
    /// The session's number in the logs ("session open" gives its peer):
    /// 8 bytes where the address took 32.
    id: u64,
    slot: Option<ConnectionSlot>,
}

impl<IO> SessionTask<IO> {
    fn new(
        driver: Driver<IO>,
        handler: HandlerTask,
        link: Arc<Link>,
        slot: ConnectionSlot,
    ) -> Self {
        Self {
            driver: Some(driver),
            handler: Some(handler),
            link,
            id: slot.id,
            slot: Some(slot),
        }
    }

    /// Ends the connection: drops the socket, the engine and the slot.
    fn end_connection(&mut self) {
        self.driver = None;
        self.slot = None;
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
        for _ in 0..SESSION_ROUNDS {
            if let Some(handler) = this.handler.as_mut() {
                if let Poll::Ready(result) = handler.poll_unpin(cx) {
                    this.handler = None;
                    let reason = result.unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        error!(session = this.id, panic = %what, "WebSocket handler panicked");
                        CloseReason::new(CloseCode::InternalError, "handler panicked")
                    });
                    this.link.request_close(reason);
                }
            }
            if let Some(driver) = this.driver.as_mut() {
                if driver.poll_unpin(cx).is_ready() {
                    // Drop the socket and the engine's buffers at once.
                    this.end_connection();
                } else if this.link.is_dropped() {
                    debug!(
                        session = this.id,
                        "dropping the connection at the shutdown deadline"
                    );
                    this.end_connection();
                    this.link.finish(CloseReason::new(
                        CloseCode::GoingAway,
                        "the server shut down before the close handshake ended",
                    ));
                }
            }
            if this.handler.is_none() || !this.link.has_inbound() {
                break;
            }
        }
        if this.handler.is_some() && this.link.has_inbound() {
            // Still busy after a fair share: come back after other tasks.
            cx.waker().wake_by_ref();
        }
        if this.handler.is_none() && this.driver.is_none() {
            debug!(session = this.id, "session done");
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
