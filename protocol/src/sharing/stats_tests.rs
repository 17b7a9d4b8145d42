//! Horizontal statistics end to end in memory: each party's rows, shared
//! and opened, against the same statistics computed on the pooled rows.

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::tests::run;
use super::*;
use crate::dp::Epsilon;

const DIGITS: u32 = 2;

/// Rows: (group, value as decimal text with at most two digits).
fn rows(rng: &mut ChaCha20Rng, count: usize, groups: usize) -> Vec<(usize, String)> {
    (0..count)
        .map(|_| {
            let cents: i64 = rng.gen_range(-50_000..2_000_000);
            let sign = if cents < 0 { "-" } else { "" };
            let text = format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100);
            (rng.gen_range(0..groups), text)
        })
        .collect()
}

/// Runs the statistics job among the parties holding `per_party` rows.
fn pooled_job(
    per_party: &[Vec<(usize, String)>],
    layout: Layout,
    noise: Option<StatsNoise>,
    seed: u64,
) -> Vec<GroupResult> {
    let scale = FixedPoint::new(DIGITS).expect("scale");
    let n = per_party.len();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let inputs: Vec<Vec<u128>> = per_party
        .iter()
        .map(|rows| {
            let mut local = LocalStats::new(layout, noise.as_ref());
            for (group, text) in rows {
                let value = layout
                    .values
                    .then(|| scale.encode(text).expect("a decimal"));
                local.add(*group, value).expect("a row");
            }
            local
                .to_share::<u128, _>(n, noise.as_ref(), &mut rng)
                .expect("shareable")
                .to_vec()
        })
        .collect();
    let outputs = run(&inputs, &[0], seed);
    let SumOutput::Totals(totals) = &outputs[0] else {
        panic!("party 0 is the recipient");
    };
    let totals: Vec<i128> = totals.iter().map(|t| t.to_signed()).collect();
    finish(layout, &totals, DIGITS)
}

/// The same statistics on the pooled rows, computed independently: in
/// floating point, two-pass, from the decimal text.
fn plain(per_party: &[Vec<(usize, String)>], group: usize) -> (usize, f64, f64, f64) {
    let values: Vec<f64> = per_party
        .iter()
        .flatten()
        .filter(|(g, _)| *g == group)
        .map(|(_, text)| text.parse::<f64>().expect("decimal"))
        .collect();
    let count = values.len();
    let sum: f64 = values.iter().sum();
    let mean = sum / count as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count as f64 - 1.0);
    (count, sum, mean, variance)
}

fn units(value: i128) -> f64 {
    value as f64 / 10f64.powi(DIGITS as i32)
}

#[test]
fn count_sum_mean_variance_and_std_dev_match_the_pooled_rows() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    for n in [2, 3, 5] {
        let groups = 4;
        let per_party: Vec<Vec<(usize, String)>> = (0..n)
            .map(|i| rows(&mut rng, 200 + 50 * i, groups))
            .collect();
        let layout = Layout {
            groups,
            values: true,
        };
        let results = pooled_job(&per_party, layout, None, n as u64);
        assert_eq!(results.len(), groups);
        for (group, result) in results.iter().enumerate() {
            let (count, sum, mean, variance) = plain(&per_party, group);
            assert_eq!(result.count, count as i128, "n {n}, group {group}");
            // The sum is exact: every value had at most two digits.
            let exact_sum: i128 = per_party
                .iter()
                .flatten()
                .filter(|(g, _)| *g == group)
                .map(|(_, t)| {
                    FixedPoint::new(DIGITS)
                        .expect("scale")
                        .encode(t)
                        .expect("value")
                })
                .sum();
            assert_eq!(result.sum, Some(exact_sum));
            assert!((units(result.sum.expect("sum")) - sum).abs() < 1e-6);
            // Rounded to the scale: within half a unit, plus float error.
            let half_unit = 0.5 / 10f64.powi(DIGITS as i32) + 1e-6;
            assert!((units(result.mean.expect("mean")) - mean).abs() <= half_unit);
            let relative = (units(result.variance.expect("variance")) - variance).abs() / variance;
            assert!(relative < 1e-9, "variance {relative}");
            let std = units(result.std_dev.expect("std dev"));
            assert!(
                (std - variance.sqrt()).abs() <= half_unit,
                "{std} vs {}",
                variance.sqrt()
            );
        }
    }
}

