//! The dealer: Beaver triples for `n` parties from seeds and one correction.
//!
//! ```text
//! dealer:    seeds s_0 … s_{n−1}; party i's shares of a and b are
//!            PRG(s_i, "triple/a") and PRG(s_i, "triple/b"); for i < n − 1
//!            its share of c is PRG(s_i, "triple/c"); the last party's is
//!            c_{n−1} = (Σ a_i)·(Σ b_i) − Σ_{i<n−1} c_i
//!            ──► Seed(s_i) to party i < n − 1
//!            ──► SeedAndCorrection(s_{n−1}, c_{n−1}) to party n − 1
//! ```
//!
//! The dealer sends `32·n` bytes plus one ring element per product, takes
//! no input, and is sent nothing. Every party's view is its seed (and, for
//! the last, `c_{n−1}`, which `c_0`'s stream masks), so no party learns
//! anything about another party's triple shares.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::messages::DealerMessage;
use super::prg::{Prg, Seed};
use super::{BeaverError, MulRing, check_count, check_parties};
use crate::sharing::{Addressed, PartyIndex, Ring, Roster};
use crate::{Error, JobId};

const LABEL_A: &[u8] = b"triple/a";
const LABEL_B: &[u8] = b"triple/b";
const LABEL_C: &[u8] = b"triple/c";

/// One party's shares of a batch of triples `(a, b, c = a·b)`, whatever
/// produced them. Zeroized on drop, never printed.
pub struct TripleShares<R: Ring> {
    parties: usize,
    me: PartyIndex,
    pub(super) a: Zeroizing<Vec<R>>,
    pub(super) b: Zeroizing<Vec<R>>,
    pub(super) c: Zeroizing<Vec<R>>,
}

impl<R: Ring> std::fmt::Debug for TripleShares<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TripleShares({} of {}, {} triples, <redacted>)",
            self.me,
            self.parties,
            self.a.len()
        )
    }
}

impl<R: Ring> TripleShares<R> {
    /// Shares produced by any [`super::TripleSource`]: `me`'s shares of `a`,
    /// `b` and `c`, one per product, among `parties` parties.
    pub fn from_parts(
        parties: usize,
        me: PartyIndex,
        a: Zeroizing<Vec<R>>,
        b: Zeroizing<Vec<R>>,
        c: Zeroizing<Vec<R>>,
    ) -> Result<Self, BeaverError> {
        check_parties(parties)?;
        if me.0 >= parties {
            return Err(BeaverError::NotAnotherParty(me));
        }
        check_count(a.len())?;
        for (what, v) in [("b", &b), ("c", &c)] {
            if v.len() != a.len() {
                return Err(BeaverError::Length {
                    what,
                    expected: a.len(),
                    found: v.len(),
                });
            }
        }
        Ok(Self {
            parties,
            me,
            a,
            b,
            c,
        })
    }

    /// Triples in the batch.
    pub fn len(&self) -> usize {
        self.a.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Checks that these shares serve `roster`'s party for `count` products.
    pub(super) fn check_for(&self, roster: &Roster, count: usize) -> Result<(), BeaverError> {
        if self.parties != roster.parties() || self.me != roster.me() {
            return Err(BeaverError::TriplesForAnotherParty {
                dealt_for: self.me,
                dealt_parties: self.parties,
                me: roster.me(),
                parties: roster.parties(),
            });
        }
        if self.len() != count {
            return Err(BeaverError::Length {
                what: "the triple batch",
                expected: count,
                found: self.len(),
            });
        }
        Ok(())
    }
}

/// The dealer's side: it draws triples and sends each party its material.
pub struct Dealer;

impl Dealer {
    /// Deals `count` triples among `parties` parties of `job`: one message
    /// per party, addressed to it. The dealer keeps nothing.
    pub fn deal<R: MulRing, G: CryptoRng + RngCore>(
        job: JobId,
        parties: usize,
        count: usize,
        rng: &mut G,
    ) -> Result<Vec<Addressed<DealerMessage<R>>>, BeaverError> {
        check_parties(parties)?;
        check_count(count)?;
        let seeds: Vec<Seed> = (0..parties).map(|_| Seed::random(rng)).collect();
        let stream = |i: usize, label| Prg::new(&seeds[i], job, label);
        let mut a: Vec<Prg> = (0..parties).map(|i| stream(i, LABEL_A)).collect();
        let mut b: Vec<Prg> = (0..parties).map(|i| stream(i, LABEL_B)).collect();
        let mut c: Vec<Prg> = (0..parties - 1).map(|i| stream(i, LABEL_C)).collect();
        let mut correction = Zeroizing::new(Vec::with_capacity(count));
        for _ in 0..count {
            let sum = |streams: &mut [Prg]| {
                streams
                    .iter_mut()
                    .fold(R::default(), |total, s| total.add(s.next()))
            };
            let product = sum(&mut a).mul(sum(&mut b));
            correction.push(product.sub(sum(&mut c)));
        }
        let last = parties - 1;
        Ok(seeds
            .into_iter()
            .enumerate()
            .map(|(i, seed)| Addressed {
                to: PartyIndex(i),
                message: if i == last {
                    DealerMessage::SeedAndCorrection {
                        seed,
                        correction: correction.to_vec(),
                    }
                } else {
                    DealerMessage::Seed(seed)
                },
            })
            .collect())
    }
}

/// A party waiting for the dealer's material for `count` products.
pub struct ExpectTriples {
    job: JobId,
    parties: usize,
    me: PartyIndex,
    count: usize,
}

impl std::fmt::Debug for ExpectTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectTriples")
            .field("me", &self.me)
            .field("parties", &self.parties)
            .field("count", &self.count)
            .finish()
    }
}

impl ExpectTriples {
    /// Waits for the dealer's message to `roster`'s party, for `count`
    /// products of `job`.
    pub fn new(roster: &Roster, job: JobId, count: usize) -> Result<Self, BeaverError> {
        check_count(count)?;
        Ok(Self {
            job,
            parties: roster.parties(),
            me: roster.me(),
            count,
        })
    }

    /// Takes the dealer's message and expands this party's shares.
    pub fn handle<R: Ring>(self, message: DealerMessage<R>) -> Result<TripleShares<R>, Error> {
        let last = self.me.0 == self.parties - 1;
        let (seed, c) = match message {
            DealerMessage::Seed(seed) if !last => {
                let c = Prg::new(&seed, self.job, LABEL_C).take(self.count);
                (seed, c)
            }
            DealerMessage::SeedAndCorrection { seed, correction } if last => {
                let correction = Zeroizing::new(correction);
                if correction.len() != self.count {
                    return Err(Error::WrongDealerCount {
                        expected: self.count,
                        found: correction.len(),
                    });
                }
                (seed, correction)
            }
            other => {
                return Err(Error::UnexpectedMessage {
                    expected: if last {
                        "DealerSeedAndCorrection"
                    } else {
                        "DealerSeed"
                    },
                    received: other.kind(),
                });
            }
        };
        Ok(TripleShares {
            parties: self.parties,
            me: self.me,
            a: Prg::new(&seed, self.job, LABEL_A).take(self.count),
            b: Prg::new(&seed, self.job, LABEL_B).take(self.count),
            c,
        })
    }
}
