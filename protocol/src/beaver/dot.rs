//! Dot products, opened: [`super::Multiply`], local sums, then
//! [`super::Open`], as one machine.
//!
//! ```text
//! round 1:  ──► Masked{d_i, e_i} to every other party      (P·L products)
//!           each party sums its product shares over each run of L
//! round 2:  ──► Opening{P sums} to each recipient
//! ```
//!
//! A fast party's `Opening` may reach a recipient before the recipient has
//! every `Masked`; it is checked (sender, length, at most one per party) and
//! held until the recipient's own sums are known.

use zeroize::Zeroizing;

use super::dealer::TripleShares;
use super::messages::BeaverMessage;
use super::multiply::{ExpectMasked, Multiply, sum_runs};
use super::open::{ExpectOpenings, Open, OpenStep, checked_opening, open_with_early};
use super::{BeaverError, MulRing};
use crate::sharing::{Addressed, PartyIndex, Ring, Roster, SumOutput};
use crate::{Error, Progress, Step};

/// What a party ends with: the opened dot products at a recipient.
pub type DotOutput<R> = SumOutput<R>;

/// The result of a step of [`DotProducts`].
pub type DotStep<R> = Step<ExpectDot<R>, DotOutput<R>, Addressed<BeaverMessage<R>>>;

/// Starts a batch of dot products.
pub struct DotProducts;

impl DotProducts {
    /// `x` and `y` hold this party's shares of `parts` pairs of vectors of
    /// one length, laid end to end; the recipients learn the `parts` dot
    /// products and nothing else is opened.
    pub fn start<R: MulRing>(
        roster: Roster,
        x: &[R],
        y: &[R],
        triples: TripleShares<R>,
        parts: usize,
    ) -> Result<DotStep<R>, BeaverError> {
        if parts == 0 || !x.len().is_multiple_of(parts) {
            return Err(BeaverError::Length {
                what: "the vectors, split into equal runs,",
                expected: parts,
                found: x.len(),
            });
        }
        let Step { next, send } = Multiply::start(roster.clone(), x, y, triples)?;
        let Progress::Continue(multiply) = next else {
            // A job has at least two parties, so nobody multiplies alone.
            return Err(BeaverError::PartyCount(roster.parties()));
        };
        let early = vec![None; roster.parties()];
        let state = ExpectDot {
            phase: Phase::Masked {
                multiply,
                roster,
                parts,
                early,
            },
        };
        Ok(Step {
            next: Progress::Continue(state),
            send,
        })
    }
}

/// Waiting for the other parties' masked values, then (at a recipient)
/// their shares of the dot products.
pub struct ExpectDot<R: Ring> {
    phase: Phase<R>,
}

enum Phase<R: Ring> {
    Masked {
        multiply: ExpectMasked<R>,
        roster: Roster,
        parts: usize,
        /// Openings that came before this party's own sums.
        early: Vec<Option<Zeroizing<Vec<R>>>>,
    },
    Openings(ExpectOpenings<R>),
}

impl<R: Ring> std::fmt::Debug for ExpectDot<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.phase {
            Phase::Masked { multiply, .. } => write!(f, "ExpectDot({multiply:?})"),
            Phase::Openings(open) => write!(f, "ExpectDot({open:?})"),
        }
    }
}

impl<R: MulRing> ExpectDot<R> {
    /// Takes one message from party `from`.
    pub fn handle(self, from: PartyIndex, message: BeaverMessage<R>) -> Result<DotStep<R>, Error> {
        match self.phase {
            Phase::Openings(open) => Ok(from_open(open.handle(from, message)?)),
            Phase::Masked {
                multiply,
                roster,
                parts,
                mut early,
            } => {
                if let BeaverMessage::Opening(_) = message {
                    let shares = checked_opening(&roster, parts, from, message)?;
                    if early[from.0].replace(shares).is_some() {
                        return Err(Error::WrongParty {
                            from: from.0,
                            problem: "it sent its shares of the opened values twice",
                        });
                    }
                    let phase = Phase::Masked {
                        multiply,
                        roster,
                        parts,
                        early,
                    };
                    return Ok(continue_with(phase, Vec::new()));
                }
                let step = multiply.handle(from, message)?;
                match step.next {
                    Progress::Continue(multiply) => {
                        let phase = Phase::Masked {
                            multiply,
                            roster,
                            parts,
                            early,
                        };
                        Ok(continue_with(phase, step.send))
                    }
                    Progress::Done(products) => {
                        let sums = sum_runs(&products.into_shares(), parts);
                        Ok(from_open(open_with_early(
                            Open::start(roster, sums),
                            early,
                        )?))
                    }
                }
            }
        }
    }
}

fn from_open<R: Ring>(step: OpenStep<R>) -> DotStep<R> {
    Step {
        next: match step.next {
            Progress::Continue(open) => Progress::Continue(ExpectDot {
                phase: Phase::Openings(open),
            }),
            Progress::Done(output) => Progress::Done(output),
        },
        send: step.send,
    }
}

fn continue_with<R: Ring>(phase: Phase<R>, send: Vec<Addressed<BeaverMessage<R>>>) -> DotStep<R> {
    Step {
        next: Progress::Continue(ExpectDot { phase }),
        send,
    }
}
