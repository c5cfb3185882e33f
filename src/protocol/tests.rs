//! The engine's behaviour, driven byte by byte with a fake clock.

use std::time::{Duration, Instant};

use super::*;
use crate::{CloseCode, CloseReason, Error, Frame, FrameType, Rsv, WebSocketOptions};

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// Wire bytes of one frame; `mask` as a client would send it.
fn wire(fin: bool, rsv: Rsv, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::new();
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// A masked frame from a client.
fn from_client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    wire(fin, Rsv::NONE, opcode, payload, Some(KEY))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

fn server_with(options: WebSocketOptions, raw: bool, now: Instant) -> Protocol {
    let mut config = Config::new(Role::Server, &options);
    config.raw = raw;
    Protocol::new(Role::Server, config, now)
}

fn server(now: Instant) -> Protocol {
    server_with(WebSocketOptions::default(), false, now)
}

fn client(now: Instant) -> Protocol {
    Protocol::new(
        Role::Client,
        Config::new(Role::Client, &WebSocketOptions::default()),
        now,
    )
}

/// Decodes every frame in `bytes` (as the peer of `role` would see them).
fn frames_in(bytes: &[u8]) -> Vec<(bool, u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (h, n) = FrameHeader::parse(rest).unwrap().expect("whole header");
        let len = h.payload_len as usize;
        let mut payload = rest[n..n + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push((h.fin, h.opcode, payload));
        rest = &rest[n + len..];
    }
    frames
}

/// Asserts the engine failed with `code` and sent a Close carrying it.
fn assert_failed_with(p: &mut Protocol, code: u16) {
    assert!(p.has_deferred_close(), "a violation is recorded");
    assert!(
        p.close_reason().is_none(),
        "not failed before apply_failure"
    );
    p.apply_deferred_close(Instant::now());
    let sent = frames_in(&p.output_bytes());
    let close = sent.iter().find(|f| f.1 == 0x8).expect("a Close was sent");
    assert_eq!(u16::from_be_bytes([close.2[0], close.2[1]]), code);
    assert_eq!(p.close_reason().map(|r| u16::from(r.code)), Some(code));
}

// ----- messages ---------------------------------------------------------------

#[test]
fn a_text_frame_fed_one_byte_at_a_time_arrives_whole() {
    let now = Instant::now();
    let mut s = server(now);
    let bytes = from_client(true, 0x1, "Hello, κόσμε".as_bytes());
    for (i, b) in bytes.iter().enumerate() {
        s.receive_data(&[*b]);
        let event = s.poll_event(now);
        if i + 1 < bytes.len() {
            assert_eq!(event, None, "nothing before the last byte ({i})");
        } else {
            assert_eq!(event, Some(Frame::text("Hello, κόσμε")));
        }
    }
}

#[test]
fn fragments_are_reassembled_and_a_ping_between_them_is_answered_at_once() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(false, 0x1, b"Hel"));
    s.receive_data(&from_client(true, 0x9, b"ping!"));
    assert_eq!(s.poll_event(now), None);
    assert_eq!(
        frames_in(&s.output_bytes()),
        vec![(true, 0xA, b"ping!".to_vec())]
    );
    s.receive_data(&from_client(false, 0x0, b"lo, "));
    s.receive_data(&from_client(true, 0x0, b"world"));
    assert_eq!(s.poll_event(now), Some(Frame::text("Hello, world")));
}

#[test]
fn binary_fragments_are_reassembled_without_utf8_checks() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(false, 0x2, &[0xFF, 0xFE]));
    s.receive_data(&from_client(true, 0x0, &[0x00]));
    assert_eq!(
        s.poll_event(now),
        Some(Frame::binary(vec![0xFF, 0xFE, 0x00]))
    );
}

#[test]
fn empty_messages_are_delivered() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0x1, b""));
    s.receive_data(&from_client(false, 0x2, b""));
    s.receive_data(&from_client(true, 0x0, b""));
    assert_eq!(s.poll_event(now), Some(Frame::text("")));
    assert_eq!(s.poll_event(now), Some(Frame::binary(vec![])));
}

#[test]
fn pongs_are_not_delivered_in_default_mode() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0xA, b"unsolicited"));
    s.receive_data(&from_client(true, 0x1, b"after"));
    assert_eq!(s.poll_event(now), Some(Frame::text("after")));
    assert!(s.output_bytes().is_empty(), "a pong is not answered");
}

// ----- protocol violations -----------------------------------------------------

