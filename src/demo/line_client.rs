//! The client side of the demos, for a terminal.

use futures::future::{select, Either};
use futures::{Stream, StreamExt};

use crate::close::CloseReason;
use crate::session::Session;

/// The client side of both demos: each line from `lines` goes out as a text
/// frame, each received text goes to `on_text`. When `lines` ends the session
/// closes with 1000, and what the peer sends before it answers that Close
/// still arrives (a tandem server answers a Close only once its handler has
/// handled the lines that came before it). Returns the close reason once the
/// connection is over.
///
/// The native `client` example feeds it standard input.
///
/// ```no_run
/// # async fn run() -> Result<(), tandem::Error> {
/// use futures::StreamExt;
///
/// let session = tandem::connect("ws://127.0.0.1:8080/echo").await?;
/// // The lines never end: the server closes after `bye`.
/// let lines = futures::stream::iter(vec!["Ktor".to_string(), "bye".to_string()])
///     .chain(futures::stream::pending());
/// let reason = tandem::demo::run_line_client(session, lines, |text| println!("{text}")).await;
/// assert_eq!(reason.message, "Client said BYE");
/// # Ok(()) }
/// ```
pub async fn run_line_client<L>(
    session: Session,
    lines: L,
    mut on_text: impl FnMut(&str),
) -> CloseReason
where
    L: Stream<Item = String> + Unpin,
{
    let (mut incoming, outgoing) = session.split();
    let mut lines = lines.fuse();
    let mut input_open = true;
    loop {
        if !input_open {
            match incoming.next().await {
                Some(frame) => {
                    if let Some(text) = frame.read_text() {
                        on_text(text);
                    }
                    continue;
                }
                None => break,
            }
        }
        match select(incoming.next(), lines.next()).await {
            Either::Left((Some(frame), _)) => {
                if let Some(text) = frame.read_text() {
                    on_text(text);
                }
            }
            Either::Left((None, _)) => break,
            Either::Right((Some(line), _)) => {
                if outgoing.send(line).await.is_err() {
                    input_open = false;
                }
            }
            Either::Right((None, _)) => {
                input_open = false;
                let _ = outgoing.close(CloseReason::normal()).await;
            }
        }
    }
    outgoing.close_reason().await
}
