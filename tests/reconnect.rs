//! Clients that reconnect (`tandem::reconnect`): in-memory servers
//! (`TestServer`) whose sessions end as a script says, on a paused clock,
//! so that the waits between attempts are measured exactly and cost no
//! real time; and one real socket, for a connection that is refused.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::reconnect::{Ended, Reconnect, Reconnecting, Retry};
use tandem::server::{Admission, Route, Server};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, CloseCode, CloseReason, Error, Session};
use tokio::time::Instant;

/// Ends the test process if it still runs after `limit` of real time: a
/// task that spins keeps paused time from advancing, so no timeout of
/// tokio's would fire.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("still running after {limit:?} of real time: a task spins");
        std::process::exit(101);
    });
}

/// How the server ends one session.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Closes at once with this code.
    Close(u16),
    /// Drops the connection without a Close (the client sees 1006).
    Terminate,
    /// Serves nothing for this long, then closes with this code.
    LiveThenClose(Duration, u16),
}

/// A server at `/s` whose sessions end as `steps` say, in order, and then
/// run the echo demo; with the number of sessions it served and the query
/// of each.
struct Scripted {
    server: TestServer,
    served: Arc<AtomicUsize>,
    queries: Arc<Mutex<Vec<String>>>,
}

fn scripted(steps: &[Step]) -> Scripted {
    let steps = steps.to_vec();
    let served = Arc::new(AtomicUsize::new(0));
    let queries = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (served.clone(), queries.clone());
    let server = TestServer::new(Server::new().web_socket("/s", move |session: Session| {
        let step = steps.get(count.fetch_add(1, Ordering::SeqCst)).copied();
        let query = session.request().and_then(|r| r.query()).unwrap_or("");
        seen.lock().unwrap().push(query.to_owned());
        async move {
            let code = match step {
                None => return tandem::demo::echo(session).await,
                Some(Step::Terminate) => return session.terminate(),
                Some(Step::Close(code)) => code,
                Some(Step::LiveThenClose(life, code)) => {
                    tokio::time::sleep(life).await;
                    code
                }
            };
            let _ = session.close(CloseReason::new(code, "scripted")).await;
            session.close_reason().await;
        }
    }));
    Scripted {
        server,
        served,
        queries,
    }
}

/// A server at `path` whose `before_upgrade` hook answers the upgrade
/// requests, counted from 0, with `admit`, and then runs the echo demo;
/// with the number of requests.
fn hooked(
    path: &str,
    admit: impl Fn(usize) -> Admission + Send + Sync + 'static,
) -> (TestServer, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let route = Route::new(path).before_upgrade(move |_| {
        let admission = admit(count.fetch_add(1, Ordering::SeqCst));
        async move { admission }
    });
    let server = TestServer::new(Server::new().web_socket(route, tandem::demo::echo));
    (server, asked)
}

/// A refusal with `status`, and `Retry-After` if given.
fn refusal(status: u16, retry_after: Option<&str>) -> Admission {
    let mut response = http::Response::builder().status(status);
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds);
    }
    Admission::refuse(response.body("no").unwrap())
}

/// Sessions on `server`'s `path`, connected in memory.
fn in_memory(server: &TestServer, path: &str, policy: Reconnect) -> Reconnecting {
    let (server, path) = (server.clone(), path.to_owned());
    Reconnecting::new(policy, move |_previous| {
        let (server, path) = (server.clone(), path.clone());
        async move { server.connect(&path).await }
    })
}

/// Runs the loop a user writes: reads each session to its end (saying
/// "bye" to the echo demo, which then closes with 1000). Returns, for
/// each session, the virtual time from the end of the one before (or the
/// start) to its arrival.
async fn run(sessions: &mut Reconnecting) -> Vec<Duration> {
    let mut waits = Vec::new();
    let mut ended_at = Instant::now();
    while let Some(mut session) = sessions.next().await {
        waits.push(ended_at.elapsed());
        while let Some(frame) = session.receive().await {
            if frame.read_text() == Some("Please enter your name") {
                let _ = session.send("bye").await;
            }
        }
        session.close_reason().await;
        ended_at = Instant::now();
    }
    waits
}

fn millis(waits: &[Duration]) -> Vec<u128> {
    waits.iter().map(Duration::as_millis).collect()
}

/// The close code of the session that ended the stream.
fn final_close(sessions: &Reconnecting) -> Option<CloseCode> {
    match sessions.ended() {
        Some(Ended::Final(error)) => error.close_code(),
        other => panic!("expected a final end, got {other:?}"),
    }
}

fn fast() -> Reconnect {
    Reconnect::new()
        .initial_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(10))
}

