//! Inner products of two owners' vectors with a dealer's help: Beaver's
//! commodity model, in the form of Du and Atallah's scalar product.
//!
//! Party A (index 0) holds vectors `u_1 … u_p`, party B (index 1) vectors
//! `v_1 … v_q`, all of `rows` elements; the job asks for the inner
//! products `u_i · v_j` of some pairs `(i, j)`. General Beaver
//! multiplication ([`super::DotProducts`]) would secret-share each factor
//! of each pair and send two masked elements per product from each party;
//! here each vector is masked once by its owner, whatever the number of
//! pairs it is in:
//!
//! ```text
//! dealer:  seeds ρ (A's masks r), σ (B's masks s), α (A's shares of r·s);
//!          β_ij = r_i · s_j − α_ij for each pair
//!          ──► InnerToA{ρ, α} to A          ──► InnerToB{σ, β} to B
//! A:       ──► MaskedVectors{u_i + r_i, every i} to B
//! B:       ──► MaskedVectors{v_j + s_j, every j} to A
//! A:       share_ij = α_ij − r_i · (v_j + s_j)
//! B:       share_ij = β_ij + (u_i + r_i) · v_j
//!          (the two add up to u_i·v_j + r_i·v_j − r_i·v_j − r_i·s_j + r_i·s_j)
//! then:    ──► Opening{shares} to each recipient (as [`super::Open`])
//! ```
//!
//! A sees only `v_j + s_j`, uniform because it does not know `s_j`; B sees
//! only `u_i + r_i`; the dealer sees nothing from either and sends three
//! seeds and one ring element per pair, whatever `rows` is. As with the
//! general dealer, a dealer that colludes with a party learns the other
//! party's vectors (it knows their masks).
//!
//! Masks are laid out row by row (row `l`'s masks of every vector are
//! consecutive), so the dealer computes each `r_i · s_j` in one pass over
//! the two streams with memory for one row. Masked rows travel in chunks
//! of at most [`MAX_CHUNK_ELEMENTS`], whole rows each, which the receiver
//! folds into its running sums as they come: a sender's chunks must arrive
//! in the order sent, as on the one ordered stream between two parties.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::messages::{BeaverMessage, DealerMessage};
use super::multiply::check_sender;
use super::open::{ExpectOpenings, Open, OpenStep, checked_opening, open_with_early};
use super::prg::{Prg, Seed};
use super::{BeaverError, MAX_PRODUCTS, MulRing};
use crate::sharing::{Addressed, PartyIndex, Ring, Roster, SumOutput};
use crate::{Error, JobId, Progress, Step};

/// The most ring elements one `MaskedVectors` message carries (512 KiB in
/// Z_2^128): whole rows, so a receiver folds each in as it arrives.
pub const MAX_CHUNK_ELEMENTS: usize = 1 << 15;

const LABEL_MASKS_A: &[u8] = b"inner/masks-a";
const LABEL_MASKS_B: &[u8] = b"inner/masks-b";
const LABEL_ALPHA: &[u8] = b"inner/alpha";

/// The public shape of a batch of inner products, the same at both
/// parties and the dealer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerPlan {
    rows: usize,
    a_vectors: usize,
    b_vectors: usize,
    pairs: Vec<(usize, usize)>,
}

impl InnerPlan {
    /// `pairs` lists `(i, j)`: the inner product of A's vector `i` and B's
    /// vector `j`, in the order they are opened.
    pub fn new(
        rows: usize,
        a_vectors: usize,
        b_vectors: usize,
        pairs: Vec<(usize, usize)>,
    ) -> Result<Self, BeaverError> {
        let elements = rows.checked_mul(a_vectors.max(b_vectors));
        if elements.is_none_or(|e| e > MAX_PRODUCTS) || pairs.len() > MAX_PRODUCTS {
            return Err(BeaverError::TooManyProducts(elements.unwrap_or(usize::MAX)));
        }
        if pairs.is_empty() {
            return Err(BeaverError::Length {
                what: "the list of inner products",
                expected: 1,
                found: 0,
            });
        }
        if let Some(&(i, j)) = pairs
            .iter()
            .find(|(i, j)| *i >= a_vectors || *j >= b_vectors)
        {
            return Err(BeaverError::Length {
                what: "a pair's vector index",
                expected: if i >= a_vectors { a_vectors } else { b_vectors },
                found: if i >= a_vectors { i } else { j },
            });
        }
        Ok(Self {
            rows,
            a_vectors,
            b_vectors,
            pairs,
        })
    }

