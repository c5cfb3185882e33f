//! A private `redis-server` for a test: on a free port of 127.0.0.1, its
//! data (the append-only file, fsynced at every write) in a temporary
//! folder, stopped by killing the child process it is, never by name.
//! Without `redis-server` on PATH the test fails and says how to get it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `redis-server` child process that this test started.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub async fn start() -> Self {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().unwrap().port()
        };
        let mut server = Self {
            port,
            dir: tempfile::tempdir().expect("a temporary folder"),
            child: None,
        };
        server.restart().await;
        server
    }

    /// The URL of it, for `RedisBackplane::builder`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it (SIGKILL: what it wrote is in the append-only file, fsynced
    /// at each write, and nothing else) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, with the same data; waits until
    /// it answers.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): the Redis tests need it on PATH; \
                     scripts/test.sh installs it (apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            if self.answers().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        panic!("redis-server on port {} did not answer: {log}", self.port);
    }

    /// Whether it answers PING with PONG (not LOADING, not refused).
    async fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
    }

    /// Runs one command with `redis-cli` and returns its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (Debian's redis-tools, which redis-server brings)");
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP relay in front of a Redis that can lose one reply: the next
/// bytes Redis sends after [`cut_next_reply`](ReplyCutter::cut_next_reply)
/// are dropped along with the connection, as when Redis goes away between
/// doing a command and answering it.
pub struct ReplyCutter {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    relay: tokio::task::JoinHandle<()>,
}

impl ReplyCutter {
    pub async fn start(redis: &RedisServer) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream_port = redis.port;
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cutting = cut.clone();
        let relay = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                let cut = cutting.clone();
                tokio::spawn(async move {
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_redis, mut to_redis) = upstream.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_client, &mut to_redis).await;
                    });
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from_redis.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if cut.swap(false, Ordering::SeqCst) {
                            break;
                        }
                        if to_client.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    requests.abort();
                });
            }
        });
        Self { port, cut, relay }
    }

    /// The URL of the relay.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Drops the next reply, and its connection.
    pub fn cut_next_reply(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for ReplyCutter {
    fn drop(&mut self) {
        self.relay.abort();
    }
}
