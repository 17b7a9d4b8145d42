//! Exact privacy loss of the padding mechanisms, for tests.
//!
//! Every probability these mechanisms give an output is a monomial
//! `(1 − q)^e · q^k / (1 + q)^d` in `q = exp(−ε)`. Two probabilities are
//! compared symbolically when they are the same monomial (their ratio is then
//! exactly 1), and otherwise by evaluating both in rigorous intervals: fixed
//! point with [`PREC`] fractional bits, every rounding outward, and `q` from
//! the alternating Taylor series of `exp`, whose consecutive partial sums
//! bracket it. `q` is transcendental for a rational ε ≠ 0
//! (Lindemann–Weierstrass), so two different monomials are never equal and
//! enough bits always separate them; if they ever do not, the check panics
//! rather than guess.

use std::collections::HashMap;
use std::hash::Hash;

use num_bigint::BigUint;

use super::Epsilon;

/// Fractional bits of the fixed point. The smallest masses checked are near
/// 2^-150 and the comparisons need a few dozen bits beyond them.
const PREC: usize = 640;

/// Terms of the Taylor series: 200! > 2^1200, so the bracket is far below
/// 2^-PREC.
const TERMS: u64 = 200;

/// `(1 − q)^e · q^k / (1 + q)^d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Monomial {
    e: u32,
    k: u64,
    d: u32,
}

impl Monomial {
    /// The product of two masses: for independent releases.
    pub(super) fn times(self, other: Self) -> Self {
        Self {
            e: self.e + other.e,
            k: self.k + other.k,
            d: self.d + other.d,
        }
    }

    /// This mass times `q^j = exp(−j·ε)`.
    fn times_q_power(self, j: u64) -> Self {
        Self {
            k: self.k + j,
            ..self
        }
    }
}

/// A distribution over outputs, exactly.
pub(super) type Pmf<O> = HashMap<O, Monomial>;

/// The distribution of `clamp(offset + Z, 0, total)`, Z discrete Laplace
/// with P(Z = z) = (1 − q)/(1 + q) · q^|z|:
///
/// - inside, P(offset + z) = (1 − q) q^|z| / (1 + q);
/// - at 0, P(Z ≤ −offset) = Σ_{z ≥ offset} (1 − q) q^z / (1 + q) = q^offset / (1 + q);
/// - at `total`, likewise P(Z ≥ total − offset) = q^(total − offset) / (1 + q).
pub(super) fn clamped_laplace(offset: u64, total: u64) -> Pmf<u64> {
    assert!(offset <= total, "offset {offset} above total {total}");
    if total == 0 {
        return HashMap::from([(0, Monomial { e: 0, k: 0, d: 0 })]);
    }
    (0..=total)
        .map(|m| {
            let mass = if m == 0 {
                Monomial {
                    e: 0,
                    k: offset,
                    d: 1,
                }
            } else if m == total {
                Monomial {
                    e: 0,
                    k: total - offset,
                    d: 1,
                }
            } else {
                Monomial {
                    e: 1,
                    k: m.abs_diff(offset),
                    d: 1,
                }
            };
            (m, mass)
        })
        .collect()
}

/// A point mass: a release with no noise at all.
pub(super) fn exact_value(at: u64) -> Pmf<u64> {
    HashMap::from([(at, Monomial { e: 0, k: 0, d: 0 })])
}

/// A real number known to lie in `[lo, hi] / 2^PREC`.
#[derive(Debug, Clone)]
pub(super) struct Interval {
    lo: BigUint,
    hi: BigUint,
}

fn one() -> BigUint {
    BigUint::from(1u8) << PREC
}

fn ceil_div(num: &BigUint, den: &BigUint) -> BigUint {
    let quotient = num / den;
    if &quotient * den == *num {
        quotient
    } else {
        quotient + 1u8
    }
}

impl Interval {
    fn zero() -> Self {
        Self {
            lo: BigUint::default(),
            hi: BigUint::default(),
        }
    }

    fn times(&self, other: &Self) -> Self {
        let scale = one();
        Self {
            lo: (&self.lo * &other.lo) >> PREC,
            hi: ceil_div(&(&self.hi * &other.hi), &scale),
        }
    }

    fn plus(&self, other: &Self) -> Self {
        Self {
            lo: &self.lo + &other.lo,
            hi: &self.hi + &other.hi,
        }
    }

    fn power(&self, mut exponent: u64) -> Self {
        let mut result = Self {
            lo: one(),
            hi: one(),
        };
        let mut base = self.clone();
        while exponent > 0 {
            if exponent & 1 == 1 {
                result = result.times(&base);
            }
            base = base.times(&base);
            exponent >>= 1;
        }
        result
    }

    /// Whether the whole interval is at most `num / den`.
    pub(super) fn at_most(&self, num: u64, den: u64) -> bool {
        &self.hi * BigUint::from(den) <= BigUint::from(num) << PREC
    }

    /// Whether the whole interval is above `num / den`.
    pub(super) fn above(&self, num: u64, den: u64) -> bool {
        &self.lo * BigUint::from(den) > BigUint::from(num) << PREC
    }

    /// The interval as floats, for messages.
    pub(super) fn approx(&self) -> (f64, f64) {
        let to_f64 = |x: &BigUint| {
            let shift = x.bits().saturating_sub(60);
            let top = u64::try_from(x >> shift).unwrap_or(u64::MAX) as f64;
            top * 2f64.powi(shift as i32 - PREC as i32)
        };
        (to_f64(&self.lo), to_f64(&self.hi))
    }
}

