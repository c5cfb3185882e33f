//! # tandem-web
//!
//! tandem in the browser, for JavaScript and TypeScript: the crate that
//! `wasm-pack` builds into the browser package `pkg/` (`tandem.js`,
//! `tandem_bg.wasm` and the types in `tandem.d.ts`). tandem itself stays a
//! plain Rust library; this crate holds its JavaScript exports.
//!
//! [`WebSocketSession`] is tandem's [`Session`](tandem::Session) for a
//! JavaScript app: connect, send text, bytes or JSON, receive messages,
//! close with a code and reason, and await how the session ended.
//!
//! ```js
//! import init, { WebSocketSession } from "./pkg/tandem.js";
//! await init();
//! const session = await WebSocketSession.connect("ws://127.0.0.1:8080/echo");
//! await session.send("Ktor");
//! for (let message; (message = await session.receive()) !== null; ) {
//!   if (message.type === "text") console.log(message.data);
//!   if (message.data === "Hi, Ktor!") await session.close(1000, "done");
//! }
//! const { code, reason } = await session.closed;
//! ```
//!
//! Natively this crate is empty: everything in it is for wasm32.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

// The package's allocator: talc instead of std's dlmalloc, 2.6 KB less of
// the gzipped package (scripts/check-wasm-size.sh) for the same work; a
// page's heap is single-threaded, which is what this build of talc assumes
// (a build with wasm atomics keeps dlmalloc). tandem itself sets none: a
// Rust app that uses it picks its own.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(target_arch = "wasm32")]
mod chain;
#[cfg(target_arch = "wasm32")]
mod message;
#[cfg(target_arch = "wasm32")]
mod options;
#[cfg(target_arch = "wasm32")]
mod outbox;
#[cfg(target_arch = "wasm32")]
mod session;

#[cfg(target_arch = "wasm32")]
pub use options::ConnectOptions;
#[cfg(target_arch = "wasm32")]
pub use session::WebSocketSession;