#[test]
fn framing_violations_fail_with_1002() {
    let now = Instant::now();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "continuation with nothing to continue",
            from_client(true, 0x0, b"x"),
        ),
        ("reserved data opcode", from_client(true, 0x3, b"")),
        ("reserved control opcode", from_client(true, 0xB, b"")),
        (
            "rsv1 without an extension",
            wire(true, Rsv::RSV1, 0x1, b"x", Some(KEY)),
        ),
        (
            "rsv3 without an extension",
            wire(true, Rsv::RSV3, 0x2, b"x", Some(KEY)),
        ),
        ("fragmented ping", from_client(false, 0x9, b"")),
        ("ping over 125 bytes", from_client(true, 0x9, &[0; 126])),
        (
            "unmasked client frame",
            wire(true, Rsv::NONE, 0x1, b"x", None),
        ),
    ];
    for (what, bytes) in cases {
        let mut s = server(now);
        s.receive_data(&bytes);
        assert_eq!(s.poll_event(now), None, "{what}");
        assert_failed_with(&mut s, 1002);
    }
}

#[test]
fn a_new_message_inside_a_fragmented_one_fails_with_1002() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(false, 0x1, b"a"));
    s.receive_data(&from_client(true, 0x2, b"b"));
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1002);
}

#[test]
fn a_masked_frame_from_a_server_fails_the_client() {
    let now = Instant::now();
    let mut c = client(now);
    c.receive_data(&from_client(true, 0x1, b"masked"));
    assert_eq!(c.poll_event(now), None);
    assert_failed_with(&mut c, 1002);
}

#[test]
fn replies_to_frames_before_a_violation_go_out_before_the_close() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(
        &[
            from_client(true, 0x1, b"Hello"),
            from_client(true, 0x3, b""),
        ]
        .concat(),
    );
    assert_eq!(s.poll_event(now), Some(Frame::text("Hello")));
    assert_eq!(s.poll_event(now), None);
    assert!(s.has_deferred_close());
    s.send(Frame::text("Hello"), now).unwrap();
    s.apply_deferred_close(now);
    let sent = frames_in(&s.output_bytes());
    assert_eq!(sent[0], (true, 0x1, b"Hello".to_vec()));
    assert_eq!(sent[1].1, 0x8);
    assert_eq!(
        s.close_reason().map(|r| r.code),
        Some(CloseCode::ProtocolError)
    );
}

#[test]
fn a_violation_nobody_applies_fails_the_connection_after_a_second() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0x3, b""));
    assert_eq!(s.poll_event(now), None);
    let deadline = s.poll_timeout().expect("a deadline");
    assert_eq!(deadline, now + Duration::from_secs(1));
    s.handle_timeout(deadline);
    assert_eq!(
        s.close_reason().map(|r| r.code),
        Some(CloseCode::ProtocolError)
    );
    assert_eq!(frames_in(&s.output_bytes())[0].1, 0x8);
}

#[test]
fn input_after_a_failure_is_discarded() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0x3, b""));
    s.receive_data(&from_client(true, 0x1, b"too late"));
    assert_eq!(s.poll_event(now), None);
    s.receive_data(&from_client(true, 0x1, b"later still"));
    assert_eq!(s.poll_event(now), None);
}

// ----- UTF-8 -------------------------------------------------------------------

#[test]
fn invalid_utf8_in_a_single_frame_fails_with_1007() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0x1, b"caf\xC3"));
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1007);
}

#[test]
fn invalid_utf8_fails_at_the_fragment_that_carries_it() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(false, 0x1, "κό".as_bytes()));
    assert_eq!(s.poll_event(now), None);
    assert!(s.close_reason().is_none(), "valid so far");
    // 0xF4 0x90 would be above U+10FFFF: invalid before the message ends.
    s.receive_data(&from_client(false, 0x0, b"\xF4\x90\x80\x80"));
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1007);
}

#[test]
fn invalid_utf8_fails_before_the_rest_of_its_frame_arrives() {
    let now = Instant::now();
    let mut s = server(now);
    let mut payload = b"valid start ".to_vec();
    payload.extend_from_slice(b"\xED\xA0\x80"); // a UTF-16 surrogate
    payload.extend_from_slice(&[b'x'; 1000]);
    let bytes = from_client(true, 0x1, &payload);
    s.receive_data(&bytes[..30]); // header + the bad bytes, not the rest
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1007);
}

#[test]
fn a_character_split_across_fragments_is_valid() {
    let now = Instant::now();
    let mut s = server(now);
    let euro = "€".as_bytes();
    s.receive_data(&from_client(false, 0x1, &euro[..1]));
    s.receive_data(&from_client(false, 0x0, &euro[1..2]));
    s.receive_data(&from_client(true, 0x0, &euro[2..]));
    assert_eq!(s.poll_event(now), Some(Frame::text("€")));
}

