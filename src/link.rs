//! The link between a [`Session`](crate::Session) and the driver that runs
//! its connection: two bounded queues, the close reason, and the wakers.
//!
//! The same link serves both targets. Natively the driver is a future that
//! moves frames between the link and the protocol engine; in the browser it
//! is the `WebSocket`'s event handlers. Neither side holds the lock across an
//! `.await`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::close::CloseReason;
use crate::error::Error;
use crate::frame::{Frame, FrameType};
use crate::options::WebSocketOptions;
use crate::protocol::EncodedFrame;

/// What a session asks its driver to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send this frame, which `session::check_outgoing` let through.
    Frame(Frame),
    /// Send this frame, encoded once for many sessions (a broadcast).
    Encoded(EncodedFrame),
    /// Start the close handshake.
    Close(CloseReason),
}

impl Command {
    /// The bytes this command holds, as the outgoing queue's budget counts them.
    fn len(&self) -> usize {
        match self {
            Command::Frame(frame) => frame.payload().len(),
            Command::Encoded(frame) => frame.wire_len(),
            Command::Close(reason) => reason.message.len(),
        }
    }

    fn is_close(&self) -> bool {
        match self {
            Command::Close(_) => true,
            Command::Frame(frame) => frame.frame_type() == FrameType::Close,
            Command::Encoded(frame) => frame.frame_type() == FrameType::Close,
        }
    }
}

/// A queue's bounds: it is full at `frames` entries or at `bytes` bytes of
/// payload, whichever comes first. An entry is taken while the queue is not
/// full, so one entry of any size fits in an empty queue.
#[derive(Debug, Clone, Copy)]
struct Bound {
    frames: usize,
    bytes: usize,
}

impl Bound {
    fn new(frames: usize, bytes: usize) -> Self {
        Self {
            frames: frames.max(1),
            bytes: bytes.max(1),
        }
    }

    fn is_full(&self, frames: usize, bytes: usize) -> bool {
        frames >= self.frames || bytes >= self.bytes
    }
}

/// What the session's handles and its driver share, under the link's lock:
/// both queues, their wakers and the close reason.
#[derive(Debug)]
struct Shared {
    inbound: VecDeque<Frame>,
    /// Payload bytes in `inbound`.
    inbound_bytes: usize,
    inbound_bound: Bound,
    /// No more frames will be pushed.
    inbound_ended: bool,
    incoming_alive: bool,
    reader: Option<Waker>,
    /// The reader found the queue empty and waits: it has handled every
    /// frame given to it (and queued its replies).
    reader_idle: bool,
    /// The reader's last poll found no frame: it waits in `poll_recv` (not
    /// on something else), so frames pushed since are for it to take now.
    reader_waiting: bool,
    /// The driver wants a wake-up when the reader goes idle.
    driver_awaits_idle_reader: bool,

    outbound: VecDeque<Command>,
    /// Bytes held by the commands in `outbound`.
    outbound_bytes: usize,
    outbound_bound: Bound,
    outgoing_handles: u32,
    /// How many commands the driver has taken so far: progress on the
    /// outgoing side, however full the queue looks.
    taken: u64,
    /// A Close was queued or the connection ended: sending fails.
    send_closed: bool,

    driver: Option<Waker>,

    /// Boxed: an open session does not carry a reason's 32 bytes.
    close_reason: Option<Box<CloseReason>>,
    /// Tasks waiting for room to send or for the end: made when the first
    /// one waits (an idle session has none).
    waiters: Option<Box<Waiters>>,
}

/// The tasks a link wakes besides its reader and its driver.
#[derive(Debug, Default)]
struct Waiters {
    /// Waiting for room in the outgoing queue (or for it to drain).
    senders: Vec<Waker>,
    /// Waiting for the close reason.
    close: Vec<Waker>,
}

