//! The JavaScript API of the browser package (wasm32 only), built by
//! `wasm-pack build --target web` into `pkg/` with TypeScript types.
//!
//! [`DemoClient`] runs [`run_line_client`] — the same function the native
//! `client` example runs on standard input — fed by the page's input box.
//!
//! ```js
//! import init, { DemoClient } from "./pkg/tandem.js";
//! await init();
//! const client = await DemoClient.connect("ws://127.0.0.1:8080/echo", (text) => console.log(text));
//! client.sendLine("Ktor");
//! client.sendLine("bye");
//! const info = await client.closed();
//! console.log(`closed: ${info.code} ${info.reason}`);
//! ```

use futures::channel::{mpsc, oneshot};
use futures::future::Shared;
use futures::FutureExt;
use tracing::warn;
use wasm_bindgen::prelude::*;

use crate::close::{CloseCode, CloseReason};
use crate::demo::run_line_client;

/// A demo client: each line given to [`sendLine`](DemoClient::send_line)
/// goes out as a text frame, each received text goes to the `onText`
/// callback, and [`closed`](DemoClient::closed) resolves with the close code
/// and reason.
///
/// ```js
/// const client = await DemoClient.connect("ws://127.0.0.1:8080/chat", (text) => show(text));
/// client.sendLine("hello, room");
/// client.close();
/// ```
#[wasm_bindgen]
#[derive(Debug)]
pub struct DemoClient {
    lines: Option<mpsc::UnboundedSender<String>>,
    closed: Shared<oneshot::Receiver<CloseReason>>,
}

#[wasm_bindgen]
impl DemoClient {
    /// Connects to `url` and starts the line client; `onText` is called
    /// with each received text. Rejects with an `Error` whose message says
    /// why the connection could not be opened.
    ///
    /// ```js
    /// const client = await DemoClient.connect("ws://127.0.0.1:8080/echo", (text) => console.log(text));
    /// ```
    #[wasm_bindgen(js_name = connect)]
    pub async fn connect(
        url: String,
        #[wasm_bindgen(js_name = onText, unchecked_param_type = "(text: string) => void")]
        on_text: js_sys::Function,
    ) -> Result<DemoClient, JsError> {
        let session = crate::connect(&url)
            .await
            .map_err(|error| JsError::new(&error.to_string()))?;
        let (lines, line_stream) = mpsc::unbounded();
        let (done, closed) = oneshot::channel();
        wasm_bindgen_futures::spawn_local(async move {
            let reason = run_line_client(session, line_stream, |text| {
                if let Err(error) = on_text.call1(&JsValue::NULL, &JsValue::from_str(text)) {
                    warn!(?error, "the onText callback threw");
                }
            })
            .await;
            let _ = done.send(reason);
        });
        Ok(DemoClient {
            lines: Some(lines),
            closed: closed.shared(),
        })
    }

    /// Sends `text` as a text frame. Throws once the client is closed.
    ///
    /// ```js
    /// client.sendLine("Ktor");
    /// ```
    #[wasm_bindgen(js_name = sendLine)]
    pub fn send_line(&self, text: String) -> Result<(), JsError> {
        match &self.lines {
            Some(lines) if lines.unbounded_send(text).is_ok() => Ok(()),
            _ => Err(JsError::new("the client is closed")),
        }
    }

    /// Ends the input: the session closes with 1000 once the lines sent
    /// before are out. Further calls do nothing.
    ///
    /// ```js
    /// client.close();
    /// await client.closed();
    /// ```
    pub fn close(&mut self) {
        self.lines = None;
    }

    /// Resolves with the close code and reason once the connection is over
    /// (call it as often as you like).
    ///
    /// ```js
    /// const { code, reason } = await client.closed();
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<CloseInfo>")]
    pub fn closed(&self) -> js_sys::Promise {
        let closed = self.closed.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            Ok(CloseInfo::from(reason_of(closed.await)).into())
        })
    }
}

impl DemoClient {
    /// The close reason once the connection is over (the Rust side of
    /// [`closed`](DemoClient::closed)).
    ///
    /// ```no_run
    /// # async fn f(client: tandem::exports::DemoClient) {
    /// let reason = client.close_reason().await;
    /// # }
    /// ```
    pub async fn close_reason(&self) -> CloseReason {
        reason_of(self.closed.clone().await)
    }
}

fn reason_of(result: Result<CloseReason, oneshot::Canceled>) -> CloseReason {
    result
        .unwrap_or_else(|_| CloseReason::new(CloseCode::ClosedAbnormally, "the client task ended"))
}

/// A close code and reason, as [`DemoClient::closed`] resolves with them.
///
/// ```js
/// const info = await client.closed();
/// console.log(info.code, info.reason);
/// ```
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    code: u16,
    reason: String,
}

#[wasm_bindgen]
impl CloseInfo {
    /// The close code (1000, 1006, 4001, …).
    ///
    /// ```js
    /// if (info.code === 1000) console.log("closed normally");
    /// ```
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason text (may be empty).
    ///
    /// ```js
    /// console.log(info.reason);
    /// ```
    #[wasm_bindgen(getter)]
    pub fn reason(&self) -> String {
        self.reason.clone()
    }
}

impl From<CloseReason> for CloseInfo {
    fn from(reason: CloseReason) -> Self {
        Self {
            code: reason.code.into(),
            reason: reason.message,
        }
    }
}
