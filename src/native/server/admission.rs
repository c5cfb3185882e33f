//! What a route's hook sees before an upgrade, and what it decides.

use std::borrow::Cow;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Response};

/// An upgrade request, as a route's
/// [`before_upgrade`](super::Route::before_upgrade) hook sees it: already
/// checked as a valid WebSocket upgrade, not yet answered.
///
/// ```
/// use tandem::server::UpgradeRequest;
///
/// fn token(request: &UpgradeRequest) -> Option<String> {
///     // Browsers cannot set headers on a WebSocket: a token often travels
///     // as a subprotocol, or in the query.
///     request
///         .offered_protocols()
///         .iter()
///         .find_map(|p| p.strip_prefix("token."))
///         .map(str::to_owned)
///         .or_else(|| request.query_param("token").map(|t| t.into_owned()))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) params: Vec<(String, String)>,
    pub(super) headers: HeaderMap,
    pub(super) peer: Option<SocketAddr>,
    pub(super) offered_protocols: Vec<String>,
}

impl UpgradeRequest {
    /// The request path, without the query.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// assert!(request.path().starts_with('/'));
    /// # }
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string, without the `?`.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// let query = request.query().unwrap_or_default();
    /// # }
    /// ```
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The first value of query parameter `name`, decoded as a form.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// let room = request.query_param("room");
    /// # }
    /// ```
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        crate::session::query_param(self.query.as_deref()?, name)
    }

    /// The value of the route's path parameter `name` (`/rooms/{id}`),
    /// percent-decoded.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// let room = request.path_param("id");
    /// # }
    /// ```
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    /// The request headers.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// let auth = request.headers().get("authorization");
    /// # }
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The client's address (the proxy's, behind a proxy), when the server
    /// knows it.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// if let Some(peer) = request.peer_addr() {
    ///     println!("upgrade from {peer}");
    /// }
    /// # }
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The subprotocols the client offered, in its order of preference.
    ///
    /// ```
    /// # fn f(request: tandem::server::UpgradeRequest) {
    /// let speaks_v2 = request.offered_protocols().iter().any(|p| p == "chat.v2");
    /// # }
    /// ```
    pub fn offered_protocols(&self) -> &[String] {
        &self.offered_protocols
    }
}

/// What a route's [`before_upgrade`](super::Route::before_upgrade) hook
/// decides: refuse with an HTTP response of its own, or accept, optionally
/// choosing the subprotocol and attaching typed state for the handler.
///
/// ```
/// use tandem::server::Admission;
///
/// #[derive(Clone)]
/// struct User { name: String }
///
/// let welcome = Admission::accept()
///     .protocol("chat")
///     .state(User { name: "alice".into() });
/// let refused = Admission::refuse(http::Response::builder().status(403).body("no").unwrap());
/// ```
#[derive(Debug)]
pub struct Admission {
    pub(super) decision: Result<Accepted, Response<Bytes>>,
}

/// What an accepting hook settled.
#[derive(Debug, Default)]
pub(super) struct Accepted {
    /// The subprotocol to answer with, instead of the route's choice.
    pub(super) protocol: Option<String>,
    pub(super) state: http::Extensions,
}

impl Admission {
    /// Goes on with the upgrade; the route's subprotocols and options apply.
    ///
    /// ```
    /// let admission = tandem::server::Admission::accept();
    /// ```
    pub fn accept() -> Self {
        Self {
            decision: Ok(Accepted::default()),
        }
    }

    /// Answers the request with `response` instead of upgrading: any
    /// status, headers and body (a 401 with `WWW-Authenticate`, a 403, a
    /// redirect…).
    ///
    /// ```
    /// let admission = tandem::server::Admission::refuse(
    ///     http::Response::builder()
    ///         .status(401)
    ///         .header("www-authenticate", "Bearer")
    ///         .body("log in first")
    ///         .unwrap(),
    /// );
    /// ```
    pub fn refuse<B: Into<Bytes>>(response: Response<B>) -> Self {
        Self {
            decision: Err(response.map(Into::into)),
        }
    }

    /// Answers with subprotocol `protocol` (one the client offered; the
    /// upgrade fails with 400 otherwise), whatever the route lists: for
    /// a token sent as a subprotocol, or a protocol version chosen from the
    /// request. No effect on a refusal.
    ///
    /// ```
    /// let admission = tandem::server::Admission::accept().protocol("chat.v2");
    /// ```
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        if let Ok(accepted) = &mut self.decision {
            accepted.protocol = Some(protocol.into());
        }
        self
    }

    /// Attaches `state` to the session, for the handler to read with
    /// [`Session::state`](crate::Session::state); one value per type. No
    /// effect on a refusal.
    ///
    /// ```
    /// #[derive(Clone)]
    /// struct RoomId(u64);
    /// let admission = tandem::server::Admission::accept().state(RoomId(7));
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        if let Ok(accepted) = &mut self.decision {
            accepted.state.insert(state);
        }
        self
    }
}