impl Waiters {
    fn add(list: &mut Vec<Waker>, cx: &Context<'_>) {
        if !list.iter().any(|w| w.will_wake(cx.waker())) {
            list.push(cx.waker().clone());
        }
    }
}

/// What the driver learns from [`Link::push_inbound_from`].
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) struct Pushed {
    /// Another frame may be pushed now ([`Link::has_inbound_space`]).
    pub(crate) space: bool,
    /// The frame went to a reader that waits for one in [`Link::poll_recv`]:
    /// one in the driver's own task was not woken, and that task polls it
    /// again instead.
    pub(crate) reader_waits: bool,
}

impl Shared {
    /// Moves up to `max` queued commands into `into` and wakes the senders
    /// waiting for room.
    fn take(&mut self, max: usize, into: &mut Vec<Command>) {
        let n = max.min(self.outbound.len());
        if n == 0 {
            return;
        }
        // One at a time: for the usual one or two commands a `drain` costs
        // more to set up and drop than the moves.
        for command in std::iter::from_fn(|| self.outbound.pop_front()).take(n) {
            self.outbound_bytes -= command.len();
            into.push(command);
        }
        self.taken += n as u64;
        if let Some(waiters) = self.waiters.as_mut() {
            for waker in waiters.senders.drain(..) {
                waker.wake();
            }
        }
    }

    /// Registers the task of `cx` to be woken when the driver takes commands.
    fn wait_for_room(&mut self, cx: &Context<'_>) {
        Waiters::add(
            &mut self.waiters.get_or_insert_with(Box::default).senders,
            cx,
        );
    }

    fn inbound_full(&self) -> bool {
        self.inbound_bound
            .is_full(self.inbound.len(), self.inbound_bytes)
    }

    fn outbound_full(&self) -> bool {
        self.outbound_bound
            .is_full(self.outbound.len(), self.outbound_bytes)
    }

    fn push_outbound(&mut self, command: Command) {
        self.send_closed |= command.is_close();
        self.outbound_bytes += command.len();
        self.outbound.push_back(command);
    }

    /// Queues a received frame for the reader, if anybody reads.
    fn push_inbound(&mut self, frame: Frame) -> bool {
        if !self.incoming_alive {
            return false;
        }
        self.inbound_bytes += frame.payload().len();
        self.inbound.push_back(frame);
        self.reader_idle = false;
        true
    }

    fn clear_inbound(&mut self) {
        self.inbound.clear();
        self.inbound_bytes = 0;
    }

    /// The reader has handled every frame given to it: wakes a driver that
    /// waits for that (to send a deferred Close).
    fn set_reader_idle(&mut self, cx: &Context<'_>) {
        self.reader_idle = true;
        if self.driver_awaits_idle_reader {
            self.driver_awaits_idle_reader = false;
            wake_other(&self.driver, cx.waker());
        }
    }
}

/// Shared by a session's handles and its driver.
#[derive(Debug)]
pub(crate) struct Link {
    state: Mutex<Shared>,
    /// Set (under the lock) when a command is queued or a handle dropped:
    /// lets the driver skip the lock when nothing changed for it.
    commands_changed: AtomicBool,
    /// A graceful shutdown's deadline passed: the connection is to be
    /// dropped (one flag here instead of a deadline future per session).
    dropped: AtomicBool,
}

impl Link {
    /// A link with the queue bounds of `options` (`incoming_queue`,
    /// `incoming_queue_bytes`, `outgoing_queue`, `outgoing_queue_bytes`).
    pub(crate) fn new(options: &WebSocketOptions) -> Self {
        Self {
            commands_changed: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            state: Mutex::new(Shared {
                inbound: VecDeque::new(),
                inbound_bytes: 0,
                inbound_bound: Bound::new(options.incoming_queue, options.incoming_queue_bytes),
                inbound_ended: false,
                incoming_alive: true,
                reader: None,
                reader_idle: false,
                reader_waiting: false,
                driver_awaits_idle_reader: false,
                outbound: VecDeque::new(),
                outbound_bytes: 0,
                outbound_bound: Bound::new(options.outgoing_queue, options.outgoing_queue_bytes),
                outgoing_handles: 1,
                taken: 0,
                send_closed: false,
                driver: None,
                close_reason: None,
                waiters: None,
            }),
        }
    }

