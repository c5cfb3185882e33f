//! The engine's clocks, in one table. Time only comes in as the `now` the
//! caller passes; each timer is the moment something is due, or `None`.
//!
//! | timer | armed | disarmed | when it is due |
//! |---|---|---|---|
//! | `next_ping` | at open, and at each ping, with a `ping_period` | the connection closes | a ping goes out, unless the output is backed up |
//! | `ping_sent_at` (due `timeout` later) | a ping goes out and none is outstanding | any frame from the peer | the peer is given up: Close 1011 "keepalive timeout", then the transport |
//! | `write_progress_at` (due `timeout` later) | output is queued while none waits, and each write that leaves some | the output drains | the peer stopped reading: the transport goes |
//! | `close_deadline` | our Close is sent; a Close owed to the peer waits for the caller; the connection is closed | the transport is done | the owed Close goes out; or the handshake is given up; or the transport is ended |
//!
//! [`Protocol::poll_timeout`](super::Protocol::poll_timeout) is the
//! earliest of them; [`Protocol::handle_timeout`](super::Protocol::handle_timeout)
//! acts on those due, in the order of the table from the bottom up: a
//! closing connection's deadline first, then the ones that give the peer up,
//! then the ping.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(super) struct Timers {
    pub(super) next_ping: Option<Instant>,
    pub(super) ping_sent_at: Option<Instant>,
    pub(super) write_progress_at: Option<Instant>,
    pub(super) close_deadline: Option<Instant>,
}

impl Timers {
    /// The timers of a connection opened at `now`, pinging every
    /// `ping_period` if it is set.
    pub(super) fn new(now: Instant, ping_period: Option<Duration>) -> Self {
        Self {
            next_ping: ping_period.and_then(|period| now.checked_add(period)),
            ..Self::default()
        }
    }

    /// The earliest moment one of them is due, with `timeout` the time a
    /// ping or a write may take.
    pub(super) fn next_due(&self, timeout: Duration) -> Option<Instant> {
        let after_timeout = |since: Option<Instant>| since?.checked_add(timeout);
        [
            self.next_ping,
            after_timeout(self.ping_sent_at),
            self.close_deadline,
            after_timeout(self.write_progress_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// No more pings, and no wait for a pong: the connection is closing.
    pub(super) fn stop_keepalive(&mut self) {
        self.next_ping = None;
        self.ping_sent_at = None;
    }
}
