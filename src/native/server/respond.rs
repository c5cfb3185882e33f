//! Answering one HTTP request on a server's routes, for its accept loop
//! and its tower service alike: a WebSocket route is upgraded (the
//! WebSocket checks, the origin policy, the route's hook), a static file
//! is served, anything else gets 404.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request as HttpRequest, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tracing::{debug, error};

use super::routing::{self, WsRoute};
use super::upgrade::Slot;
use super::{upgrade, OriginPolicy, Server, WebSocketUpgrade};
use crate::native::static_files::FileBody;

/// The body of a response from tandem's server: a short text of its own
/// (a refusal, a 404), the empty body of a 101, or a file streamed from
/// disk. An `http_body::Body` of [`Bytes`], as hyper, tower and axum take
/// it.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use http_body_util::BodyExt;
/// use tower_service::Service;
///
/// let mut service = tandem::server::Server::new().into_service();
/// let request = http::Request::get("/nothing-here").body(String::new()).unwrap();
/// let response = service.call(request).await.unwrap();
/// assert_eq!(response.status(), 404);
/// let text = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(text, "no route for /nothing-here\n");
/// # });
/// ```
pub struct ResponseBody(Inner);

enum Inner {
    Text(Full<Bytes>),
    File(FileBody),
}

impl From<Full<Bytes>> for ResponseBody {
    fn from(body: Full<Bytes>) -> Self {
        Self(Inner::Text(body))
    }
}

impl From<FileBody> for ResponseBody {
    fn from(body: FileBody) -> Self {
        Self(Inner::File(body))
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Inner::Text(_) => "text",
            Inner::File(_) => "file",
        };
        f.debug_tuple("ResponseBody").field(&kind).finish()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().0 {
            Inner::Text(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Inner::File(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Text(body) => body.is_end_stream(),
            Inner::File(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Text(body) => body.size_hint(),
            Inner::File(body) => body.size_hint(),
        }
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

fn text_response(status: StatusCode, body: impl Into<String>) -> Response<ResponseBody> {
    upgrade::text_response(status, body).map(ResponseBody::from)
}

impl Server {
    /// The answer to `request` from `peer` (when known); a session started
    /// by it takes its place in `slot`.
    pub(super) async fn respond<B>(
        &self,
        mut request: HttpRequest<B>,
        peer: Option<SocketAddr>,
        slot: Slot,
    ) -> Response<ResponseBody> {
        let head_len = request_head_len(&request);
        if head_len > self.server_options.max_request_head {
            debug!(?peer, head_len, "request head over the limit");
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
        if let Some((route, params)) = routing::find(&self.routes, path) {
            return self
                .upgrade(route, params, &mut request, peer, slot)
                .await
                .map(ResponseBody::from);
        }
        match self.static_files.serve(&request).await {
            Some(Ok(response)) => return response.map(ResponseBody::from),
            Some(Err(error)) => {
                error!(?peer, %path, %error, "reading a static file failed");
                return text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{path} could not be read"),
                );
            }
            None => {}
        }
        text_response(StatusCode::NOT_FOUND, format!("no route for {path}"))
    }

    /// Upgrades `request` on `route`: the WebSocket checks, the origin
    /// policy, the route's hook, then the session takes its place in `slot`.
    async fn upgrade<B>(
        &self,
        route: &WsRoute,
        params: Vec<(String, String)>,
        request: &mut HttpRequest<B>,
        peer: Option<SocketAddr>,
        slot: Slot,
    ) -> Response<Full<Bytes>> {
        let upgrade = match WebSocketUpgrade::from_request_at(request, peer) {
            Ok(upgrade) => upgrade.path_params(params),
            Err(refusal) => return refusal,
        };
        if !self.origin_allowed(request) {
            debug!(
                ?peer,
                origin = ?request.headers().get(header::ORIGIN),
                host = ?request.headers().get(header::HOST),
                "upgrade refused: origin not allowed"
            );
            return upgrade::text_response(
                StatusCode::FORBIDDEN,
                "this origin may not open a WebSocket session here: \
                 it is neither this server's host nor an allowed origin",
            );
        }
        let accepted = match &route.route.hook {
            Some(hook) => match hook(upgrade.request().clone()).await.decision {
                Ok(accepted) => accepted,
                Err(refusal) => {
                    debug!(?peer, status = %refusal.status(), "upgrade refused by the route's hook");
                    return refusal.map(Full::new);
                }
            },
            None => Default::default(),
        };
        let handler = route.handler.clone();
        upgrade
            .protocols(route.route.protocols.iter().cloned())
            .require_protocol()
            .accepted(accepted)
            .options(
                route
                    .route
                    .options
                    .clone()
                    .unwrap_or_else(|| self.options.clone()),
            )
            .with_extensions(self.extensions.clone())
            .raw(route.raw)
            .slot(slot)
            .upgrade_timeout(self.server_options.handshake_timeout)
            .start(Box::new(move |session| handler(session)))
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
}
