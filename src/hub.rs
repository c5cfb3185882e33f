//! Broadcasting to many sessions: a [`Hub`] of members and a
//! [`SlowMemberPolicy`] for the ones that stop reading.
//!
//! A broadcast goes to every member at once, so one slow reader cannot hold
//! the others back. Each member's outgoing queue is bounded
//! ([`WebSocketOptions::outgoing_queue`](crate::WebSocketOptions::outgoing_queue)
//! frames, plus the driver's bounded output buffer), so the memory a
//! broadcast holds per member is bounded under every policy; the policy only
//! decides what happens to a member whose queue is full:
//!
//! | policy | a member whose queue stays full | the broadcaster |
//! |---|---|---|
//! | [`CloseAfter(d)`](SlowMemberPolicy::CloseAfter) (default, 5 s) | is closed with 1008 once nothing left its queue for `d`, and leaves the hub | waits while the member reads, up to `d` without progress |
//! | [`DropMember`](SlowMemberPolicy::DropMember) | is closed with 1008 at once and leaves the hub | never waits |
//! | [`DropMessage`](SlowMemberPolicy::DropMessage) | misses this message, stays | never waits |
//! | [`Wait`](SlowMemberPolicy::Wait) | gets every message | waits as long as it takes |
//!
//! The frame is encoded once, header and payload in one allocation, and
//! every member's connection writes those same bytes: a member costs a
//! reference count, not a copy. (A member that has to encode the frame
//! itself, such as a session with permessage-deflate, which compresses with
//! its own context, or a client, which masks, does so from the shared
//! payload.)
//!
//! ```no_run
//! # async fn run(session: tandem::Session) -> Result<(), tandem::Error> {
//! use tandem::hub::{Hub, SlowMemberPolicy};
//!
//! let hub = Hub::new(SlowMemberPolicy::DropMessage);
//! let member = hub.join(session.outgoing());
//! let report = hub.broadcast("tick").await?;
//! println!("{} got it, {} skipped", report.delivered, report.skipped);
//! drop(member); // leaves the hub
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{select, Either};
use tracing::warn;

use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::frame::Frame;
use crate::protocol::EncodedFrame;
use crate::session::{check_outgoing, Outgoing};

/// What a [`Hub`] does with a member whose outgoing queue is full.
///
/// ```
/// use std::time::Duration;
/// use tandem::hub::SlowMemberPolicy;
/// assert_eq!(SlowMemberPolicy::default(), SlowMemberPolicy::CloseAfter(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowMemberPolicy {
    /// Wait for room in the member's queue; once no frame has left it for
    /// this long, close the member with 1008 (policy violation) and remove
    /// it from the hub. A member that reads, however slowly, is not closed.
    /// Members that stay get every message, in order per broadcaster. The
    /// default, 5 s.
    CloseAfter(Duration),
    /// Close the member with 1008 and remove it at once.
    DropMember,
    /// Skip this message for the member; it stays and gets later ones.
    DropMessage,
    /// Wait for room as long as it takes: nobody misses a message, and one
    /// member that stops reading stalls every broadcast (until the session's
    /// own `timeout` drops a peer that reads nothing at all).
    Wait,
}

impl Default for SlowMemberPolicy {
    fn default() -> Self {
        SlowMemberPolicy::CloseAfter(Duration::from_secs(5))
    }
}

/// What one [`Hub::broadcast`] did.
///
/// ```
/// let report = tandem::hub::BroadcastReport::default();
/// assert_eq!(report.delivered + report.skipped + report.closed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Members that have the message queued.
    pub delivered: usize,
    /// Members that missed it under [`SlowMemberPolicy::DropMessage`].
    pub skipped: usize,
    /// Members closed with 1008 for being too slow.
    pub closed: usize,
    /// Members whose session was already over (removed from the hub).
    pub gone: usize,
}

/// A set of sessions to broadcast to, with a [`SlowMemberPolicy`].
///
/// Cheap to clone: every clone is the same hub.
///
/// ```
/// let hub = tandem::hub::Hub::default();
/// assert!(hub.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    policy: SlowMemberPolicy,
    members: Mutex<Members>,
}

#[derive(Debug, Default)]
struct Members {
    next_id: u64,
    by_id: BTreeMap<u64, Outgoing>,
}

/// A member's place in a [`Hub`]; dropping it leaves the hub.
///
/// ```no_run
/// # fn f(hub: tandem::hub::Hub, session: tandem::Session) {
/// let member = hub.join(session.outgoing());
/// println!("member {}", member.id());
/// # }
/// ```
#[derive(Debug)]
pub struct Membership {
    hub: Hub,
    id: u64,
}

