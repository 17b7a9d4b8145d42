//! Private intersection-sum-with-cardinality over ristretto255
//! (Ion et al., "On Deploying Secure Computing: Private
//! Intersection-Sum-with-Cardinality", EuroS&P 2020), with exponential
//! ElGamal under a joint key in place of Paillier.
//!
//! The requester holds ids X; the responder holds ids Y, each with a value
//! `t_y < 2^(16·L)` and a public category `< G`. The requester learns
//! `|X ∩ Y|` and, per category, the number of matches and the sum of their
//! values; the responder learns `|X|`.
//!
//! ```text
//! requester (X; a, x1)                                  responder (Y, t; b, x2)
//!   RequesterHello{|X|, X1}, RequesterBlinded{H(x)^a}* ──►
//!             ◄── ResponderHello{|Y|, X2}
//!             ◄── DoubleBlinded{H(x)^ab}*                     (shuffled)
//!             ◄── ResponderRows{H(y)^b, Enc_P(slots)}*        (shuffled)
//!   adds the matched rows' ciphertexts, re-randomises
//!   SumCiphertexts{one per slot} ──►
//!             ◄── PartialDecryptions{x2·C1 − offset·G per slot}
//!   C2 − x1·C1 − x2·C1 = m·G; m by baby-step giant-step (DlogTable)
//! ```
//!
//! `P = X1 + X2` is the joint key, so neither party can decrypt alone. The
//! model is semi-honest; see `docs/protocols/intersection-sum.md`.

mod dlog;
mod elgamal;
mod messages;
mod requester;
mod responder;

pub use dlog::DlogTable;
pub use messages::{EncodedCiphertext, EncryptedRow, KeyProof, Message};
pub use requester::{
    CategorySum, ExpectDoubleBlinded, ExpectPartialDecryptions, ExpectResponderHello,
    ExpectResponderRows, IsumOutput, Requester, RequesterState, RequesterStep,
};
pub use responder::{
    ExpectRequesterBlinded, ExpectRequesterHello, ExpectSumCiphertexts, Responder, ResponderOutput,
    ResponderState, ResponderStep,
};

use zeroize::Zeroize;

use crate::{Error, IdSet, JobId};

/// Version of this protocol; part of every hash-to-group tag.
pub const PROTOCOL_VERSION: u16 = 1;

/// The most group elements one message may carry (128 KiB of points). A
/// chunk of rows holds as many whole rows as fit.
pub const MAX_CHUNK_POINTS: usize = 4096;

/// Bits per limb. A limb sum over `n` rows is at most `n·(2^16 − 1)`.
pub const LIMB_BITS: u32 = 16;

/// The most limbs a value may have: with 4, any `u64`.
pub const MAX_VALUE_LIMBS: u8 = 4;

/// The most categories a grouped sum may have. Each row carries a
/// ciphertext per slot of every category, so cost grows linearly with it.
pub const MAX_CATEGORIES: u16 = 16;

/// The largest set either party may hold, and the largest it accepts from
/// its peer: `2^24`. A limb sum is then below `2^40`.
pub const MAX_SET_SIZE: u64 = 1 << 24;

/// The largest noise offset the responder may add to one slot's sum.
pub const MAX_LIMB_OFFSET: u64 = 1 << 32;

/// How the responder's values are laid out in ciphertext slots.
///
/// Per category there are `value_limbs` slots holding the limbs of the
/// value (least significant first) and, when `categories > 1`, one more
/// holding 1 for the row's category and 0 elsewhere (the count). With one
/// category the requester knows the count from matching, so it is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `G`: categories, `1..=16`.
    pub categories: u16,
    /// `L`: limbs of [`LIMB_BITS`] per value, `1..=4`; values are below
    /// `2^(16·L)`.
    pub value_limbs: u8,
}

impl Layout {
    /// Slots per category.
    pub fn slots_per_category(&self) -> usize {
        usize::from(self.value_limbs) + usize::from(self.has_count_slot())
    }

    /// Ciphertexts per row, and in the sums: `G · slots_per_category`.
    pub fn slots(&self) -> usize {
        usize::from(self.categories) * self.slots_per_category()
    }

    /// The largest value a row may carry.
    pub fn max_value(&self) -> u64 {
        let bits = LIMB_BITS * u32::from(self.value_limbs);
        u64::MAX >> (64 - bits)
    }

    fn has_count_slot(&self) -> bool {
        self.categories > 1
    }

    fn check(&self) -> Result<(), InputError> {
        if !(1..=MAX_CATEGORIES).contains(&self.categories)
            || !(1..=MAX_VALUE_LIMBS).contains(&self.value_limbs)
        {
            return Err(InputError::BadLayout {
                categories: self.categories,
                value_limbs: self.value_limbs,
            });
        }
        Ok(())
    }

