//! Browser tests of the JavaScript API (`WebSocketSession`), against the
//! native demo server, in headless Chromium: `scripts/test-browser.sh`
//! runs them with `wasm-pack test --headless --chrome www/bindings`.
//!
//! They call the exported methods as JavaScript does (values in, promises
//! out) and look at what JavaScript gets: plain objects, `null`, `Error`s
//! of the right kind.
#![cfg(target_arch = "wasm32")]

use futures::future::join3;
use js_sys::{Object, Promise, RangeError, Reflect, TypeError, Uint8Array, JSON};
use tandem_web::WebSocketSession;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[path = "../../../tests/support/browser.rs"]
mod support;

use support::{server_saw, sleep, unique_id, url, within};

/// `WebSocketSession.connect(url, options)`, options written as JSON.
async fn connect(path: &str, options: Option<&str>) -> Result<WebSocketSession, JsValue> {
    let options = options.map(|json| JSON::parse(json).expect("options JSON").unchecked_into());
    within(10, "connect", WebSocketSession::connect(url(path), options)).await
}

async fn open(path: &str) -> WebSocketSession {
    connect(path, None).await.expect("connect")
}

/// Awaits a promise, or fails the test after 10 s.
async fn settle(promise: Promise) -> Result<JsValue, JsValue> {
    within(10, "a promise", JsFuture::from(promise)).await
}

fn get(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &name.into()).expect("a property")
}

/// The next message as (`type`, `data`); panics on `null`.
async fn next_message(session: &WebSocketSession) -> (String, JsValue) {
    let message = settle(session.receive())
        .await
        .expect("receive never rejects");
    if message.is_null() {
        let info = closed(session).await;
        panic!("the session ended ({info}) before a message arrived");
    }
    let kind = get(&message, "type").as_string().expect("type is a string");
    (kind, get(&message, "data"))
}

