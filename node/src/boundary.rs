//! The acceptance boundary: the one place where a job is allowed or refused.
//!
//! Every job, outgoing or incoming, passes through [`Boundary`]. In one
//! SQLite transaction it checks the job against the data owner's rules
//! (grade, legal basis, grant, quota, minimum group size), charges the quota,
//! records the job and writes the audit entries; only then does it return an
//! [`Accepted`] value. The job runner can only start a protocol with an
//! `Accepted`, and only this module can make one, so no job skips the checks
//! and no protocol message leaves before the charge is durable.

use std::sync::Arc;
use std::time::Instant;

use rustls_pki_types::CertificateDer;
use unseen_protocol::JobId;
use unseen_protocol::dp;
use unseen_protocol::ecdh_psi::Padding;

/// Delta per noisy release when a grant names none: one in a billion.
pub const DEFAULT_DELTA_NANOS: u64 = 1;

use crate::audit::{AuditEvent, Release};
use crate::clock::rfc3339;
use crate::dataset::LoadedDataset;
use crate::error::NodeError;
use crate::grant::{Charge, Grant, GrantRefusal, GrantedProtocol};
use crate::identity::{Fingerprint, Identity};
use crate::manifest::{JobManifest, Party};
use crate::policy::{self, Reveals, Violation};
use crate::store::{JobEnd, JobRecord, Outcome, Peer, Role, Store, Tx};
use crate::wire::{JobAcceptance, JobRequest, NoiseTerms, ProtocolRequest, ReleaseTerms};

/// A job that passed the boundary, was charged, and is recorded as running.
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
    /// What the job is, as signed by the requester.
    pub manifest: JobManifest,
    /// The grant it runs under on this node.
    pub grant: Grant,
    /// Our data, loaded and checked against its registration.
    pub data: Arc<LoadedDataset>,
    /// Our data owner's minimum group size.
    pub min_group_size: u64,
    /// The largest set the peer may bring.
    pub max_peer_set_size: u64,
    /// The smallest set the peer may bring.
    pub min_peer_set_size: u64,
    /// Differential-privacy padding of the count: drawn here for the
    /// responder, set from the responder's terms for the requester.
    pub padding: Padding,
    /// When the boundary accepted the job.
    pub started: Instant,
    _only_the_boundary_makes_these: (),
}

impl Accepted {
    /// The protocol.
    pub fn protocol(&self) -> ProtocolRequest {
        self.manifest.protocol
    }
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

impl From<Violation> for Refusal {
    fn from(v: Violation) -> Self {
        Self {
            public_reason: v.public_reason().into(),
            local_reason: v.to_string(),
        }
    }
}

impl From<GrantRefusal> for Refusal {
    fn from(g: GrantRefusal) -> Self {
        Self {
            public_reason: g.public_reason().into(),
            local_reason: g.to_string(),
        }
    }
}

/// The store failing mid-decision; the job is refused and nothing is charged.
impl From<NodeError> for Refusal {
    fn from(e: NodeError) -> Self {
        Self {
            public_reason: "the node could not decide on the job; try again later".into(),
            local_reason: e.to_string(),
        }
    }
}

fn refuse(public: &str, local: String) -> Refusal {
    Refusal {
        public_reason: public.into(),
        local_reason: local,
    }
}

/// A job this node's operator asks for.
#[derive(Debug, Clone)]
pub struct OutgoingJob {
    /// A job id to retry, or `None` for a new job.
    pub retry: Option<JobId>,
    /// The peer, by local name.
    pub peer: String,
    /// Our dataset.
    pub local_dataset: String,
    /// The peer's dataset.
    pub peer_dataset: String,
    /// The protocol.
    pub protocol: ProtocolRequest,
    /// The purpose, as the grants name it.
    pub purpose: String,
}

/// Decides and records whether jobs run.
#[derive(Debug, Clone)]
pub struct Boundary {
    store: Arc<Store>,
    identity: Arc<Identity>,
    name: String,
    max_peer_set_size: u64,
}

/// What the transaction decided; a refusal is committed too (it is recorded).
enum Decision<T> {
    Accept(T),
    Refuse(Refusal),
}

impl Boundary {
    /// A boundary over the node's store, signing with its identity.
    pub fn new(
        store: Arc<Store>,
        identity: Arc<Identity>,
        name: String,
        max_peer_set_size: u64,
    ) -> Self {
        Self {
            store,
            identity,
            name,
            max_peer_set_size,
        }
    }

