//! Stats jobs waiting for streams from their other parties.
//!
//! Parties other than the requester reach each other directly: party `i`
//! opens a stream to each party `j > i` and says which job it is for
//! (`StatsHello`). The node registers a job when it accepts it, before it
//! answers, so a hello can never arrive for a job not yet registered; the
//! stream waits in the job's channel until the job takes it. A hello for no
//! registered job is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::identity::Fingerprint;
use crate::jobs::stream::JobStream;

/// A stream from another party: who opened it, as which party, and the stream.
pub(crate) struct Arrival {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) from: usize,
    pub(crate) stream: JobStream,
}

/// The node's stats jobs that accept streams, by job id.
#[derive(Debug, Default)]
pub struct Registry {
    jobs: Mutex<HashMap<String, mpsc::Sender<Arrival>>>,
}

impl std::fmt::Debug for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arrival(party {} from {})", self.from, self.fingerprint)
    }
}

impl Registry {
    /// Registers a job expecting up to `parties` streams.
    pub(crate) fn register(&self, job_id: &str, parties: usize) -> mpsc::Receiver<Arrival> {
        let (sender, receiver) = mpsc::channel(parties.max(1));
        self.lock().insert(job_id.to_string(), sender);
        receiver
    }

    /// Hands a stream to its job; gives it back if no such job waits or the
    /// job has all it expects.
    pub(crate) fn deliver(&self, job_id: &str, arrival: Arrival) -> Result<(), Box<Arrival>> {
        let sender = self.lock().get(job_id).cloned();
        match sender {
            Some(sender) => sender.try_send(arrival).map_err(|e| match e {
                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => {
                    Box::new(a)
                }
            }),
            None => Err(Box::new(arrival)),
        }
    }

    /// The job has ended: no more streams for it.
    pub(crate) fn remove(&self, job_id: &str) {
        self.lock().remove(job_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Arrival>>> {
        // A panic elsewhere while holding this lock leaves the map usable.
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