impl Membership {
    /// The member's number: 0 for the first to join, then 1, 2, …
    ///
    /// ```no_run
    /// # fn f(hub: tandem::hub::Hub, session: tandem::Session) {
    /// let member = hub.join(session.outgoing());
    /// let name = format!("user{}", member.id());
    /// # }
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    /// An empty hub with `policy` for slow members.
    ///
    /// ```
    /// use tandem::hub::{Hub, SlowMemberPolicy};
    /// let hub = Hub::new(SlowMemberPolicy::Wait);
    /// assert_eq!(hub.policy(), SlowMemberPolicy::Wait);
    /// ```
    pub fn new(policy: SlowMemberPolicy) -> Self {
        Self {
            inner: Arc::new(HubInner {
                policy,
                members: Mutex::new(Members::default()),
            }),
        }
    }

    /// The hub's policy for slow members.
    ///
    /// ```
    /// let hub = tandem::hub::Hub::default();
    /// assert_eq!(hub.policy(), tandem::hub::SlowMemberPolicy::default());
    /// ```
    pub fn policy(&self) -> SlowMemberPolicy {
        self.inner.policy
    }

    fn lock(&self) -> MutexGuard<'_, Members> {
        self.inner.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session (by its outgoing handle) to the hub; it gets every
    /// broadcast from now on, until the returned [`Membership`] is dropped.
    ///
    /// ```no_run
    /// # fn f(hub: tandem::hub::Hub, session: tandem::Session) {
    /// let member = hub.join(session.outgoing());
    /// # }
    /// ```
    pub fn join(&self, outgoing: Outgoing) -> Membership {
        let mut members = self.lock();
        let id = members.next_id;
        members.next_id += 1;
        members.by_id.insert(id, outgoing);
        Membership {
            hub: self.clone(),
            id,
        }
    }

    fn remove(&self, id: u64) {
        self.lock().by_id.remove(&id);
    }

    /// How many members the hub has.
    ///
    /// ```
    /// assert_eq!(tandem::hub::Hub::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether the hub has no members.
    ///
    /// ```
    /// assert!(tandem::hub::Hub::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `frame` to every member at once, applying the policy to those
    /// whose queue is full; returns once every member has it queued, missed
    /// it or was closed.
    ///
    /// Broadcasts from one task reach each member in the order they were
    /// made. The frame is encoded once and its bytes shared by all members,
    /// not copied.
    ///
    /// Fails, reaching nobody, with [`Error::InvalidFrame`] for a frame that
    /// cannot be sent (a control frame over 125 bytes, a reserved close
    /// code) and, in the browser, [`Error::Unsupported`] for one a browser
    /// cannot send.
    ///
    /// ```no_run
    /// # async fn f(hub: tandem::hub::Hub) -> Result<(), tandem::Error> {
    /// let report = hub.broadcast("hello, everyone").await?;
    /// assert_eq!(report.closed, 0);
    /// # Ok(()) }
    /// ```
    pub async fn broadcast(&self, frame: impl Into<Frame>) -> Result<BroadcastReport, Error> {
        let frame = frame.into();
        check_outgoing(&frame)?;
        let frame = EncodedFrame::new(&frame);
        let mut report = BroadcastReport::default();
        let mut waiting = Vec::new();
        let mut too_slow = Vec::new();
        let mut gone = Vec::new();
        // The common case costs no future and no handle clone: queue where
        // there is room, under the hub's lock; only members whose queue is
        // full are cloned, for the policy to deal with after it.
        for (id, member) in &self.lock().by_id {
            match member.try_send_encoded(frame.clone()) {
                Ok(()) => report.delivered += 1,
                Err(Error::QueueFull) => match self.inner.policy {
                    SlowMemberPolicy::DropMessage => report.skipped += 1,
                    SlowMemberPolicy::DropMember => too_slow.push((*id, member.clone())),
                    SlowMemberPolicy::CloseAfter(_) | SlowMemberPolicy::Wait => {
                        waiting.push((*id, member.clone()))
                    }
                },
                Err(_) => gone.push(*id),
            }
        }
        for id in gone {
            self.remove(id);
            report.gone += 1;
        }
        for (id, member) in too_slow {
            self.close_slow(id, &member);
            report.closed += 1;
        }
        if waiting.is_empty() {
            return Ok(report);
        }
        let policy = self.inner.policy;
        let outcomes = waiting.into_iter().map(|(id, member)| {
            let frame = frame.clone();
            async move {
                let mut sent = Box::pin(member.send_encoded(frame));
                let result = match policy {
                    // "Stays full": no frame left the queue for `bound`. A
                    // member that reads, however busy, keeps its place.
                    SlowMemberPolicy::CloseAfter(bound) => loop {
                        let progress = member.progress();
                        let deadline = Box::pin(crate::backend::sleep(bound));
                        match select(&mut sent, deadline).await {
                            Either::Left((result, _)) => break Some(result),
                            Either::Right(_) if member.progress() == progress => break None,
                            Either::Right(_) => {}
                        }
                    },
                    _ => Some((&mut sent).await),
                };
                drop(sent);
                (id, member, result)
            }
        });
        for (id, member, result) in futures::future::join_all(outcomes).await {
            match result {
                Some(Ok(())) => report.delivered += 1,
                Some(Err(_)) => {
                    self.remove(id);
                    report.gone += 1;
                }
                None => {
                    self.close_slow(id, &member);
                    report.closed += 1;
                }
            }
        }
        Ok(report)
    }

