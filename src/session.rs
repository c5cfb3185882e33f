//! The session: Ktor's `DefaultWebSocketSession`, the same on every target.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures::Stream;

use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::extensions::ExtensionHeader;
use crate::frame::Frame;
use crate::link::{Command, Link};
use crate::protocol::EncodedFrame;

/// What the server saw in the upgrade request (server-side sessions only).
///
/// ```
/// use tandem::Request;
/// let request = Request::new("/chat", Some("room=1"), http::HeaderMap::new());
/// assert_eq!(request.path(), "/chat");
/// assert_eq!(request.query_param("room").as_deref(), Some("1"));
/// ```
#[derive(Clone)]
pub struct Request {
    /// The path, then `?` and the query if there is one, then the headers
    /// as `name:value` pairs, each part prefixed by its length (u16,
    /// big-endian): one allocation. A `HeaderMap` takes about 100 bytes per
    /// header plus an allocation per value; most handlers never look, and
    /// every open session keeps its request, so it is kept small.
    packed: Box<[u8]>,
    path_len: u32,
    target_len: u32,
    /// The route's path parameters, decoded (`/rooms/{id}`).
    params: Box<[(Box<str>, Box<str>)]>,
    /// The headers, built from `packed` on first use.
    headers: OnceLock<Box<http::HeaderMap>>,
}

impl Request {
    /// A request record (the server builds these; tests may too).
    pub fn new(path: impl Into<String>, query: Option<&str>, headers: http::HeaderMap) -> Self {
        let mut request = Self::packed(&path.into(), query, &http::HeaderMap::new());
        request.headers = OnceLock::from(Box::new(headers));
        request
    }

    /// A request record that keeps `headers` packed until they are asked for.
    pub(crate) fn packed(path: &str, query: Option<&str>, headers: &http::HeaderMap) -> Self {
        let mut packed = Vec::from(path);
        if let Some(query) = query {
            packed.push(b'?');
            packed.extend_from_slice(query.as_bytes());
        }
        let (Ok(path_len), Ok(target_len)) =
            (u32::try_from(path.len()), u32::try_from(packed.len()))
        else {
            // Longer than any HTTP server accepts.
            return Self::packed("/", None, headers);
        };
        for (name, value) in headers {
            let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
            match (u16::try_from(name.len()), u16::try_from(value.len())) {
                (Ok(n), Ok(v)) => {
                    packed.extend_from_slice(&n.to_be_bytes());
                    packed.extend_from_slice(name);
                    packed.extend_from_slice(&v.to_be_bytes());
                    packed.extend_from_slice(value);
                }
                // Longer than any HTTP server accepts: keep the map as it is.
                _ => return Self::new(path, query, headers.clone()),
            }
        }
        Self {
            packed: packed.into_boxed_slice(),
            path_len,
            target_len,
            params: Box::default(),
            headers: OnceLock::new(),
        }
    }

    /// The record with the route's path parameters.
    // Only the native server has routes.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn with_params(mut self, params: Vec<(String, String)>) -> Self {
        self.params = params
            .into_iter()
            .map(|(name, value)| (name.into_boxed_str(), value.into_boxed_str()))
            .collect();
        self
    }

    /// The path and the query, as given (both came from `&str`s).
    fn target(&self) -> &str {
        std::str::from_utf8(&self.packed[..self.target_len as usize]).unwrap_or_default()
    }

    /// The request path, without the query.
    pub fn path(&self) -> &str {
        self.target()
            .get(..self.path_len as usize)
            .unwrap_or_default()
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.target().get(self.path_len as usize + 1..)
    }

    /// The first value of query parameter `name`, decoded as a form
    /// (`%XX` escapes and `+` for a space), as Ktor's `queryParameters`.
    ///
    /// ```
    /// use tandem::Request;
    /// let request = Request::new("/", Some("a=1&name=J%C3%BCrgen+K"), Default::default());
    /// assert_eq!(request.query_param("name").as_deref(), Some("Jürgen K"));
    /// assert_eq!(request.query_param("c"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        query_param(self.query()?, name)
    }

    /// The value of path parameter `name` of the route that matched
    /// (`/rooms/{id}`), percent-decoded.
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use tandem::server::Server;
    /// let server = Server::new()
    ///     .web_socket("/rooms/{id}", |session: tandem::Session| async move {
    ///         let room = session.request().and_then(|r| r.path_param("id")).unwrap_or_default();
    ///         let _ = session.send(format!("welcome to room {room}")).await;
    ///     })
    ///     .bind("127.0.0.1:0")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, value)| &**value)
    }

    /// The request headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.headers
            .get_or_init(|| Box::new(unpack(&self.packed[self.target_len as usize..])))
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("path", &self.path())
            .field("query", &self.query())
            .field("params", &self.params)
            .field("headers", self.headers())
            .finish()
    }
}

