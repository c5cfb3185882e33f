//! The tokio driver: moves bytes between a socket and the protocol engine,
//! and frames between the engine and the session's [`Link`].
//!
//! It is one hand-written future so that reading, writing, the session's
//! queues and the engine's timer are all served from a single task with no
//! extra allocation. Replies produced while a batch of input is processed
//! leave in one vectored write (write batching).

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use crate::close::CloseReason;
use crate::link::{Command, Link};
use crate::protocol::Protocol;

/// Stop taking commands while this much output waits to be written.
///
/// Reading goes on: stopping it too would deadlock two peers that both
/// send faster than the other reads (each waits for the other to read
/// first). What reading can add to the output is bounded by the engine
/// instead: past [`CONTROL_OUTPUT_LIMIT`](crate::protocol::CONTROL_OUTPUT_LIMIT)
/// it answers only the latest ping, and it sends one Close at most.
pub(crate) const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Commands taken from the link at a time.
const COMMAND_BATCH: usize = 64;
/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 32;
/// The per-thread buffer that reads between frames land in.
const SCRATCH_LEN: usize = 64 * 1024;
/// How long the engine keeps its last input buffer once input stops, for
/// the next message to reuse; after that an idle connection gives it back.
/// (Giving it back at every pause instead costs an allocation per message,
/// and with glibc's heap trimming, page faults on large messages.)
const KEEP_INPUT_BUFFER: std::time::Duration = std::time::Duration::from_secs(1);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Commands on their way from a link to its engine: one vector per
    /// thread rather than one per connection, which would keep a burst's
    /// capacity (up to 64 commands) for the connection's life.
    static COMMANDS: RefCell<Vec<Command>> = const { RefCell::new(Vec::new()) };
}

/// Runs one connection until it is finished.
/// The engine's clock: tokio's, so that a test that pauses and advances it
/// (`tokio::time::pause`) moves every timer of a session, from its first.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

pub(crate) struct Driver<IO> {
    io: IO,
    protocol: Protocol,
    link: Arc<Link>,
    timer: Option<Pin<Box<Sleep>>>,
    /// Every handle of the session is gone (as the link last said).
    abandoned: bool,
    /// The engine's input buffer holds memory from a read.
    input_held: bool,
    /// When to give that memory back if no frame is arriving then.
    release_input_at: Option<std::time::Instant>,
    published: bool,
    shutting_down: bool,
    flush_needed: bool,
    /// The link has this task's waker: a driver is polled by one spawned
    /// task for its life, and any of that task's wakers wakes it.
    waker_registered: bool,
    /// Frames went to a reader waiting in this task since the owner last
    /// asked ([`Driver::take_reader_owed`]).
    reader_owed: bool,
}

