//! tandem sessions inside an axum app (`tandem::axum::WebSocketUpgrade`, cargo
//! feature `axum`), as an axum user meets them: the demos unchanged behind
//! the extractor, extractors that answer before the upgrade, subprotocols
//! and state chosen from the request, the refusals tandem's own server
//! gives, graceful shutdown through a `SessionRegistry`, permessage-deflate;
//! and `examples/axum_chat.rs` run as a process.
#![cfg(all(feature = "axum", not(target_arch = "wasm32")))]

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use axum_extra::headers::authorization::Bearer;
use axum_extra::headers::Authorization;
use axum_extra::TypedHeader;
use common::{
    drain, http_exchange, next_text, read_http_response, within, HttpResponse, RawClient,
};
use tandem::axum::WebSocketUpgrade;
use tandem::demo::{echo, ChatRoom};
use tandem::extensions::PerMessageDeflate;
use tandem::server::{Server, SessionRegistry, ShutdownReport};
use tandem::{ClientBuilder, CloseCode, CloseReason, Error, Session};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Serves `app` on a free port of 127.0.0.1 until the test's runtime ends.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("the bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Connects a tandem client to `ws://ADDR/PATH`, failing the test on error.
async fn connect(addr: SocketAddr, path: &str) -> Session {
    try_connect(ClientBuilder::new(format!("ws://{addr}{path}")))
        .await
        .unwrap_or_else(|e| panic!("connect to {path}: {e}"))
}

async fn try_connect(builder: ClientBuilder) -> Result<Session, Error> {
    within("connect", builder.connect()).await
}

/// A valid upgrade request for `path`, with `extra` header lines (each
/// ending in CRLF).
fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

// ----- the demos behind the extractor -----------------------------------------

#[tokio::test]
async fn echo_and_chat_demos_run_unchanged_behind_the_extractor() {
    let room = ChatRoom::new();
    let app = Router::new()
        .route(
            "/echo",
            get(|ws: WebSocketUpgrade| async { ws.on_upgrade(echo) }),
        )
        .route(
            "/chat",
            get(move |ws: WebSocketUpgrade| async move {
                ws.on_upgrade(move |session| room.clone().join(session))
            }),
        );
    let addr = serve(app).await;

    let mut session = connect(addr, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within("send", session.send("axum")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, axum!");
    within("send", session.send("bye")).await.unwrap();
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(
        within("close reason", session.close_reason()).await,
        CloseReason::new(CloseCode::Normal, "Client said BYE")
    );

    let mut first = connect(addr, "/chat").await;
    assert_eq!(
        next_text(&mut first).await,
        "You are connected! There are 1 users here."
    );
    let mut second = connect(addr, "/chat").await;
    assert_eq!(
        next_text(&mut second).await,
        "You are connected! There are 2 users here."
    );
    within("send", second.send("hello")).await.unwrap();
    assert_eq!(next_text(&mut first).await, "[user1]: hello");
    assert_eq!(next_text(&mut second).await, "[user1]: hello");
}

// ----- extractors that answer before the upgrade --------------------------------

/// Who a bearer token belongs to, attached to the session as typed state.
#[derive(Debug, Clone, PartialEq)]
struct User(String);

/// The app's state: the one token it knows, and whose it is.
#[derive(Clone)]
struct Tokens {
    token: &'static str,
    user: &'static str,
}

/// Upgrades only requests with the known bearer token; 401 otherwise.
async fn private(
    State(tokens): State<Tokens>,
    auth: Option<TypedHeader<Authorization<Bearer>>>,
    ws: WebSocketUpgrade,
) -> Response {
    match auth {
        Some(TypedHeader(auth)) if auth.token() == tokens.token => ws
            .state(User(tokens.user.to_owned()))
            .on_upgrade(|session: Session| async move {
                let user = session.state::<User>().map(|u| u.0.clone());
                let _ = session
                    .send(format!("hello {}", user.unwrap_or_default()))
                    .await;
                session.close_reason().await;
            }),
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"tandem\"")],
        )
            .into_response(),
    }
}

