//! Runs accepted jobs over a QUIC stream: the async shell around the
//! protocol crate's state machines.
//!
//! A job's stream carries frames in both directions at once. Outgoing frames
//! go through an unbounded queue to a writer task, so the reader never blocks
//! on sending: if both sides blocked on writing large sets while neither read,
//! QUIC flow control would deadlock them. The queue holds no more than the
//! encoded messages the state machine already returned.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use unseen_protocol::ecdh_psi::{
    Message as PsiMessage, PsiOutput, PsiResult, Requester, RequesterState, Responder,
    ResponderState, Session,
};
use unseen_protocol::{JobId, Progress};

use crate::boundary::{Accepted, Boundary, Refusal};
use crate::store::{JobEnd, Outcome};
use crate::transport::frame::{FrameError, read_frame, write_frame};
use crate::wire::{self, AbortCode, PeerMessage, ProtocolRequest, WireError};

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A boundary refused the job.
    #[error("job refused: {0}")]
    Refused(String),
    /// The peer could not be reached.
    #[error("cannot reach peer {peer} at {addr}: {reason}")]
    Connect {
        /// Peer name.
        peer: String,
        /// Its address.
        addr: String,
        /// What happened, and what to check.
        reason: String,
    },
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] unseen_protocol::Error),
    /// A frame did not arrive whole or was too large.
    #[error("frame error: {0}")]
    Frame(#[from] FrameError),
    /// A frame did not decode.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The peer sent a message that makes no sense at this point.
    #[error("peer sent {received} where {expected} was expected")]
    Unexpected {
        /// What we waited for.
        expected: &'static str,
        /// What arrived.
        received: &'static str,
    },
    /// The peer stopped the job.
    #[error("peer aborted the job (code {code}): {reason}")]
    PeerAborted {
        /// The peer's abort code.
        code: u16,
        /// The peer's reason.
        reason: String,
    },
    /// The peer was silent too long.
    #[error("peer sent nothing for {0:?}")]
    Timeout(Duration),
    /// The stream closed early.
    #[error("the peer closed the job's stream early")]
    Closed,
    /// The connection closed under the job. A peer that has not registered
    /// our certificate closes it with a TLS error right after the handshake.
    #[error(
        "the connection was closed: {0}; if this is a TLS or certificate error, the peer has not registered this node's fingerprint (compare `unseen id` here with `unseen peer list` there)"
    )]
    ConnectionClosed(String),
    /// Writing the output failed.
    #[error("{0}")]
    Output(String),
    /// An internal task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl JobError {
    /// The abort to send the peer for this error, if one should be sent.
    fn abort(&self) -> Option<PeerMessage> {
        let (code, reason) = match self {
            Self::Protocol(e) => (e.abort_code(), e.to_string()),
            Self::Frame(FrameError::TooLarge { .. }) => {
                (AbortCode::FrameTooLarge as u16, self.to_string())
            }
            // A refusal or an abort already ended the job on the peer's side.
            Self::Frame(_)
            | Self::Closed
            | Self::ConnectionClosed(_)
            | Self::PeerAborted { .. }
            | Self::Refused(_) => {
                return None;
            }
            Self::Wire(_) => (AbortCode::Undecodable as u16, self.to_string()),
            Self::Unexpected { .. } => (AbortCode::UnexpectedMessage as u16, self.to_string()),
            Self::Timeout(_) => (AbortCode::Timeout as u16, self.to_string()),
            Self::Connect { .. } | Self::Output(_) | Self::Internal(_) => {
                (AbortCode::Internal as u16, "the peer's node failed".into())
            }
        };
        Some(PeerMessage::Abort { code, reason })
    }
}