/// The first value of `name` in a query string, decoded as a form.
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// The headers of [`Request::packed`], as a map.
fn unpack(mut packed: &[u8]) -> http::HeaderMap {
    fn take<'a>(packed: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = packed.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (part, rest) = (rest.get(..len)?, &rest[len..]);
        *packed = rest;
        Some(part)
    }
    let mut headers = http::HeaderMap::new();
    while let (Some(name), Some(value)) = (take(&mut packed), take(&mut packed)) {
        // Both came out of a valid map, so both parse again.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// What the opening handshake settled.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    pub(crate) protocol: Option<Box<str>>,
    pub(crate) extensions: crate::backend::AgreedExtensions,
    pub(crate) request: Option<Request>,
    /// Typed state attached before the upgrade ([`Session::state`]).
    pub(crate) state: http::Extensions,
}

/// One WebSocket connection, as a handler sees it.
///
/// A session has an [`Incoming`] stream of frames, an [`Outgoing`] handle
/// that can be cloned and stored elsewhere, and a
/// [`close_reason`](Session::close_reason) that resolves once the
/// connection is over. It is the same type on every target.
///
/// ```no_run
/// use futures::StreamExt;
/// use tandem::{CloseCode, CloseReason, Session};
///
/// async fn echo(mut session: Session) -> Result<(), tandem::Error> {
///     session.send("Please enter your name").await?;
///     while let Some(frame) = session.incoming().next().await {
///         if let Some(text) = frame.read_text() {
///             if text.eq_ignore_ascii_case("bye") {
///                 session.close(CloseReason::new(CloseCode::Normal, "Client said BYE")).await?;
///             } else {
///                 session.send(format!("Hi, {text}!")).await?;
///             }
///         }
///     }
///     Ok(())
/// }
/// ```
pub struct Session {
    incoming: Incoming,
    outgoing: Outgoing,
    handshake: Arc<Handshake>,
}

impl Session {
    pub(crate) fn new(link: Arc<Link>, handshake: Handshake) -> Self {
        Self {
            incoming: Incoming { link: link.clone() },
            outgoing: Outgoing { link },
            handshake: Arc::new(handshake),
        }
    }

