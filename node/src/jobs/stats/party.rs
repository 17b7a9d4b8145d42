//! A party's side of a stats job: check the request against this node,
//! admit it at the boundary, wait for the go, and open or take a stream to
//! every other party (party j opens to every k > j; streams from lower
//! parties arrive through the registry).

use unseen_protocol::sharing::PartyIndex;

use super::registry::{Arrival, Registry};
use super::run::{Running, StatsNode};
use super::{Plan, StatsSpec, plan};
use crate::boundary::Refusal;
use crate::identity::Fingerprint;
use crate::jobs::psi::Served;
use crate::jobs::stream::{JobStream, Traffic};
use crate::jobs::{JobError, blocking, unexpected};
use crate::stats_manifest::StatsAcceptance;
use crate::store::Peer;
use crate::wire::{self, PeerMessage, StatsRequest};

impl StatsNode {
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
            progress: None,
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
                let _: Result<(), _> = self.end(running, traffic, 0, error).await;
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
