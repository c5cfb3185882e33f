//! The opening handshake's parsers fed arbitrary bytes: the request side
//! (head parser, upgrade checks, subprotocol and extension offers) and the
//! client's response side (head parser, answer checks, extension answers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::extensions::ExtensionHeader;
use tandem::protocol::handshake;

fuzz_target!(|data: &[u8]| {
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
});
