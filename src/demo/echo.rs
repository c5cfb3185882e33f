//! The echo demo of Ktor's guide.

use crate::close::{CloseCode, CloseReason};
use crate::session::Session;

/// The echo demo's server handler, as in Ktor's guide.
///
/// Sends `Please enter your name`, answers each text `T` with `Hi, T!`, and
/// closes with 1000 `Client said BYE` when the text is `bye` in any case.
///
/// ```no_run
/// # async fn run(session: tandem::Session) {
/// tandem::demo::echo(session).await;
/// # }
/// ```
pub async fn echo(mut session: Session) {
    if session.send("Please enter your name").await.is_err() {
        return;
    }
    while let Some(frame) = session.receive().await {
        let Some(text) = frame.read_text() else {
            continue;
        };
        let sent = if text.eq_ignore_ascii_case("bye") {
            session
                .close(CloseReason::new(CloseCode::Normal, "Client said BYE"))
                .await
        } else {
            session.send(format!("Hi, {text}!")).await
        };
        if sent.is_err() {
            break;
        }
    }
}
