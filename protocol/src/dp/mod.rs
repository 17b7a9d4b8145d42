//! Exact integer differential-privacy noise: the discrete Laplace
//! distribution, sampled with integer arithmetic only.
//!
//! Follows Canonne, Kamath and Steinke, "The Discrete Gaussian for
//! Differential Privacy" (NeurIPS 2020): Algorithm 1 draws
//! Bernoulli(exp(−γ)) for rational γ exactly, and Algorithm 2 builds the
//! discrete Laplace from it. Nothing in the sampling path uses floating
//! point, whose rounding makes textbook Laplace noise leak (Mironov 2012).
//!
//! For a count (sensitivity 1), adding Z with P(Z = z) ∝ exp(−ε|z|) gives
//! ε-differential privacy. The protocols add noise as padding (dummy
//! elements), which cannot be negative, so the noise is offset and clamped;
//! the clamped ends cost the δ. [`padding_for_release`] draws all of one
//! job's padding, private under adding or removing a record.

use rand::Rng;
use rand_core::{CryptoRng, RngCore};

/// A positive rational privacy parameter `num / den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epsilon {
    num: u64,
    den: u64,
}

/// Why an epsilon or a tail probability is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// Epsilon is zero or out of range.
    #[error("epsilon {num}/{den} is out of range: it must be above 0 and at most 64")]
    EpsilonOutOfRange {
        /// Numerator.
        num: u64,
        /// Denominator.
        den: u64,
    },
    /// Delta is not in (0, 1).
    #[error("delta {num}/{den} is out of range: it must be above 0 and below 1")]
    DeltaOutOfRange {
        /// Numerator.
        num: u64,
        /// Denominator.
        den: u64,
    },
    /// The tail probability is not in (0, 1/2).
    #[error("tail probability {num}/{den} must be above 0 and below 1/2")]
    TailOutOfRange {
        /// Numerator.
        num: u64,
        /// Denominator.
        den: u64,
    },
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Epsilon {
    /// `num / den`, reduced; between 0 (exclusive) and 64.
    pub fn new(num: u64, den: u64) -> Result<Self, DpError> {
        if num == 0 || den == 0 || num > den.saturating_mul(64) {
            return Err(DpError::EpsilonOutOfRange { num, den });
        }
        let g = gcd(num, den);
        Ok(Self {
            num: num / g,
            den: den / g,
        })
    }

    /// From millionths, the unit grants count budgets in.
    pub fn from_micros(micros: u64) -> Result<Self, DpError> {
        Self::new(micros, 1_000_000)
    }

    /// The numerator.
    pub fn num(&self) -> u64 {
        self.num
    }

    /// The denominator.
    pub fn den(&self) -> u64 {
        self.den
    }

    /// Half of this epsilon, for one of two releases that share a job's.
    pub fn halved(&self) -> Result<Self, DpError> {
        if self.num.is_multiple_of(2) {
            return Self::new(self.num / 2, self.den);
        }
        let den = self.den.checked_mul(2).ok_or(DpError::EpsilonOutOfRange {
            num: self.num,
            den: self.den,
        })?;
        Self::new(self.num, den)
    }

    /// For display and for public parameters only; never for sampling.
    pub fn as_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// Bernoulli(num/den), exact.
fn bernoulli<R: CryptoRng + RngCore>(num: u64, den: u64, rng: &mut R) -> bool {
    rng.gen_range(0..den) < num
}

/// Bernoulli(exp(−num/den)), exact (CKS 2020, Algorithm 1).
pub fn bernoulli_exp_neg<R: CryptoRng + RngCore>(num: u64, den: u64, rng: &mut R) -> bool {
    if num <= den {
        // Draw A_k ~ Bernoulli(γ/k) for k = 1, 2, ... until one is 0;
        // P(the stopping k is odd) = exp(−γ).
        let mut k: u64 = 1;
        while bernoulli(num, den.saturating_mul(k), rng) {
            k += 1;
        }
        return k % 2 == 1;
    }
    // exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)).
    for _ in 0..num / den {
        if !bernoulli_exp_neg(1, 1, rng) {
            return false;
        }
    }
    bernoulli_exp_neg(num % den, den, rng)
}

/// One draw of the discrete Laplace distribution with P(x) ∝ exp(−ε|x|)
/// (CKS 2020, Algorithm 2 with scale 1/ε = den/num).
pub fn discrete_laplace<R: CryptoRng + RngCore>(epsilon: Epsilon, rng: &mut R) -> i64 {
    let (s, t) = (epsilon.num, epsilon.den);
    loop {
        let u = rng.gen_range(0..t);
        if !bernoulli_exp_neg(u, t, rng) {
            continue;
        }
        let mut v: u64 = 0;
        while bernoulli_exp_neg(1, 1, rng) {
            v += 1;
        }
        let x = u.saturating_add(t.saturating_mul(v));
        let y = (x / s) as i64;
        let negative = bernoulli(1, 2, rng);
        if negative && y == 0 {
            continue;
        }
        return if negative { -y } else { y };
    }
}

/// Public parameters and one draw of the padding that makes a count noisy.
///
/// The caller adds `matching` matching dummies (and `total − matching`
/// unmatched ones); the requester subtracts `offset`. `matching` is
/// `offset + Z` clamped to `0..=total`, with `total = 2·offset` and `offset`
/// the smallest n with P(Z ≤ −n) ≤ tail. The outputs where the ratio of
/// neighbouring counts' probabilities exceeds e^ε are the two clamped ends,
/// each of mass at most P(Z ≤ −n), so the count is (ε, 2·tail)-differentially
/// private for counts that differ by one (checked exactly in the tests).
///
/// This protects the count only: on its own it suits neighbours that
/// substitute a record, which leave the set size alone. A job that also
/// announces a set size should use [`padding_for_release`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CountPadding {
    /// Subtracted by the requester; public.
    pub offset: u64,
    /// Dummies in each list; public.
    pub total: u64,
    /// Dummies that match; secret to the responder.
    pub matching: u64,
}