    fn close_slow(&self, id: u64, member: &Outgoing) {
        warn!(member = id, "closing a hub member that stopped reading");
        self.remove(id);
        member.close_now(CloseReason::new(
            CloseCode::ViolatedPolicy,
            "too slow to read",
        ));
    }
}

#[cfg(test)]
mod tests {
    //! The policies against sessions with no driver: nothing ever leaves
    //! their outgoing queue, so a queue that is full stays full.

    use super::*;
    use crate::link::{Command, Link};
    use crate::session::{Handshake, Session};
    use futures::FutureExt;

    const QUEUE: usize = 4;

    /// A session whose outgoing queue holds `QUEUE` frames and is never emptied.
    fn stuck_session() -> (Session, Arc<Link>) {
        let link = Arc::new(Link::with_queues(1, QUEUE));
        (Session::new(link.clone(), Handshake::default()), link)
    }

    /// Takes what a session queued: the texts and whether a 1008 Close came last.
    fn queued(link: &Link) -> (Vec<String>, Option<CloseCode>) {
        let mut commands = Vec::new();
        link.take_commands(usize::MAX, &mut commands);
        let mut texts = Vec::new();
        let mut close = None;
        for command in commands {
            match text_of(command) {
                Ok(text) => texts.push(text),
                Err(code) => close = Some(code),
            }
        }
        (texts, close)
    }

    /// The text a command sends, or the code of the Close it sends.
    fn text_of(command: Command) -> Result<String, CloseCode> {
        let frame = match command {
            Command::Frame(frame) => frame,
            Command::Encoded(frame) => frame.into_frame(),
            Command::Close(reason) => return Err(reason.code),
        };
        match frame.read_close_reason() {
            Some(reason) => Err(reason.code),
            None => Ok(frame.read_text().unwrap().to_owned()),
        }
    }

    fn texts(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn policies_default_to_closing_after_five_seconds() {
        assert_eq!(
            Hub::default().policy(),
            SlowMemberPolicy::CloseAfter(Duration::from_secs(5))
        );
    }

    #[test]
    fn drop_message_skips_a_full_member_and_keeps_it() {
        let hub = Hub::new(SlowMemberPolicy::DropMessage);
        let (session, link) = stuck_session();
        let _member = hub.join(session.outgoing());
        for i in 0..3 * QUEUE {
            let report = hub
                .broadcast(format!("m{i}"))
                .now_or_never()
                .unwrap()
                .unwrap();
            assert_eq!(report.delivered + report.skipped, 1);
        }
        assert_eq!(hub.len(), 1);
        // Memory stays bounded: the queue holds QUEUE frames, the rest were skipped.
        assert_eq!(queued(&link), (texts(0..QUEUE), None));
        // Room again: the member gets the next message.
        hub.broadcast("again").now_or_never().unwrap().unwrap();
        assert_eq!(queued(&link).0, ["again"]);
    }

    #[test]
    fn drop_member_closes_a_full_member_with_1008_at_once() {
        let hub = Hub::new(SlowMemberPolicy::DropMember);
        let (session, link) = stuck_session();
        let (fast, fast_link) = stuck_session();
        let _member = hub.join(session.outgoing());
        let _fast = hub.join(fast.outgoing());
        for i in 0..QUEUE {
            hub.broadcast(format!("m{i}"))
                .now_or_never()
                .unwrap()
                .unwrap();
            assert_eq!(queued(&fast_link).0, [format!("m{i}")]);
        }
        let report = hub
            .broadcast("one too many")
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!((report.delivered, report.closed), (1, 1));
        assert_eq!(hub.len(), 1);
        assert_eq!(
            queued(&link),
            (texts(0..QUEUE), Some(CloseCode::ViolatedPolicy))
        );
    }

    #[test]
    fn wait_holds_the_broadcast_until_the_member_has_room() {
        let hub = Hub::new(SlowMemberPolicy::Wait);
        let (session, link) = stuck_session();
        let _member = hub.join(session.outgoing());
        for i in 0..QUEUE {
            hub.broadcast(format!("m{i}"))
                .now_or_never()
                .unwrap()
                .unwrap();
        }
        let mut blocked = Box::pin(hub.broadcast("m4"));
        assert!(
            (&mut blocked).now_or_never().is_none(),
            "a full member must hold the broadcast"
        );
        assert_eq!(queued(&link), (texts(0..QUEUE), None));
        let report = blocked
            .now_or_never()
            .expect("room again: the broadcast completes")
            .unwrap();
        assert_eq!(report.delivered, 1);
        assert_eq!(queued(&link).0, ["m4"]);
    }

    #[test]
    fn a_broadcast_is_encoded_once_and_its_bytes_shared_by_all_members() {
        let hub = Hub::new(SlowMemberPolicy::Wait);
        let sessions: Vec<_> = (0..3).map(|_| stuck_session()).collect();
        let _members: Vec<_> = sessions
            .iter()
            .map(|(s, _)| hub.join(s.outgoing()))
            .collect();
        hub.broadcast("hello").now_or_never().unwrap().unwrap();
        let wires: Vec<bytes::Bytes> = sessions
            .iter()
            .map(|(_, link)| {
                let mut commands = Vec::new();
                link.take_commands(usize::MAX, &mut commands);
                match commands.pop() {
                    Some(Command::Encoded(frame)) => frame.wire().clone(),
                    other => panic!("expected an encoded frame, got {other:?}"),
                }
            })
            .collect();
        // An unmasked final text frame of 5 bytes, header included.
        assert_eq!(&wires[0][..], b"\x81\x05hello");
        assert!(
            wires.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()),
            "one encoding, shared"
        );
    }

