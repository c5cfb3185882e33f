//! WebSocket routes: a path pattern, the subprotocols the route speaks, its
//! options, a hook that runs before the upgrade, and the handler.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::warn;

use crate::close::{CloseCode, CloseReason};
use crate::options::WebSocketOptions;
use crate::session::Session;

use super::admission::{Admission, UpgradeRequest};

/// A session handler, as the server stores it.
pub(super) type Handler = Arc<dyn Fn(Session) -> BoxFuture<'static, CloseReason> + Send + Sync>;

/// A hook that runs before the upgrade, as the server stores it.
pub(super) type Hook = Arc<dyn Fn(UpgradeRequest) -> BoxFuture<'static, Admission> + Send + Sync>;

/// Boxes `handler` as the server stores it.
pub(super) fn boxed_handler<H, F>(handler: H) -> Handler
where
    H: Fn(Session) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
    F::Output: HandlerOutput,
{
    // `map`, not an `async` block: the block would hold the handler's
    // future twice (captured, then awaited), in every session's memory.
    Arc::new(move |session| Box::pin(handler(session).map(HandlerOutput::into_close_reason)))
}

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

/// A WebSocket route: a path, the subprotocols it speaks, its options and
/// what runs before the upgrade.
///
/// A path segment written `{name}` matches any one segment, which the
/// handler reads with [`Request::path_param`](crate::Request::path_param);
/// other segments match exactly. A `&str` converts into a route with no
/// subprotocol and the server's options.
///
/// ```
/// use tandem::server::Route;
/// let route = Route::new("/rooms/{id}").protocol("chat.v2").protocol("chat");
/// assert_eq!(route.path(), "/rooms/{id}");
/// ```
#[derive(Clone)]
pub struct Route {
    path: String,
    pattern: Vec<Segment>,
    pub(super) protocols: Vec<String>,
    pub(super) options: Option<WebSocketOptions>,
    pub(super) hook: Option<Hook>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Exact(String),
    Param(String),
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("protocols", &self.protocols)
            .field("options", &self.options)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Route {
    /// A route at `path` (matched without the query).
    ///
    /// ```
    /// let route = tandem::server::Route::new("/echo");
    /// assert_eq!(route.path(), "/echo");
    /// ```
    pub fn new(path: impl Into<String>) -> Self {
        let path = path.into();
        let pattern = path
            .split('/')
            .map(|segment| {
                match segment
                    .strip_prefix('{')
                    .and_then(|rest| rest.strip_suffix('}'))
                {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Exact(segment.to_owned()),
                }
            })
            .collect();
        Self {
            path,
            pattern,
            protocols: Vec::new(),
            options: None,
            hook: None,
        }
    }

    /// Adds a subprotocol this route speaks, in preference order (Ktor's
    /// `webSocket(path, protocol)`). A route with subprotocols refuses
    /// clients that offer none of them with 400, unless its
    /// [`before_upgrade`](Route::before_upgrade) hook chooses one.
    ///
    /// ```
    /// let route = tandem::server::Route::new("/chat").protocol("chat");
    /// ```
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Options for this route's sessions instead of the server's.
    ///
    /// ```
    /// use tandem::WebSocketOptions;
    /// let route = tandem::server::Route::new("/upload").options(WebSocketOptions {
    ///     max_message_size: Some(16 << 20),
    ///     ..WebSocketOptions::default()
    /// });
    /// ```
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// Runs `hook` before each upgrade on this route, after the request was
    /// checked as a WebSocket upgrade and before the 101 is sent (Ktor's
    /// `authenticate { webSocket(…) }`).
    ///
    /// The hook sees the request (path and its parameters, query, headers,
    /// the peer's address, the subprotocols offered) and answers with an
    /// [`Admission`]: refuse with any HTTP response (a 401 with
    /// `WWW-Authenticate`, a 403, …), or accept, choosing the subprotocol
    /// and attaching typed state that the handler reads with
    /// [`Session::state`].
    ///
    /// ```
    /// use tandem::server::{Admission, Route, UpgradeRequest};
    ///
    /// let route = Route::new("/private").before_upgrade(|request: UpgradeRequest| async move {
    ///     match request.headers().get("authorization") {
    ///         Some(token) if token == "Bearer s3cret" => Admission::accept().state("alice".to_string()),
    ///         _ => Admission::refuse(
    ///             http::Response::builder()
    ///                 .status(401)
    ///                 .header("www-authenticate", "Bearer")
    ///                 .body("a bearer token is required")
    ///                 .unwrap(),
    ///         ),
    ///     }
    /// });
    /// ```
    pub fn before_upgrade<H, F>(mut self, hook: H) -> Self
    where
        H: Fn(UpgradeRequest) -> F + Send + Sync + 'static,
        F: Future<Output = Admission> + Send + 'static,
    {
        self.hook = Some(Arc::new(move |request| Box::pin(hook(request))));
        self
    }

    /// The route's path, as written.
    ///
    /// ```
    /// assert_eq!(tandem::server::Route::new("/a/{b}").path(), "/a/{b}");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The route's path parameters in `path`, percent-decoded, or `None`
    /// when `path` is not this route's.
    ///
    /// Every segment is compared decoded, as the route is written: a
    /// request target is always percent-encoded, so `/café` arrives as
    /// `/caf%C3%A9`, and a route written `/café` must match it.
    pub(super) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        let mut segments = path.split('/');
        for expected in &self.pattern {
            let segment = percent_encoding::percent_decode_str(segments.next()?)
                .decode_utf8()
                .ok()?;
            match expected {
                Segment::Exact(exact) if *exact == segment => {}
                Segment::Exact(_) => return None,
                Segment::Param(_) if segment.is_empty() => return None,
                Segment::Param(name) => params.push((name.clone(), segment.into_owned())),
            }
        }
        segments.next().is_none().then_some(params)
    }

