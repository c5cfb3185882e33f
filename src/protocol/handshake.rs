//! The opening handshake (RFC 6455 §4), as pure functions over HTTP parts.
//!
//! The server side checks an upgrade request and computes the answer; the
//! client side builds the request and checks the response. Reading and
//! writing the HTTP messages is the driver's job.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::uri::{Authority, PathAndQuery};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::error::{Error, Quoted};
use crate::extensions::is_token;

/// The GUID that RFC 6455 §1.3 appends to the key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
///
/// ```
/// use tandem::protocol::handshake::accept_key;
/// // The example of RFC 6455 §1.3.
/// assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.digest().bytes())
}

/// A `Sec-WebSocket-Key` from 16 random bytes.
///
/// ```
/// use tandem::protocol::handshake::generate_key;
/// assert_eq!(generate_key([0; 16]).len(), 24);
/// ```
pub fn generate_key(random: [u8; 16]) -> String {
    BASE64.encode(random)
}

/// Why an upgrade request was refused: the status to answer with and a
/// body that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400 Bad Request or 426 Upgrade Required.
    pub status: StatusCode,
    /// A one-line explanation for the response body.
    pub reason: String,
}

impl Rejection {
    fn bad_request(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
        }
    }

    fn upgrade_required(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UPGRADE_REQUIRED,
            reason: reason.into(),
        }
    }
}

/// Whether a comma-separated header contains `token` (case-insensitive).
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the request asks for a WebSocket upgrade at all.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// let mut headers = HeaderMap::new();
/// headers.insert("upgrade", HeaderValue::from_static("websocket"));
/// assert!(tandem::protocol::handshake::is_upgrade_request(&headers));
/// ```
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::UPGRADE, "websocket")
}

/// Checks an upgrade request (RFC 6455 §4.2.1); returns the
/// `Sec-WebSocket-Accept` value to answer with.
///
/// A request that is not an upgrade, or asks for another version than 13,
/// gets 426 Upgrade Required; one that is malformed gets 400, as does one
/// that repeats `Sec-WebSocket-Key` or `Sec-WebSocket-Version` (RFC 6455
/// §4.2.1 and §11.3 allow each once: with two keys, which one the answer
/// proves is ambiguous).
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method, Version};
/// use tandem::protocol::handshake::check_request;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("upgrade", HeaderValue::from_static("websocket"));
/// headers.insert("connection", HeaderValue::from_static("Upgrade"));
/// headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
/// headers.insert("sec-websocket-key", HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
/// let accept = check_request(&Method::GET, Version::HTTP_11, &headers).unwrap();
/// assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn check_request(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<String, Rejection> {
    if !is_upgrade_request(headers) {
        return Err(Rejection::upgrade_required(
            "this is a WebSocket endpoint: send `Upgrade: websocket`",
        ));
    }
    if method != Method::GET {
        return Err(Rejection::bad_request(format!(
            "a WebSocket upgrade must use GET, not {method}"
        )));
    }
    if version < Version::HTTP_11 {
        return Err(Rejection::bad_request(
            "a WebSocket upgrade needs HTTP/1.1 or later",
        ));
    }
    if !header_has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Rejection::bad_request(
            "missing `Connection: Upgrade` in a WebSocket upgrade",
        ));
    }
    for (name, shown) in [
        (header::SEC_WEBSOCKET_KEY, "Sec-WebSocket-Key"),
        (header::SEC_WEBSOCKET_VERSION, "Sec-WebSocket-Version"),
    ] {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(Rejection::bad_request(format!(
                "{shown} appears more than once; send it once"
            )));
        }
    }
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"13");
    if !version_ok {
        return Err(Rejection::upgrade_required(
            "unsupported Sec-WebSocket-Version: this server speaks version 13",
        ));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or_else(|| Rejection::bad_request("missing Sec-WebSocket-Key"))?;
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(accept_key(key)),
        _ => Err(Rejection::bad_request(
            "Sec-WebSocket-Key must be 16 bytes in base64",
        )),
    }
}

