//! `tandem::rooms::RedisBackplane` against a private `redis-server` that
//! each test starts on a free port of 127.0.0.1 (and kills at its end):
//! one order per room across instances, resuming from an id, the bounded
//! history and what it says of itself, a Redis restart, and `Rooms` on two
//! instances sharing a room.
#![cfg(all(feature = "redis", not(target_arch = "wasm32")))]

mod common;

use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;

use common::members::Members;
use common::redis::{RedisServer, ReplyCutter};
use common::{next_text, within};
use tandem::rooms::{Backplane, Envelope, MessageId, RedisBackplane, Rooms};
use tandem::{Error, Frame};

async fn backplane(redis: &RedisServer) -> RedisBackplane {
    RedisBackplane::builder(redis.url())
        .connect()
        .await
        .unwrap()
}

async fn next(reader: &mut BoxStream<'static, Result<Envelope, Error>>) -> Envelope {
    within("the next message", reader.next())
        .await
        .expect("a message")
        .expect("not lost")
}

async fn texts(reader: &mut BoxStream<'static, Result<Envelope, Error>>, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    for _ in 0..n {
        let envelope = next(reader).await;
        texts.push(envelope.frame.read_text().unwrap().to_owned());
    }
    texts
}

#[tokio::test]
async fn two_instances_publishing_at_once_are_read_in_one_order_by_both() {
    let redis = RedisServer::start().await;
    let a = backplane(&redis).await;
    let b = backplane(&redis).await;
    let mut read_on_a = a.subscribe("r", None);
    let mut read_on_b = b.subscribe("r", None);
    let publish = |backplane: RedisBackplane, name: &'static str| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..200 {
                let id = backplane
                    .publish("r", Frame::text(format!("{name}{i}")))
                    .await
                    .unwrap();
                ids.push(id);
            }
            ids
        })
    };
    let (from_a, from_b) = (publish(a.clone(), "a"), publish(b.clone(), "b"));
    let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());

    let mut seen_on_a = Vec::new();
    let mut seen_on_b = Vec::new();
    for _ in 0..400 {
        seen_on_a.push(next(&mut read_on_a).await);
        seen_on_b.push(next(&mut read_on_b).await);
    }
    assert_eq!(seen_on_a, seen_on_b, "one order for both instances");
    // Each publisher's messages in its own order, with the ids it was given.
    for (name, ids) in [("a", &from_a), ("b", &from_b)] {
        let mine: Vec<_> = seen_on_a
            .iter()
            .filter(|e| e.frame.read_text().unwrap().starts_with(name))
            .collect();
        assert_eq!(mine.len(), 200);
        for (i, envelope) in mine.iter().enumerate() {
            assert_eq!(envelope.frame, Frame::text(format!("{name}{i}")));
            assert_eq!(&envelope.id, &ids[i]);
        }
    }
    // Binary messages keep their bytes and their kind.
    let id = a
        .publish("bin", Frame::binary(vec![0u8, 159, 255]))
        .await
        .unwrap();
    let mut reader = b.subscribe("bin", None);
    let envelope = next(&mut reader).await;
    assert_eq!(
        (envelope.id, envelope.frame),
        (id, Frame::binary(vec![0u8, 159, 255]))
    );
}

#[tokio::test]
async fn a_reader_from_an_id_gets_what_came_after_it() {
    let redis = RedisServer::start().await;
    let backplane = backplane(&redis).await;
    assert_eq!(backplane.head("r").await.unwrap(), None);
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(
            backplane
                .publish("r", Frame::text(format!("m{i}")))
                .await
                .unwrap(),
        );
    }
    assert_eq!(backplane.head("r").await.unwrap().as_ref(), Some(&ids[4]));
    assert_eq!(
        backplane.head("other").await.unwrap(),
        None,
        "rooms are apart"
    );

    let mut reader = backplane.subscribe("r", Some(ids[2].clone()));
    assert_eq!(texts(&mut reader, 2).await, ["m4", "m5"]);
    // Then the live ones.
    backplane.publish("r", Frame::text("m6")).await.unwrap();
    assert_eq!(texts(&mut reader, 1).await, ["m6"]);
    // From the head: only what comes next.
    let head = backplane.head("r").await.unwrap();
    let mut from_head = backplane.subscribe("r", head);
    backplane.publish("r", Frame::text("m7")).await.unwrap();
    assert_eq!(texts(&mut from_head, 1).await, ["m7"]);
}

