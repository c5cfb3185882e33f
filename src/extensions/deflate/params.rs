//! RFC 7692 §7.1: the parameters of a permessage-deflate offer or answer,
//! parsed, checked and formatted, and the negotiation rules of both roles.

use crate::extensions::ExtensionHeader;

/// The extension token.
pub(crate) const NAME: &str = "permessage-deflate";

/// The LZ77 window of DEFLATE: 2^15 = 32 KiB at most, 2^8 = 256 bytes at
/// least (RFC 7692 §7.1.2).
pub(crate) const MAX_WINDOW_BITS: u8 = 15;
pub(crate) const MIN_WINDOW_BITS: u8 = 8;

/// The parameters of one `permessage-deflate` element (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N` (it always has a value).
    pub server_max_window_bits: Option<u8>,
    /// `None`: absent; `Some(None)`: present without a value (only an offer
    /// may say that); `Some(Some(n))`: `client_max_window_bits=n`.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// Parses and checks an element's parameters: each at most once, known,
    /// with a value where the RFC wants one (8 to 15, plain decimal, no
    /// leading zero) and none where it does not.
    pub(crate) fn parse(header: &ExtensionHeader) -> Result<Params, String> {
        let mut params = Params::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in &header.params {
            let key = key.to_ascii_lowercase();
            if seen.contains(&key) {
                return Err(format!("{key} appears twice"));
            }
            let value = value.as_deref();
            match key.as_str() {
                "server_no_context_takeover" => {
                    no_value(&key, value)?;
                    params.server_no_context_takeover = true;
                }
                "client_no_context_takeover" => {
                    no_value(&key, value)?;
                    params.client_no_context_takeover = true;
                }
                "server_max_window_bits" => {
                    let value = value.ok_or_else(|| format!("{key} needs a value"))?;
                    params.server_max_window_bits = Some(window_bits(&key, value)?);
                }
                "client_max_window_bits" => {
                    params.client_max_window_bits =
                        Some(value.map(|v| window_bits(&key, v)).transpose()?);
                }
                _ => return Err(format!("unknown parameter {key}")),
            }
            seen.push(key);
        }
        Ok(params)
    }

    /// The element with these parameters, in the RFC's order.
    pub(crate) fn to_header(self) -> ExtensionHeader {
        let mut header = ExtensionHeader::new(NAME);
        if self.server_no_context_takeover {
            header = header.with_param("server_no_context_takeover", None);
        }
        if self.client_no_context_takeover {
            header = header.with_param("client_no_context_takeover", None);
        }
        if let Some(bits) = self.server_max_window_bits {
            header = header.with_param("server_max_window_bits", Some(&bits.to_string()));
        }
        if let Some(bits) = self.client_max_window_bits {
            let value = bits.map(|b| b.to_string());
            header = header.with_param("client_max_window_bits", value.as_deref());
        }
        // An open session keeps it (`Session::extensions`).
        header.params.shrink_to_fit();
        header
    }
}

fn no_value(key: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) => Err(format!("{key} takes no value (got {v:?})")),
    }
}

/// `8` to `15`, as the RFC's ABNF allows: decimal digits, no leading zero.
fn window_bits(key: &str, value: &str) -> Result<u8, String> {
    let valid =
        !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) && !value.starts_with('0');
    match value.parse::<u8>() {
        Ok(bits) if valid && (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) => Ok(bits),
        _ => Err(format!("{key}={value:?} is not a window size from 8 to 15")),
    }
}

/// What one side of a connection wants, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wants {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// The server compressor's window limit, if configured.
    pub server_max_window_bits: Option<u8>,
    /// The client compressor's window limit, if configured.
    pub client_max_window_bits: Option<u8>,
}

/// How one direction of a connection is compressed: the compressor's
/// window and whether its context is reset after each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Direction {
    /// The LZ77 window the compressor may use (8 to 15).
    pub window_bits: u8,
    /// Each message is compressed on its own (no context takeover).
    pub no_context_takeover: bool,
}

/// What a negotiation settled for one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// What we send: our compressor.
    pub outgoing: Direction,
    /// What we receive: the peer's compressor, which our inflater follows.
    pub incoming: Direction,
}

