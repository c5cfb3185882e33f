//! `wss://` in the native client: the echo demo over TLS, and a certificate
//! that does not verify. The server is tandem's behind a TLS terminator, as
//! it usually runs in production (behind a proxy), with a self-signed
//! certificate made for the test.
#![cfg(all(not(target_arch = "wasm32"), feature = "tls"))]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{next_text, within};
use tandem::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tandem::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tandem::server::{RunningServer, Server};
use tandem::{ClientBuilder, CloseCode, Error};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

async fn echo_demo_server() -> RunningServer {
    Server::new()
        .web_socket("/echo", tandem::demo::echo)
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts TLS on 127.0.0.1 with a new self-signed certificate for
/// `127.0.0.1`, and relays each connection to `backend` in plain TCP.
/// Returns the port and the certificate.
async fn tls_terminator(backend: SocketAddr) -> (u16, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
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

/// A client configuration that trusts `cert` alone.
fn trusting(cert: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[tokio::test]
async fn the_echo_demo_runs_over_wss() {
    let server = echo_demo_server().await;
    let (port, cert) = tls_terminator(server.local_addr()).await;
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
