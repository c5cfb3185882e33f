//! A minimal echo client on tandem: connects to `url`, sends `text`,
//! receives the first message back, logs it to the console, closes, and
//! returns it. The same behaviour as `gloo-echo`.

use tandem::{CloseReason, Frame};
use wasm_bindgen::prelude::*;

/// Connects to `url`, sends `text` and resolves with the text it gets back.
#[wasm_bindgen]
pub async fn echo(url: String, text: String) -> Result<String, JsValue> {
    let fail = |e: tandem::Error| JsValue::from(e.to_string());
    let mut session = tandem::connect(&url).await.map_err(fail)?;
    session.send(Frame::text(text)).await.map_err(fail)?;
    let reply = loop {
        match session.receive().await {
            Some(frame) => {
                if let Some(reply) = frame.read_text() {
                    break reply.to_owned();
                }
            }
            None => return Err("closed before the echo".into()),
        }
    };
    web_sys::console::log_1(&reply.as_str().into());
    session
        .close(CloseReason::new(1000, ""))
        .await
        .map_err(fail)?;
    Ok(reply)
}
