//! The native client through an HTTP CONNECT proxy that the test runs on
//! 127.0.0.1 (tests/common/proxy.rs): the echo demo over `ws://` and
//! `wss://` inside the tunnel, credentials, refusals, and a proxy that
//! cannot be reached or never answers. The environment variables have a
//! test binary of their own (tests/proxy_env.rs).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use common::proxy::{Mode, TestProxy};
use common::{echo_demo_server, next_text, within};
use tandem::{ClientBuilder, CloseCode, Error, Proxy, Session, WebSocketOptions};

/// Runs the echo demo's exchange on `session`, to its close.
async fn echo(mut session: Session) {
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    session.send("Ktor").await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    session.send("bye").await.unwrap();
    let reason = within("the server's close", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::Normal);
}

/// Connects to `url` through `proxy`.
async fn connect_through(url: String, proxy: Proxy) -> Result<Session, Error> {
    within(
        "connect through the proxy",
        ClientBuilder::new(url).proxy(proxy).connect(),
    )
    .await
}

#[tokio::test]
async fn ws_goes_through_the_proxys_tunnel() {
    let server = echo_demo_server().await;
    let proxy = TestProxy::start(Mode::Open).await;
    let session = connect_through(
        common::ws_url(&server, "/echo"),
        Proxy::new(&proxy.url()).unwrap(),
    )
    .await
    .expect("a session through the proxy");
    echo(session).await;
    let server_addr = server.local_addr();
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT {server_addr} HTTP/1.1\r\n")),
        "{heads:?}"
    );
    assert!(
        heads[0].contains(&format!("\r\nHost: {server_addr}\r\n")),
        "{heads:?}"
    );
    assert!(
        !heads[0]
            .to_ascii_lowercase()
            .contains("proxy-authorization"),
        "{heads:?}"
    );
}