    /// A link whose queues are bounded by frame counts alone, for tests.
    #[cfg(test)]
    pub(crate) fn with_queues(incoming: usize, outgoing: usize) -> Self {
        Self::new(&WebSocketOptions {
            incoming_queue: incoming,
            incoming_queue_bytes: usize::MAX,
            outgoing_queue: outgoing,
            outgoing_queue_bytes: usize::MAX,
            ..WebSocketOptions::default()
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while the lock is held leaves only queues behind, which stay
        // consistent; carry on with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ----- session side ------------------------------------------------------

    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let mut s = self.lock();
        let was_full = s.inbound_full();
        s.reader_waiting = false;
        if let Some(frame) = s.inbound.pop_front() {
            s.inbound_bytes -= frame.payload().len();
            if was_full && !s.inbound_full() {
                wake_other(&s.driver, cx.waker());
            }
            return Poll::Ready(Some(frame));
        }
        if s.inbound_ended {
            return Poll::Ready(None);
        }
        set_waker(&mut s.reader, cx);
        s.reader_waiting = true;
        s.set_reader_idle(cx);
        Poll::Pending
    }

    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        command: &mut Option<Command>,
    ) -> Poll<Result<(), Error>> {
        let mut s = self.lock();
        if s.send_closed {
            return Poll::Ready(Err(Error::ConnectionClosed(
                s.close_reason.as_deref().cloned(),
            )));
        }
        if s.outbound_full() {
            s.wait_for_room(cx);
            return Poll::Pending;
        }
        if let Some(command) = command.take() {
            s.push_outbound(command);
            self.commands_changed.store(true, Ordering::Release);
            wake_other(&s.driver, cx.waker());
        }
        Poll::Ready(Ok(()))
    }

    /// Queues a command without waiting; `Err` gives it back when the queue is full.
    pub(crate) fn try_send(&self, command: Command) -> Result<(), (Command, Error)> {
        let mut s = self.lock();
        if s.send_closed {
            let reason = s.close_reason.as_deref().cloned();
            return Err((command, Error::ConnectionClosed(reason)));
        }
        if s.outbound_full() {
            return Err((command, Error::QueueFull));
        }
        s.push_outbound(command);
        self.commands_changed.store(true, Ordering::Release);
        wake_ref(&s.driver);
        Ok(())
    }

    /// Queues a command after [`Link::poll_send`] said there was room, even
    /// if another handle took it meanwhile (the queue then holds one more
    /// per handle at most); fails once sending closed.
    pub(crate) fn send_reserved(&self, command: Command) -> Result<(), Error> {
        let mut s = self.lock();
        if s.send_closed {
            return Err(Error::ConnectionClosed(s.close_reason.as_deref().cloned()));
        }
        s.push_outbound(command);
        self.commands_changed.store(true, Ordering::Release);
        wake_ref(&s.driver);
        Ok(())
    }

    /// Resolves once the driver has taken every queued command (or the
    /// connection is over); woken as senders waiting for room are.
    pub(crate) fn poll_drained(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.outbound.is_empty() || s.close_reason.is_some() {
            return Poll::Ready(());
        }
        s.wait_for_room(cx);
        Poll::Pending
    }

    /// Queues a close even when the queue is full; a no-op once sending closed.
    pub(crate) fn request_close(&self, reason: CloseReason) {
        let mut s = self.lock();
        if !s.send_closed {
            s.push_outbound(Command::Close(reason));
            self.commands_changed.store(true, Ordering::Release);
            wake_ref(&s.driver);
        }
    }

    /// Resolves once the connection is over. A task that waits for that
    /// with every received frame taken counts as an idle reader: a Close
    /// the peer sent is answered at once, not after the engine's grace
    /// (`send(…)` then `close_reason().await`, without reading, is a
    /// common way to end a session).
    pub(crate) fn poll_close_reason(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        let mut s = self.lock();
        if let Some(reason) = s.close_reason.as_deref() {
            return Poll::Ready(reason.clone());
        }
        Waiters::add(&mut s.waiters.get_or_insert_with(Box::default).close, cx);
        if s.inbound.is_empty() {
            s.set_reader_idle(cx);
        }
        Poll::Pending
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.lock().close_reason.as_deref().cloned()
    }

    /// How many commands the driver has taken from the queue so far.
    pub(crate) fn taken(&self) -> u64 {
        self.lock().taken
    }

    /// Resolves once the driver has taken `target` commands in all, or the
    /// connection is over; woken as senders waiting for room are.
    pub(crate) fn poll_taken(&self, cx: &mut Context<'_>, target: u64) -> Poll<()> {
        let mut s = self.lock();
        if s.taken >= target || s.close_reason.is_some() {
            return Poll::Ready(());
        }
        s.wait_for_room(cx);
        Poll::Pending
    }

    pub(crate) fn outgoing_cloned(&self) {
        self.lock().outgoing_handles += 1;
    }

    pub(crate) fn outgoing_dropped(&self) {
        let mut s = self.lock();
        s.outgoing_handles -= 1;
        self.commands_changed.store(true, Ordering::Release);
        if s.outgoing_handles == 0 {
            wake_ref(&s.driver);
        }
    }

    pub(crate) fn incoming_dropped(&self) {
        let mut s = self.lock();
        s.incoming_alive = false;
        self.commands_changed.store(true, Ordering::Release);
        s.clear_inbound();
        wake_ref(&s.driver);
    }

    // ----- driver side -------------------------------------------------------

    /// Remembers the driver's waker: it is woken when commands arrive, when
    /// inbound space frees up, and when the session's handles are all gone.
    pub(crate) fn register_driver(&self, cx: &mut Context<'_>) {
        set_waker(&mut self.lock().driver, cx);
    }

    /// Whether a received frame can be pushed now: the reader's queue is
    /// below both of its bounds, or nobody reads.
    pub(crate) fn has_inbound_space(&self) -> bool {
        let s = self.lock();
        !s.incoming_alive || !s.inbound_full()
    }

    /// Hands a received frame to the session (dropped if nobody reads).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn push_inbound(&self, frame: Frame) {
        let mut s = self.lock();
        if s.push_inbound(frame) {
            wake_ref(&s.reader);
        }
    }

