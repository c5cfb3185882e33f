//! Typed messages: Ktor's `contentConverter`, `sendSerialized` and
//! `receiveDeserialized` (cargo feature `json`, on by default).
//!
//! A [`Codec`] turns a serde value into a frame and back. [`Json`] is the
//! first one (text frames); a binary format (MessagePack, bincode, …) is a
//! few lines of your own. The session, its [`Outgoing`](crate::Outgoing)
//! handle, [`Frame`] and the [`Hub`](crate::hub::Hub) take either: `send_json`
//! or `send_as::<MyCodec, _>`, the same on both targets.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Chat { from: String, text: String }
//!
//! # async fn f(mut session: tandem::Session) -> Result<(), tandem::Error> {
//! session.send_json(&Chat { from: "alice".into(), text: "hi".into() }).await?;
//! loop {
//!     match session.receive_json::<Chat>().await {
//!         Ok(chat) => println!("{}: {}", chat.from, chat.text),
//!         // A message that is not a `Chat`: the session stays open.
//!         Err(tandem::Error::Decode { frame, reason }) => {
//!             println!("ignored {:?}: {reason}", frame.read_text())
//!         }
//!         // The end of the session, as Ktor's receiveDeserialized.
//!         Err(_) => break,
//!     }
//! }
//! # Ok(()) }
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::frame::Frame;

/// A message format for typed messages: how a value becomes a frame and a
/// frame a value.
///
/// A format of your own, here JSON in binary frames standing in for
/// MessagePack or bincode:
///
/// ```
/// use serde::{de::DeserializeOwned, Serialize};
/// use tandem::{codec::Codec, Error, Frame};
///
/// /// JSON in binary frames (a stand-in for MessagePack or bincode).
/// struct BinaryJson;
///
/// impl Codec for BinaryJson {
///     fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Frame, Error> {
///         serde_json::to_vec(value)
///             .map(Frame::binary)
///             .map_err(|e| Error::Encode(e.to_string()))
///     }
///     fn decode<T: DeserializeOwned>(frame: &Frame) -> Result<T, Error> {
///         serde_json::from_slice(frame.read_bytes()).map_err(|e| Error::Decode {
///             frame: frame.clone(),
///             reason: e.to_string(),
///         })
///     }
/// }
///
/// let frame = BinaryJson::encode(&vec![1, 2, 3]).unwrap();
/// assert_eq!(BinaryJson::decode::<Vec<u8>>(&frame).unwrap(), [1, 2, 3]);
/// ```
pub trait Codec {
    /// The frame that carries `value`; [`Error::Encode`] when it cannot be
    /// encoded.
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Frame, Error>;

    /// The value `frame` carries; [`Error::Decode`], with the frame, when
    /// it does not hold one.
    fn decode<T: DeserializeOwned>(frame: &Frame) -> Result<T, Error>;
}

/// JSON in text frames (serde_json).
///
/// ```
/// use tandem::codec::{Codec, Json};
///
/// let frame = Json::encode(&("move", 3)).unwrap();
/// assert_eq!(frame.read_text(), Some(r#"["move",3]"#));
/// assert_eq!(Json::decode::<(String, u8)>(&frame).unwrap(), ("move".into(), 3));
/// assert!(Json::decode::<u8>(&tandem::Frame::text("not json")).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Frame, Error> {
        serde_json::to_string(value)
            .map(Frame::text)
            .map_err(|error| Error::Encode(error.to_string()))
    }

    fn decode<T: DeserializeOwned>(frame: &Frame) -> Result<T, Error> {
        serde_json::from_slice(frame.read_bytes()).map_err(|error| Error::Decode {
            frame: frame.clone(),
            reason: error.to_string(),
        })
    }
}