    /// Whether the route has no parameters (an exact path wins over a pattern).
    pub(super) fn is_exact(&self) -> bool {
        self.pattern.iter().all(|s| matches!(s, Segment::Exact(_)))
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

/// A route with its handler.
pub(super) struct WsRoute {
    pub(super) route: Route,
    pub(super) raw: bool,
    pub(super) handler: Handler,
}

/// The route for `path` among `routes`, with its path parameters: an exact
/// path first, then the first pattern that matches, in the order added.
pub(super) fn find<'a>(
    routes: &'a [WsRoute],
    path: &str,
) -> Option<(&'a WsRoute, Vec<(String, String)>)> {
    let exact = routes
        .iter()
        .filter(|r| r.route.is_exact())
        .find_map(|r| r.route.matches(path).map(|p| (r, p)));
    exact.or_else(|| {
        routes
            .iter()
            .filter(|r| !r.route.is_exact())
            .find_map(|r| r.route.matches(path).map(|p| (r, p)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_match_one_segment_and_are_percent_decoded() {
        let route = Route::new("/rooms/{id}/users/{name}");
        assert_eq!(
            route.matches("/rooms/42/users/J%C3%BCrgen%20K"),
            Some(vec![
                ("id".into(), "42".into()),
                ("name".into(), "Jürgen K".into())
            ])
        );
        assert_eq!(route.matches("/rooms/42/users"), None);
        assert_eq!(route.matches("/rooms//users/x"), None, "an empty segment");
        assert_eq!(route.matches("/rooms/1/users/x/y"), None);
        assert_eq!(Route::new("/echo").matches("/echo"), Some(vec![]));
        assert_eq!(Route::new("/echo").matches("/echo/"), None);
    }

    #[test]
    fn exact_segments_match_their_percent_encoded_form() {
        assert_eq!(Route::new("/café").matches("/caf%C3%A9"), Some(vec![]));
        assert_eq!(
            Route::new("/a b/{x}").matches("/a%20b/1"),
            Some(vec![("x".into(), "1".into())])
        );
        assert_eq!(
            Route::new("/a/b").matches("/a%2Fb"),
            None,
            "an encoded slash is no separator"
        );
    }
}