    /// Elements a party's vectors hold, row by row: `rows · width`.
    pub fn elements(&self, party: PartyIndex) -> usize {
        self.rows * self.width(party)
    }

    /// Vectors a party holds: the elements of each of its rows.
    pub fn width(&self, party: PartyIndex) -> usize {
        if party.0 == 0 {
            self.a_vectors
        } else {
            self.b_vectors
        }
    }

    /// The inner products, in the order they are opened.
    pub fn pairs(&self) -> &[(usize, usize)] {
        &self.pairs
    }
}

/// Deals the masks and correlations of one batch of inner products.
pub struct InnerDealer;

impl InnerDealer {
    /// A's and B's material for `plan` under `job`: three seeds and one
    /// ring element per pair, whatever the number of rows.
    pub fn deal<R: MulRing, G: CryptoRng + RngCore>(
        job: JobId,
        plan: &InnerPlan,
        rng: &mut G,
    ) -> [Addressed<DealerMessage<R>>; 2] {
        let (masks_a, masks_b, alphas) = (Seed::random(rng), Seed::random(rng), Seed::random(rng));
        let mut r_stream = Prg::new(&masks_a, job, LABEL_MASKS_A);
        let mut s_stream = Prg::new(&masks_b, job, LABEL_MASKS_B);
        let mut r = Zeroizing::new(vec![R::default(); plan.a_vectors]);
        let mut s = Zeroizing::new(vec![R::default(); plan.b_vectors]);
        let mut products = Zeroizing::new(vec![R::default(); plan.pairs.len()]);
        for _ in 0..plan.rows {
            r.iter_mut().for_each(|m| *m = r_stream.next());
            s.iter_mut().for_each(|m| *m = s_stream.next());
            for (sum, &(i, j)) in products.iter_mut().zip(&plan.pairs) {
                *sum = sum.add(r[i].mul(s[j]));
            }
        }
        let alpha = Prg::new(&alphas, job, LABEL_ALPHA).take::<R>(plan.pairs.len());
        let betas = products
            .iter()
            .zip(alpha.iter())
            .map(|(&p, &a)| p.sub(a))
            .collect();
        [
            Addressed {
                to: PartyIndex(0),
                message: DealerMessage::InnerToA { masks_a, alphas },
            },
            Addressed {
                to: PartyIndex(1),
                message: DealerMessage::InnerToB { masks_b, betas },
            },
        ]
    }
}

/// The result of a step of [`InnerProducts`]: the opened inner products at
/// a recipient.
pub type InnerStep<R> = Step<ExpectInner<R>, SumOutput<R>, Addressed<BeaverMessage<R>>>;

/// Starts a batch of inner products at A or B.
pub struct InnerProducts;