    #[test]
    fn a_frame_that_cannot_be_sent_reaches_nobody_and_costs_no_member() {
        let hub = Hub::default();
        let (session, link) = stuck_session();
        let _member = hub.join(session.outgoing());
        let too_long_ping = Frame::ping(vec![0u8; 126]);
        let result = hub.broadcast(too_long_ping).now_or_never().unwrap();
        assert!(matches!(result, Err(Error::InvalidFrame(_))), "{result:?}");
        assert_eq!(hub.len(), 1);
        assert!(queued(&link).0.is_empty());
    }

    #[test]
    fn members_leave_when_their_membership_is_dropped() {
        let hub = Hub::default();
        let (session, link) = stuck_session();
        let member = hub.join(session.outgoing());
        assert_eq!((member.id(), hub.len()), (0, 1));
        drop(member);
        assert!(hub.is_empty());
        hub.broadcast("nobody").now_or_never().unwrap().unwrap();
        assert!(queued(&link).0.is_empty());
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test]
    async fn close_after_closes_a_member_that_stays_full_and_spares_the_rest() {
        let hub = Hub::new(SlowMemberPolicy::CloseAfter(Duration::from_millis(50)));
        let (stuck, stuck_link) = stuck_session();
        let (reader, reader_link) = stuck_session();
        let _stuck = hub.join(stuck.outgoing());
        let _reader = hub.join(reader.outgoing());
        let mut heard = Vec::new();
        for i in 0..3 * QUEUE {
            let report = hub.broadcast(format!("m{i}")).await.unwrap();
            assert_eq!(
                report.delivered,
                1 + usize::from(i < QUEUE),
                "{i}: {report:?}"
            );
            heard.extend(queued(&reader_link).0);
        }
        // The reader got everything in order; the stuck member got what fit,
        // then a 1008, and nothing more: its memory stayed bounded.
        assert_eq!(heard, texts(0..3 * QUEUE));
        assert_eq!(
            queued(&stuck_link),
            (texts(0..QUEUE), Some(CloseCode::ViolatedPolicy))
        );
        assert_eq!(hub.len(), 1);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test]
    async fn close_after_spares_a_member_that_reads_however_slowly() {
        // Five broadcasts at once into a queue of one that drains one frame
        // every 30 ms: the last waits several times the 50 ms bound, but the
        // member never stops reading, so it is not closed.
        let hub = Hub::new(SlowMemberPolicy::CloseAfter(Duration::from_millis(50)));
        let link = Arc::new(Link::with_queues(1, 1));
        let session = Session::new(link.clone(), Handshake::default());
        let _member = hub.join(session.outgoing());
        let drainer = {
            let link = link.clone();
            tokio::spawn(async move {
                let mut texts = Vec::new();
                while texts.len() < 5 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let mut commands = Vec::new();
                    link.take_commands(1, &mut commands);
                    texts.extend(commands.into_iter().map(|c| text_of(c).unwrap()));
                }
                texts
            })
        };
        let reports =
            futures::future::join_all((0..5).map(|i| hub.broadcast(format!("m{i}")))).await;
        assert!(
            reports.iter().all(|r| r.as_ref().unwrap().delivered == 1),
            "{reports:?}"
        );
        let mut texts = drainer.await.unwrap();
        texts.sort();
        assert_eq!(texts, super::tests::texts(0..5));
        assert_eq!(hub.len(), 1);
    }
}
