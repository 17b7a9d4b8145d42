//! Vertical statistics: two parties' columns, aligned row by row, joined
//! under MPC so that neither learns which rows the other has.
//!
//! Party A (index 0) holds, per row, a presence flag `p_A`, a value `x` and
//! optionally a category; party B (index 1) a flag `p_B` and a value `y`
//! (an earlier protocol aligned their ids; an absent row is all zeros). The
//! statistics are over the rows both have, `m = p_A·p_B`:
//!
//! | opened sum | A's factor | B's factor |
//! |---|---|---|
//! | Σ m | `p_A` | `p_B` |
//! | Σ m·x | `p_A·x` | `p_B` |
//! | Σ m·x² | `p_A·x²` | `p_B` |
//! | Σ m·y | `p_A` | `p_B·y` |
//! | Σ m·y² | `p_A` | `p_B·y²` |
//! | Σ m·x·y | `p_A·x` | `p_B·y` |
//! | per category j: Σ m·g_j | `p_A·g_j` | `p_B` |
//! | per category j: Σ m·g_j·y | `p_A·g_j` | `p_B·y` |
//!
//! Each factor is local to its party, so every statistic is one dot
//! product of an A-vector and a B-vector: `6 + 2k` dot products of length
//! `rows` for `k` categories, all in one round of multiplication
//! ([`super::DotProducts`]), then one round to open the sums. Each party
//! holds its own vector whole and the other's share of it is zero, a valid
//! additive sharing: the Beaver masks `d = x − a` and `e = y − b` hide the
//! values, and sharing by seed first would add a round for nothing.
//!
//! **Ring and range.** Values are fixed point with one scale for both
//! columns ([`crate::sharing::FixedPoint`]); products are at twice the
//! scale and summed with no truncation, in Z_2^128. A value is at most
//! [`MAX_SCALED`] (10^15) in magnitude and a job at most [`MAX_ROWS`]
//! (2^20) rows, so every sum is below 2^20·10^30 < 2^120 in magnitude and
//! never wraps. Results are exact integers (counts, sums) or rounded half
//! away from zero from exact integer arithmetic (means, variances,
//! covariance; correlation to [`CORRELATION_DIGITS`] digits).

use num_bigint::BigInt;
use zeroize::Zeroizing;

use super::dealer::TripleShares;
use super::dot::{DotProducts, DotStep};
use super::inner::{InnerPlan, InnerProducts, InnerStep};
use super::messages::DealerMessage;
use super::{BeaverError, MAX_PRODUCTS};
use crate::sharing::stats::{rounded_div, rounded_sqrt, to_i128};
use crate::sharing::{GroupResult, Layout, MAX_SCALED, Ring, Roster, finish as finish_column};
use crate::{Error, JobId};

/// The most rows a vertical job may have.
pub const MAX_ROWS: usize = 1 << 20;

/// Digits of the correlation: it is reported as an integer `r·10^9`,
/// rounded to nearest (ties away from zero), so within `0.5·10^-9` of the
/// exact correlation of the encoded values.
pub const CORRELATION_DIGITS: u32 = 9;

// The range argument above, checked by the compiler: the largest sum of
// products of two largest values over the most rows stays inside the
// signed range of Z_2^128.
const _: () =
    assert!((MAX_ROWS as u128) * (MAX_SCALED as u128) * (MAX_SCALED as u128) < 1u128 << 120);

