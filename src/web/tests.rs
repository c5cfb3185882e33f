//! Unit tests of the browser backend's pure parts; they run in the browser
//! with the lib's test binary (`wasm-pack test --headless --chrome -- --lib`).

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

use super::check_outgoing;
use super::driver::browser_close;
use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::extensions::ExtensionHeader;
use crate::frame::{Frame, FrameType, Rsv};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn codes_scripts_may_send_pass_through() {
    for code in [1000u16, 3000, 4001, 4999] {
        let (sent, reason) = browser_close(&CloseReason::new(code, "why"));
        assert_eq!((sent, reason.as_str()), (code, "why"));
    }
}

#[wasm_bindgen_test]
fn other_codes_become_1000_with_the_code_in_the_reason() {
    let (code, reason) = browser_close(&CloseReason::new(CloseCode::TooBig, "too big"));
    assert_eq!((code, reason.as_str()), (1000, "1009 too big"));
    let (code, reason) = browser_close(&CloseReason::new(CloseCode::GoingAway, ""));
    assert_eq!((code, reason.as_str()), (1000, "1001"));
}

#[wasm_bindgen_test]
fn reasons_are_cut_to_123_bytes_on_a_char_boundary() {
    let (_, reason) = browser_close(&CloseReason::new(4000u16, "é".repeat(100)));
    assert_eq!(reason.len(), 122);
    let (_, reason) = browser_close(&CloseReason::new(1011u16, "x".repeat(200)));
    assert_eq!(reason.len(), 123);
    assert!(reason.starts_with("1011 xxx"));
}

#[wasm_bindgen_test]
fn extensions_parse_with_parameters() {
    let parse_extensions = |header: &str| ExtensionHeader::parse_list(header).unwrap();
    assert!(parse_extensions("").is_empty());
    assert_eq!(
        parse_extensions("permessage-deflate; client_max_window_bits=15; server_no_context_takeover, x-other; a=\"b\""),
        vec![
            ExtensionHeader::new_with(
                "permessage-deflate",
                vec![
                    ("client_max_window_bits".into(), Some("15".into())),
                    ("server_no_context_takeover".into(), None),
                ]
            ),
            ExtensionHeader::new_with("x-other", vec![("a".into(), Some("b".into()))]),
        ]
    );
}

#[wasm_bindgen_test]
fn frames_a_browser_cannot_send_are_refused() {
    let unsupported = |frame: Frame| matches!(check_outgoing(&frame), Err(Error::Unsupported(_)));
    assert!(unsupported(Frame::ping("")));
    assert!(unsupported(Frame::pong("")));
    assert!(unsupported(Frame::text("a").with_fin(false)));
    assert!(unsupported(Frame::new(FrameType::Continuation, "a")));
    assert!(unsupported(Frame::binary(vec![1u8]).with_rsv(Rsv::RSV1)));
    assert!(matches!(
        check_outgoing(&Frame::new(FrameType::Text, vec![0xC3u8])),
        Err(Error::InvalidFrame(_))
    ));
    assert!(check_outgoing(&Frame::text("ok")).is_ok());
    assert!(check_outgoing(&Frame::binary(vec![0u8])).is_ok());
    assert!(check_outgoing(&Frame::close(CloseReason::normal())).is_ok());
}
