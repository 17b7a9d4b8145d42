//! The messages nodes exchange on a job's stream, in a versioned envelope.
//!
//! Every frame's payload is `postcard(WIRE_VERSION as u16) || postcard(PeerMessage)`.
//! The version is decoded first, so a peer speaking another version gets a
//! clear error rather than a confusing decode failure.

mod bounds;

use serde::{Deserialize, Serialize};
use unseen_protocol::JobId;

pub use bounds::{
    MAX_CERTIFICATE_BYTES, MAX_FILTERS, MAX_NAME_BYTES, MAX_PURPOSE_BYTES, MAX_REASON_BYTES,
    MAX_RECIPIENTS, MAX_SIGNATURE_BYTES, MAX_SPEC_TEXT_BYTES, reason,
};

pub use crate::manifest::{IsumRequest, JobManifest, NoiseTerms, ProtocolRequest, ReleaseTerms};
pub use crate::stats_manifest::{StatsAcceptance, StatsManifest, StatsTerms};
use unseen_protocol::ecdh_psi::Message as PsiMessage;
use unseen_protocol::intersection_sum::Message as IsumMessage;
use unseen_protocol::sharing::SumMessage;

/// The envelope version this node speaks. 2: secure-sum shares travel as
/// fixed-width byte strings. (Intersection-sum's variants came within 2:
/// no released node spoke 2 before them.)
pub const WIRE_VERSION: u16 = 2;

/// A message on a job's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Requester to responder, first on the stream: what the job is.
    JobRequest(JobRequest),
    /// Responder: the job passed its acceptance boundary.
    JobAccepted(JobAcceptance),
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
    // New variants go last: the variant index is the wire tag.
    /// Requester to each other party of a stats job, first on the stream.
    StatsRequest(StatsRequest),
    /// A party: the stats job passed its boundary, with its signed terms.
    StatsAccepted(StatsAcceptance),
    /// Requester to every party: all parties' agreements, in party order.
    /// Shares flow only after this.
    StatsGo(Vec<StatsAcceptance>),
    /// First on a stream between two parties of a stats job other than the
    /// requester: which job, and which party opens it.
    StatsHello {
        /// The job id.
        job_id: String,
        /// The opening party's index.
        from: u16,
    },
    /// Shares of the secure sum in Z_2^64 (data-bearing).
    Shares(SumMessage<u64>),
    /// Shares of the secure sum in Z_2^128, for sums of squares
    /// (data-bearing).
    Shares128(SumMessage<u128>),
    /// A message of the intersection-sum protocol (data-bearing).
    Isum(IsumMessage),
}

/// A stats job, as the requester asks another party to join it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRequest {
    /// The job.
    pub manifest: StatsManifest,
    /// The requester's own signed agreement (party 0).
    pub requester: StatsAcceptance,
}

impl PeerMessage {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::JobRequest(_) => "JobRequest",
            Self::JobAccepted(_) => "JobAccepted",
            Self::JobRefused { .. } => "JobRefused",
            Self::Psi(m) => m.kind(),
            Self::JobFinished => "JobFinished",
            Self::Abort { .. } => "Abort",
            Self::StatsRequest(_) => "StatsRequest",
            Self::StatsAccepted(_) => "StatsAccepted",
            Self::StatsGo(_) => "StatsGo",
            Self::StatsHello { .. } => "StatsHello",
            Self::Shares(_) => "Shares",
            Self::Shares128(_) => "Shares128",
            Self::Isum(m) => m.kind(),
        }
    }

    /// Whether the message carries data derived from a party's records:
    /// once one has left a node, the job's charge stands.
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Self::Psi(_) | Self::Shares(_) | Self::Shares128(_) | Self::Isum(_)
        )
    }
}

/// What the requester asks the responder to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The job, as the requester signed it.
    pub manifest: JobManifest,
    /// The requester's signature of the manifest.
    pub requester_signature: Vec<u8>,
    /// How many distinct ids the requester will bring; the protocol holds
    /// it to this number.
    pub requester_set_size: u64,
}

impl JobRequest {
    /// The job id the manifest names.
    pub fn job_id(&self) -> Option<JobId> {
        JobId::parse(&self.manifest.job_id)
    }
}

/// The responder's acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAcceptance {
    /// The responder's grant the job runs under.
    pub responder_grant: String,
    /// The responder's countersignature of the manifest and grant.
    pub responder_signature: Vec<u8>,
    /// The rules the requester's node applies before releasing the result.
    pub terms: ReleaseTerms,
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
    /// The release terms in the acceptance are not the ones its epsilon and
    /// delta give.
    BadReleaseTerms = 105,
    /// Another party of a job of several failed or dropped.
    PartyFailed = 106,
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
    /// A string or list in the message is over its bound, or holds control
    /// characters.
    #[error("refused message: {0}")]
    Bounds(String),
}

/// Encodes a message in its envelope.
pub fn encode(message: &PeerMessage) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_allocvec(&(WIRE_VERSION, message)).unwrap_or_default()
}