/// Why a vertical job cannot start with a party's rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerticalError {
    /// More rows than [`MAX_ROWS`], or more statistics than one
    /// multiplication takes.
    #[error(
        "{rows} rows with {categories} categories are more than a vertical job takes ({MAX_ROWS} rows, {MAX_PRODUCTS} products of rows × (6 + 2·categories))"
    )]
    TooLarge {
        /// Rows in the job.
        rows: usize,
        /// Categories in the job.
        categories: usize,
    },
    /// The party's rows are not the job's.
    #[error("the party has {found} rows where the job has {expected}")]
    RowCount {
        /// Rows in the job.
        expected: usize,
        /// Rows given.
        found: usize,
    },
    /// A value past the fixed-point range.
    #[error("row {row} has a value of {value} scaled units, past the largest allowed {MAX_SCALED}")]
    ValueTooLarge {
        /// The row.
        row: usize,
        /// The scaled value.
        value: i128,
    },
    /// A category outside the job's.
    #[error("row {row} is in category {category}, outside the job's {categories}")]
    NoSuchCategory {
        /// The row.
        row: usize,
        /// Its category.
        category: usize,
        /// Categories in the job.
        categories: usize,
    },
    /// A vertical job has exactly two parties.
    #[error("a vertical job has two parties (A = 0, B = 1), not {0}")]
    PartyCount(usize),
    /// The multiplication refused its inputs.
    #[error(transparent)]
    Beaver(#[from] BeaverError),
    /// The inner products refused their start: a vector of the wrong
    /// length, or a dealer's message that is not this party's.
    #[error(transparent)]
    Start(#[from] Error),
}

/// A row of party A: its value (scaled) and category, if the row has one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RowA {
    /// The value of x, in scaled units.
    pub value: i128,
    /// The row's category, `0..categories`; `None` leaves it out of every
    /// group (it still counts in the totals).
    pub category: Option<usize>,
}

impl std::fmt::Debug for RowA {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowA(<redacted>)")
    }
}

/// The public shape of a vertical job, the same at both parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerticalPlan {
    rows: usize,
    categories: usize,
}

impl VerticalPlan {
    /// A job over `rows` aligned rows, B's column grouped by `categories`
    /// of A's categories (0 for no grouping).
    pub fn new(rows: usize, categories: usize) -> Result<Self, VerticalError> {
        let plan = Self { rows, categories };
        let too_large = VerticalError::TooLarge { rows, categories };
        let products = categories
            .checked_mul(2)
            .and_then(|c| c.checked_add(6))
            .and_then(|s| s.checked_mul(rows))
            .ok_or(too_large.clone())?;
        if rows > MAX_ROWS || products > MAX_PRODUCTS {
            return Err(too_large);
        }
        Ok(plan)
    }

    /// Rows in the job.
    pub fn rows(self) -> usize {
        self.rows
    }

    /// Categories of A's grouping.
    pub fn categories(self) -> usize {
        self.categories
    }

    /// Statistics opened: the dot products.
    pub fn statistics(self) -> usize {
        6 + 2 * self.categories
    }

    /// Products multiplied: the triples the dealer deals.
    pub fn products(self) -> usize {
        self.statistics() * self.rows
    }

    /// Which of a party's factors each statistic takes, in the order of the
    /// table above: A's (`P`, `X`, `X2`, `G(j)`) and B's (`P`, `Y`, `Y2`).
    fn factors(self) -> impl Iterator<Item = (Factor, Factor)> {
        use Factor::{Category, Presence, Square, Value};
        [
            (Presence, Presence),
            (Value, Presence),
            (Square, Presence),
            (Presence, Value),
            (Presence, Square),
            (Value, Value),
        ]
        .into_iter()
        .chain((0..self.categories).flat_map(|j| [(Category(j), Presence), (Category(j), Value)]))
    }

    fn check_rows_a(self, rows: &[Option<RowA>]) -> Result<(), VerticalError> {
        self.check_rows(rows.len())?;
        for (row, r) in rows.iter().enumerate() {
            let Some(r) = r else { continue };
            check_value(row, r.value)?;
            if let Some(category) = r.category.filter(|&c| c >= self.categories) {
                return Err(VerticalError::NoSuchCategory {
                    row,
                    category,
                    categories: self.categories,
                });
            }
        }
        Ok(())
    }

    fn check_rows_b(self, rows: &[Option<i128>]) -> Result<(), VerticalError> {
        self.check_rows(rows.len())?;
        for (row, value) in rows.iter().enumerate() {
            if let Some(value) = value {
                check_value(row, *value)?;
            }
        }
        Ok(())
    }

