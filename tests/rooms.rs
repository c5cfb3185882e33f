//! `tandem::rooms` on the in-process backplane: rooms apart, one order per
//! room, members that come back with the id of the last message they saw.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::members::Members;
use common::next_text;
use tandem::rooms::{LocalBackplane, Rooms};
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
        assert_eq!(text, format!("{i} m{i}"), "no gap, no duplicate");
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
    let mut last_seen: Option<u64> = None;
    for _ in 0..10 {
        let (mut client, outgoing) = members.connect().await;
        let membership = match &last_seen {
            Some(id) => {
                rooms
                    .join_after("r", outgoing, id.to_string().parse().unwrap())
                    .await
            }
            None => rooms.join("r", outgoing).await,
        }
        .unwrap();
        assert!(membership.recovered());
        for _ in 0..5 {
            let id: u64 = next_text(&mut client).await.parse().unwrap();
            if let Some(previous) = last_seen {
                assert_eq!(id, previous + 1, "after {previous}");
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
    for i in 1..=5 {
        rooms.publish("r", format!("m{i}")).await.unwrap();
    }
    let (mut back, back_out) = members.connect().await;
    let membership = rooms
        .join_after("r", back_out, "1".parse().unwrap())
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
