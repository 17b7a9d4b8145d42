//! The wire messages: between parties, and from the dealer to a party.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::prg::Seed;
use crate::Error;
use crate::sharing::Ring;

/// A message from one party to another.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "R: Ring")]
pub enum BeaverMessage<R: Ring> {
    /// The seed of the receiver's share of the sender's input vector.
    InputSeed(Seed),
    /// The sender's shares of `d = x − a` and `e = y − b`, one per product.
    Masked {
        /// Shares of `x − a`.
        #[serde(with = "crate::sharing::fixed_width")]
        d: Vec<R>,
        /// Shares of `y − b`.
        #[serde(with = "crate::sharing::fixed_width")]
        e: Vec<R>,
    },
    /// The sender's shares of values the receiver opens.
    Opening(#[serde(with = "crate::sharing::fixed_width")] Vec<R>),
    /// The sender's own vectors, each masked by the dealer's stream, row
    /// by row ([`super::InnerProducts`]).
    MaskedVectors(#[serde(with = "crate::sharing::fixed_width")] Vec<R>),
}

/// A message from the dealer to one party: that party's triple material.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "R: Ring")]
pub enum DealerMessage<R: Ring> {
    /// For every party but the last: the seed of its shares of `a`, `b`, `c`.
    Seed(Seed),
    /// For the last party: the seed of its shares of `a` and `b`, and its
    /// shares of `c` outright (what makes the triples multiply).
    SeedAndCorrection {
        /// The seed of its shares of `a` and `b`.
        seed: Seed,
        /// Its shares of `c`, one per product.
        #[serde(with = "crate::sharing::fixed_width")]
        correction: Vec<R>,
    },
    /// For A in a batch of inner products ([`super::InnerDealer`]): the
    /// seed of its masks and the seed of its shares of the masks' products.
    InnerToA {
        /// The seed of A's masks.
        masks_a: Seed,
        /// The seed of A's shares of each pair's `r·s`.
        alphas: Seed,
    },
    /// For B in a batch of inner products: the seed of its masks and its
    /// shares of the masks' products, one per pair.
    InnerToB {
        /// The seed of B's masks.
        masks_b: Seed,
        /// B's shares of each pair's `r·s`.
        #[serde(with = "crate::sharing::fixed_width")]
        betas: Vec<R>,
    },
}

impl<R: Ring> BeaverMessage<R> {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InputSeed(_) => "InputSeed",
            Self::Masked { .. } => "Masked",
            Self::Opening(_) => "Opening",
            Self::MaskedVectors(_) => "MaskedVectors",
        }
    }

    /// Encodes the message with postcard.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes one whole message of a job whose vectors have at most
    /// `elements` entries; longer input is refused before decoding.
    pub fn decode(bytes: &[u8], elements: usize) -> Result<Self, Error> {
        decode(bytes, elements, R::BYTES, 2, Self::kind)
    }
}

impl<R: Ring> DealerMessage<R> {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Seed(_) => "DealerSeed",
            Self::SeedAndCorrection { .. } => "DealerSeedAndCorrection",
            Self::InnerToA { .. } => "DealerInnerToA",
            Self::InnerToB { .. } => "DealerInnerToB",
        }
    }

    /// Encodes the message with postcard.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes one whole message for a job of `products` products; longer
    /// input is refused before decoding.
    pub fn decode(bytes: &[u8], products: usize) -> Result<Self, Error> {
        decode(bytes, products, R::BYTES, 1, Self::kind)
    }
}

fn encode<M: Serialize>(message: &M) -> Vec<u8> {
    crate::codec::encode(message)
}

/// Decodes `bytes` as one message holding at most `vectors` vectors of
/// `elements` ring elements of `width` bytes each (shares travel at fixed
/// width, `sharing::fixed_width`), in its canonical encoding only.
fn decode<M: Serialize + DeserializeOwned>(
    bytes: &[u8],
    elements: usize,
    per_element: usize,
    vectors: usize,
    kind: fn(&M) -> &'static str,
) -> Result<M, Error> {
    // A length prefix takes at most 10 bytes; the tag and a seed fit in 64.
    let limit = elements
        .saturating_mul(per_element)
        .saturating_add(10)
        .saturating_mul(vectors)
        .saturating_add(64);
    crate::codec::decode_canonical(bytes, limit, kind)
}

// Shares and seeds are half a secret: never print them.
impl<R: Ring> std::fmt::Debug for BeaverMessage<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InputSeed(_) => f.write_str("InputSeed(<redacted>)"),
            Self::Masked { d, .. } => write!(f, "Masked(<{} products redacted>)", d.len()),
            Self::Opening(v) => write!(f, "Opening(<{} shares redacted>)", v.len()),
            Self::MaskedVectors(v) => write!(f, "MaskedVectors(<{} elements redacted>)", v.len()),
        }
    }
}

impl<R: Ring> std::fmt::Debug for DealerMessage<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seed(_) => f.write_str("DealerSeed(<redacted>)"),
            Self::SeedAndCorrection { correction, .. } => write!(
                f,
                "DealerSeedAndCorrection(<{} shares redacted>)",
                correction.len()
            ),
            Self::InnerToA { .. } => f.write_str("DealerInnerToA(<redacted>)"),
            Self::InnerToB { betas, .. } => {
                write!(f, "DealerInnerToB(<{} shares redacted>)", betas.len())
            }
        }
    }
}