#[test]
fn a_message_ending_inside_a_character_fails_with_1007() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(false, 0x1, b"ok"));
    s.receive_data(&from_client(true, 0x0, &"€".as_bytes()[..2]));
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1007);
}

// ----- close handshake -----------------------------------------------------------

#[test]
fn a_peer_close_is_echoed_and_ends_the_stream() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0x8, &close_payload(1001, "going")));
    assert_eq!(s.poll_event(now), None);
    assert!(s.has_deferred_close(), "answered once the caller is idle");
    assert!(s.output_bytes().is_empty());
    s.apply_deferred_close(now);
    assert_eq!(
        frames_in(&s.output_bytes()),
        vec![(true, 0x8, 1001u16.to_be_bytes().to_vec())]
    );
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::new(CloseCode::GoingAway, "going"))
    );
    assert!(matches!(
        s.send(Frame::text("x"), now),
        Err(Error::ConnectionClosed(_))
    ));
    assert!(s.take_shutdown(), "the server closes the transport first");
    assert!(!s.take_shutdown(), "only once");
    assert!(!s.is_finished());
    s.receive_eof();
    assert!(s.is_finished());
    assert_eq!(s.close_reason().map(|r| r.code), Some(CloseCode::GoingAway));
}

#[test]
fn replies_to_messages_before_a_close_go_out_before_its_answer() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(
        &[
            from_client(true, 0x1, b"Ktor"),
            from_client(true, 0x8, &close_payload(1000, "")),
        ]
        .concat(),
    );
    assert_eq!(s.poll_event(now), Some(Frame::text("Ktor")));
    assert_eq!(s.poll_event(now), None);
    s.send(Frame::text("Hi, Ktor!"), now).unwrap();
    s.apply_deferred_close(now);
    let sent = frames_in(&s.output_bytes());
    assert_eq!(sent[0], (true, 0x1, b"Hi, Ktor!".to_vec()));
    assert_eq!(sent[1], (true, 0x8, 1000u16.to_be_bytes().to_vec()));
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_data(&from_client(true, 0x8, b""));
    s.poll_event(now);
    s.apply_deferred_close(now);
    assert_eq!(frames_in(&s.output_bytes()), vec![(true, 0x8, vec![])]);
    assert_eq!(s.close_reason().map(|r| u16::from(r.code)), Some(1005));
}

#[test]
fn malformed_close_frames_fail_the_connection() {
    let now = Instant::now();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (vec![0x03], 1002),
        (close_payload(999, ""), 1002),
        (close_payload(1004, ""), 1002),
        (close_payload(1005, ""), 1002),
        (close_payload(1006, ""), 1002),
        (close_payload(1015, ""), 1002),
        (close_payload(2000, ""), 1002),
        (close_payload(5000, ""), 1002),
        ([&1000u16.to_be_bytes()[..], b"\xFF"].concat(), 1007),
    ];
    for (payload, code) in cases {
        let mut s = server(now);
        s.receive_data(&from_client(true, 0x8, &payload));
        s.poll_event(now);
        assert_failed_with(&mut s, code);
    }
}

#[test]
fn application_close_codes_are_accepted() {
    let now = Instant::now();
    for code in [1000, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut s = server(now);
        s.receive_data(&from_client(true, 0x8, &close_payload(code, "")));
        s.poll_event(now);
        s.apply_deferred_close(now);
        assert_eq!(s.close_reason().map(|r| u16::from(r.code)), Some(code));
    }
}

#[test]
fn our_close_completes_when_the_peer_answers() {
    let now = Instant::now();
    let mut c = client(now);
    c.close(CloseReason::new(CloseCode::Normal, "done"), now)
        .unwrap();
    let sent = frames_in(&c.output_bytes());
    assert_eq!(sent, vec![(true, 0x8, close_payload(1000, "done"))]);
    assert!(
        c.close_reason().is_none(),
        "not over until the peer answers"
    );
    // Data may still arrive before the peer's Close.
    c.receive_data(&wire(true, Rsv::NONE, 0x1, b"late", None));
    assert_eq!(c.poll_event(now), Some(Frame::text("late")));
    c.receive_data(&wire(true, Rsv::NONE, 0x8, &close_payload(1000, ""), None));
    assert_eq!(c.poll_event(now), None);
    assert_eq!(c.close_reason().map(|r| r.code), Some(CloseCode::Normal));
    assert!(
        !c.take_shutdown(),
        "the client waits for the server to close"
    );
    assert!(c.output_bytes().is_empty(), "no second Close");
}

