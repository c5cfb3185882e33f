//! A room's task in this process: reads the room's log from the backplane
//! and fans each message out to the room's members here; takes joins in
//! between, so that a member catching up from an id meets the live messages
//! exactly where its catch-up ends.

use std::sync::Arc;

use futures::channel::oneshot;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::backplane::{Backplane, Envelope, MessageId};
use super::{Render, Rooms};
use crate::close::{CloseCode, CloseReason};
use crate::error::Error;
use crate::frame::Frame;
use crate::hub::{Hub, Membership, SlowMemberPolicy};
use crate::session::Outgoing;

/// The frame a joining member gets before any live message, from whether
/// it recovered what it missed.
pub(super) type Greeting = Box<dyn FnOnce(bool) -> Frame + Send>;

/// What a room's task is asked to do.
pub(super) enum Command {
    /// Add a member, after the messages it missed since `last_seen` and
    /// the greeting.
    Join {
        outgoing: Outgoing,
        last_seen: Option<MessageId>,
        greeting: Option<Greeting>,
        reply: oneshot::Sender<Result<(Membership, bool), Error>>,
    },
    /// A member left; the task ends once the room has nobody here.
    Left,
}

pub(super) struct RoomTask {
    pub(super) rooms: Rooms,
    pub(super) room: String,
    pub(super) hub: Hub,
    pub(super) inbox: mpsc::UnboundedReceiver<Command>,
    pub(super) backplane: Arc<dyn Backplane>,
    pub(super) render: Render,
}

/// The place in the room's log up to which this process's members have
/// every message, and the reader of what comes after it.
struct Position {
    delivered: Option<MessageId>,
    reader: BoxStream<'static, Result<Envelope, Error>>,
}

impl RoomTask {
    pub(super) async fn run(mut self) {
        debug!(room = %self.room, "room opened here");
        let mut position = None;
        loop {
            let Some(at) = position.as_mut() else {
                // The first join opens the reader (or fails for want of
                // one); a room with no reader reads no messages.
                match self.inbox.recv().await {
                    Some(Command::Join {
                        outgoing,
                        last_seen,
                        greeting,
                        reply,
                    }) => match self.open().await {
                        Ok(opened) => {
                            let joined = self
                                .join(opened.delivered.clone(), outgoing, last_seen, greeting)
                                .await;
                            let _ = reply.send(joined);
                            position = Some(opened);
                        }
                        Err(error) => {
                            let _ = reply.send(Err(error));
                        }
                    },
                    Some(Command::Left) => {}
                    None => return,
                }
                if self.rooms.leave_if_empty(&self.room, &mut self.inbox) {
                    break;
                }
                continue;
            };
            tokio::select! {
                // Joins first: a member waiting to join is not kept behind
                // a stream of messages.
                biased;
                command = self.inbox.recv() => match command {
                    Some(Command::Join { outgoing, last_seen, greeting, reply }) => {
                        let joined = self
                            .join(at.delivered.clone(), outgoing, last_seen, greeting)
                            .await;
                        let _ = reply.send(joined);
                    }
                    Some(Command::Left) => {
                        if self.rooms.leave_if_empty(&self.room, &mut self.inbox) {
                            break;
                        }
                    }
                    None => break,
                },
                next = at.reader.next() => match next {
                    Some(Ok(envelope)) => {
                        let frame = (self.render)(&envelope);
                        // Invalid frames were refused at publish; the report
                        // is the hub's business.
                        let _ = self.hub.broadcast(frame).await;
                        at.delivered = Some(envelope.id);
                    }
                    Some(Err(error)) => {
                        self.lost_messages(&error);
                        position = None;
                        if self.rooms.leave_if_empty(&self.room, &mut self.inbox) {
                            break;
                        }
                    }
                    None => {
                        self.lost_messages(&Error::Backplane("the room's log ended".into()));
                        position = None;
                        if self.rooms.leave_if_empty(&self.room, &mut self.inbox) {
                            break;
                        }
                    }
                },
            }
        }
        debug!(room = %self.room, "room closed here: no members left");
    }

    /// Reads the room's log from its current end.
    async fn open(&self) -> Result<Position, Error> {
        let delivered = self.backplane.head(&self.room).await?;
        let reader = self.backplane.subscribe(&self.room, delivered.clone());
        Ok(Position { delivered, reader })
    }

    /// Queues the messages after `last_seen` up to where the room's members
    /// are, and the greeting, then adds the member to the hub: no live
    /// message can come in between, as this task is the one that delivers
    /// them.
    async fn join(
        &self,
        delivered: Option<MessageId>,
        outgoing: Outgoing,
        last_seen: Option<MessageId>,
        greeting: Option<Greeting>,
    ) -> Result<(Membership, bool), Error> {
        let mut recovered = true;
        if let Some(last_seen) = last_seen {
            if Some(&last_seen) != delivered.as_ref() {
                recovered = match delivered {
                    Some(through) => {
                        let history = self
                            .backplane
                            .history(&self.room, last_seen, through)
                            .await?;
                        for envelope in &history.messages {
                            let frame = (self.render)(envelope);
                            if !self.catch_up(&outgoing, frame).await {
                                return Err(Error::ConnectionClosed(None));
                            }
                        }
                        history.complete
                    }
                    // Nothing in the log: an id from another log.
                    None => false,
                };
            }
        }
        if let Some(greeting) = greeting {
            if !self.catch_up(&outgoing, greeting(recovered)).await {
                return Err(Error::ConnectionClosed(None));
            }
        }
        Ok((self.hub.join(outgoing), recovered))
    }

    /// Queues one missed message under the rooms' slow-member policy;
    /// `false` when the member is gone or was closed for being too slow.
    async fn catch_up(&self, outgoing: &Outgoing, frame: Frame) -> bool {
        let too_slow = || {
            warn!(room = %self.room, "closing a member too slow to catch up");
            outgoing.close_now(CloseReason::new(
                CloseCode::ViolatedPolicy,
                "too slow to read",
            ));
            false
        };
        match self.hub.policy() {
            SlowMemberPolicy::Wait => outgoing.send(frame).await.is_ok(),
            SlowMemberPolicy::DropMessage => !matches!(
                outgoing.try_send(frame),
                Err(error) if !matches!(error, Error::QueueFull)
            ),
            SlowMemberPolicy::DropMember => match outgoing.try_send(frame) {
                Ok(()) => true,
                Err(Error::QueueFull) => too_slow(),
                Err(_) => false,
            },
            SlowMemberPolicy::CloseAfter(bound) => {
                match tokio::time::timeout(bound, outgoing.send(frame)).await {
                    Ok(sent) => sent.is_ok(),
                    Err(_) => too_slow(),
                }
            }
        }
    }

    /// The reader fell behind the log's history (or the log went away):
    /// this process's members missed messages. They are closed with 1012,
    /// which clients retry, so that they come back with their last id and
    /// recover what the history still holds.
    fn lost_messages(&self, error: &Error) {
        warn!(room = %self.room, %error, "the room's members here missed messages; closing them");
        for member in self.hub.outgoings() {
            member.close_now(CloseReason::new(
                CloseCode::ServiceRestart,
                "missed messages: reconnect to resume",
            ));
        }
    }
}