#[tokio::test]
async fn a_route_answers_401_before_the_upgrade_and_upgrades_with_the_token() {
    let tokens = Tokens {
        token: "s3cret",
        user: "alice",
    };
    let app = Router::new()
        .route("/private", get(private))
        .with_state(tokens);
    let addr = serve(app).await;
    let url = format!("ws://{addr}/private");

    for builder in [
        ClientBuilder::new(&url),
        ClientBuilder::new(&url).header("Authorization", "Bearer wrong"),
    ] {
        match try_connect(builder).await {
            Err(Error::HandshakeRefused { status: 401, .. }) => {}
            other => panic!("expected a 401 refusal, got {other:?}"),
        }
    }
    let response = http_exchange(addr, &upgrade_request(addr, "/private", "")).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"tandem\"")
    );
    assert_eq!(response.header("upgrade"), None);

    let builder = ClientBuilder::new(&url).header("Authorization", "Bearer s3cret");
    let mut session = try_connect(builder).await.expect("the token upgrades");
    assert_eq!(next_text(&mut session).await, "hello alice");
}

/// The highest `chat.vN` the client offers, if any.
fn highest_chat_version(offered: &[String]) -> Option<(u32, &str)> {
    offered
        .iter()
        .filter_map(|p| Some((p.strip_prefix("chat.v")?.parse().ok()?, p.as_str())))
        .max()
}

/// The chat version the session speaks, as typed state.
#[derive(Debug, Clone, Copy)]
struct Version(u32);

/// Answers with the subprotocol and the state the handler got.
async fn tell(session: Session) {
    let version = session.state::<Version>().map(|v| v.0);
    let answer = format!("{:?} {:?}", session.protocol(), version);
    let _ = session.send(answer).await;
    session.close_reason().await;
}

#[tokio::test]
async fn a_subprotocol_and_state_chosen_from_the_request_reach_the_handler() {
    let app = Router::new()
        .route(
            "/versioned",
            get(|ws: WebSocketUpgrade| async move {
                let chosen = highest_chat_version(ws.request().offered_protocols())
                    .map(|(n, p)| (n, p.to_owned()));
                match chosen {
                    Some((n, protocol)) => ws.protocol(protocol).state(Version(n)).on_upgrade(tell),
                    None => ws.on_upgrade(tell),
                }
            }),
        )
        .route(
            "/preferred",
            get(|ws: WebSocketUpgrade| async {
                ws.protocols(["chat.v2", "chat"]).on_upgrade(tell)
            }),
        );
    let addr = serve(app).await;
    let url = |path: &str| format!("ws://{addr}{path}");

    let builder = ClientBuilder::new(url("/versioned"))
        .protocol("chat.v1")
        .protocol("chat.v3")
        .protocol("chat.v2");
    let mut session = try_connect(builder).await.unwrap();
    assert_eq!(session.protocol(), Some("chat.v3"));
    assert_eq!(next_text(&mut session).await, "Some(\"chat.v3\") Some(3)");

    let mut session = connect(addr, "/versioned").await;
    assert_eq!(session.protocol(), None);
    assert_eq!(next_text(&mut session).await, "None None");

    // `protocols` as axum's: the server's preference wins, and a client that
    // offers none of them is upgraded without one.
    let builder = ClientBuilder::new(url("/preferred"))
        .protocol("chat")
        .protocol("chat.v2");
    let session = try_connect(builder).await.unwrap();
    assert_eq!(session.protocol(), Some("chat.v2"));
    let builder = ClientBuilder::new(url("/preferred")).protocol("other");
    let session = try_connect(builder).await.unwrap();
    assert_eq!(session.protocol(), None);
}

#[tokio::test]
async fn a_subprotocol_the_client_did_not_offer_gets_400() {
    let app = Router::new().route(
        "/pinned",
        get(|ws: WebSocketUpgrade| async { ws.protocol("chat").on_upgrade(tell) }),
    );
    let addr = serve(app).await;
    let offer = "Sec-WebSocket-Protocol: other\r\n";
    let response = http_exchange(addr, &upgrade_request(addr, "/pinned", offer)).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(response.body_text().contains("\"chat\""), "{response:?}");
}

// ----- refusals, as tandem's server answers them ----------------------------------