    /// Sends a frame; text and bytes convert into text and binary frames.
    ///
    /// Waits while the outgoing queue is full. Fails with
    /// [`Error::ConnectionClosed`] once the session is closing or closed.
    ///
    /// **Cancel safety**: dropping the future before it completes (a
    /// `select!` branch that lost) leaves the frame unsent and nothing else
    /// changed; once it completed, the frame is queued and will be sent.
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
    /// session.send("text").await?;
    /// session.send(vec![0u8, 1, 2]).await?;
    /// session.send(tandem::Frame::binary(&b"bytes"[..])).await?;
    /// # Ok(()) }
    /// ```
    pub fn send(&self, frame: impl Into<Frame>) -> SendFuture<'_> {
        self.outgoing.send(frame)
    }

    /// The stream of received frames; it ends when the connection closes.
    ///
    /// ```no_run
    /// # async fn f(mut session: tandem::Session) {
    /// use futures::StreamExt;
    /// while let Some(frame) = session.incoming().next().await {
    ///     println!("{frame:?}");
    /// }
    /// # }
    /// ```
    pub fn incoming(&mut self) -> &mut Incoming {
        &mut self.incoming
    }

    /// The next received frame, or `None` once the connection is closed.
    ///
    /// **Cancel safety**: cancel-safe. A frame is taken from the queue only
    /// when the future completes with it, so dropping the future inside
    /// `select!` loses nothing: the next call gets that frame. The same
    /// holds for [`Incoming`]'s `next()`, [`Session::receive_json`] and
    /// [`Session::receive_as`].
    ///
    /// ```no_run
    /// # async fn f(mut session: tandem::Session) {
    /// if let Some(frame) = session.receive().await {
    ///     println!("{:?}", frame.read_text());
    /// }
    /// # }
    /// ```
    pub async fn receive(&mut self) -> Option<Frame> {
        futures::StreamExt::next(&mut self.incoming).await
    }

    /// Sends `value` as JSON in a text frame (Ktor's `sendSerialized`); see
    /// [`codec`](crate::codec). Fails with [`Error::Encode`], sending
    /// nothing, when `value` cannot be serialized.
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
    /// session.send_json(&serde_json::json!({ "type": "hello", "id": 7 })).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> SendFuture<'_> {
        self.outgoing.send_json(value)
    }

    /// Sends `value` as a message of codec `C`; see [`codec`](crate::codec).
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
    /// use tandem::codec::Json;
    /// session.send_as::<Json, _>(&[1, 2, 3]).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub fn send_as<C: crate::codec::Codec, T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> SendFuture<'_> {
        self.outgoing.send_as::<C, T>(value)
    }

    /// The next message, decoded from JSON (Ktor's `receiveDeserialized`).
    ///
    /// A message that does not decode is [`Error::Decode`], with the frame,
    /// and the session stays open; the end of the session is
    /// [`Error::ConnectionClosed`] with the close reason.
    ///
    /// ```no_run
    /// # async fn f(mut session: tandem::Session) {
    /// #[derive(serde::Deserialize)]
    /// struct Move { x: u8, y: u8 }
    /// while let Ok(Move { x, y }) = session.receive_json::<Move>().await {
    ///     println!("({x}, {y})");
    /// }
    /// # }
    /// ```
    #[cfg(feature = "json")]
    pub async fn receive_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        self.receive_as::<crate::codec::Json, T>().await
    }

    /// The next message, decoded with codec `C`; as
    /// [`Session::receive_json`].
    ///
    /// ```no_run
    /// # async fn f(mut session: tandem::Session) -> Result<(), tandem::Error> {
    /// use tandem::codec::Json;
    /// let numbers: Vec<u32> = session.receive_as::<Json, _>().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub async fn receive_as<C: crate::codec::Codec, T: serde::de::DeserializeOwned>(
        &mut self,
    ) -> Result<T, Error> {
        match self.receive().await {
            Some(frame) => C::decode(&frame),
            None => Err(Error::ConnectionClosed(self.outgoing.link.close_reason())),
        }
    }

    /// A handle for sending from elsewhere: clone it, store it, move it to
    /// another task (the chat keeps one per member).
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) {
    /// let outgoing = session.outgoing();
    /// let _ = outgoing.send("from another task").await;
    /// # }
    /// ```
    pub fn outgoing(&self) -> Outgoing {
        self.outgoing.clone()
    }

    /// Starts the close handshake with `reason` and returns once the Close
    /// is queued; the incoming stream ends when the peer answers.
    ///
    /// **Cancel safety**: the Close is queued when the future is first
    /// polled (it never waits for room), so dropping it afterwards changes
    /// nothing.
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
    /// use tandem::{CloseCode, CloseReason};
    /// session.close(CloseReason::new(CloseCode::Normal, "done")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self, reason: CloseReason) -> Result<(), Error> {
        self.outgoing.close(reason).await
    }

    /// Drops the connection at once, without a close handshake (see
    /// [`Outgoing::terminate`]).
    ///
    /// ```no_run
    /// # fn f(session: tandem::Session) {
    /// session.terminate();
    /// # }
    /// ```
    pub fn terminate(&self) {
        self.outgoing.terminate()
    }

    /// Resolves once the connection is over, with the reason: the peer's
    /// Close, the code the session failed with, or
    /// [`CloseCode::ClosedAbnormally`](crate::CloseCode::ClosedAbnormally) when the connection just dropped.
    ///
    /// **Cancel safety**: cancel-safe; it only waits.
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) {
    /// let reason = session.close_reason().await;
    /// println!("closed: {reason}");
    /// # }
    /// ```
    pub fn close_reason(&self) -> ClosedFuture {
        self.outgoing.close_reason()
    }

    /// The subprotocol both ends agreed on, if any.
    ///
    /// ```no_run
    /// # fn f(session: tandem::Session) {
    /// if session.protocol() == Some("chat") { /* … */ }
    /// # }
    /// ```
    pub fn protocol(&self) -> Option<&str> {
        self.handshake.protocol.as_deref()
    }

    /// The extensions both ends agreed on, in negotiation order.
    ///
    /// ```no_run
    /// # fn f(session: tandem::Session) {
    /// for extension in session.extensions() {
    ///     println!("{extension}");
    /// }
    /// # }
    /// ```
    pub fn extensions(&self) -> &[ExtensionHeader] {
        &self.handshake.extensions
    }

    /// The upgrade request, on the server side; `None` for client sessions.
    ///
    /// ```no_run
    /// # fn f(session: tandem::Session) {
    /// let room = session.request().and_then(|r| r.query_param("room"));
    /// # }
    /// ```
    pub fn request(&self) -> Option<&Request> {
        self.handshake.request.as_ref()
    }

    /// State of type `T` that a route's `before_upgrade` hook (natively:
    /// `tandem::server::Route::before_upgrade`, or an embedding's upgrade)
    /// attached to this session: who the user is, the
    /// room they joined… `None` when nothing of that type was attached
    /// (always, for a client).
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) {
    /// #[derive(Clone)]
    /// struct User(String);
    /// if let Some(User(name)) = session.state::<User>() {
    ///     let _ = session.send(format!("hello {name}")).await;
    /// }
    /// # }
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.handshake.state.get::<T>()
    }

    /// Splits the session into its stream of incoming frames and its
    /// outgoing handle, to read and write from different tasks.
    ///
    /// ```no_run
    /// # async fn f(session: tandem::Session) {
    /// let (incoming, outgoing) = session.split();
    /// # }
    /// ```
    pub fn split(self) -> (Incoming, Outgoing) {
        (self.incoming, self.outgoing)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("protocol", &self.handshake.protocol)
            .field("extensions", &self.handshake.extensions)
            .field("close_reason", &self.outgoing.link.close_reason())
            .finish_non_exhaustive()
    }
}

