//! Helpers shared by the browser tests against the native demo server:
//! `tests/web.rs` (tandem's browser backend) and `www/bindings/tests/`
//! (the JavaScript API), each including this file with `#[path]`.
//!
//! `scripts/test-browser.sh` starts `cargo run --example server` on a free
//! port and passes its address at compile time as `TANDEM_TEST_SERVER`
//! (`HOST:PORT`). Every wait goes through [`within`], so a bug fails the
//! test instead of hanging it.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use tandem::{Frame, Session};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The demo server's address, set by `scripts/test-browser.sh`.
pub const SERVER: Option<&str> = option_env!("TANDEM_TEST_SERVER");

pub fn url(path: &str) -> String {
    let server = SERVER.expect(
        "TANDEM_TEST_SERVER (HOST:PORT of `cargo run --example server`) was not set at \
         compile time: run scripts/test-browser.sh",
    );
    format!("ws://{server}{path}")
}

pub async fn sleep(millis: i32) {
    let set_timeout: js_sys::Function =
        js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
            .expect("setTimeout")
            .unchecked_into();
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout
            .call2(&JsValue::NULL, &resolve, &millis.into())
            .expect("setTimeout");
    });
    JsFuture::from(promise).await.unwrap();
}

/// `future`, or a panic naming `what` after `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, future: impl Future<Output = T>) -> T {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(sleep(Duration::from_secs(secs).as_millis() as i32));
    match select(future, timer).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("timed out after {secs} s: {what}"),
    }
}

/// A fresh id for `/echo-any?id=` and `/closed?id=`.
pub fn unique_id(tag: &str) -> String {
    format!("{tag}-{}", (js_sys::Math::random() * 1e12) as u64)
}

/// Waits for the incoming stream to end; returns the frames still received.
pub async fn drain(session: &mut Session) -> Vec<Frame> {
    let mut frames = Vec::new();
    within(10, "the end of the session", async {
        while let Some(frame) = session.receive().await {
            frames.push(frame);
        }
    })
    .await;
    frames
}

/// What the server saw: the close reason of `/echo-any?id=ID`, as `CODE REASON`.
pub async fn server_saw(id: &str) -> String {
    let mut session = tandem::connect(&url(&format!("/closed?id={id}")))
        .await
        .expect("connect /closed");
    let Some(answer) = within(10, "/closed", session.receive()).await else {
        panic!(
            "/closed ended without an answer: {}",
            session.close_reason().await
        );
    };
    drain(&mut session).await;
    answer.read_text().expect("a text").trim_end().to_owned()
}
