//! The echo and chat demos, written once against [`Session`](crate::Session): the native
//! examples run them, and the demo page (www/) talks to them from the
//! browser through the browser package's JavaScript API.
//!
//! - [`echo`]: greets, answers each text `T` with `Hi, T!`, closes on `bye`.
//! - `ChatRoom` (natively): names members `user0`, `user1`, … and relays
//!   each text to every member, as `[userK]: T` (`ChatRoom::join`, the
//!   text protocol of Ktor's guide) or as JSON with message ids
//!   (`ChatRoom::join_json`, for clients that reconnect and resume), on
//!   `tandem::rooms::Rooms`: one process, or many on Redis.
//! - [`run_line_client`]: the client side of both, fed by lines of input.
//!
//! ```no_run
//! # #[cfg(not(target_arch = "wasm32"))]
//! # async fn run() -> std::io::Result<()> {
//! use tandem::demo::{echo, ChatRoom};
//! use tandem::server::Server;
//!
//! let room = ChatRoom::new();
//! let json = room.clone();
//! let server = Server::new()
//!     .web_socket("/echo", echo)
//!     .web_socket("/chat", move |session| room.clone().join(session))
//!     .web_socket("/chat-json", move |session| json.clone().join_json(session))
//!     .bind("127.0.0.1:8080")
//!     .await?;
//! server.wait().await
//! # }
//! ```

#[cfg(not(target_arch = "wasm32"))]
mod chat;
mod echo;
mod line_client;

#[cfg(not(target_arch = "wasm32"))]
pub use chat::ChatRoom;
pub use echo::echo;
pub use line_client::run_line_client;
