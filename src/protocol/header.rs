//! The frame header (RFC 6455 §5.2): parse and encode, nothing else.

use bytes::BufMut;

use crate::frame::Rsv;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of its message.
    pub fin: bool,
    /// The RSV1–3 bits.
    pub rsv: Rsv,
    /// The 4-bit opcode, possibly reserved (the engine judges it).
    pub opcode: u8,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

/// The 64-bit length had its most significant bit set (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthOverflow;

/// The largest header: 2 bytes, 8 bytes of extended length, 4 of mask key.
pub const MAX_HEADER_LEN: usize = 14;

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns the header and its length in bytes, or `Ok(None)` when `buf`
    /// does not hold a whole header yet.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, LengthOverflow> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut at) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(b);
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(LengthOverflow);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            let Some(k) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: Rsv::from_bits(b0 >> 4),
                opcode: b0 & 0x0F,
                mask,
                payload_len,
            },
            at,
        )))
    }

    /// The encoded length of this header in bytes.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the encoded header to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        let b0 = (u8::from(self.fin) << 7) | (self.rsv.bits() << 4) | (self.opcode & 0x0F);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.put_u8(b0);
        match self.payload_len {
            n @ 0..=125 => out.put_u8(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                out.put_u8(mask_bit | 126);
                out.put_u16(n as u16);
            }
            n => {
                out.put_u8(mask_bit | 127);
                out.put_u64(n);
            }
        }
        if let Some(key) = self.mask {
            out.put_slice(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: Rsv::RSV1,
            opcode: 0x2,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn encode_then_parse_round_trips_at_each_length_boundary() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1] {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = header(len, mask);
                let mut buf = Vec::new();
                h.encode(&mut buf);
                assert_eq!(buf.len(), h.encoded_len());
                assert_eq!(FrameHeader::parse(&buf), Ok(Some((h, buf.len()))));
                for cut in 0..buf.len() {
                    assert_eq!(FrameHeader::parse(&buf[..cut]), Ok(None), "cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn rfc_6455_example_unmasked_hello_header() {
        let (h, n) = FrameHeader::parse(&[0x81, 0x05, b'H']).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.mask, n),
            (true, 1, 5, None, 2)
        );
    }

    #[test]
    fn length_with_top_bit_set_is_refused() {
        let mut buf = vec![0x82, 127];
        buf.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(FrameHeader::parse(&buf), Err(LengthOverflow));
    }
}