#[tokio::test]
async fn credentials_in_the_proxy_url_are_sent_as_basic() {
    let server = echo_demo_server().await;
    // base64("alice:s3 cret")
    let proxy = TestProxy::start(Mode::RequireAuth("Basic YWxpY2U6czMgY3JldA==")).await;
    let url = format!("http://alice:s3%20cret@{}", proxy.addr);
    let session = connect_through(common::ws_url(&server, "/echo"), Proxy::new(&url).unwrap())
        .await
        .expect("a session through the proxy with credentials");
    echo(session).await;
    // The same through basic_auth, which takes them as they are.
    let with_auth = Proxy::new(&proxy.url())
        .unwrap()
        .basic_auth("alice", "s3 cret");
    echo(
        connect_through(common::ws_url(&server, "/echo"), with_auth)
            .await
            .unwrap(),
    )
    .await;
    let heads = proxy.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in heads {
        assert!(
            head.contains("\r\nProxy-Authorization: Basic YWxpY2U6czMgY3JldA==\r\n"),
            "{head:?}"
        );
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_proxy_authentication_required() {
    let server = echo_demo_server().await;
    let proxy = TestProxy::start(Mode::RequireAuth("Basic YWxpY2U6czMgY3JldA==")).await;
    let wrong = Proxy::new(&proxy.url())
        .unwrap()
        .basic_auth("alice", "hunter2");
    for given in [Proxy::new(&proxy.url()).unwrap(), wrong] {
        match connect_through(common::ws_url(&server, "/echo"), given).await {
            Err(error @ Error::ProxyAuthenticationRequired { .. }) => {
                let shown = format!("{error} {error:?}");
                assert!(shown.contains(&proxy.url()), "{shown}");
                assert!(!shown.contains("hunter2"), "{shown}");
            }
            other => panic!("expected a 407, got {other:?}"),
        }
    }
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn a_refusal_carries_the_proxys_status() {
    let server = echo_demo_server().await;
    for status in [403, 502] {
        let proxy = TestProxy::start(Mode::Refuse(status)).await;
        match connect_through(
            common::ws_url(&server, "/echo"),
            Proxy::new(&proxy.url()).unwrap(),
        )
        .await
        {
            Err(Error::ProxyRefused {
                proxy: named,
                status: got,
            }) => {
                assert_eq!((named, got), (proxy.url(), status));
            }
            other => panic!("expected a refusal with {status}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_proxy_that_cannot_be_reached_is_named_in_the_error() {
    let server = echo_demo_server().await;
    // A port that was free a moment ago: nobody listens on it.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = Proxy::new(&format!("http://{addr}")).unwrap();
    match connect_through(common::ws_url(&server, "/echo"), proxy).await {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
            assert!(e.to_string().contains(&format!("http://{addr}")), "{e}");
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[tokio::test]
async fn the_handshake_timeout_covers_a_proxy_that_never_answers() {
    let server = echo_demo_server().await;
    let proxy = TestProxy::start(Mode::Silent).await;
    let options = WebSocketOptions {
        timeout: Duration::from_millis(300),
        ..WebSocketOptions::default()
    };
    let result = within(
        "connect through a silent proxy",
        ClientBuilder::new(common::ws_url(&server, "/echo"))
            .options(options)
            .proxy(Proxy::new(&proxy.url()).unwrap())
            .connect(),
    )
    .await;
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn the_servers_answer_in_the_same_write_as_the_200_is_not_lost() {
    // The server's answer comes with the proxy's 200, before the client has
    // sent its request. A 101 would need the client's key; a refusal shows
    // as well that those bytes are the ones the handshake reads.
    let proxy = TestProxy::start(Mode::Coalesce(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno route!",
    ))
    .await;
    let result = within(
        "connect through a coalescing proxy",
        ClientBuilder::new("ws://127.0.0.1:9/echo")
            .proxy(Proxy::new(&proxy.url()).unwrap())
            .connect(),
    )
    .await;
    match result {
        Err(Error::HandshakeRefused { status, body, .. }) => {
            assert_eq!((status, body.as_str()), (404, "no route!"));
        }
        other => panic!("expected the server's 404, got {other:?}"),
    }
}

#[cfg(not(feature = "socks"))]
#[tokio::test]
async fn a_socks_proxy_without_the_feature_is_unsupported() {
    let proxy = Proxy::new("socks5h://127.0.0.1:9").unwrap();
    let result = within(
        "connect",
        ClientBuilder::new("ws://127.0.0.1:9/")
            .proxy(proxy)
            .connect(),
    )
    .await;
    assert!(matches!(result, Err(Error::Unsupported(_))), "{result:?}");
}

#[cfg(feature = "tls")]
mod wss {
    use super::*;
    use common::tls::{echo_demo_server_over_tls, self_signed_for, trusting};

    #[tokio::test]
    async fn wss_runs_tls_inside_the_tunnel_with_the_servers_name() {
        // A certificate for "localhost" alone, and the proxy at 127.0.0.1:
        // it verifies only if TLS runs with the server, by the URL's name.
        let (cert, config) = self_signed_for("localhost");
        let server = echo_demo_server_over_tls(config).await;
        let port = server.local_addr().port();
        let proxy = TestProxy::start(Mode::Open).await;
        let session = within(
            "connect over TLS through the proxy",
            ClientBuilder::new(format!("wss://localhost:{port}/echo"))
                .tls_config(trusting(cert))
                .proxy(Proxy::new(&proxy.url()).unwrap())
                .connect(),
        )
        .await
        .expect("a wss:// session through the proxy");
        echo(session).await;
        // The proxy, not the client, resolved the name.
        let heads = proxy.heads();
        assert!(
            heads[0].starts_with(&format!("CONNECT localhost:{port} HTTP/1.1\r\n")),
            "{heads:?}"
        );
    }

    #[tokio::test]
    async fn bytes_before_the_tls_handshake_are_an_error_naming_the_proxy() {
        let proxy = TestProxy::start(Mode::Coalesce(b"not TLS")).await;
        let result = within(
            "connect over TLS through a chatty proxy",
            ClientBuilder::new("wss://127.0.0.1:9/echo")
                .proxy(Proxy::new(&proxy.url()).unwrap())
                .connect(),
        )
        .await;
        match result {
            Err(Error::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
                assert!(e.to_string().contains(&proxy.url()), "{e}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// SOCKS5 proxies (the `socks` feature), against a SOCKS5 server in the
/// test that records what the client asked for and routes every tunnel to
/// the test's server.
#[cfg(feature = "socks")]
mod socks {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A SOCKS5 server on 127.0.0.1 that wants `credentials` (RFC 1929) if
    /// given; returns its address and the targets asked for, as
    /// `name host:port` or `ip ADDRESS`.
    async fn socks_server(
        route_to: SocketAddr,
        credentials: Option<(&'static str, &'static str)>,
    ) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = asked.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = serve(client, route_to, credentials, seen).await;
                });
            }
        });
        (addr, asked)
    }

    async fn serve(
        mut client: TcpStream,
        route_to: SocketAddr,
        credentials: Option<(&'static str, &'static str)>,
        asked: Arc<Mutex<Vec<String>>>,
    ) -> std::io::Result<()> {
        let mut greeting = [0u8; 2];
        client.read_exact(&mut greeting).await?;
        let mut methods = vec![0u8; usize::from(greeting[1])];
        client.read_exact(&mut methods).await?;
        match credentials {
            None => client.write_all(&[5, 0]).await?,
            Some(_) if !methods.contains(&2) => return client.write_all(&[5, 0xff]).await,
            Some((user, password)) => {
                client.write_all(&[5, 2]).await?;
                let mut head = [0u8; 2];
                client.read_exact(&mut head).await?;
                let mut given_user = vec![0u8; usize::from(head[1])];
                client.read_exact(&mut given_user).await?;
                let mut len = [0u8; 1];
                client.read_exact(&mut len).await?;
                let mut given_password = vec![0u8; usize::from(len[0])];
                client.read_exact(&mut given_password).await?;
                let ok = given_user == user.as_bytes() && given_password == password.as_bytes();
                client.write_all(&[1, if ok { 0 } else { 1 }]).await?;
                if !ok {
                    return Ok(());
                }
            }
        }
        let mut request = [0u8; 4];
        client.read_exact(&mut request).await?;
        let target = match request[3] {
            1 => {
                let mut ip = [0u8; 4];
                client.read_exact(&mut ip).await?;
                format!("ip {}", std::net::Ipv4Addr::from(ip))
            }
            4 => {
                let mut ip = [0u8; 16];
                client.read_exact(&mut ip).await?;
                format!("ip {}", std::net::Ipv6Addr::from(ip))
            }
            _ => {
                let mut len = [0u8; 1];
                client.read_exact(&mut len).await?;
                let mut name = vec![0u8; usize::from(len[0])];
                client.read_exact(&mut name).await?;
                format!("name {}", String::from_utf8_lossy(&name))
            }
        };
        let mut port = [0u8; 2];
        client.read_exact(&mut port).await?;
        asked
            .lock()
            .unwrap()
            .push(format!("{target}:{}", u16::from_be_bytes(port)));
        let mut server = TcpStream::connect(route_to).await?;
        client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        Ok(())
    }

    #[tokio::test]
    async fn socks5h_lets_the_proxy_resolve_the_name() {
        let server = echo_demo_server().await;
        let port = server.local_addr().port();
        let (addr, asked) = socks_server(server.local_addr(), None).await;
        let proxy = Proxy::new(&format!("socks5h://{addr}")).unwrap();
        let session = connect_through(format!("ws://localhost:{port}/echo"), proxy)
            .await
            .expect("a session through SOCKS5");
        echo(session).await;
        assert_eq!(*asked.lock().unwrap(), [format!("name localhost:{port}")]);
    }

    #[tokio::test]
    async fn socks5_resolves_the_name_itself() {
        let server = echo_demo_server().await;
        let port = server.local_addr().port();
        let (addr, asked) = socks_server(server.local_addr(), None).await;
        let proxy = Proxy::new(&format!("socks5://{addr}")).unwrap();
        let session = connect_through(format!("ws://localhost:{port}/echo"), proxy)
            .await
            .expect("a session through SOCKS5");
        echo(session).await;
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "{asked:?}");
        let ip = asked[0]
            .strip_prefix("ip ")
            .expect("an address, not a name");
        assert!(ip.ends_with(&format!(":{port}")), "{asked:?}");
    }

    #[tokio::test]
    async fn socks5_credentials_are_sent_and_a_refusal_asks_for_them() {
        let server = echo_demo_server().await;
        let url = common::ws_url(&server, "/echo");
        let (addr, _) = socks_server(server.local_addr(), Some(("alice", "s3 cret"))).await;
        let good = Proxy::new(&format!("socks5h://alice:s3%20cret@{addr}")).unwrap();
        echo(connect_through(url.clone(), good).await.unwrap()).await;
        let wrong = Proxy::new(&format!("socks5h://{addr}"))
            .unwrap()
            .basic_auth("alice", "hunter2");
        for given in [Proxy::new(&format!("socks5h://{addr}")).unwrap(), wrong] {
            match connect_through(url.clone(), given).await {
                Err(Error::ProxyAuthenticationRequired { proxy }) => {
                    assert_eq!(proxy, format!("socks5h://{addr}"));
                }
                other => panic!("expected a refusal of credentials, got {other:?}"),
            }
        }
    }
}
