//! The browser backend (wasm32): the browser's `WebSocket` behind the same
//! [`Session`](crate::Session). Filled in by the browser-side work.

use crate::error::Error;
use crate::frame::{Frame, FrameType};
use crate::options::WebSocketOptions;
use crate::session::Session;

/// Browsers hide ping and pong from scripts.
pub(crate) fn check_outgoing(frame: &Frame) -> Result<(), Error> {
    match frame.frame_type() {
        FrameType::Ping | FrameType::Pong => Err(Error::Unsupported("sending ping or pong")),
        _ => Ok(()),
    }
}

/// Connects to `url` with default options.
pub async fn connect(url: &str) -> Result<Session, Error> {
    ClientBuilder::new(url).connect().await
}

/// Connects with options and subprotocols.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    options: WebSocketOptions,
    protocols: Vec<String>,
}

impl ClientBuilder {
    /// A builder for a connection to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            options: WebSocketOptions::default(),
            protocols: Vec::new(),
        }
    }

    /// Session options.
    pub fn options(mut self, options: WebSocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Offers a subprotocol.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Opens the connection.
    pub async fn connect(self) -> Result<Session, Error> {
        let _ = (&self.url, &self.options, &self.protocols);
        Err(Error::Unsupported("the browser backend (not built yet)"))
    }
}