    /// Decides a job our operator asks for (we are the requester). On
    /// acceptance returns the job and the signed request to send.
    pub fn admit_outgoing(&self, job: OutgoingJob) -> Result<(Accepted, JobRequest), Refusal> {
        let job_id = job
            .retry
            .unwrap_or_else(|| JobId::random(&mut rand_core::OsRng));
        let decision = self.store.write(|tx| {
            let Some(peer) = tx.peer(&job.peer)? else {
                let refusal = refuse(
                    "",
                    format!(
                        "no peer named {:?}; register it with `unseen peer add {} --addr HOST:PORT --fingerprint FP`",
                        job.peer, job.peer
                    ),
                );
                let unknown = Peer {
                    name: job.peer.clone(),
                    addr: String::new(),
                    fingerprint: String::new(),
                    added_at: String::new(),
                };
                let manifest = self.manifest(job_id, &unknown, &job, "");
                self.record_refusal(tx, Role::Requester, &unknown, &manifest, &refusal)?;
                return Ok(Decision::Refuse(refusal));
            };
            let manifest = self.manifest(job_id, &peer, &job, "");
            match self.decide(tx, Role::Requester, &peer, &manifest, None)? {
                Decision::Refuse(refusal) => {
                    self.record_refusal(tx, Role::Requester, &peer, &manifest, &refusal)?;
                    Ok(Decision::Refuse(refusal))
                }
                Decision::Accept(mut accepted) => {
                    accepted.manifest.requester_grant = accepted.grant.id.clone();
                    Ok(Decision::Accept(accepted))
                }
            }
        });
        let accepted = decided(decision)?;
        let request = JobRequest {
            requester_signature: accepted.manifest.sign_request(&self.identity),
            requester_set_size: accepted.data.ids().len() as u64,
            manifest: accepted.manifest.clone(),
        };
        Ok((accepted, request))
    }

    /// Decides a job `peer` asks of us (we are the responder). `peer_cert`
    /// is the certificate the peer presented in the TLS handshake.
    pub fn admit_incoming(
        &self,
        peer: &Peer,
        peer_cert: &CertificateDer<'_>,
        request: &JobRequest,
    ) -> Result<(Accepted, JobAcceptance), Refusal> {
        let manifest = &request.manifest;
        let Some(job_id) = request.job_id() else {
            return Err(refuse(
                "malformed job id",
                "peer sent a malformed job id".into(),
            ));
        };
        let decision = self.store.write(|tx| {
            if let Err(refusal) = self.check_manifest(peer_cert, request) {
                self.record_refusal(tx, Role::Responder, peer, manifest, &refusal)?;
                return Ok(Decision::Refuse(refusal));
            }
            match self.decide(
                tx,
                Role::Responder,
                peer,
                manifest,
                Some(request.requester_set_size),
            )? {
                Decision::Refuse(refusal) => {
                    self.record_refusal(tx, Role::Responder, peer, manifest, &refusal)?;
                    Ok(Decision::Refuse(refusal))
                }
                Decision::Accept(mut accepted) => {
                    // An invalid noise setting rolls the whole admission
                    // back: nothing is charged, and the peer is told the node
                    // could not decide.
                    let drawn =
                        self.draw_noise(&accepted)
                            .map_err(|refusal| NodeError::Config {
                                path: format!("grant {}", accepted.grant.id).into(),
                                message: refusal.local_reason,
                            })?;
                    let noise = drawn.map(|(terms, padding)| {
                        accepted.padding = padding;
                        terms
                    });
                    let acceptance = JobAcceptance {
                        responder_signature: manifest
                            .sign_acceptance(&self.identity, &accepted.grant.id),
                        responder_grant: accepted.grant.id.clone(),
                        terms: ReleaseTerms {
                            min_group_size: accepted.min_group_size,
                            noise,
                        },
                    };
                    tx.audit(AuditEvent::JobAgreed {
                        job_id: job_id.to_string(),
                        manifest: manifest.clone(),
                        requester_signature: hex::encode(&request.requester_signature),
                        responder_grant: acceptance.responder_grant.clone(),
                        responder_signature: hex::encode(&acceptance.responder_signature),
                        peer_certificate: hex::encode(peer_cert.as_ref()),
                    })?;
                    Ok(Decision::Accept((accepted, acceptance)))
                }
            }
        });
        decided(decision)
    }

