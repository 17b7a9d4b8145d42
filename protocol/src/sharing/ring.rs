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
    /// Bytes in an element's wire encoding (k / 8, little-endian).
    const BYTES: usize;
    /// Writes the element's little-endian bytes into `out` (`BYTES` long).
    fn write_le(self, out: &mut [u8]);
    /// The element whose little-endian bytes are `bytes` (`BYTES` long).
    fn read_le(bytes: &[u8]) -> Self;
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
    const BYTES: usize = 8;
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
    fn read_le(bytes: &[u8]) -> Self {
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Self::from_le_bytes(le)
    }
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
    const BYTES: usize = 16;
    fn write_le(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
    fn read_le(bytes: &[u8]) -> Self {
        let mut le = [0u8; 16];
        le.copy_from_slice(bytes);
        Self::from_le_bytes(le)
    }
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

/// Share vectors on the wire as one byte string of fixed-width
/// little-endian elements (`#[serde(with = "fixed_width")]`). Shares are
/// uniform, so postcard's variable-length integers would spend about 9.5
/// bytes on each 8-byte element: fixed width is both smaller and the same
/// length whatever the values.
pub mod fixed_width {
    use serde::de::{Error as _, Visitor};
    use serde::{Deserializer, Serializer};
    use zeroize::Zeroizing;

    use super::Ring;

    /// Serialises `shares` as one byte string.
    pub fn serialize<R: Ring, S: Serializer>(
        shares: &[R],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; shares.len() * R::BYTES]);
        for (share, out) in shares.iter().zip(bytes.chunks_exact_mut(R::BYTES)) {
            share.write_le(out);
        }
        serializer.serialize_bytes(&bytes)
    }

    /// Reads a byte string back into shares; refuses a length that is not a
    /// whole number of elements.
    pub fn deserialize<'de, R: Ring, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<R>, D::Error> {
        struct Shares<R>(std::marker::PhantomData<R>);
        impl<R: Ring> Visitor<'_> for Shares<R> {
            type Value = Vec<R>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a byte string of {}-byte shares", R::BYTES)
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<R>, E> {
                if !bytes.len().is_multiple_of(R::BYTES) {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(bytes.chunks_exact(R::BYTES).map(R::read_le).collect())
            }
        }
        deserializer
            .deserialize_bytes(Shares(std::marker::PhantomData))
            .map_err(|e| D::Error::custom(format!("shares: {e}")))
    }
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

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Wire<R: Ring>(#[serde(with = "fixed_width", bound = "R: Ring")] Vec<R>);

    #[test]
    fn shares_travel_at_fixed_width_and_come_back_equal() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        for n in [0usize, 1, 1000] {
            let narrow: Vec<u64> = (0..n).map(|_| u64::random(&mut rng)).collect();
            let bytes = postcard::to_allocvec(&Wire(narrow.clone())).expect("encodes");
            // A length prefix (at most 3 bytes here) and 8 bytes a share.
            assert!(
                bytes.len() >= 8 * n && bytes.len() <= 8 * n + 3,
                "{}",
                bytes.len()
            );
            let back: Wire<u64> = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(back.0, narrow);
            let wide: Vec<u128> = (0..n).map(|_| u128::random(&mut rng)).collect();
            let bytes = postcard::to_allocvec(&Wire(wide.clone())).expect("encodes");
            assert!(bytes.len() >= 16 * n && bytes.len() <= 16 * n + 3);
            let back: Wire<u128> = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(back.0, wide);
        }
    }

    #[test]
    fn a_share_string_that_is_not_whole_elements_is_refused() {
        // Length 9: one u64 and a stray byte.
        let mut bytes = vec![9u8];
        bytes.extend([1u8; 9]);
        let decoded: Result<Wire<u64>, _> = postcard::from_bytes(&bytes);
        assert!(decoded.is_err());
        let decoded: Result<Wire<u128>, _> = postcard::from_bytes(&bytes[..9]);
        assert!(decoded.is_err(), "8 bytes are not a u128 share");
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
