//! Runs a stats job among N nodes over QUIC.
//!
//! ```text
//! requester (party 0)            each other party j
//!   plan, admit own part
//!   ── StatsRequest ───────────►  check, plan, admit (grant to the requester)
//!   ◄────────────── StatsAccepted (signed terms) or JobRefused
//!   any refusal: Abort to all, nothing was shared
//!   ── StatsGo (all n agreements) ►  verify all, record them
//!                                  j opens a stream to every party k > j (StatsHello)
//!   every party: Shares to every other party (the secure sum), then JobFinished to all
//!   recipients open the totals, release only once every party has finished
//! ```
//!
//! No share leaves a node before it holds every party's signed agreement;
//! a party that fails or drops at any point fails the job for all, and a
//! recipient releases nothing until every party has said it finished.

use std::sync::Arc;

use rand_core::OsRng;
use tokio::task::JoinSet;
use unseen_protocol::JobId;
use unseen_protocol::dp::Epsilon;
use unseen_protocol::sharing::{
    ExpectShares, GroupResult, PartyIndex, Ring, SecureSum, StatsNoise, SumMessage, SumOutput,
    finish,
};

use super::registry::{Arrival, Registry};
use super::report::{StatsReport, rows};
use super::{Plan, StatsSpec, local_stats, plan};
use crate::audit::Release;
use crate::boundary::{Accepted, Boundary, Refusal};
use crate::identity::{Fingerprint, Identity};
use crate::jobs::connect::Connector;
use crate::jobs::driver::{Envelope, drive};
use crate::jobs::mesh::Mesh;
use crate::jobs::psi::Served;
use crate::jobs::stream::{JobStream, Traffic};
use crate::jobs::{JobError, StreamLimits, blocking, unexpected};
use crate::stats_manifest::{StatsAcceptance, StatsManifest};
use crate::store::{JobEnd, Outcome, Peer, Store};
use crate::wire::{self, PeerMessage, StatsRequest};

/// Bytes a stats job may queue per ring element it shares: a Z_2^128 share
/// is at most 19 bytes as a varint, and framing adds a little.
const QUEUE_BYTES_PER_SHARE: u64 = 24;

/// What a node needs to take part in stats jobs.
#[derive(Debug, Clone)]
pub struct StatsNode {
    /// The node's name for itself.
    pub name: String,
    /// Its identity.
    pub identity: Arc<Identity>,
    /// Its records.
    pub store: Arc<Store>,
    /// Its acceptance boundary.
    pub boundary: Boundary,
    /// How it reaches peers.
    pub connector: Connector,
    /// Limits on each stream.
    pub limits: StreamLimits,
    /// Jobs waiting for streams from other parties.
    pub registry: Arc<Registry>,
}

/// A job between acceptance and its end: what every party holds.
struct Running {
    plan: Plan,
    manifest: StatsManifest,
    accepted: Accepted,
    me: usize,
}

impl StatsNode {
    fn own_fingerprint(&self) -> String {
        self.identity.fingerprint().to_string()
    }

    /// Runs `spec` as its requester; returns the released statistics.
    pub async fn run(&self, spec: StatsSpec) -> Result<StatsReport, JobError> {
        let (plan, manifest, peers) = self.prepare(spec).await?;
        let (accepted, own) = {
            let (boundary, manifest, peer) =
                (self.boundary.clone(), manifest.clone(), peers[0].clone());
            blocking(move || boundary.admit_stats(&manifest, 0, &peer))
                .await?
                .map_err(|r| JobError::Refused(r.local_reason))?
        };
        let running = Running {
            plan,
            manifest,
            accepted,
            me: 0,
        };
        let (streams, agreements) = match self.gather(&running, own, &peers).await {
            Ok(gathered) => gathered,
            Err(error) => {
                self.end(&running, Traffic::default(), 0, Err(&error));
                return Err(error);
            }
        };
        self.exchange(running, streams, agreements)
            .await
            .map(|report| report.expect("the requester is a recipient"))
    }

