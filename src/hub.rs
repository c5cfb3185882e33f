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
//! | [`CloseAfter(d)`](SlowMemberPolicy::CloseAfter) (default, 5 s) | is closed with 1008, and leaves the hub, unless it empties its queue within `d` of a broadcast finding it full | waits until the member has emptied that queue, up to `d` |
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
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// A minimum rate: a member must empty a full queue within this long.
    ///
    /// When a broadcast finds the member's queue full, it waits, and the
    /// member has this long to take every frame the hub had queued for it
    /// by then (the whole backlog, [`outgoing_queue`] frames or so); the
    /// broadcast goes on once it has, with its own frame queued. A member
    /// that has not is closed with 1008 (policy violation) and removed from
    /// the hub, however much it read meanwhile: one that takes a frame now
    /// and then, just often enough to make room for the next broadcast,
    /// would otherwise hold every broadcast to its pace. So a member is
    /// kept as long as it reads at least a queue's worth of frames per
    /// duration whenever it falls behind, and the broadcaster waits for it
    /// at most this long per broadcast. Members that stay get every
    /// message, in order per broadcaster. The default, 5 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tandem::hub::{Hub, SlowMemberPolicy};
    /// let hub = Hub::new(SlowMemberPolicy::CloseAfter(Duration::from_secs(2)));
    /// ```
    ///
    /// [`outgoing_queue`]: crate::WebSocketOptions::outgoing_queue
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
    by_id: BTreeMap<u64, Member>,
}

/// A member's outgoing handle and what the hub has given it.
#[derive(Debug, Clone)]
struct Member {
    outgoing: Outgoing,
    /// The member's [`Outgoing::progress`] once it has taken every frame
    /// the hub queued for it (its progress at joining, plus one per frame).
    owed: Arc<AtomicU64>,
}

