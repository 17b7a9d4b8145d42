//! Element-wise products of shared vectors in one round.
//!
//! ```text
//! every party i:  holds shares x_i, y_i and triples a_i, b_i, c_i
//!                 ──► Masked{d_i = x_i − a_i, e_i = y_i − b_i} to every other party
//! every party i:  d = Σ d_j, e = Σ e_j (both public among the parties)
//!                 z_i = c_i + d·b_i + e·a_i, plus d·e at party 0
//! ```
//!
//! `Σ z_i = c + d·b + e·a + d·e = (d + a)(e + b) = x·y`. `d` and `e` are
//! uniform, because `a` and `b` are and no party knows all of their shares,
//! so they say nothing of `x` or `y`; each triple serves one product only.
//! Messages may arrive in any order; each is checked for its sender and
//! lengths, and a second one from a sender aborts.

use zeroize::Zeroizing;

use super::dealer::TripleShares;
use super::messages::BeaverMessage;
use super::{BeaverError, MulRing};
use crate::sharing::{Addressed, PartyIndex, Ring, Roster};
use crate::{Error, Progress, Step};

/// The result of a step of the multiplication.
pub type MulStep<R> = Step<ExpectMasked<R>, ProductShares<R>, Addressed<BeaverMessage<R>>>;

/// This party's shares of the products. Zeroized on drop, never printed.
pub struct ProductShares<R: Ring> {
    shares: Zeroizing<Vec<R>>,
}

impl<R: Ring> std::fmt::Debug for ProductShares<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProductShares(<{} redacted>)", self.shares.len())
    }
}

impl<R: Ring> ProductShares<R> {
    /// Products in the batch.
    pub fn len(&self) -> usize {
        self.shares.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    /// The shares, in the order of the inputs.
    pub fn into_shares(self) -> Zeroizing<Vec<R>> {
        self.shares
    }

    /// Shares of the sums of `parts` consecutive, equally long runs of
    /// products: with the products of `parts` pairs of vectors laid end to
    /// end, the shares of their dot products. Summing shares is local.
    pub fn sums(&self, parts: usize) -> Result<Zeroizing<Vec<R>>, BeaverError> {
        if parts == 0 || !self.shares.len().is_multiple_of(parts) {
            return Err(BeaverError::Length {
                what: "the products, split into equal runs,",
                expected: parts,
                found: self.shares.len(),
            });
        }
        Ok(sum_runs(&self.shares, parts))
    }
}

/// The sums of `parts` equal runs of `shares` (`parts > 0` divides the
/// length; empty runs sum to zero).
pub(super) fn sum_runs<R: Ring>(shares: &[R], parts: usize) -> Zeroizing<Vec<R>> {
    let run = shares.len() / parts;
    let mut out = Zeroizing::new(vec![R::default(); parts]);
    if run > 0 {
        for (sum, chunk) in out.iter_mut().zip(shares.chunks(run)) {
            *sum = chunk.iter().fold(R::default(), |t, &z| t.add(z));
        }
    }
    out
}

/// Starts a batch of multiplications.
pub struct Multiply;

impl Multiply {
    /// Masks this party's shares `x` and `y` (equally long) with its
    /// triples and sends them to every other party.
    pub fn start<R: MulRing>(
        roster: Roster,
        x: &[R],
        y: &[R],
        triples: TripleShares<R>,
    ) -> Result<MulStep<R>, BeaverError> {
        if y.len() != x.len() {
            return Err(BeaverError::Length {
                what: "y",
                expected: x.len(),
                found: y.len(),
            });
        }
        triples.check_for(&roster, x.len())?;
        let mask = |v: &[R], m: &[R]| -> Zeroizing<Vec<R>> {
            Zeroizing::new(v.iter().zip(m).map(|(&v, &m)| v.sub(m)).collect())
        };
        let d = mask(x, &triples.a);
        let e = mask(y, &triples.b);
        let me = roster.me();
        let send = (0..roster.parties())
            .filter(|&j| j != me.0)
            .map(|j| Addressed {
                to: PartyIndex(j),
                message: BeaverMessage::Masked {
                    d: d.to_vec(),
                    e: e.to_vec(),
                },
            })
            .collect();
        let mut heard = vec![false; roster.parties()];
        heard[me.0] = true;
        let state = ExpectMasked {
            roster,
            triples,
            d,
            e,
            heard,
        };
        Ok(Step {
            next: Progress::Continue(state),
            send,
        })
    }
}

/// Waiting for the other parties' masked values.
pub struct ExpectMasked<R: Ring> {
    roster: Roster,
    triples: TripleShares<R>,
    /// Running sums of the parties' shares of d and e.
    d: Zeroizing<Vec<R>>,
    e: Zeroizing<Vec<R>>,
    heard: Vec<bool>,
}

impl<R: Ring> std::fmt::Debug for ExpectMasked<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectMasked")
            .field("me", &self.roster.me())
            .field("parties", &self.roster.parties())
            .field("products", &self.d.len())
            .field("shares", &"<redacted>")
            .finish()
    }
}

impl<R: MulRing> ExpectMasked<R> {
    /// Takes one message from party `from`.
    pub fn handle(
        mut self,
        from: PartyIndex,
        message: BeaverMessage<R>,
    ) -> Result<MulStep<R>, Error> {
        check_sender(&self.roster, from)?;
        let (d, e) = match message {
            BeaverMessage::Masked { d, e } => (Zeroizing::new(d), Zeroizing::new(e)),
            other => {
                return Err(Error::UnexpectedMessage {
                    expected: "Masked",
                    received: other.kind(),
                });
            }
        };
        for v in [&d, &e] {
            if v.len() != self.d.len() {
                return Err(Error::WrongShareCount {
                    from: from.0,
                    expected: self.d.len(),
                    found: v.len(),
                });
            }
        }
        if std::mem::replace(&mut self.heard[from.0], true) {
            return Err(Error::WrongParty {
                from: from.0,
                problem: "it sent its masked values twice",
            });
        }
        add_into(&mut self.d, &d);
        add_into(&mut self.e, &e);
        if !self.heard.iter().all(|&h| h) {
            return Ok(Step {
                next: Progress::Continue(self),
                send: Vec::new(),
            });
        }
        Ok(Step {
            next: Progress::Done(self.products()),
            send: Vec::new(),
        })
    }

    /// z_i = c_i + d·b_i + e·a_i (+ d·e at party 0), once d and e are whole.
    fn products(self) -> ProductShares<R> {
        let first = self.roster.me().0 == 0;
        let t = &self.triples;
        let shares = (0..self.d.len())
            .map(|r| {
                let (d, e) = (self.d[r], self.e[r]);
                let z = t.c[r].add(d.mul(t.b[r])).add(e.mul(t.a[r]));
                if first { z.add(d.mul(e)) } else { z }
            })
            .collect();
        ProductShares {
            shares: Zeroizing::new(shares),
        }
    }
}

/// Refuses a message from outside the job or from this party itself.
pub(super) fn check_sender(roster: &Roster, from: PartyIndex) -> Result<(), Error> {
    if from.0 >= roster.parties() {
        return Err(Error::WrongParty {
            from: from.0,
            problem: "it is not a party to this job",
        });
    }
    if from == roster.me() {
        return Err(Error::WrongParty {
            from: from.0,
            problem: "it is this party itself",
        });
    }
    Ok(())
}

pub(super) fn add_into<R: Ring>(sum: &mut [R], shares: &[R]) {
    for (s, &x) in sum.iter_mut().zip(shares) {
        *s = s.add(x);
    }
}
