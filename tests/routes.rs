//! Routes as a user of tandem's server meets them: a `before_upgrade` hook
//! that refuses with its own response or accepts with a subprotocol and
//! typed state, path patterns (`/rooms/{id}`), and query parameters decoded
//! as forms.
//!
//! Two tests keep a real socket: the hook's refusal read as bytes off the
//! wire, and the peer address a hook sees (the client's own port). The
//! rest run on a `TestServer`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::net::SocketAddr;

use common::{connect, connect_with, drain, http_exchange, next_text, within, ws_url, RawClient};
use tandem::server::{Admission, Route, RunningServer, Server, UpgradeRequest};
use tandem::testing::TestServer;
use tandem::{ClientBuilder, CloseReason, Error, Session};
use tokio::net::TcpStream;

async fn start(server: Server) -> RunningServer {
    server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

/// Closes `session` from the client side and waits for the end.
async fn finish(mut session: Session) {
    within("close", session.close(CloseReason::normal()))
        .await
        .expect("close");
    drain(&mut session).await;
}

/// The user a hook found in the request, for the handler.
#[derive(Debug, Clone, PartialEq)]
struct User(String);

/// Accepts `Authorization: Bearer s3cret` as alice; refuses anything else
/// with a 401 that says how to authenticate.
async fn bearer(request: UpgradeRequest) -> Admission {
    match request.headers().get("authorization") {
        Some(token) if token == "Bearer s3cret" => Admission::accept().state(User("alice".into())),
        _ => Admission::refuse(
            http::Response::builder()
                .status(401)
                .header("www-authenticate", "Bearer")
                .body("a bearer token is required")
                .expect("a valid response"),
        ),
    }
}

/// A handler that greets the user its hook attached.
async fn greet(mut session: Session) {
    let greeting = match session.state::<User>() {
        Some(User(name)) => format!("hello {name}"),
        None => "no user".to_owned(),
    };
    let _ = session.send(greeting).await;
    while session.receive().await.is_some() {}
}

#[tokio::test]
async fn a_hook_refuses_with_its_own_response_and_admits_the_right_token() {
    let server =
        start(Server::new().web_socket(Route::new("/private").before_upgrade(bearer), greet)).await;
    let addr = server.local_addr();

    // On the wire: the hook's status, header and body, as it wrote them.
    let request = format!(
        "GET /private HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let response = http_exchange(addr, &request).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    assert_eq!(response.body_text(), "a bearer token is required");

    // A client without the token, or with a wrong one, is refused.
    for header in [None, Some("Bearer guess")] {
        let mut builder = ClientBuilder::new(ws_url(&server, "/private"));
        if let Some(value) = header {
            builder = builder.header("Authorization", value);
        }
        match within("connect", builder.connect()).await {
            Err(Error::HandshakeRefused {
                status: 401, body, ..
            }) => {
                assert_eq!(body, "a bearer token is required")
            }
            other => panic!("with {header:?}: expected a 401 refusal, got {other:?}"),
        }
    }

    // The right token opens a session, with the hook's state for the handler.
    let mut session = within(
        "connect",
        ClientBuilder::new(ws_url(&server, "/private"))
            .header("Authorization", "Bearer s3cret")
            .connect(),
    )
    .await
    .expect("the right token is admitted");
    assert_eq!(next_text(&mut session).await, "hello alice");
    finish(session).await;
    server.shutdown().await;
}

/// Browsers cannot set headers on a WebSocket, so the token travels as a
/// subprotocol (`token.abc`) beside the real one: the hook checks the token
/// and answers with the real one, which the route does not list.
async fn token_as_subprotocol(request: UpgradeRequest) -> Admission {
    let offered = request.offered_protocols();
    let token = offered.iter().find_map(|p| p.strip_prefix("token."));
    match token {
        Some("abc") if offered.iter().any(|p| p == "chat") => Admission::accept()
            .protocol("chat")
            .state(User("token holder".into())),
        _ => Admission::refuse(
            http::Response::builder()
                .status(403)
                .body("no token")
                .unwrap(),
        ),
    }
}

/// A handler that tells the client its subprotocol and user.
async fn tell_protocol_and_user(mut session: Session) {
    let report = format!(
        "{} {}",
        session.protocol().unwrap_or("none"),
        session.state::<User>().map_or("nobody", |u| u.0.as_str())
    );
    let _ = session.send(report).await;
    while session.receive().await.is_some() {}
}

#[tokio::test]
async fn a_hook_chooses_the_subprotocol_from_the_request() {
    let server = TestServer::new(
        Server::new()
            .web_socket(
                Route::new("/chat").before_upgrade(token_as_subprotocol),
                tell_protocol_and_user,
            )
            .web_socket(
                // A choice the client did not offer.
                Route::new("/wrong").before_upgrade(|_: UpgradeRequest| async {
                    Admission::accept().protocol("chat.v9")
                }),
                tell_protocol_and_user,
            ),
    );

    let mut session = connect_with(
        &server,
        ClientBuilder::new(server.url("/chat"))
            .protocol("token.abc")
            .protocol("chat"),
    )
    .await
    .expect("the token is admitted");
    assert_eq!(
        session.protocol(),
        Some("chat"),
        "the hook's choice, not the token"
    );
    assert_eq!(next_text(&mut session).await, "chat token holder");
    finish(session).await;

    let refused = connect_with(
        &server,
        ClientBuilder::new(server.url("/chat"))
            .protocol("token.xyz")
            .protocol("chat"),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::HandshakeRefused { status: 403, .. })),
        "a wrong token: {refused:?}"
    );

    match connect_with(
        &server,
        ClientBuilder::new(server.url("/wrong")).protocol("chat"),
    )
    .await
    {
        Err(Error::HandshakeRefused {
            status: 400, body, ..
        }) => {
            assert!(
                body.contains("chat.v9"),
                "the body names the choice: {body:?}"
            )
        }
        other => panic!("a subprotocol the client did not offer: expected 400, got {other:?}"),
    }
}

