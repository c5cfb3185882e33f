//! Self-signed certificates for the `wss://` tests: a server configuration
//! that presents one for `127.0.0.1`, and a client configuration that
//! trusts it alone.

use std::sync::Arc;

use tandem::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tandem::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tandem::server::{RunningServer, Server};

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A new self-signed certificate for `127.0.0.1`, and a server
/// configuration that presents it.
pub fn self_signed() -> (CertificateDer<'static>, Arc<ServerConfig>) {
    self_signed_for("127.0.0.1")
}

/// The same for `name` (a host name or an IP address) alone.
pub fn self_signed_for(name: &str) -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
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
    (cert, Arc::new(config))
}

/// A client configuration that trusts `cert` alone.
pub fn trusting(cert: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The echo demo at `/echo` on a free port of 127.0.0.1, over TLS with
/// `config`.
pub async fn echo_demo_server_over_tls(config: Arc<ServerConfig>) -> RunningServer {
    Server::new()
        .tls_config(config)
        .web_socket("/echo", tandem::demo::echo)
        .bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}