/// The subprotocols a request offers, in the client's order.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// let mut headers = HeaderMap::new();
/// headers.insert("sec-websocket-protocol", HeaderValue::from_static("chat.v2, chat"));
/// assert_eq!(tandem::protocol::handshake::offered_protocols(&headers), ["chat.v2", "chat"]);
/// ```
pub fn offered_protocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Picks the subprotocol: the first of the server's `supported` list (its
/// preference order) that the client offered.
///
/// ```
/// use tandem::protocol::handshake::select_protocol;
/// let supported = ["chat.v2".to_string(), "chat".to_string()];
/// assert_eq!(select_protocol(&supported, &["chat", "chat.v2"]), Some("chat.v2"));
/// assert_eq!(select_protocol(&supported, &["mqtt"]), None);
/// ```
pub fn select_protocol<'a>(supported: &'a [String], offered: &[&str]) -> Option<&'a str> {
    supported
        .iter()
        .find(|s| offered.iter().any(|o| o == s))
        .map(String::as_str)
}

/// Checks the subprotocols a client offers (RFC 6455 §4.1): each must be
/// an RFC 7230 token (no spaces, commas, quotes or control characters, so
/// nothing can be smuggled into the request) and none may be offered twice.
///
/// ```
/// use tandem::protocol::handshake::check_subprotocols;
/// assert!(check_subprotocols(&["chat".into(), "chat.v2".into()]).is_ok());
/// assert!(check_subprotocols(&["chat, mqtt".into()]).is_err());
/// assert!(check_subprotocols(&["chat\r\nX-Evil: 1".into()]).is_err());
/// assert!(check_subprotocols(&["chat".into(), "chat".into()]).is_err());
/// ```
pub fn check_subprotocols(protocols: &[String]) -> Result<(), Error> {
    for (i, protocol) in protocols.iter().enumerate() {
        if !is_token(protocol) {
            return Err(Error::Handshake(format!(
                "subprotocol {} is not a valid token",
                Quoted(protocol)
            )));
        }
        if protocols[..i].contains(protocol) {
            return Err(Error::Handshake(format!(
                "subprotocol {} is offered twice",
                Quoted(protocol)
            )));
        }
    }
    Ok(())
}

/// Builds the client's upgrade request.
///
/// Every part is checked before it is written, so that no caller can put a
/// line break or a header of its own into the request: `host` must be
/// `host[:port]` (a user name and password never go in `Host`; send them
/// in an `Authorization` header), `path_and_query` an origin-form target
/// (`/path?query`), `key` 16 bytes in base64, and the subprotocols tokens
/// ([`check_subprotocols`]). Anything else fails with [`Error::Handshake`].
///
/// ```
/// use tandem::protocol::handshake::client_request;
/// let key = "dGhlIHNhbXBsZSBub25jZQ==";
/// let request = client_request("example.com", "/chat", key, &["chat".into()], &Default::default()).unwrap();
/// let text = String::from_utf8(request).unwrap();
/// assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
/// assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
/// assert!(text.ends_with("\r\n\r\n"));
///
/// assert!(client_request("user:secret@example.com", "/", key, &[], &Default::default()).is_err());
/// assert!(client_request("example.com", "/\r\nX-Evil: 1", key, &[], &Default::default()).is_err());
/// ```
pub fn client_request(
    host: &str,
    path_and_query: &str,
    key: &str,
    protocols: &[String],
    extra_headers: &HeaderMap,
) -> Result<Vec<u8>, Error> {
    let valid_host = host.parse::<Authority>().is_ok() && !host.contains('@');
    if !valid_host {
        return Err(Error::Handshake(format!(
            "{host:?} is not a host[:port] for the Host header"
        )));
    }
    let valid_target =
        path_and_query.starts_with('/') && path_and_query.parse::<PathAndQuery>().is_ok();
    if !valid_target {
        return Err(Error::Handshake(format!(
            "{path_and_query:?} is not a request target (/path?query)"
        )));
    }
    if !BASE64.decode(key).is_ok_and(|raw| raw.len() == 16) {
        return Err(Error::Handshake(
            "Sec-WebSocket-Key must be 16 bytes in base64".into(),
        ));
    }
    check_subprotocols(protocols)?;
    let mut request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    )
    .into_bytes();
    if !protocols.is_empty() {
        request.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        request.extend_from_slice(protocols.join(", ").as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra_headers {
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    Ok(request)
}

/// Checks the server's answer to our upgrade request (RFC 6455 §4.1);
/// returns the subprotocol it chose. Its `Sec-WebSocket-Extensions` answer
/// is for the caller to check against what it offered.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use tandem::protocol::handshake::check_response;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("upgrade", HeaderValue::from_static("websocket"));
/// headers.insert("connection", HeaderValue::from_static("Upgrade"));
/// headers.insert("sec-websocket-accept", HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// let protocol = check_response(101, &headers, "dGhlIHNhbXBsZSBub25jZQ==", &[]).unwrap();
/// assert_eq!(protocol, None);
/// ```
pub fn check_response(
    status: u16,
    headers: &HeaderMap,
    key: &str,
    offered_protocols: &[String],
) -> Result<Option<String>, Error> {
    if status != 101 {
        return Err(Error::HandshakeRefused {
            status,
            body: String::new(),
            retry_after: retry_after(headers),
        });
    }
    if !header_has_token(headers, header::UPGRADE, "websocket") {
        return Err(Error::Handshake(
            "response lacks `Upgrade: websocket`".into(),
        ));
    }
    if !header_has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Error::Handshake(
            "response lacks `Connection: Upgrade`".into(),
        ));
    }
    let accept = headers
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if accept != Some(accept_key(key).as_str()) {
        return Err(Error::Handshake(
            "Sec-WebSocket-Accept does not match our key".into(),
        ));
    }
    match headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .map(|v| v.to_str().map(str::trim))
    {
        None => Ok(None),
        Some(Ok(chosen)) if offered_protocols.iter().any(|p| p == chosen) => {
            Ok(Some(chosen.to_owned()))
        }
        Some(_) => Err(Error::Handshake(
            "the server chose a subprotocol that was not offered".into(),
        )),
    }
}

