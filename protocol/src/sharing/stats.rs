//! Horizontal statistics from shared sufficient statistics.
//!
//! Every party holds rows of the same schema. For each public group (a
//! category value, or a histogram bin over public edges; one group when
//! nothing is grouped) it computes, in the clear and over its own rows only,
//! the count, and for a value column the sum and the sum of squares in fixed
//! point ([`super::FixedPoint`]). Those vectors, laid out by [`Layout`], are
//! what the parties add with [`super::SecureSum`]; the recipients turn the
//! opened totals into results with [`finish`]: count, sum, mean, sample
//! variance and standard deviation per group, and a histogram is the counts
//! of its bins. Min and max are not offered: no sum reveals them, and an
//! exact extreme is one record's value.
//!
//! Results are exact where they are integers (counts, sums), and rounded
//! half away from zero to the scale's digits otherwise (mean, variance,
//! standard deviation), computed with exact integers throughout (the
//! variance's numerator needs more than 128 bits, hence `num-bigint`).

use num_bigint::{BigInt, Sign};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::fixed::{FixedPointError, fit};
use super::noise::noise_share;
use super::ring::Ring;
use crate::dp::{DpError, Epsilon};

/// How a job's sufficient statistics are laid out: per group, a count, and
/// with a value column its sum and sum of squares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Public groups (categories or bins); 1 when nothing is grouped.
    pub groups: usize,
    /// Whether a value column is summed (else counts only).
    pub values: bool,
}

impl Layout {
    fn per_group(self) -> usize {
        if self.values { 3 } else { 1 }
    }

    /// Ring elements one party shares.
    pub fn width(self) -> usize {
        self.groups * self.per_group()
    }
}

/// Why a party's statistics cannot be shared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A row names a group outside the layout.
    #[error("group {group} is outside the job's {groups} groups")]
    NoSuchGroup {
        /// The group.
        group: usize,
        /// Groups in the layout.
        groups: usize,
    },
    /// A value where the layout has none, or none where it needs one.
    #[error("the job's layout {0}")]
    ValueMismatch(&'static str),
    /// A local total is too large to share.
    #[error(transparent)]
    Range(#[from] FixedPointError),
    /// The noise parameters are out of range.
    #[error(transparent)]
    Noise(#[from] DpError),
}

/// Differential-privacy noise for a job's statistics.
///
/// One record is in one group, so groups compose in parallel; within a group
/// the count, sum and sum of squares share `epsilon` equally (a third each
/// with a value column). Values are clamped to `[-clamp, clamp]` (scaled
/// units) before summing, so one record moves a sum by at most `clamp` and
/// a sum of squares by at most `clamp²`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsNoise {
    /// The job's epsilon, per record.
    pub epsilon: Epsilon,
    /// The largest magnitude a value counts with, in scaled units.
    pub clamp: i128,
}

/// One party's sufficient statistics, summed over its own rows.
pub struct LocalStats {
    layout: Layout,
    clamp: Option<i128>,
    totals: Zeroizing<Vec<i128>>,
}

impl std::fmt::Debug for LocalStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalStats({:?}, <redacted>)", self.layout)
    }
}

impl LocalStats {
    /// Empty statistics; with `noise`, values are clamped as it says.
    pub fn new(layout: Layout, noise: Option<&StatsNoise>) -> Self {
        Self {
            layout,
            clamp: noise.map(|n| n.clamp.abs()),
            totals: Zeroizing::new(vec![0; layout.width()]),
        }
    }

    /// Adds one row: its group and, with a value column, its scaled value.
    pub fn add(&mut self, group: usize, value: Option<i128>) -> Result<(), StatsError> {
        let groups = self.layout.groups;
        if group >= groups {
            return Err(StatsError::NoSuchGroup { group, groups });
        }
        let at = group * self.layout.per_group();
        let range = |value| FixedPointError::OutOfRange {
            value,
            parties: 1,
            bits: 127,
        };
        self.totals[at] += 1;
        match (self.layout.values, value) {
            (true, Some(value)) => {
                let value = match self.clamp {
                    Some(c) => value.clamp(-c, c),
                    None => value,
                };
                let square = value.checked_mul(value).ok_or(range(value))?;
                self.totals[at + 1] = self.totals[at + 1].checked_add(value).ok_or(range(value))?;
                self.totals[at + 2] = self.totals[at + 2]
                    .checked_add(square)
                    .ok_or(range(value))?;
                Ok(())
            }
            (false, None) => Ok(()),
            (true, None) => Err(StatsError::ValueMismatch(
                "sums a value column; give a value",
            )),
            (false, Some(_)) => Err(StatsError::ValueMismatch("counts only; give no value")),
        }
    }