    /// Records the responder's countersignature on our request, after
    /// checking it against the responder's certificate.
    pub fn record_agreement(
        &self,
        accepted: &Accepted,
        request: &JobRequest,
        acceptance: &JobAcceptance,
        peer_cert: &CertificateDer<'_>,
    ) -> Result<(), Refusal> {
        if Fingerprint::of(peer_cert).to_string() != accepted.manifest.responder.fingerprint {
            return Err(refuse(
                "",
                "the responder's certificate is not the one the manifest names".into(),
            ));
        }
        accepted
            .manifest
            .verify_acceptance(
                peer_cert,
                &acceptance.responder_grant,
                &acceptance.responder_signature,
            )
            .map_err(|e| {
                refuse(
                    "",
                    format!("the responder's countersignature is invalid: {e}"),
                )
            })?;
        self.store.audit(AuditEvent::JobAgreed {
            job_id: accepted.job_id.to_string(),
            manifest: accepted.manifest.clone(),
            requester_signature: hex::encode(&request.requester_signature),
            responder_grant: acceptance.responder_grant.clone(),
            responder_signature: hex::encode(&acceptance.responder_signature),
            peer_certificate: hex::encode(peer_cert.as_ref()),
        })?;
        Ok(())
    }

    /// Draws the padding for a noisy count, if the grant asks for noise and
    /// the protocol releases an aggregate of our data.
    fn draw_noise(&self, accepted: &Accepted) -> Result<Option<(NoiseTerms, Padding)>, Refusal> {
        let quota = &accepted.grant.quota;
        let reveals = policy::disclosure(accepted.protocol()).of(accepted.role);
        let Some(epsilon_micros) = quota.epsilon_per_job_micros else {
            return Ok(None);
        };
        if reveals != Reveals::Aggregate {
            return Ok(None);
        }
        let delta_nanos = quota
            .delta_per_job_nanos
            .unwrap_or(DEFAULT_DELTA_NANOS)
            .max(1);
        let bad =
            |e: dp::DpError| refuse("the data owner's noise settings are invalid", e.to_string());
        let epsilon = dp::Epsilon::from_micros(epsilon_micros).map_err(bad)?;
        // Clamping at either end has probability 2·tail, so tail = delta/2.
        let drawn =
            dp::padding_for_count(epsilon, delta_nanos, 2_000_000_000, &mut rand_core::OsRng)
                .map_err(bad)?;
        let terms = NoiseTerms {
            epsilon_micros,
            delta_nanos,
            offset: drawn.offset,
            total: drawn.total,
        };
        let padding = Padding::Responder {
            matching: drawn.matching,
            total: drawn.total,
        };
        Ok(Some((terms, padding)))
    }

    fn manifest(&self, job_id: JobId, peer: &Peer, job: &OutgoingJob, grant: &str) -> JobManifest {
        let own = self.identity.fingerprint().to_string();
        JobManifest {
            job_id: job_id.to_string(),
            requester: Party {
                name: self.name.clone(),
                fingerprint: own.clone(),
            },
            responder: Party {
                name: peer.name.clone(),
                fingerprint: peer.fingerprint.clone(),
            },
            protocol: job.protocol,
            requester_dataset: job.local_dataset.clone(),
            responder_dataset: job.peer_dataset.clone(),
            purpose: job.purpose.clone(),
            result_recipients: vec![own],
            requester_grant: grant.into(),
        }
    }

