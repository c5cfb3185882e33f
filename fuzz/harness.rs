//! The fuzz harnesses, shared by the cargo-fuzz targets (fuzz_targets/) and
//! by the regression test that replays fuzz/regressions/ in the normal suite
//! (tests/fuzz_regressions.rs). Each takes arbitrary bytes and panics only
//! on a bug.

use std::io::IoSlice;
use std::time::{Duration, Instant};

use tandem::extensions::{ExtensionFactory, ExtensionHeader, PerMessageDeflate};
use tandem::protocol::handshake;
use tandem::protocol::{Config, Protocol, Role, CONTROL_OUTPUT_LIMIT, MAX_HEADER_LEN};
use tandem::{CloseCode, CloseReason, Frame, WebSocketOptions};

/// The protocol engine fed arbitrary bytes, in both roles, in the default
/// and raw modes, with small limits, by a peer that reads our output or one
/// that never does.
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
    // A peer that never reads: the output only grows.
    let peer_reads = setup & 32 == 0;
    // Bytes the caller queued since the output was last empty: the engine's
    // output may hold those, plus what it adds by itself (pongs, its pings,
    // one Close), which must stay under its bound whatever the input.
    let mut queued = 0usize;
    let own_bound = CONTROL_OUTPUT_LIMIT + 3 * (125 + MAX_HEADER_LEN);

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
                let reply = format!("reply {taken}");
                queued += reply.len() + chunk.len() + 2 * MAX_HEADER_LEN;
                let _ = engine.send(Frame::text(reply), now);
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
                queued += 125 + MAX_HEADER_LEN;
                let _ = engine.close(CloseReason::new(code, "fuzz"), now);
            }
        }
        assert!(
            engine.output_len() <= queued + own_bound,
            "{} bytes of output, {queued} of them queued by the caller",
            engine.output_len()
        );
        // Write part of the output, as a socket would.
        let mut slices = [IoSlice::new(&[]); 8];
        let n = engine.output(&mut slices);
        let pending: usize = slices[..n].iter().map(|s| s.len()).sum();
        assert!(pending <= engine.output_len());
        if peer_reads {
            engine.consume_output(pending / 2, now);
        }
        if engine.output_len() == 0 {
            queued = 0;
        }
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

/// The largest message the `deflate` harness lets its engines deliver.
const DEFLATE_MAX_MESSAGE: usize = 64 << 10;

