//! tandem sessions inside an axum 0.8 app (cargo feature `axum`).
//!
//! [`WebSocketUpgrade`] is an extractor that mirrors
//! `axum::extract::ws::WebSocketUpgrade`: moving over is a change of the
//! `use` line, and the handler gets a tandem [`Session`] with tandem's
//! engine, limits, timers, backpressure and permessage-deflate. Other
//! extractors (`State`, `Path`, `Query`, typed headers) run as usual, and
//! the handler can answer with a 401 or anything else instead of upgrading.
//!
//! ```no_run
//! use axum::extract::Path;
//! use axum::http::StatusCode;
//! use axum::response::{IntoResponse, Response};
//! use axum::routing::get;
//! use axum::Router;
//! use tandem::axum::WebSocketUpgrade;
//! use tandem::server::SessionRegistry;
//!
//! async fn room(Path(room): Path<String>, ws: WebSocketUpgrade) -> Response {
//!     if room == "closed" {
//!         return StatusCode::FORBIDDEN.into_response();
//!     }
//!     ws.protocols(["chat"])
//!         .on_upgrade(move |session: tandem::Session| async move {
//!             let _ = session.send(format!("welcome to {room}")).await;
//!         })
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let sessions = SessionRegistry::new();
//! let app = Router::new()
//!     .route("/echo", get(|ws: WebSocketUpgrade| async { ws.on_upgrade(tandem::demo::echo) }))
//!     .route("/rooms/{room}", get(room));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::fmt;
use std::future::Future;

use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use http_body_util::Full;

use crate::extensions::ExtensionFactory;
use crate::native::server::{self, HandlerOutput, SessionRegistry, UpgradeRequest};
use crate::options::WebSocketOptions;
use crate::session::Session;

/// The axum extractor of a WebSocket upgrade; see [the module](self).
///
/// A request that is not a valid upgrade is rejected with
/// [`WebSocketUpgradeRejection`]: 400, or 426 with `Upgrade: websocket`,
/// as tandem's own server answers.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    inner: server::WebSocketUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        server::WebSocketUpgrade::from_parts(parts, None)
            .map(|inner| Self { inner })
            .map_err(|response| WebSocketUpgradeRejection { response })
    }
}

impl WebSocketUpgrade {
    /// The upgrade request: path, query, headers, the subprotocols offered.
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) {
    /// let offered = ws.request().offered_protocols().to_vec();
    /// # }
    /// ```
    pub fn request(&self) -> &UpgradeRequest {
        self.inner.request()
    }

    /// The subprotocols this endpoint speaks, in preference order; the
    /// first the client offers is answered, and a client that offers none
    /// gets none (as axum's `protocols`).
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) {
    /// let ws = ws.protocols(["chat.v2", "chat"]);
    /// # }
    /// ```
    pub fn protocols<I, P>(self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        Self {
            inner: self.inner.protocols(protocols),
        }
    }

    /// Answers with subprotocol `protocol`, which the client must have
    /// offered (else 400): a choice made from the request.
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) {
    /// let ws = ws.protocol("chat");
    /// # }
    /// ```
    pub fn protocol(self, protocol: impl Into<String>) -> Self {
        Self {
            inner: self.inner.protocol(protocol),
        }
    }

    /// Session options: limits, ping period, timeouts, queues.
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) {
    /// let ws = ws.options(tandem::WebSocketOptions::default());
    /// # }
    /// ```
    pub fn options(self, options: WebSocketOptions) -> Self {
        Self {
            inner: self.inner.options(options),
        }
    }

    /// Negotiates `factory`'s extension with a client that offers it.
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) {
    /// let ws = ws.extension(tandem::extensions::PerMessageDeflate::new());
    /// # }
    /// ```
    pub fn extension(self, factory: impl ExtensionFactory) -> Self {
        Self {
            inner: self.inner.extension(factory),
        }
    }

    /// Attaches `state` to the session, for the handler to read with
    /// [`Session::state`].
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) {
    /// #[derive(Clone)]
    /// struct User(String);
    /// let ws = ws.state(User("alice".into()));
    /// # }
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(self, state: T) -> Self {
        Self {
            inner: self.inner.state(state),
        }
    }

    /// Registers the session in `registry` for graceful shutdown.
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade, registry: tandem::server::SessionRegistry) {
    /// let ws = ws.registry(&registry);
    /// # }
    /// ```
    pub fn registry(self, registry: &SessionRegistry) -> Self {
        Self {
            inner: self.inner.registry(registry),
        }
    }

    /// The 101 response; once the connection is handed over, `handler`
    /// runs on the session.
    ///
    /// ```no_run
    /// # fn f(ws: tandem::axum::WebSocketUpgrade) -> axum_core::response::Response {
    /// ws.on_upgrade(tandem::demo::echo)
    /// # }
    /// ```
    pub fn on_upgrade<H, F>(self, handler: H) -> Response
    where
        H: FnOnce(Session) -> F + Send + 'static,
        F: Future + Send + 'static,
        F::Output: HandlerOutput,
    {
        into_axum(self.inner.on_upgrade(handler))
    }
}

/// A request that is not a valid WebSocket upgrade, answered as tandem's
/// server answers it.
///
/// ```no_run
/// # fn f(rejection: tandem::axum::WebSocketUpgradeRejection) {
/// use axum_core::response::IntoResponse;
/// let status = rejection.status();
/// let response = rejection.into_response();
/// # }
/// ```
#[derive(Debug)]
pub struct WebSocketUpgradeRejection {
    response: http::Response<Full<Bytes>>,
}

impl WebSocketUpgradeRejection {
    /// The status it is answered with (400, 426, …).
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }
}

impl fmt::Display for WebSocketUpgradeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid WebSocket upgrade ({})", self.status())
    }
}

impl std::error::Error for WebSocketUpgradeRejection {}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        into_axum(self.response)
    }
}

fn into_axum(response: http::Response<Full<Bytes>>) -> Response {
    response.map(Body::new)
}