/// The most bytes of HTTP head [`parse_request_head`] and
/// [`parse_response_head`] accept.
///
/// ```
/// use tandem::protocol::handshake::{parse_response_head, MAX_HEAD_LEN};
/// let endless = vec![b'a'; MAX_HEAD_LEN];
/// assert!(parse_response_head(&endless).is_err());
/// ```
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// The most header lines a head may have.
const MAX_HEADERS: usize = 64;

/// A parsed HTTP request head.
///
/// ```
/// let head = tandem::protocol::handshake::parse_request_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
/// assert_eq!(head.version, http::Version::HTTP_10);
/// ```
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request target, as sent (path and query).
    pub target: String,
    /// The HTTP version.
    pub version: Version,
    /// The headers; lines whose name or value is not valid are dropped.
    pub headers: HeaderMap,
    /// The length of the head in bytes, with its final empty line.
    pub len: usize,
}

/// A parsed HTTP response head.
///
/// ```
/// let head = tandem::protocol::handshake::parse_response_head(b"HTTP/1.1 503 Busy\r\n\r\n").unwrap().unwrap();
/// assert_eq!((head.status, head.len), (503, 21));
/// ```
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The headers; lines whose name or value is not valid are dropped.
    pub headers: HeaderMap,
    /// The length of the head in bytes, with its final empty line.
    pub len: usize,
}

/// A response's `Retry-After` in delay-seconds (RFC 9110 §10.2.3); `None`
/// without one, or for the HTTP-date form, which needs a wall clock.
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue};
/// use tandem::protocol::handshake::retry_after;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(retry_after(&headers), None);
/// headers.insert("retry-after", HeaderValue::from_static("120"));
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
/// headers.insert("retry-after", HeaderValue::from_static("Fri, 31 Dec 1999 23:59:59 GMT"));
/// assert_eq!(retry_after(&headers), None);
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<std::time::Duration> {
    let seconds = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    seconds
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}