    fn check_rows(self, found: usize) -> Result<(), VerticalError> {
        if found != self.rows {
            return Err(VerticalError::RowCount {
                expected: self.rows,
                found,
            });
        }
        Ok(())
    }

    /// A's vector: its factor of every statistic, row by row, laid end to
    /// end. `rows[r]` is `None` where A does not have row r.
    pub fn vector_a(self, rows: &[Option<RowA>]) -> Result<Zeroizing<Vec<u128>>, VerticalError> {
        self.check_rows_a(rows)?;
        Ok(self.vector(
            |factor, r| {
                rows[r].map_or(0, |row| match factor {
                    Factor::Presence => 1,
                    Factor::Value => row.value,
                    Factor::Square => row.value * row.value,
                    Factor::Category(j) => i128::from(row.category == Some(j)),
                })
            },
            true,
        ))
    }

    /// B's vector: its factor of every statistic, row by row, laid end to
    /// end. `rows[r]` is B's value (scaled) or `None` where B does not have
    /// row r.
    pub fn vector_b(self, rows: &[Option<i128>]) -> Result<Zeroizing<Vec<u128>>, VerticalError> {
        self.check_rows_b(rows)?;
        Ok(self.vector(
            |factor, r| {
                rows[r].map_or(0, |value| match factor {
                    Factor::Value => value,
                    Factor::Square => value * value,
                    Factor::Presence | Factor::Category(_) => 1,
                })
            },
            false,
        ))
    }

    fn vector(self, entry: impl Fn(Factor, usize) -> i128, of_a: bool) -> Zeroizing<Vec<u128>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.products()));
        for (a, b) in self.factors() {
            let factor = if of_a { a } else { b };
            // Checked values: |v| ≤ 10^15, so v² < 2^100 and the cast to
            // two's complement is exact.
            out.extend((0..self.rows).map(|r| entry(factor, r) as u128));
        }
        out
    }
}

impl VerticalPlan {
    /// The batch of inner products the plan's statistics are, for
    /// [`crate::beaver::InnerProducts`]: A's distinct factors (`P`, `X`,
    /// `X2`, then `G(j)`) and B's (`P`, `Y`, `Y2`), each sent once, masked,
    /// whatever the number of statistics it is in.
    pub fn inner_plan(self) -> Result<InnerPlan, VerticalError> {
        let pairs = self
            .factors()
            .map(|(a, b)| (a.index(), b.index()))
            .collect();
        Ok(InnerPlan::new(self.rows, 3 + self.categories, 3, pairs)?)
    }

    /// A's distinct factors, row by row, for [`Self::inner_plan`].
    pub fn owned_vectors_a(
        self,
        rows: &[Option<RowA>],
    ) -> Result<Zeroizing<Vec<u128>>, VerticalError> {
        self.check_rows_a(rows)?;
        let factors: Vec<Factor> = [Factor::Presence, Factor::Value, Factor::Square]
            .into_iter()
            .chain((0..self.categories).map(Factor::Category))
            .collect();
        Ok(row_major(
            rows,
            &factors,
            |factor, row: &RowA| match factor {
                Factor::Presence => 1,
                Factor::Value => row.value,
                Factor::Square => row.value * row.value,
                Factor::Category(j) => i128::from(row.category == Some(j)),
            },
        ))
    }

    /// B's distinct factors, row by row, for [`Self::inner_plan`].
    pub fn owned_vectors_b(
        self,
        rows: &[Option<i128>],
    ) -> Result<Zeroizing<Vec<u128>>, VerticalError> {
        self.check_rows_b(rows)?;
        let factors = [Factor::Presence, Factor::Value, Factor::Square];
        Ok(row_major(
            rows,
            &factors,
            |factor, &value: &i128| match factor {
                Factor::Value => value,
                Factor::Square => value * value,
                Factor::Presence | Factor::Category(_) => 1,
            },
        ))
    }
}