impl<IO> Driver<IO> {
    /// The session's link.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Runs `poll`, a poll of the session's handler in this driver's task,
    /// with an outbox for the handler's sends that this driver empties into
    /// the engine when it is polled next (`direct_send.rs`).
    pub(crate) fn with_outbox<R>(&self, poll: impl FnOnce() -> R) -> R {
        let room = if self.protocol.accepts_frames() {
            OUTPUT_HIGH_WATER.saturating_sub(self.protocol.output_len())
        } else {
            0
        };
        super::direct_send::with_outbox(&self.link, room, poll)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    pub(crate) fn new(io: IO, protocol: Protocol, link: Arc<Link>) -> Self {
        Self {
            io,
            protocol,
            link,
            timer: None,
            abandoned: false,
            input_held: false,
            release_input_at: None,
            published: false,
            shutting_down: false,
            flush_needed: false,
            waker_registered: false,
            reader_owed: false,
        }
    }

    /// Whether frames went to a reader that waits for them in the task
    /// polling this driver since the last call: that reader was not woken
    /// (see `link::wake_other`), so the task polls it again.
    pub(crate) fn take_reader_owed(&mut self) -> bool {
        std::mem::take(&mut self.reader_owed)
    }

    /// Moves queued commands into the engine while output is below the mark.
    fn take_commands(&mut self, now: std::time::Instant) -> bool {
        // The common case when the driver loops: nothing new.
        if !self.abandoned && !self.link.commands_changed() {
            return false;
        }
        // Once every handle is gone no command can follow: take the (bounded)
        // rest of the queue whatever the output holds, then close with 1000.
        let max = if self.protocol.output_len() >= OUTPUT_HIGH_WATER {
            0
        } else {
            COMMAND_BATCH
        };
        COMMANDS.with(|commands| {
            let mut commands = commands.borrow_mut();
            // Empty unless a command panicked half-way for another session:
            // never hand its leftovers to this one.
            commands.clear();
            match self.link.take_commands(max, &mut commands) {
                Some(abandoned) => self.abandoned = abandoned,
                // Nothing new: the common case, when the driver loops.
                None if !self.abandoned => return false,
                None => {}
            }
            let progress = !commands.is_empty();
            for command in commands.drain(..) {
                let result = match command {
                    Command::Frame(frame) => self.protocol.send_checked(frame, now),
                    Command::Encoded(frame) => self.protocol.send_encoded(frame, now),
                    Command::Close(reason) => self.protocol.close(reason, now),
                };
                if let Err(error) = result {
                    debug!(%error, "dropped a queued command");
                }
            }
            if self.abandoned {
                let _ = self.protocol.close(CloseReason::normal(), now);
            }
            progress
        })
    }

    /// Hands parsed frames to the session while it has room.
    ///
    /// When the peer sent a Close or broke the protocol, the engine's Close
    /// goes out only once the handler has taken every frame before it and
    /// queued its replies, so that those replies are not lost (as they would
    /// not be with a library the handler pulls frames from).
    ///
    /// `space` is whether the link is known to have room (a read just
    /// checked, and only this driver fills the queue).
    fn deliver(&mut self, cx: &Context<'_>, now: std::time::Instant, space: Option<bool>) -> bool {
        let mut progress = false;
        let mut space = space;
        loop {
            if self.protocol.has_deferred_close() {
                if self.link.reader_idle_or_notify() {
                    self.take_commands(now);
                    self.protocol.apply_deferred_close(now);
                    progress = true;
                }
                break;
            }
            if !*space.get_or_insert_with(|| self.link.has_inbound_space()) {
                break;
            }
            match self.protocol.poll_event(now) {
                Some(frame) => {
                    let pushed = self.link.push_inbound_from(frame, cx.waker());
                    space = Some(pushed.space);
                    self.reader_owed |= pushed.reader_waits;
                    progress = true;
                }
                None if self.protocol.has_deferred_close() => {}
                None => break,
            }
        }
        self.publish();
        progress
    }

    fn publish(&mut self) {
        if !self.published {
            if let Some(reason) = self.protocol.close_reason() {
                debug!(%reason, "session closed");
                self.link.finish(reason.clone());
                self.published = true;
            }
        }
    }

    fn write(&mut self, cx: &mut Context<'_>, now: std::time::Instant) -> bool {
        let mut progress = false;
        while self.protocol.output_len() > 0 {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let n = self.protocol.output(&mut slices);
            let io = Pin::new(&mut self.io);
            // One slice (small frames batched in one buffer) goes out with a
            // plain write: on Linux send(2) costs less than writev(2).
            let written = match n {
                1 => io.poll_write(cx, &slices[0]),
                _ => io.poll_write_vectored(cx, &slices[..n]),
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    self.protocol
                        .transport_failed(&io::Error::from(io::ErrorKind::WriteZero));
                    return true;
                }
                Poll::Ready(Ok(written)) => {
                    self.protocol.consume_output(written, now);
                    self.flush_needed = true;
                    progress = true;
                }
                Poll::Ready(Err(error)) => {
                    self.protocol.transport_failed(&error);
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
        if self.flush_needed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush_needed = false,
                Poll::Ready(Err(error)) => {
                    self.protocol.transport_failed(&error);
                    return true;
                }
                Poll::Pending => {}
            }
        }
        if self.protocol.take_shutdown() {
            self.shutting_down = true;
        }
        if self.shutting_down {
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Ready(_) => {
                    self.shutting_down = false;
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// Reads the socket into the engine: `None` when reading waits for the
    /// session (its inbound queue is full), else whether anything arrived
    /// (`Some(false)`: the socket had nothing and will wake the task when
    /// it has).
    fn read(&mut self, cx: &mut Context<'_>, now: std::time::Instant) -> Option<bool> {
        if !self.protocol.wants_read() || !self.link.has_inbound_space() {
            return None;
        }
        let poll = if self.protocol.wants_read_buffer() {
            // A frame arrives in pieces, or frames are large: read straight
            // into the engine's buffer, which has room reserved for them
            // (a large payload is then never copied in user space).
            let buf = self.protocol.read_buffer();
            tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf)
        } else {
            // Between frames: read into this thread's scratch buffer and let
            // the engine copy exactly what arrived. One read takes all the
            // socket holds (up to 64 KiB), and a connection waiting for its
            // next message keeps no read buffer of its own.
            SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                if scratch.is_empty() {
                    scratch.resize(SCRATCH_LEN, 0);
                }
                let mut buf = ReadBuf::new(&mut scratch[..]);
                let poll = Pin::new(&mut self.io).poll_read(cx, &mut buf);
                if let Poll::Ready(Ok(())) = poll {
                    self.protocol.receive_data(buf.filled());
                }
                poll.map_ok(|()| buf.filled().len())
            })
        };
        Some(match poll {
            Poll::Ready(Ok(0)) => {
                self.protocol.receive_eof();
                true
            }
            Poll::Ready(Ok(_)) => {
                self.input_held = true;
                true
            }
            Poll::Ready(Err(error)) => {
                self.protocol.transport_failed(&error);
                true
            }
            Poll::Pending => {
                if self.input_held && self.release_input_at.is_none() {
                    self.release_input_at = Some(now + KEEP_INPUT_BUFFER);
                }
                false
            }
        })
    }

    fn run_timer(&mut self, cx: &mut Context<'_>, now: std::time::Instant) -> bool {
        let engine = self.protocol.poll_timeout();
        let deadline = match (engine, self.release_input_at) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => {
                self.timer = None;
                return false;
            }
        };
        let deadline = Instant::from_std(deadline);
        // The timer keeps the task's waker from its first poll (the waker of
        // a task does not change), so it is polled again only when it was
        // just set or may be due: most wake-ups are for I/O.
        let mut fresh = false;
        let timer = self.timer.get_or_insert_with(|| {
            fresh = true;
            Box::pin(tokio::time::sleep_until(deadline))
        });
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
            fresh = true;
        }
        if !fresh && Instant::from_std(now) < deadline {
            return false;
        }
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        let now = self::now();
        if self.release_input_at.is_some_and(|at| at <= now) {
            self.release_input_at = None;
            if self.protocol.buffered_input() == 0 {
                self.protocol.release_idle_buffers();
                self.link.release_idle_queues();
                self.input_held = false;
            }
        }
        if engine.is_some_and(|at| at <= now) {
            self.protocol.handle_timeout(now);
        }
        true
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Future for Driver<IO> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if !this.waker_registered {
            this.link.register_driver(cx);
            this.waker_registered = true;
        }
        // One clock reading per wake-up: the engine's timers count in
        // seconds, and the loop below takes microseconds.
        let now = self::now();
        // What the handler just sent, before anything queued after it (and
        // out of the thread's outbox even when the connection goes now).
        super::direct_send::drain_into(&this.link, &mut this.protocol, now);
        if this.link.is_dropped() {
            // The link has its reason; dropping the driver drops the socket.
            debug!("dropping the connection without a close handshake");
            return Poll::Ready(());
        }
        let mut read_idle = false;
        loop {
            // Queued replies out first; input already buffered to the session
            // before reading more (an end of file must not overtake frames
            // already read); what a read brings goes on to the session at
            // once, so that a message in and its reply out take one turn each.
            let mut progress = this.take_commands(now);
            progress |= this.write(cx, now);
            if this.protocol.buffered_input() > 0 || this.protocol.has_deferred_close() {
                progress |= this.deliver(cx, now, None);
            }
            // The socket's readiness only changes between polls: once a read
            // found nothing, do not ask again in this one. A read held back by
            // a full queue is tried again after progress.
            if !read_idle {
                match this.read(cx, now) {
                    Some(true) => {
                        progress = true;
                        // The read went ahead because the link had room.
                        this.deliver(cx, now, Some(true));
                    }
                    Some(false) => read_idle = true,
                    None => {}
                }
            }
            // The timer last, once the rest is done: its deadline is then the
            // one to sleep until.
            if !progress {
                progress = this.run_timer(cx, now);
            }
            // A close reason from a command or a timer, for the session.
            this.publish();
            if this.protocol.is_finished() {
                this.publish();
                if !this.published {
                    this.link.finish(CloseReason::new(
                        crate::CloseCode::ClosedAbnormally,
                        "the connection ended",
                    ));
                }
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}
