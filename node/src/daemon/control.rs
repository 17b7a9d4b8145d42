//! The local control endpoint: how the `unseen` CLI asks a serving node to
//! run a job.
//!
//! It is a Unix socket, `control.sock` in the node directory (mode 0700),
//! created with mode 0600: only the node's own operating-system user can
//! connect, so it needs no token. The node also checks each caller's user id
//! from the kernel's peer credentials, so a mode loosened by hand still lets
//! no one else in. Each connection carries one JSON request line and gets one
//! JSON response line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::jobs::JobReport;

/// The longest request line accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A request from the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Is the node serving, and who is it?
    Ping,
    /// The registered peers changed: read them again, and close the live
    /// connections of any peer no longer registered.
    PeersChanged,
    /// Run a PSI job as the requester.
    RunPsi {
        /// The registered peer to run it with.
        peer: String,
        /// Our registered dataset.
        dataset: String,
        /// The peer's dataset name.
        peer_dataset: String,
        /// Learn only the intersection's size.
        cardinality_only: bool,
        /// The purpose, as the grants on both sides name it.
        purpose: String,
        /// Retry this failed job (same id, no new charge).
        retry: Option<unseen_protocol::JobId>,
        /// Absolute path for the output file.
        out: Option<PathBuf>,
    },
    /// Run a stats job as its requester.
    RunStats {
        /// The job, checked by the CLI and again by the node.
        spec: Box<crate::stats::StatsSpec>,
    },
    /// Run an intersection-sum job as the requester.
    RunIntersectionSum {
        /// The registered peer to run it with.
        peer: String,
        /// Our registered dataset (its ids).
        dataset: String,
        /// The peer's dataset name.
        peer_dataset: String,
        /// The purpose, as the grants on both sides name it.
        purpose: String,
        /// The peer's columns to sum and group by, and the limbs.
        sum: crate::manifest::IsumRequest,
    },
}

/// The node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum ControlResponse {
    /// Answer to [`ControlRequest::Ping`].
    Pong {
        /// The node's name.
        name: String,
        /// Where it listens for peers.
        listen: String,
        /// What it holds and has turned away.
        #[serde(default)]
        counters: crate::counters::CountersSnapshot,
    },
    /// Answer to [`ControlRequest::PeersChanged`].
    PeersReloaded {
        /// Live connections closed because their peer was removed.
        closed: usize,
    },
    /// A job finished.
    Job(Box<JobReport>),
    /// A stats job's released statistics.
    Stats(Box<crate::stats::StatsReport>),
    /// An intersection-sum job's released result.
    IntersectionSum(Box<crate::jobs::isum::IsumReport>),
    /// A line of progress while a long request runs; the answer follows.
    Progress {
        /// What the node is doing now.
        message: String,
    },
    /// The request failed; `message` says why and what to do.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Why the CLI could not talk to its node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No node is serving from that directory.
    #[error(
        "the node in {} is not serving (no control socket); start it with `unseen serve {}`",
        dir.display(), dir.display()
    )]
    NotServing {
        /// The node directory.
        dir: PathBuf,
    },
    /// The connection failed.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node answered something unreadable.
    #[error("the node sent an unreadable answer: {0}")]
    BadResponse(String),
}

/// Sends one request to the node serving from `dir` and waits for the answer
/// (progress lines are skipped).
pub async fn request(
    dir: &Path,
    socket: &Path,
    req: &ControlRequest,
) -> Result<ControlResponse, ControlError> {
    request_with_progress(dir, socket, req, |_| {}).await
}

/// Sends one request and waits for the answer, handing each progress line
/// the node sends meanwhile to `on_progress`.
pub async fn request_with_progress(
    dir: &Path,
    socket: &Path,
    req: &ControlRequest,
    mut on_progress: impl FnMut(&str),
) -> Result<ControlResponse, ControlError> {
    let io = |source| ControlError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ControlError::NotServing {
                    dir: dir.to_path_buf(),
                }
            }
            _ => io(e),
        })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(|e| ControlError::BadResponse(e.to_string()))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(io)?;
    write.shutdown().await.map_err(io)?;
    let mut reader = BufReader::new(read);
    loop {
        let mut answer = String::new();
        reader.read_line(&mut answer).await.map_err(io)?;
        let response: ControlResponse = serde_json::from_str(&answer)
            .map_err(|e| ControlError::BadResponse(format!("{e}: {answer:?}")))?;
        match response {
            ControlResponse::Progress { message } => on_progress(&message),
            response => return Ok(response),
        }
    }
}

/// Refuses a caller whose user id is not `node_uid`, the user the node runs
/// as (the owner of the socket it created).
pub(crate) fn check_caller(stream: &UnixStream, node_uid: u32) -> Result<(), String> {
    let caller = stream
        .peer_cred()
        .map_err(|e| format!("cannot tell who is calling the control socket: {e}"))?
        .uid();
    if caller == node_uid {
        Ok(())
    } else {
        Err(format!(
            "the control socket serves only the node's own user (uid {node_uid}), not uid {caller}; run the CLI as the user that runs `unseen serve`"
        ))
    }
}

/// Reads one request line from a control connection, bounded in size.
pub(crate) async fn read_request(stream: &mut UnixStream) -> Result<ControlRequest, String> {
    let mut reader = BufReader::new(stream).take(MAX_REQUEST_BYTES as u64 + 1);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if line.len() > MAX_REQUEST_BYTES {
        return Err(format!("request over {MAX_REQUEST_BYTES} bytes"));
    }
    serde_json::from_str(&line)
        .map_err(|e| format!("malformed request ({e}); use the `unseen` CLI"))
}

/// Writes a progress line; the connection stays open for the answer.
pub(crate) async fn write_progress(stream: &mut UnixStream, message: &str) {
    let progress = ControlResponse::Progress {
        message: message.to_string(),
    };
    let mut line = serde_json::to_vec(&progress).unwrap_or_default();
    line.push(b'\n');
    let _ = stream.write_all(&line).await;
}

/// Writes the response line.
pub(crate) async fn write_response(stream: &mut UnixStream, response: &ControlResponse) {
    let mut line = serde_json::to_vec(response).unwrap_or_default();
    line.push(b'\n');
    let _ = stream.write_all(&line).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_nodes_own_user_is_served() {
        let (caller, _node_side) = UnixStream::pair().expect("socket pair");
        let own = caller.peer_cred().expect("credentials").uid();
        check_caller(&caller, own).expect("the node's own user");
        let refused = check_caller(&caller, own.wrapping_add(1)).expect_err("another user");
        assert!(
            refused.contains(&format!("not uid {own}")) && refused.contains("run the CLI as"),
            "{refused}"
        );
    }
}