    /// [`Link::push_inbound`] from a driver polled with `driver`: a reader
    /// in the same task is not woken (see [`wake_other`]); the task polls it
    /// again when [`Pushed::reader_waits`] says so. One lock for the push
    /// and what the driver needs to know after it.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn push_inbound_from(&self, frame: Frame, driver: &Waker) -> Pushed {
        let mut s = self.lock();
        let pushed = s.push_inbound(frame);
        if pushed {
            wake_other(&s.reader, driver);
        }
        Pushed {
            space: !s.incoming_alive || !s.inbound_full(),
            reader_waits: pushed && s.reader_waiting,
        }
    }

    /// Whether the reader has handled every frame pushed so far (it waits on
    /// an empty queue, or nobody reads) and the driver has taken every reply
    /// it queued. When the reader has not, the driver is woken as soon as it
    /// has.
    // Only the native driver defers a Close: the browser answers one itself.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn reader_idle_or_notify(&self) -> bool {
        let mut s = self.lock();
        let reader_done = !s.incoming_alive || (s.reader_idle && s.inbound.is_empty());
        let idle = reader_done && s.outbound.is_empty();
        s.driver_awaits_idle_reader = !idle;
        idle
    }

    /// Whether a command was queued or a handle dropped since the driver
    /// last took commands: a load, no lock.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn commands_changed(&self) -> bool {
        self.commands_changed.load(Ordering::Acquire)
    }

    /// How a driver takes the session's commands: up to `max` of them (all,
    /// once every handle of the session is gone), and whether every handle
    /// is gone, under one lock.
    ///
    /// Returns `None`, without taking the lock, when nothing was queued and no
    /// handle dropped since the last call that took everything.
    pub(crate) fn take_commands(&self, max: usize, into: &mut Vec<Command>) -> Option<bool> {
        if !self.commands_changed.swap(false, Ordering::Acquire) {
            return None;
        }
        let mut s = self.lock();
        let abandoned = !s.incoming_alive && s.outgoing_handles == 0;
        s.take(if abandoned { usize::MAX } else { max }, into);
        if !s.outbound.is_empty() {
            // Left for the next call (a batch's worth, or output was full).
            self.commands_changed.store(true, Ordering::Release);
        }
        Some(abandoned)
    }

    /// Gives back the queues' memory when they are empty (an idle session
    /// keeps no burst's capacity).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn release_idle_queues(&self) {
        let mut s = self.lock();
        if s.inbound.is_empty() {
            s.inbound = VecDeque::new();
        }
        if s.outbound.is_empty() {
            s.outbound = VecDeque::new();
        }
    }

    /// Ends the session with `reason` (unless it has one already) and asks
    /// the driver to drop the transport without a close handshake:
    /// [`Outgoing::terminate`](crate::Outgoing::terminate), and the server's
    /// graceful shutdown at its deadline.
    pub(crate) fn drop_connection(&self, reason: CloseReason) {
        self.finish(reason);
        self.dropped.store(true, Ordering::Release);
        wake_ref(&self.lock().driver);
    }

    /// Whether [`Link::drop_connection`] was called. The browser's driver
    /// needs no flag: it ends with the session's close reason.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// The connection is over: publishes the reason, ends the incoming stream
    /// once it is drained, fails further sends and wakes everyone.
    pub(crate) fn finish(&self, reason: CloseReason) {
        let mut s = self.lock();
        if s.close_reason.is_none() {
            s.close_reason = Some(Box::new(reason));
        }
        s.inbound_ended = true;
        s.send_closed = true;
        s.outbound.clear();
        s.outbound_bytes = 0;
        wake(s.reader.take());
        if let Some(waiters) = s.waiters.take() {
            for waker in waiters.senders.into_iter().chain(waiters.close) {
                waker.wake();
            }
        }
    }
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Wakes `slot` unless it is `current`, the waker of the task running now.
///
/// The server polls a session's handler and driver in one task
/// (`SessionTask`), which polls the driver after the handler and the
/// handler again when the driver left frames for it: waking that task from
/// inside itself would only schedule one more, empty, poll per message.
/// Wakers of other tasks (a client's driver, a reader on another task) are
/// woken as usual.
fn wake_other(slot: &Option<Waker>, current: &Waker) {
    if let Some(waker) = slot {
        if !waker.will_wake(current) {
            waker.wake_by_ref();
        }
    }
}