    /// What a row of `value` in `category` puts in each slot.
    fn plaintexts(&self, value: u64, category: u16) -> impl Iterator<Item = u64> + '_ {
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        let limb_mask = (1u64 << LIMB_BITS) - 1;
        (0..self.categories).flat_map(move |c| {
            let own = c.ct_eq(&category);
            let count = self.has_count_slot().then_some(1u64);
            let limbs = (0..u32::from(self.value_limbs))
                .map(move |k| (value >> (LIMB_BITS * k)) & limb_mask);
            // A select, not a branch: every slot costs the same whatever
            // the row's category.
            count
                .into_iter()
                .chain(limbs)
                .map(move |m| u64::conditional_select(&0, &m, own))
        })
    }
}

/// The roles a key proof is bound to, so that one party's proof cannot be
/// replayed as the other's.
const REQUESTER_ROLE: &[u8] = b"requester";
const RESPONDER_ROLE: &[u8] = b"responder";

/// The parameters both parties agreed on before the protocol starts.
#[derive(Debug, Clone)]
pub struct Session {
    /// The job this run belongs to.
    pub job_id: JobId,
    /// The largest set accepted from the peer, at most [`MAX_SET_SIZE`].
    pub max_peer_set_size: u64,
    /// The smallest set accepted from the peer.
    pub min_peer_set_size: u64,
    /// How many group elements this party puts in one message, at most
    /// [`MAX_CHUNK_POINTS`].
    pub chunk_points: usize,
    /// Categories and limbs; both parties must agree.
    pub layout: Layout,
    /// The largest offset the responder adds to any slot's sum (see
    /// [`LimbOffsets`]); public, so the requester widens its search by it.
    pub max_limb_offset: u64,
}

impl Session {
    /// A session with the default chunk size and no offsets.
    pub fn new(job_id: JobId, layout: Layout, max_peer_set_size: u64) -> Self {
        Self {
            job_id,
            max_peer_set_size,
            min_peer_set_size: 0,
            chunk_points: MAX_CHUNK_POINTS,
            layout,
            max_limb_offset: 0,
        }
    }

    fn check(&self, own_set_size: usize) -> Result<(), InputError> {
        self.layout.check()?;
        if own_set_size as u64 > MAX_SET_SIZE {
            return Err(InputError::SetTooLarge {
                size: own_set_size as u64,
            });
        }
        if self.max_peer_set_size > MAX_SET_SIZE {
            return Err(InputError::SetTooLarge {
                size: self.max_peer_set_size,
            });
        }
        if self.max_limb_offset > MAX_LIMB_OFFSET {
            return Err(InputError::OffsetTooLarge {
                offset: self.max_limb_offset,
            });
        }
        Ok(())
    }

    /// The hash-to-group domain-separation tag: protocol, version and job.
    pub(super) fn tag(&self) -> Vec<u8> {
        let mut tag = b"unseen/intersection-sum/v".to_vec();
        tag.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        tag.extend_from_slice(b"/job/");
        tag.extend_from_slice(&self.job_id.0);
        tag
    }

    fn chunk_points(&self) -> usize {
        self.chunk_points.clamp(1, MAX_CHUNK_POINTS)
    }

    /// Whole rows per message: each is one point and two per slot.
    fn chunk_rows(&self) -> usize {
        (self.chunk_points() / (1 + 2 * self.layout.slots())).max(1)
    }
}

/// Why a party's own input or configuration was refused, before any message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Categories or limbs out of range.
    #[error(
        "layout of {categories} categories and {value_limbs} limbs: categories must be 1 to {MAX_CATEGORIES} and limbs 1 to {MAX_VALUE_LIMBS}"
    )]
    BadLayout {
        /// Categories asked for.
        categories: u16,
        /// Limbs asked for.
        value_limbs: u8,
    },
    /// A set (own, or the most accepted from the peer) over [`MAX_SET_SIZE`].
    #[error("a set of {size} ids is over the limit of {MAX_SET_SIZE}")]
    SetTooLarge {
        /// The size.
        size: u64,
    },
    /// A value over the layout's maximum. The value itself is not printed.
    #[error("the value of row {row} is over the maximum of {max} for this layout")]
    ValueTooLarge {
        /// The row's position in the input.
        row: usize,
        /// The layout's largest value.
        max: u64,
    },
    /// A category not below the layout's number of categories.
    #[error("row {row} is in category {category}, but the layout has {categories}")]
    CategoryOutOfRange {
        /// The row's position in the input.
        row: usize,
        /// Its category.
        category: u16,
        /// Categories in the layout.
        categories: u16,
    },
    /// The same id twice among the responder's rows: which value would
    /// count is ambiguous, so the rows are refused.
    #[error("row {row} repeats the id of an earlier row")]
    DuplicateId {
        /// The later row's position in the input.
        row: usize,
    },
    /// A noise offset (or the session's bound on them) over the limit.
    #[error("a slot offset of {offset} is over the session's or protocol's limit")]
    OffsetTooLarge {
        /// The offset.
        offset: u64,
    },
    /// Offsets given for a number of slots other than the layout's.
    #[error("{found} slot offsets given for a layout of {expected} slots")]
    WrongOffsetCount {
        /// Slots in the layout.
        expected: usize,
        /// Offsets given.
        found: usize,
    },
    /// A discrete-log table size out of range.
    #[error("a discrete-log table of 2^{bits} baby steps: bits must be 1 to 28")]
    TableBits {
        /// Bits asked for.
        bits: u8,
    },
}