#[test]
fn a_peer_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let now = Instant::now();
    let mut s = server(now);
    s.close(CloseReason::new(CloseCode::GoingAway, "bye"), now)
        .unwrap();
    let deadline = s.poll_timeout().expect("a close deadline");
    assert_eq!(deadline, now + Duration::from_secs(5));
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!s.is_finished());
    s.handle_timeout(deadline);
    assert!(s.is_finished());
    assert_eq!(
        s.close_reason().map(|r| r.code),
        Some(CloseCode::ClosedAbnormally)
    );
}

#[test]
fn codes_that_cannot_go_on_the_wire_are_refused_locally() {
    let now = Instant::now();
    let mut s = server(now);
    for code in [1005, 1006, 1015, 999] {
        assert!(matches!(
            s.close(CloseReason::new(code, ""), now),
            Err(Error::InvalidFrame(_))
        ));
    }
    assert!(s.output_bytes().is_empty());
}

#[test]
fn eof_without_a_close_is_1006() {
    let now = Instant::now();
    let mut s = server(now);
    s.receive_eof();
    assert!(s.is_finished());
    assert_eq!(
        s.close_reason().map(|r| r.code),
        Some(CloseCode::ClosedAbnormally)
    );
}

#[test]
fn close_reasons_are_cut_to_fit_a_control_frame() {
    let now = Instant::now();
    let mut s = server(now);
    s.close(CloseReason::new(CloseCode::Normal, "x".repeat(500)), now)
        .unwrap();
    let sent = frames_in(&s.output_bytes());
    assert_eq!(sent[0].2.len(), 125);
}

// ----- limits ---------------------------------------------------------------------

#[test]
fn an_oversized_frame_fails_with_1009_from_its_header_alone() {
    let now = Instant::now();
    let options = WebSocketOptions {
        max_frame_size: Some(1024),
        ..Default::default()
    };
    let mut s = server_with(options, false, now);
    let bytes = from_client(true, 0x2, &vec![0; 1025]);
    s.receive_data(&bytes[..8]); // the header and nothing else
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1009);
}

#[test]
fn an_oversized_message_fails_with_1009_at_the_fragment_that_crosses_the_limit() {
    let now = Instant::now();
    let options = WebSocketOptions {
        max_message_size: Some(100),
        ..Default::default()
    };
    let mut s = server_with(options, false, now);
    s.receive_data(&from_client(false, 0x2, &[0; 60]));
    assert_eq!(s.poll_event(now), None);
    assert!(s.close_reason().is_none());
    s.receive_data(&from_client(true, 0x0, &[0; 41])[..8]);
    assert_eq!(s.poll_event(now), None);
    assert_failed_with(&mut s, 1009);
}

#[test]
fn a_message_at_the_limit_is_accepted() {
    let now = Instant::now();
    let options = WebSocketOptions {
        max_message_size: Some(100),
        max_frame_size: Some(100),
        ..Default::default()
    };
    let mut s = server_with(options, false, now);
    s.receive_data(&from_client(true, 0x2, &[7; 100]));
    assert_eq!(s.poll_event(now), Some(Frame::binary(vec![7; 100])));
}

#[test]
fn oversized_control_frames_cannot_be_sent() {
    let now = Instant::now();
    let mut s = server(now);
    assert!(matches!(
        s.send(Frame::ping(vec![0; 126]), now),
        Err(Error::InvalidFrame(_))
    ));
}

#[test]
fn fragmented_control_frames_cannot_be_sent_even_raw() {
    let now = Instant::now();
    for mut s in [
        server(now),
        server_with(WebSocketOptions::default(), true, now),
    ] {
        for frame in [Frame::ping("p"), Frame::pong("p"), Frame::close_empty()] {
            let frame = frame.with_fin(false);
            assert!(
                matches!(s.send(frame.clone(), now), Err(Error::InvalidFrame(_))),
                "{frame:?}"
            );
        }
        assert!(s.output_bytes().is_empty(), "nothing went out");
    }
}

#[test]
fn rsv_bits_the_peer_would_refuse_cannot_be_sent() {
    let now = Instant::now();
    // No extension negotiated: no RSV bit, in either mode, by either path.
    for mut s in [
        server(now),
        server_with(WebSocketOptions::default(), true, now),
    ] {
        for frame in [
            Frame::text("t").with_rsv(Rsv::RSV1),
            Frame::binary(vec![1]).with_rsv(Rsv::RSV3),
            Frame::ping("p").with_rsv(Rsv::RSV2),
        ] {
            assert!(
                matches!(s.send(frame.clone(), now), Err(Error::InvalidFrame(_))),
                "{frame:?}"
            );
            let encoded = EncodedFrame::new(&frame);
            assert!(
                matches!(s.send_encoded(encoded, now), Err(Error::InvalidFrame(_))),
                "{frame:?} as a broadcast"
            );
        }
        assert!(s.output_bytes().is_empty(), "nothing went out");
    }
    // An extension owns RSV2: on the first frame of a message, not on a
    // control frame (outside raw mode, as on the way in).
    let mut s = server(now).with_extensions(vec![Box::new(Reverse)]);
    assert!(matches!(
        s.send(Frame::ping("p").with_rsv(Rsv::RSV2), now),
        Err(Error::InvalidFrame(_))
    ));
    assert!(s
        .send(Frame::binary(vec![1]).with_rsv(Rsv::RSV2), now)
        .is_ok());
}

