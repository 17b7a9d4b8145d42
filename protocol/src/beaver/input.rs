//! Sharing an input vector by seed: one 32-byte message per receiver,
//! whatever the vector's length.
//!
//! ```text
//! owner:     draws a seed s_j for every other party j
//!            keeps v − Σ_j PRG(s_j)                 ──► InputSeed(s_j) to j
//! party j:   its share is PRG(s_j)
//! ```
//!
//! Each `PRG(s_j)` is pseudorandom and known to party j alone, so any
//! coalition missing one party sees shares that are pseudorandom whatever
//! `v` is (computationally, where [`crate::sharing::split`] is exact). The
//! label names the vector within the job (for example the column), so two
//! vectors never come from one stream even under a repeated seed.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::messages::BeaverMessage;
use super::prg::{Prg, Seed};
use super::{BeaverError, check_count};
use crate::sharing::{Addressed, PartyIndex, Ring, Roster};
use crate::{Error, JobId};

/// The prefix of every input stream's label.
const INPUT_LABEL: &[u8] = b"input/";

fn label(owner: PartyIndex, label: &[u8]) -> Vec<u8> {
    // The owner is in the label so that two owners' vectors under one
    // caller label are separate streams.
    let mut full = INPUT_LABEL.to_vec();
    full.extend_from_slice(&(owner.0 as u64).to_be_bytes());
    full.extend_from_slice(b"/");
    full.extend_from_slice(label);
    full
}

/// An owner's side of sharing a vector: what it keeps and what it sends.
pub struct SharedInput<R: Ring> {
    /// The owner's own share.
    pub share: Zeroizing<Vec<R>>,
    /// One seed for every other party.
    pub send: Vec<Addressed<BeaverMessage<R>>>,
}

impl<R: Ring> std::fmt::Debug for SharedInput<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedInput(<{} shares redacted>, {:?})",
            self.share.len(),
            self.send
        )
    }
}

/// Shares `values`, owned by the roster's own party, with every other
/// party: this party's share and one seed message per other party.
pub fn share_by_seed<R: Ring, G: CryptoRng + RngCore>(
    roster: &Roster,
    job: JobId,
    vector_label: &[u8],
    values: &[R],
    rng: &mut G,
) -> Result<SharedInput<R>, BeaverError> {
    check_count(values.len())?;
    let me = roster.me();
    let full_label = label(me, vector_label);
    let mut kept = Zeroizing::new(values.to_vec());
    let mut messages = Vec::with_capacity(roster.parties() - 1);
    for j in (0..roster.parties()).filter(|&j| j != me.0) {
        let seed = Seed::random(rng);
        let mut stream = Prg::new(&seed, job, &full_label);
        for v in kept.iter_mut() {
            *v = v.sub(stream.next());
        }
        messages.push(Addressed {
            to: PartyIndex(j),
            message: BeaverMessage::InputSeed(seed),
        });
    }
    Ok(SharedInput {
        share: kept,
        send: messages,
    })
}

/// Waiting for the seed of this party's share of `owner`'s vector.
pub struct ExpectInputSeed {
    job: JobId,
    owner: PartyIndex,
    label: Vec<u8>,
    count: usize,
}

impl std::fmt::Debug for ExpectInputSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectInputSeed")
            .field("owner", &self.owner)
            .field("count", &self.count)
            .finish()
    }
}

impl ExpectInputSeed {
    /// Waits for `owner`'s seed of a vector of `count` elements, which the
    /// owner shares under `vector_label`. `owner` must be another party of
    /// the roster.
    pub fn new(
        roster: &Roster,
        job: JobId,
        owner: PartyIndex,
        vector_label: &[u8],
        count: usize,
    ) -> Result<Self, BeaverError> {
        check_count(count)?;
        if owner.0 >= roster.parties() || owner == roster.me() {
            return Err(BeaverError::NotAnotherParty(owner));
        }
        Ok(Self {
            job,
            owner,
            label: label(owner, vector_label),
            count,
        })
    }

    /// Takes the owner's message; returns this party's share of its vector.
    pub fn handle<R: Ring>(
        self,
        from: PartyIndex,
        message: BeaverMessage<R>,
    ) -> Result<Zeroizing<Vec<R>>, Error> {
        if from != self.owner {
            return Err(Error::WrongParty {
                from: from.0,
                problem: "it does not own the vector being shared",
            });
        }
        match message {
            BeaverMessage::InputSeed(seed) => {
                Ok(Prg::new(&seed, self.job, &self.label).take(self.count))
            }
            other => Err(Error::UnexpectedMessage {
                expected: "InputSeed",
                received: other.kind(),
            }),
        }
    }
}
