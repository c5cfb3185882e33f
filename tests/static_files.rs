//! Static files as a browser meets them: files and folders, what is never
//! served (paths out of the folder, through `..` or a symbolic link, and
//! hidden files), the headers on every file, `HEAD`, ranges, revalidation,
//! precompressed files, and a large file streamed rather than loaded.
#![cfg(not(target_arch = "wasm32"))]

mod common;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::net::SocketAddr;
use std::path::Path;

use common::{http_exchange, within, HttpResponse};
use counting_alloc::Counting;
use tandem::server::{RunningServer, Server};
use tandem::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

async fn start(server: Server) -> RunningServer {
    server.bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

/// A server of `www` at `/`.
async fn serving(www: &Path) -> RunningServer {
    start(Server::new().static_files("/", www)).await
}

/// `GET path` with `extra` header lines (each ending in CRLF).
async fn get(addr: SocketAddr, path: &str, extra: &str) -> HttpResponse {
    http_exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n"),
    )
    .await
}

/// A folder `www` with an `index.html`, and a `secret.txt` next to it.
fn site() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let www = root.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>tandem</h1>\n").unwrap();
    std::fs::write(root.path().join("secret.txt"), "do not serve\n").unwrap();
    (root, www)
}

#[tokio::test]
async fn static_files_are_served_and_traversal_is_refused() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let www = root.path().join("www");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::write(www.join("index.html"), "<h1>tandem</h1>\n").unwrap();
    std::fs::write(www.join("sub").join("page.txt"), "a page\n").unwrap();
    std::fs::write(www.join("app.js"), "console.log(1)\n").unwrap();
    std::fs::write(root.path().join("secret.txt"), "do not serve\n").unwrap();

    let server = start(
        Server::new()
            .web_socket("/ws", |_session: Session| async {})
            .static_files("/", &www),
    )
    .await;
    let addr = server.local_addr();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");

    let response = http_exchange(addr, &get("/")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), "<h1>tandem</h1>\n");
    assert!(response
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));

    let response = http_exchange(addr, &get("/index.html")).await;
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "<h1>tandem</h1>\n")
    );

    let response = http_exchange(addr, &get("/sub/page.txt")).await;
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "a page\n")
    );

    let response = http_exchange(addr, &get("/app.js")).await;
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/javascript")));

    for path in [
        "/missing.html",
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
    ] {
        let response = http_exchange(addr, &get(path)).await;
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert!(!response.body_text().contains("do not serve"), "{path}");
    }

    // The WebSocket route still wins over the files for its own path.
    let response = http_exchange(addr, &get("/ws")).await;
    assert_eq!(response.status, 426);
    server.shutdown().await;
}

#[tokio::test]
async fn hidden_files_and_folders_are_not_served() {
    let (_root, www) = site();
    std::fs::write(www.join(".env"), "TOKEN=hunter2\n").unwrap();
    std::fs::create_dir_all(www.join(".git")).unwrap();
    std::fs::write(www.join(".git").join("config"), "[core]\n").unwrap();
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::write(www.join("sub").join(".hidden"), "hidden\n").unwrap();
    std::fs::write(www.join("sub").join("visible.txt"), "visible\n").unwrap();
    let server = serving(&www).await;
    let addr = server.local_addr();
    for path in ["/.env", "/.git/config", "/sub/.hidden", "/%2eenv", "/.git/"] {
        let response = get(addr, path, "").await;
        assert_eq!(response.status, 404, "{path}: {response:?}");
    }
    // A name with a dot inside is an ordinary file.
    let response = get(addr, "/sub/visible.txt", "").await;
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "visible\n")
    );
    server.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_symbolic_link_out_of_the_folder_is_not_followed() {
    use std::os::unix::fs::symlink;
    let (root, www) = site();
    symlink(root.path().join("secret.txt"), www.join("leak.txt")).unwrap();
    symlink(root.path(), www.join("up")).unwrap();
    // Links that stay inside the folder are served.
    symlink(www.join("index.html"), www.join("alias.html")).unwrap();
    let server = serving(&www).await;
    let addr = server.local_addr();
    // Made while the server runs: checked when it is asked for.
    symlink("../secret.txt", www.join("late.txt")).unwrap();
    for path in ["/leak.txt", "/up/secret.txt", "/late.txt"] {
        let response = get(addr, path, "").await;
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert!(!response.body_text().contains("do not serve"), "{path}");
    }
    let response = get(addr, "/alias.html", "").await;
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "<h1>tandem</h1>\n")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn every_file_response_says_nosniff_and_no_cache() {
    let (_root, www) = site();
    let server = serving(&www).await;
    let addr = server.local_addr();
    let response = get(addr, "/index.html", "").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // A copy that is still current is revalidated: 304, with no body.
    let modified = response
        .header("last-modified")
        .expect("a Last-Modified")
        .to_owned();
    let again = get(
        addr,
        "/index.html",
        &format!("If-Modified-Since: {modified}\r\n"),
    )
    .await;
    assert_eq!(again.status, 304, "{again:?}");
    assert!(again.body.is_empty());
    assert_eq!(again.header("x-content-type-options"), Some("nosniff"));
    server.shutdown().await;
}

