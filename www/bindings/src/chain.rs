//! Calls that take effect in the order JavaScript made them, whether or not
//! it awaited each: a page calls `send` or `receive` several times without
//! awaiting, and expects them carried out one after the other, as on a
//! `WebSocket`. Each call takes a [`Place`] in its session's [`Chain`] and
//! starts once the call before it is done.

use std::cell::RefCell;

use futures::channel::oneshot;

/// The end of a chain of calls: the call made last so far.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// Closes (its sender is dropped) once the last call so far is done.
    last: RefCell<Option<oneshot::Receiver<()>>>,
}

/// A call's place in a [`Chain`]: its turn comes once the call before it is
/// done, and the call after it starts once this is dropped.
#[derive(Debug)]
pub(crate) struct Place {
    before: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Chain {
    /// Whether every call so far is done: a call made now may then take
    /// effect at once, without a place (and without a task to wait in).
    pub(crate) fn is_idle(&self) -> bool {
        let mut last = self.last.borrow_mut();
        let idle = match last.as_mut() {
            None => true,
            // Its sender is dropped once the call is done.
            Some(before) => matches!(before.try_recv(), Err(oneshot::Canceled)),
        };
        if idle {
            *last = None;
        }
        idle
    }

    /// A place at the end of the chain, behind every call made before.
    pub(crate) fn join(&self) -> Place {
        let (done, this) = oneshot::channel();
        Place {
            before: self.last.replace(Some(this)),
            _done: done,
        }
    }
}

impl Place {
    /// Waits until the call before this one is done.
    pub(crate) async fn turn(&mut self) {
        if let Some(before) = self.before.take() {
            // Done or failed alike: either way it is out of the way.
            let _ = before.await;
        }
    }
}
