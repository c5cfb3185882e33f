//! The session as tokio-tungstenite users write it: `Outgoing` as a
//! `Sink` (`forward`, `SinkExt::send`), and `receive` inside `select!`
//! losing no frame. The routes run on a `TestServer`: no socket needed.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::{next_text, within};
use futures::{SinkExt, StreamExt};
use tandem::server::Server;
use tandem::testing::TestServer;
use tandem::{CloseCode, Frame, Session};

#[tokio::test]
async fn an_echo_is_incoming_forwarded_into_outgoing() {
    let server = TestServer::new(Server::new().web_socket(
        "/forward",
        |session: Session| async move {
            let (incoming, outgoing) = session.split();
            incoming.map(Ok).forward(outgoing).await
        },
    ));
    let session = common::connect(&server, "/forward").await;
    let (mut incoming, mut outgoing) = session.split();
    for i in 0..100 {
        within("send", outgoing.send(Frame::text(format!("m{i}"))))
            .await
            .unwrap();
    }
    within("flush", outgoing.flush()).await.unwrap();
    for i in 0..100 {
        let frame = within("echo", incoming.next()).await.unwrap();
        assert_eq!(frame.read_text(), Some(format!("m{i}").as_str()));
    }
    // Closing the sink (SinkExt::close: `Outgoing::close` takes a reason)
    // starts the close handshake; forward ends when the
    // stream does, and the handler's Ok(()) closes with 1000.
    within("close", SinkExt::close(&mut outgoing))
        .await
        .unwrap();
    assert!(within("the end", incoming.next()).await.is_none());
    let reason = within("reason", outgoing.close_reason()).await;
    assert_eq!(reason.code, CloseCode::Normal);
    // A closed sink refuses more.
    assert!(outgoing.send(Frame::text("late")).await.is_err());
}

#[tokio::test]
async fn receive_inside_select_loses_no_frame() {
    const COUNT: usize = 300;
    let server = TestServer::new(Server::new().web_socket(
        "/burst",
        |session: Session| async move {
            for i in 0..COUNT {
                if session.send(format!("{i}")).await.is_err() {
                    return;
                }
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            let _ = session.send("done").await;
        },
    ));
    let mut session = common::connect(&server, "/burst").await;
    let mut received = Vec::new();
    let mut cancelled = 0;
    within("every frame", async {
        while received.len() < COUNT {
            tokio::select! {
                frame = session.receive() => {
                    received.push(frame.expect("a frame").read_text().unwrap().parse::<usize>().unwrap());
                }
                // Often wins: each time, a receive future is dropped.
                _ = tokio::time::sleep(Duration::from_micros(50)) => cancelled += 1,
            }
        }
    })
    .await;
    assert_eq!(received, (0..COUNT).collect::<Vec<_>>());
    assert!(cancelled > 0, "no receive was ever cancelled");
    assert_eq!(next_text(&mut session).await, "done");
}
