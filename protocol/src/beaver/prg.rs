//! Seeds and the pseudorandom generator that expands them into shares.
//!
//! A 32-byte seed stands for a whole vector of uniform ring elements: the
//! sender of a seed and its receiver expand the same stream, so a vector of
//! shares costs 32 bytes on the wire instead of one element per entry.
//!
//! The stream is ChaCha20 (`rand_chacha`, 20 rounds) keyed with
//! `SHA-256(len(tag) ‖ tag ‖ seed)`, where the tag names this protocol, its
//! version, the job and a label (`"input/…"`, `"triple/a"`, …). Keys of
//! different jobs or labels are independent even if a seed were reused, so
//! one seed never yields two correlated vectors; with a fresh seed the
//! stream is indistinguishable from uniform as long as ChaCha20 is a PRF.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::JobId;
use crate::sharing::Ring;

/// Version of the expansion; part of every key's tag.
const PRG_VERSION: u16 = 1;

/// A 32-byte secret seed. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct Seed([u8; 32]);

impl Seed {
    /// Draws a fresh seed.
    pub fn random<G: CryptoRng + RngCore>(rng: &mut G) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let seed = Self(bytes);
        bytes.zeroize();
        seed
    }

    /// The seed's bytes, for tests of what a party sees.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// The stream a seed expands to under one job and label.
pub(crate) struct Prg {
    rng: ChaCha20Rng,
}

impl Prg {
    pub(crate) fn new(seed: &Seed, job: JobId, label: &[u8]) -> Self {
        let mut tag = b"unseen/beaver/prg/v".to_vec();
        tag.extend_from_slice(&PRG_VERSION.to_be_bytes());
        tag.extend_from_slice(b"/job/");
        tag.extend_from_slice(&job.0);
        tag.extend_from_slice(b"/");
        tag.extend_from_slice(label);
        let mut key: [u8; 32] = Sha256::new()
            .chain_update((tag.len() as u64).to_be_bytes())
            .chain_update(&tag)
            .chain_update(seed.0)
            .finalize()
            .into();
        let rng = ChaCha20Rng::from_seed(key);
        key.zeroize();
        Self { rng }
    }

    /// The next element of the stream.
    pub(crate) fn next<R: Ring>(&mut self) -> R {
        R::random(&mut self.rng)
    }

    /// The next `count` elements.
    pub(crate) fn take<R: Ring>(&mut self, count: usize) -> Zeroizing<Vec<R>> {
        let mut out = Zeroizing::new(Vec::with_capacity(count));
        out.extend((0..count).map(|_| self.next::<R>()));
        out
    }
}

// rand_chacha keeps its key and buffered keystream in the generator and
// does not implement Zeroize. Overwriting the generator with one keyed by
// zeros replaces both (the buffer of a fresh generator is zeros); the
// black_box keeps the compiler from dropping the store as dead. Copies the
// compiler made while moving the value are out of reach without unsafe
// code, as everywhere else in the crate.
impl Drop for Prg {
    fn drop(&mut self) {
        self.rng = ChaCha20Rng::from_seed([0u8; 32]);
        std::hint::black_box(&mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_job_and_label_give_the_same_stream_and_nothing_else_does() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let seed = Seed::random(&mut rng);
        let job = JobId([7; 16]);
        let stream = |seed: &Seed, job, label: &[u8]| Prg::new(seed, job, label).take::<u64>(8);
        assert_eq!(*stream(&seed, job, b"a"), *stream(&seed, job, b"a"));
        assert_ne!(*stream(&seed, job, b"a"), *stream(&seed, job, b"b"));
        assert_ne!(
            *stream(&seed, job, b"a"),
            *stream(&seed, JobId([8; 16]), b"a")
        );
        let other = Seed::random(&mut rng);
        assert_ne!(*stream(&seed, job, b"a"), *stream(&other, job, b"a"));
        // A u128 is two u64 draws: the streams agree on the bits.
        let wide = Prg::new(&seed, job, b"a").take::<u128>(4);
        let narrow = stream(&seed, job, b"a");
        assert_eq!(
            wide[0],
            (u128::from(narrow[0]) << 64) | u128::from(narrow[1])
        );
    }

    #[test]
    fn seeds_never_print() {
        let seed = Seed([0xab; 32]);
        let printed = format!("{seed:?}");
        assert!(!printed.contains("ab"), "{printed}");
        assert!(printed.contains("redacted"));
    }
}
