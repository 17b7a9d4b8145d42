//! ECDH-based private set intersection over ristretto255
//! (Huberman, Franklin and Hogg, 1999; group from RFC 9496).
//!
//! The requester holds a set X and the responder a set Y. Each draws a fresh
//! secret exponent for the job (`a` and `b`) and hashes its ids to the group
//! under a tag that names the protocol version and the job:
//!
//! ```text
//! requester                                         responder
//!   RequesterHello{|X|}, RequesterBlinded{H(x)^a}* ──►
//!                ◄── ResponderHello{|Y|}, ResponderBlinded{H(y)^b}*   (shuffled)
//!                ◄── DoubleBlinded{H(x)^ab}*   (same order as received, or
//!                                               shuffled when only the size is asked)
//!   compares H(x)^ab with (H(y)^b)^a
//! ```
//!
//! In [`Mode::Membership`] the requester learns which of its ids are in the
//! intersection; in [`Mode::Cardinality`] it learns only how many. Each side
//! learns the other's set size; with [`Padding`] in cardinality mode the
//! requester learns both the count and the responder's size only with noise.
//! The responder learns nothing else. The model is
//! semi-honest; see `docs/protocols/ecdh-psi.md`.

mod messages;
mod requester;
mod responder;

pub use messages::Message;
pub use requester::{
    ExpectDoubleBlinded, ExpectResponderBlinded, ExpectResponderHello, PsiOutput, PsiResult,
    Requester, RequesterState, RequesterStep,
};
pub use responder::{
    ExpectRequesterBlinded, ExpectRequesterHello, Responder, ResponderOutput, ResponderState,
    ResponderStep,
};

use crate::JobId;
use crate::dp::{ReleasePadding, ReleaseParams};
use serde::{Deserialize, Serialize};

/// Version of this protocol; part of every hash-to-group tag.
pub const PROTOCOL_VERSION: u16 = 1;

/// The most group elements one message may carry (128 KiB of points).
pub const MAX_CHUNK_POINTS: usize = 4096;

/// What the requester learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Which of the requester's ids are in the intersection.
    Membership,
    /// Only the size of the intersection.
    Cardinality,
}

/// The parameters both parties agreed on before the protocol starts.
#[derive(Debug, Clone)]
pub struct Session {
    /// The job this run belongs to.
    pub job_id: JobId,
    /// What the requester learns.
    pub mode: Mode,
    /// The largest set this party accepts from its peer. Protects memory: an
    /// announcement above it aborts the run before any element is read.
    pub max_peer_set_size: u64,
    /// The smallest set this party accepts from its peer. A node that agreed
    /// to a job for a set of a given size holds the peer to it, so a peer
    /// cannot announce one size to pass a minimum-group-size rule and bring
    /// fewer.
    pub min_peer_set_size: u64,
    /// How many elements this party puts in one message, at most
    /// [`MAX_CHUNK_POINTS`].
    pub chunk_points: usize,
    /// Differential-privacy padding of the count, in cardinality mode only.
    pub padding: Padding,
}

/// Noise added to a cardinality by padding the responder's lists.
///
/// The responder adds `total` dummy elements to its blinded set and `total`
/// to the double-blinded elements it returns. `matching` of them are built to
/// match each other, so the requester's count grows by exactly `matching`;
/// the rest match nothing. `total` is public, so the list lengths say nothing
/// about `matching`, which the node draws as `offset + noise` (clamped to
/// `0..=total`); the requester subtracts the public `offset`. Every dummy is
/// `r·G` in the responder's list and `t·A` among the double-blinded ones,
/// where `A = a·G` is the requester's commitment to its key (sent only when
/// padding is agreed) and `t` is `r` for a matching dummy and an independent
/// `s` otherwise, so both kinds cost the same.
///
/// With [`Padding::ResponderWithSize`] the responder also adds
/// `size_dummies` elements to its own list only: random ids, hashed and
/// blinded like its real ones, that match nothing. They make the announced
/// set size noisy, which privacy under adding or removing a record needs
/// (see [`crate::dp::ReleaseParams`]). The requester needs no word of them.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding: the count is exact.
    #[default]
    None,
    /// The requester's view: subtract `offset`; expect `total` extra elements.
    Requester {
        /// Subtracted from the count.
        offset: u64,
        /// Dummies in each of the responder's lists.
        total: u64,
    },
    /// The responder's view: add `total` dummies, `matching` of them matching.
    /// Protects the count only; prefer [`Padding::ResponderWithSize`].
    Responder {
        /// Dummies that match (the noisy part).
        matching: u64,
        /// Dummies in each list.
        total: u64,
    },
    /// The responder's view under adding or removing a record: as
    /// [`Padding::Responder`], and `size_dummies` more in its own list.
    ResponderWithSize {
        /// Dummies that match (the count's noise).
        matching: u64,
        /// Count dummies in each list.
        total: u64,
        /// Unmatched dummies in the responder's own list only (the size's
        /// noise).
        size_dummies: u64,
    },
}

