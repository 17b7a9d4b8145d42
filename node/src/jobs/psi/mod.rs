//! Runs accepted jobs over a QUIC stream: the async shell around the
//! protocol crate's state machines.
//!
//! A job's stream carries frames in both directions at once. Outgoing frames
//! go through an unbounded queue to a writer task, so the reader never blocks
//! on sending: if both sides blocked on writing large sets while neither read,
//! QUIC flow control would deadlock them. The queue holds no more than the
//! encoded messages the state machine already returned.

use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use unseen_protocol::ecdh_psi::{
    Message as PsiMessage, Mode, PsiOutput, PsiResult, Requester, RequesterState, Responder,
    ResponderState, Session,
};
use unseen_protocol::sharing::PartyIndex;
use unseen_protocol::{Progress, Step};

use crate::audit::Release;
use crate::boundary::{Accepted, Boundary, Refusal};
use crate::crash::{self, Step as CrashStep};
use crate::store::{JobEnd, Outcome, Role};
use crate::wire::{self, JobAcceptance, JobRequest, PeerMessage, ProtocolRequest, ReleaseTerms};

fn session(accepted: &Accepted) -> Session {
    let mode = match accepted.protocol() {
        ProtocolRequest::EcdhPsi(mode) => *mode,
        // The PSI runner is started only for PSI manifests.
        ProtocolRequest::SecureStats { .. } | ProtocolRequest::IntersectionSum(_) => {
            Mode::Cardinality
        }
    };
    let mut session = Session::new(accepted.job_id, mode, accepted.max_peer_set_size);
    session.min_peer_set_size = accepted.min_peer_set_size;
    session.padding = accepted.padding;
    session
}

use super::driver::{Envelope, drive_pair};
use super::stream::{JobStream, Traffic};
use super::{JobError, JobReport, JobStreams, StreamLimits, blocking, step_rng, unexpected};

/// The requester's side of an accepted job, on a freshly opened stream.
pub async fn run_requester(
    boundary: &Boundary,
    accepted: Accepted,
    request: JobRequest,
    streams: JobStreams,
    limits: StreamLimits,
    out: Option<PathBuf>,
) -> Result<JobReport, JobError> {
    let peer_cert = streams.peer_certificate();
    let mut stream = limits.stream(streams);
    let own = accepted.data.ids().len() as u64;
    // The responder's size is known at its hello; until then, ours alone.
    stream.admitted(own, limits.limits.job_deadline(own));
    let exchanged = match stream.send(&PeerMessage::JobRequest(request.clone())) {
        Ok(()) => {
            let job = (boundary, &accepted, &request, &limits.limits);
            requester_exchange(&mut stream, job, peer_cert).await
        }
        Err(error) => Err(error),
    };
    let (terms, output) = match exchanged {
        Ok(done) => done,
        Err(error) => return Err(requester_failed(boundary, &accepted, stream, error).await),
    };
    let traffic = requester_close(stream, &accepted).await;

    // Release rules: the stricter of the two owners' minimum group sizes,
    // applied to the (noisy, if noise was added) result.
    let k = accepted.min_group_size.max(terms.min_group_size);
    let size = output.result.size();
    let suppressed = (!crate::policy::may_release(size, k)).then(|| {
        format!("the result is below the minimum group size k = {k}, so it is not released")
    });
    let noise = terms.noise.map(|n| {
        format!(
            "{NOISE_MECHANISM}, epsilon {}",
            crate::grant::format_micros(n.epsilon_micros)
        )
    });
    let mut report = JobReport {
        job_id: accepted.job_id.to_string(),
        peer: accepted.peer.name.clone(),
        protocol: accepted.protocol().name().into(),
        purpose: accepted.manifest.purpose.clone(),
        grant: accepted.grant.id.clone(),
        own_set_size: accepted.data.ids().len() as u64,
        own_empty_id_rows: accepted.data.summary().empty_id_rows,
        peer_set_size: output.peer_set_size,
        intersection_size: suppressed.is_none().then_some(size),
        suppressed: suppressed.clone(),
        noise: noise.clone(),
        out: None,
        rows_written: None,
        bytes_sent: traffic.bytes_sent,
        bytes_received: traffic.bytes_received,
        duration_ms: accepted.started.elapsed().as_millis() as u64,
    };
    let written = match (&out, &suppressed) {
        (Some(path), None) => write_output(&accepted, &output, &report, path)
            .await
            .map(Some),
        _ => Ok(None),
    };
    let release = release(
        &accepted,
        &terms,
        report
            .intersection_size
            .map(|n| format!("intersection size {n}")),
        suppressed.clone(),
    );
    let result_text = release
        .value
        .clone()
        .or_else(|| suppressed.clone().map(|s| format!("suppressed: {s}")));
    match written {
        Ok(rows) => {
            report.out = out.filter(|_| rows.is_some());
            report.rows_written = rows;
            let end = job_end(
                &accepted,
                Outcome::Completed,
                Some(output.peer_set_size),
                traffic,
                None,
                result_text,
            );
            boundary.finish_with_release(&accepted, &end, release);
            Ok(report)
        }
        Err(error) => {
            // The result was computed and released to us, but not saved.
            let end = job_end(
                &accepted,
                Outcome::Failed,
                Some(output.peer_set_size),
                traffic,
                Some(error.to_string()),
                result_text,
            );
            boundary.finish_with_release(&accepted, &end, release);
            Err(error)
        }
    }
}

