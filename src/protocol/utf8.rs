//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames, and a frame across reads, at
//! any byte, even inside a character. The validator keeps the (at most three)
//! bytes of an unfinished character between pieces and fails as soon as a
//! byte makes the text invalid, not when the message ends: Autobahn's 6.4
//! cases check exactly that ("fail fast").

/// The text was not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a stream of bytes as UTF-8, piece by piece.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next piece. Fails as soon as a byte cannot continue valid UTF-8.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let want = sequence_len(self.partial[0]);
            let take = (want - have).min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let have = have + take;
            data = &data[take..];
            match std::str::from_utf8(&self.partial[..have]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still unfinished: every byte of this piece went into it.
                    self.partial_len = have as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
        }
        // Most text is ASCII: a word-at-a-time scan settles it for a few
        // instructions where the full validation costs about five a byte on
        // a short message.
        if data.is_ascii() {
            return Ok(());
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Checks that the message does not end inside a character.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.partial_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// The length of the sequence that a valid lead byte starts.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xF4 => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_pieces(bytes: &[u8], split: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &end in split.iter().chain(std::iter::once(&bytes.len())) {
            v.feed(&bytes[start..end])?;
            start = end;
        }
        v.finish()
    }

    #[test]
    fn valid_text_split_at_every_byte_is_accepted() {
        let text = "κόσμε, Hello-µ@ßöäüàá-UTF-8!! 𝄞 \u{10FFFF}".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(in_pieces(text, &[a, b]), Ok(()), "split {a} {b}");
            }
        }
    }

    #[test]
    fn invalid_byte_fails_at_the_piece_that_carries_it() {
        // 0xF4 0x90 starts a code point above U+10FFFF: invalid at its second byte.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok \xF4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn surrogates_and_overlongs_fail_fast() {
        for bad in [&b"\xED\xA0"[..], b"\xE0\x80", b"\xC0", b"\xF5", b"\xFF"] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(bad), Err(InvalidUtf8), "{bad:x?}");
        }
    }

    #[test]
    fn message_that_ends_inside_a_character_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("é".as_bytes().get(..1).unwrap()), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn agrees_with_std_on_every_two_byte_input() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let bytes = [a, b];
                let expect = std::str::from_utf8(&bytes).is_ok();
                assert_eq!(in_pieces(&bytes, &[1]).is_ok(), expect, "{bytes:x?}");
            }
        }
    }
}