// ----- masking ----------------------------------------------------------------------

#[test]
fn clients_mask_and_servers_do_not() {
    let now = Instant::now();
    let mut c = client(now);
    c.send(Frame::text("hi"), now).unwrap();
    let bytes = c.output_bytes();
    let (h, _) = FrameHeader::parse(&bytes).unwrap().unwrap();
    assert!(h.mask.is_some());
    let mut s = server(now);
    s.receive_data(&bytes);
    assert_eq!(s.poll_event(now), Some(Frame::text("hi")));
    s.send(Frame::text("hello"), now).unwrap();
    let bytes = s.output_bytes();
    assert_eq!(bytes, [0x81, 0x05, b'h', b'e', b'l', b'l', b'o']);
    c.receive_data(&bytes);
    assert_eq!(c.poll_event(now), Some(Frame::text("hello")));
}

#[test]
fn masking_keys_differ_from_frame_to_frame() {
    let now = Instant::now();
    let mut c = client(now);
    c.send(Frame::text("a"), now).unwrap();
    c.send(Frame::text("a"), now).unwrap();
    let bytes = c.output_bytes();
    assert_ne!(bytes[2..6], bytes[9..13]);
}

#[test]
fn large_payloads_round_trip_through_the_zero_copy_path() {
    let now = Instant::now();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut s = server(now);
    s.send(Frame::binary(payload.clone()), now).unwrap();
    s.send(Frame::text("small after"), now).unwrap();
    let mut c = client(now);
    c.receive_data(&s.output_bytes());
    assert_eq!(c.poll_event(now), Some(Frame::binary(payload)));
    assert_eq!(c.poll_event(now), Some(Frame::text("small after")));
}

// ----- input buffer ------------------------------------------------------------------

#[test]
fn after_a_large_frame_reads_go_straight_into_a_buffer_sized_for_the_next() {
    let now = Instant::now();
    let mut s = server(now);
    assert!(
        !s.wants_read_buffer(),
        "an idle engine holds no read buffer"
    );
    s.receive_data(&from_client(true, 0x2, &[1u8; 20]));
    assert!(s.poll_event(now).is_some());
    assert!(!s.wants_read_buffer(), "small frames are copied in");

    s.receive_data(&from_client(true, 0x2, &[2u8; 16 * 1024]));
    assert!(s.poll_event(now).is_some());
    assert!(s.wants_read_buffer());
    // The next frame like it is read into the engine's own buffer, whole.
    let next = from_client(true, 0x2, &[3u8; 16 * 1024]);
    let buf = s.read_buffer();
    assert!(buf.capacity() - buf.len() >= next.len());
    buf.extend_from_slice(&next);
    assert_eq!(s.poll_event(now), Some(Frame::binary(vec![3u8; 16 * 1024])));

    s.release_idle_buffers();
    assert!(
        !s.wants_read_buffer(),
        "an idle connection gives the buffer back"
    );
}

// ----- frames encoded once for many connections (broadcast) ----------------------

#[test]
fn a_server_writes_an_encoded_frame_exactly_as_it_would_encode_it() {
    let now = Instant::now();
    let frames = [
        Frame::text("small"),
        Frame::binary(vec![9u8; 3000]),
        Frame::ping("p"),
    ];
    let mut shared = server(now);
    let mut own = server(now);
    for frame in &frames {
        shared.send_encoded(EncodedFrame::new(frame), now).unwrap();
        shared.send(Frame::text("between"), now).unwrap();
        own.send(frame.clone(), now).unwrap();
        own.send(Frame::text("between"), now).unwrap();
    }
    assert_eq!(shared.output_bytes(), own.output_bytes());
}

#[test]
fn a_client_masks_an_encoded_frame_itself() {
    let now = Instant::now();
    let mut c = client(now);
    c.send_encoded(EncodedFrame::new(&Frame::text("hi")), now)
        .unwrap();
    let bytes = c.output_bytes();
    let (h, _) = FrameHeader::parse(&bytes).unwrap().unwrap();
    assert!(h.mask.is_some());
    assert_eq!(frames_in(&bytes), [(true, 0x1, b"hi".to_vec())]);
}