/// Every row's factors, row after row; an absent row is all zeros.
fn row_major<T>(
    rows: &[Option<T>],
    factors: &[Factor],
    entry: impl Fn(Factor, &T) -> i128,
) -> Zeroizing<Vec<u128>> {
    let mut out = Zeroizing::new(Vec::with_capacity(rows.len() * factors.len()));
    for row in rows {
        // Checked values: |v| ≤ 10^15, so v² < 2^100 and the cast to two's
        // complement is exact.
        out.extend(
            factors
                .iter()
                .map(|&f| row.as_ref().map_or(0, |r| entry(f, r)) as u128),
        );
    }
    out
}

/// Starts a vertical job at A (index 0) or B (index 1) on inner products
/// with a dealer ([`crate::beaver::InnerProducts`]): `vectors` from
/// [`VerticalPlan::owned_vectors_a`] or [`VerticalPlan::owned_vectors_b`],
/// `dealt` the dealer's message for [`VerticalPlan::inner_plan`]. The
/// recipients end with the same opened sums as [`start`]'s, with about a
/// quarter of the traffic and a dealer that sends a few hundred bytes.
pub fn start_inner(
    job: JobId,
    roster: Roster,
    plan: VerticalPlan,
    vectors: &[u128],
    dealt: DealerMessage<u128>,
) -> Result<InnerStep<u128>, VerticalError> {
    if roster.parties() != 2 {
        return Err(VerticalError::PartyCount(roster.parties()));
    }
    Ok(InnerProducts::start(
        job,
        roster,
        plan.inner_plan()?,
        vectors,
        dealt,
    )?)
}

#[derive(Clone, Copy)]
enum Factor {
    Presence,
    Value,
    Square,
    Category(usize),
}

impl Factor {
    /// The factor's vector among its owner's distinct factors.
    fn index(self) -> usize {
        match self {
            Self::Presence => 0,
            Self::Value => 1,
            Self::Square => 2,
            Self::Category(j) => 3 + j,
        }
    }
}

fn check_value(row: usize, value: i128) -> Result<(), VerticalError> {
    if value.unsigned_abs() > MAX_SCALED.unsigned_abs() {
        return Err(VerticalError::ValueTooLarge { row, value });
    }
    Ok(())
}

/// Starts a vertical job at party A (index 0) or B (index 1) with its
/// vector ([`VerticalPlan::vector_a`] or [`VerticalPlan::vector_b`]) and
/// its triples for [`VerticalPlan::products`] products. The recipients end
/// with the opened sums, for [`VerticalTotals::from_opened`].
pub fn start(
    roster: Roster,
    plan: VerticalPlan,
    vector: &[u128],
    triples: TripleShares<u128>,
) -> Result<DotStep<u128>, VerticalError> {
    if roster.parties() != 2 {
        return Err(VerticalError::PartyCount(roster.parties()));
    }
    if vector.len() != plan.products() {
        return Err(BeaverError::Length {
            what: "the party's vector",
            expected: plan.products(),
            found: vector.len(),
        }
        .into());
    }
    let zeros = Zeroizing::new(vec![0u128; vector.len()]);
    let (x, y) = if roster.me().0 == 0 {
        (vector, &zeros[..])
    } else {
        (&zeros[..], vector)
    };
    Ok(DotProducts::start(
        roster,
        x,
        y,
        triples,
        plan.statistics(),
    )?)
}

/// The opened sums, as signed integers (values at the job's scale, squares
/// and products at twice the scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerticalTotals {
    /// Σ m: rows both parties have.
    pub count: i128,
    /// Σ m·x.
    pub sum_x: i128,
    /// Σ m·x².
    pub sum_x2: i128,
    /// Σ m·y.
    pub sum_y: i128,
    /// Σ m·y².
    pub sum_y2: i128,
    /// Σ m·x·y.
    pub sum_xy: i128,
    /// Per category: (Σ m·g_j, Σ m·g_j·y).
    pub groups: Vec<(i128, i128)>,
}

