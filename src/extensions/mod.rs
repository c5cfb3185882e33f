//! WebSocket extensions (RFC 6455 §9): Ktor's `WebSocketExtension` in Rust.
//!
//! An [`ExtensionFactory`] takes part in the opening handshake: a client
//! offers parameters, a server accepts, adjusts or declines each offer, and
//! the client checks the answer. Each side then gets one [`Extension`] per
//! connection, which transforms whole messages inside the protocol engine:
//! [`Extension::encode`] on the way out (in negotiation order) and
//! [`Extension::decode`] on the way in (in reverse order).
//!
//! An extension claims RSV bits ([`ExtensionFactory::rsv`]); two extensions
//! that claim the same bit cannot be configured together, and a frame with
//! an RSV bit that no negotiated extension owns fails the connection with
//! 1002. `examples/custom_extension/` shows a custom extension, negotiated
//! end to end.
//!
//! ```
//! use tandem::extensions::ExtensionHeader;
//!
//! let offers = ExtensionHeader::parse_list("permessage-deflate; client_max_window_bits, x-foo; level=\"3\"").unwrap();
//! assert_eq!(offers[0].name, "permessage-deflate");
//! assert_eq!(offers[0].param("client_max_window_bits"), Some(None));
//! assert_eq!(offers[1].param("level"), Some(Some("3")));
//! assert_eq!(offers[1].to_string(), "x-foo; level=3");
//! ```

use std::fmt;

use crate::error::{Error, Quoted};
use crate::frame::{Frame, Rsv};

#[cfg(not(target_arch = "wasm32"))]
mod deflate;
mod negotiation;
#[cfg(not(target_arch = "wasm32"))]
pub use deflate::PerMessageDeflate;
pub(crate) use negotiation::Extensions;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use negotiation::Negotiated;

/// One element of a `Sec-WebSocket-Extensions` header: an extension name
/// and its parameters (Ktor's `WebSocketExtensionHeader`).
///
/// It is what a client offers, what a server answers, and what
/// [`Session::extensions`](crate::Session::extensions) lists.
///
/// ```
/// use tandem::extensions::ExtensionHeader;
/// let header = ExtensionHeader::new("permessage-deflate")
///     .with_param("client_max_window_bits", Some("10"))
///     .with_param("server_no_context_takeover", None);
/// assert_eq!(header.to_string(), "permessage-deflate; client_max_window_bits=10; server_no_context_takeover");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionHeader {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Its parameters, in order; a parameter without a value has `None`.
    pub params: Vec<(String, Option<String>)>,
}

impl ExtensionHeader {
    /// An element with no parameters.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// An element with these parameters.
    pub fn new_with(name: impl Into<String>, params: Vec<(String, Option<String>)>) -> Self {
        Self {
            name: name.into(),
            params,
        }
    }