impl InnerProducts {
    /// `own` holds this party's vectors row by row (`own[l·width + i]` is
    /// row `l` of vector `i`); `dealt` is the dealer's message to it.
    pub fn start<R: MulRing>(
        job: JobId,
        roster: Roster,
        plan: InnerPlan,
        own: &[R],
        dealt: DealerMessage<R>,
    ) -> Result<InnerStep<R>, Error> {
        let me = roster.me();
        if roster.parties() != 2 {
            return Err(Error::WrongParty {
                from: me.0,
                problem: "inner products with a dealer have exactly two parties",
            });
        }
        if own.len() != plan.elements(me) {
            return Err(Error::WrongShareCount {
                from: me.0,
                expected: plan.elements(me),
                found: own.len(),
            });
        }
        let (masks, correlation) = material(job, &plan, me, dealt)?;
        let masked: Vec<R> = own
            .iter()
            .zip(masks.iter())
            .map(|(&x, &m)| x.add(m))
            .collect();
        let other = PartyIndex(1 - me.0);
        // Whole rows a message, so a receiver folds each chunk in as it
        // comes; one empty message when there are no rows at all.
        let rows_per_chunk = (MAX_CHUNK_ELEMENTS / plan.width(me).max(1)).max(1);
        let chunk = rows_per_chunk * plan.width(me);
        let mut send: Vec<_> = masked
            .chunks(chunk.max(1))
            .map(|c| Addressed {
                to: other,
                message: BeaverMessage::MaskedVectors(c.to_vec()),
            })
            .collect();
        if send.is_empty() {
            send.push(Addressed {
                to: other,
                message: BeaverMessage::MaskedVectors(Vec::new()),
            });
        }
        // A multiplies its masks by what B sends, B its own vectors by what
        // A sends: each keeps only that.
        let local = if me.0 == 0 {
            masks
        } else {
            Zeroizing::new(own.to_vec())
        };
        let state = ExpectInner {
            phase: Phase::Masked(Box::new(Masked {
                other,
                local,
                correlation,
                sums: Zeroizing::new(vec![R::default(); plan.pairs.len()]),
                rows_received: 0,
                early: vec![None; 2],
                roster,
                plan,
            })),
        };
        Ok(Step {
            next: Progress::Continue(state),
            send,
        })
    }
}

/// A party's material from the dealer: its masks, row by row, and its
/// share of each pair's `r·s`.
type Material<R> = (Zeroizing<Vec<R>>, Zeroizing<Vec<R>>);

/// This party's masks and correlations from the dealer's message; refuses
/// a message meant for the other party or for another plan.
fn material<R: MulRing>(
    job: JobId,
    plan: &InnerPlan,
    me: PartyIndex,
    dealt: DealerMessage<R>,
) -> Result<Material<R>, Error> {
    let wrong = |expected| Error::UnexpectedMessage {
        expected,
        received: "another party's dealer message",
    };
    match (me.0, dealt) {
        (0, DealerMessage::InnerToA { masks_a, alphas }) => Ok((
            Prg::new(&masks_a, job, LABEL_MASKS_A).take(plan.elements(me)),
            Prg::new(&alphas, job, LABEL_ALPHA).take(plan.pairs.len()),
        )),
        (1, DealerMessage::InnerToB { masks_b, betas }) => {
            if betas.len() != plan.pairs.len() {
                return Err(Error::WrongDealerCount {
                    expected: plan.pairs.len(),
                    found: betas.len(),
                });
            }
            Ok((
                Prg::new(&masks_b, job, LABEL_MASKS_B).take(plan.elements(me)),
                Zeroizing::new(betas),
            ))
        }
        (0, _) => Err(wrong("InnerToA")),
        _ => Err(wrong("InnerToB")),
    }
}

/// Waiting for the other party's masked vectors, then (at a recipient)
/// its shares of the inner products.
pub struct ExpectInner<R: Ring> {
    phase: Phase<R>,
}

enum Phase<R: Ring> {
    Masked(Box<Masked<R>>),
    Openings(ExpectOpenings<R>),
}

/// Folding the other party's masked rows in as they come.
struct Masked<R: Ring> {
    other: PartyIndex,
    /// What this party multiplies the received rows by: A its masks `r`,
    /// B its own vectors `v`, row by row.
    local: Zeroizing<Vec<R>>,
    /// A's `α` or B's `β`, one per pair.
    correlation: Zeroizing<Vec<R>>,
    /// The running sums over the rows received so far, one per pair.
    sums: Zeroizing<Vec<R>>,
    rows_received: usize,
    /// Openings that came before this party's own shares.
    early: Vec<Option<Zeroizing<Vec<R>>>>,
    roster: Roster,
    plan: InnerPlan,
}