/// Reverses every message's payload, marking it with RSV2.
#[derive(Debug)]
struct Reverse;

impl crate::extensions::Extension for Reverse {
    fn rsv(&self) -> Rsv {
        Rsv::RSV2
    }
    fn encode(&mut self, message: Frame) -> Result<Frame, Error> {
        let mut payload = message.read_bytes().to_vec();
        payload.reverse();
        Ok(Frame::from_parts(
            message.frame_type(),
            true,
            Rsv::RSV2,
            payload.into(),
        ))
    }
    fn decode(&mut self, message: Frame, _: Option<usize>) -> Result<Frame, Error> {
        Ok(message)
    }
}

#[test]
fn a_session_with_extensions_runs_an_encoded_message_through_them() {
    let now = Instant::now();
    let mut s = server(now).with_extensions(vec![Box::new(Reverse)]);
    s.send_encoded(EncodedFrame::new(&Frame::text("abc")), now)
        .unwrap();
    assert_eq!(s.output_bytes(), wire(true, Rsv::RSV2, 0x1, b"cba", None));
}

#[test]
fn an_encoded_frame_after_the_close_is_refused() {
    let now = Instant::now();
    let mut s = server(now);
    s.close(CloseReason::normal(), now).unwrap();
    let result = s.send_encoded(EncodedFrame::new(&Frame::text("late")), now);
    assert!(
        matches!(result, Err(Error::ConnectionClosed(_))),
        "{result:?}"
    );
}

// ----- keepalive --------------------------------------------------------------------

fn pinging_server(now: Instant) -> Protocol {
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_secs(10)),
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    server_with(options, false, now)
}

#[test]
fn pings_go_out_every_period() {
    let t0 = Instant::now();
    let mut s = pinging_server(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    s.handle_timeout(t0 + Duration::from_secs(10));
    let sent = frames_in(&s.output_bytes());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, 0x9);
}

#[test]
fn a_silent_peer_is_given_up_after_the_timeout() {
    let t0 = Instant::now();
    let mut s = pinging_server(t0);
    s.handle_timeout(t0 + Duration::from_secs(10));
    s.output_bytes(); // the ping is written
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(13)));
    s.handle_timeout(t0 + Duration::from_secs(13));
    // It says why in a Close (1011), then ends once that is written.
    let reason = s.close_reason().unwrap();
    assert_eq!(reason.code, CloseCode::InternalError);
    assert!(reason.message.contains("of a ping"), "{}", reason.message);
    let sent = frames_in(&s.output_bytes());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, 0x8);
    assert_eq!(sent[0].2[..2], 1011u16.to_be_bytes());
    assert!(
        s.take_shutdown(),
        "no wait for an answer: the transport goes"
    );
}

#[test]
fn a_client_closes_the_transport_on_a_silent_server_without_awaiting_its_answer() {
    let t0 = Instant::now();
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_secs(10)),
        timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let mut c = Protocol::new(Role::Client, Config::new(Role::Client, &options), t0);
    c.handle_timeout(t0 + Duration::from_secs(10));
    c.output_bytes();
    c.handle_timeout(t0 + Duration::from_secs(13));
    assert_eq!(c.close_reason().unwrap().code, CloseCode::InternalError);
    c.output_bytes(); // the Close
    assert!(c.take_shutdown());
}

#[test]
fn a_keepalive_close_that_cannot_be_written_ends_after_the_close_timeout() {
    let t0 = Instant::now();
    let mut s = pinging_server(t0);
    s.handle_timeout(t0 + Duration::from_secs(10));
    s.output_bytes();
    s.handle_timeout(t0 + Duration::from_secs(13));
    assert!(!s.is_finished());
    let deadline = s.poll_timeout().expect("a deadline for the Close");
    assert!(deadline <= t0 + Duration::from_secs(18), "{deadline:?}");
    s.handle_timeout(deadline);
    assert!(s.is_finished());
    assert_eq!(s.close_reason().unwrap().code, CloseCode::InternalError);
}

#[test]
fn any_frame_after_a_ping_keeps_the_connection_alive() {
    let t0 = Instant::now();
    let mut s = pinging_server(t0);
    s.handle_timeout(t0 + Duration::from_secs(10));
    let ping = frames_in(&s.output_bytes()).remove(0).2;
    s.receive_data(&from_client(true, 0xA, &ping));
    s.poll_event(t0 + Duration::from_secs(11));
    s.handle_timeout(t0 + Duration::from_secs(13));
    assert!(!s.is_finished());
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(20)));
}

