//! A neutral WebSocket load generator: raw non-blocking TCP (mio), no
//! WebSocket library, nothing of tandem.
//!
//! ```text
//! loadgen echo      --addr 127.0.0.1:9100 --connections 100 --size 20 --window 1 --duration 10 --warmup 2
//! loadgen idle      --addr 127.0.0.1:9100 --connections 10000 --server-pid PID
//! loadgen broadcast --addr 127.0.0.1:9100 --connections 1000 --size 64 --duration 5
//! loadgen broadcast --addrs 127.0.0.1:9101,127.0.0.1:9102 --server-pid A --server-pid B --redis-pid R
//! ```
//!
//! Several servers (`--addr` given more than once, or `--addrs A,B,…`):
//! connection `i` goes to the `i % n`-th of them, round-robin (connection 0,
//! the broadcast's sender, to the first). `--server-pid`, also repeatable,
//! names the server processes whose CPU time (utime + stime, from
//! `/proc/PID/stat`) is summed; `--redis-pid` one more process whose CPU
//! time is reported on its own (broadcast: per message published).
//!
//! - **echo**: every connection keeps `window` messages in flight (a closed
//!   loop). Each message is one masked text frame encoded before the run
//!   (a ring of 64 different payloads, so that a server that mixed messages
//!   up would be caught); every echo is compared byte for byte, header
//!   included, with the unmasked frame expected next on that connection.
//!   Round trips are timed from the moment a frame is queued to the moment
//!   its whole echo has arrived.
//! - **idle**: opens the connections, lets them sit, and reports the
//!   server's resident memory per connection (RSS delta / count, from
//!   `/proc/PID/status`).
//! - **broadcast**: one connection sends a text (`--window N`: N texts at
//!   once); the server relays it to every session. Each round waits until
//!   every connection has it (checked byte for byte, the N in order), on
//!   every server, then the next round starts. Reports
//!   deliveries/s, the time until the last client had the message (median,
//!   p99 and worst of the rounds; and the median for each server's last
//!   client), and the servers' CPU per delivery.
//!
//! `--tls on` (echo and idle) speaks wss://: TLS through rustls's sans-I/O
//! `ClientConnection` over the same mio sockets (the ring provider at its
//! defaults, as the servers: TLS 1.3), frames and checks unchanged inside
//! it. The server's certificate is not checked (the bench's servers make a
//! self-signed one at start); its handshake signature is. Without it, no
//! TLS code runs: one test of an `Option` per read and per write.
//!
//! Every run is bounded in time and stops by itself. The summary goes to
//! stderr, one JSON object to stdout. Exit status 1 on any mismatch,
//! handshake failure or lost connection.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const RING: usize = 64;
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#[derive(Clone)]
struct Args {
    mode: String,
    /// The servers; connection `i` goes to `addrs[i % addrs.len()]`.
    addrs: Vec<SocketAddr>,
    path: String,
    connections: usize,
    size: usize,
    window: usize,
    duration: f64,
    warmup: f64,
    settle: f64,
    hold: f64,
    /// The server processes whose CPU time is summed.
    server_pids: Vec<u32>,
    /// A backplane (Redis) whose CPU time is reported apart.
    redis_pid: Option<u32>,
    max_handshakes: usize,
    label: String,
    /// Offer permessage-deflate (as browsers do) and send compressed frames.
    deflate: bool,
    /// wss://: the TLS client configuration every connection starts from.
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn parse_args() -> Args {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().unwrap_or_else(|| usage("a mode is needed"));
    if !matches!(mode.as_str(), "echo" | "idle" | "broadcast") {
        usage("the mode is echo, idle or broadcast");
    }
    let mut a = Args {
        mode,
        addrs: Vec::new(),
        path: "/".into(),
        connections: 100,
        size: 20,
        window: 1,
        duration: 10.0,
        warmup: 2.0,
        settle: 2.0,
        hold: 0.0,
        server_pids: Vec::new(),
        redis_pid: None,
        max_handshakes: 64,
        label: String::new(),
        deflate: false,
        tls: None,
    };
    while let Some(arg) = argv.next() {
        let v = argv
            .next()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--addr" => a
                .addrs
                .push(v.parse().unwrap_or_else(|_| usage("bad --addr"))),
            "--addrs" => {
                for one in v.split(',').filter(|one| !one.is_empty()) {
                    a.addrs
                        .push(one.parse().unwrap_or_else(|_| usage("bad --addrs")));
                }
            }
            "--path" => a.path = v,
            "--connections" | "-c" => a.connections = num(&arg, &v),
            "--size" | "-s" => a.size = num(&arg, &v),
            "--window" | "-w" => a.window = num(&arg, &v),
            "--duration" | "-d" => a.duration = num(&arg, &v),
            "--warmup" => a.warmup = num(&arg, &v),
            "--settle" => a.settle = num(&arg, &v),
            "--hold" => a.hold = num(&arg, &v),
            "--server-pid" => a.server_pids.push(num(&arg, &v)),
            "--redis-pid" => a.redis_pid = Some(num(&arg, &v)),
            "--max-handshakes" => a.max_handshakes = num(&arg, &v),
            "--label" => a.label = v,
            "--deflate" => a.deflate = matches!(v.as_str(), "on" | "1" | "yes" | "true"),
            "--tls" => {
                if matches!(v.as_str(), "on" | "1" | "yes" | "true") {
                    a.tls = Some(tls_client_config());
                }
            }
            other => usage(&format!("unknown option {other}")),
        }
    }
    if a.tls.is_some() && a.mode == "broadcast" {
        usage("--tls: echo and idle");
    }
    if a.addrs.is_empty() {
        a.addrs.push("127.0.0.1:9100".parse().unwrap());
    }
    if a.connections == 0 || a.window == 0 || a.max_handshakes == 0 {
        usage("--connections, --window and --max-handshakes must be at least 1");
    }
    if !(a.duration > 0.0 && a.duration <= 3600.0 && a.warmup >= 0.0 && a.hold <= 3600.0) {
        usage("--duration must be in (0, 3600] s, --warmup >= 0, --hold <= 3600 s");
    }
    a
}

