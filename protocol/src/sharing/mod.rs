//! Additive secret sharing among `n` parties: the engine behind joint
//! statistics over pooled rows, where only totals are revealed.
//!
//! A job has parties `0..n` (the order of its manifest) and names which of
//! them receive the result. Each party shares its local sufficient
//! statistics (counts, sums, sums of squares, per group or bin) with
//! [`SecureSum`]; the recipients open the totals and nobody sees another
//! party's contribution. The security model is semi-honest, and any `n - 1`
//! parties together learn nothing about the last one's inputs beyond what
//! the opened totals imply (Cramer, Damgård and Nielsen, *Secure Multiparty
//! Computation and Secret Sharing*, 2015, §3: additive sharing; the protocol
//! is their "secure addition"). See `docs/protocols/additive-sharing.md`
//! (the engine) and `docs/protocols/secure-aggregation.md` (the N-party job).
//!
//! Messages are addressed to a party ([`Addressed`]), so one state machine
//! runs any `n` in memory in tests and over per-peer streams in the node.

mod fixed;
mod noise;
mod ring;
pub(crate) mod stats;
mod sum;

pub use fixed::{FixedPoint, FixedPointError, MAX_DIGITS, MAX_SCALED, decimal, fit};
pub use noise::noise_share;
pub use ring::{Ring, fixed_width, reconstruct, split};
pub use stats::{GroupResult, Layout, LocalStats, StatsError, StatsNoise, finish};
pub use sum::{ExpectShares, SecureSum, SumMessage, SumOutput, SumStep};

use serde::{Deserialize, Serialize};

/// A party's position in the job's manifest, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartyIndex(pub usize);

impl std::fmt::Display for PartyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "party {}", self.0)
    }
}

/// A message and the party it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed<M> {
    /// The receiving party.
    pub to: PartyIndex,
    /// The message.
    pub message: M,
}

/// The most parties a job may have.
pub const MAX_PARTIES: usize = 64;

/// Who takes part in a job, who this party is, and who receives the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    parties: usize,
    me: PartyIndex,
    recipients: Vec<PartyIndex>,
}

/// Why a roster is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RosterError {
    /// Fewer than two or more than [`MAX_PARTIES`] parties.
    #[error("a job has 2 to {MAX_PARTIES} parties, not {0}")]
    PartyCount(usize),
    /// This party or a recipient is not in the job.
    #[error("{0} is not one of the job's parties")]
    NotAParty(PartyIndex),
    /// Nobody receives the result.
    #[error("a job names at least one recipient of its result")]
    NoRecipient,
}

impl Roster {
    /// A roster of `parties` parties, seen by `me`, whose result goes to
    /// `recipients` (deduplicated, in order).
    pub fn new(
        parties: usize,
        me: PartyIndex,
        recipients: impl IntoIterator<Item = PartyIndex>,
    ) -> Result<Self, RosterError> {
        if !(2..=MAX_PARTIES).contains(&parties) {
            return Err(RosterError::PartyCount(parties));
        }
        if me.0 >= parties {
            return Err(RosterError::NotAParty(me));
        }
        let mut list: Vec<PartyIndex> = Vec::new();
        for r in recipients {
            if r.0 >= parties {
                return Err(RosterError::NotAParty(r));
            }
            if !list.contains(&r) {
                list.push(r);
            }
        }
        if list.is_empty() {
            return Err(RosterError::NoRecipient);
        }
        Ok(Self {
            parties,
            me,
            recipients: list,
        })
    }

    /// Parties in the job.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// This party.
    pub fn me(&self) -> PartyIndex {
        self.me
    }

    /// Who receives the result.
    pub fn recipients(&self) -> impl Iterator<Item = PartyIndex> + '_ {
        self.recipients.iter().copied()
    }

    /// Whether `party` receives the result.
    pub fn is_recipient(&self, party: PartyIndex) -> bool {
        self.recipients.contains(&party)
    }
}

#[cfg(test)]
mod stats_tests;
#[cfg(test)]
mod tests;