#[test]
fn a_peer_that_stops_reading_is_dropped_after_the_timeout() {
    let t0 = Instant::now();
    let mut s = server(t0);
    s.send(Frame::binary(vec![0; 100_000]), t0).unwrap();
    s.consume_output(1000, t0 + Duration::from_secs(10));
    s.handle_timeout(t0 + Duration::from_secs(20));
    assert!(!s.is_finished(), "progress 10 s ago: still alive");
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(25)));
    s.handle_timeout(t0 + Duration::from_secs(25));
    assert!(s.is_finished());
    let reason = s.close_reason().unwrap();
    assert_eq!(reason.code, CloseCode::ClosedAbnormally);
    assert!(
        reason.message.contains("stopped reading"),
        "{}",
        reason.message
    );
}

// ----- raw mode -----------------------------------------------------------------------

#[test]
fn raw_mode_hands_over_every_frame_and_answers_nothing() {
    let now = Instant::now();
    let mut s = server_with(WebSocketOptions::default(), true, now);
    s.receive_data(&from_client(true, 0x9, b"ping"));
    s.receive_data(&from_client(false, 0x1, b"Hel"));
    s.receive_data(&from_client(true, 0xA, b"pong"));
    s.receive_data(&from_client(true, 0x0, b"lo"));
    let got: Vec<(FrameType, bool, Vec<u8>)> = std::iter::from_fn(|| s.poll_event(now))
        .map(|f| (f.frame_type(), f.is_fin(), f.read_bytes().to_vec()))
        .collect();
    assert_eq!(
        got,
        vec![
            (FrameType::Ping, true, b"ping".to_vec()),
            (FrameType::Text, false, b"Hel".to_vec()),
            (FrameType::Pong, true, b"pong".to_vec()),
            (FrameType::Continuation, true, b"lo".to_vec()),
        ]
    );
    assert!(s.output_bytes().is_empty(), "no automatic pong");
}

#[test]
fn raw_mode_shows_the_close_and_waits_for_the_handler_to_answer() {
    let now = Instant::now();
    let mut s = server_with(WebSocketOptions::default(), true, now);
    s.receive_data(&from_client(true, 0x8, &close_payload(4000, "raw")));
    let close = s.poll_event(now).expect("the Close is delivered");
    assert_eq!(
        close.read_close_reason(),
        Some(CloseReason::new(4000, "raw"))
    );
    assert!(s.output_bytes().is_empty(), "no automatic reply");
    s.send(Frame::close(CloseReason::new(4000, "")), now)
        .unwrap();
    assert_eq!(frames_in(&s.output_bytes())[0].1, 0x8);
    assert_eq!(s.close_reason().map(|r| u16::from(r.code)), Some(4000));
    assert!(s.take_shutdown());
}

#[test]
fn raw_mode_keeps_the_rsv_bits_an_extension_owns() {
    let now = Instant::now();
    let mut config = Config::new(Role::Server, &WebSocketOptions::default());
    config.raw = true;
    config.allowed_rsv = Rsv::RSV1;
    let mut s = Protocol::new(Role::Server, config, now);
    s.receive_data(&wire(true, Rsv::RSV1, 0x2, b"z", Some(KEY)));
    let frame = s.poll_event(now).unwrap();
    assert_eq!(frame.rsv(), Rsv::RSV1);
}

#[test]
fn idle_buffers_are_released_only_when_empty_and_the_engine_carries_on() {
    let now = Instant::now();
    let mut s = server(now);
    // Half a frame buffered: buffered_input says so, and release keeps it.
    let frame = from_client(true, 0x1, b"hello");
    s.receive_data(&frame[..4]);
    assert_eq!(s.poll_event(now), None);
    assert!(s.buffered_input() > 0);
    s.release_idle_buffers();
    s.receive_data(&frame[4..]);
    assert_eq!(s.poll_event(now), Some(Frame::text("hello")));
    assert_eq!(s.buffered_input(), 0);
    // Output waiting is kept too; once written, both buffers can go.
    s.send(Frame::text("back"), now).unwrap();
    s.release_idle_buffers();
    assert_eq!(s.output_bytes(), vec![0x81, 4, b'b', b'a', b'c', b'k']);
    s.release_idle_buffers();
    s.receive_data(&from_client(true, 0x1, b"again"));
    assert_eq!(s.poll_event(now), Some(Frame::text("again")));
    s.send(Frame::text("ok"), now).unwrap();
    assert_eq!(s.output_bytes(), vec![0x81, 2, b'o', b'k']);
}

