//! The browser's `WebSocket` events mapped onto the shared [`Link`], and the
//! driver task that moves the session's commands to the socket.
//!
//! - `open` → the connect future resolves.
//! - `message` → [`Link::push_inbound`] (text → [`Frame::text`],
//!   `ArrayBuffer` → [`Frame::binary`]), after the size limits.
//! - `error` → remembered, so the close reason says the connection failed.
//! - `close` → [`Link::finish`] with the peer's code and reason, or 1006
//!   ([`CloseCode::ClosedAbnormally`]) when the close was not clean.
//!
//! The driver takes commands from the link and calls `send` / `close` on the
//! socket. Before each data frame it waits while the socket's
//! `bufferedAmount` is over [`HIGH_WATER_MARK`], so a fast producer fills the
//! link's bounded outgoing queue and then waits in `send`, instead of growing
//! the browser's buffer without bound. When every handle of the session is
//! dropped it closes the socket with 1000.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use js_sys::{ArrayBuffer, JsString, Uint8Array};
use tracing::{debug, warn};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use super::timer::sleep;
use crate::close::{CloseCode, CloseReason};
use crate::frame::{Frame, FrameType};
use crate::link::{Command, Link};

/// The driver sends no data frame while the socket's `bufferedAmount` is
/// over this many bytes (1 MiB); it polls every [`DRAIN_POLL`] until the
/// browser has drained below it.
pub(crate) const HIGH_WATER_MARK: u32 = 1 << 20;

/// How often the driver looks at `bufferedAmount` while it is over the mark.
const DRAIN_POLL: Duration = Duration::from_millis(4);

/// The most commands the driver takes from the link at once.
const BATCH: usize = 16;

/// The close code and reason a script may pass to `WebSocket.close()` for
/// `reason`.
///
/// Browsers accept only 1000 and 3000–4999 from scripts (any other code
/// throws `InvalidAccessError`). Codes in that range go through as they are.
/// Any other code — 1001–1003 and 1007–1014, which the session accepts
/// natively — is sent as **1000**, with the reason text replaced by the
/// original reason's display form, `"<code> <reason>"` (e.g. a 1009 with
/// "message too big" goes out as 1000 "1009 message too big"), so the peer
/// still learns the intended code. The reason is cut to 123 bytes on a
/// character boundary, as on the wire.
///
/// The local [`close_reason`](crate::Session::close_reason) keeps the
/// original code where the session itself decided it (1009 on an oversized
/// message).
///
/// ```text
/// use tandem::{CloseCode, CloseReason};
/// let (code, reason) = browser_close(&CloseReason::new(CloseCode::TooBig, "too big"));
/// assert_eq!((code, reason.as_str()), (1000, "1009 too big"));
/// ```
pub(crate) fn browser_close(reason: &CloseReason) -> (u16, String) {
    let code = u16::from(reason.code);
    // Scripts may only send 1000 and 3000–4999: anything else becomes 1000
    // with the original code written in front of the reason.
    let mapped = match code {
        1000 | 3000..=4999 => reason.clone(),
        _ => CloseReason::new(CloseCode::Normal, reason.to_string()),
    };
    (u16::from(mapped.code), mapped.wire_message().to_owned())
}

/// Where the socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum SocketPhase {
    #[default]
    Connecting,
    Open,
    Closed,
}

/// What the event handlers and the futures share (one thread: `Rc<RefCell>`).
#[derive(Debug, Default)]
struct Shared {
    phase: SocketPhase,
    /// An `error` event was seen.
    errored: bool,
    /// The session failed locally (a message over the limits): later
    /// messages are dropped.
    failed: bool,
    /// The connect future or the driver, whichever waits now.
    waker: Option<Waker>,
}

