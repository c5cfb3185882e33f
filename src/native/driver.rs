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
const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Commands taken from the link at a time.
const COMMAND_BATCH: usize = 64;
/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 32;
/// The per-thread buffer that reads between frames land in.
const SCRATCH_LEN: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs one connection until it is finished.
pub(crate) struct Driver<IO> {
    io: IO,
    protocol: Protocol,
    link: Arc<Link>,
    commands: Vec<Command>,
    timer: Option<Pin<Box<Sleep>>>,
    published: bool,
    shutting_down: bool,
    flush_needed: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    pub(crate) fn new(io: IO, protocol: Protocol, link: Arc<Link>) -> Self {
        Self {
            io,
            protocol,
            link,
            commands: Vec::new(),
            timer: None,
            published: false,
            shutting_down: false,
            flush_needed: false,
        }
    }

    /// Moves queued commands into the engine while output is below the mark.
    fn take_commands(&mut self, now: std::time::Instant) -> bool {
        // Once every handle is gone no command can follow: take the (bounded)
        // rest of the queue whatever the output holds, then close with 1000.
        let abandoned = self.link.is_abandoned();
        if !abandoned && self.protocol.output_len() >= OUTPUT_HIGH_WATER {
            return false;
        }
        let max = if abandoned { usize::MAX } else { COMMAND_BATCH };
        self.link.take_commands(max, &mut self.commands);
        let progress = !self.commands.is_empty();
        for command in self.commands.drain(..) {
            let result = match command {
                Command::Frame(frame) => self.protocol.send(frame, now),
                Command::Close(reason) => self.protocol.close(reason, now),
            };
            if let Err(error) = result {
                debug!(%error, "dropped a queued command");
            }
        }
        if abandoned {
            let _ = self.protocol.close(CloseReason::normal(), now);
        }
        progress
    }

    /// Hands parsed frames to the session while it has room.
    ///
    /// When the peer sent a Close or broke the protocol, the engine's Close
    /// goes out only once the handler has taken every frame before it and
    /// queued its replies, so that those replies are not lost (as they would
    /// not be with a library the handler pulls frames from).
    fn deliver(&mut self, now: std::time::Instant) -> bool {
        let mut progress = false;
        loop {
            if self.protocol.has_deferred_close() {
                if self.link.reader_idle() {
                    self.take_commands(now);
                    self.protocol.apply_deferred_close(now);
                    progress = true;
                }
                break;
            }
            if !self.link.has_inbound_space() {
                break;
            }
            match self.protocol.poll_event(now) {
                Some(frame) => {
                    self.link.push_inbound(frame);
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

    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.protocol.wants_read() || !self.link.has_inbound_space() {
            return false;
        }
        let poll = if self.protocol.buffered_input() > 0 {
            // A frame arrives in pieces: read straight into the engine's
            // buffer, which has room reserved for the rest of it.
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
        match poll {
            Poll::Ready(Ok(0)) => {
                self.protocol.receive_eof();
                true
            }
            Poll::Ready(Ok(_)) => true,
            Poll::Ready(Err(error)) => {
                self.protocol.transport_failed(&error);
                true
            }
            Poll::Pending => {
                // Waiting: do not hold the last read's memory meanwhile.
                self.protocol.release_input_buffer();
                false
            }
        }
    }

    fn run_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.protocol.poll_timeout() else {
            self.timer = None;
            return false;
        };
        let deadline = Instant::from_std(deadline);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            self.protocol.handle_timeout(Instant::now().into_std());
            return true;
        }
        false
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Future for Driver<IO> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.link.register_driver(cx);
        // One clock reading per wake-up: the engine's timers count in
        // seconds, and the loop below takes microseconds.
        let now = Instant::now().into_std();
        loop {
            let mut progress = this.take_commands(now);
            progress |= this.deliver(now);
            progress |= this.write(cx, now);
            progress |= this.read(cx);
            progress |= this.run_timer(cx);
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