#[test]
fn every_ping_is_answered_while_output_is_small() {
    let now = Instant::now();
    let mut p = server(now);
    for i in 0..10u8 {
        p.receive_data(&from_client(true, 0x9, &[i; 20]));
    }
    assert_eq!(p.poll_event(now), None);
    let pongs = frames_in(&p.output_bytes());
    assert_eq!(pongs.len(), 10, "one pong per ping");
    for (i, (_, opcode, payload)) in pongs.into_iter().enumerate() {
        assert_eq!((opcode, payload), (0xA, vec![i as u8; 20]));
    }
}

#[test]
fn a_ping_flood_nobody_reads_answers_only_the_latest_ping() {
    let now = Instant::now();
    let mut p = server(now);
    // Ten thousand pings, the output never written: 1.2 MB of pongs if
    // each were answered.
    for i in 0..10_000u32 {
        let mut payload = [0u8; 125];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        p.receive_data(&from_client(true, 0x9, &payload));
        assert_eq!(p.poll_event(now), None);
        assert!(
            p.output_len() <= CONTROL_OUTPUT_LIMIT + 2 + 125,
            "output grew to {} bytes",
            p.output_len()
        );
    }
    // Once the output drains, the latest ping gets its pong; the ones in
    // between are never answered.
    let pongs = frames_in(&p.output_bytes());
    let (_, opcode, last) = pongs.last().unwrap().clone();
    assert_eq!(opcode, 0xA);
    assert_eq!(last[..4], 9_999u32.to_be_bytes());
    assert!(pongs.len() < 200, "{} pongs", pongs.len());
}

#[test]
fn the_pong_that_waited_goes_out_as_the_output_drains() {
    let now = Instant::now();
    let mut p = server(now);
    p.send(Frame::binary(vec![0; CONTROL_OUTPUT_LIMIT]), now)
        .unwrap();
    p.receive_data(&from_client(true, 0x9, b"late"));
    assert_eq!(p.poll_event(now), None);
    let queued = p.output_len();
    // The socket takes the whole data frame: the pong follows at once.
    p.consume_output(queued, now);
    assert_eq!(
        frames_in(&p.output_bytes()),
        vec![(true, 0xA, b"late".to_vec())]
    );
}

#[test]
fn no_timer_ping_joins_output_that_does_not_drain() {
    let now = Instant::now();
    let options = WebSocketOptions {
        ping_period: Some(Duration::from_secs(1)),
        timeout: Duration::from_secs(60),
        ..WebSocketOptions::default()
    };
    let mut p = server_with(options, false, now);
    p.send(Frame::binary(vec![0; CONTROL_OUTPUT_LIMIT]), now)
        .unwrap();
    let queued = p.output_len();
    for s in 1..=30 {
        p.handle_timeout(now + Duration::from_secs(s));
    }
    assert_eq!(p.output_len(), queued, "no ping queued behind stuck output");
}

#[test]
fn a_zero_ping_period_sends_no_pings() {
    let now = Instant::now();
    let options = WebSocketOptions {
        ping_period: Some(Duration::ZERO),
        ..WebSocketOptions::default()
    };
    let mut p = server_with(options, false, now);
    assert_eq!(p.poll_timeout(), None);
    p.handle_timeout(now + Duration::from_secs(3600));
    assert_eq!(p.output_len(), 0);
}

#[test]
fn the_largest_durations_mean_never_and_do_not_panic() {
    let now = Instant::now();
    let options = WebSocketOptions {
        ping_period: Some(Duration::MAX),
        timeout: Duration::MAX,
        close_timeout: Duration::MAX,
        ..WebSocketOptions::default()
    };
    for role in [Role::Server, Role::Client] {
        let mut p = Protocol::new(role, Config::new(role, &options), now);
        let later = now + Duration::from_secs(100 * 365 * 24 * 3600);
        assert_eq!(p.poll_timeout(), None);
        p.send(Frame::text("x"), now).unwrap();
        // Output that never drains and a ping never answered: no deadline
        // can be computed, so none fires.
        p.handle_timeout(later);
        assert!(p.close_reason().is_none());
        p.close(CloseReason::normal(), now).unwrap();
        p.handle_timeout(later);
        assert!(!p.is_finished(), "the close timeout is never");
        // A peer's violation still ends the session after its grace.
        let mut q = Protocol::new(role, Config::new(role, &options), now);
        let frame = match role {
            Role::Server => from_client(true, 0x3, b""),
            Role::Client => wire(true, Rsv::NONE, 0x3, b"", None),
        };
        q.receive_data(&frame);
        assert_eq!(q.poll_event(now), None);
        q.handle_timeout(now + Duration::from_secs(1));
        assert_eq!(q.close_reason().map(|r| u16::from(r.code)), Some(1002));
    }
}