    /// Parses and checks the spec against this node; builds the manifest
    /// with every party named by its fingerprint. Returns the other
    /// parties' peer records in party order.
    async fn prepare(&self, spec: StatsSpec) -> Result<(Plan, StatsManifest, Vec<Peer>), JobError> {
        let store = self.store.clone();
        let own_dataset = spec
            .parties
            .iter()
            .find(|p| p.node == self.name)
            .map(|p| p.dataset.clone())
            .unwrap_or_default();
        let (peers, record) = blocking(move || {
            Ok::<_, crate::error::NodeError>((store.peers()?, store.dataset(&own_dataset)?))
        })
        .await?
        .map_err(|e| JobError::Internal(e.to_string()))?;
        let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
        let columns_policy = record
            .as_ref()
            .and_then(|r| r.policy.as_ref().map(|p| (&r.summary.columns[..], p)));
        // The requester's rows go to itself alone; the grade rules for its
        // part are the boundary's (own use).
        let plan = plan(spec.clone(), &self.name, &names, columns_policy, true)
            .map_err(|e| JobError::Refused(e.to_string()))?;
        if plan.roster.me().0 != 0 {
            return Err(JobError::Refused(format!(
                "the requester must be the first [[party]]; move node = {:?} to the top of the spec",
                self.name
            )));
        }
        if !plan.roster.is_recipient(PartyIndex(0)) {
            return Err(JobError::Refused(format!(
                "recipients: the requester receives the result of the job it asks for; add {:?} to recipients",
                self.name
            )));
        }
        let fingerprint_of = |name: &str| -> String {
            if name == self.name {
                self.own_fingerprint()
            } else {
                peers
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| p.fingerprint.clone())
                    .unwrap_or_default()
            }
        };
        let mut canonical = spec.clone();
        for party in &mut canonical.parties {
            party.node = fingerprint_of(&party.node);
        }
        canonical.recipients = canonical
            .recipients
            .iter()
            .map(|r| fingerprint_of(r))
            .collect();
        let others: Vec<Peer> = spec.parties[1..]
            .iter()
            .filter_map(|p| peers.iter().find(|q| q.name == p.node).cloned())
            .collect();
        let manifest = StatsManifest {
            job_id: JobId::random(&mut OsRng).to_string(),
            spec: canonical,
            names: spec.parties.iter().map(|p| p.node.clone()).collect(),
        };
        Ok((plan, manifest, others))
    }

    /// Asks every other party; returns their streams once all agreed and
    /// were told so, or aborts those that agreed and says who refused.
    async fn gather(
        &self,
        running: &Running,
        own: StatsAcceptance,
        peers: &[Peer],
    ) -> Result<(Vec<(PartyIndex, String, JobStream)>, Vec<StatsAcceptance>), JobError> {
        let request = PeerMessage::StatsRequest(StatsRequest {
            manifest: running.manifest.clone(),
            requester: own.clone(),
        });
        let mut asked = JoinSet::new();
        for (i, peer) in peers.iter().enumerate() {
            let (connector, limits, peer, request) = (
                self.connector.clone(),
                self.limits.clone(),
                peer.clone(),
                request.clone(),
            );
            asked.spawn(async move {
                let answer = async {
                    let mut stream = limits.stream(connector.open(&peer).await?);
                    stream.send(&request)?;
                    let answer = stream.recv().await;
                    Ok::<_, JobError>((stream, answer))
                }
                .await;
                (i + 1, peer.name, answer)
            });
        }
        let mut agreements = vec![None; peers.len() + 1];
        agreements[0] = Some(own);
        let mut streams = Vec::new();
        let mut failure = None;
        while let Some(joined) = asked.join_next().await {
            let (party, name, answer) = joined.map_err(|e| JobError::Internal(e.to_string()))?;
            let error = match answer {
                Ok((stream, Ok(PeerMessage::StatsAccepted(agreement)))) => {
                    match running.manifest.verify(party, &agreement) {
                        Ok(()) => {
                            let mut stream = stream;
                            self.size(&mut stream, running);
                            agreements[party] = Some(agreement);
                            streams.push((PartyIndex(party), name, stream));
                            continue;
                        }
                        Err(e) => {
                            stream.fail(&JobError::BadReleaseTerms(e.clone())).await;
                            JobError::BadReleaseTerms(e)
                        }
                    }
                }
                Ok((stream, Ok(PeerMessage::JobRefused { reason }))) => {
                    stream.close().await;
                    JobError::Refused(reason)
                }
                Ok((stream, Ok(other))) => {
                    let error = unexpected("StatsAccepted", &other);
                    stream.fail(&error).await;
                    error
                }
                Ok((stream, Err(error))) => {
                    stream.close().await;
                    error
                }
                Err(error) => error,
            };
            failure.get_or_insert(error.from_party(&name));
        }
        if let Some(error) = failure {
            // Nothing was shared: tell those that agreed the job is off.
            let abort = JobError::Internal("another party refused or failed".into());
            for (_, _, stream) in streams {
                stream.fail(&abort).await;
            }
            return Err(error);
        }
        let agreements: Vec<StatsAcceptance> = agreements.into_iter().flatten().collect();
        self.record_agreement(&running.manifest, &agreements)
            .await?;
        tracing::info!(job = %running.manifest.job_id, parties = agreements.len(), "every party agreed; sharing");
        for (_, _, stream) in &mut streams {
            stream.send(&PeerMessage::StatsGo(agreements.clone()))?;
        }
        Ok((streams, agreements))
    }

    async fn record_agreement(
        &self,
        manifest: &StatsManifest,
        agreements: &[StatsAcceptance],
    ) -> Result<(), JobError> {
        let (boundary, manifest, agreements) =
            (self.boundary.clone(), manifest.clone(), agreements.to_vec());
        blocking(move || boundary.record_stats_agreement(&manifest, &agreements))
            .await?
            .map_err(|r| JobError::BadReleaseTerms(r.local_reason))
    }

    /// Shares, sums, finishes, and records: the part every party runs once
    /// its streams to all others are open. Returns the report if this party
    /// is a recipient.
    async fn exchange(
        &self,
        running: Running,
        streams: Vec<(PartyIndex, String, JobStream)>,
        agreements: Vec<StatsAcceptance>,
    ) -> Result<Option<StatsReport>, JobError> {
        let mut mesh = Mesh::new(streams);
        let result = self.sum(&running, &agreements, &mut mesh).await;
        if result.is_ok() {
            tracing::info!(job = %running.manifest.job_id, "every party finished");
        }
        let traffic = mesh.traffic();
        match result {
            Ok((released, agreements)) => {
                let report =
                    released.map(|results| self.report(&running, &agreements, &results, traffic));
                // Recorded before our streams close: the requester returns
                // only once every party has closed, so every record exists.
                self.end(&running, traffic, traffic.data_sent, Ok(report.as_ref()));
                mesh.close(Some(self.limits.message_timeout)).await;
                Ok(report)
            }
            Err(error) => {
                mesh.abort(&error);
                mesh.close(None).await;
                self.end(&running, traffic, traffic.data_sent, Err(&error));
                Err(error)
            }
        }
    }

    async fn sum(
        &self,
        running: &Running,
        agreements: &[StatsAcceptance],
        mesh: &mut Mesh,
    ) -> Result<(Option<Vec<GroupResult>>, Vec<StatsAcceptance>), JobError> {
        let plan = running.plan.clone();
        let terms = agreements[running.me].terms;
        let noise = match terms.epsilon_micros {
            Some(micros) => Some(StatsNoise {
                epsilon: Epsilon::from_micros(micros)
                    .map_err(|e| JobError::BadReleaseTerms(e.to_string()))?,
                clamp: plan.spec.scaled_clamp().unwrap_or(0),
            }),
            None => None,
        };
        // Counts fit Z_2^64; sums of squares of fixed-point values outgrow
        // 63 bits long before 127, so a value column is shared in Z_2^128.
        let totals = if plan.layout.values {
            let envelope = Envelope {
                wrap: PeerMessage::Shares128,
                unwrap: |m| match m {
                    PeerMessage::Shares128(s) => Some(s),
                    _ => None,
                },
                crash_role: None,
            };
            share_and_sum::<u128>(running, plan, noise, mesh, &envelope).await?
        } else {
            let envelope = Envelope {
                wrap: PeerMessage::Shares,
                unwrap: |m| match m {
                    PeerMessage::Shares(s) => Some(s),
                    _ => None,
                },
                crash_role: None,
            };
            share_and_sum::<u64>(running, plan, noise, mesh, &envelope).await?
        };
        // Nothing is released until every party has finished.
        mesh.finish().await?;
        let results = totals.map(|totals| {
            finish(
                running.plan.layout,
                &totals,
                running.plan.spec.scale().digits(),
            )
        });
        Ok((results, agreements.to_vec()))
    }

    fn report(
        &self,
        running: &Running,
        agreements: &[StatsAcceptance],
        results: &[GroupResult],
        traffic: Traffic,
    ) -> StatsReport {
        let k = agreements
            .iter()
            .map(|a| a.terms.min_group_size)
            .max()
            .unwrap_or(0);
        let spec = &running.plan.spec;
        StatsReport {
            job_id: running.manifest.job_id.clone(),
            parties: spec.parties.iter().map(|p| p.node.clone()).collect(),
            purpose: spec.purpose.clone(),
            statistics: spec.statistics.clone(),
            rows: rows(spec, results, k),
            min_group_size: k,
            noise: agreements
                .iter()
                .zip(&spec.parties)
                .filter_map(|(a, p)| {
                    a.terms
                        .epsilon_micros
                        .map(|e| format!("{}: discrete Laplace, epsilon {}", p.node, micros(e)))
                })
                .collect(),
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
            duration_ms: u64::try_from(running.accepted.started.elapsed().as_millis())
                .unwrap_or(u64::MAX),
        }
    }

    /// Records how the job ended on this node. The charge is given back
    /// only if no share left this node.
    fn end(
        &self,
        running: &Running,
        traffic: Traffic,
        data_sent: u64,
        outcome: Result<Option<&StatsReport>, &JobError>,
    ) {
        let accepted = &running.accepted;
        let end = JobEnd {
            outcome: if outcome.is_ok() {
                Outcome::Completed
            } else {
                Outcome::Failed
            },
            local_set_size: Some(accepted.data.ids().len() as u64),
            peer_set_size: None,
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
            data_messages_sent: data_sent,
            data_messages_received: traffic.data_received,
            duration: accepted.started.elapsed(),
            detail: outcome.as_ref().err().map(ToString::to_string),
            result: outcome
                .ok()
                .flatten()
                .and_then(|r| serde_json::to_string(&r.rows).ok()),
        };
        let boundary = self.boundary.clone();
        match outcome {
            Ok(report) => {
                // This node's release if it received the totals; else the
                // requester's, which this node's data fed.
                let recipient = if report.is_some() {
                    self.own_fingerprint()
                } else {
                    running.manifest.spec.parties[0].node.clone()
                };
                let release = Release {
                    recipient,
                    value: report.map(|r| format!("{} groups", r.rows.len())),
                    suppressed: None,
                    mechanism: if report.is_some_and(|r| !r.noise.is_empty()) {
                        "discrete Laplace, one draw per party".into()
                    } else {
                        "none".into()
                    },
                    epsilon: None,
                    delta: None,
                };
                boundary.finish_with_release(accepted, &end, release);
            }
            Err(_) => boundary.fail(accepted, &end),
        }
    }

    /// A party's side: `request` arrived from `peer` on `stream`.
    pub(crate) async fn serve(
        &self,
        peer: Peer,
        mut stream: JobStream,
        request: StatsRequest,
    ) -> Served {
        let refused = |reason: String| PeerMessage::JobRefused {
            reason: wire::reason(&reason),
        };
        let checked = self.check_request(&peer, &request).await;
        let (plan, me) = match checked {
            Ok(checked) => checked,
            Err(Refusal {
                public_reason,
                local_reason,
            }) => {
                tracing::info!(peer = %peer.name, job = %request.manifest.job_id, "refused a stats job: {local_reason}");
                let _ = stream.send(&refused(public_reason));
                stream.close().await;
                return Served::Refused;
            }
        };
        let manifest = request.manifest.clone();
        let admitted = {
            let (boundary, manifest, peer) =
                (self.boundary.clone(), manifest.clone(), peer.clone());
            blocking(move || boundary.admit_stats(&manifest, me, &peer)).await
        };
        let (accepted, agreement) = match admitted {
            Ok(Ok(admitted)) => admitted,
            Ok(Err(refusal)) => {
                tracing::info!(peer = %peer.name, job = %manifest.job_id, "refused a stats job: {}", refusal.local_reason);
                let _ = stream.send(&refused(refusal.public_reason));
                stream.close().await;
                return Served::Refused;
            }
            Err(error) => {
                stream.fail(&error).await;
                return Served::Refused;
            }
        };
        tracing::info!(peer = %peer.name, job = %manifest.job_id, grant = %accepted.grant.id, "admitted stats job");
        let parties = manifest.spec.parties.len();
        let arrivals = self.registry.register(&manifest.job_id, parties);
        let running = Running {
            plan,
            manifest,
            accepted,
            me,
        };
        self.size(&mut stream, &running);
        let joined = self
            .join(&running, &request, agreement, stream, arrivals)
            .await;
        self.registry.remove(&running.manifest.job_id);
        match joined {
            Ok((streams, agreements)) => {
                if let Err(error) = self.exchange(running, streams, agreements).await {
                    tracing::warn!(peer = %peer.name, "stats job failed: {error}");
                }
            }
            Err((error, stream)) => {
                tracing::warn!(peer = %peer.name, job = %running.manifest.job_id, "stats job failed before any share: {error}");
                let traffic = match stream {
                    Some(mut stream) => {
                        let _ = stream.send(&crate::jobs::mesh::abort_for_parties(&error));
                        stream.close().await
                    }
                    None => Traffic::default(),
                };
                self.end(&running, traffic, 0, Err(&error));
            }
        }
        Served::Ran
    }

    /// The checks before admission: the manifest names this node and the
    /// connection's peer as party 0, the requester's signature holds, and
    /// the spec fits this node's data.
    async fn check_request(
        &self,
        peer: &Peer,
        request: &StatsRequest,
    ) -> Result<(Plan, usize), Refusal> {
        let manifest = &request.manifest;
        let bad = |public: &str, local: String| Refusal::new(public, local);
        let own = self.identity.fingerprint();
        let me = manifest.index_of(&own).filter(|&i| i > 0).ok_or_else(|| {
            bad(
                "the manifest does not name this node",
                "the stats manifest does not name this node as a party".into(),
            )
        })?;
        if manifest.spec.parties[0].node != peer.fingerprint {
            return Err(bad(
                "the manifest does not name this connection's node as requester",
                "the stats manifest names another requester than this connection's peer".into(),
            ));
        }
        manifest
            .verify(0, &request.requester)
            .map_err(|e| bad("the requester's signature is invalid", e))?;
        if !manifest.spec.recipients.contains(&peer.fingerprint) {
            return Err(bad(
                "the requester must receive its job's result",
                "the stats manifest does not send the result to its requester".into(),
            ));
        }
        let store = self.store.clone();
        let own_dataset = manifest.spec.parties[me].dataset.clone();
        let (peers, record) = blocking(move || {
            Ok::<_, crate::error::NodeError>((store.peers()?, store.dataset(&own_dataset)?))
        })
        .await
        .map_err(|e| bad("the node could not decide on the job", e.to_string()))?
        .map_err(|e| bad("the node could not decide on the job", e.to_string()))?;
        let local = localise(&manifest.spec, &own.to_string(), &self.name, &peers)?;
        let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
        let columns_policy = record
            .as_ref()
            .and_then(|r| r.policy.as_ref().map(|p| (&r.summary.columns[..], p)));
        let plan = plan(local, &self.name, &names, columns_policy, true).map_err(|e| {
            bad(
                "the job's spec does not fit this node's data or peers",
                e.to_string(),
            )
        })?;
        Ok((plan, me))
    }

    /// After acceptance: waits for the go, then opens or takes a stream to
    /// every other party. On failure returns the requester's stream if it
    /// is still held, to abort on.
    async fn join(
        &self,
        running: &Running,
        request: &StatsRequest,
        agreement: StatsAcceptance,
        mut stream: JobStream,
        mut arrivals: tokio::sync::mpsc::Receiver<Arrival>,
    ) -> Result<
        (Vec<(PartyIndex, String, JobStream)>, Vec<StatsAcceptance>),
        (JobError, Option<JobStream>),
    > {
        if let Err(e) = stream.send(&PeerMessage::StatsAccepted(agreement.clone())) {
            return Err((e, Some(stream)));
        }
        let all = match stream.recv().await {
            Ok(PeerMessage::StatsGo(all)) => all,
            Ok(other) => return Err((unexpected("StatsGo", &other), Some(stream))),
            Err(e) => return Err((e, Some(stream))),
        };
        if all.get(running.me) != Some(&agreement) || all.first() != Some(&request.requester) {
            let e = JobError::BadReleaseTerms("the go does not carry the agreements given".into());
            return Err((e, Some(stream)));
        }
        if let Err(e) = self.record_agreement(&running.manifest, &all).await {
            return Err((e, Some(stream)));
        }
        crate::crash::point(crate::store::Role::Responder, crate::crash::Step::AfterGo);
        let manifest = &running.manifest;
        let names = &manifest.names;
        let mut streams = vec![(PartyIndex(0), names[0].clone(), stream)];
        let n = manifest.spec.parties.len();
        for k in running.me + 1..n {
            let opened = self.open_to(running, k).await;
            match opened {
                Ok((name, s)) => streams.push((PartyIndex(k), name, s)),
                Err(e) => return Err(abort_all(e, streams).await),
            }
        }
        let wait = self.limits.message_timeout;
        for _ in 1..running.me {
            let arrival = tokio::time::timeout(wait, arrivals.recv()).await;
            let Ok(Some(Arrival {
                fingerprint,
                from,
                stream,
            })) = arrival
            else {
                return Err(abort_all(JobError::Timeout(wait), streams).await);
            };
            let mut stream = stream;
            let expected = manifest.spec.parties.get(from).map(|p| p.node.as_str());
            let duplicate = streams.iter().any(|(p, _, _)| p.0 == from);
            if from == 0
                || from >= running.me
                || duplicate
                || expected != Some(&fingerprint.to_string())
            {
                let e = JobError::Internal(format!(
                    "a stream claiming to be party {from} came from {fingerprint}"
                ));
                stream.fail(&e).await;
                return Err(abort_all(e, streams).await);
            }
            self.size(&mut stream, running);
            streams.push((
                PartyIndex(from),
                names.get(from).cloned().unwrap_or_default(),
                stream,
            ));
        }
        Ok((streams, all))
    }

    /// Bounds a stream by the job's size: what it may queue (each share
    /// message is one layout's width; a party sends at most two per peer)
    /// and how long it may run (from the rows this party brings).
    fn size(&self, stream: &mut JobStream, running: &Running) {
        let width = running.plan.layout.width() as u64;
        stream.admitted_bytes(
            width.saturating_mul(2 * QUEUE_BYTES_PER_SHARE),
            self.limits
                .limits
                .job_deadline(running.accepted.data.ids().len() as u64),
        );
    }

    /// Opens this party's stream to party `k` and says who it is.
    async fn open_to(&self, running: &Running, k: usize) -> Result<(String, JobStream), JobError> {
        let (manifest, me) = (&running.manifest, running.me);
        let fingerprint = Fingerprint::parse(&manifest.spec.parties[k].node)
            .map_err(|e| JobError::Internal(e.to_string()))?;
        let store = self.store.clone();
        let peer = blocking(move || store.peer_by_fingerprint(fingerprint))
            .await?
            .map_err(|e| JobError::Internal(e.to_string()))?
            .ok_or_else(|| {
                JobError::Refused(format!(
                    "party {k} ({fingerprint}) is not a registered peer"
                ))
            })?;
        let mut stream = self.limits.stream(self.connector.open(&peer).await?);
        self.size(&mut stream, running);
        stream.send(&PeerMessage::StatsHello {
            job_id: manifest.job_id.clone(),
            from: u16::try_from(me).unwrap_or(u16::MAX),
        })?;
        Ok((peer.name, stream))
    }
}