/// The offset for a tail probability `tail_num / tail_den`: the smallest n
/// with P(Z ≤ −n) = q^n/(1+q) ≤ tail, q = exp(−ε), so
/// n = ⌈ln(1/(tail·(1+q)))/ε⌉.
///
/// A public parameter, so floating point is fine here; it is rounded up, past
/// any floating-point error, since one dummy too many costs nothing and one
/// too few costs privacy.
pub fn offset_for_tail(epsilon: Epsilon, tail_num: u64, tail_den: u64) -> Result<u64, DpError> {
    if tail_num == 0 || tail_den == 0 || tail_num.saturating_mul(2) >= tail_den {
        return Err(DpError::TailOutOfRange {
            num: tail_num,
            den: tail_den,
        });
    }
    Ok(offset_for_tail_value(
        epsilon,
        tail_num as f64 / tail_den as f64,
    ))
}

fn offset_for_tail_value(epsilon: Epsilon, tail: f64) -> u64 {
    let eps = epsilon.as_f64();
    let q = (-eps).exp();
    let n = (1.0 / (tail * (1.0 + q))).ln() / eps;
    // ln and the division are each within a few ulps; 1e-9 relative is far
    // above that, so a true n just above an integer is never rounded down.
    (n + n.abs().max(1.0) * 1e-9).ceil().max(0.0) as u64
}

/// `offset + noise`, clamped to `0..=total`.
fn clamped(offset: u64, total: u64, noise: i64) -> u64 {
    (i128::from(offset) + i128::from(noise)).clamp(0, i128::from(total)) as u64
}

/// Draws the padding for one noisy count.
pub fn padding_for_count<R: CryptoRng + RngCore>(
    epsilon: Epsilon,
    tail_num: u64,
    tail_den: u64,
    rng: &mut R,
) -> Result<CountPadding, DpError> {
    let offset = offset_for_tail(epsilon, tail_num, tail_den)?;
    let total = offset.saturating_mul(2);
    Ok(CountPadding {
        offset,
        total,
        matching: clamped(offset, total, discrete_laplace(epsilon, rng)),
    })
}

