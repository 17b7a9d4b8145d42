//! Private intersection-sum between two nodes: the requester learns how
//! many of its ids the responder holds and the sum of the responder's
//! values over them (per category); the responder learns the requester's
//! set size. The protocol is `unseen_protocol::intersection_sum`; the job
//! runs it over one stream with the same shell as PSI ([`super::psi`]):
//! the same request, acceptance, records, release and refunds.
//!
//! The responder's values are read and checked at admission ([`rows`]),
//! so a bad cell refuses the job before any protocol message leaves. All
//! group work runs off the async runtime, in the driver's steps; the
//! discrete-log table the requester needs at the end is built once per
//! process, off the runtime, while the job's first messages travel.

use std::sync::{Arc, LazyLock};

use rustls_pki_types::CertificateDer;
use unseen_protocol::intersection_sum::{
    DlogTable, IsumOutput, LimbOffsets, MAX_SET_SIZE, Message as IsumMessage, Requester,
    RequesterState, Responder, ResponderState, Session, ValuedIds,
};
use unseen_protocol::{Progress, Step};

use super::driver::{Envelope, drive_pair};
use super::psi::{self, REQUESTER, RESPONDER};
use super::stream::JobStream;
use super::{JobError, JobStreams, StreamLimits, blocking, step_rng};
use crate::boundary::{Accepted, Boundary, Refusal};
use crate::dataset::LoadedDataset;
use crate::manifest::{IsumRequest, JobManifest};
use crate::store::{Outcome, Role};
use crate::wire::{JobRequest, PeerMessage, ProtocolRequest, ReleaseTerms};

mod report;
pub mod rows;

pub use report::{CategoryReport, IsumReport};
pub use rows::{Unfit, valued_rows};

// `DlogTable::new` refuses only a size outside 1 to 28 bits.
const TABLE_BITS: u8 = DlogTable::RECOMMENDED_BITS;
const _: () = assert!(TABLE_BITS >= 1 && TABLE_BITS <= 28);

/// The baby steps for solving the decrypted sums: 2^20 entries, 12 MiB,
/// about 1.3 s to build (docs/protocols/intersection-sum.md), so once per
/// process, shared by every job. Forced only off the async runtime.
static TABLE: LazyLock<DlogTable> = LazyLock::new(|| match DlogTable::new(TABLE_BITS) {
    Ok(table) => table,
    Err(e) => unreachable!("a table size checked at compile time was refused: {e}"),
});

/// What a job needs read from its data beyond the ids, checked at
/// admission: the responder's rows of an intersection-sum job, or why they
/// do not fit it. Blocks on parsing.
pub(crate) fn prepare(
    role: Role,
    manifest: &JobManifest,
    data: &LoadedDataset,
) -> Result<Option<Arc<ValuedIds>>, Refusal> {
    match (role, &manifest.protocol) {
        (Role::Responder, ProtocolRequest::IntersectionSum(ask)) => valued_rows(ask, data)
            .map(|rows| Some(Arc::new(rows)))
            .map_err(|unfit| Refusal::new(&unfit.public_reason(), unfit.to_string())),
        _ => Ok(None),
    }
}

/// The protocol's session for an accepted job: the layout the request
/// names, and the peer's set held to what admission allowed.
fn session(accepted: &Accepted) -> Result<(Session, &IsumRequest), JobError> {
    let ProtocolRequest::IntersectionSum(ask) = accepted.protocol() else {
        return Err(JobError::Internal(
            "the intersection-sum runner was given another protocol's job".into(),
        ));
    };
    let max_peer = accepted.max_peer_set_size.min(MAX_SET_SIZE);
    let mut session = Session::new(accepted.job_id, ask.layout(), max_peer);
    session.min_peer_set_size = accepted.min_peer_set_size;
    Ok((session, ask))
}

/// How much a job weighs against the node's deadline: every id and every
/// ciphertext slot of every row (the responder encrypts each one).
fn work(ids: u64, rows: u64, slots: usize) -> u64 {
    ids.saturating_add(rows.saturating_mul(1 + slots as u64))
}

/// Sizes the responder's stream: it queues a double-blinded point for
/// each of the requester's ids and, for each of its own rows, a point and
/// two per slot (all rows at once: the protocol returns them together).
pub(super) fn admitted(
    stream: &mut JobStream,
    accepted: &Accepted,
    requester_set_size: u64,
    limits: &StreamLimits,
) {
    let slots = match accepted.protocol() {
        ProtocolRequest::IntersectionSum(ask) => ask.layout().slots(),
        _ => 1,
    };
    let rows = accepted.valued.as_ref().map_or(0, |v| v.len() as u64);
    let row_bytes = 40 + 64 * slots as u64;
    let bytes = requester_set_size
        .saturating_mul(40)
        .saturating_add(rows.saturating_mul(row_bytes));
    let deadline = limits
        .limits
        .job_deadline(work(requester_set_size, rows, slots));
    stream.admitted_bytes(bytes, deadline);
}

