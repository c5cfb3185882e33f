//! The WebSocket upgrade of one HTTP request, shared by tandem's own
//! [`Server`](super::Server), the axum extractor and any hyper service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use tracing::debug;

use super::admission::{Accepted, UpgradeRequest};
use super::connections::{Connections, SharedSlot};
use super::registry::SessionRegistry;
use super::routing::HandlerOutput;
use super::session_task::{spawn_session, SessionParts};
use crate::extensions::{ExtensionFactory, ExtensionHeader, Extensions, Negotiated};
use crate::options::WebSocketOptions;
use crate::protocol::handshake;
use crate::session::{Handshake, Request};

/// How long the client may take to complete the upgrade after the 101 by
/// default (hyper hands the connection over once the 101 is written).
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// A checked WebSocket upgrade request, not yet answered: the way into a
/// tandem [`Session`](crate::Session) from any hyper-based server; the axum
/// extractor (`tandem::axum::WebSocketUpgrade`, cargo feature `axum`) wraps
/// the same type.
///
/// [`WebSocketUpgrade::from_request`] checks the request (RFC 6455 §4.2.1)
/// and takes hyper's upgrade handle out of it; the builder methods set what
/// the session speaks; [`WebSocketUpgrade::on_upgrade`] answers 101 and
/// starts the session once hyper hands the connection over. The session is
/// the one tandem's server runs: the same engine, limits, timers,
/// backpressure and extensions.
///
/// ```no_run
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{server::conn::http1, service::service_fn, Request, Response};
/// use hyper_util::rt::TokioIo;
/// use tandem::server::{SessionRegistry, WebSocketUpgrade};
///
/// // A hyper 1 service: WebSocket sessions at /echo, 404 elsewhere.
/// async fn service(
///     mut request: Request<Incoming>,
///     sessions: SessionRegistry,
/// ) -> Result<Response<Full<Bytes>>, Infallible> {
///     if request.uri().path() != "/echo" {
///         return Ok(Response::builder().status(404).body(Full::default()).unwrap());
///     }
///     Ok(match WebSocketUpgrade::from_request(&mut request) {
///         Ok(upgrade) => upgrade.registry(&sessions).on_upgrade(tandem::demo::echo),
///         Err(refusal) => refusal, // 426 or 400, saying why
///     })
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// // The sessions, for `sessions.shutdown_gracefully(deadline)` at the end.
/// let sessions = SessionRegistry::new();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (stream, _) = listener.accept().await?;
///     let sessions = sessions.clone();
///     let service = service_fn(move |request| service(request, sessions.clone()));
///     // `with_upgrades`: hyper hands the connection over after the 101.
///     let connection = http1::Builder::new()
///         .serve_connection(TokioIo::new(stream), service)
///         .with_upgrades();
///     tokio::spawn(connection);
/// }
/// # }
/// ```
pub struct WebSocketUpgrade {
    accept: String,
    request: UpgradeRequest,
    offered_extensions: Vec<ExtensionHeader>,
    on_upgrade: OnUpgrade,
    protocols: Vec<String>,
    /// Refuse clients that offer none of `protocols` (tandem's routes), or
    /// go on without a subprotocol (axum's extractor).
    require_protocol: bool,
    accepted: Accepted,
    options: WebSocketOptions,
    extensions: Extensions,
    raw: bool,
    slot: Slot,
    upgrade_timeout: Duration,
}

/// Where a session takes its place, for caps and graceful shutdown.
pub(super) enum Slot {
    /// Nowhere: the embedding application tracks its sessions itself.
    None,
    /// In a registry the application shuts down.
    Registry(Arc<Connections>),
    /// The place of a connection that tandem's server accepted: it becomes
    /// the session's once the upgrade is sure to be answered with 101.
    Connection(SharedSlot),
}