#[test]
fn histograms_and_counts_alone_are_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let per_party: Vec<Vec<(usize, String)>> = (0..3).map(|_| rows(&mut rng, 300, 7)).collect();
    let layout = Layout {
        groups: 7,
        values: false,
    };
    let results = pooled_job(&per_party, layout, None, 3);
    for (bin, result) in results.iter().enumerate() {
        let expected = per_party
            .iter()
            .flatten()
            .filter(|(g, _)| *g == bin)
            .count();
        assert_eq!(result.count, expected as i128);
        assert_eq!(result.sum, None);
    }
}

#[test]
fn two_parties_with_noise_get_noisy_totals_centred_on_the_truth() {
    // A two-party sum reveals the other's input, so two-party jobs carry
    // noise. Over many jobs the noisy count is unbiased and really noisy.
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let per_party: Vec<Vec<(usize, String)>> = (0..2).map(|_| rows(&mut rng, 100, 1)).collect();
    let layout = Layout {
        groups: 1,
        values: true,
    };
    let noise = StatsNoise {
        epsilon: Epsilon::new(1, 1).expect("epsilon"),
        clamp: 200_000_000,
    };
    let exact = 200i128;
    let jobs = 400;
    let mut errors = Vec::with_capacity(jobs);
    for seed in 0..jobs as u64 {
        let result = &pooled_job(&per_party, layout, Some(noise), 1000 + seed)[0];
        errors.push(result.count - exact);
    }
    let mean_error = errors.iter().sum::<i128>() as f64 / jobs as f64;
    let changed = errors.iter().filter(|&&e| e != 0).count();
    // Each party adds discrete Laplace with parameter 1/3 (epsilon split
    // three ways): standard deviation about 4.2 per draw, 6 for two.
    assert!(mean_error.abs() < 1.0, "biased: {mean_error}");
    assert!(
        changed > jobs * 3 / 4,
        "barely noisy: {changed} of {jobs} changed"
    );
    assert!(errors.iter().all(|e| e.abs() < 60), "{errors:?}");
}

#[test]
fn rows_outside_the_layout_are_refused() {
    let layout = Layout {
        groups: 2,
        values: true,
    };
    let mut local = LocalStats::new(layout, None);
    assert_eq!(
        local.add(2, Some(1)),
        Err(StatsError::NoSuchGroup {
            group: 2,
            groups: 2
        })
    );
    assert!(matches!(
        local.add(0, None),
        Err(StatsError::ValueMismatch(_))
    ));
    let mut counts = LocalStats::new(
        Layout {
            groups: 1,
            values: false,
        },
        None,
    );
    assert!(matches!(
        counts.add(0, Some(5)),
        Err(StatsError::ValueMismatch(_))
    ));
    assert!(format!("{local:?}").contains("redacted"));
}

#[test]
fn undefined_results_stay_undefined() {
    let layout = Layout {
        groups: 3,
        values: true,
    };
    // Group 0: no rows; group 1: one row of 2.50; group 2: noisy totals
    // whose variance numerator came out negative.
    let results = finish(layout, &[0, 0, 0, 1, 250, 62_500, 5, 10, 0], DIGITS);
    assert_eq!((results[0].mean, results[0].variance), (None, None));
    assert_eq!((results[1].mean, results[1].variance), (Some(250), None));
    assert_eq!(results[2].variance, Some(0));
    assert_eq!(results[2].std_dev, Some(0));
}