    /// The manifest must name the handshake's certificate as requester and
    /// this node as responder, be signed by the requester, and send the
    /// result to the requester alone.
    fn check_manifest(
        &self,
        peer_cert: &CertificateDer<'_>,
        request: &JobRequest,
    ) -> Result<(), Refusal> {
        let manifest = &request.manifest;
        let peer_fp = Fingerprint::of(peer_cert).to_string();
        let own = self.identity.fingerprint().to_string();
        if manifest.requester.fingerprint != peer_fp || manifest.responder.fingerprint != own {
            return Err(refuse(
                "the manifest does not name the two nodes of this connection",
                "the peer's manifest names other nodes than this connection's".into(),
            ));
        }
        if manifest.result_recipients != [peer_fp] {
            return Err(refuse(
                "results may go only to the requester",
                "the peer's manifest sends the result to other nodes".into(),
            ));
        }
        manifest
            .verify_request(peer_cert, &request.requester_signature)
            .map_err(|e| refuse("the manifest signature is invalid", e.to_string()))
    }

    /// The rules, in order. Runs inside the admission transaction.
    fn decide(
        &self,
        tx: &Tx<'_>,
        role: Role,
        peer: &Peer,
        manifest: &JobManifest,
        peer_set_size: Option<u64>,
    ) -> Result<Decision<Accepted>, NodeError> {
        let (local_dataset, peer_dataset) = match role {
            Role::Requester => (&manifest.requester_dataset, &manifest.responder_dataset),
            Role::Responder => (&manifest.responder_dataset, &manifest.requester_dataset),
        };
        let job_id = manifest.job_id.clone();
        // A job id runs once; only a failed or interrupted job may be retried,
        // and a retry reuses its charge.
        let previous = tx.job(&job_id, role)?;
        if let Some(previous) = &previous
            && (!matches!(previous.outcome, Outcome::Failed | Outcome::Interrupted)
                || previous.peer != peer.name
                || previous.protocol != manifest.protocol.name()
                || previous.local_dataset != *local_dataset)
        {
            return Ok(Decision::Refuse(refuse(
                "this job id was already used; start a new job",
                format!(
                    "job {job_id} already ran ({}); only a failed or interrupted job with the same peer, protocol and dataset can be retried",
                    previous.outcome.as_str()
                ),
            )));
        }
        let unavailable = |local_reason: String| {
            Decision::Refuse(refuse(
                &format!("dataset {local_dataset:?} is not available for this job"),
                local_reason,
            ))
        };
        let Some(record) = tx.dataset(local_dataset)? else {
            let hint = match role {
                Role::Requester => {
                    "register it with `unseen dataset add NAME FILE --id-column COL --grade GRADE`"
                }
                Role::Responder => "the peer asked for a dataset this node has not registered",
            };
            return Ok(unavailable(format!(
                "no dataset named {local_dataset:?}; {hint}"
            )));
        };
        let Some(policy) = record.policy.clone() else {
            return Ok(unavailable(format!(
                "dataset {local_dataset:?} has no grade; register it again with `unseen dataset add ... --grade GRADE`"
            )));
        };
        let reveals = policy::disclosure(manifest.protocol).of(role);
        let grant = match self.find_grant(tx, peer, local_dataset, manifest) {
            Ok(grant) => grant,
            Err(refusal) => return Ok(Decision::Refuse(refusal)),
        };
        let noise = reveals == Reveals::Aggregate && grant.quota.epsilon_per_job_micros.is_some();
        if let Err(violation) = policy::check_use(&policy, reveals, noise) {
            return Ok(Decision::Refuse(violation.into()));
        }
        if let Some(size) = peer_set_size
            && !policy::may_release(size, policy.min_group_size)
        {
            // Any result would be computed over fewer than k of our records.
            return Ok(Decision::Refuse(refuse(
                "the requester's set is below the data owner's minimum group size",
                format!(
                    "the peer brings {size} ids, below this dataset's minimum group size {}; no result could be released",
                    policy.min_group_size
                ),
            )));
        }
        let data = match LoadedDataset::load(
            &record.summary.path,
            &record.summary.id_column,
            &record.summary.sha256,
        ) {
            Ok(data) => data,
            Err(e) => return Ok(unavailable(e.to_string())),
        };
        let charge = Charge {
            rows: data.ids().len() as u64,
            epsilon_micros: if noise {
                grant.quota.epsilon_per_job_micros.unwrap_or(0)
            } else {
                0
            },
            delta_nanos: if noise {
                grant
                    .quota
                    .delta_per_job_nanos
                    .unwrap_or(DEFAULT_DELTA_NANOS)
                    .max(1)
            } else {
                0
            },
        };
        let already_charged = tx.charged(&job_id, &grant.id)?;
        if !already_charged {
            let usage = tx.usage(&grant)?;
            if let Err(refusal) = grant.check_quota(&usage, &charge, peer_set_size) {
                return Ok(Decision::Refuse(refusal.into()));
            }
            tx.charge(&job_id, &grant.id, &charge)?;
        }
        let record = JobRecord {
            id: job_id.clone(),
            role,
            peer: peer.name.clone(),
            protocol: manifest.protocol.name().into(),
            local_dataset: local_dataset.clone(),
            peer_dataset: peer_dataset.clone(),
            local_set_size: Some(charge.rows),
            peer_set_size: None,
            bytes_sent: 0,
            bytes_received: 0,
            started_at: rfc3339(tx.now()),
            duration_ms: None,
            outcome: Outcome::Running,
            detail: None,
            result: None,
            purpose: Some(manifest.purpose.clone()),
            grant_id: Some(grant.id.clone()),
            attempts: 1,
            data_messages_sent: 0,
            data_messages_received: 0,
        };
        match previous {
            Some(_) => tx.restart_job(&record)?,
            None => tx.insert_job(&record)?,
        }
        tx.audit(AuditEvent::JobRequested {
            job_id: job_id.clone(),
            role,
            peer: peer.name.clone(),
            manifest: manifest.clone(),
        })?;
        tx.audit(AuditEvent::JobAdmitted {
            job_id: job_id.clone(),
            role,
            grant_id: grant.id.clone(),
            charge,
            newly_charged: !already_charged,
        })?;
        let max_grant = grant.quota.max_set_size.unwrap_or(u64::MAX);
        let (max_peer_set_size, min_peer_set_size) = match peer_set_size {
            // The requester must bring exactly the set it announced.
            Some(size) => (size, size),
            None => (self.max_peer_set_size.min(max_grant), 0),
        };
        Ok(Decision::Accept(Accepted {
            job_id: JobId::parse(&job_id).unwrap_or(JobId([0; 16])),
            role,
            peer: peer.clone(),
            manifest: manifest.clone(),
            min_group_size: policy.min_group_size,
            grant,
            data: Arc::new(data),
            max_peer_set_size,
            min_peer_set_size,
            padding: Padding::None,
            started: Instant::now(),
            _only_the_boundary_makes_these: (),
        }))
    }