async fn abort_all(
    error: JobError,
    streams: Vec<(PartyIndex, String, JobStream)>,
) -> (JobError, Option<JobStream>) {
    let abort = crate::jobs::mesh::abort_for_parties(&error);
    for (_, _, mut stream) in streams {
        let _ = stream.send(&abort);
        stream.close().await;
    }
    (error, None)
}

/// Shares this party's statistics in the ring `R` and runs the secure sum;
/// returns the totals, signed, if this party is a recipient.
async fn share_and_sum<R: Ring + Send + Sync + 'static>(
    running: &Running,
    plan: Plan,
    noise: Option<StatsNoise>,
    mesh: &mut Mesh,
    envelope: &Envelope<SumMessage<R>>,
) -> Result<Option<Vec<i128>>, JobError> {
    let data = running.accepted.data.clone();
    let parties = plan.roster.parties();
    let roster = plan.roster.clone();
    let first = blocking(move || {
        let local = local_stats(&plan, &data, noise.as_ref())
            .map_err(|e| JobError::Output(e.to_string()))?;
        let shares = local
            .to_share::<R, _>(parties, noise.as_ref(), &mut OsRng)
            .map_err(|e| JobError::Output(e.to_string()))?;
        Ok::<_, JobError>(SecureSum::start(roster, &shares, &mut OsRng))
    })
    .await??;
    let output = drive(
        mesh,
        first,
        envelope,
        |state: ExpectShares<R>, from, message| state.handle(from, message),
        |_, _, _| {},
    )
    .await?;
    Ok(match output {
        SumOutput::Totals(totals) => Some(totals.iter().map(|t| t.to_signed()).collect()),
        SumOutput::NotARecipient => None,
    })
}

