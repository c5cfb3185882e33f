//! `wss://`: the echo demo over TLS with tandem's server behind a TLS
//! terminator (as it often runs in production, behind a proxy) and with the
//! server's own TLS, and a certificate the client does not trust. Each
//! test makes a self-signed certificate for `127.0.0.1`.
#![cfg(all(not(target_arch = "wasm32"), feature = "tls"))]

mod common;

use std::net::SocketAddr;

use common::tls::{echo_demo_server_over_tls, self_signed, trusting};
use common::{echo_demo_server, next_text, within};
use tandem::rustls::pki_types::CertificateDer;
use tandem::server::Server;
use tandem::{ClientBuilder, CloseCode, Error};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Accepts TLS on 127.0.0.1 with a new self-signed certificate and relays
/// each connection to `backend` in plain TCP. Returns the port and the
/// certificate.
async fn tls_terminator(backend: SocketAddr) -> (u16, CertificateDer<'static>) {
    let (cert, config) = self_signed();
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, cert)
}

/// Runs the echo demo over `wss://127.0.0.1:{port}`, trusting `cert`.
async fn echo_demo_over_wss(port: u16, cert: CertificateDer<'static>) {
    let mut session = within(
        "connect over TLS",
        ClientBuilder::new(format!("wss://127.0.0.1:{port}/echo"))
            .tls_config(trusting(cert))
            .connect(),
    )
    .await
    .expect("a wss:// connection to a certificate the client trusts");
    assert_eq!(next_text(&mut session).await, "Please enter your name");
    session.send("Ktor").await.unwrap();
    assert_eq!(next_text(&mut session).await, "Hi, Ktor!");
    // A message larger than a TLS record (16 KiB) comes back whole.
    let long = "x".repeat(100_000);
    session.send(long.clone()).await.unwrap();
    assert_eq!(next_text(&mut session).await, format!("Hi, {long}!"));
    session.send("bye").await.unwrap();
    let reason = within("the server's close", session.close_reason()).await;
    assert_eq!(reason.code, CloseCode::Normal);
    assert_eq!(reason.message, "Client said BYE");
}

#[tokio::test]
async fn the_echo_demo_runs_over_wss_behind_a_tls_terminator() {
    let server = echo_demo_server().await;
    let (port, cert) = tls_terminator(server.local_addr()).await;
    echo_demo_over_wss(port, cert).await;
}

#[tokio::test]
async fn the_echo_demo_runs_over_wss_on_the_servers_own_tls() {
    let (cert, config) = self_signed();
    let server = echo_demo_server_over_tls(config).await;
    // A client that does not speak TLS gets no session.
    let plain = within(
        "connect without TLS",
        tandem::connect(&format!("ws://{}/echo", server.local_addr())),
    )
    .await;
    assert!(matches!(plain, Err(Error::Handshake(_))), "{plain:?}");
    assert_eq!(server.session_count(), 0);
    echo_demo_over_wss(server.local_addr().port(), cert).await;
}

#[tokio::test]
async fn a_certificate_the_client_does_not_trust_fails_the_connection() {
    let server = echo_demo_server().await;
    let (port, _cert) = tls_terminator(server.local_addr()).await;
    // The default roots are the Mozilla ones: a self-signed certificate is
    // not among them.
    let result = within(
        "connect over TLS",
        tandem::connect(&format!("wss://127.0.0.1:{port}/echo")),
    )
    .await;
    match result {
        Err(Error::Io(error)) => {
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
            assert!(error.to_string().contains("certificate"), "{error}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tls_handshake_under_way_holds_a_place_and_a_connection_over_the_cap_is_closed() {
    let (cert, config) = self_signed();
    let server = Server::new()
        .tls_config(config)
        .max_connections(Some(1))
        .web_socket("/echo", tandem::demo::echo)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let port = server.local_addr().port();
    // A client that connects and never starts its TLS handshake.
    let silent = within("connect", TcpStream::connect(server.local_addr()))
        .await
        .unwrap();
    within("the silent client to be counted", async {
        while server.connection_count() < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    let over = within(
        "connect over the cap",
        ClientBuilder::new(format!("wss://127.0.0.1:{port}/echo"))
            .tls_config(trusting(cert.clone()))
            .connect(),
    )
    .await;
    assert!(over.is_err(), "a connection over the cap must be closed");
    drop(silent);
    within("the place to be freed", async {
        while server.connection_count() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    echo_demo_over_wss(port, cert).await;
}