/// What a hook saw, handed to the handler as state.
#[derive(Debug, Clone)]
struct Seen(String);

#[tokio::test]
async fn a_hook_sees_the_peer_the_path_parameters_and_the_decoded_query() {
    let route = Route::new("/rooms/{id}").before_upgrade(|request: UpgradeRequest| async move {
        let seen = format!(
            "peer={} path={} id={} name={}",
            request.peer_addr().map_or("-".into(), |p| p.to_string()),
            request.path(),
            request.path_param("id").unwrap_or("-"),
            request.query_param("name").as_deref().unwrap_or("-"),
        );
        Admission::accept().state(Seen(seen))
    });
    let server = start(
        Server::new().web_socket(route, |session: Session| async move {
            let seen = session
                .state::<Seen>()
                .map_or("no state".into(), |s| s.0.clone());
            let _ = session.send(seen).await;
        }),
    )
    .await;
    let addr = server.local_addr();

    // A raw client, whose own address the test knows.
    let stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .unwrap();
    let local: SocketAddr = stream.local_addr().unwrap();
    let mut client =
        RawClient::handshake(stream, addr, "/rooms/caf%C3%A9%201?name=J%C3%BCrgen+K").await;
    let frame = client.read_frame().await.expect("the hook's report");
    assert_eq!(
        frame.text(),
        format!("peer={local} path=/rooms/caf%C3%A9%201 id=café 1 name=Jürgen K")
    );
    server.shutdown().await;
}

/// A handler that tells the client which route it is and its `id`.
fn tell(route: &'static str) -> impl Fn(Session) -> futures::future::BoxFuture<'static, ()> {
    move |mut session: Session| {
        Box::pin(async move {
            let id = session
                .request()
                .and_then(|r| r.path_param("id"))
                .unwrap_or("-")
                .to_owned();
            let _ = session.send(format!("{route} id={id}")).await;
            while session.receive().await.is_some() {}
        })
    }
}

#[tokio::test]
async fn path_parameters_reach_the_handler_decoded_and_an_exact_route_wins() {
    let server = TestServer::new(
        Server::new()
            // The pattern first: an exact path wins whatever the order.
            .web_socket("/rooms/{id}", tell("pattern"))
            .web_socket("/rooms/lobby", tell("exact"))
            // Written as a user reads it; a client sends it percent-encoded.
            .web_socket("/café", tell("café")),
    );

    let cases = [
        ("/rooms/42", "pattern id=42"),
        ("/rooms/J%C3%BCrgen%20K", "pattern id=Jürgen K"),
        ("/rooms/a%2Fb", "pattern id=a/b"),
        ("/rooms/42?x=1", "pattern id=42"),
        ("/rooms/lobby", "exact id=-"),
        ("/caf%C3%A9", "café id=-"),
    ];
    for (path, expected) in cases {
        let mut session = connect(&server, path).await;
        assert_eq!(next_text(&mut session).await, expected, "{path}");
        finish(session).await;
    }

    for path in ["/rooms", "/rooms/", "/rooms/42/extra", "/lobby"] {
        match within("connect", server.connect(path)).await {
            Err(Error::HandshakeRefused { status: 404, .. }) => {}
            other => panic!("{path}: expected a 404 refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_handler_reads_query_parameters_decoded_as_a_form() {
    let server = TestServer::new(Server::new().web_socket(
        "/hello",
        |session: Session| async move {
            let request = session.request().expect("a server session has its request");
            let report = format!(
                "name={} raw={} missing={:?}",
                request.query_param("name").as_deref().unwrap_or("-"),
                request.query().unwrap_or("-"),
                request.query_param("missing"),
            );
            let _ = session.send(report).await;
        },
    ));
    let mut session = connect(&server, "/hello?room=1&name=J%C3%BCrgen+K").await;
    assert_eq!(
        next_text(&mut session).await,
        "name=Jürgen K raw=room=1&name=J%C3%BCrgen+K missing=None"
    );
    drain(&mut session).await;
}
