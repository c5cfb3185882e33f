//! An HTTP CONNECT proxy on 127.0.0.1 for the proxy tests: it records the
//! request heads it receives and answers as its [`Mode`] says.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the proxy answers a `CONNECT`.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Opens the tunnel: 200, then bytes both ways.
    Open,
    /// Opens it only for this `Proxy-Authorization` value; 407 otherwise.
    RequireAuth(&'static str),
    /// Answers with this status and closes.
    Refuse(u16),
    /// Answers 200 and these bytes in one write, as if the server had
    /// spoken in the same packet, then reads until the client goes.
    Coalesce(&'static [u8]),
    /// Reads and never answers.
    Silent,
}

/// A running proxy; it serves until the test ends.
pub struct TestProxy {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl TestProxy {
    /// A proxy on a free port of 127.0.0.1.
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, mode.clone(), seen.clone()));
            }
        });
        Self { addr, heads }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request heads received so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve(mut client: TcpStream, mode: Mode, heads: Arc<Mutex<Vec<String>>>) {
    // A byte at a time: nothing of the tunnel is read with the head.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    heads.lock().unwrap().push(head.clone());
    let target = head
        .split_whitespace()
        .nth(1)
        .expect("a request target")
        .to_owned();
    let authorization = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    match mode {
        Mode::RequireAuth(expected) if authorization.as_deref() != Some(expected) => {
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
        }
        Mode::Open | Mode::RequireAuth(_) => {
            let Ok(mut server) = TcpStream::connect(&target).await else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_ok()
            {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        }
        Mode::Refuse(status) => {
            let answer = format!("HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\n\r\n");
            let _ = client.write_all(answer.as_bytes()).await;
        }
        Mode::Coalesce(bytes) => {
            let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
            answer.extend_from_slice(bytes);
            if client.write_all(&answer).await.is_ok() {
                let _ = client.read_to_end(&mut Vec::new()).await;
            }
        }
        Mode::Silent => {
            let _ = client.read_to_end(&mut Vec::new()).await;
        }
    }
}
