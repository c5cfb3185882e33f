//! The proxy environment variables, really set: `http_proxy` sends a
//! `ws://` connection through the proxy, `no_proxy` and
//! `ClientBuilder::no_proxy` go around it. One test alone in its binary,
//! as it changes the process's environment; the rules themselves are unit
//! tests in src/native/proxy/env.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::proxy::{Mode, TestProxy};
use common::{echo_demo_server, next_text, within};
use tandem::ClientBuilder;

const VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Connects as `builder` says and checks that the echo demo answers.
async fn greeted(builder: ClientBuilder) {
    let mut session = within("connect", builder.connect())
        .await
        .expect("a session");
    assert_eq!(next_text(&mut session).await, "Please enter your name");
}

#[test]
fn http_proxy_is_used_for_ws_unless_no_proxy_says_otherwise() {
    // Set before the runtime starts a thread, and only in this binary.
    for name in VARIABLES {
        std::env::remove_var(name);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = echo_demo_server().await;
        let url = common::ws_url(&server, "/echo");
        let proxy = TestProxy::start(Mode::Open).await;
        let through = format!("CONNECT {} HTTP/1.1\r\n", server.local_addr());

        std::env::set_var("http_proxy", proxy.url());
        // The one for wss:// is not read for ws://.
        std::env::set_var("HTTPS_PROXY", "http://127.0.0.1:9");
        greeted(ClientBuilder::new(&url)).await;
        let heads = proxy.heads();
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert!(heads[0].starts_with(&through), "{heads:?}");

        std::env::set_var("NO_PROXY", "localhost, 127.0.0.1");
        greeted(ClientBuilder::new(&url)).await;
        assert_eq!(proxy.heads().len(), 1, "no_proxy lists 127.0.0.1");

        std::env::remove_var("NO_PROXY");
        greeted(ClientBuilder::new(&url).no_proxy()).await;
        assert_eq!(proxy.heads().len(), 1, "no_proxy() ignores http_proxy");

        greeted(ClientBuilder::new(&url)).await;
        assert_eq!(proxy.heads().len(), 2, "http_proxy again");
    });
}