/// Takes a stream that opened with `StatsHello` to its job, or refuses it.
pub(crate) async fn arrive(
    registry: &Registry,
    fingerprint: Fingerprint,
    stream: JobStream,
    job_id: String,
    from: u16,
) {
    let arrival = Arrival {
        fingerprint,
        from: usize::from(from),
        stream,
    };
    if let Err(rejected) = registry.deliver(&job_id, arrival) {
        let mut stream = rejected.stream;
        let _ = stream.send(&PeerMessage::JobRefused {
            reason: "no stats job is waiting for this stream here".into(),
        });
        stream.close().await;
    }
}

/// The spec with every fingerprint replaced by this node's name for that
/// node; a party this node has not registered is refused.
fn localise(
    spec: &StatsSpec,
    own_fingerprint: &str,
    own_name: &str,
    peers: &[Peer],
) -> Result<StatsSpec, Refusal> {
    let name_of = |fingerprint: &str| -> Result<String, Refusal> {
        if fingerprint == own_fingerprint {
            return Ok(own_name.to_string());
        }
        peers
            .iter()
            .find(|p| p.fingerprint == fingerprint)
            .map(|p| p.name.clone())
            .ok_or_else(|| {
                Refusal::new(
                    "a party of the job is not registered here",
                    format!(
                        "the stats job names a party with fingerprint {fingerprint}, which is not a registered peer; every party must register every other (`unseen peer add`)"
                    ),
                )
            })
    };
    let mut local = spec.clone();
    for party in &mut local.parties {
        party.node = name_of(&party.node)?;
    }
    local.recipients = local
        .recipients
        .iter()
        .map(|r| name_of(r))
        .collect::<Result<_, _>>()?;
    local
        .check()
        .map_err(|e| Refusal::new("the job's spec is invalid", e.to_string()))?;
    Ok(local)
}

fn micros(value: u64) -> String {
    unseen_protocol::sharing::decimal(i128::from(value), 6)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}
