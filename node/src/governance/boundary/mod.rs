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
use unseen_protocol::intersection_sum::ValuedIds;

use crate::admission::{self, Admission, DataCheck, Decision};
pub use crate::admission::{DEFAULT_DELTA_NANOS, Refusal};
use crate::audit::{AuditEvent, Release};
use crate::dataset::LoadedDataset;
use crate::error::NodeError;
use crate::grant::Grant;
use crate::identity::{Fingerprint, Identity};
use crate::manifest::{JobManifest, Party};
use crate::store::{AdmissionRequest, DatasetRecord, JobEnd, Peer, Role, Store};
use crate::wire::{JobAcceptance, JobRequest, NoiseTerms, ProtocolRequest, ReleaseTerms};

mod stats;

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
    /// The responder's rows of an intersection-sum job, read from `data`
    /// and checked at admission; `None` in any other job.
    pub valued: Option<Arc<ValuedIds>>,
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
    pub fn protocol(&self) -> &ProtocolRequest {
        &self.manifest.protocol
    }
}

/// The data a job was admitted with: the file, and what its protocol needs
/// read from it beyond the ids.
#[derive(Debug)]
pub(crate) struct Prepared {
    data: Arc<LoadedDataset>,
    valued: Option<Arc<ValuedIds>>,
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
    Refusal::new(public, local)
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
    /// acceptance returns the job and the signed request to send. Blocks on
    /// SQLite and on reading the dataset: call it off the async runtime.
    pub fn admit_outgoing(&self, job: OutgoingJob) -> Result<(Accepted, JobRequest), Refusal> {
        let job_id = job
            .retry
            .unwrap_or_else(|| JobId::random(&mut rand_core::OsRng));
        let Some(peer) = self.store.peer(&job.peer)? else {
            let unknown = Peer {
                name: job.peer.clone(),
                addr: String::new(),
                fingerprint: String::new(),
                added_at: String::new(),
            };
            let refusal = refuse(
                "",
                format!(
                    "no peer named {:?}; register it with `unseen peer add {} --addr HOST:PORT --fingerprint FP`",
                    job.peer, job.peer
                ),
            );
            let manifest = self.manifest(job_id, &unknown, &job, "");
            self.record_refusal(Role::Requester, &unknown, &manifest, None, &refusal)?;
            return Err(refusal);
        };
        let manifest = self.manifest(job_id, &peer, &job, "");
        let request = self.request(Role::Requester, &peer, &manifest, None);
        let (admission, data, ()) = self.admit(request, |_, _| Ok(((), Vec::new())))?;
        let mut accepted =
            self.accepted(job_id, Role::Requester, &peer, &manifest, admission, data);
        accepted.manifest.requester_grant = accepted.grant.id.clone();
        let set_size = accepted.data.ids().len() as u64;
        let request = JobRequest {
            requester_signature: accepted.manifest.sign_request(&self.identity, set_size),
            requester_set_size: set_size,
            manifest: accepted.manifest.clone(),
        };
        Ok((accepted, request))
    }