/// Wakes without giving up the waker: the driver and the reader register the
/// same waker at every poll, so keeping it saves a clone and a drop per
/// message; a wake that finds nothing new is harmless.
fn wake_ref(waker: &Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake_by_ref();
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Handshake, Session};
    use futures::FutureExt;
    use std::sync::Arc;

    #[test]
    fn send_waits_while_the_outgoing_queue_is_full() {
        let link = Arc::new(Link::with_queues(1, 3));
        let session = Session::new(link.clone(), Handshake::default());
        for i in 0..3 {
            assert!(matches!(
                session.send(format!("m{i}")).now_or_never(),
                Some(Ok(()))
            ));
        }
        // The queue is full and the driver took nothing: the fourth waits.
        let mut fourth = Box::pin(session.send("m3"));
        assert!((&mut fourth).now_or_never().is_none());
        assert!(matches!(
            session.outgoing().try_send("x"),
            Err(Error::QueueFull)
        ));
        // The driver takes one: the waiting send goes in.
        let mut taken = Vec::new();
        link.take_commands(1, &mut taken);
        assert!(matches!(fourth.now_or_never(), Some(Ok(()))));
        link.take_commands(usize::MAX, &mut taken);
        assert_eq!(taken.len(), 4, "nothing beyond the bound was ever queued");
    }

    fn bytes_only(incoming_bytes: usize, outgoing_bytes: usize) -> Link {
        Link::new(&WebSocketOptions {
            incoming_queue: usize::MAX,
            incoming_queue_bytes: incoming_bytes,
            outgoing_queue: usize::MAX,
            outgoing_queue_bytes: outgoing_bytes,
            ..WebSocketOptions::default()
        })
    }

    #[test]
    fn send_waits_while_queued_frames_hold_the_byte_budget() {
        let link = Arc::new(bytes_only(1, 100));
        let session = Session::new(link.clone(), Handshake::default());
        // Below the budget a frame of any size goes in, even one over it.
        assert!(matches!(
            session.send(vec![0u8; 60]).now_or_never(),
            Some(Ok(()))
        ));
        assert!(matches!(
            session.send(vec![0u8; 60]).now_or_never(),
            Some(Ok(()))
        ));
        // 120 bytes queued: the next waits, however small.
        let mut third = Box::pin(session.send("x"));
        assert!((&mut third).now_or_never().is_none());
        assert!(matches!(
            session.outgoing().try_send("y"),
            Err(Error::QueueFull)
        ));
        let mut taken = Vec::new();
        link.take_commands(1, &mut taken);
        assert!(matches!(third.now_or_never(), Some(Ok(()))));
    }

    #[test]
    fn the_inbound_queue_is_full_at_its_byte_budget() {
        let link = Arc::new(bytes_only(100, 1));
        let mut session = Session::new(link.clone(), Handshake::default());
        link.push_inbound(Frame::binary(vec![0u8; 99]));
        assert!(link.has_inbound_space());
        link.push_inbound(Frame::binary(vec![0u8; 1]));
        // The driver stops reading the socket here.
        assert!(!link.has_inbound_space());
        assert!(session.receive().now_or_never().is_some());
        assert!(link.has_inbound_space(), "the reader freed 99 bytes");
    }

    #[test]
    fn a_send_dropped_while_it_waits_sends_nothing() {
        let link = Arc::new(Link::with_queues(1, 1));
        let session = Session::new(link.clone(), Handshake::default());
        assert!(matches!(session.send("first").now_or_never(), Some(Ok(()))));
        // The queue is full: this send waits, and is dropped (a `select!`
        // branch that lost).
        let mut waiting = Box::pin(session.send("dropped"));
        assert!((&mut waiting).now_or_never().is_none());
        drop(waiting);
        let mut taken = Vec::new();
        link.take_commands(usize::MAX, &mut taken);
        assert!(matches!(session.send("after").now_or_never(), Some(Ok(()))));
        link.take_commands(usize::MAX, &mut taken);
        let texts: Vec<_> = taken
            .iter()
            .map(|c| match c {
                Command::Frame(f) => f.read_text().unwrap().to_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["first", "after"]);
    }

    #[test]
    fn the_inbound_queue_reports_full_at_its_bound() {
        let link = Link::with_queues(2, 1);
        assert!(link.has_inbound_space());
        link.push_inbound(Frame::text("a"));
        link.push_inbound(Frame::text("b"));
        // The driver stops reading the socket here (see `Driver::read`).
        assert!(!link.has_inbound_space());
    }
}
