//! Answering one HTTP request on a server's routes: a WebSocket route is
//! upgraded (the WebSocket checks, the origin policy, the route's hook),
//! a static file is served, anything else gets 404.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Request as HttpRequest, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming as HyperBody;
use tracing::{debug, error};

use super::connections::SharedSlot;
use super::routing::{self, WsRoute};
use super::{upgrade, OriginPolicy, Server, WebSocketUpgrade};
use crate::native::static_files::FileBody;

/// A response body: a short text or an empty body of tandem's own, or a
/// file streamed from disk.
pub(super) type Body = Either<Full<Bytes>, FileBody>;

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
    upgrade::text_response(status, body).map(Either::Left)
}

impl Server {
    pub(super) async fn respond(
        &self,
        mut request: HttpRequest<HyperBody>,
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
        if let Some((route, params)) = routing::find(&self.routes, path) {
            return self
                .upgrade(route, params, &mut request, peer, slot)
                .await
                .map(Either::Left);
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

    /// Upgrades `request` on `route`: the WebSocket checks, the origin
    /// policy, the route's hook, then the connection's place becomes the
    /// session's.
    async fn upgrade(
        &self,
        route: &WsRoute,
        params: Vec<(String, String)>,
        request: &mut HttpRequest<HyperBody>,
        peer: SocketAddr,
        slot: &SharedSlot,
    ) -> Response<Full<Bytes>> {
        let upgrade = match WebSocketUpgrade::from_request_at(request, Some(peer)) {
            Ok(upgrade) => upgrade.path_params(params),
            Err(refusal) => return refusal,
        };
        if !self.origin_allowed(request) {
            debug!(
                %peer,
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
                    debug!(%peer, status = %refusal.status(), "upgrade refused by the route's hook");
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
            // The connection's place among the server's becomes the session's.
            .connection(slot.clone())
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