impl VerticalTotals {
    /// Reads the values a recipient opened, in the plan's order.
    pub fn from_opened(plan: VerticalPlan, opened: &[u128]) -> Result<Self, VerticalError> {
        if opened.len() != plan.statistics() {
            return Err(BeaverError::Length {
                what: "the opened sums",
                expected: plan.statistics(),
                found: opened.len(),
            }
            .into());
        }
        let v: Vec<i128> = opened.iter().map(|o| o.to_signed()).collect();
        Ok(Self {
            count: v[0],
            sum_x: v[1],
            sum_x2: v[2],
            sum_y: v[3],
            sum_y2: v[4],
            sum_xy: v[5],
            groups: v[6..].chunks(2).map(|g| (g[0], g[1])).collect(),
        })
    }
}

/// One of A's categories: B's column over the common rows in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryResult {
    /// Common rows in the category.
    pub count: i128,
    /// Σ y over them, scaled.
    pub sum: i128,
    /// Their mean of y, scaled, rounded half away from zero; `None` for an
    /// empty category.
    pub mean: Option<i128>,
}

/// The statistics of a vertical job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerticalResult {
    /// Rows both parties have.
    pub count: i128,
    /// A's column over them: sum, mean, sample variance, standard deviation.
    pub x: GroupResult,
    /// B's column over them, likewise.
    pub y: GroupResult,
    /// Σ x·y over them, at twice the scale.
    pub sum_xy: i128,
    /// The sample covariance (divisor count − 1), scaled, rounded; `None`
    /// below two rows.
    pub covariance: Option<i128>,
    /// Pearson's correlation times 10^[`CORRELATION_DIGITS`], rounded;
    /// `None` below two rows or when either column is constant.
    pub correlation: Option<i128>,
    /// B's column per A's category.
    pub groups: Vec<CategoryResult>,
}

/// Turns the opened sums into statistics at `digits` decimal digits (the
/// job's scale). With no common row, counts and sums are 0 and every
/// mean, variance, covariance and correlation is `None`.
pub fn finish(totals: &VerticalTotals, digits: u32) -> VerticalResult {
    let column = |sum, squares| {
        let layout = Layout {
            groups: 1,
            values: true,
        };
        finish_column(layout, &[totals.count, sum, squares], digits)
            .pop()
            .unwrap_or(GroupResult {
                count: totals.count,
                sum: Some(sum),
                mean: None,
                variance: None,
                std_dev: None,
            })
    };
    let n = BigInt::from(totals.count);
    let centred = |sum_uv: i128, sum_u: i128, sum_v: i128| {
        &n * BigInt::from(sum_uv) - BigInt::from(sum_u) * BigInt::from(sum_v)
    };
    let co = centred(totals.sum_xy, totals.sum_x, totals.sum_y);
    let (dx, dy) = (
        centred(totals.sum_x2, totals.sum_x, totals.sum_x),
        centred(totals.sum_y2, totals.sum_y, totals.sum_y),
    );
    let covariance = (totals.count >= 2).then(|| {
        // (n·Σxy − Σx·Σy) / (n·(n − 1)) at twice the scale; back to once.
        let unit = BigInt::from(10).pow(digits);
        to_i128(rounded_div(&co, &(&n * (&n - 1) * unit)))
    });
    let zero = BigInt::from(0);
    let correlation = (totals.count >= 2 && dx > zero && dy > zero).then(|| {
        // |r|·10^P = √(co²·10^(2P) / (dx·dy)), with co's sign.
        let scale = BigInt::from(10).pow(2 * CORRELATION_DIGITS);
        let magnitude = rounded_sqrt(&(&co * &co * scale), &(&dx * &dy));
        to_i128(if co < zero { -magnitude } else { magnitude })
    });
    let groups = totals
        .groups
        .iter()
        .map(|&(count, sum)| CategoryResult {
            count,
            sum,
            mean: (count >= 1)
                .then(|| to_i128(rounded_div(&BigInt::from(sum), &BigInt::from(count)))),
        })
        .collect();
    VerticalResult {
        count: totals.count,
        x: column(totals.sum_x, totals.sum_x2),
        y: column(totals.sum_y, totals.sum_y2),
        sum_xy: totals.sum_xy,
        covariance,
        correlation,
        groups,
    }
}
