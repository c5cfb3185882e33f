use super::codec::{DeflateExtension, Deflater, Inflater};
use super::params::{self, Direction, Params, Wants};
use super::PerMessageDeflate;
use crate::close::CloseCode;
use crate::error::Error;
use crate::extensions::{Extension, ExtensionFactory, ExtensionHeader};
use crate::frame::{Frame, FrameType, Rsv};

fn header(value: &str) -> ExtensionHeader {
    let mut list = ExtensionHeader::parse_list(value).expect("a valid header");
    assert_eq!(list.len(), 1);
    list.remove(0)
}

/// The server's answer to `offer`, as a string, or `None` if declined.
fn answer(server: &PerMessageDeflate, offer: &str) -> Option<String> {
    server.accept(&header(offer)).map(|(a, _)| a.to_string())
}

fn agreement_of(wants: &Wants, offer: &str) -> params::Agreement {
    params::answer(wants, &header(offer)).expect("accepted").1
}

fn dir(window_bits: u8, no_context_takeover: bool) -> Direction {
    Direction {
        window_bits,
        no_context_takeover,
    }
}

/// A client and a server extension, negotiated through the factory API.
fn pair(
    client: &PerMessageDeflate,
    server: &PerMessageDeflate,
) -> (Box<dyn Extension>, Box<dyn Extension>, String) {
    let offers = client.offers();
    let (answer, server_ext) = offers
        .iter()
        .find_map(|o| server.accept(o))
        .expect("the server accepts");
    let client_ext = client.confirm(&answer).expect("the client confirms");
    (client_ext, server_ext, answer.to_string())
}

fn protocol_code(result: Result<Frame, Error>) -> CloseCode {
    match result {
        Err(Error::Protocol { code, .. }) => code,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

// ----- parameters ------------------------------------------------------------

#[test]
fn parameters_parse_and_format() {
    let p = Params::parse(&header(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits",
    ))
    .unwrap();
    assert_eq!(
        p,
        Params {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(None),
        }
    );
    assert_eq!(
        p.to_header().to_string(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits"
    );
    // Quoted values and any case are fine.
    let p = Params::parse(&header("permessage-deflate; Client_Max_Window_Bits=\"8\"")).unwrap();
    assert_eq!(p.client_max_window_bits, Some(Some(8)));
}

#[test]
fn invalid_parameters_are_refused() {
    for bad in [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=\"\"",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=1000",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; x_unknown",
    ] {
        assert!(Params::parse(&header(bad)).is_err(), "{bad}");
    }
    // Built by hand: a repeated parameter (a parsed header cannot have one).
    let twice = ExtensionHeader::new("permessage-deflate")
        .with_param("server_no_context_takeover", None)
        .with_param("SERVER_NO_CONTEXT_TAKEOVER", None);
    assert!(Params::parse(&twice).is_err());
}

// ----- the server's side ---------------------------------------------------------

#[test]
fn server_accepts_with_its_defaults() {
    let server = PerMessageDeflate::new();
    // What browsers offer: our compressor at 12 bits, reset after each
    // message; the client's unlimited.
    assert_eq!(
        answer(&server, "permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=12")
    );
    assert_eq!(
        answer(&server, "permessage-deflate").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=12")
    );
    // A client's hint that it resets anyway is echoed.
    assert_eq!(
        answer(&server, "permessage-deflate; client_no_context_takeover").as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12"
        )
    );
    // A client's own window hint is confirmed.
    assert_eq!(
        answer(&server, "permessage-deflate; client_max_window_bits=10").as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; \
             client_max_window_bits=10"
        )
    );
    // A server that keeps its context says nothing about it...
    let takeover = PerMessageDeflate::new().server_no_context_takeover(false);
    assert_eq!(
        answer(&takeover, "permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate; server_max_window_bits=12")
    );
    // ...unless asked not to keep it: honoured.
    assert_eq!(
        answer(&takeover, "permessage-deflate; server_no_context_takeover").as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=12")
    );
}

#[test]
fn server_adjusts_windows_to_its_limits() {
    let server = PerMessageDeflate::new().server_no_context_takeover(false);
    // Lowered to our 12...
    assert_eq!(
        answer(&server, "permessage-deflate; server_max_window_bits=15").as_deref(),
        Some("permessage-deflate; server_max_window_bits=12")
    );
    // ...or kept when smaller, 8 included.
    for bits in 8..=12 {
        assert_eq!(
            answer(
                &server,
                &format!("permessage-deflate; server_max_window_bits={bits}")
            ),
            Some(format!("permessage-deflate; server_max_window_bits={bits}"))
        );
    }
    // A server allowed 15 answers an offer of 15 with 15, and says nothing
    // otherwise.
    let wide = server.clone().server_max_window_bits(15);
    assert_eq!(
        answer(&wide, "permessage-deflate; server_max_window_bits=15").as_deref(),
        Some("permessage-deflate; server_max_window_bits=15")
    );
    assert_eq!(
        answer(&wide, "permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate")
    );
    // A limit on the client's window only when the client allows one.
    let strict = wide.client_max_window_bits(10);
    assert_eq!(
        answer(&strict, "permessage-deflate; client_max_window_bits").as_deref(),
        Some("permessage-deflate; client_max_window_bits=10")
    );
    assert_eq!(
        answer(&strict, "permessage-deflate; client_max_window_bits=9").as_deref(),
        Some("permessage-deflate; client_max_window_bits=9")
    );
    assert_eq!(
        answer(&strict, "permessage-deflate").as_deref(),
        Some("permessage-deflate")
    );
}

#[test]
fn server_adds_the_no_context_takeover_it_requires() {
    let server = PerMessageDeflate::new()
        .server_no_context_takeover(true)
        .client_no_context_takeover(true);
    assert_eq!(
        answer(&server, "permessage-deflate; client_max_window_bits").as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12"
        )
    );
}

