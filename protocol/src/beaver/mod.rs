//! Products of secret-shared values with Beaver triples from a dealer, and
//! the vertical statistics built on them.
//!
//! Parties `0..n` hold additive shares (in a [`Ring`], wrapping arithmetic)
//! of vectors `x` and `y` and want shares of the element-wise product
//! `x·y`, or of its sum (a dot product), without anyone learning `x` or `y`.
//! Beaver's trick (D. Beaver, "Efficient Multiparty Protocols Using Circuit
//! Randomization", CRYPTO 1991): given shares of a random triple
//! `(a, b, c = a·b)`, the parties open `d = x − a` and `e = y − b`, which
//! are uniform because `a` and `b` are, and each party's share of
//! `x·y = c + d·b + e·a + d·e` is then a local computation.
//!
//! The triples come from a **dealer**, a third node that never sees inputs
//! or results and is sent nothing by the parties ([`Dealer`]). It sends
//! each party a 32-byte seed from which that party expands its shares, and
//! the last party an explicit correction for `c` as well, so dealing costs
//! `32·n` bytes plus one ring element per product. How triples reach a
//! party is open: anything that produces a [`TripleShares`] can feed a
//! multiplication ([`TripleSource`] names the kinds a job can choose).
//!
//! The pieces, each a sans-IO state machine over [`Addressed`] messages:
//!
//! - [`share_by_seed`] / [`ExpectInputSeed`]: a party shares a vector with
//!   the others by sending each a seed (one message per receiver);
//! - [`Dealer::deal`] / [`ExpectTriples`]: the triples;
//! - [`Multiply`] / [`ExpectMasked`]: one round, any number of products,
//!   any `n ≥ 2`; [`ProductShares::sums`] gives dot products locally;
//! - [`Open`] / [`ExpectOpenings`]: shares to the named recipients;
//! - [`DotProducts`] / [`ExpectDot`]: multiply, sum, open, as one machine
//!   that accepts a fast party's openings before its own products are done;
//! - [`vertical`]: statistics over two parties' columns aligned by row.
//!
//! See `docs/protocols/beaver-dealer.md` for the model (semi-honest, a
//! dealer that colludes with no party), costs and the fixed-point range.
//!
//! [`Addressed`]: crate::sharing::Addressed

mod dealer;
mod dot;
mod inner;
mod input;
mod messages;
mod multiply;
mod open;
mod prg;
pub mod vertical;

pub use dealer::{Dealer, ExpectTriples, TripleShares};
pub use dot::{DotOutput, DotProducts, DotStep, ExpectDot};
pub use inner::{
    ExpectInner, InnerDealer, InnerPlan, InnerProducts, InnerStep, MAX_CHUNK_ELEMENTS,
};
pub use input::{ExpectInputSeed, SharedInput, share_by_seed};
pub use messages::{BeaverMessage, DealerMessage};
pub use multiply::{ExpectMasked, MulStep, Multiply, ProductShares};
pub use open::{ExpectOpenings, Open, OpenStep};
pub use prg::Seed;

use serde::{Deserialize, Serialize};

use crate::sharing::{PartyIndex, Ring};

/// A ring whose elements also multiply (mod 2^k): what Beaver needs on
/// top of the additive [`Ring`].
pub trait MulRing: Ring {
    /// Multiplication mod 2^k.
    fn mul(self, other: Self) -> Self;
}

impl MulRing for u64 {
    fn mul(self, other: Self) -> Self {
        self.wrapping_mul(other)
    }
}

impl MulRing for u128 {
    fn mul(self, other: Self) -> Self {
        self.wrapping_mul(other)
    }
}

/// The most products one multiplication may batch: every vector a peer or
/// the dealer sends is checked against the job's count, and the count
/// against this, before anything is allocated for it.
pub const MAX_PRODUCTS: usize = 1 << 28;

/// Where a job's triples come from. Every source ends in the same
/// [`TripleShares`] per party, so the multiplication does not care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TripleSource {
    /// A third node deals them ([`Dealer`]); it must not collude with any
    /// party.
    Dealer,
}

/// Why a multiplication cannot start: the caller's own inputs disagree
/// with each other or with the job. Peers' messages fail with
/// [`crate::Error`] instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BeaverError {
    /// Vectors that must be as long as each other are not.
    #[error("{what} has {found} elements where the job has {expected}")]
    Length {
        /// Which vector.
        what: &'static str,
        /// The job's count.
        expected: usize,
        /// Its length.
        found: usize,
    },
    /// More products than [`MAX_PRODUCTS`].
    #[error("{0} products are more than one multiplication takes ({MAX_PRODUCTS})")]
    TooManyProducts(usize),
    /// Triples dealt for another party or another number of parties.
    #[error("triples dealt for {dealt_for} of {dealt_parties} cannot serve {me} of {parties}")]
    TriplesForAnotherParty {
        /// The party the triples were dealt to.
        dealt_for: PartyIndex,
        /// Parties they were dealt among.
        dealt_parties: usize,
        /// This party.
        me: PartyIndex,
        /// Parties in the job.
        parties: usize,
    },
    /// A vector's owner must be another party of the job.
    #[error("{0} is not another party of the job")]
    NotAnotherParty(PartyIndex),
    /// A dealer needs at least two parties and at most
    /// [`crate::sharing::MAX_PARTIES`].
    #[error("a dealer serves 2 to {max} parties, not {0}", max = crate::sharing::MAX_PARTIES)]
    PartyCount(usize),
}

fn check_count(count: usize) -> Result<(), BeaverError> {
    if count > MAX_PRODUCTS {
        return Err(BeaverError::TooManyProducts(count));
    }
    Ok(())
}

fn check_parties(parties: usize) -> Result<(), BeaverError> {
    if !(2..=crate::sharing::MAX_PARTIES).contains(&parties) {
        return Err(BeaverError::PartyCount(parties));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
