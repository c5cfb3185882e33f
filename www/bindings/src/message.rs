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

/// `{ type: "text", data }` or `{ type: "binary", data }` for a text or
/// binary frame; `None` for any other frame (a browser hands scripts none).
pub(crate) fn message_value(frame: &Frame) -> Option<JsValue> {
    let (kind, data): (&str, JsValue) = match frame.frame_type() {
        FrameType::Text => ("text", frame.read_text()?.into()),
        FrameType::Binary => ("binary", Uint8Array::from(frame.read_bytes()).into()),
        _ => return None,
    };
    Some(object(&[("type", kind.into()), ("data", data)]))
}

/// `{ code, reason }` for a close reason.
pub(crate) fn close_info_value(reason: &CloseReason) -> JsValue {
    let code: u16 = reason.code.into();
    object(&[
        ("code", code.into()),
        ("reason", reason.message.as_str().into()),
    ])
}

/// A JavaScript `Error` whose message is `error`'s.
pub(crate) fn error_value(error: tandem::Error) -> JsValue {
    JsError::new(&error.to_string()).into()
}

/// A plain object with these properties.
fn object(properties: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in properties {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object.into()
}
