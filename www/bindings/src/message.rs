//! The values a [`WebSocketSession`](crate::WebSocketSession) hands to
//! JavaScript: received messages, close information and errors, as plain
//! objects (nothing to `free()`), typed in `tandem.d.ts` by the section
//! below.

use js_sys::{Object, Reflect, Uint8Array};
use tandem::{CloseReason, Frame, FrameType};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/**
 * A received message: `data` is a string for a text message and a
 * `Uint8Array` for a binary one; check `type` to tell which.
 *
 * ```ts
 * const message = await session.receive();
 * if (message?.type === "text") console.log(message.data.toUpperCase());
 * ```
 */
export type Message =
    | { type: "text"; data: string }
    | { type: "binary"; data: Uint8Array };

/**
 * How a session ended: the close code (1000 normal, 1006 lost without a
 * close handshake, 1009 too big, 4000-4999 an application's own...) and the
 * reason text (may be empty).
 *
 * ```ts
 * const { code, reason } = await session.closed;
 * ```
 */
export interface CloseInfo {
    code: number;
    reason: string;
}
"#;

/// The property names and kinds of the values below, made into JavaScript
/// strings once: each `JsValue::from_str` decodes its text from wasm memory
/// (a `TextDecoder` call), which for every message cost more than copying
/// a small message out (measured by `scripts/bench-browser.sh`).
struct Names {
    type_: JsValue,
    data: JsValue,
    text: JsValue,
    binary: JsValue,
    code: JsValue,
    reason: JsValue,
}

thread_local! {
    static NAMES: Names = Names {
        type_: JsValue::from_str("type"),
        data: JsValue::from_str("data"),
        text: JsValue::from_str("text"),
        binary: JsValue::from_str("binary"),
        code: JsValue::from_str("code"),
        reason: JsValue::from_str("reason"),
    };
}

/// `{ type: "text", data }` or `{ type: "binary", data }` for a text or
/// binary frame; `None` for any other frame (a browser hands scripts none).
pub(crate) fn message_value(frame: &Frame) -> Option<JsValue> {
    NAMES.with(|names| {
        let (kind, data): (&JsValue, JsValue) = match frame.frame_type() {
            FrameType::Text => (&names.text, frame.read_text()?.into()),
            FrameType::Binary => (&names.binary, Uint8Array::from(frame.read_bytes()).into()),
            _ => return None,
        };
        Some(object(&[(&names.type_, kind), (&names.data, &data)]))
    })
}

/// `{ code, reason }` for a close reason.
pub(crate) fn close_info_value(reason: &CloseReason) -> JsValue {
    let code: u16 = reason.code.into();
    let message = JsValue::from_str(&reason.message);
    NAMES.with(|names| object(&[(&names.code, &code.into()), (&names.reason, &message)]))
}

/// A JavaScript `Error` whose message is `error`'s.
pub(crate) fn error_value(error: tandem::Error) -> JsValue {
    JsError::new(&error.to_string()).into()
}

/// A plain object with these properties.
fn object(properties: &[(&JsValue, &JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in properties {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, name, value);
    }
    object.into()
}
