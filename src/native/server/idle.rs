//! The idle deadline of a plain HTTP connection: its I/O fails once no byte
//! has moved either way for [`ServerOptions::http_idle_timeout`] while the
//! connection waits on the client.
//!
//! hyper bounds the time to read a request head, but not a response that
//! the client stops reading (a large file requested and never read holds
//! its connection, and its place under the cap, for ever), nor a client
//! that holds a connection open and quiet past it. This wrapper bounds
//! both. It sits only on the HTTP path: an upgraded connection is taken out
//! of it before the session starts (see `spawn_session`), so WebSocket
//! frames never pass through it; sessions have timeouts of their own.
//!
//! [`ServerOptions::http_idle_timeout`]: super::ServerOptions::http_idle_timeout

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `IO` with the idle deadline.
#[derive(Debug)]
pub(super) struct IdleIo<IO> {
    io: IO,
    timeout: Duration,
    /// Made the first time the connection waits.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether `deadline` counts from the last byte moved.
    armed: bool,
}

impl<IO> IdleIo<IO> {
    pub(super) fn new(io: IO, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            deadline: None,
            armed: false,
        }
    }

    /// The I/O without the deadline.
    pub(super) fn into_inner(self) -> IO {
        self.io
    }

    fn moved(&mut self) {
        self.armed = false;
    }

    /// The I/O is waiting on the client: starts the idle clock if bytes
    /// moved since it last ran, and fails once it ran out.
    fn waiting(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.armed {
            // A timeout too long to add to the clock is no timeout.
            let Some(at) = Instant::now().checked_add(self.timeout) else {
                return Ok(());
            };
            match &mut self.deadline {
                Some(deadline) => deadline.as_mut().reset(at),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.armed = true;
        }
        let expired = self
            .deadline
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
        if expired {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no byte moved for {:?} (the server's HTTP idle timeout)",
                    self.timeout
                ),
            ));
        }
        Ok(())
    }

    /// `poll`'s result, after the idle clock's say when it is pending.
    fn after<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => match self.waiting(cx) {
                Ok(()) => Poll::Pending,
                Err(error) => Poll::Ready(Err(error)),
            },
            ready => ready,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for IdleIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.moved();
        }
        this.after(cx, poll)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for IdleIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        this.after(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        this.after(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    // A flush that completes is no sign of progress (on TCP it always
    // does): only bytes read or written reset the clock.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.after(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.after(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_fails_after_the_timeout() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = IdleIo::new(near, Duration::from_secs(30));
        io.write_all(&[0; 16]).await.unwrap();
        let error = io.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_that_keep_moving_keep_the_connection() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut io = IdleIo::new(near, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 16];
            for _ in 0..10 {
                // Slower than the whole transfer may take, but each read
                // within the timeout.
                tokio::time::sleep(Duration::from_secs(20)).await;
                far.read_exact(&mut buf).await.unwrap();
            }
        });
        io.write_all(&[0; 160]).await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_past_the_clock_is_none() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = IdleIo::new(near, Duration::MAX);
        let mut buf = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(3600), io.read(&mut buf)).await;
        assert!(read.is_err(), "still waiting after an hour: {read:?}");
    }
}