async fn next_text(session: &WebSocketSession) -> String {
    match next_message(session).await {
        (kind, data) if kind == "text" => data.as_string().expect("text data is a string"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// `closed`'s `{ code, reason }` as `CODE REASON`.
async fn closed(session: &WebSocketSession) -> String {
    let info = settle(session.closed())
        .await
        .expect("closed never rejects");
    let code = get(&info, "code").as_f64().expect("code is a number");
    let reason = get(&info, "reason")
        .as_string()
        .expect("reason is a string");
    format!("{code} {reason}").trim_end().to_owned()
}

/// The message of a rejection, after checking it is an `Error` of kind `T`.
fn rejection<T: JsCast>(result: Result<JsValue, JsValue>) -> String {
    let error = result.expect_err("expected a rejection");
    assert!(
        error.is_instance_of::<T>(),
        "wrong kind of error: {error:?}"
    );
    get(&error, "message").as_string().unwrap_or_default()
}

#[wasm_bindgen_test]
async fn text_and_binary_round_trip_as_plain_objects() {
    let session = open("/echo-any").await;
    settle(session.send("héllo ✓".into())).await.unwrap();
    assert_eq!(next_text(&session).await, "héllo ✓");

    let bytes = Uint8Array::from(&[0u8, 1, 2, 255][..]);
    settle(session.send(bytes.clone().into())).await.unwrap();
    // The bytes were copied at the call: changing the array now changes nothing.
    bytes.set_index(0, 9);
    let (kind, data) = next_message(&session).await;
    assert_eq!(kind, "binary");
    let data: Uint8Array = data.dyn_into().expect("binary data is a Uint8Array");
    assert_eq!(data.to_vec(), [0, 1, 2, 255]);

    assert_eq!(
        rejection::<TypeError>(settle(session.send(42.into())).await),
        "send takes a string or a Uint8Array"
    );
}

#[wasm_bindgen_test]
async fn close_sends_code_and_reason_then_receive_gives_null() {
    let id = unique_id("bindings-close");
    let session = open(&format!("/echo-any?id={id}")).await;
    settle(session.close(Some(4001.0), Some("done here".into())))
        .await
        .unwrap();
    // The end of the session: null, and null again.
    assert!(settle(session.receive()).await.unwrap().is_null());
    assert!(settle(session.receive()).await.unwrap().is_null());
    // The server answers with our code (RFC 6455 §5.5.1), without a reason.
    assert_eq!(closed(&session).await, "4001");
    assert_eq!(server_saw(&id).await, "4001 done here");
    // `closed` is one promise, whenever it is asked for.
    assert!(Object::is(&session.closed(), &session.closed()));
    let late = settle(session.send("late".into())).await;
    assert!(rejection::<js_sys::Error>(late).contains("closed"));
}

#[wasm_bindgen_test]
async fn close_without_arguments_is_1000_and_bad_codes_reject() {
    let id = unique_id("bindings-close-default");
    let session = open(&format!("/echo-any?id={id}")).await;
    for code in [1.5, -1.0, 70000.0, f64::NAN] {
        let result = settle(session.close(Some(code), None)).await;
        assert!(rejection::<RangeError>(result).contains("integer from 0 to 65535"));
    }
    // A code no Close may carry: tandem's own error, and the session stays open.
    assert!(
        rejection::<js_sys::Error>(settle(session.close(Some(1005.0), None)).await)
            .contains("1005")
    );
    settle(session.send("still open".into())).await.unwrap();
    assert_eq!(next_text(&session).await, "still open");

    settle(session.close(None, None)).await.unwrap();
    assert_eq!(closed(&session).await, "1000");
    assert_eq!(server_saw(&id).await, "1000");
}

#[wasm_bindgen_test]
async fn sends_and_close_take_effect_in_call_order_without_awaiting() {
    // A member of the chat room watches what the room gets from the session.
    let mut watcher = tandem::connect(&url("/chat")).await.expect("connect");
    let session = open("/chat").await;
    // More than the outgoing queue holds (32), so that later sends wait for
    // room; the close comes last though nothing was awaited.
    let sends: Vec<Promise> = (0..100)
        .map(|i| session.send(format!("message {i}").into()))
        .collect();
    let close = session.close(Some(4002.0), Some("after the messages".into()));
    let watch = async {
        let mut relayed = Vec::new();
        while relayed.len() < 100 {
            let frame = within(10, "a relayed message", watcher.receive())
                .await
                .expect("the watcher's session ended");
            // `[userN]: TEXT`; the welcome has no `]: `.
            if let Some((_, text)) = frame.read_text().and_then(|t| t.split_once("]: ")) {
                relayed.push(text.to_owned());
            }
        }
        relayed
    };
    // The session reads too (the room relays its messages back to it).
    let read = async { while !settle(session.receive()).await.unwrap().is_null() {} };
    let settled = async {
        for send in sends {
            settle(send).await.expect("every send completes");
        }
        settle(close).await.expect("the close completes");
    };
    let (relayed, (), ()) = join3(watch, read, settled).await;
    let expected: Vec<String> = (0..100).map(|i| format!("message {i}")).collect();
    assert_eq!(relayed, expected);
    assert_eq!(closed(&session).await, "4002");
}

#[wasm_bindgen_test]
async fn concurrent_receives_get_one_message_each_in_order() {
    let session = open("/echo-any").await;
    let first = session.receive();
    let second = session.receive();
    settle(session.send("one".into())).await.unwrap();
    settle(session.send("two".into())).await.unwrap();
    let first = settle(first).await.unwrap();
    let second = settle(second).await.unwrap();
    assert_eq!(get(&first, "data").as_string().as_deref(), Some("one"));
    assert_eq!(get(&second, "data").as_string().as_deref(), Some("two"));
}

#[wasm_bindgen_test]
async fn messages_that_wait_are_received_in_order_around_a_pending_receive() {
    let session = open("/echo-any").await;
    // One receive waits before anything arrives; three messages then wait
    // in the session, and three more receives are called at once.
    let first = session.receive();
    for text in ["one", "two", "three", "four"] {
        settle(session.send(text.into())).await.unwrap();
    }
    sleep(300).await;
    let rest: Vec<Promise> = (0..3).map(|_| session.receive()).collect();
    let mut got = vec![get(&settle(first).await.unwrap(), "data")];
    for promise in rest {
        got.push(get(&settle(promise).await.unwrap(), "data"));
    }
    let got: Vec<String> = got.iter().filter_map(JsValue::as_string).collect();
    assert_eq!(got, ["one", "two", "three", "four"]);
}

#[wasm_bindgen_test]
async fn send_json_sends_json_text_and_rejects_values_without_json() {
    let session = open("/echo-any").await;
    let value = JSON::parse(r#"{"type":"move","at":[3,4],"by":"é"}"#).unwrap();
    settle(session.send_json(value)).await.unwrap();
    assert_eq!(
        next_text(&session).await,
        r#"{"type":"move","at":[3,4],"by":"é"}"#
    );

    let undefined = settle(session.send_json(JsValue::UNDEFINED)).await;
    assert!(rejection::<TypeError>(undefined).contains("no JSON form"));
    // What JSON.stringify throws is the rejection.
    let big = settle(session.send_json(js_sys::BigInt::from(1u64).into())).await;
    rejection::<TypeError>(big);
    // Nothing was sent for either.
    settle(session.send("next".into())).await.unwrap();
    assert_eq!(next_text(&session).await, "next");
}

#[wasm_bindgen_test]
async fn the_protocols_option_offers_subprotocols_and_protocol_tells_the_agreed_one() {
    let session = connect("/echo-proto", Some(r#"{"protocols":["chat","tandem"]}"#))
        .await
        .expect("connect with protocols");
    assert_eq!(session.protocol().as_deref(), Some("tandem"));
    assert_eq!(open("/echo-any").await.protocol(), None);
    // Offered none: the route refuses.
    assert!(connect("/echo-proto", Some("{}")).await.is_err());
    let not_an_array = connect("/echo-proto", Some(r#"{"protocols":"tandem"}"#)).await;
    assert_eq!(
        rejection::<TypeError>(not_an_array.map(JsValue::from)),
        "protocols must be an array of strings"
    );
    let not_strings = connect("/echo-proto", Some(r#"{"protocols":[1]}"#)).await;
    rejection::<TypeError>(not_strings.map(JsValue::from));
}

#[wasm_bindgen_test]
async fn the_max_message_size_option_ends_larger_messages_with_1009() {
    let session = connect("/echo-any", Some(r#"{"maxMessageSize":10}"#))
        .await
        .expect("connect");
    settle(session.send("0123456789".into())).await.unwrap();
    assert_eq!(next_text(&session).await, "0123456789");
    // Echoed back, one byte over.
    settle(session.send("0123456789!".into())).await.unwrap();
    assert!(settle(session.receive()).await.unwrap().is_null());
    assert!(closed(&session).await.starts_with("1009"));

    let negative = connect("/echo-any", Some(r#"{"maxMessageSize":-1}"#)).await;
    rejection::<RangeError>(negative.map(JsValue::from));
    let text = connect("/echo-any", Some(r#"{"maxMessageSize":"10"}"#)).await;
    assert_eq!(
        rejection::<TypeError>(text.map(JsValue::from)),
        "maxMessageSize must be a number"
    );
    // null: no limit.
    connect("/echo-any", Some(r#"{"maxMessageSize":null}"#))
        .await
        .expect("null is no limit");
}

#[wasm_bindgen_test]
async fn the_timeout_option_bounds_the_opening_handshake() {
    // Zero is shorter than any real handshake.
    let result = connect("/echo", Some(r#"{"timeout":0}"#)).await;
    assert!(rejection::<js_sys::Error>(result.map(JsValue::from)).contains("took longer"));
    let negative = connect("/echo", Some(r#"{"timeout":-5}"#)).await;
    rejection::<RangeError>(negative.map(JsValue::from));
    connect("/echo", Some(r#"{"timeout":10000}"#))
        .await
        .expect("10 s is enough");
}

#[wasm_bindgen_test]
async fn the_echo_demo_through_the_javascript_api() {
    let session = open("/echo").await;
    assert_eq!(next_text(&session).await, "Please enter your name");
    settle(session.send("Ktor".into())).await.unwrap();
    assert_eq!(next_text(&session).await, "Hi, Ktor!");
    settle(session.send("bye".into())).await.unwrap();
    assert!(settle(session.receive()).await.unwrap().is_null());
    assert_eq!(closed(&session).await, "1000 Client said BYE");
}

#[wasm_bindgen_test]
async fn a_refused_connection_rejects_with_an_error() {
    let result = connect("/no-such-route", None).await;
    assert!(rejection::<js_sys::Error>(result.map(JsValue::from)).contains("could not open"));
}

#[wasm_bindgen_test]
async fn a_session_let_go_closes_with_1000_after_the_calls_made_before() {
    let id = unique_id("bindings-free");
    let session = open(&format!("/echo-any?id={id}")).await;
    let sent = session.send("last words".into());
    drop(session); // free() in JavaScript
    settle(sent)
        .await
        .expect("the send made before still completes");
    assert_eq!(server_saw(&id).await, "1000");
}