#[tokio::test]
async fn the_history_is_bounded_and_says_whether_it_reaches_back() {
    let redis = RedisServer::start().await;
    let backplane = RedisBackplane::builder(redis.url())
        .history(10)
        .connect()
        .await
        .unwrap();
    let mut ids: Vec<MessageId> = Vec::new();
    for i in 0..300 {
        ids.push(
            backplane
                .publish("r", Frame::text(format!("m{i}")))
                .await
                .unwrap(),
        );
    }
    // MAXLEN ~ 10: at least 10 kept, and whole nodes of 100 trimmed.
    let kept: usize = redis.cli(&["XLEN", "tandem:room:{r}"]).parse().unwrap();
    assert!((10..=110).contains(&kept), "{kept} entries kept");
    let first_kept = ids.len() - kept;
    let mut from_start = backplane.subscribe("r", None);
    assert_eq!(next(&mut from_start).await.id, ids[first_kept]);

    let last = ids[299].clone();
    // From an id that is still kept: complete.
    let history = backplane
        .history("r", ids[295].clone(), last.clone())
        .await
        .unwrap();
    assert!(history.complete);
    let got: Vec<_> = history.messages.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got, ids[296..]);
    assert_eq!(history.messages[0].frame, Frame::text("m296"));
    // From the last id trimmed: complete too, everything after it is kept.
    let history = backplane
        .history("r", ids[first_kept - 1].clone(), last.clone())
        .await
        .unwrap();
    assert!(
        history.complete,
        "the first kept message is the one after it"
    );
    assert_eq!(history.messages.len(), kept);
    // From one before that: one message is gone.
    let history = backplane
        .history("r", ids[first_kept - 2].clone(), last.clone())
        .await
        .unwrap();
    assert!(!history.complete);
    assert_eq!(history.messages.len(), kept, "what is kept still comes");
    // Up to `through`, not beyond.
    let history = backplane
        .history("r", ids[295].clone(), ids[297].clone())
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 2);
    // An id of no Redis stream.
    let history = backplane
        .history("r", "x".parse().unwrap(), last)
        .await
        .unwrap();
    assert!(!history.complete);

    // A reader from a trimmed id learns that it lost messages, then ends.
    let mut late = backplane.subscribe("r", Some(ids[0].clone()));
    let lost = within("the lost report", late.next()).await;
    assert!(matches!(lost, Some(Err(Error::Backplane(_)))), "{lost:?}");
    assert!(late.next().await.is_none());
    // A reader from the last trimmed id is not behind.
    let mut just_in_time = backplane.subscribe("r", Some(ids[first_kept - 1].clone()));
    assert_eq!(next(&mut just_in_time).await.id, ids[first_kept]);
}