#[test]
fn server_declines_invalid_offers() {
    let server = PerMessageDeflate::new();
    for bad in [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; foo=bar",
    ] {
        assert_eq!(answer(&server, bad), None, "{bad}");
    }
}

#[test]
fn server_agreement_follows_its_answer() {
    let wants = Wants {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: Some(12),
        client_max_window_bits: None,
    };
    let a = agreement_of(&wants, "permessage-deflate; client_max_window_bits");
    assert_eq!((a.outgoing, a.incoming), (dir(12, false), dir(15, false)));
    let a = agreement_of(
        &wants,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=9; client_max_window_bits=11",
    );
    assert_eq!((a.outgoing, a.incoming), (dir(9, true), dir(11, true)));
}

#[test]
fn several_offers_pick_the_first_acceptable() {
    // As Autobahn's 13.7.x: (no context takeover, 9 bits), then two others.
    let offers = ExtensionHeader::parse_list(
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=9, \
         permessage-deflate; server_no_context_takeover, permessage-deflate",
    )
    .unwrap();
    let mut extensions = crate::extensions::Extensions::default();
    extensions.add(std::sync::Arc::new(PerMessageDeflate::new()));
    let (answers, negotiated) = extensions.accept(&offers);
    assert_eq!(negotiated.len(), 1);
    assert_eq!(
        answers[0].to_string(),
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
    );
    // An invalid first offer falls through to the next.
    let offers =
        ExtensionHeader::parse_list("permessage-deflate; x=1, permessage-deflate").unwrap();
    let (answers, _) = extensions.accept(&offers);
    assert_eq!(
        answers[0].to_string(),
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"
    );
}

// ----- the client's side ---------------------------------------------------------

#[test]
fn client_offers() {
    let offers = |d: PerMessageDeflate| {
        d.offers()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        offers(PerMessageDeflate::new()),
        ["permessage-deflate; client_max_window_bits=12"]
    );
    assert_eq!(
        offers(PerMessageDeflate::new().client_max_window_bits(15)),
        ["permessage-deflate; client_max_window_bits"]
    );
    assert_eq!(
        offers(
            PerMessageDeflate::new()
                .server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(10)
                .client_max_window_bits(9)
                .offer_fallback(true)
        ),
        [
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        ]
    );
    // Nothing to fall back from: one offer.
    assert_eq!(
        offers(
            PerMessageDeflate::new()
                .client_max_window_bits(15)
                .offer_fallback(true)
        ),
        ["permessage-deflate; client_max_window_bits"]
    );
}

fn confirm(client: &PerMessageDeflate, answer: &str) -> Result<params::Agreement, String> {
    params::confirm(
        &client.client_wants(),
        &client.client_offers(),
        &header(answer),
    )
}