#[tokio::test]
async fn requests_that_are_not_upgrades_get_what_tandems_server_answers() {
    // `any`: the method check is the extractor's, as on tandem's routes.
    let app = Router::new().route(
        "/ws",
        any(|ws: WebSocketUpgrade| async { ws.on_upgrade(echo) }),
    );
    let axum_addr = serve(app).await;
    let tandem_server = Server::new()
        .web_socket("/ws", echo)
        .bind("127.0.0.1:0")
        .await
        .expect("bind");
    let tandem_addr = tandem_server.local_addr();

    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        ("a plain GET", "GET", "HTTP/1.1", String::new(), 426),
        (
            "version 8",
            "GET",
            "HTTP/1.1",
            format!(
                "Upgrade: websocket\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 8\r\n"
            ),
            426,
        ),
        (
            "no key",
            "GET",
            "HTTP/1.1",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n".into(),
            400,
        ),
        (
            "a short key",
            "GET",
            "HTTP/1.1",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\
             Sec-WebSocket-Version: 13\r\n"
                .into(),
            400,
        ),
        (
            "no Connection: Upgrade",
            "GET",
            "HTTP/1.1",
            format!("Upgrade: websocket\r\n{key}Sec-WebSocket-Version: 13\r\n"),
            400,
        ),
        (
            "POST",
            "POST",
            "HTTP/1.1",
            format!(
                "Upgrade: websocket\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 13\r\n\
                 Content-Length: 0\r\n"
            ),
            400,
        ),
    ];
    for (what, method, version, headers, status) in cases {
        let request =
            |addr: SocketAddr| format!("{method} /ws {version}\r\nHost: {addr}\r\n{headers}\r\n");
        let ours = http_exchange(axum_addr, &request(axum_addr)).await;
        let theirs = http_exchange(tandem_addr, &request(tandem_addr)).await;
        assert_eq!(ours.status, status, "{what}: {ours:?}");
        assert_eq!(theirs.status, status, "{what}: tandem's server: {theirs:?}");
        for name in ["upgrade", "sec-websocket-version", "content-type"] {
            assert_eq!(ours.header(name), theirs.header(name), "{what}: {name}");
        }
        assert_eq!(ours.body_text(), theirs.body_text(), "{what}");
    }
    tandem_server.shutdown().await;
}

// ----- graceful shutdown ------------------------------------------------------------

/// Echo sessions registered in the app's `SessionRegistry`.
fn registered_echo(registry: SessionRegistry) -> Router {
    Router::new()
        .route(
            "/echo",
            get(
                |State(registry): State<SessionRegistry>, ws: WebSocketUpgrade| async move {
                    ws.registry(&registry).on_upgrade(echo)
                },
            ),
        )
        .route("/health", get(|| async { "ok" }))
        .with_state(registry)
}

#[tokio::test]
async fn axums_graceful_shutdown_closes_registered_sessions_with_1001() {
    let registry = SessionRegistry::new();
    let app = registered_echo(registry.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (report_tx, report_rx) = tokio::sync::oneshot::channel::<ShutdownReport>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                let report = registry.shutdown_gracefully(Duration::from_secs(5)).await;
                let _ = report_tx.send(report);
            })
            .await
    });

    let mut sessions = Vec::new();
    for _ in 0..2 {
        let mut session = connect(addr, "/echo").await;
        assert_eq!(next_text(&mut session).await, "Please enter your name");
        sessions.push(session);
    }
    stop.send(()).unwrap();
    for session in &mut sessions {
        assert!(drain(session).await.is_empty());
        let reason = within("close reason", session.close_reason()).await;
        assert_eq!(
            reason,
            CloseReason::new(CloseCode::GoingAway, "the server is shutting down")
        );
    }
    let report = within("the shutdown report", report_rx).await.unwrap();
    assert_eq!((report.sessions, report.closed, report.dropped), (2, 2, 0));
    within("axum to stop", server).await.unwrap().unwrap();
}