#[tokio::test]
async fn head_gives_the_headers_of_get_and_no_body() {
    let (_root, www) = site();
    let server = serving(&www).await;
    let addr = server.local_addr();
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let head = format!("HEAD /index.html HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    within("write", stream.write_all(head.as_bytes()))
        .await
        .unwrap();
    let mut answer = Vec::new();
    within("the answer", stream.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length = "<h1>tandem</h1>\n".len();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {length}")),
        "the length of the file GET would send: {head}"
    );
    assert_eq!(body, "", "no body after the head");
    server.shutdown().await;
}

#[tokio::test]
async fn ranges_and_precompressed_files_are_served() {
    let (_root, www) = site();
    std::fs::write(www.join("app.js"), "console.log('tandem');\n").unwrap();
    // Not real gzip: what matters is which file is sent.
    std::fs::write(www.join("app.js.gz"), "GZIPPED").unwrap();
    let server = serving(&www).await;
    let addr = server.local_addr();
    let response = get(addr, "/app.js", "Range: bytes=0-6\r\n").await;
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (206, "console")
    );
    let response = get(addr, "/app.js", "Accept-Encoding: gzip\r\n").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(response.body_text(), "GZIPPED");
    assert!(response
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/javascript")));
    let response = get(addr, "/app.js", "").await;
    assert_eq!(response.header("content-encoding"), None);
    assert_eq!(response.body_text(), "console.log('tandem');\n");
    server.shutdown().await;
}

#[tokio::test]
async fn a_folder_without_its_slash_is_redirected_under_its_prefix() {
    let (_root, www) = site();
    std::fs::create_dir_all(www.join("docs")).unwrap();
    std::fs::write(www.join("docs").join("index.html"), "docs\n").unwrap();
    let server = start(Server::new().static_files("/site", &www)).await;
    let addr = server.local_addr();
    let response = get(addr, "/site/docs", "").await;
    assert_eq!(response.status, 307, "{response:?}");
    assert_eq!(response.header("location"), Some("/site/docs/"));
    let response = get(addr, "/site/docs/", "").await;
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "docs\n")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_large_file_is_streamed_not_loaded_into_memory() {
    const SIZE: u64 = 128 << 20;
    let (_root, www) = site();
    common::sparse_file(&www, "big.bin", SIZE);
    let server = serving(&www).await;
    let addr = server.local_addr();
    let before = counting_alloc::start();
    let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
    let get = format!("GET /big.bin HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    within("write", stream.write_all(get.as_bytes()))
        .await
        .unwrap();
    let (response, early) = within("the head", common::read_response_head(&mut stream)).await;
    assert_eq!(response.status, 200);
    let mut received = early.len() as u64;
    let mut chunk = vec![0u8; 64 * 1024];
    within("the whole file", async {
        loop {
            match stream.read(&mut chunk).await.unwrap() {
                0 => break,
                n => received += n as u64,
            }
        }
    })
    .await;
    assert_eq!(received, SIZE);
    let (_, peak) = counting_alloc::since(before);
    assert!(
        peak < 16 << 20,
        "serving a {SIZE}-byte file took {peak} bytes of memory at its peak"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_folder_given_as_a_relative_path_is_served() {
    // The demo server's `static_files("/", "www")`, run from the repository
    // root as `cargo test` runs this file.
    let server = start(Server::new().static_files("/", "www")).await;
    let page = get(server.local_addr(), "/", "").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body_text().contains("<html"), "{}", page.body_text());
    let script = get(server.local_addr(), "/app.js", "").await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    server.shutdown().await;
}
