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
//! ε-differential privacy.

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
/// the smallest n with P(Z < −n) ≤ tail; clamping therefore happens with
/// probability at most 2·tail, and the release is (ε, 2·tail)-differentially
/// private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountPadding {
    /// Subtracted by the requester; public.
    pub offset: u64,
    /// Dummies in each list; public.
    pub total: u64,
    /// Dummies that match; secret to the responder.
    pub matching: u64,
}

/// The offset for a tail probability `tail_num / tail_den`:
/// P(Z < −n) = q^(n+1)/(1+q) with q = exp(−ε), so n = ⌈ln(1/(tail·(1+q)))/ε⌉.
/// A public parameter, so floating point is fine here; it is rounded up.
pub fn offset_for_tail(epsilon: Epsilon, tail_num: u64, tail_den: u64) -> Result<u64, DpError> {
    if tail_num == 0 || tail_den == 0 || tail_num.saturating_mul(2) >= tail_den {
        return Err(DpError::TailOutOfRange {
            num: tail_num,
            den: tail_den,
        });
    }
    let eps = epsilon.as_f64();
    let q = (-eps).exp();
    let tail = tail_num as f64 / tail_den as f64;
    let n = ((1.0 / (tail * (1.0 + q))).ln() / eps).ceil();
    Ok(n.max(0.0) as u64)
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
    let noisy = offset as i64 + discrete_laplace(epsilon, rng);
    Ok(CountPadding {
        offset,
        total,
        matching: noisy.clamp(0, total as i64) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// |observed − expected| within 5 standard deviations of a binomial.
    fn within_5_sigma(hits: u64, n: u64, p: f64) -> bool {
        let sigma = (n as f64 * p * (1.0 - p)).sqrt();
        (hits as f64 - n as f64 * p).abs() <= 5.0 * sigma.max(1.0)
    }

    #[test]
    fn epsilon_is_validated_and_reduced() {
        assert_eq!(Epsilon::new(500_000, 1_000_000), Epsilon::new(1, 2));
        assert_eq!(
            Epsilon::from_micros(250_000).map(|e| (e.num(), e.den())),
            Ok((1, 4))
        );
        for (num, den) in [(0, 1), (1, 0), (65, 1)] {
            assert!(Epsilon::new(num, den).is_err(), "{num}/{den}");
        }
    }

    #[test]
    fn bernoulli_exp_neg_has_the_right_frequency() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let n = 100_000;
        for (num, den) in [(0, 1), (1, 2), (1, 1), (3, 2), (5, 1)] {
            let hits = (0..n)
                .filter(|_| bernoulli_exp_neg(num, den, &mut rng))
                .count() as u64;
            let p = (-(num as f64) / den as f64).exp();
            assert!(
                within_5_sigma(hits, n, p),
                "exp(-{num}/{den}): {hits} of {n}, expected {p}"
            );
        }
    }

    fn pmf(eps: f64, x: i64) -> f64 {
        let q = (-eps).exp();
        (1.0 - q) / (1.0 + q) * q.powi(x.unsigned_abs() as i32)
    }

    #[test]
    fn discrete_laplace_matches_its_distribution() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let n: u64 = 60_000;
        for (num, den) in [(1, 2), (1, 1)] {
            let epsilon = Epsilon::new(num, den).expect("epsilon");
            let eps = epsilon.as_f64();
            let draws: Vec<i64> = (0..n)
                .map(|_| discrete_laplace(epsilon, &mut rng))
                .collect();
            // Mean 0, variance 2q/(1−q)².
            let q = (-eps).exp();
            let variance = 2.0 * q / (1.0 - q).powi(2);
            let mean = draws.iter().sum::<i64>() as f64 / n as f64;
            assert!(
                mean.abs() <= 5.0 * (variance / n as f64).sqrt(),
                "eps {eps}: mean {mean}"
            );
            let observed_var = draws
                .iter()
                .map(|&x| (x as f64 - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            assert!(
                (observed_var / variance - 1.0).abs() < 0.1,
                "eps {eps}: variance {observed_var} vs {variance}"
            );
            // Point probabilities, each within 5 sigma.
            for x in [0, 1, -1, 3] {
                let hits = draws.iter().filter(|&&d| d == x).count() as u64;
                assert!(within_5_sigma(hits, n, pmf(eps, x)), "eps {eps}: P({x})");
            }
            // Chi-square over -6..=6 and the two tails: 15 bins, 14 degrees
            // of freedom; the critical value at p = 0.001 is 36.12.
            let mut chi2 = 0.0;
            let mut bins: Vec<(f64, u64)> = (-6..=6)
                .map(|x| {
                    (
                        pmf(eps, x),
                        draws.iter().filter(|&&d| d == x).count() as u64,
                    )
                })
                .collect();
            let tail: f64 = (7..200).map(|x| pmf(eps, x)).sum();
            bins.push((tail, draws.iter().filter(|&&d| d > 6).count() as u64));
            bins.push((tail, draws.iter().filter(|&&d| d < -6).count() as u64));
            for (p, observed) in bins {
                let expected = p * n as f64;
                chi2 += (observed as f64 - expected).powi(2) / expected;
            }
            assert!(chi2 < 36.12, "eps {eps}: chi-square {chi2}");
        }
    }

    #[test]
    fn padding_offset_and_clamping() {
        let epsilon = Epsilon::new(1, 1).expect("epsilon");
        // Independently: the smallest n with q^(n+1)/(1+q) <= 1e-9.
        let q = (-1.0f64).exp();
        let smallest = (0..100u64)
            .find(|&n| q.powi(n as i32 + 1) / (1.0 + q) <= 1e-9)
            .expect("exists");
        let offset = offset_for_tail(epsilon, 1, 1_000_000_000).expect("offset");
        assert!(
            offset >= smallest && offset <= smallest + 1,
            "{offset} vs {smallest}"
        );
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let n = 20_000;
        let mut sum = 0i64;
        for _ in 0..n {
            let p = padding_for_count(epsilon, 1, 1_000_000_000, &mut rng).expect("padding");
            assert_eq!((p.offset, p.total), (offset, 2 * offset));
            assert!(p.matching <= p.total);
            sum += p.matching as i64 - p.offset as i64;
        }
        let variance = 2.0 * q / (1.0 - q).powi(2);
        let mean = sum as f64 / n as f64;
        assert!(
            mean.abs() <= 5.0 * (variance / n as f64).sqrt(),
            "mean noise {mean}"
        );
        assert!(offset_for_tail(epsilon, 1, 2).is_err());
        assert!(offset_for_tail(epsilon, 0, 2).is_err());
    }
}
