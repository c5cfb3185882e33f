//! The engine's clocks, in one table. Time only comes in as the `now` the
//! caller passes; each timer is the moment something is due, or `None`.
//!
//! | timer | armed | disarmed | when it is due |
//! |---|---|---|---|
//! | `NextPing` | at open, and at each ping, with a `ping_period` | the connection closes | a ping goes out, unless the output is backed up |
//! | `PingSentAt` (due `timeout` later) | a ping goes out and none is outstanding | any frame from the peer | the peer is given up: Close 1011 "keepalive timeout", then the transport |
//! | `WriteProgressAt` (due `timeout` later) | output is queued while none waits, and each write that leaves some | the output drains | the peer stopped reading: the transport goes |
//! | `CloseDeadline` | our Close is sent; a Close owed to the peer waits for the caller; the connection is closed | the transport is done | the owed Close goes out; or the handshake is given up; or the transport is ended |
//!
//! [`Protocol::poll_timeout`](super::Protocol::poll_timeout) is the
//! earliest of them; [`Protocol::handle_timeout`](super::Protocol::handle_timeout)
//! acts on those due, in the order of the table from the bottom up: a
//! closing connection's deadline first, then the ones that give the peer up,
//! then the ping.

use std::time::{Duration, Instant};

/// One of the engine's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    NextPing,
    PingSentAt,
    WriteProgressAt,
    CloseDeadline,
}

/// The timers of one connection: each a moment, in nanoseconds after the
/// connection opened (8 bytes where an `Option<Instant>` takes 16).
#[derive(Debug)]
pub(super) struct Timers {
    /// The `now` the connection opened at.
    epoch: Instant,
    /// Indexed by [`Timer`]: 0 when it is not armed, else 1 + nanoseconds
    /// after `epoch` (a moment before it counts as `epoch`, one past 584
    /// years after it as 584 years).
    at: [u64; 4],
}

impl Timers {
    /// The timers of a connection opened at `now`, pinging every
    /// `ping_period` if it is set.
    pub(super) fn new(now: Instant, ping_period: Option<Duration>) -> Self {
        let mut timers = Self {
            epoch: now,
            at: [0; 4],
        };
        timers.set(
            Timer::NextPing,
            ping_period.and_then(|period| now.checked_add(period)),
        );
        timers
    }

    /// When `timer` is due, or `None`.
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        match self.at[timer as usize] {
            0 => None,
            at => self.epoch.checked_add(Duration::from_nanos(at - 1)),
        }
    }

    /// Arms `timer` for `at`, or disarms it.
    pub(super) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer as usize] = at.map_or(0, |at| {
            let nanos = at.saturating_duration_since(self.epoch).as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
        });
    }

    /// Arms `timer` for `at` unless it is armed.
    pub(super) fn set_if_unset(&mut self, timer: Timer, at: Instant) {
        if self.at[timer as usize] == 0 {
            self.set(timer, Some(at));
        }
    }

    /// The earliest moment one of them is due, with `timeout` the time a
    /// ping or a write may take.
    ///
    /// Drivers ask at every wake-up, so it is worked out on the table's
    /// nanoseconds, with one conversion to an `Instant` at the end.
    pub(super) fn next_due(&self, timeout: Duration) -> Option<Instant> {
        let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // Unarmed counts as never (`u64::MAX`), and so does a moment past
        // the table's range.
        let at = |timer: Timer| self.at[timer as usize].wrapping_sub(1);
        let after_timeout = |since: u64| since.saturating_add(timeout);
        let due = at(Timer::NextPing)
            .min(after_timeout(at(Timer::PingSentAt)))
            .min(at(Timer::CloseDeadline))
            .min(after_timeout(at(Timer::WriteProgressAt)));
        if due == u64::MAX {
            return None;
        }
        self.epoch.checked_add(Duration::from_nanos(due))
    }

    /// Disarms them all: the transport is done.
    pub(super) fn clear(&mut self) {
        self.at = [0; 4];
    }

    /// No more pings, and no wait for a pong: the connection is closing.
    pub(super) fn stop_keepalive(&mut self) {
        self.set(Timer::NextPing, None);
        self.set(Timer::PingSentAt, None);
    }
}
