//! The rings shares live in: integers modulo 2^64 and 2^128.
//!
//! Additive sharing works in any ring: a secret `s` becomes `n` shares drawn
//! uniformly at random under the one constraint that they add up to `s`
//! (mod 2^k). Any `n - 1` of them are independent and uniform, so they say
//! nothing about `s`. Z_2^64 is the engine's ring for counts and sums; sums
//! of squares of fixed-point values outgrow 63 bits long before they outgrow
//! 127, so the statistics that need it use Z_2^128, with the same code.

use rand_core::{CryptoRng, RngCore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroize;

/// A ring Z_2^k whose elements are shares. Arithmetic wraps, as it must:
/// a share is uniform over the whole ring.
pub trait Ring:
    Copy + Eq + std::fmt::Debug + Default + Zeroize + Serialize + DeserializeOwned + Send + Sync
{
    /// Bits in an element (k).
    const BITS: u32;
    /// Addition mod 2^k.
    fn add(self, other: Self) -> Self;
    /// Subtraction mod 2^k.
    fn sub(self, other: Self) -> Self;
    /// A uniformly random element.
    fn random<G: CryptoRng + RngCore>(rng: &mut G) -> Self;
    /// The element representing `value`, as two's complement. `None` if
    /// `value` is outside `-2^(k-1) .. 2^(k-1)`.
    fn from_signed(value: i128) -> Option<Self>;
    /// The signed integer an element represents (two's complement).
    fn to_signed(self) -> i128;
}

impl Ring for u64 {
    const BITS: u32 = 64;
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn sub(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    fn random<G: CryptoRng + RngCore>(rng: &mut G) -> Self {
        rng.next_u64()
    }
    fn from_signed(value: i128) -> Option<Self> {
        i64::try_from(value).ok().map(|v| v as u64)
    }
    fn to_signed(self) -> i128 {
        i128::from(self as i64)
    }
}

impl Ring for u128 {
    const BITS: u32 = 128;
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn sub(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    fn random<G: CryptoRng + RngCore>(rng: &mut G) -> Self {
        (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
    }
    fn from_signed(value: i128) -> Option<Self> {
        Some(value as u128)
    }
    fn to_signed(self) -> i128 {
        self as i128
    }
}

/// Splits `secret` into `parties` additive shares: all but the last are
/// uniform, the last makes them add up to `secret`.
///
/// # Panics
/// If `parties` is 0 (a job has at least two parties; callers check).
pub fn split<R: Ring, G: CryptoRng + RngCore>(secret: R, parties: usize, rng: &mut G) -> Vec<R> {
    assert!(parties > 0, "a secret is shared among at least one party");
    let mut shares: Vec<R> = (1..parties).map(|_| R::random(rng)).collect();
    let drawn = shares.iter().fold(R::default(), |sum, &s| sum.add(s));
    shares.push(secret.sub(drawn));
    shares
}

/// Adds shares back into the secret.
pub fn reconstruct<R: Ring>(shares: &[R]) -> R {
    shares.iter().fold(R::default(), |sum, &s| sum.add(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn shares_add_up_to_the_secret_in_both_rings() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for parties in 1..=7 {
            for secret in [0u64, 1, u64::MAX, 1 << 63, 123_456_789] {
                let shares = split(secret, parties, &mut rng);
                assert_eq!(shares.len(), parties);
                assert_eq!(reconstruct(&shares), secret);
            }
            let wide = u128::MAX - 5;
            assert_eq!(reconstruct(&split(wide, parties, &mut rng)), wide);
        }
    }

    #[test]
    fn signed_values_round_trip_within_the_ring() {
        for v in [0i128, 1, -1, i128::from(i64::MAX), i128::from(i64::MIN)] {
            assert_eq!(u64::from_signed(v).map(Ring::to_signed), Some(v));
            assert_eq!(u128::from_signed(v).map(Ring::to_signed), Some(v));
        }
        assert_eq!(u64::from_signed(i128::from(i64::MAX) + 1), None);
        assert_eq!(u64::from_signed(i128::from(i64::MIN) - 1), None);
        assert_eq!(
            u128::from_signed(i128::MIN).map(Ring::to_signed),
            Some(i128::MIN)
        );
        // Negative values add as they should: -5 + 3 = -2.
        let sum = u64::from_signed(-5)
            .expect("in range")
            .add(u64::from_signed(3).expect("in range"));
        assert_eq!(sum.to_signed(), -2);
    }
}
