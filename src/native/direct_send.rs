//! Sends that skip the link. A server session's handler is polled in its
//! driver's task (`SessionTask`), just before the driver: a frame the
//! handler sends then can wait in a per-thread outbox instead of the link
//! (no lock, no atomic, no wake-up), and the driver moves it into the
//! engine first thing when it is polled, before it takes the link's
//! commands and writes.
//!
//! That path is taken only when it changes nothing a sender can observe:
//! nothing waits in the link (so frames keep their order: the outbox goes
//! into the engine before the link's commands), the engine accepts frames,
//! its output and the outbox stay below the driver's high-water mark (past
//! it a sender queues on the link and waits there, as before), and the
//! frame is not a Close (whose bookkeeping, sends failing after it, is the
//! link's). Anywhere else (a handle used from another task, a client's
//! session, the browser) the frame is queued on the link.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use crate::frame::{Frame, FrameType};
use crate::link::Link;
use crate::protocol::Protocol;

thread_local! {
    /// The link of the session whose handler this thread is polling, and
    /// the room its outbox has left (null: none is).
    static OPEN: Cell<(*const Link, usize)> = const { Cell::new((std::ptr::null(), 0)) };
    /// Frames sent through the outbox, and the link of their session.
    static OUTBOX: RefCell<Outbox> = const {
        RefCell::new(Outbox { link: std::ptr::null(), frames: Vec::new() })
    };
}

struct Outbox {
    /// Only compared, never followed.
    link: *const Link,
    frames: Vec<Frame>,
}

/// Runs `poll` (a poll of the handler of `link`'s session) with an outbox
/// open for that session's sends, `room` bytes of them at most.
pub(crate) fn with_outbox<R>(link: &Link, room: usize, poll: impl FnOnce() -> R) -> R {
    /// Puts back what was open before (a poll inside a poll), also when
    /// `poll` panics.
    struct Restore((*const Link, usize));
    impl Drop for Restore {
        fn drop(&mut self) {
            OPEN.with(|open| open.set(self.0));
        }
    }
    let _restore = Restore(OPEN.with(|open| open.replace((link, room))));
    poll()
}

/// Puts `frame` (checked by `session::check_outgoing`) in the outbox of
/// `link`'s session, when this thread is polling that session's handler and
/// the path above applies; gives the frame back otherwise, for the link.
pub(crate) fn try_send(link: &Link, frame: Frame) -> Result<(), Frame> {
    let (open, room) = OPEN.with(Cell::get);
    if !std::ptr::eq(open, link)
        || room == 0
        || frame.frame_type() == FrameType::Close
        || link.commands_changed()
    {
        return Err(frame);
    }
    OPEN.with(|open| open.set((link, room.saturating_sub(frame.payload().len().max(1)))));
    OUTBOX.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        if !std::ptr::eq(outbox.link, link) {
            // Frames left by a session whose driver never came back for
            // them: that connection is gone.
            outbox.frames.clear();
            outbox.link = link;
        }
        outbox.frames.push(frame);
    });
    Ok(())
}

/// Moves what `link`'s session sent through the outbox into `engine`.
pub(crate) fn drain_into(link: &Link, engine: &mut Protocol, now: Instant) {
    OUTBOX.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        if !std::ptr::eq(outbox.link, link) {
            return;
        }
        for frame in outbox.frames.drain(..) {
            if let Err(error) = engine.send_checked(frame, now) {
                tracing::debug!(%error, "dropped a sent frame");
            }
        }
        // A later session may get this link's address.
        outbox.link = std::ptr::null();
    });
}
