//! The acceptance boundary: the one place where a job is allowed or refused.
//!
//! Every job, outgoing or incoming, passes through [`Boundary`]. It checks the
//! job against the node's state, records the decision in the job log, and on
//! acceptance returns an [`Accepted`] value. The job runner can only start a
//! protocol with an `Accepted`, and only this module can make one, so a job
//! cannot skip the checks. Grants, quotas and audit attach here.

use std::sync::Arc;
use std::time::Instant;

use unseen_protocol::JobId;

use crate::dataset::LoadedDataset;
use crate::store::{JobEnd, JobRecord, Outcome, Peer, Role, Store, now_rfc3339};
use crate::wire::ProtocolRequest;

/// A job that passed the boundary and is recorded as running.
#[derive(Debug)]
#[allow(
    clippy::manual_non_exhaustive,
    reason = "a private field keeps even this crate's other modules from making one; #[non_exhaustive] would not"
)]
pub struct Accepted {
    /// The job id.
    pub job_id: JobId,
    /// Our side of it.
    pub role: Role,
    /// The other node.
    pub peer: Peer,
    /// What runs.
    pub protocol: ProtocolRequest,
    /// Our dataset's name.
    pub local_dataset: String,
    /// The peer's dataset's name.
    pub peer_dataset: String,
    /// Our data, loaded and checked against its registration.
    pub data: Arc<LoadedDataset>,
    /// When the boundary accepted the job.
    pub started: Instant,
    _only_the_boundary_makes_these: (),
}

/// A refused job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the peer is told: nothing about our data.
    pub public_reason: String,
    /// What our own operator is told, with the fix.
    pub local_reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.local_reason)
    }
}

/// A job as it arrives at the boundary.
#[derive(Debug, Clone)]
pub struct JobProposal {
    /// The job id.
    pub job_id: JobId,
    /// The protocol.
    pub protocol: ProtocolRequest,
    /// Our dataset.
    pub local_dataset: String,
    /// The peer's dataset.
    pub peer_dataset: String,
}

/// Decides and records whether jobs run.
#[derive(Debug, Clone)]
pub struct Boundary {
    store: Arc<Store>,
}

impl Boundary {
    /// A boundary over the node's store.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Decides a job `peer` asks this node to serve (we are the responder),
    /// and records the decision.
    pub fn admit_incoming(&self, peer: &Peer, job: JobProposal) -> Result<Accepted, Refusal> {
        self.admit(Role::Responder, peer, job)
    }

    /// Decides a job this node's operator asks to run with the peer named
    /// `peer_name` (we are the requester), and records the decision.
    pub fn admit_outgoing(&self, peer_name: &str, job: JobProposal) -> Result<Accepted, Refusal> {
        match self.store.peer(peer_name) {
            Ok(Some(peer)) => self.admit(Role::Requester, &peer, job),
            found => {
                let local_reason = match found {
                    Err(e) => e.to_string(),
                    _ => format!(
                        "no peer named {peer_name:?}; register it with `unseen peer add {peer_name} --addr HOST:PORT --fingerprint FP`"
                    ),
                };
                let refusal = Refusal {
                    public_reason: String::new(),
                    local_reason,
                };
                let unknown = Peer {
                    name: peer_name.to_string(),
                    addr: String::new(),
                    fingerprint: String::new(),
                    added_at: String::new(),
                };
                self.record(Role::Requester, &unknown, &job, Err(&refusal))?;
                Err(refusal)
            }
        }
    }

    fn admit(&self, role: Role, peer: &Peer, job: JobProposal) -> Result<Accepted, Refusal> {
        let decision = self.decide(role, &job);
        self.record(
            role,
            peer,
            &job,
            decision.as_ref().map(|d| d.ids().len() as u64),
        )?;
        let data = decision?;
        Ok(Accepted {
            job_id: job.job_id,
            role,
            peer: peer.clone(),
            protocol: job.protocol,
            local_dataset: job.local_dataset,
            peer_dataset: job.peer_dataset,
            data: Arc::new(data),
            started: Instant::now(),
            _only_the_boundary_makes_these: (),
        })
    }

    /// Writes the decision to the job log. A replayed job id is refused here:
    /// the insert fails on the primary key.
    fn record(
        &self,
        role: Role,
        peer: &Peer,
        job: &JobProposal,
        decision: Result<u64, &Refusal>,
    ) -> Result<(), Refusal> {
        let id = job.job_id.to_string();
        let mut record = JobRecord {
            id: id.clone(),
            role,
            peer: peer.name.clone(),
            protocol: job.protocol.name().to_string(),
            local_dataset: job.local_dataset.clone(),
            peer_dataset: job.peer_dataset.clone(),
            local_set_size: None,
            peer_set_size: None,
            bytes_sent: 0,
            bytes_received: 0,
            started_at: now_rfc3339(),
            duration_ms: None,
            outcome: Outcome::Running,
            detail: None,
            result: None,
        };
        match decision {
            Ok(set_size) => record.local_set_size = Some(set_size),
            Err(refusal) => {
                record.outcome = Outcome::Refused;
                record.duration_ms = Some(0);
                record.detail = Some(refusal.local_reason.clone());
            }
        }
        if let Err(e) = self.store.insert_job(&record) {
            let duplicate = self.store.job_exists(&id, role).unwrap_or(true);
            return Err(Refusal {
                public_reason: if duplicate {
                    "this job id was already used; start a new job".into()
                } else {
                    "the node could not record the job; try again later".into()
                },
                local_reason: format!("job {id} not recorded: {e}"),
            });
        }
        Ok(())
    }

    fn decide(&self, role: Role, job: &JobProposal) -> Result<LoadedDataset, Refusal> {
        let unavailable = |local_reason: String| Refusal {
            public_reason: format!(
                "dataset {:?} is not available for this job",
                job.local_dataset
            ),
            local_reason,
        };
        let record = match self.store.dataset(&job.local_dataset) {
            Ok(Some(record)) => record,
            Ok(None) => {
                let hint = match role {
                    Role::Requester => {
                        "register it with `unseen dataset add NAME FILE --id-column COL`"
                    }
                    Role::Responder => "the peer asked for a dataset this node has not registered",
                };
                return Err(unavailable(format!(
                    "no dataset named {:?}; {hint}",
                    job.local_dataset
                )));
            }
            Err(e) => return Err(unavailable(e.to_string())),
        };
        let summary = &record.summary;
        LoadedDataset::load(&summary.path, &summary.id_column, &summary.sha256)
            .map_err(|e| unavailable(e.to_string()))
    }

    /// Records how an accepted job ended.
    pub fn finish(&self, accepted: &Accepted, end: &JobEnd) {
        if let Err(e) = self
            .store
            .finish_job(&accepted.job_id.to_string(), accepted.role, end)
        {
            tracing::error!(job = %accepted.job_id, "could not record the end of the job: {e}");
        }
    }
}
