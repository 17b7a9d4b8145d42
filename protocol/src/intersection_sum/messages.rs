use serde::{Deserialize, Serialize};

use super::MAX_CHUNK_POINTS;
use crate::group::EncodedPoint;

/// An ElGamal ciphertext on the wire: its two points' canonical encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedCiphertext {
    /// `r·G`.
    pub c1: EncodedPoint,
    /// `m·G + r·P`.
    pub c2: EncodedPoint,
}

/// One of the responder's rows: its blinded id and a ciphertext per slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedRow {
    /// `H(y)^b`.
    pub blinded_id: EncodedPoint,
    /// One per slot of the session's layout.
    pub ciphertexts: Vec<EncodedCiphertext>,
}

/// A Schnorr proof that the sender knows the secret of its ElGamal share,
/// bound to the job and the sender's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProof {
    /// `k·G` for the prover's nonce `k`.
    pub commitment: EncodedPoint,
    /// `k + c·x`, a canonical scalar.
    pub response: [u8; 32],
}

/// A message of the intersection-sum protocol.
///
/// Group elements travel as their 32-byte canonical encodings, at most
/// [`MAX_CHUNK_POINTS`] in one message; the receiver decodes each one
/// canonically.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Requester to responder: its set size and ElGamal public share.
    RequesterHello {
        /// The requester's number of distinct ids.
        set_size: u64,
        /// `X1 = x1·G`.
        elgamal_key: EncodedPoint,
        /// The requester's proof that it knows `x1`.
        key_proof: KeyProof,
    },
    /// Responder to requester: its set size and ElGamal public share.
    ResponderHello {
        /// The responder's number of rows.
        set_size: u64,
        /// `X2 = x2·G`.
        elgamal_key: EncodedPoint,
        /// The responder's proof that it knows `x2`.
        key_proof: KeyProof,
    },
    /// Requester to responder: `H(x)^a` for a chunk of its ids.
    RequesterBlinded(Vec<EncodedPoint>),
    /// Responder to requester: `H(x)^ab`, shuffled, for a chunk.
    DoubleBlinded(Vec<EncodedPoint>),
    /// Responder to requester: a chunk of its encrypted rows, shuffled.
    ResponderRows(Vec<EncryptedRow>),
    /// Requester to responder: the re-randomised sum of each slot.
    SumCiphertexts(Vec<EncodedCiphertext>),
    /// Responder to requester: `x2·C1 − offset·G` for each slot's sum.
    PartialDecryptions(Vec<EncodedPoint>),
}

impl Message {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RequesterHello { .. } => "RequesterHello",
            Self::ResponderHello { .. } => "ResponderHello",
            Self::RequesterBlinded(_) => "RequesterBlinded",
            Self::DoubleBlinded(_) => "DoubleBlinded",
            Self::ResponderRows(_) => "ResponderRows",
            Self::SumCiphertexts(_) => "SumCiphertexts",
            Self::PartialDecryptions(_) => "PartialDecryptions",
        }
    }

    /// Number of group elements the message carries.
    pub fn element_count(&self) -> usize {
        match self {
            Self::RequesterHello { .. } | Self::ResponderHello { .. } => 2,
            Self::RequesterBlinded(p) | Self::DoubleBlinded(p) | Self::PartialDecryptions(p) => {
                p.len()
            }
            Self::ResponderRows(rows) => rows.iter().map(|r| 1 + 2 * r.ciphertexts.len()).sum(),
            Self::SumCiphertexts(c) => 2 * c.len(),
        }
    }

    /// The largest encoded size of any message, in bytes: a full chunk of
    /// points, a length prefix per row (rows are at least three points),
    /// and the enum tag and outer length. Framing layers use it to bound
    /// what they accept before decoding.
    pub const MAX_ENCODED_LEN: usize = MAX_CHUNK_POINTS * 32 + MAX_CHUNK_POINTS / 3 * 3 + 48;

    /// Encodes the message with postcard.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    /// Decodes one whole message; trailing bytes and non-canonical
    /// encodings are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::Error> {
        crate::codec::decode_canonical(bytes, Self::MAX_ENCODED_LEN, Self::kind)
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RequesterHello { set_size, .. } | Self::ResponderHello { set_size, .. } => {
                write!(f, "{} {{ set_size: {set_size} }}", self.kind())
            }
            _ => write!(f, "{}({} elements)", self.kind(), self.element_count()),
        }
    }
}

/// Splits items into messages of at most `chunk` items.
pub(super) fn chunked<T>(
    items: Vec<T>,
    chunk: usize,
    wrap: fn(Vec<T>) -> Message,
) -> impl Iterator<Item = Message> {
    let mut items = items.into_iter().peekable();
    std::iter::from_fn(move || {
        items.peek()?;
        Some(wrap(items.by_ref().take(chunk).collect()))
    })
}