/// The received frames of a session, as a [`Stream`].
///
/// Dropping it tells the session that nobody reads: received data is then
/// discarded (control frames are still handled).
///
/// ```no_run
/// # async fn f(session: tandem::Session) {
/// use futures::StreamExt;
/// let (mut incoming, _outgoing) = session.split();
/// while let Some(frame) = incoming.next().await { /* … */ }
/// # }
/// ```
pub struct Incoming {
    link: Arc<Link>,
}

impl Stream for Incoming {
    type Item = Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        self.link.poll_recv(cx)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.link.incoming_dropped();
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}

/// The sending half of a session: cheap to clone, `Send` on native targets.
///
/// When the last handle and the [`Incoming`] stream are dropped, the
/// session closes with 1000.
///
/// ```no_run
/// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
/// let outgoing = session.outgoing();
/// let other = outgoing.clone();
/// other.send("hello").await?;
/// # Ok(()) }
/// ```
pub struct Outgoing {
    link: Arc<Link>,
}

impl Outgoing {
    /// Sends a frame, waiting while the outgoing queue is full. Cancel
    /// safety: as [`Session::send`] (dropped before it completes, the frame
    /// is not sent).
    ///
    /// ```no_run
    /// # async fn f(outgoing: tandem::Outgoing) -> Result<(), tandem::Error> {
    /// outgoing.send("hello").await?;
    /// # Ok(()) }
    /// ```
    pub fn send(&self, frame: impl Into<Frame>) -> SendFuture<'_> {
        let frame = frame.into();
        self.queue(check_outgoing(&frame).map(|()| Command::Frame(frame)))
    }

    /// Sends `value` as JSON in a text frame; see [`Session::send_json`].
    ///
    /// ```no_run
    /// # async fn f(outgoing: tandem::Outgoing) -> Result<(), tandem::Error> {
    /// outgoing.send_json(&("tick", 1)).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub fn send_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> SendFuture<'_> {
        self.send_as::<crate::codec::Json, T>(value)
    }

    /// Sends `value` as a message of codec `C`; see [`Session::send_as`].
    ///
    /// ```no_run
    /// # async fn f(outgoing: tandem::Outgoing) -> Result<(), tandem::Error> {
    /// outgoing.send_as::<tandem::codec::Json, _>(&"tock").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub fn send_as<C: crate::codec::Codec, T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> SendFuture<'_> {
        match C::encode(value) {
            Ok(frame) => self.send(frame),
            Err(error) => self.queue(Err(error)),
        }
    }

    /// Sends a frame if the queue has room, without waiting; fails with
    /// [`Error::QueueFull`] if it has none.
    ///
    /// ```no_run
    /// # fn f(outgoing: tandem::Outgoing) {
    /// if let Err(tandem::Error::QueueFull) = outgoing.try_send("tick") {
    ///     // the peer reads too slowly: skip this tick
    /// }
    /// # }
    /// ```
    pub fn try_send(&self, frame: impl Into<Frame>) -> Result<(), Error> {
        let frame = frame.into();
        check_outgoing(&frame)?;
        match crate::backend::try_send_direct(&self.link, frame) {
            Ok(()) => Ok(()),
            Err(frame) => self.try_queue(Command::Frame(frame)),
        }
    }

    /// [`Outgoing::try_send`] for a frame encoded once for many sessions;
    /// the caller checked it with [`check_outgoing`].
    pub(crate) fn try_send_encoded(&self, frame: EncodedFrame) -> Result<(), Error> {
        self.try_queue(Command::Encoded(frame))
    }

    /// [`Outgoing::send`] for a frame encoded once for many sessions.
    pub(crate) fn send_encoded(&self, frame: EncodedFrame) -> SendFuture<'_> {
        self.queue(Ok(Command::Encoded(frame)))
    }

    /// A future that queues `command`, waiting for room, or fails at once.
    fn queue(&self, command: Result<Command, Error>) -> SendFuture<'_> {
        SendFuture {
            link: &self.link,
            state: match command {
                Ok(command) => SendState::Queue(command),
                Err(error) => SendState::Failed(error),
            },
        }
    }

    /// Queues `command` if there is room, without waiting.
    fn try_queue(&self, command: Command) -> Result<(), Error> {
        self.link.try_send(command).map_err(|(_, error)| error)
    }

    /// Starts the close handshake with `reason` (see [`Session::close`]).
    ///
    /// Never waits: the Close is queued behind the frames already queued even
    /// when the queue is full, so a stuck peer cannot block it. Closing a
    /// session that is already closing does nothing.
    ///
    /// ```no_run
    /// # async fn f(outgoing: tandem::Outgoing) {
    /// use tandem::{CloseCode, CloseReason};
    /// let _ = outgoing.close(CloseReason::new(CloseCode::GoingAway, "shutting down")).await;
    /// # }
    /// ```
    pub async fn close(&self, reason: CloseReason) -> Result<(), Error> {
        reason.code.check_sendable()?;
        self.link.request_close(reason);
        Ok(())
    }

    /// Drops the connection at once, without a close handshake, as Node's
    /// `ws.terminate()`: for a peer that is not worth the wait (abusive, or
    /// known gone). Frames still queued are discarded, the incoming stream
    /// ends, and [`close_reason`](Outgoing::close_reason) is 1006
    /// (`ClosedAbnormally`) "terminated by this end", unless the session
    /// had ended already. The peer sees the transport end with no Close
    /// (1006 there too).
    ///
    /// In the browser, which cannot drop a connection without a Close, the
    /// session ends here at once and the browser closes the socket with no
    /// code (the peer sees 1005).
    ///
    /// ```no_run
    /// # fn f(outgoing: tandem::Outgoing) {
    /// outgoing.terminate();
    /// assert!(outgoing.is_closed());
    /// # }
    /// ```
    pub fn terminate(&self) {
        self.link.drop_connection(CloseReason::new(
            CloseCode::ClosedAbnormally,
            "terminated by this end",
        ));
    }

    /// How many frames the connection has taken from the queue so far; a
    /// member whose count does not move is not reading.
    pub(crate) fn progress(&self) -> u64 {
        self.link.taken()
    }

    /// Resolves once [`Outgoing::progress`] reaches `target`, or the
    /// connection is over.
    pub(crate) async fn progress_reaches(&self, target: u64) {
        std::future::poll_fn(|cx| self.link.poll_taken(cx, target)).await
    }

    /// Queues a Close at once, from synchronous code (see [`Outgoing::close`]).
    pub(crate) fn close_now(&self, reason: CloseReason) {
        if reason.code.is_sendable() {
            self.link.request_close(reason);
        }
    }

    /// Resolves once the connection is over (see [`Session::close_reason`]).
    ///
    /// ```no_run
    /// # async fn f(outgoing: tandem::Outgoing) {
    /// println!("{}", outgoing.close_reason().await);
    /// # }
    /// ```
    pub fn close_reason(&self) -> ClosedFuture {
        ClosedFuture {
            link: self.link.clone(),
        }
    }

    /// Whether the connection is over (its close reason is known).
    ///
    /// ```no_run
    /// # fn f(outgoing: tandem::Outgoing) {
    /// if outgoing.is_closed() { /* forget this member */ }
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.link.close_reason().is_some()
    }
}