/// Server side: the answer to one offer, or `None` to decline it (invalid
/// offers only: with a zlib compressor every valid parameter can be
/// honoured, `server_max_window_bits=8` included).
pub(crate) fn answer(wants: &Wants, offer: &ExtensionHeader) -> Option<(Params, Agreement)> {
    let offer = match Params::parse(offer) {
        Ok(offer) => offer,
        Err(why) => {
            tracing::debug!(%why, "declining a permessage-deflate offer");
            return None;
        }
    };
    // Our compressor: what the client asks for, lowered to our own limit.
    let server_bits = match (offer.server_max_window_bits, wants.server_max_window_bits) {
        (Some(asked), Some(ours)) => Some(asked.min(ours)),
        (Some(asked), None) => Some(asked),
        (None, Some(ours)) if ours < MAX_WINDOW_BITS => Some(ours),
        (None, _) => None,
    };
    // The client's compressor: limited only if it said it can be.
    let client_bits = match (offer.client_max_window_bits, wants.client_max_window_bits) {
        (None, _) => None,
        (Some(offered), ours) => {
            let bits = offered
                .unwrap_or(MAX_WINDOW_BITS)
                .min(ours.unwrap_or(MAX_WINDOW_BITS));
            (bits < MAX_WINDOW_BITS).then_some(bits)
        }
    };
    let answer = Params {
        server_no_context_takeover: offer.server_no_context_takeover
            || wants.server_no_context_takeover,
        // A client that offers client_no_context_takeover resets anyway
        // (§7.1.1.2); saying so lets us drop the inflater between messages.
        client_no_context_takeover: offer.client_no_context_takeover
            || wants.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits.map(Some),
    };
    let agreement = Agreement {
        outgoing: Direction {
            window_bits: server_bits.unwrap_or(MAX_WINDOW_BITS),
            no_context_takeover: answer.server_no_context_takeover,
        },
        incoming: Direction {
            window_bits: client_bits.unwrap_or(MAX_WINDOW_BITS),
            no_context_takeover: answer.client_no_context_takeover,
        },
    };
    Some((answer, agreement))
}

/// Client side: the offer to send for what we want.
pub(crate) fn offer(wants: &Wants) -> Params {
    Params {
        server_no_context_takeover: wants.server_no_context_takeover,
        // A hint (§7.1.1.2): we reset our compressor whatever the answer.
        client_no_context_takeover: wants.client_no_context_takeover,
        server_max_window_bits: wants
            .server_max_window_bits
            .filter(|b| *b < MAX_WINDOW_BITS),
        // Always: we can honour any limit the server sets on our window.
        client_max_window_bits: Some(
            wants
                .client_max_window_bits
                .filter(|b| *b < MAX_WINDOW_BITS),
        ),
    }
}

/// Client side: checks the server's answer against what we offered
/// (`offers`, any of which it may have picked) and settles both directions.
pub(crate) fn confirm(
    wants: &Wants,
    offers: &[Params],
    answer: &ExtensionHeader,
) -> Result<Agreement, String> {
    let answer = Params::parse(answer)?;
    let client_bits = match answer.client_max_window_bits {
        None => None,
        Some(None) => return Err("client_max_window_bits without a value in an answer".into()),
        Some(Some(bits)) => Some(bits),
    };
    let fits = |offer: &Params| {
        (!offer.server_no_context_takeover || answer.server_no_context_takeover)
            && offer
                .server_max_window_bits
                .is_none_or(|asked| answer.server_max_window_bits.is_some_and(|b| b <= asked))
            && (client_bits.is_none() || offer.client_max_window_bits.is_some())
    };
    if !offers.iter().any(fits) {
        return Err(format!(
            "the answer {} does not fit our offer{}",
            answer.to_header(),
            if offers.len() > 1 { "s" } else { "" }
        ));
    }
    let own_limit = wants.client_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    Ok(Agreement {
        outgoing: Direction {
            window_bits: client_bits.unwrap_or(MAX_WINDOW_BITS).min(own_limit),
            no_context_takeover: answer.client_no_context_takeover
                || wants.client_no_context_takeover,
        },
        incoming: Direction {
            window_bits: answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
            no_context_takeover: answer.server_no_context_takeover,
        },
    })
}
