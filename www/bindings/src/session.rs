//! [`WebSocketSession`]: tandem's [`Session`](tandem::Session) as a
//! JavaScript class, every operation a `Promise`.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;

use futures::{FutureExt, StreamExt};
use js_sys::{Promise, Uint8Array};
use tandem::{CloseReason, Frame, Incoming};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::chain::Chain;
use crate::message::{close_info_value, error_value, message_value};
use crate::options::{range_error, type_error, ConnectOptions};
use crate::outbox::Outbox;

/// A WebSocket session in the browser: tandem's `Session` on the
/// browser's `WebSocket`, with the same limits, close codes and error
/// messages as in Rust.
///
/// `send`, `sendJson` and `close` are carried out in the order they are
/// called, whether or not their promises are awaited: a `close()` right
/// after sends that nobody awaited closes after them, as on a `WebSocket`.
/// Each promise resolves once its message (or the Close) is in the
/// session's outgoing queue, so awaiting `send` waits while that queue is
/// full (backpressure); calls not awaited wait in order, without bound.
///
/// `receive` hands out each message once, in order, also to calls made
/// concurrently. Messages wait until they are received: a page that lets
/// more than 16 messages or 1 MiB wait ends the session with 1008 (a
/// browser cannot be told to stop reading).
///
/// `free()` (or `using`) lets the session go: once the calls made before
/// are done and no `receive` is pending, it closes with 1000.
///
/// ```js
/// const session = await WebSocketSession.connect("ws://127.0.0.1:8080/chat", { protocols: ["chat"] });
/// await session.send("hello, room");
/// for (let message; (message = await session.receive()) !== null; ) {
///   console.log(message.type, message.data);
/// }
/// console.log(await session.closed);
/// ```
#[wasm_bindgen]
#[derive(Debug)]
pub struct WebSocketSession {
    outbox: Outbox,
    incoming: Rc<RefCell<Incoming>>,
    /// A receive waits for its turn: each message goes to one receive, in
    /// the order they were called.
    receives: Chain,
    protocol: Option<String>,
    closed: Promise,
}

#[wasm_bindgen]
impl WebSocketSession {
    /// Opens a session to `url` (`ws:`, `wss:`, or `http:`/`https:`,
    /// resolved as the browser does), with `options`. Rejects with an
    /// `Error` saying why the connection could not be opened (browsers give
    /// no reason for a refused one), a `TypeError` or `RangeError` for a
    /// bad option.
    ///
    /// ```js
    /// const session = await WebSocketSession.connect("ws://127.0.0.1:8080/echo", { timeout: 5000 });
    /// ```
    pub async fn connect(
        url: String,
        options: Option<ConnectOptions>,
    ) -> Result<WebSocketSession, JsValue> {
        let session = ConnectOptions::builder(options.as_ref(), url)?
            .connect()
            .await
            .map_err(error_value)?;
        let protocol = session.protocol().map(str::to_owned);
        let (incoming, outgoing) = session.split();
        let reason = outgoing.close_reason();
        let closed = future_to_promise(async move { Ok(close_info_value(&reason.await)) });
        Ok(Self {
            outbox: Outbox::new(outgoing),
            incoming: Rc::new(RefCell::new(incoming)),
            receives: Chain::default(),
            protocol,
            closed,
        })
    }