/// Records a requester's job that failed or that the peer refused, after
/// closing its stream; returns the error.
pub(super) async fn requester_failed(
    boundary: &Boundary,
    accepted: &Accepted,
    stream: JobStream,
    error: JobError,
) -> JobError {
    let traffic = stream.fail(&error).await;
    let end = job_end(
        accepted,
        Outcome::Failed,
        None,
        traffic,
        Some(error.to_string()),
        None,
    );
    match &error {
        JobError::Refused(reason) => {
            let end = JobEnd {
                outcome: Outcome::Refused,
                ..end
            };
            boundary.refused_by_peer(accepted, reason, &end);
        }
        _ => boundary.fail(accepted, &end),
    }
    error
}

/// Tells the responder the requester has its output, waits for it to close
/// (it records the job first), and closes.
pub(super) async fn requester_close(mut stream: JobStream, accepted: &Accepted) -> Traffic {
    crash::point(Role::Requester, CrashStep::BeforeFinish);
    let finished = stream.send(&PeerMessage::JobFinished);
    if let Err(error) = finished.and(stream.expect_end().await) {
        // We have our output; the peer's bookkeeping is its own affair.
        tracing::warn!(job = %accepted.job_id, "the responder did not close cleanly: {error}");
    }
    stream.close().await
}

/// What a job released, to whom, and how it was protected. The responder
/// records it without the value, which it never learns.
pub(super) fn release(
    accepted: &Accepted,
    terms: &ReleaseTerms,
    value: Option<String>,
    suppressed: Option<String>,
) -> Release {
    Release {
        recipient: accepted.manifest.requester.fingerprint.clone(),
        value,
        suppressed,
        mechanism: terms
            .noise
            .map_or_else(|| "none".into(), |_| NOISE_MECHANISM.into()),
        epsilon: terms
            .noise
            .map(|n| crate::grant::format_micros(n.epsilon_micros)),
        delta: terms.noise.map(|n| format!("{}e-9", n.delta_nanos)),
    }
}

/// The mechanism name recorded with noisy releases.
const NOISE_MECHANISM: &str = "discrete Laplace padding";

pub(super) fn job_end(
    accepted: &Accepted,
    outcome: Outcome,
    peer_set_size: Option<u64>,
    traffic: Traffic,
    detail: Option<String>,
    result: Option<String>,
) -> JobEnd {
    JobEnd {
        outcome,
        local_set_size: Some(accepted.data.ids().len() as u64),
        peer_set_size,
        bytes_sent: traffic.bytes_sent,
        bytes_received: traffic.bytes_received,
        data_messages_sent: traffic.data_sent,
        data_messages_received: traffic.data_received,
        duration: accepted.started.elapsed(),
        detail,
        result,
    }
}