fn header_map(parsed: &[httparse::Header<'_>]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for h in parsed {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// A head not complete yet: an error once it cannot fit any more.
fn incomplete<T>(buf: &[u8], what: &str) -> Result<Option<T>, Error> {
    if buf.len() >= MAX_HEAD_LEN {
        Err(Error::Handshake(format!(
            "{what} head over {} KiB",
            MAX_HEAD_LEN / 1024
        )))
    } else {
        Ok(None)
    }
}

/// Parses an HTTP/1.x request head from the start of `buf`: `Ok(None)` when
/// more bytes are needed, an error when it is malformed or longer than
/// [`MAX_HEAD_LEN`]. (The server parses with hyper; this serves tools,
/// tests and the fuzzer, and checks the same things hyper does.)
///
/// ```
/// use tandem::protocol::handshake::parse_request_head;
/// let head = parse_request_head(b"GET /chat?room=1 HTTP/1.1\r\nHost: x\r\n\r\nrest").unwrap().unwrap();
/// assert_eq!((head.method.as_str(), head.target.as_str(), head.len), ("GET", "/chat?room=1", 38));
/// assert!(parse_request_head(b"GET / HTTP/1.1\r\n").unwrap().is_none());
/// assert!(parse_request_head(b"\x00\x01 nonsense\r\n\r\n").is_err());
/// ```
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_LEN => {
            let method = request
                .method
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .ok_or_else(|| Error::Handshake("invalid request method".into()))?;
            let version = match request.version {
                Some(0) => Version::HTTP_10,
                _ => Version::HTTP_11,
            };
            Ok(Some(RequestHead {
                method,
                target: request.path.unwrap_or("/").to_owned(),
                version,
                headers: header_map(request.headers),
                len,
            }))
        }
        Ok(_) => incomplete(buf, "request"),
        Err(e) => Err(Error::Handshake(format!("malformed HTTP request: {e}"))),
    }
}

/// Parses an HTTP/1.x response head from the start of `buf`: `Ok(None)`
/// when more bytes are needed, an error when it is malformed or longer than
/// [`MAX_HEAD_LEN`]. The native client reads the server's answer with it.
///
/// ```
/// use tandem::protocol::handshake::parse_response_head;
/// let head = parse_response_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
///     .unwrap()
///     .unwrap();
/// assert_eq!(head.status, 101);
/// assert_eq!(head.headers["upgrade"], "websocket");
/// assert!(parse_response_head(b"HTTP/1.1 101").unwrap().is_none());
/// ```
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_LEN => Ok(Some(ResponseHead {
            status: response.code.unwrap_or(0),
            headers: header_map(response.headers),
            len,
        })),
        Ok(_) => incomplete(buf, "response"),
        Err(e) => Err(Error::Handshake(format!("malformed HTTP response: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn upgrade_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h
    }

    #[test]
    fn a_plain_get_gets_426_with_a_reason() {
        let r = check_request(&Method::GET, Version::HTTP_11, &HeaderMap::new()).unwrap_err();
        assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
        assert!(r.reason.contains("Upgrade: websocket"));
    }

    #[test]
    fn wrong_version_gets_426() {
        let mut h = upgrade_headers();
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let r = check_request(&Method::GET, Version::HTTP_11, &h).unwrap_err();
        assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
    }

    #[test]
    fn malformed_requests_get_400() {
        let mut no_key = upgrade_headers();
        no_key.remove(header::SEC_WEBSOCKET_KEY);
        let mut short_key = upgrade_headers();
        short_key.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("c2hvcnQ="),
        );
        let mut no_connection = upgrade_headers();
        no_connection.remove(header::CONNECTION);
        for (method, headers) in [
            (Method::GET, no_key),
            (Method::GET, short_key),
            (Method::GET, no_connection),
            (Method::POST, upgrade_headers()),
        ] {
            let r = check_request(&method, Version::HTTP_11, &headers).unwrap_err();
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.reason);
        }
    }

    #[test]
    fn a_repeated_key_or_version_gets_400() {
        for (name, value) in [
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
            (header::SEC_WEBSOCKET_KEY, "AQIDBAUGBwgJCgsMDQ4PEA=="),
            (header::SEC_WEBSOCKET_VERSION, "13"),
        ] {
            let mut h = upgrade_headers();
            h.append(name.clone(), HeaderValue::from_static(value));
            let r = check_request(&Method::GET, Version::HTTP_11, &h).unwrap_err();
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {value}");
            assert!(r.reason.contains("more than once"), "{}", r.reason);
        }
    }

    #[test]
    fn response_with_a_wrong_accept_or_unoffered_protocol_fails() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("wrong"),
        );
        assert!(matches!(
            check_response(101, &h, "k", &[]),
            Err(Error::Handshake(_))
        ));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept_key("k")).unwrap(),
        );
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("mqtt"),
        );
        assert!(matches!(
            check_response(101, &h, "k", &["chat".into()]),
            Err(Error::Handshake(_))
        ));
        assert_eq!(
            check_response(101, &h, "k", &["mqtt".into()]).unwrap(),
            Some("mqtt".into())
        );
    }
}