/// An HTTP response with a one-line text body.
pub(super) fn text_response(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into() + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A 503 for an upgrade that cannot take a place now (a graceful shutdown
/// began), with the `Retry-After` that a full server sends.
pub(super) fn unavailable(why: &str) -> Response<Full<Bytes>> {
    let mut response = text_response(StatusCode::SERVICE_UNAVAILABLE, why);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(super::RETRY_AFTER_SECS),
    );
    response
}

impl WebSocketUpgrade {
    /// Checks that `request` is a valid WebSocket upgrade and takes hyper's
    /// upgrade handle out of it; a request that is not gets the response
    /// to answer it with (400, or 426 with `Upgrade: websocket`), the same
    /// statuses as tandem's server.
    ///
    /// ```no_run
    /// # fn f(mut request: http::Request<hyper::body::Incoming>) {
    /// match tandem::server::WebSocketUpgrade::from_request(&mut request) {
    ///     Ok(upgrade) => { /* configure it, then `upgrade.on_upgrade(handler)` */ }
    ///     Err(refusal) => { /* answer with `refusal` */ }
    /// }
    /// # }
    /// ```
    #[allow(clippy::result_large_err)]
    pub fn from_request<B>(request: &mut http::Request<B>) -> Result<Self, Response<Full<Bytes>>> {
        Self::from_request_at(request, None)
    }

    /// [`WebSocketUpgrade::from_request`], with the peer's address when the
    /// server knows it.
    #[allow(clippy::result_large_err)]
    pub(super) fn from_request_at<B>(
        request: &mut http::Request<B>,
        peer: Option<SocketAddr>,
    ) -> Result<Self, Response<Full<Bytes>>> {
        let method = request.method().clone();
        let (version, uri) = (request.version(), request.uri().clone());
        let headers = request.headers().clone();
        Self::from_head(
            &method,
            version,
            &uri,
            headers,
            request.extensions_mut(),
            peer,
        )
    }

    /// [`WebSocketUpgrade::from_request`] on the head of a request, with
    /// the peer's address when the server knows it.
    #[cfg(feature = "axum")]
    #[allow(clippy::result_large_err)]
    pub(crate) fn from_parts(
        parts: &mut http::request::Parts,
        peer: Option<SocketAddr>,
    ) -> Result<Self, Response<Full<Bytes>>> {
        let headers = parts.headers.clone();
        Self::from_head(
            &parts.method,
            parts.version,
            &parts.uri,
            headers,
            &mut parts.extensions,
            peer,
        )
    }

    #[allow(clippy::result_large_err)]
    fn from_head(
        method: &http::Method,
        version: http::Version,
        uri: &http::Uri,
        headers: http::HeaderMap,
        extensions: &mut http::Extensions,
        peer: Option<SocketAddr>,
    ) -> Result<Self, Response<Full<Bytes>>> {
        let accept = match handshake::check_request(method, version, &headers) {
            Ok(accept) => accept,
            Err(rejection) => {
                debug!(?peer, status = %rejection.status, reason = %rejection.reason, "upgrade refused");
                let mut response = text_response(rejection.status, rejection.reason);
                if rejection.status == StatusCode::UPGRADE_REQUIRED {
                    let headers = response.headers_mut();
                    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                    headers.insert(
                        header::SEC_WEBSOCKET_VERSION,
                        HeaderValue::from_static("13"),
                    );
                }
                return Err(response);
            }
        };
        let Some(on_upgrade) = extensions.remove::<OnUpgrade>() else {
            return Err(text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this connection cannot be upgraded (not HTTP/1.1 served by hyper)",
            ));
        };
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let offered_extensions =
            ExtensionHeader::parse_list(&offered.join(",")).unwrap_or_else(|error| {
                debug!(%error, "declining a malformed extension offer");
                Vec::new()
            });
        let request = UpgradeRequest {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            params: Vec::new(),
            offered_protocols: handshake::offered_protocols(&headers)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            headers,
            peer,
        };
        Ok(Self {
            accept,
            request,
            offered_extensions,
            on_upgrade,
            protocols: Vec::new(),
            require_protocol: false,
            accepted: Accepted::default(),
            options: WebSocketOptions::default(),
            extensions: Extensions::default(),
            raw: false,
            slot: Slot::None,
            upgrade_timeout: UPGRADE_TIMEOUT,
        })
    }

    /// The request, as a [`Route::before_upgrade`](super::Route::before_upgrade)
    /// hook sees it: path, query, headers, the subprotocols offered.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// let token = upgrade.request().query_param("token");
    /// # }
    /// ```
    pub fn request(&self) -> &UpgradeRequest {
        &self.request
    }

    /// The subprotocols this endpoint speaks, in preference order: the
    /// first that the client offers is answered (as axum's `protocols`). A
    /// client that offers none of them gets no subprotocol.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// let upgrade = upgrade.protocols(["chat.v2", "chat"]);
    /// # }
    /// ```
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Answers with subprotocol `protocol`, which the client must have
    /// offered (else the upgrade fails with 400): for a choice made from
    /// the request, such as a token sent as a subprotocol.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// let upgrade = upgrade.protocol("chat");
    /// # }
    /// ```
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.accepted.protocol = Some(protocol.into());
        self
    }

    /// Session options: limits, ping period, timeouts, queues.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// let upgrade = upgrade.options(tandem::WebSocketOptions {
    ///     max_message_size: Some(64 << 10),
    ///     ..Default::default()
    /// });
    /// # }
    /// ```
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Negotiates `factory`'s extension (permessage-deflate, or one of
    /// your own) with a client that offers it; in the order added.
    ///
    /// # Panics
    ///
    /// When the extension claims an RSV bit that one added before claims, or
    /// is added twice.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// use tandem::extensions::PerMessageDeflate;
    /// let upgrade = upgrade.extension(PerMessageDeflate::new());
    /// # }
    /// ```
    pub fn extension(mut self, factory: impl ExtensionFactory) -> Self {
        self.extensions.add(Arc::new(factory));
        self
    }

    /// Attaches `state` to the session, for the handler to read with
    /// [`Session::state`](crate::Session::state).
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// #[derive(Clone)]
    /// struct User(String);
    /// let upgrade = upgrade.state(User("alice".into()));
    /// # }
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.accepted.state.insert(state);
        self
    }

    /// Registers the session in `registry`, whose
    /// [`shutdown_gracefully`](SessionRegistry::shutdown_gracefully) sends
    /// it 1001 Going Away; while that runs, upgrades get 503.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade, registry: &tandem::server::SessionRegistry) {
    /// let upgrade = upgrade.registry(registry);
    /// # }
    /// ```
    pub fn registry(mut self, registry: &SessionRegistry) -> Self {
        self.slot = Slot::Registry(registry.connections().clone());
        self
    }

    /// Answers 101 Switching Protocols and, once hyper hands the connection
    /// over, runs `handler` on the session (in a task of its own, with the
    /// connection's driver). Refusals that depend on the configuration
    /// (a subprotocol the client did not offer; a registry shutting down)
    /// are answered instead.
    ///
    /// ```no_run
    /// # fn f(upgrade: tandem::server::WebSocketUpgrade) {
    /// let response = upgrade.on_upgrade(|session: tandem::Session| async move {
    ///     let _ = session.send("hello").await;
    /// });
    /// # }
    /// ```
    pub fn on_upgrade<H, F>(self, handler: H) -> Response<Full<Bytes>>
    where
        H: FnOnce(crate::Session) -> F + Send + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        self.start(Box::new(move |session| {
            Box::pin(handler(session).map(HandlerOutput::into_close_reason))
        }))
    }

    // ----- for tandem's own server -------------------------------------------

    /// Refuses clients that offer none of the subprotocols, as tandem's
    /// routes do (Ktor's `webSocket(path, protocol)`).
    pub(super) fn require_protocol(mut self) -> Self {
        self.require_protocol = true;
        self
    }

    pub(super) fn raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }

    pub(super) fn with_extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }

    pub(super) fn path_params(mut self, params: Vec<(String, String)>) -> Self {
        self.request.params = params;
        self
    }

    pub(super) fn accepted(mut self, accepted: Accepted) -> Self {
        self.accepted = accepted;
        self
    }

    pub(super) fn slot(mut self, slot: Slot) -> Self {
        self.slot = slot;
        self
    }

    pub(super) fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }

    /// The subprotocol to answer with, or the 400 for a client that did
    /// not offer what is required.
    #[allow(clippy::result_large_err)]
    fn choose_protocol(&mut self) -> Result<Option<String>, Response<Full<Bytes>>> {
        let offered = &self.request.offered_protocols;
        if let Some(chosen) = self.accepted.protocol.take() {
            if !offered.contains(&chosen) {
                return Err(text_response(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the subprotocol {chosen:?} was chosen, but the client offered {offered:?}"
                    ),
                ));
            }
            return Ok(Some(chosen));
        }
        if self.protocols.is_empty() {
            return Ok(None);
        }
        let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
        match handshake::select_protocol(&self.protocols, &offered) {
            Some(protocol) => Ok(Some(protocol.to_owned())),
            None if self.require_protocol => Err(text_response(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} speaks the subprotocols {:?}; the client offered {:?}",
                    self.request.path, self.protocols, offered
                ),
            )),
            None => Ok(None),
        }
    }

    /// Negotiates extensions: what the client offers of those configured.
    /// Raw sessions negotiate nothing.
    fn negotiate(&self) -> Negotiated {
        if self.extensions.is_empty() || self.raw {
            return (Vec::new(), Vec::new());
        }
        self.extensions.accept(&self.offered_extensions)
    }

    /// Answers 101 and starts the session once the connection is handed over.
    pub(super) fn start(
        mut self,
        handler: super::session_task::StartHandler,
    ) -> Response<Full<Bytes>> {
        let protocol = match self.choose_protocol() {
            Ok(protocol) => protocol,
            Err(refusal) => return refusal,
        };
        // After every refusal that leaves the connection open: a connection
        // that stays HTTP keeps its place.
        let slot = match std::mem::replace(&mut self.slot, Slot::None) {
            Slot::None => Ok(None),
            Slot::Connection(slot) => slot.take_for_session().map(Some),
            Slot::Registry(registry) => registry.try_admit_session().map(Some),
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(why) => {
                debug!(peer = ?self.request.peer, why, "upgrade refused with 503");
                return unavailable(why);
            }
        };
        let (answers, extensions) = self.negotiate();
        let answer_header = ExtensionHeader::format_list(&answers);

        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(value) = HeaderValue::from_str(&self.accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        if let Some(value) = protocol
            .as_deref()
            .and_then(|p| HeaderValue::from_str(p).ok())
        {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        if !answer_header.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&answer_header) {
                headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }

        // Packed: one allocation, far smaller than a `HeaderMap`, which every
        // open session would keep.
        let request = &self.request;
        let info = Request::packed(&request.path, request.query.as_deref(), &request.headers)
            .with_params(std::mem::take(&mut self.request.params));
        let peer = self.request.peer;
        let handshake = Handshake {
            protocol: protocol.map(Into::into),
            extensions: answers.into(),
            request: Some(info),
            state: std::mem::take(&mut self.accepted.state),
        };
        let parts = SessionParts {
            handshake,
            options: self.options,
            raw: self.raw,
            extensions,
            slot,
        };
        let (on_upgrade, timeout) = (self.on_upgrade, self.upgrade_timeout);
        tokio::spawn(async move {
            let upgraded = match tokio::time::timeout(timeout, on_upgrade).await {
                Ok(upgraded) => upgraded,
                Err(_) => {
                    debug!(?peer, "the upgrade did not complete in time");
                    return;
                }
            };
            match upgraded {
                Ok(upgraded) => spawn_session(upgraded, parts, handler, peer),
                Err(error) => debug!(?peer, %error, "upgrade failed"),
            }
        });
        response
    }
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("request", &self.request)
            .field("protocols", &self.protocols)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
