//! The samplers against their distributions, and the exact privacy loss of
//! the paddings.

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

// ---- Exact privacy loss (see `exact.rs` for the arithmetic) ----

use super::exact::{Exact, Pmf, clamped_laplace, exact_value};

/// The requester's view of a count release: `true_count + d` for each
/// number `d` of matching dummies.
fn count_view(padding: &Pmf<u64>, true_count: u64) -> Pmf<u64> {
    padding
        .iter()
        .map(|(&d, &mass)| (true_count + d, mass))
        .collect()
}

/// Checks `(j·ε, δ)` both ways between two views, and returns the larger
/// bad mass (as floats) for messages.
fn assert_private<O: std::hash::Hash + Eq + std::fmt::Debug>(
    exact: &mut Exact,
    (p, q): (&Pmf<O>, &Pmf<O>),
    j: u64,
    (delta_num, delta_den): (u64, u64),
    case: &str,
) {
    for (from, to, direction) in [(p, q, "D → D'"), (q, p, "D' → D")] {
        let bad = exact.bad_mass(from, to, j);
        assert!(
            bad.at_most(delta_num, delta_den),
            "{case}, {direction}: mass {:?} where the ratio exceeds e^ε, above δ = {delta_num}/{delta_den}",
            bad.approx()
        );
    }
}

/// (ε, tail) pairs: the node's (0.1, 1e-9/2) with ε = 0.1 the tightest, and
/// others across the range.
const COUNT_CASES: [((u64, u64), (u64, u64)); 6] = [
    ((1, 10), (1, 2_000_000_000)),
    ((1, 2), (1, 2_000_000)),
    ((1, 1), (1, 2_000_000_000)),
    ((2, 1), (1, 2_000_000)),
    ((3, 7), (1, 20_000)),
    ((5, 1), (1, 200)),
];

#[test]
fn count_padding_loss_is_within_epsilon_and_delta_exactly() {
    // For true counts c and c + 1 (a record added to or removed from the
    // intersection), the probability of every output differs by at most a
    // factor e^ε, except on outputs of total mass at most δ = 2·tail.
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    for ((num, den), (tail_num, tail_den)) in COUNT_CASES {
        let epsilon = Epsilon::new(num, den).expect("epsilon");
        let padding = padding_for_count(epsilon, tail_num, tail_den, &mut rng).expect("padding");
        let mut exact = Exact::new(epsilon);
        let pmf = clamped_laplace(padding.offset, padding.total);
        let views = (&count_view(&pmf, 7), &count_view(&pmf, 8));
        let case = format!("ε = {num}/{den}, offset {}", padding.offset);
        assert_private(&mut exact, views, 1, (2 * tail_num, tail_den), &case);
    }
}

#[test]
fn the_exact_check_refuses_an_offset_one_smaller() {
    // The check is not vacuous: at ε = 0.1 and δ = 1e-9, one dummy fewer on
    // each side of the offset already leaks more than δ.
    let epsilon = Epsilon::new(1, 10).expect("epsilon");
    let offset = offset_for_tail(epsilon, 1, 2_000_000_000).expect("offset");
    let mut exact = Exact::new(epsilon);
    let pmf = clamped_laplace(offset - 1, 2 * (offset - 1));
    let bad = exact.bad_mass(&count_view(&pmf, 0), &count_view(&pmf, 1), 1);
    assert!(
        bad.above(1, 1_000_000_000),
        "offset {}: {:?}",
        offset - 1,
        bad.approx()
    );
}

/// The requester's whole view of a padded release: (announced size, count),
/// for a responder set of `size` records of which `count` are in common.
fn release_view(
    size_pmf: &Pmf<u64>,
    count_pmf: &Pmf<u64>,
    size: u64,
    count: u64,
) -> Pmf<(u64, u64)> {
    let mut view = Pmf::new();
    for (&s, &size_mass) in size_pmf {
        for (&d, &count_mass) in count_pmf {
            view.insert((size + s, count + d), size_mass.times(count_mass));
        }
    }
    view
}

/// (ε, δ) of a job.
const RELEASE_CASES: [((u64, u64), (u64, u64)); 4] = [
    ((1, 1), (1, 1_000_000)),
    ((1, 2), (1, 1_000_000_000)),
    ((2, 1), (1, 1_000)),
    ((3, 1), (1, 1_000_000_000)),
];