impl Padding {
    /// Dummy elements in each of the responder's lists for the count.
    pub fn total(&self) -> u64 {
        match self {
            Self::None => 0,
            Self::Requester { total, .. }
            | Self::Responder { total, .. }
            | Self::ResponderWithSize { total, .. } => *total,
        }
    }

    /// The responder's padding for one job's release, as
    /// [`crate::dp::padding_for_release`] drew it.
    pub fn for_responder(release: &ReleasePadding) -> Self {
        Self::ResponderWithSize {
            matching: release.matching,
            total: release.params.count_total,
            size_dummies: release.size_dummies,
        }
    }

    /// What the requester is told of the same release: the public offset and
    /// number of count dummies.
    pub fn for_requester(params: &ReleaseParams) -> Self {
        Self::Requester {
            offset: params.count_offset,
            total: params.count_total,
        }
    }
}

// The responder's variants hold the secret noise.
impl std::fmt::Debug for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Requester { offset, total } => f
                .debug_struct("Requester")
                .field("offset", offset)
                .field("total", total)
                .finish(),
            Self::Responder { total, .. } | Self::ResponderWithSize { total, .. } => f
                .debug_struct("Responder")
                .field("total", total)
                .field("noise", &"<redacted>")
                .finish(),
        }
    }
}

impl Session {
    /// A session with the default chunk size.
    pub fn new(job_id: JobId, mode: Mode, max_peer_set_size: u64) -> Self {
        Self {
            job_id,
            mode,
            max_peer_set_size,
            min_peer_set_size: 0,
            chunk_points: MAX_CHUNK_POINTS,
            padding: Padding::None,
        }
    }

    /// The hash-to-group domain-separation tag: protocol, version and job.
    fn tag(&self) -> Vec<u8> {
        let mut tag = b"unseen/ecdh-psi/v".to_vec();
        tag.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        tag.extend_from_slice(b"/job/");
        tag.extend_from_slice(&self.job_id.0);
        tag
    }

    fn chunk_points(&self) -> usize {
        self.chunk_points.clamp(1, MAX_CHUNK_POINTS)
    }

    /// Padding applies to cardinalities only: membership answers are per id.
    fn padding(&self) -> Padding {
        match self.mode {
            Mode::Cardinality => self.padding,
            Mode::Membership => Padding::None,
        }
    }
}

/// Tracks a stream of elements the peer announced, chunk by chunk.
#[derive(Debug)]
struct ElementCounter {
    announced: u64,
    received: u64,
}

impl ElementCounter {
    fn new(announced: u64) -> Self {
        Self {
            announced,
            received: 0,
        }
    }

    /// Accounts for a chunk of `len` elements and returns the stream index of
    /// its first element.
    fn accept_chunk(&mut self, len: usize) -> Result<u64, crate::Error> {
        if len == 0 {
            return Err(crate::Error::BadChunk("empty chunk"));
        }
        if len > MAX_CHUNK_POINTS {
            return Err(crate::Error::BadChunk("chunk over the element limit"));
        }
        let first = self.received;
        let after = first
            .checked_add(len as u64)
            .filter(|&after| after <= self.announced)
            .ok_or(crate::Error::BadChunk("more elements than announced"))?;
        self.received = after;
        Ok(first)
    }

    fn is_complete(&self) -> bool {
        self.received == self.announced
    }
}

fn check_announced(announced: u64, session: &Session) -> Result<(), crate::Error> {
    if announced > session.max_peer_set_size {
        return Err(crate::Error::SetTooLarge {
            announced,
            limit: session.max_peer_set_size,
        });
    }
    if announced < session.min_peer_set_size {
        return Err(crate::Error::SetTooSmall {
            announced,
            minimum: session.min_peer_set_size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