async fn requester_exchange(
    stream: &mut JobStream,
    (boundary, accepted, request, limits): (
        &Boundary,
        &Accepted,
        &JobRequest,
        &crate::config::Limits,
    ),
    peer_cert: Option<CertificateDer<'static>>,
) -> Result<(ReleaseTerms, PsiOutput), JobError> {
    let acceptance = accept_terms(stream, boundary, accepted, request, peer_cert).await?;
    let mut session = session(accepted);
    if let Some(noise) = &acceptance.terms.noise {
        session.padding = crate::noise::requester_padding(noise)?;
    }
    let own = accepted.data.ids().len() as u64;
    let data = accepted.data.clone();
    let (state, messages) =
        blocking(move || Requester::start(session, data.ids(), &mut step_rng())).await?;
    let first = Step {
        next: Progress::Continue(RequesterState::from(state)),
        send: messages,
    };
    let max_peer = accepted.max_peer_set_size;
    let output = drive_pair(
        stream,
        (RESPONDER, &accepted.peer.name),
        first,
        &envelope(Role::Requester),
        |state: RequesterState, message| state.handle(message),
        |message, stream| {
            if let PsiMessage::ResponderHello { set_size } = message {
                // The state machine holds it to our limit; the deadline and
                // the queue bound may grow with it.
                let both = own.saturating_add((*set_size).min(max_peer));
                stream.admitted(both, limits.job_deadline(both));
            }
        },
    )
    .await?;
    Ok((acceptance.terms, output))
}

/// Waits for the responder's answer to our request and, if it accepted,
/// checks and records its countersignature.
pub(super) async fn accept_terms(
    stream: &mut JobStream,
    boundary: &Boundary,
    accepted: &Accepted,
    request: &JobRequest,
    peer_cert: Option<CertificateDer<'static>>,
) -> Result<JobAcceptance, JobError> {
    let acceptance = match stream.recv().await? {
        PeerMessage::JobAccepted(acceptance) => acceptance,
        PeerMessage::JobRefused { reason } => return Err(JobError::Refused(reason)),
        other => return Err(unexpected("JobAccepted", &other)),
    };
    let peer_cert = peer_cert.ok_or_else(|| JobError::Internal("no peer certificate".into()))?;
    boundary
        .record_agreement(accepted, request, &acceptance, &peer_cert)
        .map_err(|refusal| JobError::Internal(refusal.local_reason))?;
    Ok(acceptance)
}

/// The requester's and responder's places in a two-party job's roster.
pub(super) const REQUESTER: PartyIndex = PartyIndex(0);
pub(super) const RESPONDER: PartyIndex = PartyIndex(1);

/// PSI messages in the envelope; `role`'s crash point runs before each step.
fn envelope(role: Role) -> Envelope<PsiMessage> {
    Envelope {
        wrap: PeerMessage::Psi,
        unwrap: |m| match m {
            PeerMessage::Psi(m) => Some(m),
            _ => None,
        },
        crash_role: Some(role),
    }
}

async fn write_output(
    accepted: &Accepted,
    output: &PsiOutput,
    report: &JobReport,
    path: &std::path::Path,
) -> Result<u64, JobError> {
    let data = accepted.data.clone();
    let path = path.to_path_buf();
    let members = match &output.result {
        PsiResult::Members(members) => Some(members.clone()),
        PsiResult::Cardinality(_) => None,
    };
    let summary = format!(
        "intersection_size,own_set_size,peer_set_size\n{},{},{}\n",
        report.intersection_size.unwrap_or(0),
        report.own_set_size,
        report.peer_set_size
    );
    blocking(move || match members {
        Some(members) => data
            .write_rows(&members, &path)
            .map_err(|e| JobError::Output(e.to_string())),
        None => crate::fsutil::write_atomically(&path, summary.as_bytes())
            .map(|()| 1)
            .map_err(|e| JobError::Output(format!("cannot write {}: {e}", path.display()))),
    })
    .await?
}

/// Answers a stream the node will not serve with a refusal, without reading
/// it: the peer's request is never decoded, stored or logged. Gives up after
/// a few seconds if the peer does not take the answer.
pub async fn refuse_stream(streams: JobStreams, reason: String) {
    let JobStreams { mut send, .. } = streams;
    let refusal = wire::encode(&PeerMessage::JobRefused {
        reason: wire::reason(&reason),
    });
    let answer = async {
        crate::transport::frame::write_frame(&mut send, &refusal).await?;
        send.finish()?;
        let _ = send.stopped().await;
        std::io::Result::Ok(())
    };
    if tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .is_err()
    {
        let _ = send.reset(0u32.into());
    }
}

/// How a served stream ended, for the per-peer limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The boundary refused the request, or it was not a request.
    Refused,
    /// The job ran (to completion or failure).
    Ran,
}

