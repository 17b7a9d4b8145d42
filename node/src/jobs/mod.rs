//! Jobs: what the node runs once a job has passed the boundary.
//!
//! Every job runs over per-peer QUIC streams ([`stream`]): [`psi`] runs
//! ECDH-PSI and PSI-CA between two nodes, [`isum`] private intersection-sum
//! in the same shell; [`stats`] runs horizontal
//! statistics among N nodes with the secret-sharing engine, its messages
//! routed by party ([`mesh`]).

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::wire::PeerMessage;

pub mod connect;
mod driver;
pub mod isum;
mod mesh;
pub mod psi;
mod report;
pub mod stats;
pub(crate) mod stream;

pub use report::{JobError, JobReport};
use stream::JobStream;
pub use stream::explain_close;

/// What a refused handshake usually means, for every place that reports one:
/// a refused client certificate can surface at connect, at opening the
/// stream or at the first read, depending on timing.
pub const HANDSHAKE_HINT: &str = "if this is a TLS or certificate error, the peer has not registered this node's fingerprint (compare `unseen id` here with `unseen peer list` there)";

pub(crate) fn unexpected(expected: &'static str, message: &PeerMessage) -> JobError {
    JobError::Unexpected {
        expected,
        received: message.kind(),
    }
}

/// A CSPRNG for one step of a job, seeded from the operating system.
/// `OsRng` costs a system call per draw; a secure sum of 2^20 values draws
/// 2^21 times, and a shuffle of 2^20 ids 2^20 times. The generator lives
/// only for the step that draws from it.
pub(crate) fn step_rng() -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    rand_chacha::ChaCha20Rng::from_entropy()
}

pub(crate) async fn blocking<T: Send + 'static>(
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

impl JobStreams {
    /// The certificate the peer presented in the handshake.
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        crate::transport::tls::peer_certificate(&self.connection)
    }
}

/// Limits for a job's stream.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Largest frame accepted.
    pub max_frame: u32,
    /// Longest silence accepted.
    pub message_timeout: Duration,
    /// Largest set accepted from the peer.
    pub max_peer_set_size: u64,
    /// The node's limits, for each job's deadline.
    pub limits: crate::config::Limits,
    /// Where the node counts what its jobs hold.
    pub counters: Arc<crate::counters::NodeCounters>,
}

impl StreamLimits {
    pub(crate) fn stream(&self, streams: JobStreams) -> JobStream {
        JobStream::new(
            streams,
            self.max_frame,
            self.message_timeout,
            self.counters.clone(),
        )
    }
}

/// A stream a peer opened: reads its first message and hands it to the job
/// it starts (a PSI request, a stats request) or joins (a stats hello).
pub async fn serve_stream(
    boundary: &crate::boundary::Boundary,
    stats: &stats::StatsNode,
    peer: crate::store::Peer,
    streams: JobStreams,
    limits: StreamLimits,
) -> psi::Served {
    let peer_cert = streams.peer_certificate();
    let fingerprint = peer_cert.as_ref().map(crate::identity::Fingerprint::of);
    let mut stream = limits.stream(streams);
    let first = stream.recv().await;
    match (first, fingerprint) {
        (Ok(PeerMessage::JobRequest(request)), _) => {
            psi::serve_request(boundary, peer, peer_cert, stream, request, limits).await
        }
        (Ok(PeerMessage::StatsRequest(request)), _) => stats.serve(peer, stream, request).await,
        (Ok(PeerMessage::StatsHello { job_id, from }), Some(fingerprint)) => {
            stats::arrive(&stats.registry, fingerprint, stream, job_id, from).await;
            psi::Served::Ran
        }
        (Ok(other), _) => {
            let error = unexpected("a job request", &other);
            tracing::warn!(peer = %peer.name, "refused a stream: {error}");
            stream.fail(&error).await;
            psi::Served::Refused
        }
        (Err(error), _) => {
            tracing::warn!(peer = %peer.name, "dropped a stream before any job: {error}");
            stream.fail(&error).await;
            psi::Served::Refused
        }
    }
}