impl Clone for Outgoing {
    fn clone(&self) -> Self {
        self.link.outgoing_cloned();
        Self {
            link: self.link.clone(),
        }
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.link.outgoing_dropped();
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing").finish_non_exhaustive()
    }
}

/// `Outgoing` is a [`Sink`](futures::Sink) of frames, so `SinkExt::send`,
/// `send_all` and `StreamExt::forward` work on it:
///
/// - `poll_ready` waits while the queue is full (as [`Outgoing::send`]);
/// - `start_send` queues the frame, refusing one that can never be sent;
/// - `poll_flush` waits until the connection has taken every queued frame,
///   and fails once the session is over;
/// - `poll_close` starts the close handshake with 1000, then flushes.
///
/// An echo in one line:
///
/// ```no_run
/// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
/// use futures::StreamExt;
/// let (incoming, outgoing) = session.split();
/// incoming.map(Ok).forward(outgoing).await?;
/// # Ok(()) }
/// ```
impl futures::Sink<Frame> for Outgoing {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.link.poll_send(cx, &mut None)
    }

    fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Error> {
        check_outgoing(&frame)?;
        self.link.send_reserved(Command::Frame(frame))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.link
            .poll_drained(cx)
            .map(|()| match self.link.close_reason() {
                Some(reason) => Err(Error::ConnectionClosed(Some(reason))),
                None => Ok(()),
            })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.link.request_close(CloseReason::normal());
        self.link.poll_drained(cx).map(Ok)
    }
}