impl Shared {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// A browser `WebSocket` with tandem's handlers attached; dropping it
/// detaches them (the socket itself lives on until the browser closes it).
pub(crate) struct Socket {
    ws: WebSocket,
    link: Arc<Link>,
    shared: Rc<RefCell<Shared>>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Attaches the event handlers to `ws`; received messages go to `link`,
    /// and a message over `max_message` bytes fails the session with 1009.
    pub(crate) fn attach(ws: WebSocket, link: Arc<Link>, max_message: Option<usize>) -> Self {
        let shared = Rc::new(RefCell::new(Shared::default()));

        let on_open = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                let mut s = shared.borrow_mut();
                s.phase = SocketPhase::Open;
                s.wake();
            })
        };

        let on_message = {
            let shared = shared.clone();
            let link = link.clone();
            let ws = ws.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if shared.borrow().failed {
                    return;
                }
                // A browser cannot be told to stop reading: a message that
                // finds the handler's queue full ends the session instead
                // of growing the queue past its bounds.
                let received = match receive(&event.data(), max_message) {
                    Ok(Some(_)) if !link.has_inbound_space() => Err(CloseReason::new(
                        CloseCode::ViolatedPolicy,
                        "the handler did not keep up: its incoming queue is full",
                    )),
                    received => received,
                };
                match received {
                    Ok(Some(frame)) => link.push_inbound(frame),
                    Ok(None) => {}
                    Err(reason) => {
                        warn!(%reason, "failing the WebSocket session");
                        let (code, message) = browser_close(&reason);
                        if let Err(error) = ws.close_with_code_and_reason(code, &message) {
                            warn!(?error, "WebSocket.close() failed");
                        }
                        link.finish(reason);
                        let mut s = shared.borrow_mut();
                        s.failed = true;
                        s.wake();
                    }
                }
            })
        };

        let on_error = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                debug!("WebSocket error event");
                shared.borrow_mut().errored = true;
            })
        };

        let on_close = {
            let shared = shared.clone();
            let link = link.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                let errored = shared.borrow().errored;
                let reason = close_event_reason(&event, errored);
                debug!(%reason, clean = event.was_clean(), "WebSocket closed");
                link.finish(reason);
                let mut s = shared.borrow_mut();
                s.phase = SocketPhase::Closed;
                s.wake();
            })
        };

        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        Self {
            ws,
            link,
            shared,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        }
    }

    /// The socket.
    pub(crate) fn ws(&self) -> &WebSocket {
        &self.ws
    }

    /// Resolves once the socket opened (`true`) or closed before opening
    /// (`false`).
    pub(crate) async fn opened(&self) -> bool {
        poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            match s.phase {
                SocketPhase::Connecting => {
                    s.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                phase => Poll::Ready(phase == SocketPhase::Open),
            }
        })
        .await
    }

    /// Runs the driver on the browser's event loop until the connection is over.
    pub(crate) fn spawn_driver(self) {
        wasm_bindgen_futures::spawn_local(self.drive());
    }

    async fn drive(self) {
        let mut batch = Vec::with_capacity(BATCH);
        // Every handle of the session is gone (as the link last said), and
        // whether the Close that follows was queued.
        let mut abandoned = false;
        let mut close_queued = false;
        loop {
            let go_on = poll_fn(|cx| {
                self.link.register_driver(cx);
                self.shared.borrow_mut().waker = Some(cx.waker().clone());
                if self.shared.borrow().phase == SocketPhase::Closed
                    || self.link.close_reason().is_some()
                {
                    return Poll::Ready(false);
                }
                if let Some(gone) = self.link.take_commands(BATCH, &mut batch) {
                    abandoned |= gone;
                }
                if !batch.is_empty() || (abandoned && !close_queued) {
                    Poll::Ready(true)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if !go_on {
                break;
            }
            for command in batch.drain(..) {
                let frame = match command {
                    Command::Frame(frame) => frame,
                    // The browser encodes every frame itself.
                    Command::Encoded(frame) => frame.into_frame(),
                    Command::Close(reason) => {
                        self.close(Some(&reason));
                        continue;
                    }
                };
                match frame.frame_type() {
                    FrameType::Text | FrameType::Binary => {
                        self.wait_for_buffer_room().await;
                        self.send(&frame);
                    }
                    FrameType::Close => {
                        self.close(frame.read_close_reason().as_ref());
                    }
                    other => warn!(?other, "frame type not sendable from a browser; dropped"),
                }
            }
            if abandoned && !close_queued {
                debug!("every session handle dropped: closing with 1000");
                // Queued after any frames still waiting; a no-op if a Close
                // was queued already. The next round sends it.
                self.link.request_close(CloseReason::normal());
                close_queued = true;
            }
        }
        debug!("WebSocket driver done");
        // Dropping `self` detaches the handlers.
    }

    /// Waits while the browser buffers more than [`HIGH_WATER_MARK`] bytes.
    async fn wait_for_buffer_room(&self) {
        while self.ws.buffered_amount() > HIGH_WATER_MARK
            && self.ws.ready_state() == WebSocket::OPEN
        {
            sleep(DRAIN_POLL).await;
        }
    }

    fn send(&self, frame: &Frame) {
        let sent = match frame.read_text() {
            Some(text) => self.ws.send_with_str(text),
            None => self.ws.send_with_u8_array(frame.read_bytes()),
        };
        if let Err(error) = sent {
            warn!(?error, "WebSocket.send() failed");
        }
    }

    /// Starts the close handshake; `None` closes without a code (1005 at the peer).
    fn close(&self, reason: Option<&CloseReason>) {
        let closed = match reason {
            Some(reason) => {
                let (code, message) = browser_close(reason);
                debug!(code, message, "closing the WebSocket");
                self.ws.close_with_code_and_reason(code, &message)
            }
            None => self.ws.close(),
        };
        if let Err(error) = closed {
            warn!(?error, "WebSocket.close() failed");
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        // A socket abandoned before it opened, failed, or terminated
        // (`Outgoing::terminate`, which a browser can only do with a Close):
        // close it if the browser has not already (a no-op once closing or
        // closed).
        if matches!(
            self.ws.ready_state(),
            WebSocket::CONNECTING | WebSocket::OPEN
        ) {
            let _ = self.ws.close();
        }
        self.shared.borrow_mut().waker = None;
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("url", &self.ws.url())
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// A received message as a frame, `Ok(None)` for data of an unexpected
/// kind, or the 1009 reason when it is over `limit` bytes.
fn receive(data: &JsValue, limit: Option<usize>) -> Result<Option<Frame>, CloseReason> {
    let limit = limit.unwrap_or(usize::MAX);
    if let Some(text) = data.dyn_ref::<JsString>() {
        // UTF-8 takes at least one byte per UTF-16 unit: refuse before copying.
        let units = text.length() as usize;
        if units > limit {
            return Err(too_big(&format!("at least {units}"), limit));
        }
        let text = String::from(text);
        if text.len() > limit {
            return Err(too_big(&text.len().to_string(), limit));
        }
        return Ok(Some(Frame::text(text)));
    }
    if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
        let len = buffer.byte_length() as usize;
        if len > limit {
            return Err(too_big(&len.to_string(), limit));
        }
        return Ok(Some(Frame::binary(Uint8Array::new(buffer).to_vec())));
    }
    warn!("WebSocket message that is neither text nor ArrayBuffer; dropped");
    Ok(None)
}

fn too_big(size: &str, limit: usize) -> CloseReason {
    CloseReason::new(
        CloseCode::TooBig,
        format!("message of {size} bytes is over the limit of {limit} bytes"),
    )
}

/// The close reason of a `close` event: the peer's code and reason after a
/// clean close, 1006 otherwise.
fn close_event_reason(event: &CloseEvent, errored: bool) -> CloseReason {
    if event.was_clean() {
        return CloseReason::new(CloseCode::from(event.code()), event.reason());
    }
    let message = if errored {
        "the connection failed (browsers report no detail)"
    } else {
        "the connection ended without a close handshake"
    };
    CloseReason::new(CloseCode::ClosedAbnormally, message)
}