/// The public parameters of one job's noisy release, for neighbouring
/// datasets that add or remove one record.
///
/// Adding a record to the responder's set moves two things the requester
/// sees by at most one each: the intersection count and the announced set
/// size. Each is released with its own clamped, offset discrete-Laplace
/// padding at half the job's epsilon and half its delta, so by basic
/// composition the whole view is (ε, δ)-differentially private:
///
/// - the count, as in [`CountPadding`]: `count_total` dummies in each of the
///   responder's lists, `offset + Z_c` (clamped to `0..=count_total`) of them
///   matching;
/// - the size: `offset + Z_s` (clamped to `0..=size_total`) more dummies
///   that join only the responder's own blinded list and match nothing.
///
/// Each release's offset is the smallest n with P(Z ≤ −n) ≤ δ/4, so each is
/// (ε/2, δ/2)-private. Everything here is a function of (ε, δ), so it is
/// public: the requester is told `count_offset` and `count_total`, and can
/// estimate the responder's set size as announced − `count_total` −
/// `size_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseParams {
    /// The epsilon each of the two releases uses: half the job's.
    pub per_release_epsilon: Epsilon,
    /// Subtracted from the count by the requester.
    pub count_offset: u64,
    /// Dummies in each of the responder's lists for the count:
    /// `2 · count_offset`.
    pub count_total: u64,
    /// The middle of the number of size dummies.
    pub size_offset: u64,
    /// The most size dummies: `2 · size_offset`.
    pub size_total: u64,
}

impl ReleaseParams {
    /// The parameters for a job's `epsilon` and `delta_num / delta_den`.
    pub fn new(epsilon: Epsilon, delta_num: u64, delta_den: u64) -> Result<Self, DpError> {
        if delta_num == 0 || delta_num >= delta_den {
            return Err(DpError::DeltaOutOfRange {
                num: delta_num,
                den: delta_den,
            });
        }
        let per_release_epsilon = epsilon.halved()?;
        // δ/2 per release, and each release's bad outputs are its two
        // clamped ends: δ/4 each.
        let tail = delta_num as f64 / delta_den as f64 / 4.0;
        let offset = offset_for_tail_value(per_release_epsilon, tail);
        Ok(Self {
            per_release_epsilon,
            count_offset: offset,
            count_total: offset.saturating_mul(2),
            size_offset: offset,
            size_total: offset.saturating_mul(2),
        })
    }

    /// The most dummies the responder adds in all (both lists, both
    /// releases), for callers that bound the work a job may cost.
    pub fn most_dummies(&self) -> u64 {
        self.count_total
            .saturating_mul(2)
            .saturating_add(self.size_total)
    }
}

/// One job's padding: the public [`ReleaseParams`] and the secret draws.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReleasePadding {
    /// The public parameters.
    pub params: ReleaseParams,
    /// Count dummies that match, of `params.count_total`; secret.
    pub matching: u64,
    /// Size dummies, at most `params.size_total`; secret.
    pub size_dummies: u64,
}

/// Draws everything one job's noisy release needs: call it once per job,
/// with the job's whole epsilon and delta (the ones the grant charges).
pub fn padding_for_release<R: CryptoRng + RngCore>(
    epsilon: Epsilon,
    delta_num: u64,
    delta_den: u64,
    rng: &mut R,
) -> Result<ReleasePadding, DpError> {
    let params = ReleaseParams::new(epsilon, delta_num, delta_den)?;
    let eps = params.per_release_epsilon;
    let matching = clamped(
        params.count_offset,
        params.count_total,
        discrete_laplace(eps, rng),
    );
    let size_dummies = clamped(
        params.size_offset,
        params.size_total,
        discrete_laplace(eps, rng),
    );
    Ok(ReleasePadding {
        params,
        matching,
        size_dummies,
    })
}

// The draws are the secret noise: Debug shows the public parameters only.
impl std::fmt::Debug for CountPadding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountPadding")
            .field("offset", &self.offset)
            .field("total", &self.total)
            .field("matching", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for ReleasePadding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleasePadding")
            .field("params", &self.params)
            .field("matching", &"<redacted>")
            .field("size_dummies", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod exact;
#[cfg(test)]
mod tests;