    /// Decides a job `peer` asks of us (we are the responder). `peer_cert`
    /// is the certificate the peer presented in the TLS handshake. Blocks on
    /// SQLite and on reading the dataset: call it off the async runtime.
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
        let size = Some(request.requester_set_size);
        if let Err(refusal) = self.check_manifest(peer_cert, request) {
            self.record_refusal(Role::Responder, peer, manifest, size, &refusal)?;
            return Err(refusal);
        }
        let admission_request = self.request(Role::Responder, peer, manifest, size);
        let (admission, data, (acceptance, padding)) =
            self.admit(admission_request, |admission, _| {
                let drawn = self
                    .draw_noise(admission)
                    .map_err(|refusal| NodeError::Config {
                        path: format!("grant {}", admission.grant.id).into(),
                        message: refusal.local_reason,
                    })?;
                let (noise, padding) = match drawn {
                    Some((terms, padding)) => (Some(terms), padding),
                    None => (None, Padding::None),
                };
                let terms = ReleaseTerms {
                    min_group_size: admission.policy.min_group_size,
                    noise,
                };
                let acceptance = JobAcceptance {
                    responder_signature: manifest.sign_acceptance(
                        &self.identity,
                        &admission.grant.id,
                        &terms,
                    ),
                    responder_grant: admission.grant.id.clone(),
                    terms,
                };
                let agreed = AuditEvent::JobAgreed {
                    job_id: job_id.to_string(),
                    manifest: manifest.clone(),
                    requester_signature: hex::encode(&request.requester_signature),
                    requester_set_size: request.requester_set_size,
                    responder_grant: acceptance.responder_grant.clone(),
                    terms,
                    responder_signature: hex::encode(&acceptance.responder_signature),
                    peer_certificate: hex::encode(peer_cert.as_ref()),
                };
                Ok(((acceptance, padding), vec![agreed]))
            })?;
        let mut accepted = self.accepted(job_id, Role::Responder, peer, manifest, admission, data);
        accepted.padding = padding;
        Ok((accepted, acceptance))
    }

    fn request<'a>(
        &self,
        role: Role,
        peer: &'a Peer,
        manifest: &'a JobManifest,
        requester_set_size: Option<u64>,
    ) -> AdmissionRequest<'a> {
        AdmissionRequest {
            role,
            peer,
            manifest,
            requester_set_size,
            node_max_peer_set_size: self.max_peer_set_size,
            data: DataCheck::NotLoaded,
        }
    }

    /// Admission in three steps: the rules on a snapshot (a refused job reads
    /// no file), the data read outside any transaction, then the rules again
    /// on a fresh snapshot with the records written in one transaction, so
    /// concurrent jobs never overspend a quota. `agree` runs inside that last
    /// transaction on acceptance and returns audit entries to add.
    fn admit<T>(
        &self,
        request: AdmissionRequest<'_>,
        agree: impl FnOnce(&Admission, &LoadedDataset) -> Result<(T, Vec<AuditEvent>), NodeError>,
    ) -> Result<(Admission, Prepared, T), Refusal> {
        self.admit_by(request, admission::decide, agree)
    }

    /// [`Self::admit`] with the rules given: `decide` is
    /// [`admission::decide`] or another pure decision over the same snapshot.
    fn admit_by<T>(
        &self,
        request: AdmissionRequest<'_>,
        decide: fn(&admission::Snapshot) -> (Decision, admission::Records),
        agree: impl FnOnce(&Admission, &LoadedDataset) -> Result<(T, Vec<AuditEvent>), NodeError>,
    ) -> Result<(Admission, Prepared, T), Refusal> {
        let first = self.store.write(|tx| {
            let snapshot = tx.admission_snapshot(request.clone())?;
            let (decision, records) = decide(&snapshot);
            if let Decision::Refuse(_) = decision {
                tx.apply(&records)?;
            }
            Ok::<_, NodeError>((decision, snapshot.dataset))
        })?;
        let registered = match first {
            (Decision::Refuse(refusal), _) => return Err(refusal),
            (Decision::LoadData, Some(dataset)) => dataset,
            _ => return Err(internal("admission accepted a job before reading its data")),
        };
        let loaded = load(&registered).map(Arc::new);
        // Read outside any transaction, like the file itself.
        let valued = match &loaded {
            Ok(data) => crate::jobs::isum::prepare(request.role, request.manifest, data),
            Err(_) => Ok(None),
        };
        let outcome = self.store.write(|tx| {
            let mut snapshot = tx.admission_snapshot(request)?;
            snapshot.data = match (&loaded, &snapshot.dataset, &valued) {
                (Err(reason), _, _) => DataCheck::Unavailable(reason.clone()),
                (Ok(_), Some(now), _) if now.summary.sha256 != registered.summary.sha256 => {
                    DataCheck::Unavailable(format!(
                        "dataset {:?} was registered again while the job was admitted; run the job again",
                        registered.name
                    ))
                }
                (Ok(_), None, _) => DataCheck::Unavailable(format!(
                    "dataset {:?} was removed while the job was admitted",
                    registered.name
                )),
                (Ok(_), Some(_), Err(unfit)) => DataCheck::Unfit(unfit.clone()),
                (Ok(_), Some(_), Ok(_)) => DataCheck::Loaded,
            };
            let (decision, mut records) = decide(&snapshot);
            match (decision, &loaded) {
                (Decision::Accept(admission), Ok(data)) => {
                    let (extra, events) = agree(&admission, data)?;
                    records.audit.extend(events);
                    tx.apply(&records)?;
                    let prepared = Prepared {
                        data: data.clone(),
                        valued: valued.clone().ok().flatten(),
                    };
                    Ok(Ok((*admission, prepared, extra)))
                }
                (Decision::Refuse(refusal), _) => {
                    tx.apply(&records)?;
                    Ok(Err(refusal))
                }
                _ => Err(NodeError::Config {
                    path: "node.db".into(),
                    message: "admission asked to read data it had read".into(),
                }),
            }
        });
        outcome?
    }

    fn accepted(
        &self,
        job_id: JobId,
        role: Role,
        peer: &Peer,
        manifest: &JobManifest,
        admission: Admission,
        prepared: Prepared,
    ) -> Accepted {
        Accepted {
            job_id,
            role,
            peer: peer.clone(),
            manifest: manifest.clone(),
            min_group_size: admission.policy.min_group_size,
            grant: admission.grant,
            data: prepared.data,
            valued: prepared.valued,
            max_peer_set_size: admission.max_peer_set_size,
            min_peer_set_size: admission.min_peer_set_size,
            padding: Padding::None,
            started: Instant::now(),
            _only_the_boundary_makes_these: (),
        }
    }

    /// Records a refusal decided before the rules ran (an unknown peer, a
    /// bad signature).
    fn record_refusal(
        &self,
        role: Role,
        peer: &Peer,
        manifest: &JobManifest,
        requester_set_size: Option<u64>,
        refusal: &Refusal,
    ) -> Result<(), NodeError> {
        self.store.write(|tx| {
            let snapshot =
                tx.admission_snapshot(self.request(role, peer, manifest, requester_set_size))?;
            tx.apply(&admission::refusal_records(&snapshot, refusal))
        })
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
                &acceptance.terms,
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
            requester_set_size: request.requester_set_size,
            responder_grant: acceptance.responder_grant.clone(),
            terms: acceptance.terms,
            responder_signature: hex::encode(&acceptance.responder_signature),
            peer_certificate: hex::encode(peer_cert.as_ref()),
        })?;
        Ok(())
    }

    /// Draws the padding for a noisy count, if the grant asks for noise and
    /// the protocol releases an aggregate of our data.
    fn draw_noise(&self, admission: &Admission) -> Result<Option<(NoiseTerms, Padding)>, Refusal> {
        let quota = &admission.grant.quota;
        let Some(epsilon_micros) = quota.epsilon_per_job_micros.filter(|_| admission.noise) else {
            return Ok(None);
        };
        let delta_nanos = quota
            .delta_per_job_nanos
            .unwrap_or(DEFAULT_DELTA_NANOS)
            .max(1);
        let bad =
            |e: dp::DpError| refuse("the data owner's noise settings are invalid", e.to_string());
        let epsilon = dp::Epsilon::from_micros(epsilon_micros).map_err(bad)?;
        // One draw pads both what the requester sees of our data: the count
        // and, with size dummies, the set size; the job's epsilon and delta
        // are split between them (docs/protocols/ecdh-psi.md).
        let drawn =
            dp::padding_for_release(epsilon, delta_nanos, 1_000_000_000, &mut rand_core::OsRng)
                .map_err(bad)?;
        let terms = NoiseTerms {
            epsilon_micros,
            delta_nanos,
            offset: drawn.params.count_offset,
            total: drawn.params.count_total,
        };
        let padding = Padding::for_responder(&drawn);
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
            protocol: job.protocol.clone(),
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
            .verify_request(
                peer_cert,
                request.requester_set_size,
                &request.requester_signature,
            )
            .map_err(|e| refuse("the manifest signature is invalid", e.to_string()))
    }

    /// Records that the peer refused a job we had admitted. The charge is
    /// given back only on this node's own evidence that no data-bearing
    /// message left it, whatever the peer claims.
    pub fn refused_by_peer(&self, accepted: &Accepted, reason: &str, end: &JobEnd) {
        let refund = end.data_messages_sent == 0;
        self.finish(
            accepted,
            end,
            AuditEvent::JobRefused {
                job_id: accepted.job_id.to_string(),
                role: accepted.role,
                reason: format!("refused by the peer: {reason}"),
                refunded: refund,
            },
            refund,
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

/// Reads and checks a registered dataset. Blocks on the file.
fn load(record: &DatasetRecord) -> Result<LoadedDataset, String> {
    LoadedDataset::load(
        &record.summary.path,
        &record.summary.id_column,
        &record.summary.sha256,
    )
    .map_err(|e| e.to_string())
}

fn internal(what: &str) -> Refusal {
    refuse(
        "the node could not decide on the job; try again later",
        what.into(),
    )
}
