//! The HTTP `CONNECT` tunnel (RFC 9110 §9.3.6): the client asks the proxy
//! for a TCP connection to the server, and after a 2xx answer the same
//! stream carries the server's bytes.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::{at_proxy, invalid_proxy};
use crate::error::Error;
use crate::protocol::handshake;
use crate::proxy::Proxy;

/// A tunnel to `server` (`host:port`) through the HTTP proxy `proxy`, and
/// the bytes that followed the proxy's answer.
pub(super) async fn tunnel(proxy: &Proxy, server: &str) -> Result<(TcpStream, BytesMut), Error> {
    let request = connect_request(proxy, server)?;
    let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| at_proxy(proxy, e))?;
    let early = ask(&mut tcp, proxy, &request).await?;
    Ok((tcp, early))
}

/// `CONNECT server HTTP/1.1` with the proxy's credentials, if any.
fn connect_request(proxy: &Proxy, server: &str) -> Result<Vec<u8>, Error> {
    let mut request = format!("CONNECT {server} HTTP/1.1\r\nHost: {server}\r\n");
    if let Some(credentials) = &proxy.credentials {
        let value = credentials
            .basic()
            .map_err(|why| invalid_proxy(proxy, why))?;
        // Base64 after "Basic ": ASCII.
        let value = value.to_str().unwrap_or_default();
        request.push_str(&format!("Proxy-Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    Ok(request.into_bytes())
}

/// Sends `request` on `stream` and reads the proxy's answer: the bytes
/// after its head on a 2xx, or the error that its status means.
async fn ask<S>(stream: &mut S, proxy: &Proxy, request: &[u8]) -> Result<BytesMut, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(|e| at_proxy(proxy, e))?;
    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        let read = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| at_proxy(proxy, e))?;
        if read == 0 {
            return Err(at_proxy(
                proxy,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed the connection before answering CONNECT",
                ),
            ));
        }
        // Bounded by the handshake's MAX_HEAD_LEN, as the server's answer is.
        match handshake::parse_response_head(&buf) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(error) => {
                let error = std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("its answer to CONNECT is not HTTP: {error}"),
                );
                return Err(at_proxy(proxy, error));
            }
        }
    };
    match head.status {
        200..=299 => {
            debug!(proxy = %proxy.address(), status = head.status, "tunnel open");
            // RFC 9110 §9.3.6: a 2xx answer to CONNECT has no body; what
            // follows the head is the server's.
            buf.advance(head.len);
            Ok(buf)
        }
        407 => Err(Error::ProxyAuthenticationRequired {
            proxy: proxy.address(),
        }),
        status => Err(Error::ProxyRefused {
            proxy: proxy.address(),
            status,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy on the far end of an in-memory stream that reads the request
    /// head and answers with `answer` in one write; returns the request.
    async fn answering(
        answer: &'static [u8],
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<String>) {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(async move {
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if theirs.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            theirs.write_all(answer).await.unwrap();
            // Hold the stream open until the client is done with it.
            let _ = theirs.read(&mut [0u8; 1]).await;
            String::from_utf8(request).unwrap()
        });
        (ours, task)
    }

    #[tokio::test]
    async fn the_request_names_the_server_and_carries_the_credentials() {
        let proxy = Proxy::new("http://alice:s3cret@proxy:3128").unwrap();
        let request = connect_request(&proxy, "[::1]:8080").unwrap();
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\
             Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n"
        );
        let colon = Proxy::new("http://proxy:3128")
            .unwrap()
            .basic_auth("a:b", "c");
        match connect_request(&colon, "h:1") {
            Err(Error::InvalidUrl { url, .. }) => assert_eq!(url, "http://a:b:***@proxy:3128"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bytes_behind_the_200_are_kept_for_the_handshake() {
        let (mut stream, proxy_task) =
            answering(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 101 Switching").await;
        let proxy = Proxy::new("http://proxy:3128").unwrap();
        let early = ask(
            &mut stream,
            &proxy,
            b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n",
        )
        .await
        .unwrap();
        assert_eq!(&early[..], b"HTTP/1.1 101 Switching");
        drop(stream);
        assert!(proxy_task.await.unwrap().starts_with("CONNECT h:1 "));
    }

    #[tokio::test]
    async fn statuses_map_to_errors_a_caller_can_act_on() {
        let proxy = Proxy::new("http://proxy:3128").unwrap();
        let request = b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n";
        let (mut stream, _task) =
            answering(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                .await;
        assert!(matches!(
            ask(&mut stream, &proxy, request).await,
            Err(Error::ProxyAuthenticationRequired { proxy }) if proxy == "http://proxy:3128"
        ));
        let (mut stream, _task) = answering(b"HTTP/1.0 502 Bad Gateway\r\n\r\n").await;
        assert!(matches!(
            ask(&mut stream, &proxy, request).await,
            Err(Error::ProxyRefused { status: 502, .. })
        ));
        let (mut stream, _task) = answering(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        match ask(&mut stream, &proxy, request).await {
            Err(Error::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                assert!(e.to_string().contains("http://proxy:3128"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}
