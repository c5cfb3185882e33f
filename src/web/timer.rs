//! A sleep on the global `setTimeout`, in a window or a worker alike, and
//! the clock to measure waits with.

use std::time::Duration;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// The global `setTimeout` (window or worker).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, millis: i32) -> JsValue;
}

/// Resolves after `duration` (at least 0 ms, at most `i32::MAX` ms), on the
/// JavaScript event loop.
///
/// ```text
/// crate::web::timer::sleep(std::time::Duration::from_millis(5)).await;
/// ```
pub(crate) async fn sleep(duration: Duration) {
    let millis = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = set_timeout(&resolve, millis);
    });
    // setTimeout never rejects this promise.
    let _ = JsFuture::from(promise).await;
}

/// A point in time, in milliseconds of `Date.now()`: `std::time::Instant`
/// panics on wasm32-unknown-unknown, which has no clock of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Instant(f64);

impl Instant {
    /// Now.
    pub(crate) fn now() -> Self {
        Self(js_sys::Date::now())
    }

    /// How long ago this was; zero if the wall clock went back since.
    pub(crate) fn elapsed(&self) -> Duration {
        let millis = js_sys::Date::now() - self.0;
        if millis > 0.0 {
            Duration::from_secs_f64(millis / 1000.0)
        } else {
            Duration::ZERO
        }
    }
}
