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
//!
//! The requester's steps are in `requester.rs`, another party's in
//! `party.rs`; what every party runs once its streams are open (share, sum,
//! finish, report, record) is here.

use std::sync::Arc;

use unseen_protocol::dp::Epsilon;
use unseen_protocol::sharing::{
    ExpectShares, GroupResult, PartyIndex, Ring, SecureSum, StatsNoise, SumMessage, SumOutput,
    finish,
};

use super::registry::Registry;
use super::report::{StatsReport, rows};
use super::{Plan, local_stats};
use crate::audit::Release;
use crate::boundary::{Accepted, Boundary};
use crate::identity::Identity;
use crate::jobs::connect::Connector;
use crate::jobs::driver::{Envelope, drive};
use crate::jobs::mesh::Mesh;
use crate::jobs::stream::{JobStream, Traffic};
use crate::jobs::{JobError, StreamLimits, blocking, step_rng};
use crate::stats_manifest::{StatsAcceptance, StatsManifest};
use crate::store::{JobEnd, Outcome, Store};
use crate::wire::PeerMessage;

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
pub(super) struct Running {
    pub(super) plan: Plan,
    pub(super) manifest: StatsManifest,
    pub(super) accepted: Accepted,
    pub(super) me: usize,
    /// Where the requester's operator hears each phase (the CLI's progress).
    pub(super) progress: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Running {
    /// Tells the operator what the job does now, if anyone listens.
    pub(super) fn say(&self, phase: impl Into<String>) {
        if let Some(progress) = &self.progress {
            let _ = progress.send(phase.into());
        }
    }
}

impl StatsNode {
    pub(super) fn own_fingerprint(&self) -> String {
        self.identity.fingerprint().to_string()
    }

    pub(super) async fn record_agreement(
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
    pub(super) async fn exchange(
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
                // Off the runtime: a report of 2^20 bins takes a while to
                // build and record, and the job's rows are freed with
                // `running` (other jobs and progress lines wait otherwise).
                let node = self.clone();
                let report = blocking(move || {
                    let report = released
                        .map(|results| node.report(&running, &agreements, &results, traffic));
                    node.record_end(&running, traffic, traffic.data_sent, Ok(report.as_ref()));
                    report
                })
                .await;
                // Recorded before our streams close: the requester returns
                // only once every party has closed, so every record exists.
                mesh.close(Some(self.limits.message_timeout)).await;
                report
            }
            Err(error) => {
                mesh.abort(&error);
                mesh.close(None).await;
                self.end(running, traffic, traffic.data_sent, error).await
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
        running.say("totals opened; waiting for every party to finish");
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

    /// Records that the job failed with `error` on this node, off the
    /// runtime, and returns the error.
    pub(super) async fn end<T: Send + 'static>(
        &self,
        running: Running,
        traffic: Traffic,
        data_sent: u64,
        error: JobError,
    ) -> Result<T, JobError> {
        let node = self.clone();
        blocking(move || {
            node.record_end(&running, traffic, data_sent, Err(&error));
            Err(error)
        })
        .await?
    }

    /// Records how the job ended on this node. The charge is given back
    /// only if no share left this node. Blocks on SQLite.
    fn record_end(
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

    /// Bounds a stream by the job's size: what it may queue (each share
    /// message is one layout's width; a party sends at most two per peer)
    /// and how long it may run (from the rows this party brings).
    pub(super) fn size(&self, stream: &mut JobStream, running: &Running) {
        let width = running.plan.layout.width() as u64;
        stream.admitted_bytes(
            width.saturating_mul(2 * QUEUE_BYTES_PER_SHARE),
            self.limits
                .limits
                .job_deadline(running.accepted.data.ids().len() as u64),
        );
    }
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
    let job = running.manifest.job_id.clone();
    let started = std::time::Instant::now();
    let first = blocking(move || {
        let mut rng = step_rng();
        let local = local_stats(&plan, &data, noise.as_ref())
            .map_err(|e| JobError::Output(e.to_string()))?;
        tracing::debug!(%job, elapsed = ?started.elapsed(), "local statistics computed");
        let shares = local
            .to_share::<R, _>(parties, noise.as_ref(), &mut rng)
            .map_err(|e| JobError::Output(e.to_string()))?;
        let first = SecureSum::start(roster, &shares, &mut rng);
        tracing::debug!(%job, elapsed = ?started.elapsed(), "input shares made");
        Ok::<_, JobError>(first)
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
    tracing::debug!(job = %running.manifest.job_id, elapsed = ?started.elapsed(), "secure sum done");
    Ok(match output {
        SumOutput::Totals(totals) => Some(totals.iter().map(|t| t.to_signed()).collect()),
        SumOutput::NotARecipient => None,
    })
}

fn micros(value: u64) -> String {
    unseen_protocol::sharing::decimal(i128::from(value), 6)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}
