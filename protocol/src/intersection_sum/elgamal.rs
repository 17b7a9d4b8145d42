//! Exponential ElGamal over ristretto255 under a joint key `P = X1 + X2`:
//! `Enc_P(m; r) = (r·G, m·G + r·P)`. Adding ciphertexts adds plaintexts;
//! decryption needs `x1·C1` and `x2·C1`, so neither party decrypts alone.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::messages::{EncodedCiphertext, KeyProof};
use crate::group::{EncodedPoint, decode_all, decode_point, map_chunks};
use crate::{Error, InvalidPointReason};

/// A party's ElGamal secret share. Zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(super) struct SecretShare(Scalar);

impl SecretShare {
    pub(super) fn random<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        loop {
            let x = Scalar::random(rng);
            if x != Scalar::ZERO {
                return Self(x);
            }
        }
    }

    /// A share with a chosen secret, for tests that play a party by hand.
    #[cfg(test)]
    pub(super) fn from_scalar(x: Scalar) -> Self {
        Self(x)
    }

    pub(super) fn public(&self) -> RistrettoPoint {
        RistrettoPoint::mul_base(&self.0)
    }

    /// `x·C1` for one ciphertext's first component.
    pub(super) fn partial(&self, c1: &RistrettoPoint) -> RistrettoPoint {
        self.0 * c1
    }
}

impl SecretShare {
    /// A Schnorr proof of knowledge of this share's secret, bound to the
    /// job (`tag`) and the sender's role.
    pub(super) fn prove<R: CryptoRng + RngCore>(
        &self,
        tag: &[u8],
        role: &[u8],
        rng: &mut R,
    ) -> KeyProof {
        let mut nonce = Scalar::random(rng);
        let commitment = RistrettoPoint::mul_base(&nonce);
        let challenge = key_challenge(tag, role, &self.public(), &commitment);
        let response = nonce + challenge * self.0;
        nonce.zeroize();
        KeyProof {
            commitment: commitment.compress().to_bytes(),
            response: response.to_bytes(),
        }
    }
}

/// Checks a peer's proof that it knows the secret of `key`, its announced
/// share. Without it a party could announce `x'·G − X_peer` after seeing
/// the peer's share, know the joint key's secret, and decrypt every
/// ciphertext alone.
pub(super) fn verify_key(
    tag: &[u8],
    role: &[u8],
    key: &RistrettoPoint,
    proof: &KeyProof,
) -> Result<(), Error> {
    let commitment = decode_point(&proof.commitment, 1)?;
    let response = Option::<Scalar>::from(Scalar::from_canonical_bytes(proof.response))
        .ok_or(Error::BadKeyProof)?;
    let challenge = key_challenge(tag, role, key, &commitment);
    if RistrettoPoint::mul_base(&response) != commitment + challenge * key {
        return Err(Error::BadKeyProof);
    }
    Ok(())
}

/// The Fiat–Shamir challenge: the job's tag, the prover's role, its share
/// and its commitment, hashed to a scalar.
fn key_challenge(
    tag: &[u8],
    role: &[u8],
    key: &RistrettoPoint,
    commitment: &RistrettoPoint,
) -> Scalar {
    use sha2::{Digest, Sha512};
    let mut hash = Sha512::new();
    for part in [tag, role] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(key.compress().as_bytes());
    hash.update(commitment.compress().as_bytes());
    Scalar::from_hash(hash)
}

impl std::fmt::Debug for SecretShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretShare(<redacted>)")
    }
}

/// `X1 + X2`, refused when it is the identity: under that key every
/// ciphertext would be its plaintext.
pub(super) fn joint_key(
    own: &RistrettoPoint,
    peer: &RistrettoPoint,
) -> Result<RistrettoPoint, Error> {
    let joint = own + peer;
    if joint == RistrettoPoint::identity() {
        return Err(Error::InvalidPoint {
            index: 0,
            reason: InvalidPointReason::Identity,
        });
    }
    Ok(joint)
}

/// A decoded ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ciphertext {
    pub(super) c1: RistrettoPoint,
    pub(super) c2: RistrettoPoint,
}

impl Ciphertext {
    /// Encrypts 0 (identity in both parts): the start of a sum.
    pub(super) fn zero_sum() -> Self {
        Self {
            c1: RistrettoPoint::identity(),
            c2: RistrettoPoint::identity(),
        }
    }

    pub(super) fn add(&mut self, other: &Self) {
        self.c1 += other.c1;
        self.c2 += other.c2;
    }

    pub(super) fn encode(&self) -> EncodedCiphertext {
        EncodedCiphertext {
            c1: self.c1.compress().to_bytes(),
            c2: self.c2.compress().to_bytes(),
        }
    }
}

/// Decodes ciphertexts canonically; `first` is the stream index of the
/// first point, for errors (each ciphertext is two points).
pub(super) fn decode_ciphertexts(
    encoded: &[EncodedCiphertext],
    first: u64,
) -> Result<Vec<Ciphertext>, Error> {
    let points: Vec<EncodedPoint> = encoded.iter().flat_map(|c| [c.c1, c.c2]).collect();
    let decoded = decode_all(&points, first)?;
    Ok(decoded
        .chunks_exact(2)
        .map(|pair| Ciphertext {
            c1: pair[0],
            c2: pair[1],
        })
        .collect())
}

/// Encrypts under one joint key, with a precomputed table for it.
pub(super) struct Encryptor {
    /// 30 KiB: boxed, so the states that hold it stay small to move.
    key_table: Box<RistrettoBasepointTable>,
}

impl Encryptor {
    pub(super) fn new(joint_key: &RistrettoPoint) -> Self {
        Self {
            key_table: Box::new(RistrettoBasepointTable::create(joint_key)),
        }
    }

    /// Encrypts each plaintext and encodes the result.
    ///
    /// Draws `s` and sets `r = 2s`, so that both parts are `2·(…)` and
    /// `double_and_compress_batch` can encode the batch with one shared
    /// inversion: `C1 = 2·(s·G)`, `C2 = 2·(s·P + (m/2)·G)`.
    pub(super) fn encrypt_batch<R: CryptoRng + RngCore>(
        &self,
        plaintexts: &[u64],
        rng: &mut R,
    ) -> Vec<EncodedCiphertext> {
        let half = Scalar::from(2u8).invert();
        let mut inputs: Vec<(Scalar, Scalar)> = plaintexts
            .iter()
            .map(|&m| (Scalar::random(rng), Scalar::from(m) * half))
            .collect();
        let encoded = map_chunks(&inputs, 128, |chunk| {
            let halves: Vec<RistrettoPoint> = chunk
                .iter()
                .flat_map(|(s, half_m)| {
                    [
                        s * RISTRETTO_BASEPOINT_TABLE,
                        s * &*self.key_table + half_m * RISTRETTO_BASEPOINT_TABLE,
                    ]
                })
                .collect();
            let compressed = RistrettoPoint::double_and_compress_batch(&halves);
            compressed
                .chunks_exact(2)
                .map(|pair| EncodedCiphertext {
                    c1: pair[0].to_bytes(),
                    c2: pair[1].to_bytes(),
                })
                .collect::<Vec<_>>()
        })
        .concat();
        inputs.zeroize();
        encoded
    }

    /// A fresh encryption of 0, to re-randomise a sum.
    pub(super) fn zero<R: CryptoRng + RngCore>(&self, rng: &mut R) -> Ciphertext {
        let r = Scalar::random(rng);
        Ciphertext {
            c1: &r * RISTRETTO_BASEPOINT_TABLE,
            c2: &r * &*self.key_table,
        }
    }
}
