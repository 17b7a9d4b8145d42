use thiserror::Error;

/// Why a protocol run stopped.
///
/// Every variant belongs to one [`ErrorCategory`] and maps to an abort code
/// the node sends to the peer, so both sides record the same reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A message arrived that the current state does not accept.
    #[error("protocol violation: expected {expected}, received {received}")]
    UnexpectedMessage {
        /// What the state expected.
        expected: &'static str,
        /// What arrived.
        received: &'static str,
    },
    /// The peer sent a group element that is not a canonical encoding of a
    /// non-identity ristretto255 point.
    #[error("peer sent an invalid group element at position {index}: {reason}")]
    InvalidPoint {
        /// Position of the element in the peer's stream of elements.
        index: u64,
        /// What is wrong with it.
        reason: InvalidPointReason,
    },
    /// The peer announced a set larger than this job allows.
    #[error("peer announced {announced} elements, above this job's limit of {limit}")]
    SetTooLarge {
        /// Elements the peer announced.
        announced: u64,
        /// The limit the session was started with.
        limit: u64,
    },
    /// The peer announced a set smaller than this job allows.
    #[error("peer announced {announced} elements, below this job's minimum of {minimum}")]
    SetTooSmall {
        /// Elements the peer announced.
        announced: u64,
        /// The minimum the session was started with.
        minimum: u64,
    },
    /// The peer sent more elements than it announced, or a chunk that is empty
    /// or over the chunk limit.
    #[error("peer sent a malformed chunk: {0}")]
    BadChunk(&'static str),
    /// The noise terms the peer's node sent for this job cannot describe
    /// what the peer announced, or overflow when added to our sizes. Checked
    /// before the terms are used for anything.
    #[error(
        "peer's noise terms are unusable (offset {offset}, {total} dummies, {announced} elements announced): {problem}; its node must send the terms dp::ReleaseParams computes"
    )]
    BadNoiseTerms {
        /// The offset the requester was told to subtract.
        offset: u64,
        /// The dummies the requester was told to expect in each list.
        total: u64,
        /// The set size the peer announced.
        announced: u64,
        /// What is wrong with them.
        problem: &'static str,
    },
    /// A message came from a party that may not send it: outside the job,
    /// this party itself, or a second one where one was expected.
    #[error("party {from} may not send this message: {problem}")]
    WrongParty {
        /// The sending party's index in the job.
        from: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A share message carries the wrong number of values for the job.
    #[error("party {from} sent {found} shares where the job has {expected} values")]
    WrongShareCount {
        /// The sending party's index in the job.
        from: usize,
        /// Values in the job.
        expected: usize,
        /// Values received.
        found: usize,
    },
    /// The dealer's correction vector has the wrong number of triples.
    #[error("the dealer sent {found} shares of c where the job has {expected} products")]
    WrongDealerCount {
        /// Products in the job.
        expected: usize,
        /// Shares received.
        found: usize,
    },
    /// A message carries a number of ciphertexts (or decryption shares)
    /// other than the agreed layout's.
    #[error("peer sent {found} {what} where the layout has {expected}")]
    WrongCiphertextCount {
        /// What was counted.
        what: &'static str,
        /// What the layout requires.
        expected: usize,
        /// What arrived.
        found: usize,
    },
    /// A decrypted value has no discrete logarithm in `0..=bound`: the
    /// peer's ciphertexts or decryption shares are not what the protocol
    /// makes, since an honest run stays within the bound.
    #[error(
        "a decrypted sum is not in 0..={bound}: the peer's ciphertexts or decryption shares are wrong"
    )]
    DecryptionOutOfRange {
        /// The largest value the protocol allows here.
        bound: u64,
    },
    /// The peer's proof that it knows the secret of its key share does not
    /// verify.
    #[error("peer's proof of knowledge of its key share does not verify")]
    BadKeyProof,
    /// A message could not be decoded.
    #[error("undecodable message: {0}")]
    Undecodable(String),
    /// The peer sent a list that holds some element twice, where every
    /// element stands for a distinct id.
    #[error("peer repeated an element in {what}, where each stands for a distinct id")]
    DuplicateElement {
        /// Which list.
        what: &'static str,
    },
    /// The peer announced counts of unmatched ids that the two set sizes
    /// cannot give (Private-ID's `Differences`).
    #[error(
        "peer announced {requester_only} requester-only and {responder_only} responder-only ids: {problem}"
    )]
    BadDifferences {
        /// Requester ids the responder does not hold, as announced.
        requester_only: u64,
        /// Responder ids the requester does not hold, as announced.
        responder_only: u64,
        /// What is wrong with them.
        problem: &'static str,
    },
}

/// Why a group element was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidPointReason {
    /// The 32 bytes are not the canonical encoding of any ristretto255 point.
    NonCanonical,
    /// The element is the group identity, which would make every match trivial.
    Identity,
}

impl std::fmt::Display for InvalidPointReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NonCanonical => "not a canonical ristretto255 encoding",
            Self::Identity => "the identity element",
        })
    }
}

/// The few kinds of failure a caller needs to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// Bytes that do not decode to a message.
    Undecodable,
    /// A well-formed message that breaks the protocol.
    PeerMisbehaved,
}

impl Error {
    /// The category this error falls into.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Self::Undecodable(_) => ErrorCategory::Undecodable,
            Self::UnexpectedMessage { .. }
            | Self::InvalidPoint { .. }
            | Self::SetTooLarge { .. }
            | Self::SetTooSmall { .. }
            | Self::BadChunk(_)
            | Self::BadNoiseTerms { .. }
            | Self::WrongParty { .. }
            | Self::WrongShareCount { .. }
            | Self::DuplicateElement { .. }
            | Self::BadDifferences { .. }
            | Self::WrongDealerCount { .. }
            | Self::WrongCiphertextCount { .. }
            | Self::DecryptionOutOfRange { .. }
            | Self::BadKeyProof => ErrorCategory::PeerMisbehaved,
        }
    }

    /// The code sent to the peer when this error aborts a job.
    pub fn abort_code(&self) -> u16 {
        match self {
            Self::Undecodable(_) => 1,
            Self::UnexpectedMessage { .. } => 2,
            Self::InvalidPoint { .. } => 3,
            Self::SetTooLarge { .. } => 4,
            Self::BadChunk(_) => 5,
            Self::SetTooSmall { .. } => 6,
            Self::BadNoiseTerms { .. } => 7,
            Self::WrongParty { .. } => 8,
            Self::WrongShareCount { .. } => 9,
            Self::DuplicateElement { .. } => 10,
            Self::BadDifferences { .. } => 11,
            Self::WrongDealerCount { .. } => 12,
            Self::WrongCiphertextCount { .. } => 13,
            Self::DecryptionOutOfRange { .. } => 14,
            Self::BadKeyProof => 15,
        }
    }
}