/// The future of [`Session::send`] and [`Outgoing::send`]: resolves once the
/// frame is queued.
///
/// A named future rather than an `async fn`'s, so that a handler waiting on
/// a send holds the frame once (about 60 bytes) and not the several copies an
/// `async fn` keeps across its `.await`: every session's task is that much
/// smaller.
///
/// ```no_run
/// # async fn f(session: tandem::Session) -> Result<(), tandem::Error> {
/// let sending: tandem::SendFuture<'_> = session.send("hello");
/// sending.await?;
/// # Ok(()) }
/// ```
#[must_use = "a send does nothing unless awaited"]
pub struct SendFuture<'a> {
    link: &'a Link,
    state: SendState,
}

enum SendState {
    Queue(Command),
    Failed(Error),
    Done,
}

impl Future for SendFuture<'_> {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, SendState::Done) {
            SendState::Queue(command) => {
                let command = match command {
                    Command::Frame(frame) => {
                        match crate::backend::try_send_direct(this.link, frame) {
                            Ok(()) => return Poll::Ready(Ok(())),
                            Err(frame) => Command::Frame(frame),
                        }
                    }
                    other => other,
                };
                let mut slot = Some(command);
                let result = this.link.poll_send(cx, &mut slot);
                if let Some(command) = slot.filter(|_| result.is_pending()) {
                    this.state = SendState::Queue(command);
                }
                result
            }
            SendState::Failed(error) => Poll::Ready(Err(error)),
            SendState::Done => Poll::Ready(Ok(())),
        }
    }
}

impl fmt::Debug for SendFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture").finish_non_exhaustive()
    }
}

/// A future that resolves to a session's [`CloseReason`] once it is over.
///
/// ```no_run
/// # async fn f(session: tandem::Session) {
/// let closed = session.close_reason();
/// let reason = closed.await;
/// # }
/// ```
pub struct ClosedFuture {
    link: Arc<Link>,
}

impl Future for ClosedFuture {
    type Output = CloseReason;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.link.poll_close_reason(cx)
    }
}

impl fmt::Debug for ClosedFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedFuture").finish_non_exhaustive()
    }
}

/// Refuses, before queueing, frames that could never be sent.
pub(crate) fn check_outgoing(frame: &Frame) -> Result<(), Error> {
    frame.check_wire()?;
    crate::backend::check_outgoing(frame)
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn a_packed_request_gives_back_its_path_query_and_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "127.0.0.1:8080".parse().unwrap());
        headers.append("x-many", "one".parse().unwrap());
        headers.append("x-many", "two".parse().unwrap());
        headers.insert(
            "x-bytes",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        for query in [None, Some(""), Some("room=1&b")] {
            let request = Request::packed("/chat", query, &headers);
            assert_eq!(request.path(), "/chat");
            assert_eq!(request.query(), query);
            assert_eq!(request.headers(), &headers);
            assert_eq!(request.clone().headers(), &headers);
        }
        let request = Request::packed("/", Some("room=1&b"), &headers);
        assert_eq!(request.query_param("room").as_deref(), Some("1"));
        assert_eq!(request.query_param("b").as_deref(), Some(""));
        assert_eq!(
            Request::packed("/", None, &http::HeaderMap::new())
                .headers()
                .len(),
            0
        );
    }
}