fn num<T: std::str::FromStr>(arg: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| usage(&format!("bad value for {arg}: {value}")))
}

fn usage(problem: &str) -> ! {
    eprintln!("loadgen: {problem}");
    eprintln!(
        "usage: loadgen echo|idle|broadcast [--addr 127.0.0.1:9100]... [--addrs A,B] [--path /] \
         [--connections N] [--size BYTES] [--window N] [--duration S] [--warmup S] \
         [--settle S] [--hold S] [--server-pid PID]... [--redis-pid PID] [--max-handshakes N] \
         [--label TEXT] [--deflate on|off] [--tls on|off]"
    );
    std::process::exit(2)
}

// ----- frames -------------------------------------------------------------------

/// A masked client text frame carrying `payload`.
fn masked_frame(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut f = header(payload.len(), true);
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    f
}

/// The unmasked server text frame carrying `payload`.
fn plain_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = header(payload.len(), false);
    f.extend_from_slice(payload);
    f
}

/// A masked client text frame carrying `payload` compressed with
/// permessage-deflate (RSV1; each message on its own, which a client may
/// always do).
fn masked_deflated_frame(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut compressor = flate2::Compress::new(flate2::Compression::new(6), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    compressor
        .compress_vec(payload, &mut out, flate2::FlushCompress::Sync)
        .expect("deflate");
    assert!(
        out.ends_with(&[0, 0, 0xff, 0xff]),
        "a sync flush ends with 00 00 ff ff"
    );
    out.truncate(out.len() - 4);
    let mut f = masked_frame(&out, key);
    f[0] |= 0x40;
    f
}

/// Inflates a permessage-deflate payload (RFC 7692 §7.2.2).
fn inflate(payload: &[u8]) -> Option<Vec<u8>> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut d = flate2::Decompress::new(false);
    loop {
        let before = d.total_in();
        d.decompress_vec(
            &input[d.total_in() as usize..],
            &mut out,
            flate2::FlushDecompress::Sync,
        )
        .ok()?;
        if d.total_in() as usize == input.len() {
            return Some(out);
        }
        if d.total_in() == before && out.len() < out.capacity() {
            return None;
        }
        out.reserve(out.capacity().max(64));
    }
}

/// Takes one whole unmasked server frame off the front of `buf`:
/// (first byte, payload), or `None` when it has not all arrived.
fn take_frame(buf: &[u8], at: &mut usize) -> Option<(u8, std::ops::Range<usize>)> {
    let b = &buf[*at..];
    if b.len() < 2 {
        return None;
    }
    let (len, hl) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if b.len() < hl + len {
        return None;
    }
    let start = *at + hl;
    let first = b[0];
    *at = start + len;
    Some((first, start..start + len))
}