/// permessage-deflate on the protocol engine: the extension negotiated
/// between a client and a server configured from the input (context
/// takeover or not in each direction, window bits 8 to 15 or unset), then
/// the engine under test (either role) fed compressed frames.
///
/// A peer engine of the other role, with the other end of the negotiated
/// extension, compresses messages from the input, so that valid DEFLATE
/// streams reach the inflater; other records are frames built by hand
/// around input bytes (RSV1 or not, fragments, pings, masked for a
/// server) and peer frames with a byte changed, which reach its error
/// paths. Nothing may panic, no message over `max_message_size` may come
/// out, and while nothing was injected every message arrives as sent, in
/// both directions.
///
/// Input: three setup bytes (role and context takeover; the server's and
/// the client's window bits), then records, each an opcode byte and its
/// bytes (see the match below).
pub fn deflate(data: &[u8]) {
    let Some((&[setup, server_bits, client_bits], mut rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let role = if setup & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let server = deflate_config(setup >> 1, server_bits);
    let client = deflate_config(setup >> 3, client_bits).offer_fallback(setup & 0x20 != 0);
    let offers = client.offers();
    let Some((answer, server_extension)) = offers.iter().find_map(|offer| server.accept(offer))
    else {
        return;
    };
    let client_extension = client
        .confirm(&answer)
        .unwrap_or_else(|why| panic!("the client refuses the server's answer {answer}: {why}"));
    let (ours, theirs) = match role {
        Role::Server => (server_extension, client_extension),
        Role::Client => (client_extension, server_extension),
    };
    let peer_role = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let options = WebSocketOptions {
        max_message_size: Some(DEFLATE_MAX_MESSAGE),
        ..WebSocketOptions::default()
    };
    let now = Instant::now();
    let mut engine =
        Protocol::new(role, Config::new(role, &options), now).with_extensions(vec![ours]);
    let mut peer = Protocol::new(peer_role, Config::new(peer_role, &options), now)
        .with_extensions(vec![theirs]);
    // What each side should deliver next, while the stream towards it holds
    // only what the other side sent.
    let mut to_engine = std::collections::VecDeque::new();
    let mut to_peer = std::collections::VecDeque::new();
    let mut in_sync = true;

    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let mut take = |n: usize| {
            let (taken, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            taken
        };
        let len = usize::from(take(1).first().copied().unwrap_or(0));
        match op >> 5 {
            // A frame by hand: FIN, RSV1, the opcode and the length's size
            // from `op`, the payload from the input.
            0..=2 => {
                let len = if op & 0x10 != 0 {
                    len << 8 | usize::from(take(1).first().copied().unwrap_or(0))
                } else {
                    len
                };
                let opcode = [0x0, 0x1, 0x2, 0x9][usize::from(op >> 2 & 3)];
                let first = if op & 1 != 0 { 0x80 } else { 0 } | if op & 2 != 0 { 0x40 } else { 0 };
                let frame = wire_frame(first | opcode, take(len), role == Role::Server);
                engine.receive_data(&frame);
                in_sync = false;
            }
            // A message from the peer, compressed by its extension: binary,
            // text, or a binary message of up to 128 KiB made of the payload
            // over and over (around the limit: a 16-bit size, plus 64 KiB
            // if `op` is odd).
            3..=5 => {
                let payload = take(len);
                let message = match op >> 5 {
                    3 => Frame::binary(payload.to_vec()),
                    4 => Frame::text(String::from_utf8_lossy(payload)),
                    _ => {
                        let size = take(2)
                            .iter()
                            .fold(usize::from(op & 1), |size, &b| size << 8 | usize::from(b));
                        let filler = if payload.is_empty() {
                            &[0][..]
                        } else {
                            payload
                        };
                        Frame::binary(
                            filler
                                .iter()
                                .copied()
                                .cycle()
                                .take(size)
                                .collect::<Vec<_>>(),
                        )
                    }
                };
                if peer.send(message.clone(), now).is_ok() {
                    to_engine.push_back(message);
                }
                engine.receive_data(&peer.output_bytes());
            }
            // A message from the engine under test, to the peer.
            6 => {
                let message = Frame::binary(take(len).to_vec());
                if engine.send(message.clone(), now).is_ok() {
                    to_peer.push_back(message);
                }
            }
            // A peer message with one byte of its frame changed.
            _ => {
                let at = usize::from(take(1).first().copied().unwrap_or(0));
                let payload = take(len);
                let _ = peer.send(Frame::binary(payload.to_vec()), now);
                let mut bytes = peer.output_bytes();
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] ^= op | 1;
                }
                engine.receive_data(&bytes);
                in_sync = false;
            }
        }
        if !in_sync {
            to_engine.clear();
        }
        while let Some(frame) = engine.poll_event(now) {
            deflate_check_delivered(&frame, in_sync.then_some(&mut to_engine));
        }
        // All the peer sent has been read: what is left is over the limit,
        // and failed the connection.
        if let Some(left) = to_engine.front() {
            assert!(
                left.read_bytes().len() > DEFLATE_MAX_MESSAGE,
                "a message of {} bytes, within the limit, was not delivered",
                left.read_bytes().len()
            );
            to_engine.clear();
            in_sync = false;
        }
        // Both handlers have taken everything: a Close may be answered.
        if engine.has_deferred_close() {
            engine.apply_deferred_close(now);
        }
        peer.receive_data(&engine.output_bytes());
        while let Some(frame) = peer.poll_event(now) {
            deflate_check_delivered(&frame, Some(&mut to_peer));
        }
        assert!(to_peer.is_empty(), "the peer lost {to_peer:?}");
        if peer.has_deferred_close() {
            peer.apply_deferred_close(now);
        }
        engine.receive_data(&peer.output_bytes());
    }
    engine.receive_eof();
    peer.receive_eof();
    while engine.poll_event(now).is_some() || peer.poll_event(now).is_some() {}
}

/// A permessage-deflate configuration from 3 bits of `flags` (the two
/// no_context_takeover settings, whether to set window bits) and `bits`
/// (the server's and the client's window, 8 to 15).
fn deflate_config(flags: u8, bits: u8) -> PerMessageDeflate {
    let mut deflate = PerMessageDeflate::new()
        .server_no_context_takeover(flags & 1 != 0)
        .client_no_context_takeover(flags & 2 != 0);
    if bits & 0x40 != 0 {
        deflate = deflate.server_max_window_bits(8 + (bits & 7));
    }
    if bits & 0x80 != 0 {
        deflate = deflate.client_max_window_bits(8 + (bits >> 3 & 7));
    }
    deflate
}

/// A message that came out of an engine: within the limit and, when the
/// stream towards it is intact (`expected`), the next one sent.
fn deflate_check_delivered(
    frame: &Frame,
    expected: Option<&mut std::collections::VecDeque<Frame>>,
) {
    if frame.frame_type().is_control() {
        return;
    }
    assert!(
        frame.read_bytes().len() <= DEFLATE_MAX_MESSAGE,
        "a message of {} bytes came out, over the limit",
        frame.read_bytes().len()
    );
    if let Some(expected) = expected {
        let sent = expected.pop_front().expect("a message that nobody sent");
        assert_eq!(frame, &sent, "a message changed on its way");
    }
}

/// The bytes of one frame: `first` is FIN, RSV and opcode; masked (with a
/// fixed key) when it goes to a server.
fn wire_frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}