    /// This element with one more parameter.
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.params
            .push((name.to_owned(), value.map(str::to_owned)));
        self
    }

    /// The parameter `name`: `None` if absent, `Some(None)` if present
    /// without a value, `Some(Some(v))` with one.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_deref())
    }

    /// Parses a `Sec-WebSocket-Extensions` value: comma-separated elements,
    /// each `name; key=value; flag`, values as tokens or quoted strings.
    ///
    /// ```
    /// use tandem::extensions::ExtensionHeader;
    /// assert!(ExtensionHeader::parse_list("a; b=\"unterminated").is_err());
    /// assert_eq!(ExtensionHeader::parse_list("").unwrap(), vec![]);
    /// ```
    pub fn parse_list(value: &str) -> Result<Vec<ExtensionHeader>, Error> {
        let bad = |why: &str| {
            Error::Handshake(format!("Sec-WebSocket-Extensions {}: {why}", Quoted(value)))
        };
        let mut elements = Vec::new();
        for element in split_outside_quotes(value, ',').map_err(|_| bad("unterminated quote"))? {
            let mut parts = split_outside_quotes(element, ';')
                .map_err(|_| bad("unterminated quote"))?
                .into_iter()
                .map(str::trim);
            let name = match parts.next() {
                Some("") => continue,
                Some(name) if is_token(name) => name,
                _ => return Err(bad("an extension name must be a token")),
            };
            let mut header = ExtensionHeader::new(name);
            for param in parts {
                let (key, value) = match param.split_once('=') {
                    Some((key, value)) => (key.trim(), Some(unquote(value.trim()))),
                    None => (param, None),
                };
                if !is_token(key) {
                    return Err(bad("a parameter name must be a token"));
                }
                if header.param(key).is_some() {
                    return Err(bad("a parameter appears twice"));
                }
                header.params.push((key.to_owned(), value));
            }
            elements.push(header);
        }
        Ok(elements)
    }

    /// Formats a list as one `Sec-WebSocket-Extensions` value.
    ///
    /// ```
    /// use tandem::extensions::ExtensionHeader;
    /// let list = [ExtensionHeader::new("a"), ExtensionHeader::new("b").with_param("x", Some("1"))];
    /// assert_eq!(ExtensionHeader::format_list(&list), "a, b; x=1");
    /// ```
    pub fn format_list(list: &[ExtensionHeader]) -> String {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ExtensionHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (key, value) in &self.params {
            match value {
                Some(v) if is_token(v) => write!(f, "; {key}={v}")?,
                Some(v) => write!(
                    f,
                    "; {key}=\"{}\"",
                    v.replace('\\', "\\\\").replace('"', "\\\"")
                )?,
                None => write!(f, "; {key}")?,
            }
        }
        Ok(())
    }
}

/// Whether `s` is an RFC 7230 token (extension names, parameters,
/// subprotocols).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// Splits on `sep` outside double quotes; fails on an unterminated quote.
fn split_outside_quotes(s: &str, sep: char) -> Result<Vec<&str>, ()> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                // `get` rather than indexing (both ends are char
                // boundaries): no slicing panic in a wasm build.
                parts.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(());
    }
    parts.push(s.get(start..).unwrap_or_default());
    Ok(parts)
}

/// One connection's instance of a negotiated extension: transforms whole
/// messages inside the sans-I/O engine.
///
/// Only data messages pass through extensions (never control frames, and
/// not in raw mode, where the handler sees frames as they are on the wire).
///
/// ```
/// use tandem::extensions::Extension;
/// use tandem::{Error, Frame, Rsv};
///
/// /// Marks every binary message it reversed with RSV2 (a toy).
/// #[derive(Debug)]
/// struct Reverse;
///
/// impl Extension for Reverse {
///     fn rsv(&self) -> Rsv { Rsv::RSV2 }
///     fn encode(&mut self, message: Frame) -> Result<Frame, Error> {
///         let mut bytes = message.read_bytes().to_vec();
///         bytes.reverse();
///         Ok(Frame::new(message.frame_type(), bytes).with_rsv(message.rsv() | Rsv::RSV2))
///     }
///     fn decode(&mut self, message: Frame, _max_size: Option<usize>) -> Result<Frame, Error> {
///         let mut bytes = message.read_bytes().to_vec();
///         bytes.reverse();
///         Ok(Frame::new(message.frame_type(), bytes))
///     }
/// }
///
/// let mut ext = Reverse;
/// let sent = ext.encode(Frame::binary(vec![1, 2, 3])).unwrap();
/// assert_eq!(sent.read_bytes(), &[3, 2, 1]);
/// assert_eq!(ext.decode(sent, None).unwrap().read_bytes(), &[1, 2, 3]);
/// ```
pub trait Extension: Send + fmt::Debug {
    /// The RSV bits this extension sets on the messages it transforms.
    fn rsv(&self) -> Rsv;

    /// Transforms an outgoing message (a whole `Text` or `Binary` frame)
    /// before it is framed, setting its RSV bits if it changed the payload.
    /// An error fails the connection with 1011.
    fn encode(&mut self, message: Frame) -> Result<Frame, Error>;

