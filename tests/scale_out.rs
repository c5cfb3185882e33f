//! One chat over three demo servers on one Redis, as the scale-out guide
//! runs it: clients spread over the servers send while one server is
//! killed (`kill -9`: its clients reconnect to the others and resume) and
//! Redis is restarted; at the end every client got the room's order with no
//! gap and no duplicate, names are unique, and the dead server's members
//! have left the count.
//!
//! The servers are the `server` example (built with the `redis` feature by
//! `cargo test --features redis`), each a child process on a free port of
//! 127.0.0.1, killed by its handle; Redis is a private `redis-server` (see
//! `common/redis.rs`). About 15 s.
#![cfg(all(feature = "redis", not(target_arch = "wasm32")))]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use common::redis::RedisServer;
use common::{example, watchdog, within};
use tandem::reconnect::{Reconnect, Reconnecting};
use tandem::rooms::{Backplane, MessageId, RedisBackplane};
use tandem::{ClientBuilder, Outgoing};

const SERVERS: usize = 3;
const CLIENTS: usize = 6;
const SENDS: usize = 100;
const PACE: Duration = Duration::from_millis(30);
/// The servers' presence heartbeat: a dead server's members leave the
/// count within three of them.
const HEARTBEAT: &str = "0.5";

/// A demo server on Redis, killed when dropped.
struct Instance {
    child: Child,
    addr: SocketAddr,
}

impl Instance {
    async fn start(redis: &RedisServer) -> Self {
        let mut child = Command::new(example("server"))
            .args(["--addr", "127.0.0.1:0", "--redis", &redis.url()])
            .args(["--heartbeat", HEARTBEAT])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server example");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = within("the server to listen", async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    return addr.parse().unwrap();
                }
            }
            panic!("the server ended before it listened");
        })
        .await;
        // The rest of its output is not needed, but must not block it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, addr }
    }

    /// `kill -9`: no Close, no goodbye to Redis.
    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}

/// What a client knows to come back with, and what it got.
#[derive(Default)]
struct Seen {
    name: Option<String>,
    last: Option<String>,
    /// The ids of the messages it got, in order.
    ids: Vec<String>,
    welcomes: usize,
}

/// A chat client over the JSON protocol: connects to server `k` first and
/// to the next one at each attempt (as a load balancer would send it), and
/// comes back with its name and last id.
fn client(k: usize, addrs: Vec<SocketAddr>, seen: Arc<Mutex<Seen>>) -> Reconnecting {
    let policy = Reconnect::new()
        .initial_delay(Duration::from_millis(50))
        .max_delay(Duration::from_millis(500));
    let mut attempt = 0;
    Reconnecting::new(policy, move |_| {
        let addr = addrs[(k + attempt) % addrs.len()];
        attempt += 1;
        let seen = seen.lock().unwrap();
        let url = match (&seen.last, &seen.name) {
            (Some(last), Some(name)) => format!("ws://{addr}/chat-json?last={last}&name={name}"),
            _ => format!("ws://{addr}/chat-json"),
        };
        ClientBuilder::new(url).connect()
    })
}

/// Reads each session of `sessions` to its end, recording what it gets,
/// and hands each session's outgoing side to the sender.
async fn read_all(
    mut sessions: Reconnecting,
    seen: Arc<Mutex<Seen>>,
    outgoing: watch::Sender<Option<Outgoing>>,
) {
    while let Some(mut session) = sessions.next().await {
        let _ = outgoing.send(Some(session.outgoing()));
        while let Some(frame) = session.receive().await {
            let value: Value = frame.json().expect("JSON from the chat");
            let mut seen = seen.lock().unwrap();
            match value["type"].as_str() {
                Some("message") => {
                    let id = value["id"].as_str().unwrap().to_owned();
                    seen.last = Some(id.clone());
                    seen.ids.push(id);
                }
                Some("welcome") => {
                    let name = value["name"].as_str().unwrap().to_owned();
                    if let Some(before) = &seen.name {
                        assert_eq!(*before, name, "a member keeps its name");
                    }
                    seen.name = Some(name);
                    seen.welcomes += 1;
                }
                _ => {}
            }
        }
    }
    panic!("the client gave up: {:?}", sessions.ended());
}

