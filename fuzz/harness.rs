//! The fuzz harnesses, shared by the cargo-fuzz targets (fuzz_targets/) and
//! by the regression test that replays fuzz/regressions/ in the normal suite
//! (tests/fuzz_regressions.rs). Each takes arbitrary bytes and panics only
//! on a bug.

use std::io::IoSlice;
use std::time::{Duration, Instant};

use tandem::extensions::ExtensionHeader;
use tandem::protocol::handshake;
use tandem::protocol::{Config, Protocol, Role};
use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};

/// The protocol engine fed arbitrary bytes, in both roles, in the default
/// and raw modes, with small limits.
///
/// The first byte picks the configuration; the rest is cut into chunks whose
/// sizes come from the input too, so frames arrive split anywhere. Between
/// chunks the input also drives the caller: applying a deferred close,
/// sending, closing, writing output partly, and a fake clock through the
/// timers. Nothing may panic, and the engine's invariants must hold.
pub fn engine(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let role = if setup & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let options = WebSocketOptions {
        ping_period: (setup & 2 != 0).then(|| Duration::from_millis(10)),
        timeout: Duration::from_millis(50),
        close_timeout: Duration::from_millis(30),
        max_frame_size: (setup & 4 != 0).then_some(64),
        max_message_size: Some(if setup & 8 != 0 { 100 } else { 4096 }),
        ..WebSocketOptions::default()
    };
    let mut config = Config::new(role, &options);
    config.raw = setup & 16 != 0;
    let mut now = Instant::now();
    let mut engine = Protocol::new(role, config, now);
    let mut taken = 0usize;

    while let Some((&control, tail)) = rest.split_first() {
        let len = usize::from(control & 0x3f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        engine.receive_data(chunk);
        while let Some(frame) = engine.poll_event(now) {
            let limit = options.max_message_size.unwrap_or(usize::MAX);
            assert!(
                frame.frame_type().is_control() || frame.read_bytes().len() <= limit,
                "a message over the limit came out"
            );
            taken += 1;
            if taken > 100_000 {
                return;
            }
        }
        match control >> 6 {
            0 => {
                if engine.has_deferred_close() {
                    engine.apply_deferred_close(now);
                }
            }
            1 => {
                let _ = engine.send(Frame::text(format!("reply {taken}")), now);
                let _ = engine.send(Frame::binary(chunk.to_vec()), now);
            }
            2 => {
                now += Duration::from_millis(u64::from(control & 0x3f));
                if engine.poll_timeout().is_some_and(|t| t <= now) {
                    engine.handle_timeout(now);
                }
            }
            _ => {
                let code = if control & 1 == 0 {
                    CloseCode::Normal
                } else {
                    CloseCode::GoingAway
                };
                let _ = engine.close(CloseReason::new(code, "fuzz"), now);
            }
        }
        // Write part of the output, as a socket would.
        let mut slices = [IoSlice::new(&[]); 8];
        let n = engine.output(&mut slices);
        let pending: usize = slices[..n].iter().map(|s| s.len()).sum();
        assert!(pending <= engine.output_len());
        engine.consume_output(pending / 2, now);
        if engine.take_shutdown() {
            engine.receive_eof();
        }
        if engine.is_finished() {
            assert!(engine.close_reason().is_some(), "finished without a reason");
            assert_eq!(engine.output_len(), 0);
            return;
        }
    }
    engine.receive_eof();
    assert!(engine.is_finished());
    assert!(engine.close_reason().is_some());
}

/// The opening handshake's parsers fed arbitrary bytes: the request side
/// (head parser, upgrade checks, subprotocol and extension offers) and the
/// client's response side (head parser, answer checks).
pub fn handshake(data: &[u8]) {
    if let Ok(Some(head)) = handshake::parse_request_head(data) {
        assert!(head.len <= data.len() && head.len <= handshake::MAX_HEAD_LEN);
        if let Ok(accept) = handshake::check_request(&head.method, head.version, &head.headers) {
            assert_eq!(accept.len(), 28, "an accept key is 20 bytes in base64");
        }
        let offered = handshake::offered_protocols(&head.headers);
        let supported = ["chat".to_string(), "chat.v2".to_string()];
        if let Some(chosen) = handshake::select_protocol(&supported, &offered) {
            assert!(offered.contains(&chosen));
        }
        for value in head.headers.get_all(http::header::SEC_WEBSOCKET_EXTENSIONS) {
            if let Ok(text) = value.to_str() {
                if let Ok(list) = ExtensionHeader::parse_list(text) {
                    // What parses, formats into something that parses the same.
                    let again = ExtensionHeader::parse_list(&ExtensionHeader::format_list(&list));
                    assert_eq!(again.ok(), Some(list));
                }
            }
        }
    }
    if let Ok(Some(head)) = handshake::parse_response_head(data) {
        assert!(head.len <= data.len());
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let _ = handshake::check_response(head.status, &head.headers, key, &["chat".to_string()]);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ExtensionHeader::parse_list(text);
    }
}