/// The responder's rows: distinct ids, each with a value and a category.
#[derive(Clone)]
pub struct ValuedIds {
    ids: IdSet,
    values: Vec<u64>,
    categories: Vec<u16>,
}

impl ValuedIds {
    /// Rows of `(id, value, category)`; a repeated id is refused.
    pub fn new<T: AsRef<[u8]>>(
        rows: impl IntoIterator<Item = (T, u64, u16)>,
    ) -> Result<Self, InputError> {
        let mut raw = Vec::new();
        let mut values = Vec::new();
        let mut categories = Vec::new();
        for (id, value, category) in rows {
            raw.push(id);
            values.push(value);
            categories.push(category);
        }
        let ids: IdSet = raw.iter().collect();
        if ids.len() != raw.len() {
            // The first row whose id an earlier row already had.
            let row = (0..raw.len())
                .find(|&i| ids.get(i) != Some(raw[i].as_ref()))
                .unwrap_or(ids.len());
            values.zeroize();
            return Err(InputError::DuplicateId { row });
        }
        Ok(Self {
            ids,
            values,
            categories,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn check(&self, layout: &Layout) -> Result<(), InputError> {
        let max = layout.max_value();
        for (row, (&value, &category)) in self.values.iter().zip(&self.categories).enumerate() {
            if value > max {
                return Err(InputError::ValueTooLarge { row, max });
            }
            if category >= layout.categories {
                return Err(InputError::CategoryOutOfRange {
                    row,
                    category,
                    categories: layout.categories,
                });
            }
        }
        Ok(())
    }
}

impl Drop for ValuedIds {
    fn drop(&mut self) {
        self.values.zeroize();
        self.categories.zeroize();
    }
}

impl std::fmt::Debug for ValuedIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValuedIds({} rows, redacted)", self.len())
    }
}

/// The responder's per-slot offsets, added to each decrypted slot sum: the
/// hook for its share of differential-privacy noise. Each is at most the
/// session's `max_limb_offset`. Secret; zeroized, never printed.
#[derive(Clone, Default)]
pub struct LimbOffsets(Vec<u64>);

impl LimbOffsets {
    /// No offsets.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// One offset per slot, in slot order (category by category; within a
    /// category the count first when there is one, then limbs from the
    /// least significant).
    pub fn per_slot(offsets: Vec<u64>) -> Self {
        Self(offsets)
    }

    /// The offset of every slot, checked against the layout and session.
    fn resolve(mut self, session: &Session) -> Result<Vec<u64>, InputError> {
        let slots = session.layout.slots();
        if self.0.is_empty() {
            return Ok(vec![0; slots]);
        }
        if self.0.len() != slots {
            return Err(InputError::WrongOffsetCount {
                expected: slots,
                found: self.0.len(),
            });
        }
        if let Some(&offset) = self.0.iter().find(|&&o| o > session.max_limb_offset) {
            return Err(InputError::OffsetTooLarge { offset });
        }
        Ok(std::mem::take(&mut self.0))
    }
}

impl Drop for LimbOffsets {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for LimbOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LimbOffsets({} slots, redacted)", self.0.len())
    }
}

/// Counts the items of a stream the peer announced, chunk by chunk.
#[derive(Debug)]
struct Counter {
    announced: u64,
    received: u64,
}

impl Counter {
    fn new(announced: u64) -> Self {
        Self {
            announced,
            received: 0,
        }
    }

    /// Accounts for a chunk of `len` items, `points` group elements in all,
    /// and returns the stream index of its first item.
    fn accept_chunk(&mut self, len: usize, points: usize) -> Result<u64, Error> {
        if len == 0 {
            return Err(Error::BadChunk("empty chunk"));
        }
        if points > MAX_CHUNK_POINTS {
            return Err(Error::BadChunk("chunk over the element limit"));
        }
        let first = self.received;
        let after = first
            .checked_add(len as u64)
            .filter(|&after| after <= self.announced)
            .ok_or(Error::BadChunk("more elements than announced"))?;
        self.received = after;
        Ok(first)
    }

    fn is_complete(&self) -> bool {
        self.received == self.announced
    }
}

fn check_announced(announced: u64, session: &Session) -> Result<(), Error> {
    if announced > session.max_peer_set_size {
        return Err(Error::SetTooLarge {
            announced,
            limit: session.max_peer_set_size,
        });
    }
    if announced < session.min_peer_set_size {
        return Err(Error::SetTooSmall {
            announced,
            minimum: session.min_peer_set_size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