    /// Sends a string as a text message, or the bytes of a `Uint8Array` as
    /// a binary one (copied at the call: the array may change afterwards).
    /// Resolves once the message is queued; rejects with an `Error` once the
    /// session is closing or closed, or the message is over the limits.
    ///
    /// ```js
    /// await session.send("text");
    /// await session.send(new Uint8Array([1, 2, 3]));
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] data: JsValue,
    ) -> Promise {
        let frame = if let Some(text) = data.as_string() {
            Frame::text(text)
        } else if let Some(bytes) = data.dyn_ref::<Uint8Array>() {
            Frame::binary(bytes.to_vec())
        } else {
            return Promise::reject(&type_error("send takes a string or a Uint8Array"));
        };
        self.outbox.send(frame)
    }

    /// Sends `value` as JSON (`JSON.stringify`) in a text message. Rejects
    /// with what `JSON.stringify` throws (a `bigint`, a cycle), or with a
    /// `TypeError` for a value that has no JSON (`undefined`, a function),
    /// sending nothing.
    ///
    /// ```js
    /// await session.sendJson({ type: "move", x: 3, y: 4 });
    /// ```
    #[wasm_bindgen(js_name = sendJson, unchecked_return_type = "Promise<void>")]
    pub fn send_json(
        &self,
        #[wasm_bindgen(unchecked_param_type = "unknown")] value: JsValue,
    ) -> Promise {
        match js_sys::JSON::stringify(&value) {
            Ok(json) => match json.as_string() {
                Some(text) => self.outbox.send(Frame::text(text)),
                None => Promise::reject(&type_error("sendJson: the value has no JSON form")),
            },
            Err(thrown) => Promise::reject(&thrown),
        }
    }

    /// The next message, `{ type: "text", data: string }` or
    /// `{ type: "binary", data: Uint8Array }`; `null` once the session has
    /// ended (then `closed` says how).
    ///
    /// ```js
    /// for (let message; (message = await session.receive()) !== null; ) {
    ///   if (message.type === "text") console.log(message.data);
    /// }
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Message | null>")]
    pub fn receive(&self) -> Promise {
        // A message already waiting, with no receive before this one still
        // going: a settled promise at once, without a task or a wake-up.
        if self.receives.is_idle() {
            let mut incoming = self.incoming.borrow_mut();
            while let Some(next) = incoming.next().now_or_never() {
                match next {
                    Some(frame) => {
                        if let Some(message) = message_value(&frame) {
                            return Promise::resolve(&message);
                        }
                    }
                    None => return Promise::resolve(&JsValue::NULL),
                }
            }
        }
        let mut place = self.receives.join();
        let incoming = self.incoming.clone();
        future_to_promise(async move {
            place.turn().await;
            // Borrowed only while it is polled: a receive made meanwhile
            // finds the chain busy and does not touch it.
            let next = || poll_fn(|cx| incoming.borrow_mut().poll_next_unpin(cx));
            while let Some(frame) = next().await {
                if let Some(message) = message_value(&frame) {
                    return Ok(message);
                }
            }
            Ok(JsValue::NULL)
        })
    }

    /// Starts the close handshake with `code` (default 1000) and `reason`
    /// (default empty), behind the messages sent before; resolves once the
    /// Close is queued (await `closed` for the end). A message that
    /// arrives after the Close went out is dropped (a closing browser
    /// `WebSocket` hands out none); `receive` gives `null` once it is over. Codes a script may not
    /// send (1001, 1011, …) go out as 1000 with the code at the start of
    /// the reason. Rejects with a `RangeError` for a code that is not an
    /// integer from 0 to 65535, and with an `Error` for one that no Close
    /// may carry (1005, 1006, 1015, under 1000).
    ///
    /// ```js
    /// await session.close(4000, "game over");
    /// const { code, reason } = await session.closed;
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self, code: Option<f64>, reason: Option<String>) -> Promise {
        let code = match code {
            None => 1000,
            Some(code) if code.fract() == 0.0 && (0.0..=65535.0).contains(&code) => code as u16,
            Some(_) => {
                return Promise::reject(&range_error(
                    "close: the code must be an integer from 0 to 65535",
                ))
            }
        };
        self.outbox
            .close(CloseReason::new(code, reason.unwrap_or_default()))
    }

    /// Resolves with `{ code, reason }` once the session is over: the
    /// server's Close, ours, 1009 for a message over `maxMessageSize`, or
    /// 1006 when the connection was lost. The same promise every time; it
    /// never rejects.
    ///
    /// ```js
    /// session.closed.then(({ code, reason }) => console.log(`closed: ${code} ${reason}`));
    /// ```
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<CloseInfo>")]
    pub fn closed(&self) -> Promise {
        self.closed.clone()
    }

    /// The subprotocol the server picked from `options.protocols`, or
    /// `undefined` when none was agreed.
    ///
    /// ```js
    /// if (session.protocol === "chat.v2") useV2();
    /// ```
    #[wasm_bindgen(getter)]
    pub fn protocol(&self) -> Option<String> {
        self.protocol.clone()
    }
}
