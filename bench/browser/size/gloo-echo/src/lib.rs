//! A minimal echo client on gloo-net: connects to `url`, sends `text`,
//! receives the first message back, logs it to the console, closes, and
//! returns it. The same behaviour as `tandem-echo`.

use futures::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::Message;
use wasm_bindgen::prelude::*;

/// Connects to `url`, sends `text` and resolves with the text it gets back.
#[wasm_bindgen]
pub async fn echo(url: String, text: String) -> Result<String, JsValue> {
    let mut ws = WebSocket::open(&url).map_err(|e| JsValue::from(e.to_string()))?;
    ws.send(Message::Text(text))
        .await
        .map_err(|e| JsValue::from(e.to_string()))?;
    let reply = loop {
        match ws.next().await {
            Some(Ok(Message::Text(reply))) => break reply,
            Some(Ok(Message::Bytes(_))) => {}
            Some(Err(e)) => return Err(e.to_string().into()),
            None => return Err("closed before the echo".into()),
        }
    };
    web_sys::console::log_1(&reply.as_str().into());
    ws.close(Some(1000), Some(""))
        .map_err(|e| JsValue::from(e.to_string()))?;
    Ok(reply)
}