    /// The ring elements this party shares among `parties`: its totals,
    /// with its share of the noise when the job has noise.
    pub fn to_share<R: Ring, G: CryptoRng + RngCore>(
        &self,
        parties: usize,
        noise: Option<&StatsNoise>,
        rng: &mut G,
    ) -> Result<Zeroizing<Vec<R>>, StatsError> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.totals.len()));
        // A group's count, sum and sum of squares share epsilon equally.
        let per_statistic = noise
            .map(|n| {
                let parts = self.layout.per_group() as u64;
                let den = n
                    .epsilon
                    .den()
                    .checked_mul(parts)
                    .ok_or(DpError::EpsilonOutOfRange {
                        num: n.epsilon.num(),
                        den: n.epsilon.den(),
                    })?;
                let clamp = u64::try_from(n.clamp.unsigned_abs()).unwrap_or(u64::MAX);
                Ok::<_, DpError>((Epsilon::new(n.epsilon.num(), den)?, clamp))
            })
            .transpose()?;
        for (k, &total) in self.totals.iter().enumerate() {
            let noisy = match per_statistic {
                Some((epsilon, clamp)) => {
                    let sensitivity = match k % self.layout.per_group() {
                        0 => 1,
                        1 => clamp,
                        _ => clamp.saturating_mul(clamp),
                    };
                    total + noise_share(epsilon, sensitivity, rng)?
                }
                None => total,
            };
            out.push(fit::<R>(noisy, parties)?);
        }
        Ok(out)
    }
}

/// One group's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResult {
    /// Rows in the group, over all parties.
    pub count: i128,
    /// The sum of the value column, scaled.
    pub sum: Option<i128>,
    /// The mean, scaled, rounded half away from zero.
    pub mean: Option<i128>,
    /// The sample variance (divisor count − 1), scaled, rounded.
    pub variance: Option<i128>,
    /// The sample standard deviation, scaled, rounded.
    pub std_dev: Option<i128>,
}

/// Turns opened totals (in the layout's order) into results, one per group.
/// With noise, a count below 2 leaves the mean or variance undefined
/// (`None`), and a noisy variance below 0 is reported as 0.
pub fn finish(layout: Layout, totals: &[i128], digits: u32) -> Vec<GroupResult> {
    totals
        .chunks(layout.per_group())
        .take(layout.groups)
        .map(|group| {
            let count = group[0];
            if !layout.values || group.len() < 3 {
                return GroupResult {
                    count,
                    sum: None,
                    mean: None,
                    variance: None,
                    std_dev: None,
                };
            }
            let (sum, squares) = (group[1], group[2]);
            let mean = (count >= 1).then(|| rounded_div(&BigInt::from(sum), &BigInt::from(count)));
            let (variance, std_dev) = if count >= 2 {
                // Var = (count·Σx² − (Σx)²) / (count·(count − 1)), at scale
                // 10^(2·digits); bring it back to 10^digits.
                let c = BigInt::from(count);
                let numerator = (&c * BigInt::from(squares)
                    - BigInt::from(sum) * BigInt::from(sum))
                .max(BigInt::from(0));
                let denominator = &c * (&c - 1);
                let unit = BigInt::from(10).pow(digits);
                let variance = rounded_div(&numerator, &(&denominator * &unit));
                (Some(variance), Some(rounded_sqrt(&numerator, &denominator)))
            } else {
                (None, None)
            };
            GroupResult {
                count,
                sum: Some(sum),
                mean: mean.map(to_i128),
                variance: variance.map(to_i128),
                std_dev: std_dev.map(to_i128),
            }
        })
        .collect()
}

/// `num / den` rounded half away from zero (`den > 0`).
pub(crate) fn rounded_div(num: &BigInt, den: &BigInt) -> BigInt {
    let half_up = (num.magnitude() * 2u32 + den.magnitude()) / (den.magnitude() * 2u32);
    BigInt::from_biguint(
        if num.sign() == Sign::Minus {
            Sign::Minus
        } else {
            Sign::Plus
        },
        half_up,
    )
}

/// √(num / den) rounded to the nearest integer (`num ≥ 0`, `den > 0`):
/// s = ⌊√⌊x⌋⌋ = ⌊√x⌋, then s + 1 if x ≥ (s + ½)².
pub(crate) fn rounded_sqrt(num: &BigInt, den: &BigInt) -> BigInt {
    let floor = BigInt::from((num / den).magnitude().sqrt());
    let next = &floor * &floor * 4 + &floor * 4 + 1;
    if num * 4 >= next * den {
        floor + 1
    } else {
        floor
    }
}

pub(crate) fn to_i128(value: BigInt) -> i128 {
    i128::try_from(value).unwrap_or(i128::MAX)
}
