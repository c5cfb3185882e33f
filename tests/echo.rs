//! The echo demo as a user meets it: the greeting, the replies, `bye` in any
//! case, binary and large messages through an echo handler, and the
//! `client` example run as a real process.
//!
//! Most tests run the routes on a `TestServer`. A few keep a real socket
//! on 127.0.0.1, so that the ordinary client/server path through the
//! accept loop and TCP, which `TestServer` does not take, stays covered
//! here: the demo's plain conversation, messages of 1 MiB (read and
//! written in many pieces), and a thousand messages with both directions
//! busy on a multi-threaded runtime. The `client` example runs as a
//! separate process, which needs an address to connect to.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::process::Stdio;

use common::{
    connect, connect_with, drain, echo_demo, echo_demo_server, next_frame, next_text, within,
};
use tandem::server::{RunningServer, Server};
use tandem::testing::TestServer;
use tandem::{CloseCode, CloseReason, Frame, FrameType, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A handler that sends every frame back as it came.
async fn mirror(mut session: Session) {
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
}

/// `mirror` at `/mirror`.
fn mirror_routes() -> Server {
    Server::new().web_socket("/mirror", mirror)
}

async fn mirror_server() -> RunningServer {
    mirror_routes()
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

#[tokio::test]
async fn echo_greets_and_answers_each_text() {
    let server = echo_demo_server().await;
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    for name in ["Ktor", "tandem", "Zoë 🦀", ""] {
        within("send", session.send(name)).await.unwrap();
        assert_eq!(next_text(&mut session).await, format!("Hi, {name}!"));
    }
    // Binary frames are not texts: the demo ignores them and keeps going.
    within("send", session.send(vec![1u8, 2, 3])).await.unwrap();
    within("send", session.send("after binary")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, after binary!");
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    assert!(drain(&mut session).await.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn bye_in_any_case_closes_with_1000_client_said_bye() {
    let server = TestServer::new(echo_demo());
    for bye in ["bye", "BYE", "Bye"] {
        let mut session = connect(&server, "/echo").await;
        assert_eq!(next_text(&mut session).await, "Please enter your name");
        within("send", session.send("T")).await.unwrap();
        assert_eq!(next_text(&mut session).await, "Hi, T!");
        within("send", session.send(bye)).await.unwrap();
        let rest = drain(&mut session).await;
        assert!(rest.is_empty(), "{bye}: frames after bye: {rest:?}");
        let reason = within("close reason", session.close_reason()).await;
        assert_eq!(
            reason,
            CloseReason::new(CloseCode::Normal, "Client said BYE"),
            "after {bye:?}"
        );
        assert!(
            matches!(
                session.send("too late").await,
                Err(tandem::Error::ConnectionClosed(_))
            ),
            "sending after the close fails"
        );
    }
}

#[tokio::test]
async fn binary_frames_round_trip_through_an_echo_handler() {
    let server = TestServer::new(mirror_routes());
    let mut session = connect(&server, "/mirror").await;
    let payloads: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        (0..=255).collect(),
        vec![0xff; 125],
        vec![0xfe; 126],
        vec![0xab; 65_535],
        vec![0xcd; 65_536],
    ];
    for payload in &payloads {
        within("send", session.send(payload.clone())).await.unwrap();
        let frame = next_frame(&mut session).await;
        assert_eq!(frame.frame_type(), FrameType::Binary);
        assert!(frame.is_fin());
        assert_eq!(frame.read_bytes(), &payload[..], "{} bytes", payload.len());
    }
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
    assert_eq!(session.close_reason().await.code, CloseCode::Normal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_mebibyte_message_round_trips() {
    let server = mirror_server().await;
    let mut session = connect(&server, "/mirror").await;

    let binary: Vec<u8> = (0..1usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    within("send 1 MiB binary", session.send(binary.clone()))
        .await
        .unwrap();
    let frame = next_frame(&mut session).await;
    assert_eq!(frame.frame_type(), FrameType::Binary);
    assert_eq!(frame.read_bytes().len(), binary.len());
    assert!(frame.read_bytes() == &binary[..], "binary payload differs");

    let text: String = "0123456789abcdef€".repeat((1 << 20) / 19);
    within("send ~1 MiB text", session.send(text.clone()))
        .await
        .unwrap();
    assert!(
        next_text(&mut session).await == text,
        "text payload differs"
    );

    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    drain(&mut session).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_keep_their_order() {
    let server = mirror_server().await;
    let session = connect(&server, "/mirror").await;
    let (mut incoming, outgoing) = session.split();
    let sender = tokio::spawn(async move {
        for i in 0..1000 {
            outgoing.send(format!("message {i}")).await.unwrap();
        }
        outgoing
    });
    for i in 0..1000 {
        let frame = within("an echoed message", futures::StreamExt::next(&mut incoming))
            .await
            .expect("stream ended early");
        assert_eq!(frame.read_text(), Some(format!("message {i}").as_str()));
    }
    let outgoing = within("the sender", sender).await.unwrap();
    within("close", outgoing.close(CloseReason::normal()))
        .await
        .unwrap();
    assert_eq!(
        within("close reason", outgoing.close_reason()).await.code,
        CloseCode::Normal
    );
    server.shutdown().await;
}

/// A handler that sends faster than its peer reads keeps its frames in the
/// order it sent them: while the connection's output is below its
/// high-water mark they go straight to the engine, past it they queue on
/// the session's link, and the two must not overtake each other.
#[tokio::test]
async fn a_handler_that_sends_past_the_high_water_mark_keeps_its_order() {
    const MESSAGES: u32 = 3_000;
    let server = TestServer::new(Server::new().web_socket(
        "/flood",
        |session: Session| async move {
            for i in 0..MESSAGES {
                let mut payload = vec![0u8; 1024];
                payload[..4].copy_from_slice(&i.to_be_bytes());
                if session.send(payload).await.is_err() {
                    return;
                }
            }
            let _ = session
                .close(CloseReason::new(CloseCode::Normal, "done"))
                .await;
        },
    ));
    let mut session = within("connect", server.connect("/flood")).await.unwrap();
    // Let the server's output back up before reading.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for i in 0..MESSAGES {
        let frame = next_frame(&mut session).await;
        let index = u32::from_be_bytes(frame.payload()[..4].try_into().unwrap());
        assert_eq!(index, i, "message {i} arrived as {index}");
    }
    let reason = within("the close", session.close_reason()).await;
    assert_eq!(
        (reason.code, reason.message.as_str()),
        (CloseCode::Normal, "done")
    );
}

// ----- the `client` example as a process ---------------------------------------
//
// `CARGO_BIN_EXE_*` exists only for `[[bin]]` targets, not examples. A plain
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the example client against `url`, feeding it `input`; when
/// `close_stdin` is false standard input stays open (as at a terminal)
/// until the process exits.
async fn run_client(url: &str, input: &str, close_stdin: bool) -> Finished {
    let mut child = tokio::process::Command::new(common::example("client"))
        .arg(url)
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the client example");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let held_stdin = if close_stdin {
        drop(stdin);
        None
    } else {
        Some(stdin)
    };
    let (status, out, err) = within("the client example to exit", async {
        let mut out = String::new();
        let mut err = String::new();
        let (status, _, _) = tokio::join!(
            child.wait(),
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        (status.unwrap(), out, err)
    })
    .await;
    drop(held_stdin);
    Finished {
        code: status.code(),
        stdout: out,
        stderr: err,
    }
}

const EXPECTED_SESSION: &str = "Please enter your name\nHi, Ktor!\nclosed: 1000 Client said BYE\n";

#[tokio::test]
async fn client_example_talks_to_the_echo_demo_with_piped_input() {
    let server = echo_demo_server().await;
    let url = common::ws_url(&server, "/echo");
    let run = run_client(&url, "Ktor\nbye\n", true).await;
    assert_eq!(run.stdout, EXPECTED_SESSION, "stderr: {}", run.stderr);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    server.shutdown().await;
}

#[tokio::test]
async fn client_example_exits_when_the_server_closes_while_stdin_is_open() {
    // At a terminal standard input stays open after `bye`: the client must
    // still exit once the server has closed the session.
    let server = echo_demo_server().await;
    let url = common::ws_url(&server, "/echo");
    let run = run_client(&url, "Ktor\nbye\n", false).await;
    assert_eq!(run.stdout, EXPECTED_SESSION, "stderr: {}", run.stderr);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    server.shutdown().await;
}

#[tokio::test]
async fn client_example_closes_with_1000_when_input_ends() {
    let server = echo_demo_server().await;
    let url = common::ws_url(&server, "/echo");
    let run = run_client(&url, "Ktor\n", true).await;
    let lines: Vec<&str> = run.stdout.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        ["Please enter your name", "Hi, Ktor!", "closed: 1000"],
        "stderr: {}",
        run.stderr
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    server.shutdown().await;
}

#[tokio::test]
async fn client_example_fails_with_one_line_when_it_cannot_connect() {
    // A port that was just free: bind it, note it, let it go.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{port}/echo");
    let run = run_client(&url, "", true).await;
    assert_ne!(run.code, Some(0), "exit status");
    assert!(run.code.is_some(), "the client exits rather than crashing");
    assert_eq!(run.stdout, "", "nothing on stdout");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", run.stderr);
    assert!(
        lines[0].contains(&url) && lines[0].starts_with("error:"),
        "{:?}",
        lines[0]
    );
    assert!(!run.stderr.contains("panicked"), "{:?}", run.stderr);
}

#[tokio::test]
async fn client_example_without_a_url_prints_usage() {
    let mut child = tokio::process::Command::new(common::example("client"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the client example");
    let output = within("the client example to exit", async {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        (child.wait().await.unwrap(), err)
    })
    .await;
    assert_eq!(output.0.code(), Some(2));
    assert!(output.1.starts_with("usage: client"), "{:?}", output.1);
}

#[tokio::test]
async fn a_close_frame_sent_with_send_closes_like_close() {
    let server = TestServer::new(echo_demo());
    let mut session = connect(&server, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within(
        "send a close frame",
        session.send(Frame::close(CloseReason::new(CloseCode::GoingAway, "off"))),
    )
    .await
    .unwrap();
    assert!(drain(&mut session).await.is_empty());
    // The server answers with our code; the reason is the peer's close.
    assert_eq!(
        within("close reason", session.close_reason()).await.code,
        CloseCode::GoingAway
    );
}

#[tokio::test]
async fn run_line_client_prints_replies_and_returns_the_servers_close() {
    use futures::StreamExt;
    let server = TestServer::new(echo_demo());
    let session = connect(&server, "/echo").await;
    let lines = futures::stream::iter(["Ktor".to_string(), "bye".to_string()])
        .chain(futures::stream::pending());
    let mut printed = Vec::new();
    let reason = within(
        "run_line_client",
        tandem::demo::run_line_client(session, lines, |text| printed.push(text.to_owned())),
    )
    .await;
    assert_eq!(printed, ["Please enter your name", "Hi, Ktor!"]);
    assert_eq!(
        reason,
        CloseReason::new(CloseCode::Normal, "Client said BYE")
    );
}

#[tokio::test]
async fn replies_to_messages_right_before_a_close_still_arrive() {
    let server = TestServer::new(echo_demo());
    let mut session = connect(&server, "/echo").await;
    // Two messages and the Close, back to back: the server parses all three
    // before its handler has taken the first.
    within("send", session.send("Ktor")).await.unwrap();
    within("send", session.send("Zed")).await.unwrap();
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    let texts: Vec<String> = drain(&mut session)
        .await
        .iter()
        .filter_map(|f| f.read_text().map(str::to_owned))
        .collect();
    assert_eq!(texts, ["Please enter your name", "Hi, Ktor!", "Hi, Zed!"]);
    assert_eq!(session.close_reason().await.code, CloseCode::Normal);
}

#[tokio::test]
async fn the_largest_option_values_saturate_instead_of_panicking() {
    let options = tandem::WebSocketOptions {
        ping_period: Some(std::time::Duration::MAX),
        timeout: std::time::Duration::MAX,
        close_timeout: std::time::Duration::MAX,
        max_frame_size: Some(usize::MAX),
        max_message_size: Some(usize::MAX),
        masking: None,
        outgoing_queue: usize::MAX,
        outgoing_queue_bytes: usize::MAX,
        incoming_queue: usize::MAX,
        incoming_queue_bytes: usize::MAX,
    };
    let server = TestServer::new(mirror_routes().options(options.clone()));
    let mut session = connect_with(
        &server,
        tandem::ClientBuilder::new(server.url("/mirror")).options(options),
    )
    .await
    .expect("connect");
    for size in [5, 70_000] {
        let payload = vec![b'x'; size];
        within("send", session.send(payload.clone())).await.unwrap();
        assert_eq!(next_frame(&mut session).await.read_bytes(), &payload[..]);
    }
    within("close", session.close(CloseReason::normal()))
        .await
        .unwrap();
    assert_eq!(
        within("the close reason", session.close_reason())
            .await
            .code,
        CloseCode::Normal
    );
}