/// Decodes one envelope; trailing bytes are an error, and so is any string
/// over its bound or holding control characters ([`bounds`]).
///
/// Only the canonical encoding is accepted: postcard's decoder also takes
/// overlong varints (`81 00` for 1), so the message is encoded again and must
/// give back exactly the bytes received. One message then has one spelling,
/// and nothing downstream (a signature, a log, a replay check) can be fed two.
pub fn decode(bytes: &[u8]) -> Result<PeerMessage, WireError> {
    let undecodable = |e: postcard::Error| WireError::Undecodable(e.to_string());
    let (version, rest) = postcard::take_from_bytes::<u16>(bytes).map_err(undecodable)?;
    if version != WIRE_VERSION {
        return Err(WireError::Version(version));
    }
    let message = match postcard::take_from_bytes::<PeerMessage>(rest).map_err(undecodable)? {
        (message, []) => message,
        (_, trailing) => {
            return Err(WireError::Undecodable(format!(
                "{} trailing bytes after the message",
                trailing.len()
            )));
        }
    };
    if encode(&message) != bytes {
        return Err(WireError::Undecodable(format!(
            "{} is not in its canonical encoding (overlong integer)",
            message.kind()
        )));
    }
    bounds::check(&message)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// postcard also decodes overlong varints (found by the `wire` fuzz
    /// target): one message must have exactly one encoding.
    #[test]
    fn only_the_canonical_encoding_decodes() {
        assert_eq!(decode(&[2, 4]), Ok(PeerMessage::JobFinished));
        for overlong in [
            vec![0x82, 0x00, 4],
            vec![2, 0x84, 0x00],
            vec![2, 2, 0x82, 0x00, b'n', b'o'],
        ] {
            assert!(
                matches!(decode(&overlong), Err(WireError::Undecodable(_))),
                "{overlong:02x?} decoded"
            );
        }
        let regression =
            include_bytes!("../../../../fuzz/regressions/wire/noncanonical-u64-varint");
        assert!(decode(regression).is_err());
    }

    #[test]
    fn envelope_bytes_are_pinned() {
        assert_eq!(encode(&PeerMessage::JobFinished), vec![2, 4]);
        let refused = PeerMessage::JobRefused {
            reason: "no".into(),
        };
        assert_eq!(encode(&refused), vec![2, 2, 2, b'n', b'o']);
        let psi = PeerMessage::Psi(PsiMessage::RequesterHello {
            set_size: 300,
            key_commitment: None,
        });
        assert_eq!(encode(&psi), vec![2, 3, 0, 0xac, 0x02, 0]);
        let accepted = PeerMessage::JobAccepted(JobAcceptance {
            responder_grant: "g".into(),
            responder_signature: vec![9],
            terms: ReleaseTerms {
                min_group_size: 10,
                noise: Some(NoiseTerms {
                    epsilon_micros: 1,
                    delta_nanos: 2,
                    offset: 3,
                    total: 6,
                }),
            },
        });
        let bytes = vec![2, 1, 1, b'g', 1, 9, 10, 1, 1, 2, 3, 6];
        assert_eq!(encode(&accepted), bytes);
        assert_eq!(decode(&bytes), Ok(accepted));
    }

    /// Intersection-sum messages are data-bearing, fit the frame floor at
    /// their largest, and a request's columns and categories are bounded.
    #[test]
    fn intersection_sum_messages_are_data_and_bounded() {
        let hello = PeerMessage::Isum(IsumMessage::RequesterHello {
            set_size: 3,
            elgamal_key: [7; 32],
            key_proof: unseen_protocol::intersection_sum::KeyProof {
                commitment: [8; 32],
                response: [9; 32],
            },
        });
        assert!(hello.is_data());
        assert_eq!(hello.kind(), "RequesterHello");
        assert_eq!(decode(&encode(&hello)), Ok(hello));
        let full = PeerMessage::Isum(IsumMessage::RequesterBlinded(vec![
            [1; 32];
            unseen_protocol::intersection_sum::MAX_CHUNK_POINTS
        ]));
        assert!(encode(&full).len() + 4 <= crate::config::min_frame_bytes() as usize);
        let manifest = |ask: IsumRequest| JobManifest {
            job_id: "0".repeat(32),
            requester: crate::manifest::Party {
                name: "a".into(),
                fingerprint: "aa".into(),
            },
            responder: crate::manifest::Party {
                name: "b".into(),
                fingerprint: "bb".into(),
            },
            protocol: ProtocolRequest::IntersectionSum(ask),
            requester_dataset: "x".into(),
            responder_dataset: "y".into(),
            purpose: "p".into(),
            result_recipients: vec!["aa".into()],
            requester_grant: "g".into(),
        };
        let request = |ask| {
            PeerMessage::JobRequest(JobRequest {
                manifest: manifest(ask),
                requester_signature: vec![1],
                requester_set_size: 1,
            })
        };
        let ask = IsumRequest {
            value_column: "amount".into(),
            category_column: Some("region".into()),
            categories: vec!["north".into(), "south".into()],
            value_limbs: 2,
        };
        let fine = request(ask.clone());
        assert_eq!(decode(&encode(&fine)), Ok(fine));
        for bad in [
            IsumRequest {
                categories: vec!["x".into(); 17],
                ..ask.clone()
            },
            IsumRequest {
                value_column: "v".repeat(MAX_NAME_BYTES + 1),
                ..ask.clone()
            },
            IsumRequest {
                categories: vec!["a\u{1b}[2J".into()],
                ..ask
            },
        ] {
            let bytes = encode(&request(bad));
            assert!(matches!(decode(&bytes), Err(WireError::Bounds(_))));
        }
    }

    #[test]
    fn other_versions_truncation_and_trailing_bytes_are_refused() {
        assert_eq!(decode(&[3, 1]), Err(WireError::Version(3)));
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
        assert!(matches!(decode(&[2, 77]), Err(WireError::Undecodable(_))));
    }
}
