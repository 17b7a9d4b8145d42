//! One driver for any sans-IO machine whose messages are addressed to a
//! party: a job's streams, one per other party, with every message routed to
//! the stream of the party it is for.
//!
//! Each stream's reading half runs in its own task and forwards what it
//! reads to one bounded inbox, so a slow party holds back only its own
//! stream (QUIC flow control) and the driver never blocks on one peer while
//! another waits. Writing goes through each stream's queue, which never
//! blocks. The job driver ([`super::driver::drive`]) runs a machine over it
//! as over any other [`Link`].

use std::collections::BTreeMap;

use tokio::sync::mpsc;
use unseen_protocol::sharing::PartyIndex;

use super::driver::Link;
use super::stream::{JobStream, StreamReader, StreamWriter, Traffic};
use super::{JobError, unexpected};
use crate::wire::{self, AbortCode, PeerMessage};

/// What a reader task forwards: the party, what it read, and the bytes it
/// has read so far on that stream.
type Inbound = (PartyIndex, Result<PeerMessage, JobError>, u64);

/// A job's streams to the other parties.
pub(crate) struct Mesh {
    names: BTreeMap<PartyIndex, String>,
    writers: BTreeMap<PartyIndex, StreamWriter>,
    readers: Vec<tokio::task::JoinHandle<StreamReader>>,
    inbox: mpsc::Receiver<Inbound>,
    received: BTreeMap<PartyIndex, u64>,
    /// Data-bearing messages received, for the job's record.
    data_received: u64,
    /// Parties whose stream has ended after they said the job was finished.
    finished: BTreeMap<PartyIndex, bool>,
}

impl Mesh {
    /// Starts reading every stream. `streams` holds one stream per other
    /// party, with the name reports use for it.
    pub(crate) fn new(streams: Vec<(PartyIndex, String, JobStream)>) -> Self {
        let (forward, inbox) = mpsc::channel::<Inbound>(4 * streams.len().max(1));
        let mut names = BTreeMap::new();
        let mut writers = BTreeMap::new();
        let mut readers = Vec::new();
        for (party, name, stream) in streams {
            let (writer, reader) = stream.split();
            names.insert(party, name);
            writers.insert(party, writer);
            readers.push(tokio::spawn(read_into(party, reader, forward.clone())));
        }
        Self {
            finished: names.keys().map(|&p| (p, false)).collect(),
            names,
            writers,
            readers,
            inbox,
            received: BTreeMap::new(),
            data_received: 0,
        }
    }

    fn name(&self, party: PartyIndex) -> String {
        self.names
            .get(&party)
            .cloned()
            .unwrap_or_else(|| party.to_string())
    }

    /// Queues `message` for `party`.
    pub(crate) fn send(
        &mut self,
        party: PartyIndex,
        message: &PeerMessage,
    ) -> Result<(), JobError> {
        let name = self.name(party);
        let writer = self.writers.get_mut(&party).ok_or_else(|| {
            JobError::Internal(format!("the machine addressed {party}, who has no stream"))
        })?;
        writer.send(message).map_err(|e| e.from_party(&name))
    }

    /// Queues `message` for every other party.
    pub(crate) fn broadcast(&mut self, message: &PeerMessage) -> Result<(), JobError> {
        let parties: Vec<PartyIndex> = self.writers.keys().copied().collect();
        parties.into_iter().try_for_each(|p| self.send(p, message))
    }

    /// The next message from any party, `JobFinished` included; an error
    /// names the party.
    async fn recv(&mut self) -> Result<(PartyIndex, PeerMessage), JobError> {
        loop {
            let (party, read, bytes) =
                self.inbox.recv().await.ok_or_else(|| {
                    JobError::Internal("every stream of the job has ended".into())
                })?;
            self.received.insert(party, bytes);
            match read {
                Ok(message) => {
                    if message.is_data() {
                        self.data_received += 1;
                    }
                    return Ok((party, message));
                }
                // A party that said the job was finished may close.
                Err(JobError::Closed) if self.finished.get(&party) == Some(&true) => {}
                Err(e) => return Err(e.from_party(&self.name(party))),
            }
        }
    }

