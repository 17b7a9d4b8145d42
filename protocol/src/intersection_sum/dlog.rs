//! Bounded discrete logarithms by baby-step giant-step.
//!
//! To find `m ≤ bound` with `M = m·G`, write `m = j·n + i` with `n` baby
//! steps: the table holds `i·G` for `i < n`, and the search tries
//! `M − j·(n·G)` for `j = 0, 1, …` until one is in the table. Time is at
//! most `⌊bound/n⌋ + 1` giant steps; memory is `n` entries.
//!
//! Entries are keyed by the first 8 bytes of `compress(2·P)` rather than of
//! `compress(P)`: `double_and_compress_batch` encodes `2·P` for a whole
//! batch with one shared inversion, and doubling is a bijection in a group
//! of odd order, so the key still names `P`. A key is short, so a hit is
//! confirmed by recomputing `m·G` before it is believed.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;

use super::InputError;
use crate::Error;
use crate::group::map_chunks;

/// Points encoded together with one shared inversion.
const BATCH: usize = 256;

/// A table of baby steps for bounded discrete logarithms base `G`.
///
/// Building it costs `2^bits` point additions and encodings and holds 12
/// bytes per entry (12 MiB at the recommended 20 bits); build it once per
/// process and share it between jobs.
pub struct DlogTable {
    /// `n`, the number of baby steps.
    baby_steps: u64,
    /// Keys of `i·G`, ascending.
    keys: Vec<u64>,
    /// `i` for each key, in the same order.
    steps: Vec<u32>,
    /// `n·G`, one giant step.
    giant: RistrettoPoint,
}

impl DlogTable {
    /// The baby steps the documented costs assume: `2^20`.
    pub const RECOMMENDED_BITS: u8 = 20;

    /// Builds a table of `2^bits` baby steps, `bits` from 1 to 28.
    pub fn new(bits: u8) -> Result<Self, InputError> {
        if !(1..=28).contains(&bits) {
            return Err(InputError::TableBits { bits });
        }
        let baby_steps = 1u64 << bits;
        let starts: Vec<u64> = (0..baby_steps).step_by(BATCH).collect();
        let chunk_keys = map_chunks(&starts, 1, |start| {
            let first = start[0];
            let count = BATCH.min((baby_steps - first) as usize);
            let mut point = RistrettoPoint::mul_base(&Scalar::from(first));
            let mut batch = Vec::with_capacity(count);
            for _ in 0..count {
                batch.push(point);
                point += RISTRETTO_BASEPOINT_POINT;
            }
            keys_of_doubles(&batch)
        });
        let mut entries: Vec<(u64, u32)> = chunk_keys.into_iter().flatten().zip(0u32..).collect();
        entries.sort_unstable();
        let (keys, steps) = entries.into_iter().unzip();
        Ok(Self {
            baby_steps,
            keys,
            steps,
            giant: RistrettoPoint::mul_base(&Scalar::from(baby_steps)),
        })
    }

    /// Number of baby steps.
    pub fn baby_steps(&self) -> u64 {
        self.baby_steps
    }

    /// Giant steps a search up to `bound` takes at most.
    pub fn giant_steps(&self, bound: u64) -> u64 {
        bound / self.baby_steps + 1
    }

    /// The `m` in `0..=bound` with `point = m·G`, or
    /// [`Error::DecryptionOutOfRange`] when there is none.
    pub fn solve(&self, point: &RistrettoPoint, bound: u64) -> Result<u64, Error> {
        let out_of_range = Error::DecryptionOutOfRange { bound };
        let giant_steps = self.giant_steps(bound);
        let mut current = *point;
        let mut j = 0u64;
        while j < giant_steps {
            let count = (giant_steps - j).min(BATCH as u64) as usize;
            let mut batch = Vec::with_capacity(count);
            for _ in 0..count {
                batch.push(current);
                current -= self.giant;
            }
            for (offset, key) in keys_of_doubles(&batch).into_iter().enumerate() {
                let giant = j + offset as u64;
                if let Some(m) = self.confirmed(key, giant, point) {
                    return if m <= bound { Ok(m) } else { Err(out_of_range) };
                }
            }
            j += count as u64;
        }
        Err(out_of_range)
    }

    /// `j·n + i` for the table entry under `key` whose value checks out
    /// against `point`, if any.
    fn confirmed(&self, key: u64, giant: u64, point: &RistrettoPoint) -> Option<u64> {
        let first = self.keys.partition_point(|&k| k < key);
        self.keys[first..]
            .iter()
            .zip(&self.steps[first..])
            .take_while(|&(&k, _)| k == key)
            .map(|(_, &i)| giant * self.baby_steps + u64::from(i))
            .find(|&m| RistrettoPoint::mul_base(&Scalar::from(m)) == *point)
    }
}

/// The table key of each point: the first 8 bytes of `compress(2·P)`.
fn keys_of_doubles(points: &[RistrettoPoint]) -> Vec<u64> {
    RistrettoPoint::double_and_compress_batch(points)
        .into_iter()
        .map(|c| {
            let bytes = c.to_bytes();
            u64::from_le_bytes([
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            ])
        })
        .collect()
}

impl std::fmt::Debug for DlogTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DlogTable({} baby steps)", self.baby_steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::traits::Identity;

    fn times_g(m: u64) -> RistrettoPoint {
        RistrettoPoint::mul_base(&Scalar::from(m))
    }

    #[test]
    fn solves_every_value_up_to_the_bound_and_refuses_past_it() {
        let table = DlogTable::new(4).expect("table");
        let bound = 100;
        for m in 0..=bound {
            assert_eq!(table.solve(&times_g(m), bound), Ok(m), "m = {m}");
        }
        // Past the bound, in the last giant step's range and beyond it.
        for m in [bound + 1, 111, 112, 5000, u64::MAX] {
            assert_eq!(
                table.solve(&times_g(m), bound),
                Err(Error::DecryptionOutOfRange { bound }),
                "m = {m}"
            );
        }
        // A bound that is a multiple of the baby steps, exactly.
        assert_eq!(table.solve(&times_g(96), 96), Ok(96));
        assert!(table.solve(&times_g(97), 96).is_err());
    }

    #[test]
    fn a_point_with_no_small_logarithm_is_refused() {
        let table = DlogTable::new(6).expect("table");
        let far = crate::group::hash_to_group(b"dlog test", b"not a small multiple");
        assert_eq!(
            table.solve(&far, 10_000),
            Err(Error::DecryptionOutOfRange { bound: 10_000 })
        );
        assert_eq!(table.solve(&RistrettoPoint::identity(), 0), Ok(0));
    }

    #[test]
    fn large_values_with_the_recommended_shape() {
        // 2^12 baby steps and a 2^24 bound: 4097 giant steps at most.
        let table = DlogTable::new(12).expect("table");
        assert_eq!(table.giant_steps(1 << 24), 4097);
        for m in [0, 4095, 4096, 4097, (1 << 24) - 1, 1 << 24] {
            assert_eq!(table.solve(&times_g(m), 1 << 24), Ok(m), "m = {m}");
        }
        assert!(table.solve(&times_g((1 << 24) + 1), 1 << 24).is_err());
    }

    #[test]
    fn table_sizes_out_of_range_are_refused() {
        assert_eq!(
            DlogTable::new(0).err(),
            Some(InputError::TableBits { bits: 0 })
        );
        assert_eq!(
            DlogTable::new(29).err(),
            Some(InputError::TableBits { bits: 29 })
        );
    }
}