#[tokio::test(start_paused = true)]
async fn restarts_are_retried_after_a_growing_jittered_delay() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[Step::Close(1012), Step::Close(1012), Step::Close(1012)]);
    let mut sessions = in_memory(&s.server, "/s", fast());
    let waits = run(&mut sessions).await;
    // Three restarts, then the echo demo: four sessions.
    assert_eq!(waits.len(), 4, "{waits:?}");
    assert_eq!(s.served.load(Ordering::SeqCst), 4);
    assert_eq!(waits[0], Duration::ZERO);
    // 100, 200, 400 ms, each cut by up to half (the default jitter).
    for (wait, full) in waits[1..].iter().zip([100, 200, 400]) {
        let full = Duration::from_millis(full);
        assert!(
            *wait >= full / 2 && *wait <= full + Duration::from_millis(2),
            "{wait:?} for a backoff of {full:?}: {waits:?}"
        );
    }
    // Jittered: not every wait is the full backoff.
    assert!(
        waits[1..]
            .iter()
            .zip([100, 200, 400])
            .any(|(wait, full)| *wait < Duration::from_millis(full)),
        "{waits:?}"
    );
    // The echo demo's "bye" is a normal close: final.
    assert_eq!(final_close(&sessions), Some(CloseCode::Normal));
    assert!(sessions.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn without_jitter_the_delays_are_exactly_the_backoff() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[Step::Close(1012), Step::Close(1012), Step::Close(1012)]);
    let mut sessions = in_memory(&s.server, "/s", fast().jitter(0.0).multiplier(3.0));
    assert_eq!(millis(&run(&mut sessions).await), [0, 100, 300, 900]);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_ends_the_stream_without_a_retry() {
    watchdog(Duration::from_secs(60));
    let (server, asked) = hooked("/private", |_| refusal(403, None));
    let mut sessions = in_memory(&server, "/private", fast());
    let started = Instant::now();
    // Bounded in virtual time: retrying would go on for ever.
    let next = tokio::time::timeout(Duration::from_secs(3600), sessions.next()).await;
    assert!(matches!(next, Ok(None)), "{next:?}");
    assert!(sessions.next().await.is_none());
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
    match sessions.ended() {
        Some(Ended::Final(Error::HandshakeRefused { status: 403, .. })) => {}
        other => panic!("expected the 403, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_policy_violation_close_ends_the_stream() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[Step::Close(1008)]);
    let mut sessions = in_memory(&s.server, "/s", fast());
    assert_eq!(run(&mut sessions).await.len(), 1);
    assert_eq!(s.served.load(Ordering::SeqCst), 1);
    assert_eq!(final_close(&sessions), Some(CloseCode::ViolatedPolicy));
}

#[tokio::test(start_paused = true)]
async fn going_away_dropped_connections_and_server_errors_are_retried() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[
        Step::Close(1001),
        Step::Terminate,
        Step::Close(1011),
        Step::Close(1013),
    ]);
    let mut sessions = in_memory(&s.server, "/s", fast());
    assert_eq!(run(&mut sessions).await.len(), 5);
    assert_eq!(final_close(&sessions), Some(CloseCode::Normal));
}

