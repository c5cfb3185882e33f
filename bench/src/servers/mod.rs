//! The servers under test. Each module is written the way its library's own
//! documentation and examples show, with one change everywhere: TCP_NODELAY
//! on accepted sockets (tandem sets it itself), so that all write alike.

pub mod fastwebsockets;
pub mod tandem;
pub mod tungstenite;