impl<R: Ring> std::fmt::Debug for ExpectInner<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.phase {
            Phase::Masked(m) => write!(
                f,
                "ExpectInner({} of {} masked rows, {} pairs, <redacted>)",
                m.rows_received,
                m.plan.rows,
                m.plan.pairs.len()
            ),
            Phase::Openings(open) => write!(f, "ExpectInner({open:?})"),
        }
    }
}

impl<R: MulRing> ExpectInner<R> {
    /// Takes one message from party `from`.
    pub fn handle(
        self,
        from: PartyIndex,
        message: BeaverMessage<R>,
    ) -> Result<InnerStep<R>, Error> {
        let mut masked = match self.phase {
            Phase::Openings(open) => return Ok(from_open(open.handle(from, message)?)),
            Phase::Masked(masked) => masked,
        };
        check_sender(&masked.roster, from)?;
        let received = match message {
            BeaverMessage::MaskedVectors(received) => Zeroizing::new(received),
            opening @ BeaverMessage::Opening(_) => {
                let shares =
                    checked_opening(&masked.roster, masked.plan.pairs.len(), from, opening)?;
                if masked.early[from.0].replace(shares).is_some() {
                    return Err(Error::WrongParty {
                        from: from.0,
                        problem: "it sent its shares of the opened values twice",
                    });
                }
                return Ok(masked.waiting());
            }
            other_kind => {
                return Err(Error::UnexpectedMessage {
                    expected: "MaskedVectors",
                    received: other_kind.kind(),
                });
            }
        };
        masked.fold(from, &received)?;
        if masked.rows_received < masked.plan.rows {
            return Ok(masked.waiting());
        }
        let Masked {
            roster,
            correlation,
            mut sums,
            early,
            ..
        } = *masked;
        let a = roster.me().0 == 0;
        for (sum, &c) in sums.iter_mut().zip(correlation.iter()) {
            *sum = if a { c.sub(*sum) } else { c.add(*sum) };
        }
        Ok(from_open(open_with_early(
            Open::start(roster, sums),
            early,
        )?))
    }
}

impl<R: MulRing> Masked<R> {
    /// Adds one chunk of the other party's masked rows to the running sums:
    /// A's `Σ r_i·(v_j + s_j)`, B's `Σ (u_i + r_i)·v_j`.
    fn fold(&mut self, from: PartyIndex, chunk: &[R]) -> Result<(), Error> {
        let plan = &self.plan;
        let (width_a, width_b) = (plan.a_vectors, plan.b_vectors);
        let width = plan.width(self.other);
        let rows = chunk.len().checked_div(width).unwrap_or(0);
        let fits = self.rows_received + rows <= plan.rows;
        // Whole rows, not past the plan's, and nothing empty unless there
        // are no rows at all (an empty chunk would never end the wait).
        if !chunk.len().is_multiple_of(width.max(1)) || !fits || (rows == 0 && plan.rows > 0) {
            return Err(Error::WrongShareCount {
                from: from.0,
                expected: plan.elements(self.other) - self.rows_received * width,
                found: chunk.len(),
            });
        }
        let a = self.roster.me().0 == 0;
        for k in 0..rows {
            let row = self.rows_received + k;
            for (sum, &(i, j)) in self.sums.iter_mut().zip(&plan.pairs) {
                let term = if a {
                    self.local[row * width_a + i].mul(chunk[k * width_b + j])
                } else {
                    chunk[k * width_a + i].mul(self.local[row * width_b + j])
                };
                *sum = sum.add(term);
            }
        }
        self.rows_received += rows;
        Ok(())
    }

    fn waiting(self: Box<Self>) -> InnerStep<R> {
        Step {
            next: Progress::Continue(ExpectInner {
                phase: Phase::Masked(self),
            }),
            send: Vec::new(),
        }
    }
}

fn from_open<R: Ring>(step: OpenStep<R>) -> InnerStep<R> {
    Step {
        next: match step.next {
            Progress::Continue(open) => Progress::Continue(ExpectInner {
                phase: Phase::Openings(open),
            }),
            Progress::Done(output) => Progress::Done(output),
        },
        send: step.send,
    }
}
