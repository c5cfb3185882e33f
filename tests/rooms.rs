//! `tandem::rooms` on the in-process backplane: rooms apart, one order per
//! room, members that come back with the id of the last message they saw,
//! presence counted over instances, and counters they share.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::members::Members;
use common::{next_text, within};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tandem::rooms::{Backplane, Envelope, History, LocalBackplane, MessageId, Rooms};
use tandem::{Error, Frame};

#[tokio::test]
async fn members_get_the_messages_of_their_rooms_in_publish_order() {
    let rooms = Rooms::new();
    let mut members = Members::new();
    let (mut both, both_out) = members.connect().await;
    let (mut lobby_only, lobby_out) = members.connect().await;
    let _a = rooms.join("lobby", both_out.clone()).await.unwrap();
    let _b = rooms.join("news", both_out).await.unwrap();
    let _c = rooms.join("lobby", lobby_out).await.unwrap();
    assert_eq!(rooms.local_members("lobby"), 2);
    assert_eq!(rooms.local_members("news"), 1);

    rooms.publish("lobby", "l1").await.unwrap();
    rooms.publish("news", "n1").await.unwrap();
    rooms.publish("lobby", "l2").await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_text(&mut both).await);
    }
    // One order per room; across rooms, whichever task ran first.
    let lobby: Vec<_> = seen.iter().filter(|t| t.starts_with('l')).collect();
    assert_eq!(lobby, ["l1", "l2"]);
    assert!(seen.contains(&"n1".to_owned()));
    assert_eq!(next_text(&mut lobby_only).await, "l1");
    assert_eq!(next_text(&mut lobby_only).await, "l2");
}

#[tokio::test]
async fn a_member_that_comes_back_gets_what_it_missed_then_the_live_ones() {
    let rooms = Rooms::new().render(|envelope| {
        Frame::text(format!(
            "{} {}",
            envelope.id,
            envelope.frame.read_text().unwrap_or_default()
        ))
    });
    let mut members = Members::new();
    // Someone stays, so that the room goes on while the other is away.
    let (_stays, stays_out) = members.connect().await;
    let _stays_in = rooms.join("r", stays_out).await.unwrap();

    let (mut first, first_out) = members.connect().await;
    let membership = rooms.join("r", first_out).await.unwrap();
    for i in 1..=3 {
        rooms.publish("r", format!("m{i}")).await.unwrap();
    }
    let mut last = String::new();
    for i in 1..=3 {
        last = next_text(&mut first).await;
        assert!(last.ends_with(&format!("m{i}")), "{last}");
    }
    let last_id = last.split(' ').next().unwrap().parse().unwrap();
    drop(membership);
    drop(first);

    // Published while it is away.
    for i in 4..=6 {
        rooms.publish("r", format!("m{i}")).await.unwrap();
    }
    let (mut back, back_out) = members.connect().await;
    let membership = rooms.join_after("r", back_out, last_id).await.unwrap();
    assert!(membership.recovered());
    rooms.publish("r", "m7").await.unwrap();
    for i in 4..=7 {
        let text = next_text(&mut back).await;
        assert!(
            text.ends_with(&format!(":{i} m{i}")),
            "no gap, no duplicate: {text}"
        );
    }
}

