//! The outbox: a session's sends and closes, carried out one after the
//! other in the order JavaScript called them, each settling its promise.
//!
//! A page calls `send` without awaiting it, and then `close`, as it would on
//! a `WebSocket`, and expects every message out before the Close. tandem's
//! own `close` does not wait for sends still waiting for room in the
//! outgoing queue (they fail), so the outbox keeps the order itself: each
//! call waits for its turn in the session's [`Chain`] of outgoing calls.

use js_sys::Promise;
use tandem::{CloseReason, Error, Frame, Outgoing};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::future_to_promise;

use crate::chain::Chain;
use crate::message::error_value;

/// A session's outgoing side, and its chain of calls.
#[derive(Debug)]
pub(crate) struct Outbox {
    outgoing: Outgoing,
    calls: Chain,
}

enum Action {
    Send(Frame),
    Close(CloseReason),
}

impl Outbox {
    pub(crate) fn new(outgoing: Outgoing) -> Self {
        Self {
            outgoing,
            calls: Chain::default(),
        }
    }

    /// A promise that resolves once `frame` is in the session's outgoing
    /// queue, behind everything called before.
    ///
    /// When nothing called before is still going and the queue has room,
    /// the frame is queued at once and the promise is a settled one: no
    /// task, no channel (the common case, and most of what a `send` cost
    /// the page in the browser benchmark's profile).
    pub(crate) fn send(&self, frame: Frame) -> Promise {
        if self.calls.is_idle() {
            // A clone shares the payload; it is kept for the slow path.
            match self.outgoing.try_send(frame.clone()) {
                Ok(()) => return Promise::resolve(&JsValue::UNDEFINED),
                Err(Error::QueueFull) => {}
                Err(error) => return Promise::reject(&error_value(error)),
            }
        }
        self.call(Action::Send(frame))
    }

    /// A promise that resolves once the Close is queued, behind everything
    /// called before.
    pub(crate) fn close(&self, reason: CloseReason) -> Promise {
        self.call(Action::Close(reason))
    }

    fn call(&self, action: Action) -> Promise {
        let mut place = self.calls.join();
        let outgoing = self.outgoing.clone();
        future_to_promise(async move {
            place.turn().await;
            let result = match action {
                Action::Send(frame) => outgoing.send(frame).await,
                Action::Close(reason) => outgoing.close(reason).await,
            };
            drop(place);
            result.map(|()| JsValue::UNDEFINED).map_err(error_value)
        })
    }
}
