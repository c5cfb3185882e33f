//! The chat demo (`ChatRoom`) as its users meet it: names in connect order,
//! the welcome with the member count, every message to every member in each
//! sender's order, and members that vanish without breaking the room.
//!
//! The members that vanish are hand-written clients on a real socket: they
//! go without a Close, in the middle of a frame or with unread bytes, as a
//! killed tab does, which tandem's client never does. The other tests run
//! the room on a `TestServer`; the member that stops reading does so on a
//! paused clock, so the room's 5 s slow-member timeout takes no real time.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{connect, drain, next_text, watchdog, within, Endpoint, RawClient};
use futures::StreamExt;
use tandem::demo::ChatRoom;
use tandem::server::{RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{CloseCode, CloseReason, Session};

/// `room` at `/chat`, and in JSON at `/chat-json`.
fn chat_routes(room: &ChatRoom) -> Server {
    let (text, json) = (room.clone(), room.clone());
    Server::new()
        .web_socket("/chat", move |session| text.clone().join(session))
        .web_socket("/chat-json", move |session| json.clone().join_json(session))
}

/// The same on a free port of 127.0.0.1, for the hand-written members.
async fn chat_server(room: &ChatRoom) -> RunningServer {
    chat_routes(room)
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// Connects `n` members one after the other, each once the previous one has
/// been welcomed (the welcome is sent after the name is taken, so connect
/// order is naming order).
async fn join_members(server: &impl Endpoint, n: usize) -> Vec<Session> {
    let mut members = Vec::new();
    for k in 0..n {
        let mut session = connect(server, "/chat").await;
        assert_eq!(
            next_text(&mut session).await,
            format!("You are connected! There are {} users here.", k + 1)
        );
        members.push(session);
    }
    members
}

/// Waits until the room has `n` members (a member leaves when its server
/// task notices the connection is gone, which the client cannot observe).
async fn wait_for_members(room: &ChatRoom, n: usize) {
    within(&format!("the room to have {n} members"), async {
        while room.len() != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn members_are_named_in_connect_order_and_everyone_gets_every_message() {
    let room = ChatRoom::new();
    let server = TestServer::new(chat_routes(&room));
    let mut members = join_members(&server, 3).await;
    assert_eq!(room.members(), ["user0", "user1", "user2"]);

    // Each member speaks once, in turn; everyone hears it, named by order.
    for k in 0..3 {
        within("send", members[k].send(format!("hello from {k}")))
            .await
            .unwrap();
        for (j, member) in members.iter_mut().enumerate() {
            assert_eq!(
                next_text(member).await,
                format!("[user{k}]: hello from {k}"),
                "as heard by member {j}"
            );
        }
    }
    for (k, mut member) in members.into_iter().enumerate() {
        within("close", member.close(CloseReason::normal()))
            .await
            .unwrap();
        assert!(drain(&mut member).await.is_empty());
        assert_eq!(member.close_reason().await.code, CloseCode::Normal);
        // Those who left are no longer listed.
        wait_for_members(&room, 2 - k).await;
        let left: Vec<String> = (k + 1..3).map(|j| format!("user{j}")).collect();
        assert_eq!(room.members(), left);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_are_relayed_completely_and_in_order() {
    const MEMBERS: usize = 3;
    const EACH: usize = 50;
    let room = ChatRoom::new();
    let server = TestServer::new(chat_routes(&room));
    let members = join_members(&server, MEMBERS).await;

    // Every member sends and reads at the same time.
    let mut tasks = Vec::new();
    for (k, session) in members.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (mut incoming, outgoing) = session.split();
            let reader = async {
                let mut heard: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for _ in 0..MEMBERS * EACH {
                    let frame = incoming.next().await.expect("the stream ended early");
                    let text = frame.read_text().expect("a text frame").to_owned();
                    let (sender, body) = text
                        .strip_prefix('[')
                        .and_then(|t| t.split_once("]: "))
                        .unwrap_or_else(|| panic!("not a chat line: {text:?}"));
                    heard
                        .entry(sender.to_owned())
                        .or_default()
                        .push(body.to_owned());
                }
                heard
            };
            let writer = async {
                for i in 0..EACH {
                    outgoing
                        .send(format!("message {i} of user{k}"))
                        .await
                        .unwrap();
                }
            };
            let (heard, ()) = futures::join!(reader, writer);
            (heard, incoming, outgoing)
        }));
    }

    for (j, task) in tasks.into_iter().enumerate() {
        let (heard, incoming, outgoing) = within("a member's burst", task)
            .await
            .expect("the member task panicked");
        assert_eq!(heard.len(), MEMBERS, "member {j} heard {:?}", heard.keys());
        for k in 0..MEMBERS {
            let expected: Vec<String> = (0..EACH)
                .map(|i| format!("message {i} of user{k}"))
                .collect();
            assert_eq!(
                heard.get(&format!("user{k}")),
                Some(&expected),
                "what member {j} heard from user{k}"
            );
        }
        drop(incoming);
        within("close", outgoing.close(CloseReason::normal()))
            .await
            .unwrap();
        assert_eq!(
            within("close reason", outgoing.close_reason()).await.code,
            CloseCode::Normal
        );
    }
    wait_for_members(&room, 0).await;
}

#[tokio::test]
async fn a_member_that_vanishes_does_not_break_the_room() {
    let room = ChatRoom::new();
    let server = chat_server(&room).await;
    let mut members = join_members(&server, 2).await;

    // user2 is a hand-written client that vanishes: once right after its
    // welcome, without a Close.
    let mut vanishing = RawClient::connect(server.local_addr(), "/chat").await;
    let welcome = vanishing.read_frame().await.expect("a welcome");
    assert_eq!(welcome.text(), "You are connected! There are 3 users here.");
    within("send", members[0].send("before")).await.unwrap();
    for member in members.iter_mut() {
        assert_eq!(next_text(member).await, "[user0]: before");
    }
    assert_eq!(
        vanishing.read_frame().await.expect("a message").text(),
        "[user0]: before"
    );
    drop(vanishing);

    // The others go on talking, before and after the room notices.
    within("send", members[1].send("still here?"))
        .await
        .unwrap();
    for member in members.iter_mut() {
        assert_eq!(next_text(member).await, "[user1]: still here?");
    }
    wait_for_members(&room, 2).await;

    // user3 vanishes in the middle of a frame.
    let mut cut = RawClient::connect(server.local_addr(), "/chat").await;
    assert_eq!(
        cut.read_frame().await.expect("a welcome").text(),
        "You are connected! There are 3 users here."
    );
    let frame = RawClient::encode(0x1, true, b"this message never ends");
    within("a partial write", async {
        use tokio::io::AsyncWriteExt;
        cut.stream.write_all(&frame[..8]).await.unwrap();
    })
    .await;
    drop(cut);
    wait_for_members(&room, 2).await;

    // user4 drops its tandem session without a word.
    let mut dropped = connect(&server, "/chat").await;
    assert_eq!(
        next_text(&mut dropped).await,
        "You are connected! There are 3 users here."
    );
    drop(dropped);
    wait_for_members(&room, 2).await;

    within("send", members[0].send("after")).await.unwrap();
    for member in members.iter_mut() {
        assert_eq!(next_text(member).await, "[user0]: after");
    }

    // A newcomer is counted among those still here and named after everyone before.
    let mut newcomer = connect(&server, "/chat").await;
    assert_eq!(
        next_text(&mut newcomer).await,
        "You are connected! There are 3 users here."
    );
    within("send", newcomer.send("hi all")).await.unwrap();
    for member in members.iter_mut().chain(std::iter::once(&mut newcomer)) {
        assert_eq!(next_text(member).await, "[user5]: hi all");
    }

    for member in members.iter_mut().chain(std::iter::once(&mut newcomer)) {
        within("close", member.close(CloseReason::normal()))
            .await
            .unwrap();
        drain(member).await;
    }
    wait_for_members(&room, 0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_member_that_vanishes_after_a_burst_does_not_stall_the_others() {
    let room = ChatRoom::new();
    let server = chat_server(&room).await;
    let mut members = join_members(&server, 2).await;
    let mut leaver = RawClient::connect(server.local_addr(), "/chat").await;
    assert_eq!(
        leaver.read_frame().await.expect("a welcome").text(),
        "You are connected! There are 3 users here."
    );

    // user2 sends a burst and vanishes without a Close. It reads its own
    // burst back first: closing a socket with unread data sends a TCP reset,
    // and a reset may make the server's kernel discard bytes it still holds.
    for i in 0..20 {
        leaver
            .send(0x1, true, format!("burst {i}").as_bytes())
            .await;
    }
    for i in 0..20 {
        let frame = leaver.read_frame().await.expect("its own burst");
        assert_eq!(frame.text(), format!("[user2]: burst {i}"));
    }
    drop(leaver);

    // The others hear the whole burst, in order, and can still talk.
    for member in members.iter_mut() {
        for i in 0..20 {
            assert_eq!(next_text(member).await, format!("[user2]: burst {i}"));
        }
    }
    wait_for_members(&room, 2).await;
    within("send", members[0].send("over")).await.unwrap();
    for member in members.iter_mut() {
        assert_eq!(next_text(member).await, "[user0]: over");
    }
    for member in members.iter_mut() {
        within("close", member.close(CloseReason::normal()))
            .await
            .unwrap();
        drain(member).await;
    }
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_member_that_stops_reading_does_not_stall_the_room() {
    // The room waits for user2 while user0's handler is in its broadcast:
    // a session that spun meanwhile would keep paused time from moving.
    watchdog(Duration::from_secs(60));
    const MESSAGES: usize = 200;
    let room = ChatRoom::new();
    let server = TestServer::new(chat_routes(&room));
    let members = join_members(&server, 2).await;
    // user2 is connected but never reads past its welcome (a frozen tab):
    // once its session's queue is full, it takes no more from the stream.
    let mut stuck = connect(&server, "/chat").await;
    assert_eq!(
        next_text(&mut stuck).await,
        "You are connected! There are 3 users here."
    );

    // user0 sends enough to fill every buffer between the server and user2.
    let padding = "x".repeat(64 * 1024);
    let mut members = members.into_iter();
    let (mut incoming0, outgoing0) = members.next().unwrap().split();
    let mut member1 = members.next().unwrap();
    let writer = tokio::spawn(async move {
        for i in 0..MESSAGES {
            outgoing0.send(format!("{i} {padding}")).await.unwrap();
        }
        outgoing0
    });
    let heard0 = async {
        for i in 0..MESSAGES {
            let frame = incoming0.next().await.expect("user0's stream ended");
            let text = frame.read_text().unwrap();
            assert!(text.starts_with(&format!("[user0]: {i} ")));
        }
    };
    let heard1 = async {
        for i in 0..MESSAGES {
            let text = member1.receive().await.expect("user1's stream ended");
            assert!(text
                .read_text()
                .unwrap()
                .starts_with(&format!("[user0]: {i} ")));
        }
    };
    within("user0 and user1 to hear every message", async {
        futures::join!(heard0, heard1)
    })
    .await;
    let outgoing0 = within("user0's writer", writer).await.unwrap();
    drop(stuck);
    within("close", outgoing0.close(CloseReason::normal()))
        .await
        .unwrap();
    within("close", member1.close(CloseReason::normal()))
        .await
        .unwrap();
}

/// The next message of a JSON member, parsed.
async fn next_json(session: &mut Session) -> serde_json::Value {
    serde_json::from_str(&next_text(session).await).expect("JSON")
}

#[tokio::test]
async fn json_members_get_ids_and_resume_under_their_name_with_no_gap() {
    let room = ChatRoom::new();
    let server = TestServer::new(chat_routes(&room));
    let mut plain = join_members(&server, 1).await.remove(0);
    let mut json = connect(&server, "/chat-json").await;
    let welcome = next_json(&mut json).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["name"], "user1");
    assert_eq!(welcome["users"], 2, "both protocols, one room");

    // One room, one order, whichever protocol a member speaks.
    within("send", plain.send("hi")).await.unwrap();
    within("send", json.send_json(&serde_json::json!({"text": "yo"})))
        .await
        .unwrap();
    assert_eq!(next_text(&mut plain).await, "[user0]: hi");
    assert_eq!(next_text(&mut plain).await, "[user1]: yo");
    let hi = next_json(&mut json).await;
    assert_eq!(
        (&hi["type"], &hi["from"], &hi["text"]),
        (&"message".into(), &"user0".into(), &"hi".into())
    );
    let yo = next_json(&mut json).await;
    assert_eq!(yo["from"], "user1");
    let last = yo["id"].as_str().expect("an id").to_owned();
    assert_ne!(hi["id"], yo["id"]);

    // Away while two messages are said; back with the last id it saw.
    drop(json);
    within("send", plain.send("while you were away"))
        .await
        .unwrap();
    within("send", plain.send("and more")).await.unwrap();
    let mut back = connect(&server, &format!("/chat-json?last={last}&name=user1")).await;
    let missed = [next_json(&mut back).await, next_json(&mut back).await];
    assert_eq!(missed[0]["text"], "while you were away");
    assert_eq!(missed[1]["text"], "and more");
    let welcome = next_json(&mut back).await;
    assert_eq!(welcome["type"], "welcome", "after what it missed");
    assert_eq!(welcome["name"], "user1", "its name kept");
    assert_eq!(welcome["recovered"], true);
    within("send", plain.send("live")).await.unwrap();
    assert_eq!(next_json(&mut back).await["text"], "live", "no duplicate");
    assert_eq!(room.members(), ["user0", "user1"]);
}

#[tokio::test]
async fn a_json_member_is_told_what_it_sent_wrong() {
    let room = ChatRoom::new();
    let server = TestServer::new(chat_routes(&room));
    let mut json = connect(&server, "/chat-json").await;
    next_json(&mut json).await;
    within("send", json.send("not json")).await.unwrap();
    let error = next_json(&mut json).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["text"], "expected {\"text\": \"…\"}");
}
