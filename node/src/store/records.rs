//! The records the store hands out.

use super::*;

pub use crate::policy::Role;

/// A registered peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The name this node knows the peer by.
    pub name: String,
    /// Where the peer's node listens (`host:port`).
    pub addr: String,
    /// The peer certificate's fingerprint, hex.
    pub fingerprint: String,
    /// When it was registered (RFC 3339, UTC).
    pub added_at: String,
}

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The name jobs use.
    pub name: String,
    /// What registration found in the file.
    pub summary: DatasetSummary,
    /// The owner's declarations: grade, legal basis, k.
    pub policy: Option<DataPolicy>,
    /// When it was (last) registered.
    pub registered_at: String,
}

/// How a job ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still running.
    Running,
    /// Finished; the result was released to the requester.
    Completed,
    /// Refused at the acceptance boundary.
    Refused,
    /// Started and then failed.
    Failed,
    /// The node stopped while the job ran.
    Interrupted,
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident = $text:literal),* }) => {
        impl $ty {
            /// The stored text form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
            pub(super) fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }
    };
}
text_enum!(Outcome {
    Running = "running",
    Completed = "completed",
    Refused = "refused",
    Failed = "failed",
    Interrupted = "interrupted"
});

/// One job, on this node's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id (32 hex digits), the same on both nodes.
    pub id: String,
    /// Our side.
    pub role: Role,
    /// The other node.
    pub peer: String,
    /// The other node's certificate fingerprint: retries are matched on it.
    pub peer_fingerprint: String,
    /// Protocol and mode, e.g. `ecdh-psi/cardinality`.
    pub protocol: String,
    /// Our dataset.
    pub local_dataset: String,
    /// The peer's dataset, as named in the request.
    pub peer_dataset: String,
    /// Distinct ids we used.
    pub local_set_size: Option<u64>,
    /// Distinct ids the peer used.
    pub peer_set_size: Option<u64>,
    /// Bytes we sent on the job's stream.
    pub bytes_sent: u64,
    /// Bytes we received on it.
    pub bytes_received: u64,
    /// When the job started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it ran.
    pub duration_ms: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or failed.
    pub detail: Option<String>,
    /// What was released to this node, if anything.
    pub result: Option<String>,
    /// The purpose the job stated.
    pub purpose: Option<String>,
    /// The grant it ran under on this node.
    pub grant_id: Option<String>,
    /// How many times it was started (retries reuse the id and the charge).
    pub attempts: u64,
    /// Protocol messages (blinded data) sent to the peer.
    pub data_messages_sent: u64,
    /// Protocol messages received from the peer.
    pub data_messages_received: u64,
    /// Whether a data-bearing message may have left this node under this
    /// id. Set when the job is admitted and cleared only on this node's own
    /// evidence at its end, so a node killed mid-job counts it as sent.
    pub data_left: bool,
}

/// How a running job ended, to be written to its record.
#[derive(Debug, Clone)]
pub struct JobEnd {
    /// The outcome.
    pub outcome: Outcome,
    /// Distinct ids we used.
    pub local_set_size: Option<u64>,
    /// Distinct ids the peer used.
    pub peer_set_size: Option<u64>,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Protocol messages sent.
    pub data_messages_sent: u64,
    /// Protocol messages received.
    pub data_messages_received: u64,
    /// Run time.
    pub duration: Duration,
    /// Why it was refused or failed.
    pub detail: Option<String>,
    /// What was released to this node.
    pub result: Option<String>,
}
