//! TLS for `wss://` in the native client: rustls with the ring provider.

use std::io;
use std::sync::{Arc, OnceLock};

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The configuration a client uses unless given its own: the Mozilla root
/// certificates (webpki-roots), TLS 1.2 and 1.3. Made once per process.
fn default_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            // The provider named here, not the process default: another
            // crate in the program may have enabled a second one, and then
            // there is no default.
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Runs the TLS handshake with `host` over `tcp`, verifying its certificate
/// against `config`'s roots (the default ones when `None`).
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<ClientConfig>>,
) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?}: {e}")))?;
    let connector = TlsConnector::from(config.unwrap_or_else(default_config));
    connector.connect(name, tcp).await
}