#[tokio::test]
async fn the_history_also_drops_messages_older_than_max_age() {
    let redis = RedisServer::start().await;
    let backplane = RedisBackplane::builder(redis.url())
        .max_age(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    for i in 0..250 {
        backplane
            .publish("r", Frame::text(format!("old{i}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    backplane.publish("r", Frame::text("new")).await.unwrap();
    // MINID ~: whole nodes of 100 go.
    let kept: usize = redis.cli(&["XLEN", "tandem:room:{r}"]).parse().unwrap();
    assert!(kept <= 51, "{kept} entries kept");
}

#[tokio::test]
async fn a_redis_restart_loses_nothing_and_publishes_wait_then_fail() {
    let mut redis = RedisServer::start().await;
    let impatient = RedisBackplane::builder(redis.url())
        .publish_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let patient = RedisBackplane::builder(redis.url())
        .publish_timeout(Duration::from_secs(15))
        .connect()
        .await
        .unwrap();
    let mut reading = patient.subscribe("r", None);
    // Subscribed before the restart, read only after it.
    let mut idle = impatient.subscribe("r", None);
    for i in 1..=3 {
        impatient
            .publish("r", Frame::text(format!("m{i}")))
            .await
            .unwrap();
    }
    assert_eq!(texts(&mut reading, 3).await, ["m1", "m2", "m3"]);

    redis.kill();
    let started = tokio::time::Instant::now();
    let refused = impatient.publish("r", Frame::text("lost")).await;
    match &refused {
        Err(Error::Backplane(text)) => assert!(text.contains("redis unreachable"), "{text}"),
        other => panic!("a publish while redis is away must fail: {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited first: {:?} {refused:?}",
        started.elapsed()
    );
    // This one waits for Redis to come back.
    let waiting = {
        let patient = patient.clone();
        tokio::spawn(async move { patient.publish("r", Frame::text("m4")).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "it waits while redis is away");
    redis.restart().await;
    within("the waiting publish", waiting)
        .await
        .unwrap()
        .unwrap();
    impatient.publish("r", Frame::text("m5")).await.unwrap();

    assert_eq!(
        texts(&mut reading, 2).await,
        ["m4", "m5"],
        "no gap, no duplicate"
    );
    assert_eq!(
        texts(&mut idle, 5).await,
        ["m1", "m2", "m3", "m4", "m5"],
        "what was accepted before the restart is still there"
    );
    // And a reader that comes later finds the same log.
    let mut later = patient.subscribe("r", None);
    assert_eq!(texts(&mut later, 5).await, ["m1", "m2", "m3", "m4", "m5"]);
}

#[tokio::test]
async fn a_publish_whose_reply_was_lost_is_stored_once() {
    let redis = RedisServer::start().await;
    let cutter = ReplyCutter::start(&redis).await;
    let backplane = RedisBackplane::builder(cutter.url())
        .connect()
        .await
        .unwrap();
    // Redis has the publish script from now on: the reply cut next is the
    // script's.
    backplane.publish("warm-up", Frame::text("")).await.unwrap();
    cutter.cut_next_reply();
    // Stored, then its reply lost with the connection: published again on a
    // new one, it must come back with the first attempt's id.
    let id = backplane.publish("r", Frame::text("once")).await.unwrap();
    assert_eq!(redis.cli(&["XLEN", "tandem:room:{r}"]), "1");
    assert_eq!(backplane.head("r").await.unwrap(), Some(id));
}

#[tokio::test]
async fn rooms_on_two_instances_share_a_room_in_one_order() {
    let redis = RedisServer::start().await;
    let on_a = Rooms::with_backplane(backplane(&redis).await);
    let on_b = Rooms::with_backplane(backplane(&redis).await);
    let (mut members_a, mut members_b) = (Members::new(), Members::new());
    let (mut alice, alice_out) = members_a.connect().await;
    let (mut bob, bob_out) = members_b.connect().await;
    let _alice_in = on_a.join("r", alice_out).await.unwrap();
    let _bob_in = on_b.join("r", bob_out).await.unwrap();

    let publish = |rooms: Rooms, name: &'static str| {
        tokio::spawn(async move {
            for i in 0..50 {
                rooms.publish("r", format!("{name}{i}")).await.unwrap();
            }
        })
    };
    let (a, b) = (publish(on_a.clone(), "a"), publish(on_b.clone(), "b"));
    a.await.unwrap();
    b.await.unwrap();
    let mut on_alice = Vec::new();
    let mut on_bob = Vec::new();
    for _ in 0..100 {
        on_alice.push(next_text(&mut alice).await);
        on_bob.push(next_text(&mut bob).await);
    }
    assert_eq!(on_alice, on_bob, "the same order on both instances");
    let from_a: Vec<_> = on_bob
        .iter()
        .filter(|t| t.starts_with('a'))
        .cloned()
        .collect();
    let sent_by_a: Vec<_> = (0..50).map(|i| format!("a{i}")).collect();
    assert_eq!(from_a, sent_by_a, "A's messages reach B in A's order");
}

#[tokio::test]
async fn a_member_that_leaves_one_instance_resumes_on_another() {
    let redis = RedisServer::start().await;
    let render = |envelope: &Envelope| {
        Frame::text(format!(
            "{} {}",
            envelope.id,
            envelope.frame.read_text().unwrap_or_default()
        ))
    };
    let on_a = Rooms::with_backplane(backplane(&redis).await).render(render);
    let on_b = Rooms::with_backplane(backplane(&redis).await).render(render);
    let (mut members_a, mut members_b) = (Members::new(), Members::new());
    let (mut client, outgoing) = members_a.connect().await;
    let membership = on_a.join("r", outgoing).await.unwrap();
    for i in 1..=3 {
        on_a.publish("r", format!("m{i}")).await.unwrap();
    }
    let mut last = String::new();
    for _ in 1..=3 {
        last = next_text(&mut client).await;
    }
    assert!(last.ends_with(" m3"), "{last}");
    let last_id: MessageId = last.split(' ').next().unwrap().parse().unwrap();
    drop(membership);
    drop(client);

    // Published on A while the member is away; it comes back on B.
    for i in 4..=6 {
        on_a.publish("r", format!("m{i}")).await.unwrap();
    }
    let (mut back, outgoing) = members_b.connect().await;
    let membership = on_b.join_after("r", outgoing, last_id).await.unwrap();
    assert!(membership.recovered());
    on_a.publish("r", "m7").await.unwrap();
    for i in 4..=7 {
        let text = next_text(&mut back).await;
        assert!(
            text.ends_with(&format!(" m{i}")),
            "no gap, no duplicate: {text}"
        );
    }
}

#[tokio::test]
async fn presence_counts_every_instance_and_forgets_one_that_stops_stating() {
    let redis = RedisServer::start().await;
    let a = backplane(&redis).await;
    let b = backplane(&redis).await;
    a.set_presence("r", "a", 2, Duration::from_secs(30))
        .await
        .unwrap();
    b.set_presence("r", "b", 3, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(a.presence("r").await.unwrap(), 5);
    assert_eq!(b.presence("other").await.unwrap(), 0);
    // B says nothing more: its members stop counting when its statement
    // runs out, by Redis's clock.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.presence("r").await.unwrap(), 2);
    // A restates, then withdraws: nothing of the room's presence is left.
    a.set_presence("r", "a", 4, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(b.presence("r").await.unwrap(), 4);
    a.set_presence("r", "a", 0, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(b.presence("r").await.unwrap(), 0);
    assert_eq!(redis.cli(&["KEYS", "tandem:presence*"]), "");
}

#[tokio::test]
async fn counters_are_shared_and_survive_a_restart() {
    let mut redis = RedisServer::start().await;
    let a = backplane(&redis).await;
    let b = backplane(&redis).await;
    assert_eq!(a.next_number("users").await.unwrap(), 0);
    assert_eq!(b.next_number("users").await.unwrap(), 1);
    assert_eq!(a.next_number("bots").await.unwrap(), 0);
    redis.kill();
    redis.restart().await;
    let number = within("redis back", async {
        loop {
            if let Ok(number) = b.next_number("users").await {
                break number;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(number, 2, "no name given twice after a restart");
}

#[tokio::test]
async fn rooms_on_two_instances_count_one_room() {
    let redis = RedisServer::start().await;
    let on_a = Rooms::with_backplane(backplane(&redis).await);
    let on_b = Rooms::with_backplane(backplane(&redis).await);
    let (mut members_a, mut members_b) = (Members::new(), Members::new());
    let (_c1, out1) = members_a.connect().await;
    let (_c2, out2) = members_b.connect().await;
    let first = on_a.join("r", out1).await.unwrap();
    let _second = on_b.join("r", out2).await.unwrap();
    assert_eq!(on_b.members("r").await.unwrap(), 2);
    drop(first);
    within("A's member to leave the count", async {
        while on_b.members("r").await.unwrap() != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
