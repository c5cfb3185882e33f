//! `tandem::testing`: a server's routes tested with no socket and no real
//! time (Ktor's `testApplication`).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::{next_text, watchdog};
use futures::StreamExt;

use tandem::demo::ChatRoom;
use tandem::server::{Admission, Route, Server, UpgradeRequest};
use tandem::testing::TestServer;
use tandem::{CloseCode, Error, Frame, Session};

/// The README's test of the chat demo.
#[tokio::test]
async fn the_chat_demo_relays_between_members() -> Result<(), Error> {
    let room = ChatRoom::new();
    let server = TestServer::new(Server::new().web_socket("/chat", move |s| room.clone().join(s)));
    let mut alice = server.connect("/chat").await?;
    assert_eq!(
        next_text(&mut alice).await,
        "You are connected! There are 1 users here."
    );
    let mut bob = server.connect("/chat").await?;
    assert_eq!(
        next_text(&mut bob).await,
        "You are connected! There are 2 users here."
    );
    alice.send("hello").await?;
    assert_eq!(next_text(&mut alice).await, "[user0]: hello");
    assert_eq!(next_text(&mut bob).await, "[user0]: hello");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_silent_member_is_closed_after_the_rooms_timeout_with_no_real_wait() {
    // The talker's handler waits in the broadcast while its frames queue up:
    // its session must wait too, not spin (paused time would never advance).
    watchdog(Duration::from_secs(60));
    let room = ChatRoom::with_slow_member_timeout(Duration::from_secs(5));
    let server = TestServer::new(Server::new().web_socket("/chat", {
        let room = room.clone();
        move |s| room.clone().join(s)
    }));
    let mut talker = server.connect("/chat").await.unwrap();
    next_text(&mut talker).await;
    // A member that does not read: its queue fills, then the room closes it.
    let mut silent = server.connect("/chat").await.unwrap();
    let started = tokio::time::Instant::now();
    let big = "x".repeat(64 * 1024);
    let (mut incoming, outgoing) = talker.split();
    let reader = tokio::spawn(async move { while incoming.next().await.is_some() {} });
    // More than every buffer between the room and the silent member holds.
    let writer = tokio::spawn(async move {
        for _ in 0..64 {
            if outgoing.send(big.as_str()).await.is_err() {
                break;
            }
        }
    });
    while room.len() > 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.abort();
    // The room waited its 5 s of (virtual) time before giving up.
    assert!(started.elapsed() >= Duration::from_secs(5));
    // What was queued for it still arrives, then the room's 1008.
    while silent.receive().await.is_some() {}
    let reason = silent.close_reason().await;
    assert_eq!(reason.code, CloseCode::ViolatedPolicy, "{reason}");
    reader.abort();
}

#[tokio::test(start_paused = true)]
async fn a_quiet_session_is_kept_alive_by_pings_for_an_hour_of_virtual_time() {
    let server = TestServer::new(Server::new().web_socket("/echo", tandem::demo::echo));
    let mut session = server.connect("/echo").await.unwrap();
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    // Both ends ping every 30 s by default, and answer each other's pings.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    session.send("still here").await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, still here!");
}

#[tokio::test]
async fn route_hooks_and_typed_state_work_without_a_socket() {
    #[derive(Clone)]
    struct User(String);
    let server = TestServer::new(Server::new().web_socket(
        Route::new("/rooms/{id}").before_upgrade(|request: UpgradeRequest| async move {
            match request.query_param("user") {
                Some(user) => Admission::accept().state(User(user.into_owned())),
                None => Admission::refuse(
                    http::Response::builder()
                        .status(401)
                        .body("who are you?")
                        .unwrap(),
                ),
            }
        }),
        |session: Session| async move {
            let room = session
                .request()
                .and_then(|r| r.path_param("id"))
                .unwrap_or_default();
            let User(user) = session.state::<User>().cloned().unwrap();
            let _ = session.send(Frame::text(format!("{user} in {room}"))).await;
        },
    ));
    assert!(matches!(
        server.connect("/rooms/7").await,
        Err(Error::HandshakeRefused { status: 401, .. })
    ));
    let mut session = server
        .connect("/rooms/la%20plage?user=J%C3%BCrgen")
        .await
        .unwrap();
    assert_eq!(next_text(&mut session).await, "Jürgen in la plage");
}

#[tokio::test]
async fn a_test_client_refuses_the_options_a_real_one_refuses() {
    let server = TestServer::new(Server::new().web_socket("/echo", tandem::demo::echo));
    let unmasked =
        tandem::ClientBuilder::new(server.url("/echo")).options(tandem::WebSocketOptions {
            masking: Some(false),
            ..Default::default()
        });
    assert!(matches!(
        server.connect_with(unmasked).await,
        Err(Error::InvalidOptions(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn pings_keep_their_period_on_a_clock_that_was_advanced() {
    // Sessions count their timers on tokio's clock, the one tests pause
    // and advance, so a session opened an hour (of virtual time) into a
    // test pings on schedule, not at once.
    watchdog(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let (tx, mut pings) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::new(Server::new().web_socket_raw("/raw", move |mut s: Session| {
        let tx = tx.clone();
        async move {
            while let Some(frame) = s.receive().await {
                if frame.frame_type() == tandem::FrameType::Ping {
                    let _ = tx.send(tokio::time::Instant::now());
                }
            }
        }
    }));
    let options = tandem::WebSocketOptions {
        ping_period: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let opened = tokio::time::Instant::now();
    let _client = server
        .connect_with(tandem::ClientBuilder::new(server.url("/raw")).options(options))
        .await
        .unwrap();
    let first = pings.recv().await.unwrap();
    assert_eq!(first - opened, Duration::from_secs(30));
}
