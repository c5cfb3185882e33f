//! Typed messages (Ktor's `sendSerialized` / `receiveDeserialized`): JSON
//! both ways through a server's route, a message that does not decode seen
//! by the handler with its text while the session stays open, the end of
//! the session as an error, and a broadcast serialized once for every
//! member. None of it needs a socket: the routes run on a `TestServer`.
#![cfg(all(feature = "json", not(target_arch = "wasm32")))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{next_text, within};
use serde::{Deserialize, Serialize};
use tandem::hub::{Hub, SlowMemberPolicy};
use tandem::server::Server;
use tandem::testing::TestServer;
use tandem::{CloseCode, CloseReason, Error, Session};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Move {
    player: String,
    x: u8,
    y: u8,
}

/// Answers each `Move` with the same move one square to the right, and
/// anything else with what it could not decode.
async fn mirror_moves(mut session: Session) {
    loop {
        match session.receive_json::<Move>().await {
            Ok(mv) => {
                let moved = Move { x: mv.x + 1, ..mv };
                if session.send_json(&moved).await.is_err() {
                    return;
                }
            }
            Err(Error::Decode { frame, reason }) => {
                let text = frame.read_text().unwrap_or_default().to_owned();
                assert!(!reason.is_empty());
                if session.send(format!("not a move: {text}")).await.is_err() {
                    return;
                }
            }
            Err(Error::ConnectionClosed(reason)) => {
                let reason = reason.expect("the close reason comes with the end");
                let _ = session.outgoing().send(reason.to_string()).await;
                return;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

#[tokio::test]
async fn typed_messages_round_trip_and_a_bad_one_leaves_the_session_open() {
    let server = TestServer::new(Server::new().web_socket("/moves", mirror_moves));
    let mut session = common::connect(&server, "/moves").await;
    let mv = Move {
        player: "ünïcode".into(),
        x: 3,
        y: 4,
    };
    within("send", session.send_json(&mv)).await.unwrap();
    let back: Move = within("receive", session.receive_json()).await.unwrap();
    assert_eq!(back, Move { x: 4, ..mv.clone() });

    // Not a move: the handler sees the text, and the session goes on.
    within("send", session.send("{\"player\": 7}"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut session).await, "not a move: {\"player\": 7}");
    within("send", session.send_json(&mv)).await.unwrap();
    let frame = within("receive", session.receive()).await.unwrap();
    assert_eq!(frame.json::<Move>().unwrap().x, 4);
    // A frame that holds something else is a Decode error on this side too.
    assert!(matches!(
        tandem::Frame::text("[1]").json::<Move>(),
        Err(Error::Decode { .. })
    ));

    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    // After the close, receive_json is the end of the session, with its reason.
    match within("the end", session.receive_json::<Move>()).await {
        Err(Error::ConnectionClosed(Some(reason))) => assert_eq!(reason.code, CloseCode::Normal),
        other => panic!("expected the end of the session, got {other:?}"),
    }
}

/// A value that counts how often it is serialized.
struct Counted(Arc<AtomicUsize>);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_str("news")
    }
}

#[tokio::test]
async fn a_json_broadcast_is_serialized_once_for_every_member() {
    let hub = Hub::new(SlowMemberPolicy::default());
    let members = hub.clone();
    let server = TestServer::new(Server::new().web_socket("/news", move |session: Session| {
        let hub = members.clone();
        async move {
            let _membership = hub.join(session.outgoing());
            let _ = session.send("joined").await;
            session.close_reason().await;
        }
    }));
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut session = common::connect(&server, "/news").await;
        assert_eq!(next_text(&mut session).await, "joined");
        sessions.push(session);
    }
    let serialized = Arc::new(AtomicUsize::new(0));
    let report = hub
        .broadcast_json(&Counted(serialized.clone()))
        .await
        .unwrap();
    assert_eq!(report.delivered, 3);
    assert_eq!(serialized.load(Ordering::SeqCst), 1);
    for session in &mut sessions {
        let news: String = within("news", session.receive_json()).await.unwrap();
        assert_eq!(news, "news");
    }
}
