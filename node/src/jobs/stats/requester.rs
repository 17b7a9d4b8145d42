//! The requester's side of a stats job: check the spec against this node,
//! build and sign the manifest, admit its own part, ask every other party,
//! and send the go once all have agreed (or abort all if any refuses).

use rand_core::OsRng;
use tokio::task::JoinSet;
use unseen_protocol::JobId;
use unseen_protocol::sharing::PartyIndex;

use super::run::{Running, StatsNode};
use super::{Plan, StatsReport, StatsSpec, plan};
use crate::jobs::stream::{JobStream, Traffic};
use crate::jobs::{JobError, blocking, unexpected};
use crate::stats_manifest::{StatsAcceptance, StatsManifest};
use crate::store::Peer;
use crate::wire::{PeerMessage, StatsRequest};

impl StatsNode {
    /// Runs `spec` as its requester; returns the released statistics.
    /// `progress` hears each phase as it starts.
    pub async fn run(
        &self,
        spec: StatsSpec,
        progress: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> Result<StatsReport, JobError> {
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
            progress,
        };
        running.say(format!(
            "job {}: admitted here; asking {} other parties",
            running.manifest.job_id,
            peers.len()
        ));
        let (streams, agreements) = match self.gather(&running, own, &peers).await {
            Ok(gathered) => gathered,
            Err(error) => return self.end(running, Traffic::default(), 0, error).await,
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
                            running.say(format!("{name} agreed"));
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
        running.say("every party agreed and signed; computing and sharing statistics");
        Ok((streams, agreements))
    }
}
