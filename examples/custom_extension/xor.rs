//! `x-xor`: a toy extension that XORs every message it marks with RSV3.
//!
//! The client offers `x-xor; key=N`; the server accepts any key from 1 to
//! 255 and answers with it; both then XOR each outgoing message with the key
//! and set RSV3, and undo it on messages that carry RSV3. It shows every
//! part of the extension API: an offer, an answer, a check of the answer,
//! an RSV bit, and a transform on each side.

use tandem::extensions::{Extension, ExtensionFactory, ExtensionHeader};
use tandem::{Error, Frame, Rsv};

/// The factory: configure it with the key a client offers.
#[derive(Debug, Clone, Copy)]
pub struct Xor {
    /// The key a client offers (a server accepts any key but 0).
    pub key: u8,
}

/// One connection's transform.
#[derive(Debug)]
pub struct XorExtension {
    key: u8,
}

fn key_of(header: &ExtensionHeader) -> Option<u8> {
    match header.param("key") {
        Some(Some(value)) => value.parse::<u8>().ok().filter(|k| *k != 0),
        _ => None,
    }
}

impl ExtensionFactory for Xor {
    fn name(&self) -> &str {
        "x-xor"
    }

    fn rsv(&self) -> Rsv {
        Rsv::RSV3
    }

    fn offers(&self) -> Vec<ExtensionHeader> {
        vec![ExtensionHeader::new("x-xor").with_param("key", Some(&self.key.to_string()))]
    }

    fn accept(&self, offer: &ExtensionHeader) -> Option<(ExtensionHeader, Box<dyn Extension>)> {
        let key = key_of(offer)?;
        let answer = ExtensionHeader::new("x-xor").with_param("key", Some(&key.to_string()));
        Some((answer, Box::new(XorExtension { key })))
    }

    fn confirm(&self, answer: &ExtensionHeader) -> Result<Box<dyn Extension>, String> {
        match key_of(answer) {
            Some(key) if key == self.key => Ok(Box::new(XorExtension { key })),
            _ => Err(format!(
                "the server answered {answer}, not key={}",
                self.key
            )),
        }
    }
}

impl XorExtension {
    fn apply(&self, message: &Frame) -> Vec<u8> {
        message.read_bytes().iter().map(|b| b ^ self.key).collect()
    }
}

impl Extension for XorExtension {
    fn rsv(&self) -> Rsv {
        Rsv::RSV3
    }

    fn encode(&mut self, message: Frame) -> Result<Frame, Error> {
        let data = self.apply(&message);
        Ok(Frame::new(message.frame_type(), data).with_rsv(message.rsv() | Rsv::RSV3))
    }

    fn decode(&mut self, message: Frame, max_size: Option<usize>) -> Result<Frame, Error> {
        if max_size.is_some_and(|max| message.read_bytes().len() > max) {
            return Err(Error::Protocol {
                code: tandem::CloseCode::TooBig,
                reason: "message over the size limit".into(),
            });
        }
        let data = self.apply(&message);
        let rsv = Rsv::from_bits(message.rsv().bits() & !Rsv::RSV3.bits());
        Ok(Frame::new(message.frame_type(), data).with_rsv(rsv))
    }
}