#[test]
fn release_view_is_epsilon_delta_private_under_adding_or_removing_a_record() {
    // Y against Y ∪ {y}: the announced size moves by one, and the count by
    // one if y is in the requester's set, by none if not. Both views,
    // computed exactly from the public parameters, must be (ε, δ)-close with
    // the job's whole ε and δ.
    for ((num, den), (delta_num, delta_den)) in RELEASE_CASES {
        let epsilon = Epsilon::new(num, den).expect("epsilon");
        let params = ReleaseParams::new(epsilon, delta_num, delta_den).expect("params");
        // The view's ε is the sum of the two releases': two steps of q.
        let per = params.per_release_epsilon;
        assert_eq!(
            u128::from(per.num()) * u128::from(epsilon.den()) * 2,
            u128::from(epsilon.num()) * u128::from(per.den()),
            "the two releases must share the job's epsilon"
        );
        let mut exact = Exact::new(per);
        let size = clamped_laplace(params.size_offset, params.size_total);
        let count = clamped_laplace(params.count_offset, params.count_total);
        // |Y| = 50 (plus the public count dummies, which shift every view
        // alike), 20 of them in common.
        let base = release_view(&size, &count, 50 + params.count_total, 20);
        for in_common in [0, 1] {
            let added = release_view(&size, &count, 51 + params.count_total, 20 + in_common);
            let case = format!(
                "ε = {num}/{den}, δ = {delta_num}/{delta_den}, offsets {}/{}, y in common: {in_common}",
                params.size_offset, params.count_offset
            );
            assert_private(
                &mut exact,
                (&base, &added),
                2,
                (delta_num, delta_den),
                &case,
            );
        }
    }
}

#[test]
fn without_size_dummies_the_view_is_not_private_under_adding_a_record() {
    // The padding before the size dummies: the count noisy at the whole ε,
    // the size exact. Adding a record changes the announced size with
    // certainty, which no δ < 1 covers.
    let epsilon = Epsilon::new(1, 1).expect("epsilon");
    let offset = offset_for_tail(epsilon, 1, 2_000_000).expect("offset");
    let mut exact = Exact::new(epsilon);
    let count = clamped_laplace(offset, 2 * offset);
    let base = release_view(&exact_value(0), &count, 50, 20);
    let added = release_view(&exact_value(0), &count, 51, 20);
    let bad = exact.bad_mass(&base, &added, 1);
    assert!(bad.above(999_999, 1_000_000), "{:?}", bad.approx());
}

#[test]
fn release_padding_draws_both_noises_at_half_the_epsilon() {
    let epsilon = Epsilon::new(1, 1).expect("epsilon");
    let params = ReleaseParams::new(epsilon, 1, 1_000_000).expect("params");
    assert_eq!(
        params.per_release_epsilon,
        Epsilon::new(1, 2).expect("half")
    );
    assert_eq!(params.count_total, 2 * params.count_offset);
    assert_eq!(params.size_total, 2 * params.size_offset);
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let n = 20_000;
    let (mut count_noise, mut size_noise) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let drawn = padding_for_release(epsilon, 1, 1_000_000, &mut rng).expect("padding");
        assert_eq!(drawn.params, params);
        assert!(drawn.matching <= params.count_total);
        assert!(drawn.size_dummies <= params.size_total);
        count_noise.push(drawn.matching as f64 - params.count_offset as f64);
        size_noise.push(drawn.size_dummies as f64 - params.size_offset as f64);
    }
    // Mean 0 and the variance of discrete Laplace at ε/2, 2q/(1−q)².
    let q = (-0.5f64).exp();
    let variance = 2.0 * q / (1.0 - q).powi(2);
    for (name, noise) in [("count", &count_noise), ("size", &size_noise)] {
        let mean = noise.iter().sum::<f64>() / n as f64;
        assert!(
            mean.abs() <= 5.0 * (variance / n as f64).sqrt(),
            "{name}: mean {mean}"
        );
        let observed = noise.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (observed / variance - 1.0).abs() < 0.1,
            "{name}: variance {observed} against {variance}"
        );
    }
    // Independent draws: the two noises are uncorrelated.
    let covariance = count_noise
        .iter()
        .zip(&size_noise)
        .map(|(c, s)| c * s)
        .sum::<f64>()
        / n as f64;
    assert!(
        covariance.abs() <= 5.0 * variance / (n as f64).sqrt(),
        "covariance {covariance}"
    );
}

#[test]
fn release_params_refuse_an_unusable_delta_and_redact_the_draws() {
    let epsilon = Epsilon::new(1, 1).expect("epsilon");
    for (num, den) in [(0, 1), (1, 1), (2, 1), (1, 0)] {
        assert_eq!(
            ReleaseParams::new(epsilon, num, den),
            Err(DpError::DeltaOutOfRange { num, den })
        );
    }
    let odd = Epsilon::new(1, u64::MAX).expect("epsilon");
    assert!(odd.halved().is_err());
    assert_eq!(
        Epsilon::new(3, 4).and_then(|e| e.halved()),
        Epsilon::new(3, 8)
    );
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let drawn = padding_for_release(epsilon, 1, 1_000, &mut rng).expect("padding");
    let printed = format!("{drawn:?}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("matching: 1") && !printed.contains("size_dummies: 1"));
}