    /// Tells every party this one is done, and waits until every other party
    /// has said the same: only then may a result be released, so a party
    /// that drops at the last moment fails the job for everyone.
    pub(crate) async fn finish(&mut self) -> Result<(), JobError> {
        self.broadcast(&PeerMessage::JobFinished)?;
        while self.finished.values().any(|done| !done) {
            let (from, message) = self.recv().await?;
            match message {
                PeerMessage::JobFinished => {
                    self.finished.insert(from, true);
                }
                other => {
                    return Err(unexpected("JobFinished", &other).from_party(&self.name(from)));
                }
            }
        }
        Ok(())
    }

    /// Tells every party the job stops here, and why. Unlike a two-party
    /// job, where a closed stream says it all, the other parties here may
    /// not see the failure themselves (a third party dropped), so every
    /// failure is sent on, naming the party it came from.
    pub(crate) fn abort(&mut self, error: &JobError) {
        let abort = abort_for_parties(error);
        for writer in self.writers.values_mut() {
            let _ = writer.send(&abort);
        }
    }

    /// What crossed the job's streams so far.
    pub(crate) fn traffic(&self) -> Traffic {
        Traffic {
            bytes_sent: self.writers.values().map(StreamWriter::bytes_sent).sum(),
            bytes_received: self.received.values().sum(),
            data_sent: self.writers.values().map(StreamWriter::data_sent).sum(),
            data_received: self.data_received,
        }
    }

    /// Closes our direction of every stream. With `wait`, then waits (each
    /// at most that long) for every other party to close its direction: a
    /// party closes only after recording the job's end, so the requester
    /// returns once every party's record exists. Without, stops reading.
    pub(crate) async fn close(self, wait: Option<std::time::Duration>) {
        let Self {
            writers,
            readers,
            inbox,
            ..
        } = self;
        // Readers end once their stream does; nothing more is read.
        drop(inbox);
        for (_, writer) in writers {
            writer.close_counted().await;
        }
        for mut reader in readers {
            match wait {
                Some(limit) => {
                    if tokio::time::timeout(limit, &mut reader).await.is_err() {
                        reader.abort();
                    }
                }
                None => reader.abort(),
            }
        }
    }
}

/// The abort that tells the other parties of a job why it stops, naming
/// the party at fault: they know each other, and may not see the failure
/// themselves (a third party dropped).
pub(crate) fn abort_for_parties(error: &JobError) -> PeerMessage {
    let abort = |code: u16, reason: String| PeerMessage::Abort {
        code,
        reason: wire::reason(&reason),
    };
    let failed = AbortCode::PartyFailed as u16;
    match error {
        JobError::Connect { peer, .. } => abort(failed, format!("{peer}: cannot be reached")),
        JobError::Party { party, error } => match error.abort() {
            Some(PeerMessage::Abort { code, reason }) => abort(code, format!("{party}: {reason}")),
            _ => abort(failed, format!("{party}: {error}")),
        },
        other => other
            .abort()
            .unwrap_or_else(|| abort(failed, other.to_string())),
    }
}

impl Link for Mesh {
    fn send_to(&mut self, to: PartyIndex, message: &PeerMessage) -> Result<(), JobError> {
        self.send(to, message)
    }

    /// The next protocol message. A party whose part is over (it receives
    /// no result) may finish while others still run: its `JobFinished` is
    /// noted here. It must not finish twice, and the job cannot go on once
    /// every other party has finished.
    async fn recv_from(&mut self) -> Result<(PartyIndex, PeerMessage), JobError> {
        loop {
            let (from, message) = self.recv().await?;
            if !matches!(message, PeerMessage::JobFinished) {
                return Ok((from, message));
            }
            if self.finished.insert(from, true) == Some(true) {
                return Err(unexpected("one JobFinished", &message).from_party(&self.name(from)));
            }
            if self.finished.values().all(|done| *done) {
                return Err(JobError::Internal(
                    "every other party finished before this party had its output".into(),
                ));
            }
        }
    }

    fn name_of(&self, party: PartyIndex) -> String {
        self.name(party)
    }
}

/// Reads `party`'s stream until it ends or fails, forwarding each message.
async fn read_into(
    party: PartyIndex,
    mut reader: StreamReader,
    forward: mpsc::Sender<Inbound>,
) -> StreamReader {
    loop {
        let read = reader.recv().await;
        let failed = read.is_err();
        if forward
            .send((party, read, reader.bytes_received()))
            .await
            .is_err()
            || failed
        {
            return reader;
        }
    }
}