#[test]
fn client_accepts_valid_answers() {
    let client = PerMessageDeflate::new();
    let a = confirm(&client, "permessage-deflate").unwrap();
    assert_eq!((a.outgoing, a.incoming), (dir(12, false), dir(15, false)));
    // The server may lower our window, and set anything about its own.
    let a = confirm(
        &client,
        "permessage-deflate; client_max_window_bits=9; server_max_window_bits=8; \
         server_no_context_takeover; client_no_context_takeover",
    )
    .unwrap();
    assert_eq!((a.outgoing, a.incoming), (dir(9, true), dir(8, true)));
    // A bigger window than ours for us: we keep ours.
    let a = confirm(&client, "permessage-deflate; client_max_window_bits=15").unwrap();
    assert_eq!(a.outgoing, dir(12, false));
    // We reset our own context if we said we would.
    let resetting = PerMessageDeflate::new().client_no_context_takeover(true);
    let a = confirm(&resetting, "permessage-deflate").unwrap();
    assert_eq!(a.outgoing, dir(12, true));
}

#[test]
fn client_refuses_invalid_answers() {
    let client = PerMessageDeflate::new();
    for bad in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_no_context_takeover=yes",
        "permessage-deflate; mystery",
    ] {
        assert!(confirm(&client, bad).is_err(), "{bad}");
    }
    // What we asked of the server must be in the answer.
    let asking = PerMessageDeflate::new()
        .server_no_context_takeover(true)
        .server_max_window_bits(10);
    for bad in [
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
    ] {
        assert!(confirm(&asking, bad).is_err(), "{bad}");
    }
    assert!(confirm(
        &asking,
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
    )
    .is_ok());
    // ...unless we also offered the plain fallback.
    let fallback = asking.clone().offer_fallback(true);
    assert!(confirm(&fallback, "permessage-deflate").is_ok());
    // client_max_window_bits in an answer to an offer without it.
    let offers = [Params::default()];
    let wants = PerMessageDeflate::new().client_wants();
    assert!(params::confirm(
        &wants,
        &offers,
        &header("permessage-deflate; client_max_window_bits=10")
    )
    .is_err());
    assert!(params::confirm(&wants, &offers, &header("permessage-deflate")).is_ok());
}

#[test]
fn a_refused_answer_fails_the_handshake_through_the_factory() {
    let client = PerMessageDeflate::new();
    let error = client
        .confirm(&header("permessage-deflate; unknown_param"))
        .unwrap_err();
    assert!(error.contains("unknown_param"), "{error}");
}

// ----- messages ----------------------------------------------------------------

fn text(s: &str) -> Frame {
    Frame::text(s)
}

/// A few KiB of JSON-like text that compresses well.
fn sample(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":{i},\"name\":\"user {i}\",\"online\":true}},"))
        .collect()
}

#[test]
fn round_trips_both_ways() {
    for (client, server) in [
        (PerMessageDeflate::new(), PerMessageDeflate::new()),
        (
            PerMessageDeflate::new().client_no_context_takeover(true),
            PerMessageDeflate::new().server_no_context_takeover(true),
        ),
        (
            PerMessageDeflate::new().client_max_window_bits(8),
            PerMessageDeflate::new()
                .server_max_window_bits(8)
                .client_max_window_bits(8),
        ),
        (
            PerMessageDeflate::new().client_max_window_bits(15),
            PerMessageDeflate::new().server_max_window_bits(15),
        ),
    ] {
        let (mut c, mut s, agreed) = pair(&client, &server);
        for n in [1, 10, 1000, 10] {
            let message = sample(n);
            let sent = c.encode(text(&message)).unwrap();
            assert!(sent.rsv().contains(Rsv::RSV1), "{agreed}");
            let got = s.decode(sent, None).unwrap();
            assert_eq!(got.read_text(), Some(message.as_str()), "{agreed}");
            assert!(got.rsv().is_empty());

            let data: Vec<u8> = message.bytes().rev().collect();
            let sent = s.encode(Frame::binary(data.clone())).unwrap();
            assert_eq!(sent.frame_type(), FrameType::Binary);
            let got = c.decode(sent, None).unwrap();
            assert_eq!(got.read_bytes(), &data[..], "{agreed}");
        }
    }
}

#[test]
fn context_takeover_shrinks_repeated_messages_and_its_absence_does_not() {
    let message = sample(20);
    let sizes = |client: PerMessageDeflate| {
        let (mut c, mut s, _) = pair(&client, &PerMessageDeflate::new());
        (0..3)
            .map(|_| {
                let sent = c.encode(text(&message)).unwrap();
                let len = sent.read_bytes().len();
                assert_eq!(s.decode(sent, None).unwrap().read_text(), Some(&*message));
                len
            })
            .collect::<Vec<_>>()
    };
    let kept = sizes(PerMessageDeflate::new());
    assert!(kept[1] < kept[0] / 4, "{kept:?}");
    let reset = sizes(PerMessageDeflate::new().client_no_context_takeover(true));
    assert_eq!(reset[0], reset[1]);
    assert_eq!(reset[1], reset[2]);
}

