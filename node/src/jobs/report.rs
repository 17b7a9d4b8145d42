//! What a PSI job ends with: its report, or why it failed.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::transport::frame::FrameError;
use crate::wire::{self, AbortCode, PeerMessage, WireError};

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
    /// The whole job ran past its deadline.
    #[error(
        "the job ran past its deadline of {0:?} (limits.job_seconds_base and job_seconds_per_million_ids set it)"
    )]
    Deadline(Duration),
    /// The stream closed early.
    #[error("the peer closed the job's stream early")]
    Closed,
    /// The connection closed under the job. A peer that has not registered
    /// our certificate closes it with a TLS error right after the handshake.
    #[error("the connection was closed: {0}")]
    ConnectionClosed(String),
    /// Writing the output failed.
    #[error("{0}")]
    Output(String),
    /// The peer's release terms are not usable.
    #[error(
        "the peer's release terms are unusable: {0}; its node must send the terms its epsilon and delta give"
    )]
    BadReleaseTerms(String),
    /// An internal task failed.
    #[error("internal error: {0}")]
    Internal(String),
    /// Something went wrong with one party of a job of several.
    #[error("{party}: {error}")]
    Party {
        /// The party, by the name this node knows it by.
        party: String,
        /// What went wrong.
        error: Box<JobError>,
    },
}

impl JobError {
    /// This error, said of `party`.
    pub fn from_party(self, party: &str) -> Self {
        match self {
            Self::Party { .. } => self,
            error => Self::Party {
                party: party.to_string(),
                error: Box::new(error),
            },
        }
    }

    /// The abort to send the peer for this error, if one should be sent.
    pub(super) fn abort(&self) -> Option<PeerMessage> {
        let (code, reason) = match self {
            Self::Party { error, .. } => return error.abort(),
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
            Self::Timeout(_) | Self::Deadline(_) => (AbortCode::Timeout as u16, self.to_string()),
            Self::BadReleaseTerms(_) => (AbortCode::BadReleaseTerms as u16, self.to_string()),
            Self::Connect { .. } | Self::Output(_) | Self::Internal(_) => {
                (AbortCode::Internal as u16, "the peer's node failed".into())
            }
        };
        Some(PeerMessage::Abort {
            code,
            reason: wire::reason(&reason),
        })
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
    /// The purpose stated.
    pub purpose: String,
    /// Our grant the job ran under.
    pub grant: String,
    /// Distinct ids this node used.
    pub own_set_size: u64,
    /// Rows of our file with an empty id, left out.
    pub own_empty_id_rows: u64,
    /// Distinct ids the peer used (with padding, if the peer added noise).
    pub peer_set_size: u64,
    /// The size of the intersection (noisy if `noise` is set), or `None` if
    /// the release rules suppressed it.
    pub intersection_size: Option<u64>,
    /// Why the result was suppressed.
    pub suppressed: Option<String>,
    /// The noise in the result: mechanism and epsilon.
    pub noise: Option<String>,
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