/// What the requester's operator gets back from a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job id.
    pub job_id: String,
    /// The peer.
    pub peer: String,
    /// Protocol and mode.
    pub protocol: String,
    /// Distinct ids this node used.
    pub own_set_size: u64,
    /// Rows of our file with an empty id, left out.
    pub own_empty_id_rows: u64,
    /// Distinct ids the peer used.
    pub peer_set_size: u64,
    /// The size of the intersection.
    pub intersection_size: u64,
    /// Where the output went, if asked for.
    pub out: Option<PathBuf>,
    /// Rows written to `out`.
    pub rows_written: Option<u64>,
    /// Bytes sent on the job's stream.
    pub bytes_sent: u64,
    /// Bytes received on it.
    pub bytes_received: u64,
    /// Wall time from acceptance to output.
    pub duration_ms: u64,
}

/// One job's bidirectional stream, framed and counted.
struct JobStream {
    connection: quinn::Connection,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    writer: tokio::task::JoinHandle<std::io::Result<()>>,
    recv: quinn::RecvStream,
    bytes_sent: Arc<AtomicU64>,
    bytes_received: u64,
    max_frame: u32,
    timeout: Duration,
}

impl JobStream {
    fn new(streams: JobStreams, max_frame: u32, timeout: Duration) -> Self {
        let JobStreams {
            connection,
            mut send,
            recv,
        } = streams;
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let counter = bytes_sent.clone();
        let writer = tokio::spawn(async move {
            while let Some(frame) = queue.recv().await {
                let n = write_frame(&mut send, &frame).await?;
                counter.fetch_add(n, Ordering::Relaxed);
            }
            // All queued frames are written: finish, then wait until the peer
            // has them all (dropping the stream earlier would lose the tail).
            send.finish()?;
            let _ = tokio::time::timeout(timeout, send.stopped()).await;
            Ok(())
        });
        Self {
            connection,
            outgoing,
            writer,
            recv,
            bytes_sent,
            bytes_received: 0,
            max_frame,
            timeout,
        }
    }

    fn send(&self, message: &PeerMessage) {
        // The writer only stops early when the stream failed; the next read
        // then reports that failure.
        let _ = self.outgoing.send(wire::encode(message));
    }