#[test]
fn state_is_created_lazily_and_dropped_without_context_takeover() {
    let message = sample(10);
    for no_context_takeover in [false, true] {
        let mut deflater = Deflater::new(dir(12, no_context_takeover), 6);
        let mut inflater = Inflater::new(dir(12, no_context_takeover));
        assert!(!deflater.is_allocated() && !inflater.is_allocated());
        let compressed = deflater.compress(message.as_bytes()).unwrap();
        let inflated = inflater.decompress(&compressed, None).unwrap();
        assert_eq!(inflated, message.as_bytes());
        assert_eq!(deflater.is_allocated(), !no_context_takeover);
        assert_eq!(inflater.is_allocated(), !no_context_takeover);
    }
}

#[test]
fn small_messages_and_unwanted_ones_go_uncompressed() {
    let client = PerMessageDeflate::new()
        .compress_if_bigger_than(16)
        .compress_if(|frame| frame.read_text() != Some("do not compress me, please"));
    let (mut c, mut s, _) = pair(&client, &PerMessageDeflate::new());
    for (message, compressed) in [
        ("", false),
        ("exactly 16 bytes", false),
        ("seventeen bytes!!", true),
        ("do not compress me, please", false),
        ("compress me, please, compress me", true),
    ] {
        let sent = c.encode(text(message)).unwrap();
        assert_eq!(sent.rsv().contains(Rsv::RSV1), compressed, "{message:?}");
        if !compressed {
            assert_eq!(sent.read_text(), Some(message));
        }
        // The engine only hands RSV1 messages to decode; either way they
        // come out as sent.
        assert_eq!(s.decode(sent, None).unwrap().read_text(), Some(message));
    }
    // The default compresses everything but empty messages.
    let (mut c, _, _) = pair(&PerMessageDeflate::new(), &PerMessageDeflate::new());
    assert!(c.encode(text("a")).unwrap().rsv().contains(Rsv::RSV1));
    assert!(c.encode(text("")).unwrap().rsv().is_empty());
}

// ----- RFC 7692 §7.2.3 vectors ----------------------------------------------------

fn inflate_all(messages: &[&[u8]], no_context_takeover: bool) -> Vec<Vec<u8>> {
    let mut inflater = Inflater::new(dir(15, no_context_takeover));
    messages
        .iter()
        .map(|m| inflater.decompress(m, None).unwrap())
        .collect()
}

#[test]
fn rfc_7692_hello() {
    // §7.2.3.1: "Hello", compressed.
    let hello: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut deflater = Deflater::new(dir(15, false), 6);
    assert_eq!(deflater.compress(b"Hello").unwrap(), hello);
    assert_eq!(inflate_all(&[hello], true), [b"Hello"]);
    // §7.2.3.2: the second "Hello" with the window taken over.
    let again: &[u8] = &[0xf2, 0x00, 0x11, 0x00, 0x00];
    assert_eq!(deflater.compress(b"Hello").unwrap(), again);
    assert_eq!(inflate_all(&[hello, again], false), [b"Hello", b"Hello"]);
    // Without takeover, each is compressed alone.
    let mut deflater = Deflater::new(dir(15, true), 6);
    assert_eq!(deflater.compress(b"Hello").unwrap(), hello);
    assert_eq!(deflater.compress(b"Hello").unwrap(), hello);
}