/// Sends `SENDS` messages, one per `PACE`, on whichever session is open.
async fn send_all(k: usize, mut outgoing: watch::Receiver<Option<Outgoing>>) {
    for i in 0..SENDS {
        let current = outgoing.wait_for(Option::is_some).await.unwrap().clone();
        // A message sent as its server dies is not accepted, and not
        // expected anywhere: only what the room's log has counts.
        let text = serde_json::json!({ "text": format!("c{k}-{i}") });
        let _ = current.unwrap().send_json(&text).await;
        tokio::time::sleep(PACE).await;
    }
}

/// The welcome of a new member of server `addr`.
async fn welcome(addr: SocketAddr) -> Value {
    let mut session = ClientBuilder::new(format!("ws://{addr}/chat-json"))
        .connect()
        .await
        .unwrap();
    let welcome = session.receive().await.unwrap().json().unwrap();
    drop(session);
    welcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_one_killed_and_a_redis_restart_lose_nothing() {
    watchdog(Duration::from_secs(90));
    let mut redis = RedisServer::start().await;
    let mut instances = Vec::new();
    for _ in 0..SERVERS {
        instances.push(Instance::start(&redis).await);
    }
    let addrs: Vec<SocketAddr> = instances.iter().map(|i| i.addr).collect();

    let mut clients = Vec::new();
    for k in 0..CLIENTS {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (outgoing, current) = watch::channel(None);
        let sessions = client(k, addrs.clone(), seen.clone());
        let reader = tokio::spawn(read_all(sessions, seen.clone(), outgoing));
        clients.push((seen, reader, current));
    }
    within("every client's welcome", async {
        while clients
            .iter()
            .any(|(seen, ..)| seen.lock().unwrap().welcomes == 0)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let names: BTreeSet<String> = clients
        .iter()
        .map(|(seen, ..)| seen.lock().unwrap().name.clone().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        CLIENTS,
        "unique names across servers: {names:?}"
    );

    let senders: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, (_, _, current))| tokio::spawn(send_all(k, current.clone())))
        .collect();
    // While they send: a server dies, then Redis goes away for a moment.
    tokio::time::sleep(Duration::from_millis(800)).await;
    instances[SERVERS - 1].kill().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().await;
    for sender in senders {
        within("the senders", sender).await.unwrap();
    }

    // The room's order, as Redis kept it.
    let backplane = RedisBackplane::builder(redis.url())
        .connect()
        .await
        .unwrap();
    let head = backplane.head("chat").await.unwrap().expect("messages");
    let history = backplane
        .history("chat", MessageId::from("0-0".to_owned()), head.clone())
        .await
        .unwrap();
    assert!(history.complete);
    let order: Vec<String> = history.messages.iter().map(|m| m.id.to_string()).collect();
    assert!(
        order.len() > CLIENTS * SENDS / 2,
        "most messages were accepted: {} of {}",
        order.len(),
        CLIENTS * SENDS
    );
    within("every client to get the last message", async {
        while clients
            .iter()
            .any(|(seen, ..)| seen.lock().unwrap().last.as_deref() != Some(head.as_str()))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for (k, (seen, ..)) in clients.iter().enumerate() {
        let seen = seen.lock().unwrap();
        let start = order
            .iter()
            .position(|id| *id == seen.ids[0])
            .expect("an id of the room");
        assert_eq!(
            seen.ids,
            order[start..],
            "client {k} ({} sessions): the room's order, no gap, no duplicate",
            seen.welcomes
        );
    }
    let reconnected = clients
        .iter()
        .filter(|(seen, ..)| seen.lock().unwrap().welcomes > 1)
        .count();
    assert!(
        reconnected >= CLIENTS / SERVERS,
        "the dead server's clients came back"
    );
    let sessions: usize = clients
        .iter()
        .map(|(seen, ..)| seen.lock().unwrap().welcomes)
        .sum();
    eprintln!(
        "{} of {} messages accepted; {reconnected} clients reconnected, {sessions} sessions in all",
        order.len(),
        CLIENTS * SENDS
    );

    // The dead server's members leave the count: a newcomer counts the
    // clients (each on a live server now) and itself.
    within("the count to forget the dead server", async {
        loop {
            let users = welcome(addrs[0]).await["users"].as_u64().unwrap();
            if users == CLIENTS as u64 + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    for (_, reader, _) in clients {
        reader.abort();
    }
}
