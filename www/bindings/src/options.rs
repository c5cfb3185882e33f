//! The options of [`WebSocketSession.connect`](crate::WebSocketSession::connect):
//! a plain JavaScript object, read into tandem's
//! [`ClientBuilder`](tandem::ClientBuilder).

use std::time::Duration;

use js_sys::{Array, RangeError, Reflect, TypeError};
use tandem::{ClientBuilder, WebSocketOptions};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/**
 * Options of `WebSocketSession.connect`; every one may be left out.
 *
 * ```ts
 * const session = await WebSocketSession.connect(url, {
 *   protocols: ["chat.v2", "chat"],
 *   timeout: 5000,
 *   maxMessageSize: 4 * 1024 * 1024,
 * });
 * ```
 */
export interface ConnectOptions {
    /**
     * Subprotocols to offer, in preference order: each an RFC 7230 token
     * (no spaces or commas), offered once. The one the server picked is
     * `session.protocol`.
     */
    protocols?: string[];
    /**
     * How long the opening handshake may take, in milliseconds (default
     * 15000; `Infinity` waits as long as the browser does).
     */
    timeout?: number;
    /**
     * The largest message accepted, in bytes (text counts its UTF-8
     * bytes); a larger one ends the session with 1009. Default 1 MiB;
     * `null` accepts any size.
     */
    maxMessageSize?: number | null;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// The options object of
    /// [`WebSocketSession.connect`](crate::WebSocketSession::connect), as
    /// typed by the `ConnectOptions` interface of `tandem.d.ts`.
    ///
    /// ```js
    /// const options = { protocols: ["chat"], timeout: 5000, maxMessageSize: null };
    /// ```
    #[wasm_bindgen(typescript_type = "ConnectOptions")]
    #[derive(Debug, Clone)]
    pub type ConnectOptions;
}

impl ConnectOptions {
    /// A builder for `url` with these options. Rejects a value of the wrong
    /// type with a `TypeError`, and a number out of range with a
    /// `RangeError`, as a browser API does.
    pub(crate) fn builder(options: Option<&Self>, url: String) -> Result<ClientBuilder, JsValue> {
        let mut builder = ClientBuilder::new(url);
        let Some(options) = options else {
            return Ok(builder);
        };
        let mut session = WebSocketOptions::default();
        let protocols = field(options, "protocols")?;
        if !protocols.is_undefined() {
            if !Array::is_array(&protocols) {
                return Err(type_error("protocols must be an array of strings"));
            }
            for protocol in Array::from(&protocols).iter() {
                let protocol = protocol
                    .as_string()
                    .ok_or_else(|| type_error("protocols must be an array of strings"))?;
                builder = builder.protocol(protocol);
            }
        }
        if let Some(millis) = number(field(options, "timeout")?, "timeout")? {
            if millis.is_nan() || millis < 0.0 {
                return Err(range_error(
                    "timeout must be a number of milliseconds, 0 or more",
                ));
            }
            // Too large for a Duration (Infinity included): never.
            session.timeout = Duration::try_from_secs_f64(millis / 1000.0).unwrap_or(Duration::MAX);
        }
        let max = field(options, "maxMessageSize")?;
        if max.is_null() {
            session.max_message_size = None;
        } else if let Some(bytes) = number(max, "maxMessageSize")? {
            if bytes.is_nan() || bytes < 0.0 {
                return Err(range_error(
                    "maxMessageSize must be a number of bytes, 0 or more, or null",
                ));
            }
            // Saturates: more than a wasm32 usize is no limit either.
            session.max_message_size = Some(bytes as usize);
        }
        Ok(builder.options(session))
    }
}

/// `options[name]`; a getter that throws rejects with what it threw.
fn field(options: &ConnectOptions, name: &str) -> Result<JsValue, JsValue> {
    Reflect::get(options, &JsValue::from_str(name))
}

/// The option `name`'s `value` as a number, `None` when it is undefined;
/// any other type is a `TypeError`.
fn number(value: JsValue, name: &str) -> Result<Option<f64>, JsValue> {
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .as_f64()
        .map(Some)
        .ok_or_else(|| type_error(&format!("{name} must be a number")))
}

pub(crate) fn type_error(message: &str) -> JsValue {
    TypeError::new(message).into()
}

pub(crate) fn range_error(message: &str) -> JsValue {
    RangeError::new(message).into()
}