    /// Transforms an incoming message whose first frame carried one of this
    /// extension's RSV bits (or every message, for an extension with no
    /// bits), and clears its bits on the result. The result must not exceed
    /// `max_size` bytes: return [`Error::Protocol`] with
    /// [`CloseCode::TooBig`](crate::CloseCode::TooBig) as soon as it would,
    /// before producing the rest. An [`Error::Protocol`] fails the
    /// connection with its code, any other error with 1011.
    fn decode(&mut self, message: Frame, max_size: Option<usize>) -> Result<Frame, Error>;
}

/// Configures an extension and negotiates it (Ktor's
/// `WebSocketExtensionFactory`); makes one [`Extension`] per connection.
///
/// ```
/// use tandem::extensions::{Extension, ExtensionFactory, ExtensionHeader};
/// use tandem::{Error, Frame, Rsv};
///
/// /// Offers and accepts "x-noop", which changes nothing.
/// #[derive(Debug)]
/// struct Noop;
/// #[derive(Debug)]
/// struct NoopExtension;
///
/// impl Extension for NoopExtension {
///     fn rsv(&self) -> Rsv { Rsv::NONE }
///     fn encode(&mut self, message: Frame) -> Result<Frame, Error> { Ok(message) }
///     fn decode(&mut self, message: Frame, _: Option<usize>) -> Result<Frame, Error> { Ok(message) }
/// }
///
/// impl ExtensionFactory for Noop {
///     fn name(&self) -> &str { "x-noop" }
///     fn rsv(&self) -> Rsv { Rsv::NONE }
///     fn offers(&self) -> Vec<ExtensionHeader> { vec![ExtensionHeader::new("x-noop")] }
///     fn accept(&self, offer: &ExtensionHeader) -> Option<(ExtensionHeader, Box<dyn Extension>)> {
///         offer.params.is_empty().then(|| (ExtensionHeader::new("x-noop"), Box::new(NoopExtension) as _))
///     }
///     fn confirm(&self, answer: &ExtensionHeader) -> Result<Box<dyn Extension>, String> {
///         if answer.params.is_empty() { Ok(Box::new(NoopExtension)) } else { Err("unexpected parameters".into()) }
///     }
/// }
/// assert!(Noop.accept(&ExtensionHeader::new("x-noop")).is_some());
/// ```
pub trait ExtensionFactory: Send + Sync + fmt::Debug + 'static {
    /// The extension token it negotiates, e.g. `permessage-deflate`.
    fn name(&self) -> &str;

    /// The RSV bits its extensions use.
    fn rsv(&self) -> Rsv;

    /// Client side: the offers to send, alternatives in order of preference.
    fn offers(&self) -> Vec<ExtensionHeader>;

    /// Server side: accepts one of the client's offers (returning the
    /// answer's parameters and the extension) or declines it (`None`).
    fn accept(&self, offer: &ExtensionHeader) -> Option<(ExtensionHeader, Box<dyn Extension>)>;

    /// Client side: checks the server's answer to our offers; an error
    /// fails the connection with 1010.
    fn confirm(&self, answer: &ExtensionHeader) -> Result<Box<dyn Extension>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_may_hold_separators() {
        let list = ExtensionHeader::parse_list(r#"x; a="1,2;3", y"#).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].param("a"), Some(Some("1,2;3")));
        assert_eq!(list[1].name, "y");
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in ["x; a=\"1", "x y", "x; a; a", "x; =1"] {
            assert!(ExtensionHeader::parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_quotes_what_is_not_a_token() {
        let h = ExtensionHeader::new("x").with_param("a", Some("1 2"));
        assert_eq!(h.to_string(), "x; a=\"1 2\"");
        assert_eq!(
            ExtensionHeader::parse_list(&h.to_string()).unwrap(),
            vec![h]
        );
    }
}