/// Intersection-sum messages in the envelope; `role`'s crash point runs
/// before each step.
fn envelope(role: Role) -> Envelope<IsumMessage> {
    Envelope {
        wrap: PeerMessage::Isum,
        unwrap: |m| match m {
            PeerMessage::Isum(m) => Some(m),
            _ => None,
        },
        crash_role: Some(role),
    }
}

fn input_error(e: unseen_protocol::intersection_sum::InputError) -> JobError {
    JobError::Internal(format!("the protocol refused this node's own input: {e}"))
}

/// The requester's side of an accepted job, on a freshly opened stream.
pub async fn run_requester(
    boundary: &Boundary,
    accepted: Accepted,
    request: JobRequest,
    streams: JobStreams,
    limits: StreamLimits,
) -> Result<IsumReport, JobError> {
    let peer_cert = streams.peer_certificate();
    let mut stream = limits.stream(streams);
    let own = accepted.data.ids().len() as u64;
    // The responder's rows are known at its hello; until then, ours alone.
    stream.admitted(own, limits.limits.job_deadline(own));
    // Needed only at the last step: built meanwhile, off the runtime.
    drop(tokio::task::spawn_blocking(|| TABLE.baby_steps()));
    let exchanged = match stream.send(&PeerMessage::JobRequest(request.clone())) {
        Ok(()) => {
            let job = (boundary, &accepted, &request, &limits.limits);
            requester_exchange(&mut stream, job, peer_cert).await
        }
        Err(error) => Err(error),
    };
    let (terms, output) = match exchanged {
        Ok(done) => done,
        Err(error) => return Err(psi::requester_failed(boundary, &accepted, stream, error).await),
    };
    let traffic = psi::requester_close(stream, &accepted).await;
    let report = IsumReport::released(&accepted, &terms, &output, traffic);
    let release = psi::release(
        &accepted,
        &terms,
        report.release_text(),
        report.job.suppressed.clone(),
    );
    let result = release.value.clone().or_else(|| {
        report
            .job
            .suppressed
            .clone()
            .map(|s| format!("suppressed: {s}"))
    });
    let end = psi::job_end(
        &accepted,
        Outcome::Completed,
        Some(output.peer_set_size),
        traffic,
        None,
        result,
    );
    boundary.finish_with_release(&accepted, &end, release);
    Ok(report)
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
) -> Result<(ReleaseTerms, IsumOutput), JobError> {
    let acceptance = psi::accept_terms(stream, boundary, accepted, request, peer_cert).await?;
    if acceptance.terms.noise.is_some() {
        // Noise for this protocol is not built: terms that carry some come
        // from a node that would release something other than we compute.
        return Err(JobError::BadReleaseTerms(
            "they carry noise, which intersection-sum does not have".into(),
        ));
    }
    let (session, ask) = session(accepted)?;
    let slots = ask.layout().slots();
    let data = accepted.data.clone();
    let (state, messages) =
        blocking(move || Requester::start(session, data.ids(), &mut step_rng()))
            .await?
            .map_err(input_error)?;
    let first = Step {
        next: Progress::Continue(RequesterState::from(state)),
        send: messages,
    };
    let own = accepted.data.ids().len() as u64;
    let max_peer = accepted.max_peer_set_size;
    let output = drive_pair(
        stream,
        (RESPONDER, &accepted.peer.name),
        first,
        &envelope(Role::Requester),
        |state: RequesterState, message| state.handle(message, &mut step_rng(), &TABLE),
        |message, stream| {
            if let IsumMessage::ResponderHello { set_size, .. } = message {
                // The state machine holds it to our limit; the deadline may
                // grow with it. What we queue does not: only our own ids.
                let rows = (*set_size).min(max_peer);
                stream.admitted(own, limits.job_deadline(work(own, rows, slots)));
            }
        },
    )
    .await?;
    Ok((acceptance.terms, output))
}

/// The responder's side, once the boundary accepted the job and the
/// acceptance is queued: runs the protocol on the rows admission read.
pub(super) async fn responder_exchange(
    stream: &mut JobStream,
    accepted: &Accepted,
) -> Result<u64, JobError> {
    let (session, _) = session(accepted)?;
    let rows = accepted.valued.clone().ok_or_else(|| {
        JobError::Internal("an intersection-sum job was admitted without its rows".into())
    })?;
    // No offsets: noise for this protocol is not built, and admission
    // refuses any grant that asks for it.
    let (state, messages) =
        blocking(move || Responder::start(session, &rows, LimbOffsets::none(), &mut step_rng()))
            .await?
            .map_err(input_error)?;
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
    psi::expect_finished(stream, output.peer_set_size).await
}
