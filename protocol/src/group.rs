//! ristretto255 operations shared by the protocols (RFC 9496).
//!
//! Public so that benchmarks can measure the hot paths on their own; the
//! protocols are the intended entry points.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, InvalidPointReason};

/// The wire form of a group element: its 32-byte canonical encoding.
pub type EncodedPoint = [u8; 32];

/// Hashes `id` to a ristretto255 element under a domain-separation tag.
///
/// The input to SHA-512 is `len(tag) as u64 (big-endian) || tag || id`, and
/// the 64-byte digest goes through RFC 9496's element derivation (§4.3.4).
/// The length prefix keeps (tag, id) pairs from colliding.
pub fn hash_to_group(tag: &[u8], id: &[u8]) -> RistrettoPoint {
    let hasher = Sha512::new()
        .chain_update((tag.len() as u64).to_be_bytes())
        .chain_update(tag)
        .chain_update(id);
    RistrettoPoint::from_hash(hasher)
}

/// Decodes a peer's element, accepting only canonical non-identity encodings.
pub fn decode_point(bytes: &EncodedPoint, index: u64) -> Result<RistrettoPoint, Error> {
    let point = CompressedRistretto(*bytes)
        .decompress()
        .ok_or(Error::InvalidPoint {
            index,
            reason: InvalidPointReason::NonCanonical,
        })?;
    if point.is_identity() {
        return Err(Error::InvalidPoint {
            index,
            reason: InvalidPointReason::Identity,
        });
    }
    Ok(point)
}

/// A party's secret exponent for one job. Zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BlindingKey {
    key: Scalar,
    /// `key / 2`: lets [`Self::blind_batch`] use batched doubling-and-encoding,
    /// which shares one field inversion across the whole batch.
    half_key: Scalar,
}

impl BlindingKey {
    /// Draws a fresh non-zero key.
    pub fn random<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        loop {
            let key = Scalar::random(rng);
            if key != Scalar::ZERO {
                let half_key = key * Scalar::from(2u8).invert();
                return Self { key, half_key };
            }
        }
    }

    /// Raises every point to this key and returns the canonical encodings.
    ///
    /// Computes `2 · (key/2 · P)` with `double_and_compress_batch`, which
    /// encodes a batch at a fraction of the cost of one `compress` per point.
    pub fn blind_batch(&self, points: &[RistrettoPoint]) -> Vec<EncodedPoint> {
        // Batches of 256 keep the shared inversion cheap per point while
        // giving every core work.
        let batches: Vec<Vec<EncodedPoint>> = map_chunks(points, 256, |chunk| {
            let halves: Vec<RistrettoPoint> = chunk.iter().map(|p| self.half_key * p).collect();
            RistrettoPoint::double_and_compress_batch(&halves)
                .into_iter()
                .map(|c| c.to_bytes())
                .collect()
        });
        batches.concat()
    }

    /// `key·G`: a commitment to the key that reveals nothing of it (DDH),
    /// and lets the peer make elements that match after blinding.
    pub fn commitment(&self) -> EncodedPoint {
        RistrettoPoint::mul_base(&self.key).compress().to_bytes()
    }

    /// Raises one point to this key.
    pub fn blind(&self, point: &RistrettoPoint) -> RistrettoPoint {
        self.key * point
    }
}

/// Applies `f` to each chunk of `items`, in parallel when the `parallel`
/// feature is on; the results keep the chunks' order.
pub(crate) fn map_chunks<T: Sync, U: Send>(
    items: &[T],
    chunk: usize,
    f: impl Fn(&[T]) -> U + Sync + Send,
) -> Vec<U> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        items.par_chunks(chunk).map(f).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        items.chunks(chunk).map(f).collect()
    }
}

/// Hashes every id to the group, in order.
pub(crate) fn hash_all<'a>(tag: &[u8], ids: impl Iterator<Item = &'a [u8]>) -> Vec<RistrettoPoint> {
    let ids: Vec<&[u8]> = ids.collect();
    map_chunks(&ids, 256, |chunk| {
        chunk
            .iter()
            .map(|id| hash_to_group(tag, id))
            .collect::<Vec<_>>()
    })
    .concat()
}

/// Decodes a chunk of the peer's elements; `first` is the stream index of
/// the first one, for errors.
pub(crate) fn decode_all(
    points: &[EncodedPoint],
    first: u64,
) -> Result<Vec<RistrettoPoint>, Error> {
    let decoded = map_chunks(points, 256, |chunk| {
        chunk
            .iter()
            .map(|p| CompressedRistretto(*p).decompress())
            .collect::<Vec<_>>()
    })
    .concat();
    decoded
        .into_iter()
        .zip(points)
        .zip(first..)
        .map(|((point, bytes), index)| match point {
            Some(point) if !point.is_identity() => Ok(point),
            _ => decode_point(bytes, index),
        })
        .collect()
}

/// A uniformly random group element, indistinguishable from a blinded id.
pub fn random_point<R: CryptoRng + RngCore>(rng: &mut R) -> RistrettoPoint {
    let mut bytes = [0u8; 64];
    rng.fill_bytes(&mut bytes);
    RistrettoPoint::from_uniform_bytes(&bytes)
}

impl std::fmt::Debug for BlindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindingKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn batch_blinding_equals_plain_scalar_multiplication() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let key = BlindingKey::random(&mut rng);
        let points: Vec<_> = (0..17u8).map(|i| hash_to_group(b"tag", &[i])).collect();
        let batch = key.blind_batch(&points);
        for (point, encoded) in points.iter().zip(&batch) {
            assert_eq!(key.blind(point).compress().to_bytes(), *encoded);
        }
    }

    #[test]
    fn tag_and_id_are_separated() {
        assert_ne!(hash_to_group(b"ab", b"c"), hash_to_group(b"a", b"bc"));
        assert_ne!(hash_to_group(b"t1", b"x"), hash_to_group(b"t2", b"x"));
    }

    #[test]
    fn decoding_rejects_identity_and_non_canonical() {
        let identity = RistrettoPoint::default().compress().to_bytes();
        assert_eq!(
            decode_point(&identity, 4),
            Err(Error::InvalidPoint {
                index: 4,
                reason: InvalidPointReason::Identity
            })
        );
        // 0xff..ff is larger than the field prime: never canonical.
        assert_eq!(
            decode_point(&[0xff; 32], 0),
            Err(Error::InvalidPoint {
                index: 0,
                reason: InvalidPointReason::NonCanonical
            })
        );
        let base = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        assert_eq!(decode_point(&base, 0), Ok(RISTRETTO_BASEPOINT_POINT));
    }

    #[test]
    fn key_debug_is_redacted() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = BlindingKey::random(&mut rng);
        let printed = format!("{key:?}");
        assert_eq!(printed, "BlindingKey(<redacted>)");
        assert!(!printed.contains(&format!("{:?}", key.key)));
    }
}
