//! A URL's authority (`[user[:password]@]host[:port]`): the credentials
//! it carries, percent-decoded, and its port. The native client sends a
//! `ws://` URL's credentials as `Authorization: Basic …`, and a proxy URL's
//! as `Proxy-Authorization: Basic …` or SOCKS5 credentials;
//! [`Proxy::new`](crate::Proxy::new) reads them on every target.

/// `url` with whatever follows the first `:` of its user info replaced by
/// `***`, for error messages: a URL that does not parse may still hold a
/// password.
pub(crate) fn redact(url: &str) -> String {
    // Bytes and checked splits only: in the browser package, char
    // patterns and slicing's panic path cost 1.8 KB gzipped here.
    let start = match url.as_bytes().windows(3).position(|w| w == b"://") {
        Some(i) => i + 3,
        None => 0,
    };
    let bytes = url.as_bytes();
    let end = bytes[start..]
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(bytes.len(), |i| start + i);
    let Some(at) = bytes[start..end].iter().rposition(|&b| b == b'@') else {
        return url.to_owned();
    };
    let Some(colon) = bytes[start..start + at].iter().position(|&b| b == b':') else {
        return url.to_owned();
    };
    // ASCII positions: the splits fall on character boundaries.
    match (
        url.split_at_checked(start + colon),
        url.split_at_checked(start + at),
    ) {
        (Some((user, _)), Some((_, host))) => format!("{user}:***{host}"),
        _ => url.to_owned(),
    }
}

/// The port of `authority` (the text between `//` and the path), or
/// `default` when it names none; an error for a port that is not a number
/// up to 65535, which the http crate would take for no port.
pub(crate) fn port(authority: &str, default: u16) -> Result<u16, &'static str> {
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    // After an IPv6 address's `]`, if any.
    let after_host = host_and_port.rsplit(']').next().unwrap_or_default();
    match after_host.split_once(':') {
        Some((_, port)) => port
            .parse()
            .map_err(|_| "the port is not a number from 0 to 65535"),
        None => Ok(default),
    }
}

/// A user name and password, as bytes: percent-decoding may give any.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: Vec<u8>,
    pub(crate) password: Vec<u8>,
}

impl Credentials {
    /// The credentials in a URL's user info (`user[:password]`, without the
    /// `@`), each part percent-decoded, as browsers, curl and Python's
    /// `websockets` read them.
    pub(crate) fn from_user_info(user_info: &str) -> Result<Self, String> {
        let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
        let user = percent_decode(user)?;
        if user.contains(&b':') {
            // RFC 7617 §2: the first ':' of the pair ends the user name.
            return Err("a user name with ':' cannot be sent as Basic credentials".into());
        }
        Ok(Self {
            user,
            password: percent_decode(password)?,
        })
    }

    /// The value of an `Authorization` or `Proxy-Authorization` header for
    /// these credentials (RFC 7617 Basic), or why there is none: a user
    /// name with ':' in it cannot be told apart from its password there.
    // The browser sends no header of ours, so only the native client asks.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn basic(&self) -> Result<http::HeaderValue, String> {
        use base64::Engine as _;
        if self.user.contains(&b':') {
            return Err("a user name with ':' cannot be sent as Basic credentials".into());
        }
        let mut pair = self.user.clone();
        pair.push(b':');
        pair.extend_from_slice(&self.password);
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        // Base64 is always a valid header value; marked sensitive so that
        // the http crate's Debug of a header map does not show it.
        let mut value =
            http::HeaderValue::from_str(&value).map_err(|_| "invalid credentials".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The password never shows, in logs or errors.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"***")
            .finish()
    }
}

/// The bytes of a percent-encoded URL component; a `%` not followed by two
/// hex digits is refused rather than passed through, as it is most likely a
/// password character the user forgot to encode.
pub(crate) fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bad = || "a % not followed by two hex digits (write % itself as %25)".to_string();
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let mut digit = || {
            let d = char::from(bytes.next()?).to_digit(16)?;
            u8::try_from(d).ok()
        };
        match (digit(), digit()) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_blanks_the_password_alone() {
        assert_eq!(redact("http://a:b@h:1/x@y"), "http://a:***@h:1/x@y");
        assert_eq!(redact("a:b@h"), "a:***@h");
        assert_eq!(redact("http://a@h"), "http://a@h");
        assert_eq!(redact("http://h:1"), "http://h:1");
    }

    #[test]
    fn the_port_is_the_one_written_or_the_default() {
        assert_eq!(port("example.com", 80), Ok(80));
        assert_eq!(port("example.com:8080", 80), Ok(8080));
        assert_eq!(port("u:p@example.com", 443), Ok(443));
        assert_eq!(port("u:p@example.com:1", 443), Ok(1));
        assert_eq!(port("[::1]", 80), Ok(80));
        assert_eq!(port("[::1]:9001", 80), Ok(9001));
        assert!(port("example.com:http", 80).is_err());
        assert!(port("example.com:65536", 80).is_err());
    }

    #[test]
    fn user_info_is_percent_decoded() {
        let c = Credentials::from_user_info("al%69ce:s%3Ac%20ret").unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"alice"[..], &b"s:c ret"[..])
        );
        let c = Credentials::from_user_info("bob").unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"bob"[..], &b""[..])
        );
        for bad in ["a%3Ab:c", "a:%zz", "a:%4", "a:%+f"] {
            assert!(Credentials::from_user_info(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_password_does_not_show_in_debug() {
        let c = Credentials::from_user_info("alice:hunter2").unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn basic_credentials_are_rfc_7617() {
        let c = Credentials::from_user_info("al%69ce:s%3Ac%20ret").unwrap();
        // base64("alice:s:c ret")
        assert_eq!(c.basic().unwrap(), "Basic YWxpY2U6czpjIHJldA==");
        let c = Credentials {
            user: b"a:b".to_vec(),
            password: Vec::new(),
        };
        assert!(c.basic().is_err());
    }
}