impl Member {
    /// Counts a frame the hub queued for the member.
    fn queued_one(&self) {
        self.owed.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the member's progress has reached `owed`.
    fn has_taken(&self, owed: u64) -> bool {
        self.outgoing.progress() >= owed
    }
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
        let owed = Arc::new(AtomicU64::new(outgoing.progress()));
        members.by_id.insert(id, Member { outgoing, owed });
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

    /// The numbers ([`Membership::id`]) of the members, smallest first.
    ///
    /// ```no_run
    /// # fn f(hub: tandem::hub::Hub, a: tandem::Session, b: tandem::Session) {
    /// let first = hub.join(a.outgoing());
    /// let second = hub.join(b.outgoing());
    /// drop(first);
    /// assert_eq!(hub.member_ids(), [second.id()]);
    /// # }
    /// ```
    pub fn member_ids(&self) -> Vec<u64> {
        self.lock().by_id.keys().copied().collect()
    }

    /// Every member's outgoing handle.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn outgoings(&self) -> Vec<Outgoing> {
        self.lock()
            .by_id
            .values()
            .map(|member| member.outgoing.clone())
            .collect()
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
            match member.outgoing.try_send_encoded(frame.clone()) {
                Ok(()) => {
                    member.queued_one();
                    report.delivered += 1;
                }
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
            self.close_slow(id, &member.outgoing);
            report.closed += 1;
        }
        if waiting.is_empty() {
            return Ok(report);
        }
        let policy = self.inner.policy;
        let outcomes = waiting.into_iter().map(|(id, member)| {
            let frame = frame.clone();
            async move {
                let result = match policy {
                    SlowMemberPolicy::CloseAfter(bound) => {
                        catch_up_within(&member, frame, bound).await
                    }
                    _ => {
                        let result = member.outgoing.send_encoded(frame).await;
                        if result.is_ok() {
                            member.queued_one();
                        }
                        Some(result)
                    }
                };
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
                    self.close_slow(id, &member.outgoing);
                    report.closed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Broadcasts `value` as JSON, serialized once for every member; see
    /// [`Hub::broadcast`] and [`codec`](crate::codec).
    ///
    /// ```no_run
    /// # async fn f(hub: tandem::hub::Hub) -> Result<(), tandem::Error> {
    /// hub.broadcast_json(&serde_json::json!({ "type": "joined", "user": "alice" })).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub async fn broadcast_json<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<BroadcastReport, Error> {
        self.broadcast_as::<crate::codec::Json, T>(value).await
    }

    /// Broadcasts `value` in codec `C`'s format, encoded once for every member.
    ///
    /// ```no_run
    /// # async fn f(hub: tandem::hub::Hub) -> Result<(), tandem::Error> {
    /// hub.broadcast_as::<tandem::codec::Json, _>(&("tick", 1)).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub async fn broadcast_as<C: crate::codec::Codec, T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<BroadcastReport, Error> {
        self.broadcast(C::encode(value)?).await
    }

    fn close_slow(&self, id: u64, member: &Outgoing) {
        warn!(member = id, "closing a hub member that reads too slowly");
        self.remove(id);
        member.close_now(CloseReason::new(
            CloseCode::ViolatedPolicy,
            "too slow to read",
        ));
    }
}

/// [`SlowMemberPolicy::CloseAfter`] for a member whose queue was full:
/// sends `frame` and waits, in windows of `bound`, until the member has
/// taken every frame the hub had queued for it when the window began.
/// `Some` with the send's result once it has, `None` when a window ends
/// before it has: the member is too slow and is to be closed.
async fn catch_up_within(
    member: &Member,
    frame: EncodedFrame,
    bound: Duration,
) -> Option<Result<(), Error>> {
    let mut send = pin!(member.outgoing.send_encoded(frame));
    let mut sent = None;
    loop {
        // The backlog: what the hub had queued, and at least one frame (a
        // member whose queue is full of its own frames must still read).
        let owed = member
            .owed
            .load(Ordering::Relaxed)
            .max(member.outgoing.progress() + 1);
        let mut window = pin!(crate::backend::sleep(bound));
        loop {
            match sent {
                Some(Err(_)) => return sent,
                Some(Ok(())) if member.has_taken(owed) => return sent,
                Some(Ok(())) => {
                    let caught_up = pin!(member.outgoing.progress_reaches(owed));
                    if let Either::Left(_) = select(&mut window, caught_up).await {
                        break;
                    }
                }
                None => match select(&mut send, &mut window).await {
                    Either::Left((result, _)) => {
                        if result.is_ok() {
                            member.queued_one();
                        }
                        sent = Some(result);
                    }
                    Either::Right(_) => break,
                },
            }
        }
        if !member.has_taken(owed) {
            return None;
        }
        // The backlog is gone, but other broadcasts took the room it left:
        // a new window for this frame.
        if sent.is_some() {
            return sent;
        }
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
        let (other, _) = stuck_session();
        let second = hub.join(other.outgoing());
        assert_eq!((member.id(), hub.len()), (0, 2));
        assert_eq!(hub.member_ids(), [0, 1]);
        drop(member);
        assert_eq!(hub.member_ids(), [second.id()]);
        drop(second);
        assert!(hub.is_empty());
        hub.broadcast("nobody").now_or_never().unwrap().unwrap();
        assert!(queued(&link).0.is_empty());
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test(start_paused = true)]
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
    #[tokio::test(start_paused = true)]
    async fn close_after_closes_a_member_that_takes_a_frame_just_before_each_deadline() {
        // The member takes one frame every 150 ms, which would make room for
        // each broadcast within the 200 ms bound, forever. Four frames were
        // queued when the first broadcast found it full, and it takes one of
        // them within the bound: it is closed, within about one bound.
        let bound = Duration::from_millis(200);
        let hub = Hub::new(SlowMemberPolicy::CloseAfter(bound));
        let (session, link) = stuck_session();
        let _member = hub.join(session.outgoing());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trickle = {
            let (link, stop) = (link.clone(), stop.clone());
            tokio::spawn(async move {
                let mut taken = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    link.take_commands(1, &mut taken);
                }
                taken.len()
            })
        };
        let started = tokio::time::Instant::now();
        let mut closed_after = None;
        for i in 0..3 * QUEUE {
            let report = hub.broadcast(format!("m{i}")).await.unwrap();
            if report.closed == 1 {
                closed_after = Some(started.elapsed());
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let trickled = trickle.await.unwrap();
        let closed_after = closed_after.expect("a member that trickles is closed");
        assert!(closed_after < 3 * bound, "closed after {closed_after:?}");
        assert!(hub.is_empty());
        let (texts, close) = queued(&link);
        assert_eq!(close, Some(CloseCode::ViolatedPolicy));
        assert!(
            trickled + texts.len() <= QUEUE + 2,
            "{trickled} + {texts:?}"
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test(start_paused = true)]
    async fn close_after_closes_a_member_whose_queue_is_full_of_its_own_frames() {
        let hub = Hub::new(SlowMemberPolicy::CloseAfter(Duration::from_millis(50)));
        let (session, link) = stuck_session();
        for i in 0..QUEUE {
            session.outgoing().try_send(format!("own{i}")).unwrap();
        }
        let _member = hub.join(session.outgoing());
        let report = tokio::time::timeout(Duration::from_secs(5), hub.broadcast("m"))
            .await
            .expect("the broadcast gives up on the member")
            .unwrap();
        assert_eq!((report.delivered, report.closed), (0, 1));
        assert_eq!(queued(&link).1, Some(CloseCode::ViolatedPolicy));
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test(start_paused = true)]
    async fn close_after_keeps_a_member_that_empties_its_queue_within_the_bound() {
        // One broadcaster, faster than the member, which empties its whole
        // queue every 30 ms: it is full at most broadcasts, and it is kept.
        let hub = Hub::new(SlowMemberPolicy::CloseAfter(Duration::from_millis(200)));
        let (session, link) = stuck_session();
        let _member = hub.join(session.outgoing());
        let drainer = {
            let link = link.clone();
            tokio::spawn(async move {
                let mut texts = Vec::new();
                while texts.len() < 6 * QUEUE {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let mut commands = Vec::new();
                    link.take_commands(usize::MAX, &mut commands);
                    texts.extend(commands.into_iter().map(|c| text_of(c).unwrap()));
                }
                texts
            })
        };
        for i in 0..6 * QUEUE {
            let report = hub.broadcast(format!("m{i}")).await.unwrap();
            assert_eq!(report.delivered, 1, "m{i}: {report:?}");
        }
        assert_eq!(drainer.await.unwrap(), texts(0..6 * QUEUE));
        assert_eq!(hub.len(), 1);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test(start_paused = true)]
    async fn close_after_spares_a_member_that_reads_however_slowly() {
        // Five broadcasts at once into a queue of one that drains one frame
        // every 30 ms: the last waits several times the 50 ms bound, but the
        // member empties its queue (of one) well within each bound, so it is
        // not closed.
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