#[tokio::test]
async fn joins_and_messages_racing_leave_no_gap_and_no_duplicate() {
    // A publisher that never pauses while members come back one after the
    // other: each sees one unbroken run of ids from where it left.
    let rooms = Rooms::new().render(|envelope| Frame::text(envelope.id.to_string()));
    let mut members = Members::new();
    let (_stays, stays_out) = members.connect().await;
    let _stays_in = rooms.join("r", stays_out).await.unwrap();
    let publisher = {
        let rooms = rooms.clone();
        tokio::spawn(async move {
            for i in 0..400 {
                rooms.publish("r", format!("m{i}")).await.unwrap();
                if i % 8 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // The place in the room's log: what follows the last `:` of an id.
    let place = |id: &str| -> u64 { id.rsplit(':').next().unwrap().parse().unwrap() };
    let mut last_seen: Option<String> = None;
    for _ in 0..10 {
        let (mut client, outgoing) = members.connect().await;
        let membership = match &last_seen {
            Some(id) => rooms.join_after("r", outgoing, id.parse().unwrap()).await,
            None => rooms.join("r", outgoing).await,
        }
        .unwrap();
        assert!(membership.recovered());
        for _ in 0..5 {
            let id = next_text(&mut client).await;
            if let Some(previous) = &last_seen {
                assert_eq!(place(&id), place(previous) + 1, "after {previous}");
            }
            last_seen = Some(id);
        }
        drop(membership);
    }
    publisher.await.unwrap();
}

#[tokio::test]
async fn a_member_back_from_beyond_the_history_is_told_it_lost_messages() {
    let rooms = Rooms::with_backplane(LocalBackplane::with_history(2));
    let mut members = Members::new();
    let (_stays, stays_out) = members.connect().await;
    let _stays_in = rooms.join("r", stays_out).await.unwrap();
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(rooms.publish("r", format!("m{i}")).await.unwrap());
    }
    let (mut back, back_out) = members.connect().await;
    let membership = rooms
        .join_after("r", back_out, ids[0].clone())
        .await
        .unwrap();
    assert!(!membership.recovered(), "2 and 3 are no longer kept");
    // What is kept still comes, in order.
    assert_eq!(next_text(&mut back).await, "m4");
    assert_eq!(next_text(&mut back).await, "m5");
}

#[tokio::test]
async fn a_room_everyone_left_opens_again() {
    let rooms = Rooms::new();
    let mut members = Members::new();
    let (_client, outgoing) = members.connect().await;
    drop(rooms.join("r", outgoing).await.unwrap());
    assert_eq!(rooms.local_members("r"), 0);
    let (mut client, outgoing) = members.connect().await;
    let _in = rooms.join("r", outgoing).await.unwrap();
    rooms.publish("r", "again").await.unwrap();
    assert_eq!(next_text(&mut client).await, "again");
}

#[tokio::test]
async fn only_whole_messages_can_be_published() {
    let rooms = Rooms::new();
    assert!(matches!(
        rooms.publish("r", Frame::ping("p")).await,
        Err(Error::InvalidFrame(_))
    ));
}

/// Polls `rooms.members(room)` until it is `expected`.
async fn members_become(rooms: &Rooms, room: &str, expected: usize) {
    within(&format!("{expected} members in {room}"), async {
        while rooms.members(room).await.unwrap() != expected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_count_covers_every_instance_and_follows_joins_and_leaves() {
    let backplane = LocalBackplane::new();
    let a = Rooms::with_backplane(backplane.clone());
    let b = Rooms::with_backplane(backplane);
    let (mut on_a, mut on_b) = (Members::new(), Members::new());
    let (_c1, out1) = on_a.connect().await;
    let (_c2, out2) = on_a.connect().await;
    let (_c3, out3) = on_b.connect().await;
    let first = a.join("r", out1).await.unwrap();
    let _second = a.join("r", out2).await.unwrap();
    assert_eq!(b.members("r").await.unwrap(), 2, "A's joins, seen from B");
    let _third = b.join("r", out3).await.unwrap();
    // Counted by the time the join returns, on both instances.
    assert_eq!(b.members("r").await.unwrap(), 3);
    assert_eq!(a.members("r").await.unwrap(), 3);
    assert_eq!(a.members("elsewhere").await.unwrap(), 0);

    drop(first);
    members_become(&b, "r", 2).await;
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_count_and_a_silent_instance_drops_out_of_it() {
    let backplane = LocalBackplane::new();
    let rooms = Rooms::with_backplane(backplane.clone()).presence_heartbeat(Duration::from_secs(1));
    let mut members = Members::new();
    let (_client, outgoing) = members.connect().await;
    let _in = rooms.join("r", outgoing).await.unwrap();
    // An instance that stated 5 members for 3 s and was never heard again.
    backplane
        .set_presence("r", "dead", 5, Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(rooms.members("r").await.unwrap(), 6);

    // Each statement holds for three heartbeats (3 s); the heartbeats
    // restate this instance's member long after its join.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(rooms.members("r").await.unwrap(), 1);
}

#[tokio::test]
async fn counters_give_each_number_once_across_instances() {
    let backplane = LocalBackplane::new();
    let a = Rooms::with_backplane(backplane.clone());
    let b = Rooms::with_backplane(backplane);
    let take = |rooms: Rooms| {
        tokio::spawn(async move {
            let mut numbers = Vec::new();
            for _ in 0..100 {
                numbers.push(rooms.next_number("users").await.unwrap());
            }
            numbers
        })
    };
    let (from_a, from_b) = (take(a.clone()), take(b));
    let mut all: BTreeSet<u64> = from_a.await.unwrap().into_iter().collect();
    all.extend(from_b.await.unwrap());
    assert_eq!(all, (0..200).collect(), "0 to 199, each once");
    assert_eq!(a.next_number("other").await.unwrap(), 0, "counters apart");
}

#[tokio::test]
async fn a_join_reply_comes_after_the_missed_messages_and_before_any_live_one() {
    let rooms = Rooms::new();
    let mut members = Members::new();
    let (mut first, outgoing) = members.connect().await;
    let _first = rooms.join("r", outgoing).await.unwrap();
    let last_seen = rooms.publish("r", "m1").await.unwrap();
    assert_eq!(next_text(&mut first).await, "m1");
    rooms.publish("r", "m2").await.unwrap();
    rooms.publish("r", "m3").await.unwrap();

    // A busy room: messages keep coming while the member joins.
    let publisher = {
        let rooms = rooms.clone();
        tokio::spawn(async move {
            for i in 0.. {
                rooms.publish("r", format!("live{i}")).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let (mut back, outgoing) = members.connect().await;
    let reply = |recovered| Frame::text(format!("welcome back (recovered: {recovered})"));
    let membership = rooms
        .join_with_reply("r", outgoing, Some(last_seen), reply)
        .await
        .unwrap();
    assert!(membership.recovered());
    let (mut newcomer, outgoing) = members.connect().await;
    let _new = rooms
        .join_with_reply("r", outgoing, None, |_| Frame::text("hello"))
        .await
        .unwrap();
    publisher.abort();

    // What it missed, up to where the room was when it joined (the
    // messages published before, the live ones among them), then the
    // reply, then the next live message: one unbroken run.
    let mut got = Vec::new();
    loop {
        let text = next_text(&mut back).await;
        if text.starts_with("welcome") {
            assert_eq!(text, "welcome back (recovered: true)");
            break;
        }
        got.push(text);
    }
    got.push(next_text(&mut back).await);
    assert_eq!(&got[..2], ["m2", "m3"]);
    let live: Vec<String> = (0..got.len() - 2).map(|i| format!("live{i}")).collect();
    assert_eq!(got[2..], live, "no gap and no duplicate around the reply");

    // A plain join's reply comes first, however busy the room.
    assert_eq!(next_text(&mut newcomer).await, "hello");
}

/// A backplane whose presence statements take a while, as over a network.
struct SlowPresence(LocalBackplane);

impl Backplane for SlowPresence {
    fn publish(&self, room: &str, frame: Frame) -> BoxFuture<'static, Result<MessageId, Error>> {
        self.0.publish(room, frame)
    }
    fn head(&self, room: &str) -> BoxFuture<'static, Result<Option<MessageId>, Error>> {
        self.0.head(room)
    }
    fn subscribe(
        &self,
        room: &str,
        after: Option<MessageId>,
    ) -> BoxStream<'static, Result<Envelope, Error>> {
        self.0.subscribe(room, after)
    }
    fn history(
        &self,
        room: &str,
        after: MessageId,
        through: MessageId,
    ) -> BoxFuture<'static, Result<History, Error>> {
        self.0.history(room, after, through)
    }
    fn set_presence(
        &self,
        room: &str,
        instance: &str,
        members: usize,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let stated = self.0.set_presence(room, instance, members, ttl);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stated.await
        })
    }
    fn presence(&self, room: &str) -> BoxFuture<'static, Result<usize, Error>> {
        self.0.presence(room)
    }
    fn next_number(&self, counter: &str) -> BoxFuture<'static, Result<u64, Error>> {
        self.0.next_number(counter)
    }
}

#[tokio::test]
async fn a_member_counts_from_before_its_reply_so_the_next_one_counts_it() {
    let rooms = Rooms::with_backplane(SlowPresence(LocalBackplane::new()));
    let mut members = Members::new();
    let mut clients = Vec::new();
    for k in 1..=3 {
        let (mut client, outgoing) = members.connect().await;
        let here = rooms.members("r").await.unwrap() + 1;
        let reply = move |_| Frame::text(format!("{here} here"));
        let join = {
            let rooms = rooms.clone();
            tokio::spawn(async move { rooms.join_with_reply("r", outgoing, None, reply).await })
        };
        // The next member comes as soon as this one has its reply, maybe
        // before its join has returned on the server.
        assert_eq!(next_text(&mut client).await, format!("{k} here"));
        clients.push((client, join));
    }
}
