//! What each party and the dealer see: uniform, whatever the inputs.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use rand::Rng;

use super::{JOB, dot_products, roster};
use crate::beaver::*;
use crate::sharing::SumOutput;

/// Pearson's chi-square statistic of `counts` against a uniform spread.
pub(super) fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// The chi-square statistic above which 255 degrees of freedom are
/// rejected at p = 0.001.
pub(super) const CHI2_255_P001: f64 = 330.5;

#[test]
fn a_partys_view_is_uniform_whatever_the_inputs() {
    // Party 1 of 2 sees its dealer seed and party 0's masked values, whose
    // x and y party 0 holds whole. Over many runs, for an input of zeros
    // and for one of the largest values, every byte of what it sees must
    // be uniform: bytes of d, e and the seed bucketed by value (256
    // buckets; the seeds are fixed, so the test is deterministic).
    const RUNS: usize = 3000;
    for input in [0u128, u128::MAX >> 1] {
        let mut rng = ChaCha20Rng::seed_from_u64(12 ^ input as u64);
        let (mut of_d, mut of_e, mut of_seed) = ([0u64; 256], [0u64; 256], [0u64; 256]);
        for _ in 0..RUNS {
            let messages = Dealer::deal::<u128, _>(JOB, 2, 2, &mut rng).expect("deal");
            let DealerMessage::SeedAndCorrection { seed, .. } = &messages[1].message else {
                panic!("party 1 is last");
            };
            seed.bytes()
                .iter()
                .for_each(|&b| of_seed[usize::from(b)] += 1);
            let triples = ExpectTriples::new(&roster(2, 0, &[0]), JOB, 2)
                .expect("count")
                .handle(messages[0].message.clone())
                .expect("dealt");
            let step = Multiply::start(roster(2, 0, &[0]), &[input; 2], &[input; 2], triples)
                .expect("start");
            let BeaverMessage::Masked { d, e } = &step.send[0].message else {
                panic!("masked")
            };
            for (v, counts) in [(d, &mut of_d), (e, &mut of_e)] {
                v.iter()
                    .flat_map(|x| x.to_le_bytes())
                    .for_each(|b| counts[usize::from(b)] += 1);
            }
        }
        for (what, counts) in [("d", of_d), ("e", of_e), ("seed", of_seed)] {
            let statistic = chi_square(&counts);
            assert!(
                statistic < CHI2_255_P001,
                "input {input}, {what}: chi-square {statistic:.1}"
            );
        }
    }
}

#[test]
fn the_dealer_sees_no_input_and_its_correction_is_uniform() {
    // The dealer is given no input (its one function takes none) and no
    // party ever addresses it: every message of a run goes to a party.
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let x: Vec<u64> = (0..10).map(|_| rng.r#gen()).collect();
    let outputs = dot_products(&x, &x, 2, 3, &[0], &mut rng);
    assert!(matches!(outputs[0], SumOutput::Totals(_)));
    // What the last party gets from the dealer is uniform: the bytes of
    // its correction over many deals.
    let mut counts = [0u64; 256];
    for _ in 0..400 {
        let messages = Dealer::deal::<u64, _>(JOB, 2, 16, &mut rng).expect("deal");
        let DealerMessage::SeedAndCorrection { correction, .. } = &messages[1].message else {
            panic!("party 1 is last");
        };
        correction
            .iter()
            .flat_map(|c| c.to_le_bytes())
            .for_each(|b| counts[usize::from(b)] += 1);
    }
    let statistic = chi_square(&counts);
    assert!(statistic < CHI2_255_P001, "chi-square {statistic:.1}");
}