fn header(len: usize, masked: bool) -> Vec<u8> {
    let m = if masked { 0x80 } else { 0 };
    let mut h = vec![0x81];
    match len {
        0..=125 => h.push(m | len as u8),
        126..=0xFFFF => {
            h.push(m | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(m | 127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h
}

/// ASCII text of `size` bytes that differs with `seed`.
fn payload(size: usize, seed: usize) -> Vec<u8> {
    let stamp = format!("#{seed:08}:");
    (0..size)
        .map(|i| match stamp.as_bytes().get(i) {
            Some(&b) => b,
            None => b'a' + ((i + seed * 7) % 26) as u8,
        })
        .collect()
}

fn key_for(seed: usize) -> [u8; 4] {
    let x = (seed as u32).wrapping_mul(0x9E37_79B9) ^ 0xA5A5_5A5A;
    x.to_le_bytes()
}

// ----- connections --------------------------------------------------------------

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
    Connecting,
    Handshaking,
    Open,
    Closed,
}

struct Conn {
    stream: TcpStream,
    /// wss://: the TLS state between the socket and the bytes below.
    tls: Option<Box<rustls::ClientConnection>>,
    phase: Phase,
    wbuf: Vec<u8>,
    wpos: usize,
    hbuf: Vec<u8>,
    /// Received bytes not yet checked (compressed echoes are parsed frame
    /// by frame).
    rbuf: Vec<u8>,
    /// Ring index of the next message to send.
    next_send: usize,
    /// Ring index (echo) or round (broadcast) expected next, and how many of
    /// its bytes have matched.
    next_expect: usize,
    expect_off: usize,
    sent_at: VecDeque<Instant>,
}

impl Conn {
    fn queue(&mut self, bytes: &[u8]) {
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        self.wbuf.extend_from_slice(bytes);
    }

    /// Writes what is queued; `Ok(false)` when the socket is full.
    fn flush(&mut self) -> io::Result<bool> {
        if let Some(tls) = &mut self.tls {
            if self.wpos < self.wbuf.len() {
                // rustls takes it all (no buffer limit): sealed into
                // records now, or once the TLS handshake is done.
                self.wpos += tls.writer().write(&self.wbuf[self.wpos..])?;
            }
            return write_tls(tls, &mut self.stream);
        }
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads what has arrived: `Ok(0)` at the end of the stream,
    /// `WouldBlock` when nothing more is there. Over TLS, the plaintext
    /// (records are read and opened until one yields some, and what the TLS
    /// handshake answers is written).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets().map_err(io::Error::other)?;
            if tls.wants_write() {
                write_tls(tls, &mut self.stream)?;
            }
        }
    }

    /// Best effort: `bytes`, then the end of the stream (over TLS, with
    /// close_notify).
    fn send_last(&mut self, bytes: &[u8]) {
        match &mut self.tls {
            Some(tls) => {
                let _ = tls.writer().write(bytes);
                tls.send_close_notify();
                let _ = write_tls(tls, &mut self.stream);
            }
            None => {
                let _ = self.stream.write(bytes);
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}

/// Writes the TLS records `tls` has ready; `Ok(false)` when the socket is
/// full.
fn write_tls(tls: &mut rustls::ClientConnection, stream: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The load generator's TLS client: the ring provider at rustls's defaults
/// (what the servers have), any certificate accepted.
fn tls_client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts the bench server's self-signed certificate, whatever it is (it
/// is made anew at every start), and checks the handshake's signature
/// with it as any client would. For this benchmark on 127.0.0.1 only.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a run counts.
#[derive(Default)]
struct Stats {
    completed: u64,
    latencies_ns: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Stats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            eprintln!("loadgen: {what}");
            self.first_error = Some(what);
        }
    }
}

struct Net {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    /// The handshake request for each server (its Host differs).
    requests: Vec<Vec<u8>>,
    to_open: usize,
    handshaking: usize,
    open: usize,
    closed: usize,
    args: Args,
}

impl Net {
    /// Waits up to `timeout` for readiness; the tokens of the ready
    /// connections.
    fn ready(&mut self, timeout: Duration) -> Vec<usize> {
        self.poll
            .poll(&mut self.events, Some(timeout))
            .expect("poll");
        self.events.iter().map(|e| e.token().0).collect()
    }

    fn new(args: &Args) -> Net {
        let extensions = if args.deflate {
            // What browsers offer.
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        };
        let requests = args
            .addrs
            .iter()
            .map(|addr| {
                format!(
                    "GET {} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
                     Sec-WebSocket-Version: 13\r\n{extensions}\r\n",
                    args.path
                )
                .into_bytes()
            })
            .collect();
        Net {
            poll: Poll::new().expect("epoll"),
            events: Events::with_capacity(1024),
            conns: Vec::with_capacity(args.connections),
            scratch: vec![0; 256 * 1024],
            requests,
            to_open: args.connections,
            handshaking: 0,
            open: 0,
            closed: 0,
            args: args.clone(),
        }
    }

    fn start_connections(&mut self, stats: &mut Stats) {
        while self.to_open > 0 && self.handshaking < self.args.max_handshakes {
            self.to_open -= 1;
            let addr = self.args.addrs[self.conns.len() % self.args.addrs.len()];
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    let tls = match &self.args.tls {
                        Some(config) => {
                            let name = rustls::pki_types::ServerName::try_from("localhost")
                                .expect("a DNS name");
                            match rustls::ClientConnection::new(config.clone(), name) {
                                Ok(mut tls) => {
                                    tls.set_buffer_limit(None);
                                    Some(Box::new(tls))
                                }
                                Err(e) => {
                                    stats.error(format!("TLS: {e}"));
                                    continue;
                                }
                            }
                        }
                        None => None,
                    };
                    let token = Token(self.conns.len());
                    self.poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .expect("register");
                    self.conns.push(Conn {
                        stream,
                        tls,
                        phase: Phase::Connecting,
                        wbuf: Vec::new(),
                        wpos: 0,
                        hbuf: Vec::new(),
                        rbuf: Vec::new(),
                        next_send: 0,
                        next_expect: 0,
                        expect_off: 0,
                        sent_at: VecDeque::new(),
                    });
                    self.handshaking += 1;
                }
                Err(e) => stats.error(format!("connect: {e}")),
            }
        }
    }

    /// Opens every connection and completes its handshake.
    fn connect_all(&mut self, stats: &mut Stats, deadline: Instant) -> bool {
        self.start_connections(stats);
        while self.open + self.closed < self.conns.len() || self.to_open > 0 {
            if Instant::now() > deadline {
                stats.error(format!(
                    "only {} of {} connections opened in time",
                    self.open, self.args.connections
                ));
                return false;
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(100)))
                .expect("poll");
            let tokens: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for t in tokens {
                self.advance_handshake(t, stats);
            }
            self.start_connections(stats);
            if stats.errors > 0 {
                return false;
            }
        }
        true
    }

    fn advance_handshake(&mut self, t: usize, stats: &mut Stats) {
        let request = &self.requests[t % self.requests.len()];
        let c = &mut self.conns[t];
        if c.phase == Phase::Connecting {
            match c.stream.peer_addr() {
                Ok(_) => {
                    let _ = c.stream.set_nodelay(true);
                    c.phase = Phase::Handshaking;
                    c.queue(request);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => {
                    let e = c.stream.take_error().ok().flatten();
                    stats.error(format!("connect failed: {e:?}"));
                    c.phase = Phase::Closed;
                    self.closed += 1;
                    self.handshaking -= 1;
                    return;
                }
            }
        }
        if c.phase != Phase::Handshaking {
            return;
        }
        if let Err(e) = c.flush() {
            stats.error(format!("handshake write: {e}"));
            return;
        }
        loop {
            match c.recv(&mut self.scratch) {
                Ok(0) => {
                    stats.error("server closed during the handshake".into());
                    return;
                }
                Ok(n) => c.hbuf.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    stats.error(format!("handshake read: {e}"));
                    return;
                }
            }
        }
        if let Some(end) = c.hbuf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&c.hbuf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 101") || !head.contains(&ACCEPT.to_ascii_lowercase()) {
                stats.error(format!(
                    "handshake refused: {}",
                    head.lines().next().unwrap_or("")
                ));
                return;
            }
            let agreed = head.contains("sec-websocket-extensions: permessage-deflate");
            if agreed != self.args.deflate {
                stats.error(format!(
                    "permessage-deflate {}: {}",
                    if self.args.deflate {
                        "refused"
                    } else {
                        "answered, not offered"
                    },
                    head.lines()
                        .find(|l| l.contains("extensions"))
                        .unwrap_or("")
                ));
                return;
            }
            if c.hbuf.len() > end + 4 {
                stats.error("data before the first message".into());
                return;
            }
            c.hbuf = Vec::new();
            c.phase = Phase::Open;
            self.handshaking -= 1;
            self.open += 1;
        }
    }

    /// Best effort: a Close frame (1000), then the socket is dropped.
    fn close_all(&mut self) {
        let close = [0x88u8, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2];
        for c in &mut self.conns {
            c.send_last(&close);
        }
        std::thread::sleep(Duration::from_millis(200));
        self.conns.clear();
    }
}