#[tokio::test(start_paused = true)]
async fn max_attempts_bounds_the_retries_in_a_row() {
    watchdog(Duration::from_secs(60));
    // Sessions that end at once count.
    let s = scripted(&[Step::Close(1013); 10]);
    let mut sessions = in_memory(&s.server, "/s", fast().max_attempts(Some(2)));
    assert_eq!(run(&mut sessions).await.len(), 3);
    assert_eq!(s.served.load(Ordering::SeqCst), 3);
    match sessions.ended() {
        Some(Ended::GaveUp { retries: 2, last }) => {
            assert_eq!(last.close_code(), Some(CloseCode::TryAgainLater))
        }
        other => panic!("expected to give up after 2 retries, got {other:?}"),
    }
    // So do attempts that fail.
    let server = TestServer::new(Server::new());
    let mut sessions = in_memory(
        &server,
        "/nowhere",
        fast()
            .max_attempts(Some(3))
            .should_retry(|_| Retry::Backoff),
    );
    assert!(sessions.next().await.is_none());
    match sessions.ended() {
        Some(Ended::GaveUp {
            retries: 3,
            last: Error::HandshakeRefused { status: 404, .. },
        }) => {}
        other => panic!("expected to give up after 3 retries, got {other:?}"),
    }
    // Some(0): one try.
    let s = scripted(&[Step::Close(1012)]);
    let mut sessions = in_memory(&s.server, "/s", fast().max_attempts(Some(0)));
    assert_eq!(run(&mut sessions).await.len(), 1);
    assert!(matches!(
        sessions.ended(),
        Some(Ended::GaveUp { retries: 0, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn the_backoff_starts_again_after_a_session_that_lived_long_enough() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[
        Step::Close(1012),
        Step::Close(1012),
        Step::LiveThenClose(Duration::from_secs(20), 1012),
        Step::Close(1012),
        Step::LiveThenClose(Duration::from_secs(5), 1012),
    ]);
    let policy = fast().jitter(0.0).reset_after(Duration::from_secs(10));
    let mut sessions = in_memory(&s.server, "/s", policy);
    // 100, 200, then the 20 s session resets the count: 100, 200; the 5 s
    // one does not: 400.
    assert_eq!(
        millis(&run(&mut sessions).await),
        [0, 100, 200, 100, 200, 400]
    );
}

#[tokio::test(start_paused = true)]
async fn a_servers_retry_after_is_waited_out() {
    watchdog(Duration::from_secs(60));
    let (server, asked) = hooked("/busy", |asked| match asked {
        0 => refusal(503, Some("5")),
        _ => Admission::accept(),
    });
    let mut sessions = in_memory(&server, "/busy", fast());
    assert_eq!(millis(&run(&mut sessions).await), [5000]);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn should_retry_changes_what_is_final() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[Step::Close(4000)]);
    let mut sessions = in_memory(&s.server, "/s", fast());
    assert_eq!(run(&mut sessions).await.len(), 1);
    assert_eq!(final_close(&sessions), Some(CloseCode::Other(4000)));

    let s = scripted(&[Step::Close(4000), Step::Close(1012)]);
    let policy = fast().should_retry(|error| match error.close_code() {
        Some(CloseCode::Other(4000)) => Retry::Backoff,
        Some(CloseCode::ServiceRestart) => Retry::Never,
        _ => Retry::default_for(error),
    });
    let mut sessions = in_memory(&s.server, "/s", policy);
    assert_eq!(run(&mut sessions).await.len(), 2);
    assert_eq!(final_close(&sessions), Some(CloseCode::ServiceRestart));
}

#[tokio::test(start_paused = true)]
async fn each_attempt_may_change_the_request_and_learns_why_the_last_ended() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[Step::Close(1012), Step::Terminate]);
    let told = Arc::new(Mutex::new(Vec::new()));
    let (server, log) = (s.server.clone(), told.clone());
    let mut attempt = 0;
    let mut sessions = Reconnecting::new(fast(), move |previous: Option<&Error>| {
        log.lock()
            .unwrap()
            .push(previous.map(|e| e.close_code().map(u16::from)));
        attempt += 1;
        let (server, path) = (server.clone(), format!("/s?last_id={attempt}"));
        async move { server.connect(&path).await }
    });
    assert_eq!(run(&mut sessions).await.len(), 3);
    assert_eq!(
        *s.queries.lock().unwrap(),
        ["last_id=1", "last_id=2", "last_id=3"]
    );
    assert_eq!(
        *told.lock().unwrap(),
        [None, Some(Some(1012)), Some(Some(1006))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_next_dropped_while_waiting_leaves_only_the_rest_of_the_wait() {
    watchdog(Duration::from_secs(60));
    let s = scripted(&[Step::Close(1012)]);
    let mut sessions = in_memory(&s.server, "/s", fast().jitter(0.0));
    let first = sessions.next().await.unwrap();
    first.close_reason().await;
    drop(first);
    let ended_at = Instant::now();
    let early = tokio::time::timeout(Duration::from_millis(60), sessions.next()).await;
    assert!(early.is_err(), "a session before the 100 ms backoff");
    let second = sessions.next().await.expect("the second session");
    assert_eq!(ended_at.elapsed(), Duration::from_millis(100));
    drop(second);
}

#[tokio::test]
async fn a_refused_tcp_connection_is_retried_then_given_up() {
    // A port that refuses: bound, then let go.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let policy = Reconnect::new()
        .initial_delay(Duration::from_millis(10))
        .max_attempts(Some(2));
    let mut sessions = ClientBuilder::new(format!("ws://127.0.0.1:{port}/"))
        .no_proxy()
        .reconnect(policy);
    // The loop runs in a task of its own: `Reconnecting` is `Send`.
    let task = tokio::spawn(async move {
        let got = sessions.next().await.is_some();
        (got, sessions)
    });
    let (got, sessions) = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the retries took too long")
        .unwrap();
    assert!(!got);
    match sessions.ended() {
        Some(Ended::GaveUp {
            retries: 2,
            last: Error::Io(e),
        }) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        other => panic!("expected to give up on a refused connection, got {other:?}"),
    }
}