    /// The newest live grant covering the job, or the reason none does.
    fn find_grant(
        &self,
        tx: &Tx<'_>,
        peer: &Peer,
        dataset: &str,
        manifest: &JobManifest,
    ) -> Result<Grant, Refusal> {
        let grants = tx.grants_for(&peer.name, dataset)?;
        let now = tx.now();
        let protocol = GrantedProtocol::of(manifest.protocol);
        let mut first_refusal = None;
        for grant in grants {
            match grant
                .check_live(now)
                .and_then(|()| grant.check_scope(protocol, &manifest.purpose))
            {
                Ok(()) => return Ok(grant),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        Err(first_refusal
            .unwrap_or(GrantRefusal::NoGrant {
                peer: peer.name.clone(),
                dataset: dataset.into(),
            })
            .into())
    }

    fn record_refusal(
        &self,
        tx: &Tx<'_>,
        role: Role,
        peer: &Peer,
        manifest: &JobManifest,
        refusal: &Refusal,
    ) -> Result<(), NodeError> {
        let (local_dataset, peer_dataset) = match role {
            Role::Requester => (&manifest.requester_dataset, &manifest.responder_dataset),
            Role::Responder => (&manifest.responder_dataset, &manifest.requester_dataset),
        };
        let record = JobRecord {
            id: manifest.job_id.clone(),
            role,
            peer: peer.name.clone(),
            protocol: manifest.protocol.name().into(),
            local_dataset: local_dataset.clone(),
            peer_dataset: peer_dataset.clone(),
            local_set_size: None,
            peer_set_size: None,
            bytes_sent: 0,
            bytes_received: 0,
            started_at: rfc3339(tx.now()),
            duration_ms: Some(0),
            outcome: Outcome::Refused,
            detail: Some(refusal.local_reason.clone()),
            result: None,
            purpose: Some(manifest.purpose.clone()),
            grant_id: None,
            attempts: 1,
            data_messages_sent: 0,
            data_messages_received: 0,
        };
        // A refused replay keeps the original record; the audit log still
        // records the attempt.
        if tx.job(&record.id, role)?.is_none() {
            tx.insert_job(&record)?;
        }
        tx.audit(AuditEvent::JobRequested {
            job_id: record.id.clone(),
            role,
            peer: peer.name.clone(),
            manifest: manifest.clone(),
        })?;
        tx.audit(AuditEvent::JobRefused {
            job_id: record.id,
            role,
            reason: refusal.local_reason.clone(),
            refunded: false,
        })
    }

    /// Records that the peer refused a job we had admitted. Nothing but the
    /// request left this node, so the charge is given back.
    pub fn refused_by_peer(&self, accepted: &Accepted, reason: &str, end: &JobEnd) {
        self.finish(
            accepted,
            end,
            AuditEvent::JobRefused {
                job_id: accepted.job_id.to_string(),
                role: accepted.role,
                reason: format!("refused by the peer: {reason}"),
                refunded: true,
            },
            true,
        );
    }

    /// Records how an accepted job ended, with what was released.
    pub fn finish_with_release(&self, accepted: &Accepted, end: &JobEnd, release: Release) {
        self.finish(
            accepted,
            end,
            AuditEvent::JobFinished {
                job_id: accepted.job_id.to_string(),
                role: accepted.role,
                release,
            },
            false,
        );
    }

    /// Records that an accepted job failed. Its charge is given back only if
    /// no protocol message left this node: once blinded data has reached the
    /// peer the use has happened, and a refund would let a party abort after
    /// learning something and try again for free.
    pub fn fail(&self, accepted: &Accepted, end: &JobEnd) {
        let refund = end.data_messages_sent == 0;
        self.finish(
            accepted,
            end,
            AuditEvent::JobFailed {
                job_id: accepted.job_id.to_string(),
                role: accepted.role,
                reason: end.detail.clone().unwrap_or_default(),
                refunded: refund,
            },
            refund,
        );
    }

    fn finish(&self, accepted: &Accepted, end: &JobEnd, event: AuditEvent, refund: bool) {
        let refund = refund.then_some(accepted.grant.id.as_str());
        if let Err(e) = self.store.finish_job(
            &accepted.job_id.to_string(),
            accepted.role,
            end,
            event,
            refund,
        ) {
            tracing::error!(job = %accepted.job_id, "could not record the end of the job: {e}");
        }
    }
}

fn decided<T>(decision: Result<Decision<T>, NodeError>) -> Result<T, Refusal> {
    match decision? {
        Decision::Accept(value) => Ok(value),
        Decision::Refuse(refusal) => Err(refusal),
    }
}