/// The responder's side: `request` arrived first on `stream`; passes it
/// through the boundary, and runs the protocol if it is accepted.
pub(crate) async fn serve_request(
    boundary: &Boundary,
    peer: crate::store::Peer,
    peer_cert: Option<CertificateDer<'static>>,
    mut stream: JobStream,
    request: JobRequest,
    limits: StreamLimits,
) -> Served {
    let Some(peer_cert) = peer_cert else {
        stream
            .fail(&JobError::Internal("no peer certificate".into()))
            .await;
        return Served::Refused;
    };
    crash::point(Role::Responder, CrashStep::BeforeAdmission);
    // Admission reads SQLite and hashes the dataset: keep it off the runtime.
    let admitted = {
        let (boundary, peer, request) = (boundary.clone(), peer.clone(), request.clone());
        blocking(move || boundary.admit_incoming(&peer, &peer_cert, &request)).await
    };
    let admitted = admitted.unwrap_or_else(|e| {
        Err(Refusal::new(
            "the node could not decide on the job; try again later",
            e.to_string(),
        ))
    });
    let (accepted, acceptance) = match admitted {
        Ok(admitted) => admitted,
        Err(Refusal {
            public_reason,
            local_reason,
        }) => {
            tracing::info!(peer = %peer.name, job = %request.manifest.job_id, "refused a job: {local_reason}");
            let _ = stream.send(&PeerMessage::JobRefused {
                reason: wire::reason(&public_reason),
            });
            stream.close().await;
            return Served::Refused;
        }
    };
    let terms = acceptance.terms;
    tracing::info!(
        peer = %peer.name,
        job = %accepted.job_id,
        grant = %accepted.grant.id,
        "admitted job"
    );
    crash::point(Role::Responder, CrashStep::AfterCharge);
    let is_isum = matches!(accepted.protocol(), ProtocolRequest::IntersectionSum(_));
    if is_isum {
        super::isum::admitted(&mut stream, &accepted, request.requester_set_size, &limits);
    } else {
        let both = (accepted.data.ids().len() as u64).saturating_add(request.requester_set_size);
        stream.admitted(both, limits.limits.job_deadline(both));
    }
    let result = match stream.send(&PeerMessage::JobAccepted(acceptance)) {
        Ok(()) if is_isum => super::isum::responder_exchange(&mut stream, &accepted).await,
        Ok(()) => responder_exchange(&mut stream, &accepted).await,
        Err(error) => Err(error),
    };
    // Record before closing, whatever the outcome: the requester waits for
    // our close, so when its job returns, our record is already committed.
    // A failure does not wait for queued frames to drain (a peer that stops
    // reading would hold the record back); counting queued data messages as
    // sent errs on the side of charging.
    if result.is_ok() {
        crash::point(Role::Responder, CrashStep::BeforeFinish);
    }
    let traffic = match &result {
        Ok(_) => stream.flush().await,
        Err(error) => {
            tracing::warn!(peer = %peer.name, job = %accepted.job_id, "job failed: {error}");
            if let Some(abort) = error.abort() {
                let _ = stream.send(&abort);
            }
            stream.traffic()
        }
    };
    match result {
        Ok(peer_set_size) => {
            let end = job_end(
                &accepted,
                Outcome::Completed,
                Some(peer_set_size),
                traffic,
                None,
                None,
            );
            // The responder does not learn the result; it records that the
            // requester received one, and how it was protected.
            let release = release(&accepted, &terms, None, None);
            boundary.finish_with_release(&accepted, &end, release);
        }
        Err(error) => {
            let end = job_end(
                &accepted,
                Outcome::Failed,
                None,
                traffic,
                Some(error.to_string()),
                None,
            );
            boundary.fail(&accepted, &end);
        }
    }
    stream.close().await;
    Served::Ran
}

async fn responder_exchange(stream: &mut JobStream, accepted: &Accepted) -> Result<u64, JobError> {
    let session = session(accepted);
    let data = accepted.data.clone();
    let (state, messages) =
        blocking(move || Responder::start(session, data.ids(), &mut step_rng())).await?;
    let first = Step {
        next: Progress::Continue(ResponderState::from(state)),
        send: messages,
    };
    let output = drive_pair(
        stream,
        (REQUESTER, &accepted.peer.name),
        first,
        &envelope(Role::Responder),
        |state: ResponderState, message| state.handle(message, &mut step_rng()),
        |_, _| {},
    )
    .await?;
    expect_finished(stream, output.peer_set_size).await
}

/// The job is complete once the requester confirms it has its output.
pub(super) async fn expect_finished(
    stream: &mut JobStream,
    peer_set_size: u64,
) -> Result<u64, JobError> {
    match stream.recv().await? {
        PeerMessage::JobFinished => Ok(peer_set_size),
        other => Err(unexpected("JobFinished", &other)),
    }
}
