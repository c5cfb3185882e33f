//! wss:// for the servers under test: one rustls `ServerConfig` (the ring
//! provider, rustls's safe defaults: TLS 1.3 first, the same cipher suites
//! and key exchanges) given to every server alike, with a self-signed
//! certificate generated at start (`rcgen`, ECDSA P-256, for `localhost`).
//!
//! The load generator does not check the certificate (see its
//! `AnyCertificate`), so no file passes between the two.

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The server configuration every server gets with `--tls`: built as
/// tandem's `Server::tls_config` documentation shows, at rustls's defaults.
pub fn server_config() -> std::io::Result<Arc<ServerConfig>> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(std::io::Error::other)?;
    Ok(Arc::new(config))
}
