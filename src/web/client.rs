//! The browser client: Ktor's `client.webSocket(url) { … }` on the
//! browser's `WebSocket`, with the same signatures as the native client.

use std::io;
use std::sync::{Arc, OnceLock};

use futures::future::{select, Either};
use tracing::debug;
use web_sys::{BinaryType, WebSocket};

use super::driver::Socket;
use super::timer::sleep;
use crate::client::ClientBuilder;
use crate::error::Error;
use crate::extensions::ExtensionHeader;
use crate::link::Link;
use crate::protocol::handshake::check_subprotocols;
use crate::proxy::ProxyChoice;
use crate::session::{Handshake, Session};

/// Opens the `WebSocket` that `builder` describes and waits for the
/// browser's `open` event (see [`ClientBuilder::connect`]). Headers and
/// extensions cannot be set from a script: either fails with
/// [`Error::Unsupported`]. A subprotocol that is not a valid token or is
/// offered twice fails with [`Error::Handshake`], a URL the browser refuses
/// (not `ws:`/`wss:`/`http:`/`https:`, a fragment, a blocked port, mixed
/// content) with [`Error::InvalidUrl`].
pub(crate) async fn connect(builder: ClientBuilder) -> Result<Session, Error> {
    if !builder.headers.is_empty() {
        return Err(Error::Unsupported(
            "setting WebSocket request headers from a browser",
        ));
    }
    if !builder.extensions.is_empty() {
        return Err(Error::Unsupported(
            "configuring WebSocket extensions from a browser (it negotiates its own)",
        ));
    }
    match &builder.proxy {
        ProxyChoice::Given(proxy) => {
            let proxy = proxy.address();
            debug!(%proxy, "proxy ignored: the browser uses its own proxy settings");
        }
        ProxyChoice::Direct => {
            debug!("no_proxy() ignored: the browser uses its own proxy settings")
        }
        ProxyChoice::FromEnv => {}
    }
    // Distinct RFC 7230 tokens: the browser throws otherwise.
    check_subprotocols(&builder.protocols)?;
    let ws = open(&builder.url, &builder.protocols)?;
    ws.set_binary_type(BinaryType::Arraybuffer);

    let link = Arc::new(Link::new(&builder.options));
    // The browser hands over whole messages: one limit covers both.
    let max_message = match (
        builder.options.max_frame_size,
        builder.options.max_message_size,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let socket = Socket::attach(ws, link.clone(), max_message);

    let timeout = builder.options.timeout;
    let opened = {
        let opened = std::pin::pin!(socket.opened());
        let timer = std::pin::pin!(sleep(timeout));
        match select(opened, timer).await {
            Either::Left((opened, _)) => Some(opened),
            Either::Right(((), _)) => None,
        }
    };
    match opened {
        Some(true) => {}
        // Dropping `socket` detaches the handlers (and closes it if still connecting).
        Some(false) => {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                Message(format!(
                    "the browser could not open {}: the server is unreachable or \
                     refused the upgrade (browsers report no reason)",
                    builder.url
                )),
            )))
        }
        None => {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                Message(format!(
                    "opening handshake took longer than {} ms",
                    millis(timeout)
                )),
            )))
        }
    }

    let ws = socket.ws();
    let protocol = Some(ws.protocol()).filter(|p| !p.is_empty());
    let extensions = AgreedExtensions::from_header(ws.extensions());
    debug!(url = %builder.url, ?protocol, "connected");
    socket.spawn_driver();
    Ok(Session::new(
        link,
        Handshake {
            protocol: protocol.map(Into::into),
            extensions,
            request: None,
            state: Default::default(),
        },
    ))
}

/// The extensions the browser agreed on: its `WebSocket.extensions`
/// string, parsed the first time [`Session::extensions`] asks. A page that
/// never asks (the JavaScript package does not) then carries no parser for
/// the header: 2.1 KB of the gzipped package.
#[derive(Debug, Default)]
pub(crate) struct AgreedExtensions {
    header: String,
    parsed: OnceLock<Box<[ExtensionHeader]>>,
}

impl AgreedExtensions {
    fn from_header(header: String) -> Self {
        Self {
            header,
            parsed: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for AgreedExtensions {
    type Target = [ExtensionHeader];

    fn deref(&self) -> &[ExtensionHeader] {
        self.parsed.get_or_init(|| {
            // The browser's own answer; it is well formed, or there is
            // nothing to list.
            ExtensionHeader::parse_list(&self.header)
                .unwrap_or_default()
                .into()
        })
    }
}

/// The text of an I/O error that this backend makes. A `String` would do,
/// but the error type that `io::Error` keeps it in formats it with `str`'s
/// `Debug`, which brings Unicode tables into the wasm build; this one
/// writes it as it is.
struct Message(String);

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// `duration` in whole milliseconds, for messages (a `u64`: `Duration`'s
/// `Debug` and `u128` formatting are large in a wasm build).
fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `new WebSocket(url, protocols)`; the browser's exception becomes
/// [`Error::InvalidUrl`].
fn open(url: &str, protocols: &[String]) -> Result<WebSocket, Error> {
    let ws = if protocols.is_empty() {
        WebSocket::new(url)
    } else {
        let list: js_sys::Array = protocols
            .iter()
            .map(|p| wasm_bindgen::JsValue::from_str(p))
            .collect();
        WebSocket::new_with_str_sequence(url, &list)
    };
    ws.map_err(|exception| Error::InvalidUrl {
        url: crate::authority::redact(url),
        reason: js_sys::Error::from(exception)
            .message()
            .as_string()
            .unwrap_or_else(|| "refused by the browser".into()),
    })
}