// ----- measurements ---------------------------------------------------------------

fn cpu_self() -> Duration {
    // SAFETY: rusage is plain data (all zeros is a valid value) and
    // getrusage only writes into the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of another process from /proc/PID/stat (utime + stime).
fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// The CPU time of all of `pids`, summed; `None` for none, or when one
/// cannot be read.
fn cpu_of_all(pids: &[u32]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_of(pid)).sum()
}

/// Resident memory of a process in bytes, from /proc/PID/status.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

// ----- echo -----------------------------------------------------------------------

fn run_echo(args: &Args) -> i32 {
    let frames: Vec<Vec<u8>> = (0..RING)
        .map(|i| match args.deflate {
            true => masked_deflated_frame(&payload(args.size, i), key_for(i)),
            false => masked_frame(&payload(args.size, i), key_for(i)),
        })
        .collect();
    let payloads: Vec<Vec<u8>> = (0..RING).map(|i| payload(args.size, i)).collect();
    let expected: Vec<Vec<u8>> = (0..RING)
        .map(|i| plain_frame(&payload(args.size, i)))
        .collect();
    let mut stats = Stats::default();
    let mut net = Net::new(args);
    if !net.connect_all(&mut stats, Instant::now() + Duration::from_secs(60)) {
        return finish_error(args, &stats);
    }

    // Fill every window.
    for c in &mut net.conns {
        let now = Instant::now();
        for _ in 0..args.window {
            c.queue(&frames[c.next_send]);
            c.next_send = (c.next_send + 1) % RING;
            c.sent_at.push_back(now);
        }
        if let Err(e) = c.flush() {
            stats.error(format!("write: {e}"));
        }
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let measure_to = measure_from + Duration::from_secs_f64(args.duration);
    let drain_to = measure_to + Duration::from_secs(2);
    let mut recording = false;
    let mut sending = true;
    let mut cpu0 = Duration::ZERO;
    let mut server_cpu0 = None;
    let mut t0 = start;
    let mut measured_completed = 0u64;
    let mut measured_secs = args.duration;
    let mut cpu_used = Duration::ZERO;
    let mut server_cpu_used = None;
    let mut in_flight: usize = net.conns.len() * args.window;
    stats.latencies_ns.reserve(1 << 20);

    loop {
        let now = Instant::now();
        if !recording && sending && now >= measure_from {
            recording = true;
            stats.completed = 0;
            stats.latencies_ns.clear();
            cpu0 = cpu_self();
            server_cpu0 = cpu_of_all(&args.server_pids);
            t0 = now;
        }
        if recording && now >= measure_to {
            recording = false;
            sending = false;
            measured_secs = now.duration_since(t0).as_secs_f64();
            measured_completed = stats.completed;
            cpu_used = cpu_self().saturating_sub(cpu0);
            server_cpu_used = match (server_cpu0, cpu_of_all(&args.server_pids)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
        }
        if !sending && (in_flight == 0 || now >= drain_to) {
            break;
        }
        if stats.errors > 0 {
            break;
        }
        let timeout = Duration::from_millis(50);
        for t in net.ready(timeout) {
            let c = &mut net.conns[t];
            if c.phase != Phase::Open {
                continue;
            }
            let mut done = 0usize;
            let mut eof = false;
            loop {
                match c.recv(&mut net.scratch) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) if args.deflate => {
                        // Parse whole frames; inflate compressed ones and
                        // compare the text with what was sent.
                        c.rbuf.extend_from_slice(&net.scratch[..n]);
                        let mut at = 0;
                        while let Some((first, range)) = take_frame(&c.rbuf, &mut at) {
                            let body = &c.rbuf[range];
                            let text = if first & 0x40 != 0 {
                                inflate(body)
                            } else {
                                Some(body.to_vec())
                            };
                            if first & 0x0f != 1
                                || text.as_deref() != Some(&payloads[c.next_expect][..])
                            {
                                stats.error(format!(
                                    "connection {t}: echo {} differs from the message sent",
                                    c.next_expect
                                ));
                                break;
                            }
                            c.next_expect = (c.next_expect + 1) % RING;
                            done += 1;
                        }
                        c.rbuf.drain(..at);
                    }
                    Ok(n) => {
                        let mut data = &net.scratch[..n];
                        while !data.is_empty() {
                            let exp = &expected[c.next_expect];
                            let want = &exp[c.expect_off..];
                            let take = want.len().min(data.len());
                            if data[..take] != want[..take] {
                                stats.error(format!(
                                    "connection {t}: echo {} differs from the message sent",
                                    c.next_expect
                                ));
                                break;
                            }
                            data = &data[take..];
                            c.expect_off += take;
                            if c.expect_off == exp.len() {
                                c.expect_off = 0;
                                c.next_expect = (c.next_expect + 1) % RING;
                                done += 1;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        stats.error(format!("connection {t}: read: {e}"));
                        break;
                    }
                }
            }
            if done > 0 {
                let now = Instant::now();
                for _ in 0..done {
                    let sent = c.sent_at.pop_front().unwrap_or(now);
                    if recording {
                        let ns = now.duration_since(sent).as_nanos().min(u32::MAX as u128);
                        stats.latencies_ns.push(ns as u32);
                    }
                    stats.completed += 1;
                    in_flight -= 1;
                    if sending {
                        c.queue(&frames[c.next_send]);
                        c.next_send = (c.next_send + 1) % RING;
                        c.sent_at.push_back(now);
                        in_flight += 1;
                    }
                }
            }
            if eof {
                stats.error(format!("connection {t}: the server closed it"));
                c.phase = Phase::Closed;
                continue;
            }
            if let Err(e) = c.flush() {
                stats.error(format!("connection {t}: write: {e}"));
            }
        }
    }
    net.close_all();
    if stats.errors > 0 {
        return finish_error(args, &stats);
    }

    let mut lat = std::mem::take(&mut stats.latencies_ns);
    lat.sort_unstable();
    let rate = measured_completed as f64 / measured_secs;
    let cpu_pct = 100.0 * cpu_used.as_secs_f64() / measured_secs;
    let server_cpu_pct = server_cpu_used.map(|d| 100.0 * d.as_secs_f64() / measured_secs);
    let (p50, p99, p999) = (
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
    );
    eprintln!(
        "loadgen echo {}: {} conns x {} B, window {}: {:.0} msg/s, p50 {:.1} us, p99 {:.1} us, \
         p99.9 {:.1} us, loadgen CPU {:.0}%{}",
        args.label,
        args.connections,
        args.size,
        args.window,
        rate,
        p50,
        p99,
        p999,
        cpu_pct,
        server_cpu_pct.map_or(String::new(), |p| format!(", server CPU {p:.0}%"))
    );
    println!(
        "{{\"mode\":\"echo\",\"deflate\":{},\"tls\":{},\"label\":\"{}\",\"connections\":{},\"size\":{},\"window\":{},\
         \"seconds\":{:.3},\"messages\":{},\"msgs_per_sec\":{:.1},\"p50_us\":{:.2},\"p99_us\":{:.2},\
         \"p999_us\":{:.2},\"loadgen_cpu_pct\":{:.1},\"server_cpu_pct\":{},\"errors\":0}}",
        args.deflate,
        args.tls.is_some(),
        json_escape(&args.label),
        args.connections,
        args.size,
        args.window,
        measured_secs,
        measured_completed,
        rate,
        p50,
        p99,
        p999,
        cpu_pct,
        server_cpu_pct.map_or("null".into(), |p| format!("{p:.1}"))
    );
    0
}

fn finish_error(args: &Args, stats: &Stats) -> i32 {
    println!(
        "{{\"mode\":\"{}\",\"label\":\"{}\",\"errors\":{},\"error\":\"{}\"}}",
        args.mode,
        json_escape(&args.label),
        stats.errors.max(1),
        json_escape(stats.first_error.as_deref().unwrap_or("failed"))
    );
    1
}

// ----- idle -----------------------------------------------------------------------

fn run_idle(args: &Args) -> i32 {
    if args.server_pids.is_empty() {
        usage("idle needs --server-pid");
    }
    // The servers' resident memory, summed.
    let rss = || args.server_pids.iter().map(|&pid| rss_of(pid)).sum();
    let mut stats = Stats::default();
    let before: Option<u64> = rss();
    let mut net = Net::new(args);
    let t = Instant::now();
    if !net.connect_all(&mut stats, Instant::now() + Duration::from_secs(120)) {
        return finish_error(args, &stats);
    }
    let connect_secs = t.elapsed().as_secs_f64();
    // Let the server settle, watching for connections it drops.
    let until = Instant::now() + Duration::from_secs_f64(args.settle);
    while Instant::now() < until {
        idle_poll(&mut net, &mut stats);
    }
    let after: Option<u64> = rss();
    let hold_until = Instant::now() + Duration::from_secs_f64(args.hold);
    while Instant::now() < hold_until {
        idle_poll(&mut net, &mut stats);
    }
    let still_open = net.open;
    net.close_all();
    if stats.errors > 0 {
        return finish_error(args, &stats);
    }
    let (Some(before), Some(after)) = (before, after) else {
        eprintln!(
            "loadgen: cannot read /proc/PID/status of {:?}",
            args.server_pids
        );
        return 1;
    };
    let per = (after.saturating_sub(before)) as f64 / args.connections as f64;
    eprintln!(
        "loadgen idle {}: {} connections open in {:.2} s; server RSS {:.1} MiB -> {:.1} MiB: \
         {:.0} B per connection",
        args.label,
        still_open,
        connect_secs,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per
    );
    println!(
        "{{\"mode\":\"idle\",\"deflate\":{},\"tls\":{},\"label\":\"{}\",\"connections\":{},\"rss_before\":{},\"rss_after\":{},\
         \"bytes_per_conn\":{:.1},\"errors\":0}}",
        args.deflate,
        args.tls.is_some(),
        json_escape(&args.label),
        args.connections,
        before,
        after,
        per
    );
    0
}

fn idle_poll(net: &mut Net, stats: &mut Stats) {
    for t in net.ready(Duration::from_millis(100)) {
        let c = &mut net.conns[t];
        if c.phase != Phase::Open {
            continue;
        }
        match c.recv(&mut net.scratch) {
            Ok(0) => {
                stats.error(format!(
                    "connection {t}: the server closed an idle connection"
                ));
                c.phase = Phase::Closed;
                net.open -= 1;
            }
            Ok(_) => stats.error(format!("connection {t}: data on an idle connection")),
            Err(_) => {}
        }
    }
}

// ----- broadcast ------------------------------------------------------------------

fn run_broadcast(args: &Args) -> i32 {
    let mut stats = Stats::default();
    let mut net = Net::new(args);
    if !net.connect_all(&mut stats, Instant::now() + Duration::from_secs(120)) {
        return finish_error(args, &stats);
    }
    // Sessions join their room right after the upgrade; give them a moment.
    std::thread::sleep(Duration::from_millis(500));
    let n = net.conns.len();
    let servers = args.addrs.len();
    let warmup_rounds = 3usize;
    let mut round = 0usize;
    let mut times_us: Vec<f64> = Vec::new();
    // The same, for the last client of each server.
    let mut times_by_server_us: Vec<Vec<f64>> = vec![Vec::new(); servers];
    let mut measured = 0u64;
    let mut measured_secs = 0.0;
    let mut cpu0 = Duration::ZERO;
    let mut server_cpu0 = None;
    let mut redis_cpu0 = None;
    let mut cpu_used = Duration::ZERO;
    let mut server_cpu_used = None;
    let mut redis_cpu_used = None;
    let t_start = Instant::now();
    let mut t_measure = t_start;
    let hard_stop = t_start + Duration::from_secs_f64(args.duration * 3.0 + 30.0);
    loop {
        if round == warmup_rounds {
            t_measure = Instant::now();
            cpu0 = cpu_self();
            server_cpu0 = cpu_of_all(&args.server_pids);
            redis_cpu0 = args.redis_pid.and_then(cpu_of);
        }
        if round > warmup_rounds
            && t_measure.elapsed().as_secs_f64() >= args.duration
            && round - warmup_rounds >= 3
        {
            measured_secs = t_measure.elapsed().as_secs_f64();
            cpu_used = cpu_self().saturating_sub(cpu0);
            server_cpu_used = match (server_cpu0, cpu_of_all(&args.server_pids)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            redis_cpu_used = match (redis_cpu0, args.redis_pid.and_then(cpu_of)) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            break;
        }
        // `window` messages at once: every member expects them in order,
        // back to back.
        let burst = args.window.max(1);
        let mut expected = Vec::new();
        let sent = Instant::now();
        {
            let c = &mut net.conns[0];
            for j in 0..burst {
                let text = payload(args.size, round * burst + j);
                expected.extend_from_slice(&plain_frame(&text));
                c.queue(&masked_frame(&text, key_for(round * burst + j)));
            }
            if let Err(e) = c.flush() {
                stats.error(format!("write: {e}"));
            }
        }
        let mut got = 0usize;
        let mut last = vec![sent; servers];
        while got < n && stats.errors == 0 {
            if Instant::now() > hard_stop {
                stats.error(format!("round {round}: only {got} of {n} got the message"));
                break;
            }
            for t in net.ready(Duration::from_millis(100)) {
                let c = &mut net.conns[t];
                if t == 0 {
                    let _ = c.flush();
                }
                loop {
                    match c.stream.read(&mut net.scratch) {
                        Ok(0) => {
                            stats.error(format!("connection {t}: the server closed it"));
                            break;
                        }
                        Ok(k) => {
                            let mut data = &net.scratch[..k];
                            while !data.is_empty() {
                                if c.next_expect != round {
                                    stats.error(format!("connection {t}: an extra message"));
                                    break;
                                }
                                let want = &expected[c.expect_off..];
                                let take = want.len().min(data.len());
                                if data[..take] != want[..take] {
                                    stats.error(format!(
                                        "connection {t}: round {round} differs from the message sent"
                                    ));
                                    break;
                                }
                                data = &data[take..];
                                c.expect_off += take;
                                if c.expect_off == expected.len() {
                                    c.expect_off = 0;
                                    c.next_expect += 1;
                                    got += 1;
                                    last[t % servers] = Instant::now();
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            stats.error(format!("connection {t}: read: {e}"));
                            break;
                        }
                    }
                }
            }
        }
        if stats.errors > 0 {
            break;
        }
        if round >= warmup_rounds {
            let to_us = |at: Instant| at.duration_since(sent).as_secs_f64() * 1e6;
            times_us.push(last.iter().copied().map(to_us).fold(0.0, f64::max));
            for (server, at) in last.iter().enumerate() {
                times_by_server_us[server].push(to_us(*at));
            }
            measured += (n * burst) as u64;
        }
        round += 1;
    }
    net.close_all();
    if stats.errors > 0 {
        return finish_error(args, &stats);
    }
    let messages = times_us.len();
    let rate = measured as f64 / measured_secs;
    let quantile = |times: &mut Vec<f64>, p: f64| {
        times.sort_by(f64::total_cmp);
        times[((times.len() as f64 - 1.0) * p).round() as usize]
    };
    let median = quantile(&mut times_us, 0.5);
    let p99 = quantile(&mut times_us, 0.99);
    let worst = *times_us.last().unwrap_or(&0.0);
    let by_server: Vec<String> = times_by_server_us
        .iter_mut()
        .map(|times| format!("{:.1}", quantile(times, 0.5)))
        .collect();
    let cpu_pct = 100.0 * cpu_used.as_secs_f64() / measured_secs;
    let server_cpu_pct = server_cpu_used.map(|d| 100.0 * d.as_secs_f64() / measured_secs);
    let server_us_per_delivery = server_cpu_used.map(|d| d.as_secs_f64() * 1e6 / measured as f64);
    let redis_cpu_pct = redis_cpu_used.map(|d| 100.0 * d.as_secs_f64() / measured_secs);
    let redis_us_per_message = redis_cpu_used.map(|d| d.as_secs_f64() * 1e6 / messages as f64);
    let opt = |x: Option<f64>, digits: usize| x.map_or("null".into(), |x| format!("{x:.digits$}"));
    eprintln!(
        "loadgen broadcast {}: {} sessions on {} server(s) x {} B, {} rounds: {:.0} deliveries/s, \
         last client after {:.0} us (median; p99 {:.0} us, worst {:.0} us; median per server \
         [{}] us), loadgen CPU {:.0}%{}{}",
        args.label,
        n,
        servers,
        args.size,
        messages,
        rate,
        median,
        p99,
        worst,
        by_server.join(", "),
        cpu_pct,
        server_cpu_pct.map_or(String::new(), |p| format!(
            ", server CPU {p:.0}% ({} us per delivery)",
            opt(server_us_per_delivery, 2)
        )),
        redis_cpu_pct.map_or(String::new(), |p| format!(
            ", redis CPU {p:.0}% ({} us per message)",
            opt(redis_us_per_message, 1)
        )),
    );
    println!(
        "{{\"mode\":\"broadcast\",\"label\":\"{}\",\"connections\":{},\"servers\":{},\"size\":{},\
         \"window\":{},\"rounds\":{},\"seconds\":{:.3},\"deliveries_per_sec\":{:.1},\"last_client_us\":{:.1},\
         \"p99_last_client_us\":{:.1},\"worst_last_client_us\":{:.1},\
         \"last_client_us_by_server\":[{}],\"loadgen_cpu_pct\":{:.1},\"server_cpu_pct\":{},\
         \"server_cpu_us_per_delivery\":{},\"redis_cpu_pct\":{},\"redis_cpu_us_per_message\":{},\
         \"errors\":0}}",
        json_escape(&args.label),
        n,
        servers,
        args.size,
        args.window.max(1),
        messages,
        measured_secs,
        rate,
        median,
        p99,
        worst,
        by_server.join(","),
        cpu_pct,
        opt(server_cpu_pct, 1),
        opt(server_us_per_delivery, 3),
        opt(redis_cpu_pct, 1),
        opt(redis_us_per_message, 2),
    );
    0
}

fn main() {
    let args = parse_args();
    tandem_bench::raise_fd_limit(args.connections as u64 + 64);
    let code = match args.mode.as_str() {
        "echo" => run_echo(&args),
        "idle" => run_idle(&args),
        _ => run_broadcast(&args),
    };
    std::process::exit(code);
}
