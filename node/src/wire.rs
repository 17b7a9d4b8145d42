//! The messages nodes exchange on a job's stream, in a versioned envelope.
//!
//! Every frame's payload is `postcard(WIRE_VERSION as u16) || postcard(PeerMessage)`.
//! The version is decoded first, so a peer speaking another version gets a
//! clear error rather than a confusing decode failure.

use serde::{Deserialize, Serialize};
use unseen_protocol::JobId;
use unseen_protocol::ecdh_psi::{Message as PsiMessage, Mode};

/// The envelope version this node speaks.
pub const WIRE_VERSION: u16 = 1;

/// A message on a job's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Requester to responder, first on the stream: what the job is.
    JobRequest(JobRequest),
    /// Responder: the job passed its acceptance boundary.
    JobAccepted,
    /// Responder: the job was refused, with a reason that reveals nothing
    /// about the responder's data.
    JobRefused {
        /// Why, in words for the requester.
        reason: String,
    },
    /// A message of the ECDH-PSI protocol.
    Psi(PsiMessage),
    /// Requester: it has its output; the job is complete.
    JobFinished,
    /// Either side: the job stops here.
    Abort {
        /// See [`AbortCode`].
        code: u16,
        /// Why, in words.
        reason: String,
    },
}

impl PeerMessage {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::JobRequest(_) => "JobRequest",
            Self::JobAccepted => "JobAccepted",
            Self::JobRefused { .. } => "JobRefused",
            Self::Psi(m) => m.kind(),
            Self::JobFinished => "JobFinished",
            Self::Abort { .. } => "Abort",
        }
    }
}

/// What the requester asks the responder to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Chosen at random by the requester; unique per pair of nodes.
    pub job_id: JobId,
    /// The protocol.
    pub protocol: ProtocolRequest,
    /// The responder's dataset to use.
    pub dataset: String,
    /// The requester's dataset, for the responder's record.
    pub requester_dataset: String,
}

/// The protocols a job can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtocolRequest {
    /// ECDH-PSI in the given mode.
    EcdhPsi(Mode),
}

impl ProtocolRequest {
    /// The name used in job records, e.g. `ecdh-psi/cardinality`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EcdhPsi(Mode::Membership) => "ecdh-psi/membership",
            Self::EcdhPsi(Mode::Cardinality) => "ecdh-psi/cardinality",
        }
    }
}

/// Codes carried by [`PeerMessage::Abort`]. 1 to 99 are the protocol
/// crate's ([`unseen_protocol::Error::abort_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortCode {
    /// A frame did not decode.
    Undecodable = 100,
    /// A frame was over the size limit.
    FrameTooLarge = 101,
    /// A well-formed message arrived where another was expected.
    UnexpectedMessage = 102,
    /// The peer was silent for too long.
    Timeout = 103,
    /// The node failed for a reason of its own.
    Internal = 104,
}

/// Why a frame's payload is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The peer speaks another envelope version.
    #[error(
        "peer speaks wire version {0}, this node speaks {WIRE_VERSION}; upgrade the older node"
    )]
    Version(u16),
    /// The bytes are not a message.
    #[error("undecodable message: {0}")]
    Undecodable(String),
}

/// Encodes a message in its envelope.
pub fn encode(message: &PeerMessage) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_allocvec(&(WIRE_VERSION, message)).unwrap_or_default()
}

/// Decodes one envelope; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<PeerMessage, WireError> {
    let undecodable = |e: postcard::Error| WireError::Undecodable(e.to_string());
    let (version, rest) = postcard::take_from_bytes::<u16>(bytes).map_err(undecodable)?;
    if version != WIRE_VERSION {
        return Err(WireError::Version(version));
    }
    match postcard::take_from_bytes::<PeerMessage>(rest).map_err(undecodable)? {
        (message, []) => Ok(message),
        (_, trailing) => Err(WireError::Undecodable(format!(
            "{} trailing bytes after the message",
            trailing.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_bytes_are_pinned() {
        assert_eq!(encode(&PeerMessage::JobAccepted), vec![1, 1]);
        assert_eq!(encode(&PeerMessage::JobFinished), vec![1, 4]);
        let request = PeerMessage::JobRequest(JobRequest {
            job_id: JobId([0xaa; 16]),
            protocol: ProtocolRequest::EcdhPsi(Mode::Cardinality),
            dataset: "d".into(),
            requester_dataset: "e".into(),
        });
        let mut expected = vec![1, 0];
        expected.extend([0xaa; 16]);
        expected.extend([0, 1, 1, b'd', 1, b'e']);
        assert_eq!(encode(&request), expected);
        assert_eq!(decode(&expected), Ok(request));
        let psi = PeerMessage::Psi(PsiMessage::RequesterHello { set_size: 300 });
        assert_eq!(encode(&psi), vec![1, 3, 0, 0xac, 0x02]);
    }

    #[test]
    fn other_versions_truncation_and_trailing_bytes_are_refused() {
        assert_eq!(decode(&[2, 1]), Err(WireError::Version(2)));
        let bytes = encode(&PeerMessage::Abort {
            code: 3,
            reason: "bad point".into(),
        });
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} decoded");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(matches!(decode(&longer), Err(WireError::Undecodable(_))));
        assert!(matches!(decode(&[1, 77]), Err(WireError::Undecodable(_))));
    }
}