/// exp(−num/den) for 0 < num/den ≤ 1: the alternating series' partial sums
/// S_(2m−1) < exp(−y) < S_(2m), over the common denominator den^N · N!.
fn exp_neg_at_most_one(num: u64, den: u64) -> Interval {
    assert!(0 < num && num <= den);
    let (a, b) = (BigUint::from(num), BigUint::from(den));
    // term_k = a^k · b^(N−k) · N!/k!, exactly; term_(k+1) = term_k · a / (b·(k+1)).
    let mut term = b.pow(TERMS as u32) * (1..=TERMS).map(BigUint::from).product::<BigUint>();
    let denominator = term.clone();
    let (mut plus, mut minus) = (BigUint::default(), BigUint::default());
    let mut before_last = (BigUint::default(), BigUint::default());
    for k in 0..=TERMS {
        if k == TERMS {
            before_last = (plus.clone(), minus.clone());
        }
        if k % 2 == 0 {
            plus += &term;
        } else {
            minus += &term;
        }
        if k < TERMS {
            term = term * &a / (&b * BigUint::from(k + 1));
        }
    }
    // TERMS is even: the full sum is above, the one before it below.
    assert!(TERMS.is_multiple_of(2));
    let upper = plus - minus;
    let lower = before_last.0 - before_last.1;
    Interval {
        lo: (lower << PREC) / &denominator,
        hi: ceil_div(&(upper << PREC), &denominator),
    }
}

/// The intervals of `q = exp(−ε)` and of the monomials in it.
pub(super) struct Exact {
    q: Interval,
    one_minus_q: Interval,
    inverse_one_plus_q: Interval,
    values: HashMap<Monomial, Interval>,
}

impl Exact {
    /// For `q = exp(−epsilon)`.
    pub(super) fn new(epsilon: Epsilon) -> Self {
        // exp(−x) = exp(−x/m)^m with x/m ≤ 1.
        let steps = epsilon.num().div_ceil(epsilon.den());
        let den = epsilon
            .den()
            .checked_mul(steps)
            .expect("epsilon's denominator times its ceiling fits u64");
        let q = exp_neg_at_most_one(epsilon.num(), den).power(steps);
        let scale = one();
        let one_minus_q = Interval {
            lo: &scale - &q.hi,
            hi: &scale - &q.lo,
        };
        let square = &scale * &scale;
        let inverse_one_plus_q = Interval {
            lo: &square / (&scale + &q.hi),
            hi: ceil_div(&square, &(&scale + &q.lo)),
        };
        Self {
            q,
            one_minus_q,
            inverse_one_plus_q,
            values: HashMap::new(),
        }
    }

    fn value(&mut self, m: Monomial) -> Interval {
        if let Some(value) = self.values.get(&m) {
            return value.clone();
        }
        let value = self
            .q
            .power(m.k)
            .times(&self.one_minus_q.power(u64::from(m.e)))
            .times(&self.inverse_one_plus_q.power(u64::from(m.d)));
        self.values.insert(m, value.clone());
        value
    }

    /// The total mass of `p`; contains 1 for a distribution.
    pub(super) fn total<O>(&mut self, p: &Pmf<O>) -> Interval {
        p.values()
            .fold(Interval::zero(), |sum, &m| sum.plus(&self.value(m)))
    }

    /// The mass under `p` of the outputs whose probability under `p` is
    /// more than `exp(j·ε)` times their probability under `q`: if this is at
    /// most δ (and likewise with `p` and `q` swapped), `p` and `q` are
    /// (j·ε, δ)-indistinguishable.
    pub(super) fn bad_mass<O: Hash + Eq + std::fmt::Debug>(
        &mut self,
        p: &Pmf<O>,
        q: &Pmf<O>,
        j: u64,
    ) -> Interval {
        let mut bad = Interval::zero();
        for (output, &mass) in p {
            let exceeds = match q.get(output) {
                None => true,
                Some(&other) => {
                    // P(o) > e^(jε) Q(o)  ⇔  q^j P(o) > Q(o).
                    let scaled = mass.times_q_power(j);
                    if scaled == other {
                        false
                    } else {
                        let (a, b) = (self.value(scaled), self.value(other));
                        assert!(
                            a.lo > b.hi || a.hi < b.lo,
                            "{PREC} bits cannot separate {scaled:?} and {other:?} at {output:?}"
                        );
                        a.lo > b.hi
                    }
                }
            };
            if exceeds {
                bad = bad.plus(&self.value(mass));
            }
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_bracket_contains_the_float_value_and_is_narrow() {
        for (num, den) in [(1, 10), (1, 2), (1, 1), (3, 1), (7, 3), (64, 1)] {
            let exact = Exact::new(Epsilon::new(num, den).expect("epsilon"));
            let (lo, hi) = exact.q.approx();
            let float = (-(num as f64) / den as f64).exp();
            assert!(
                (lo - float).abs() <= 1e-15 * float && (hi - float).abs() <= 1e-15 * float,
                "exp(-{num}/{den}): [{lo}, {hi}] vs {float}"
            );
            let width = &exact.q.hi - &exact.q.lo;
            assert!(
                width.bits() < 64,
                "exp(-{num}/{den}) is only {} bits wide",
                width.bits()
            );
        }
    }

    #[test]
    fn clamped_laplace_sums_to_one() {
        let mut exact = Exact::new(Epsilon::new(1, 3).expect("epsilon"));
        for (offset, total) in [(0, 0), (0, 4), (3, 6), (2, 5), (40, 80)] {
            let mass = exact.total(&clamped_laplace(offset, total));
            assert!(
                mass.lo <= one() && one() <= mass.hi,
                "{offset}/{total}: {:?}",
                mass.approx()
            );
        }
    }
}