    async fn recv(&mut self) -> Result<PeerMessage, JobError> {
        let read = tokio::time::timeout(self.timeout, read_frame(&mut self.recv, self.max_frame))
            .await
            .map_err(|_| JobError::Timeout(self.timeout))?;
        let frame = match read {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(JobError::Closed),
            Err(FrameError::Io(e)) => {
                return Err(match self.connection.close_reason() {
                    Some(reason) => JobError::ConnectionClosed(reason.to_string()),
                    None => JobError::Frame(FrameError::Io(e)),
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.bytes_received += 4 + frame.len() as u64;
        match wire::decode(&frame)? {
            PeerMessage::Abort { code, reason } => Err(JobError::PeerAborted { code, reason }),
            message => Ok(message),
        }
    }

    /// Sends what is queued and closes our direction of the stream.
    async fn close(self) -> (u64, u64) {
        let Self {
            outgoing,
            writer,
            bytes_sent,
            bytes_received,
            ..
        } = self;
        drop(outgoing);
        let _ = writer.await;
        (bytes_sent.load(Ordering::Relaxed), bytes_received)
    }

    /// Sends an abort for `error` (if it warrants one) and closes.
    async fn fail(self, error: &JobError) -> (u64, u64) {
        if let Some(abort) = error.abort() {
            self.send(&abort);
        }
        self.close().await
    }
}

fn unexpected(expected: &'static str, message: &PeerMessage) -> JobError {
    JobError::Unexpected {
        expected,
        received: message.kind(),
    }
}

fn session(job_id: JobId, protocol: ProtocolRequest, max_peer_set_size: u64) -> Session {
    let ProtocolRequest::EcdhPsi(mode) = protocol;
    Session::new(job_id, mode, max_peer_set_size)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Internal(e.to_string()))
}

/// A job's connection and its bidirectional stream.
#[derive(Debug)]
pub struct JobStreams {
    /// The connection to the peer.
    pub connection: quinn::Connection,
    /// Our direction.
    pub send: quinn::SendStream,
    /// The peer's direction.
    pub recv: quinn::RecvStream,
}

/// Limits for a job's stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Largest frame accepted.
    pub max_frame: u32,
    /// Longest silence accepted.
    pub message_timeout: Duration,
    /// Largest set accepted from the peer.
    pub max_peer_set_size: u64,
}

/// The requester's side of an accepted job, on a freshly opened stream.
pub async fn run_requester(
    boundary: &Boundary,
    accepted: Accepted,
    streams: JobStreams,
    limits: StreamLimits,
    out: Option<PathBuf>,
) -> Result<JobReport, JobError> {
    let mut stream = JobStream::new(streams, limits.max_frame, limits.message_timeout);
    stream.send(&PeerMessage::JobRequest(wire::JobRequest {
        job_id: accepted.job_id,
        protocol: accepted.protocol,
        dataset: accepted.peer_dataset.clone(),
        requester_dataset: accepted.local_dataset.clone(),
    }));
    let result = requester_exchange(&mut stream, &accepted, limits).await;
    let output = match result {
        Ok(output) => output,
        Err(error) => {
            let (bytes_sent, bytes_received) = stream.fail(&error).await;
            let outcome = match error {
                JobError::Refused(_) => Outcome::Refused,
                _ => Outcome::Failed,
            };
            record_end(
                boundary,
                &accepted,
                outcome,
                None,
                bytes_sent,
                bytes_received,
                Some(error.to_string()),
                None,
            );
            return Err(error);
        }
    };
    stream.send(&PeerMessage::JobFinished);
    let (bytes_sent, bytes_received) = stream.close().await;
    let duration_ms = accepted.started.elapsed().as_millis() as u64;

    let mut report = JobReport {
        job_id: accepted.job_id.to_string(),
        peer: accepted.peer.name.clone(),
        protocol: accepted.protocol.name().into(),
        own_set_size: accepted.data.ids().len() as u64,
        own_empty_id_rows: accepted.data.summary().empty_id_rows,
        peer_set_size: output.peer_set_size,
        intersection_size: output.result.size(),
        out: None,
        rows_written: None,
        bytes_sent,
        bytes_received,
        duration_ms,
    };
    let written = match &out {
        Some(path) => write_output(&accepted, &output, &report, path)
            .await
            .map(Some),
        None => Ok(None),
    };
    let result_text = format!("intersection size {}", report.intersection_size);
    match written {
        Ok(rows) => {
            report.out = out;
            report.rows_written = rows;
            record_end(
                boundary,
                &accepted,
                Outcome::Completed,
                Some(output.peer_set_size),
                bytes_sent,
                bytes_received,
                None,
                Some(result_text),
            );
            Ok(report)
        }
        Err(error) => {
            // The result was computed, and is recorded, but could not be saved.
            record_end(
                boundary,
                &accepted,
                Outcome::Failed,
                Some(output.peer_set_size),
                bytes_sent,
                bytes_received,
                Some(error.to_string()),
                Some(result_text),
            );
            Err(error)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn record_end(
    boundary: &Boundary,
    accepted: &Accepted,
    outcome: Outcome,
    peer_set_size: Option<u64>,
    bytes_sent: u64,
    bytes_received: u64,
    detail: Option<String>,
    result: Option<String>,
) {
    boundary.finish(
        accepted,
        &JobEnd {
            outcome,
            local_set_size: Some(accepted.data.ids().len() as u64),
            peer_set_size,
            bytes_sent,
            bytes_received,
            duration: accepted.started.elapsed(),
            detail,
            result,
        },
    );
}

async fn requester_exchange(
    stream: &mut JobStream,
    accepted: &Accepted,
    limits: StreamLimits,
) -> Result<PsiOutput, JobError> {
    match stream.recv().await? {
        PeerMessage::JobAccepted => {}
        PeerMessage::JobRefused { reason } => return Err(JobError::Refused(reason)),
        other => return Err(unexpected("JobAccepted", &other)),
    }
    let session = session(accepted.job_id, accepted.protocol, limits.max_peer_set_size);
    let data = accepted.data.clone();
    let (state, messages) =
        blocking(move || Requester::start(session, data.ids(), &mut OsRng)).await?;
    for message in messages {
        stream.send(&PeerMessage::Psi(message));
    }
    let mut state = RequesterState::from(state);
    loop {
        let message = match stream.recv().await? {
            PeerMessage::Psi(message) => message,
            other => return Err(unexpected("a PSI message", &other)),
        };
        let step = blocking(move || state.handle(message)).await??;
        for message in step.send {
            stream.send(&PeerMessage::Psi(message));
        }
        match step.next {
            Progress::Continue(next) => state = next,
            Progress::Done(output) => return Ok(output),
        }
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
        report.intersection_size, report.own_set_size, report.peer_set_size
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

/// The responder's side: reads the request, passes it through the boundary,
/// and runs the protocol if it is accepted.
pub async fn serve_stream(
    boundary: &Boundary,
    peer: crate::store::Peer,
    streams: JobStreams,
    limits: StreamLimits,
) {
    let mut stream = JobStream::new(streams, limits.max_frame, limits.message_timeout);
    let request = match stream.recv().await {
        Ok(PeerMessage::JobRequest(request)) => request,
        Ok(other) => {
            let error = unexpected("JobRequest", &other);
            tracing::warn!(peer = %peer.name, "refused a stream: {error}");
            stream.fail(&error).await;
            return;
        }
        Err(error) => {
            tracing::warn!(peer = %peer.name, "dropped a stream before any job: {error}");
            stream.fail(&error).await;
            return;
        }
    };
    let proposal = crate::boundary::JobProposal {
        job_id: request.job_id,
        protocol: request.protocol,
        local_dataset: request.dataset,
        peer_dataset: request.requester_dataset,
    };
    let accepted = match boundary.admit_incoming(&peer, proposal) {
        Ok(accepted) => accepted,
        Err(Refusal {
            public_reason,
            local_reason,
        }) => {
            tracing::info!(peer = %peer.name, job = %request.job_id, "refused a job: {local_reason}");
            stream.send(&PeerMessage::JobRefused {
                reason: public_reason,
            });
            stream.close().await;
            return;
        }
    };
    stream.send(&PeerMessage::JobAccepted);
    let result = responder_exchange(&mut stream, &accepted, limits).await;
    let (outcome, peer_set_size, detail) = match &result {
        Ok(peer_set_size) => (Outcome::Completed, Some(*peer_set_size), None),
        Err(error) => (Outcome::Failed, None, Some(error.to_string())),
    };
    let (bytes_sent, bytes_received) = match &result {
        Ok(_) => stream.close().await,
        Err(error) => {
            tracing::warn!(peer = %peer.name, job = %accepted.job_id, "job failed: {error}");
            stream.fail(error).await
        }
    };
    record_end(
        boundary,
        &accepted,
        outcome,
        peer_set_size,
        bytes_sent,
        bytes_received,
        detail,
        // The responder learns no result: the requester alone receives it.
        None,
    );
}

async fn responder_exchange(
    stream: &mut JobStream,
    accepted: &Accepted,
    limits: StreamLimits,
) -> Result<u64, JobError> {
    let session = session(accepted.job_id, accepted.protocol, limits.max_peer_set_size);
    let data = accepted.data.clone();
    let (state, messages) =
        blocking(move || Responder::start(session, data.ids(), &mut OsRng)).await?;
    for message in messages {
        stream.send(&PeerMessage::Psi(message));
    }
    let mut state = ResponderState::from(state);
    let peer_set_size = loop {
        let message: PsiMessage = match stream.recv().await? {
            PeerMessage::Psi(message) => message,
            other => return Err(unexpected("a PSI message", &other)),
        };
        let step = blocking(move || state.handle(message, &mut OsRng)).await??;
        for message in step.send {
            stream.send(&PeerMessage::Psi(message));
        }
        match step.next {
            Progress::Continue(next) => state = next,
            Progress::Done(output) => break output.peer_set_size,
        }
    };
    // The job is complete once the requester confirms it has its output.
    match stream.recv().await? {
        PeerMessage::JobFinished => Ok(peer_set_size),
        other => Err(unexpected("JobFinished", &other)),
    }
}