#[test]
fn rfc_7692_other_vectors() {
    // §7.2.3.3: a stored (uncompressed) block.
    let stored: &[u8] = &[
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    // §7.2.3.4: a final block (BFINAL set).
    let last: &[u8] = &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    // §7.2.3.5: two DEFLATE blocks in one message.
    let two: &[u8] = &[
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    for vector in [stored, last, two] {
        assert_eq!(inflate_all(&[vector], false), [b"Hello"]);
    }
    // A final block ends the stream; the next message starts a new one.
    assert_eq!(inflate_all(&[last, last], false), [b"Hello", b"Hello"]);
    // §7.2.3.6: an empty message is one 0x00 byte.
    assert_eq!(inflate_all(&[&[0x00]], false), [b""]);
    let mut deflater = Deflater::new(dir(15, false), 6);
    assert_eq!(deflater.compress(b"").unwrap(), [0x00]);
}

#[test]
fn corrupt_data_fails_with_1002() {
    let (_, mut s, _) = pair(&PerMessageDeflate::new(), &PerMessageDeflate::new());
    for garbage in [
        &[0x07][..],                         // BTYPE 11: reserved
        &[0x00, 0x05, 0x00, 0x00, 0x00][..], // stored block with LEN != !NLEN
    ] {
        let frame = Frame::binary(garbage.to_vec()).with_rsv(Rsv::RSV1);
        assert_eq!(
            protocol_code(s.decode(frame, None)),
            CloseCode::ProtocolError,
            "{garbage:02x?}"
        );
    }
    // A distance before the start of the stream.
    let mut inflater = Inflater::new(dir(15, false));
    let far = Deflater::new(dir(15, false), 6)
        .compress(&sample(10).repeat(2).into_bytes())
        .unwrap();
    // Drop the first block's literal bytes: later matches then point nowhere.
    assert!(inflater.decompress(&far[far.len() / 2..], None).is_err());
}

// ----- sizes and bombs --------------------------------------------------------------

#[test]
fn the_limit_applies_to_the_inflated_size() {
    let message = vec![b'a'; 10_000];
    let compressed = Deflater::new(dir(15, true), 6).compress(&message).unwrap();
    assert!(compressed.len() < 100);
    let mut inflater = Inflater::new(dir(15, true));
    assert_eq!(
        inflater.decompress(&compressed, Some(10_000)).unwrap(),
        message
    );
    let error = inflater.decompress(&compressed, Some(9_999)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Protocol {
                code: CloseCode::TooBig,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    // 10 MB of zeros compress to about 10 KB.
    let bomb = Deflater::new(dir(15, true), 9)
        .compress(&vec![0u8; 10_000_000])
        .unwrap();
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    const LIMIT: usize = 1 << 20;
    let mut inflater = Inflater::new(dir(15, false));
    let error = inflater.decompress(&bomb, Some(LIMIT)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Protocol {
                code: CloseCode::TooBig,
                ..
            }
        ),
        "{error}"
    );
    // The output buffer never grew past the limit (+1 byte to detect it).
    assert!(
        inflater.peak_output <= LIMIT + 1,
        "{}",
        inflater.peak_output
    );
    assert!(inflater.peak_output >= LIMIT / 2);
    // And through the extension, as the engine calls it.
    let (_, mut s, _) = pair(&PerMessageDeflate::new(), &PerMessageDeflate::new());
    let frame = Frame::binary(bomb).with_rsv(Rsv::RSV1);
    assert_eq!(
        protocol_code(s.decode(frame, Some(LIMIT))),
        CloseCode::TooBig
    );
}

#[test]
fn a_small_limit_allocates_little() {
    let bomb = Deflater::new(dir(15, true), 9)
        .compress(&vec![0u8; 1_000_000])
        .unwrap();
    let mut inflater = Inflater::new(dir(15, false));
    assert!(inflater.decompress(&bomb, Some(100)).is_err());
    assert_eq!(inflater.peak_output, 101);
}

// ----- window bits 8 ------------------------------------------------------------------

/// The longest match distance in a raw DEFLATE stream (a small decoder in
/// the manner of zlib's `puff.c`): what a receiver's window must hold.
/// Panics on invalid data.
fn max_distance(data: &[u8]) -> usize {
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
    }
    impl Bits<'_> {
        fn bit(&mut self) -> Option<usize> {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (self.pos % 8)) & 1;
            self.pos += 1;
            Some(bit as usize)
        }
        fn bits(&mut self, n: usize) -> usize {
            (0..n).map(|i| self.bit().expect("truncated") << i).sum()
        }
    }
    /// Canonical Huffman code: symbol counts per length and the symbols.
    struct Huffman {
        count: [usize; 16],
        symbols: Vec<usize>,
    }
    impl Huffman {
        fn new(lengths: &[usize]) -> Self {
            let mut count = [0; 16];
            lengths.iter().for_each(|&l| count[l] += 1);
            count[0] = 0;
            let mut symbols: Vec<usize> = (0..lengths.len()).filter(|&s| lengths[s] > 0).collect();
            symbols.sort_by_key(|&s| lengths[s]);
            Self { count, symbols }
        }
        fn decode(&self, bits: &mut Bits<'_>) -> usize {
            let (mut code, mut first, mut index) = (0, 0, 0);
            for len in 1..16 {
                code |= bits.bits(1);
                let count = self.count[len];
                if code < first + count {
                    return self.symbols[index + code - first];
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            panic!("invalid Huffman code");
        }
    }
    const LEN_BASE: [usize; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEN_EXTRA: [usize; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [usize; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [usize; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];
    let data = [data, &[0x00, 0x00, 0xff, 0xff]].concat();
    let mut bits = Bits {
        data: &data,
        pos: 0,
    };
    let mut max = 0;
    while bits.pos + 8 <= data.len() * 8 {
        let last = bits.bits(1);
        let (lit, dist) = match bits.bits(2) {
            0 => {
                bits.pos = bits.pos.div_ceil(8) * 8;
                let len = bits.bits(16);
                assert_eq!(len ^ 0xffff, bits.bits(16), "stored block length");
                bits.pos += len * 8;
                if last == 1 {
                    break;
                }
                continue;
            }
            1 => {
                let mut lengths = [8; 288];
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                (Huffman::new(&lengths), Huffman::new(&[5; 30]))
            }
            2 => {
                let (nlen, ndist, ncode) = (bits.bits(5) + 257, bits.bits(5) + 1, bits.bits(4) + 4);
                const ORDER: [usize; 19] = [
                    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                ];
                let mut code_lengths = [0; 19];
                for &i in &ORDER[..ncode] {
                    code_lengths[i] = bits.bits(3);
                }
                let code = Huffman::new(&code_lengths);
                let mut lengths = Vec::new();
                while lengths.len() < nlen + ndist {
                    match code.decode(&mut bits) {
                        s @ 0..=15 => lengths.push(s),
                        16 => {
                            let prev = *lengths.last().expect("a length to repeat");
                            let n = 3 + bits.bits(2);
                            lengths.extend(std::iter::repeat_n(prev, n));
                        }
                        17 => {
                            let n = 3 + bits.bits(3);
                            lengths.extend(std::iter::repeat_n(0, n));
                        }
                        _ => {
                            let n = 11 + bits.bits(7);
                            lengths.extend(std::iter::repeat_n(0, n));
                        }
                    }
                }
                (
                    Huffman::new(&lengths[..nlen]),
                    Huffman::new(&lengths[nlen..]),
                )
            }
            _ => panic!("reserved block type"),
        };
        loop {
            match lit.decode(&mut bits) {
                0..=255 => {}
                256 => break,
                s => {
                    let s = s - 257;
                    let _length = LEN_BASE[s] + bits.bits(LEN_EXTRA[s]);
                    let d = dist.decode(&mut bits);
                    max = max.max(DIST_BASE[d] + bits.bits(DIST_EXTRA[d]));
                }
            }
        }
        if last == 1 {
            break;
        }
    }
    max
}

#[test]
fn an_8_bit_window_is_honoured_with_zlibs_9() {
    // Repeats 300 bytes apart and 200 bytes apart: a 9-bit window could
    // refer to both, an 8-bit one only to the second.
    let unit: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    let short: Vec<u8> = (0..200u32).map(|i| (i * 13 % 241) as u8).collect();
    let data = [unit.repeat(40), short.repeat(40)].concat();
    for level in [1, 6, 9] {
        let compressed = Deflater::new(dir(8, false), level).compress(&data).unwrap();
        let distance = max_distance(&compressed);
        assert!((200..=256).contains(&distance), "level {level}: {distance}");
        let mut inflater = Inflater::new(dir(8, false));
        assert_eq!(inflater.decompress(&compressed, None).unwrap(), data);
    }
    // The check is real: a 15-bit compressor refers 300 bytes back.
    let wide = Deflater::new(dir(15, false), 9).compress(&data).unwrap();
    assert_eq!(max_distance(&wide), 300);
    // And the decoder agrees with the RFC's vectors: "Hello" has no match,
    // the second "Hello" of §7.2.3.2 is one match 5 bytes back.
    assert_eq!(max_distance(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), 0);
    assert_eq!(max_distance(&[0xf2, 0x00, 0x11, 0x00, 0x00]), 5);
}

#[test]
fn extension_debug_shows_the_agreement() {
    let ext = DeflateExtension {
        deflater: Deflater::new(dir(12, false), 6),
        inflater: Inflater::new(dir(15, true)),
        threshold: 0,
        predicate: None,
    };
    let shown = format!("{ext:?}");
    assert!(shown.contains("window_bits: 12"), "{shown}");
    assert!(format!("{:?}", PerMessageDeflate::new()).contains("compression_level: 6"));
}