#[tokio::test]
async fn upgrades_after_the_registry_shut_down_get_503_while_http_goes_on() {
    let registry = SessionRegistry::new();
    let addr = serve(registered_echo(registry.clone())).await;
    let mut session = connect(addr, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");

    let report = within(
        "the registry's shutdown",
        registry.shutdown_gracefully(Duration::from_secs(5)),
    )
    .await;
    assert_eq!(report.sessions, 1);
    assert_eq!(
        within("close reason", session.close_reason()).await.code,
        CloseCode::GoingAway
    );
    assert_eq!(registry.session_count(), 0);

    let response = http_exchange(addr, &upgrade_request(addr, "/echo", "")).await;
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.header("retry-after").is_some(), "{response:?}");
    let health = http_exchange(
        addr,
        &format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(health.status, 200);
}

// ----- permessage-deflate ------------------------------------------------------------

#[tokio::test]
async fn permessage_deflate_is_negotiated_through_the_extractor() {
    let app = Router::new()
        .route(
            "/deflate",
            get(|ws: WebSocketUpgrade| async {
                ws.extension(PerMessageDeflate::new()).on_upgrade(echo)
            }),
        )
        .route(
            "/plain",
            get(|ws: WebSocketUpgrade| async { ws.on_upgrade(echo) }),
        );
    let addr = serve(app).await;
    let offering = |path: &str| {
        ClientBuilder::new(format!("ws://{addr}{path}")).extension(PerMessageDeflate::new())
    };

    let mut session = try_connect(offering("/deflate")).await.unwrap();
    let names: Vec<&str> = session
        .extensions()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["permessage-deflate"]);
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    let long = "compressible ".repeat(1000);
    within("send", session.send(long.as_str())).await.unwrap();
    assert_eq!(next_text(&mut session).await, format!("Hi, {long}!"));

    let session = try_connect(offering("/plain")).await.unwrap();
    assert!(session.extensions().is_empty());

    // On the wire: the 101 agrees, and the greeting comes compressed (RSV1).
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    stream
        .write_all(upgrade_request(addr, "/deflate", offer).as_bytes())
        .await
        .unwrap();
    let (response, rest) = within("the 101", read_http_response(&mut stream)).await;
    assert_eq!(response.status, 101, "{response:?}");
    let agreed = response.header("sec-websocket-extensions").unwrap_or("");
    assert!(agreed.starts_with("permessage-deflate"), "{response:?}");
    let mut raw = RawClient::from_parts(stream, rest);
    let greeting = raw.read_frame().await.expect("the greeting");
    assert_eq!(greeting.rsv, 0x40, "{greeting:?}");
    assert_ne!(greeting.payload, b"Please enter your name");
}

// ----- examples/axum_chat.rs as a process (see `common::example`) ----------------------

/// The `axum_chat` example, running on a free port with bearer token `TOKEN`.
struct AxumChat {
    child: Child,
    addr: SocketAddr,
}

const TOKEN: &str = "t0ken";

impl AxumChat {
    async fn start() -> Self {
        let mut child = Command::new(common::example("axum_chat"))
            .args(["--addr", "127.0.0.1:0", "--token", TOKEN])
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the axum_chat example");
        let stdout = child.stdout.take().unwrap();
        let line = within("the example's first line", async {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).await.unwrap();
            line
        })
        .await;
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("expected `listening on http://ADDR`, got {line:?}"));
        Self { child, addr }
    }

    async fn get(&self, path: &str) -> HttpResponse {
        let addr = self.addr;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        http_exchange(addr, &request).await
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

#[tokio::test]
async fn axum_chat_example_serves_its_json_routes_next_to_the_demos() {
    let app = AxumChat::start().await;

    let health = app.get("/health").await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(health.body_text(), r#"{"status":"ok","sessions":0}"#);
    assert_eq!(app.get("/api/users").await.body_text(), r#"{"users":[]}"#);

    let builder = ClientBuilder::new(app.url("/chat")).protocol("chat");
    let mut member = try_connect(builder).await.unwrap();
    assert_eq!(member.protocol(), Some("chat"));
    assert_eq!(
        next_text(&mut member).await,
        "You are connected! There are 1 users here."
    );
    assert_eq!(
        app.get("/api/users").await.body_text(),
        r#"{"users":["user0"]}"#
    );

    let mut session = connect(app.addr, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    within("send", session.send("axum")).await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, axum!");
    assert_eq!(
        app.get("/health").await.body_text(),
        r#"{"status":"ok","sessions":2}"#
    );

    // /announce: 401 without the token, into the chat with it.
    match try_connect(ClientBuilder::new(app.url("/announce"))).await {
        Err(Error::HandshakeRefused { status: 401, .. }) => {}
        other => panic!("expected a 401 refusal, got {other:?}"),
    }
    let builder = ClientBuilder::new(app.url("/announce"))
        .header("Authorization", &format!("Bearer {TOKEN}"));
    let admin = try_connect(builder).await.unwrap();
    within("send", admin.send("maintenance at noon"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut member).await, "[admin]: maintenance at noon");

    // The demo page, from www/.
    let page = app.get("/").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body_text().contains("tandem demo"), "{page:?}");
}

#[tokio::test]
async fn axum_chat_example_closes_sessions_with_1001_on_ctrl_c() {
    let mut app = AxumChat::start().await;
    let mut session = connect(app.addr, "/echo").await;
    assert_eq!(next_text(&mut session).await, "Please enter your name");

    let pid = app.child.id().expect("the example's pid").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill -INT");
    assert!(kill.success());
    assert_eq!(
        within("close reason", session.close_reason()).await,
        CloseReason::new(CloseCode::GoingAway, "the server is shutting down")
    );
    let status = within("the example to exit", app.child.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}
