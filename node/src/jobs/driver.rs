//! The one job driver: runs any sans-IO state machine of the protocol crate
//! over a job's links to the other parties, until it is done.
//!
//! A machine's step returns the next state and messages addressed to a
//! party ([`Addressed`]). The driver sends each message on the link to its
//! party, waits for the next message from any party, and feeds it to the
//! machine with the index of the party it came from. Each step runs off the
//! async runtime (PSI hashes and multiplies; a sum adds long vectors). What
//! a link is differs by job, not by protocol: a two-party job has one
//! stream ([`PairLink`]); a job of several parties has one per other party
//! ([`super::mesh::Mesh`]).

use unseen_protocol::sharing::{Addressed, PartyIndex};
use unseen_protocol::{Progress, Step};

use super::stream::JobStream;
use super::{JobError, blocking};
use crate::wire::PeerMessage;

/// Where a job's messages go and come from.
pub(crate) trait Link {
    /// Queues `message` for party `to`.
    fn send_to(&mut self, to: PartyIndex, message: &PeerMessage) -> Result<(), JobError>;

    /// The next message of the job, from whichever party sent it.
    fn recv_from(
        &mut self,
    ) -> impl std::future::Future<Output = Result<(PartyIndex, PeerMessage), JobError>> + Send;

    /// The name reports use for `party`.
    fn name_of(&self, party: PartyIndex) -> String;
}

/// How a protocol's messages travel in the node's envelope.
pub(crate) struct Envelope<M> {
    /// Puts a protocol message on the wire.
    pub(crate) wrap: fn(M) -> PeerMessage,
    /// Takes one off, or `None` for a message of something else.
    pub(crate) unwrap: fn(PeerMessage) -> Option<M>,
    /// The role whose crash point runs before each step (the crash drills).
    pub(crate) crash_role: Option<crate::policy::Role>,
}

/// Runs a machine from its first step to its output. `observe` sees each
/// message before the machine does, with the link (to grow a bound when a
/// peer announces its size, say).
pub(crate) async fn drive<L, S, O, M>(
    link: &mut L,
    first: Step<S, O, Addressed<M>>,
    envelope: &Envelope<M>,
    handle: impl Fn(S, PartyIndex, M) -> Result<Step<S, O, Addressed<M>>, unseen_protocol::Error>
    + Clone
    + Send
    + 'static,
    mut observe: impl FnMut(PartyIndex, &M, &mut L),
) -> Result<O, JobError>
where
    L: Link + Send,
    S: Send + 'static,
    O: Send + 'static,
    M: Send + 'static,
{
    let mut step = first;
    loop {
        for Addressed { to, message } in step.send {
            link.send_to(to, &(envelope.wrap)(message))?;
        }
        let state = match step.next {
            Progress::Done(output) => return Ok(output),
            Progress::Continue(state) => state,
        };
        let (from, message) = link.recv_from().await?;
        let received = message.kind();
        let message = (envelope.unwrap)(message).ok_or_else(|| {
            JobError::Unexpected {
                expected: "a message of the job's protocol",
                received,
            }
            .from_party(&link.name_of(from))
        })?;
        observe(from, &message, link);
        if let Some(role) = envelope.crash_role {
            crate::crash::point(role, crate::crash::Step::MidStream);
        }
        let handle = handle.clone();
        step = blocking(move || handle(state, from, message))
            .await?
            .map_err(|e| JobError::from(e).from_party(&link.name_of(from)))?;
    }
}

/// A two-party job's link: one stream to the other party.
pub(crate) struct PairLink<'a> {
    /// The stream.
    pub(crate) stream: &'a mut JobStream,
    /// The other party's index.
    pub(crate) peer: PartyIndex,
    /// Its name.
    pub(crate) name: &'a str,
}

impl Link for PairLink<'_> {
    fn send_to(&mut self, to: PartyIndex, message: &PeerMessage) -> Result<(), JobError> {
        if to != self.peer {
            return Err(JobError::Internal(format!(
                "a two-party machine addressed {to}"
            )));
        }
        self.stream.send(message)
    }

    async fn recv_from(&mut self) -> Result<(PartyIndex, PeerMessage), JobError> {
        Ok((self.peer, self.stream.recv().await?))
    }

    fn name_of(&self, _: PartyIndex) -> String {
        self.name.to_string()
    }
}

/// A two-party machine's step, with every message addressed to the peer.
/// Runs a two-party machine over `stream` to `peer` (its index and name):
/// every message it sends goes to the peer, and `observe` sees each message
/// it receives, with the stream, before the machine does.
pub(crate) async fn drive_pair<S, O, M>(
    stream: &mut JobStream,
    peer: (PartyIndex, &str),
    first: Step<S, O, M>,
    envelope: &Envelope<M>,
    handle: impl Fn(S, M) -> Result<Step<S, O, M>, unseen_protocol::Error> + Clone + Send + 'static,
    mut observe: impl FnMut(&M, &mut JobStream),
) -> Result<O, JobError>
where
    S: Send + 'static,
    O: Send + 'static,
    M: Send + 'static,
{
    let (index, name) = peer;
    let mut link = PairLink {
        stream,
        peer: index,
        name,
    };
    drive(
        &mut link,
        to_peer(first, index),
        envelope,
        move |state, _, message| Ok(to_peer(handle(state, message)?, index)),
        |_, message, link| observe(message, link.stream),
    )
    .await
}

pub(crate) fn to_peer<S, O, M>(step: Step<S, O, M>, peer: PartyIndex) -> Step<S, O, Addressed<M>> {
    Step {
        next: step.next,
        send: step
            .send
            .into_iter()
            .map(|message| Addressed { to: peer, message })
            .collect(),
    }
}
