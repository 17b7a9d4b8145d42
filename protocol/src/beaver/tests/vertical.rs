//! Vertical statistics end to end in memory against the same statistics
//! computed in the clear on the rows both parties have.

use num_bigint::BigInt;
use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{JOB, dealt, deliver, roster};
use crate::Progress;
use crate::beaver::vertical::{
    self, CORRELATION_DIGITS, MAX_ROWS, RowA, VerticalError, VerticalPlan, VerticalResult,
    VerticalTotals,
};
use crate::beaver::*;
use crate::sharing::{FixedPoint, MAX_SCALED, PartyIndex, SumOutput};

const DIGITS: u32 = 2;

/// A's and B's rows, aligned.
struct Rows {
    a: Vec<Option<RowA>>,
    b: Vec<Option<i128>>,
    categories: usize,
}

/// A decimal with two digits in `-range..range` units of 0.01, read from its
/// text as a party would.
fn decimal(rng: &mut ChaCha20Rng, range: i64) -> i128 {
    let cents: i64 = rng.gen_range(-range..range);
    let sign = if cents < 0 { "-" } else { "" };
    let text = format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100);
    FixedPoint::new(DIGITS)
        .expect("scale")
        .encode(&text)
        .expect("a decimal")
}

fn random_rows(rng: &mut ChaCha20Rng, rows: usize, categories: usize, p_a: f64, p_b: f64) -> Rows {
    Rows {
        a: (0..rows)
            .map(|_| {
                rng.gen_bool(p_a).then(|| RowA {
                    value: decimal(rng, 1_000_000),
                    category: (categories > 0 && rng.gen_bool(0.9))
                        .then(|| rng.gen_range(0..categories)),
                })
            })
            .collect(),
        b: (0..rows)
            .map(|_| rng.gen_bool(p_b).then(|| decimal(rng, 50_000)))
            .collect(),
        categories,
    }
}

/// Runs the job between A and B with the dealer's triples; the opened
/// sums at each party (or `None` where it is not a recipient).
fn run(rows: &Rows, recipients: &[usize], seed: u64) -> Vec<Option<VerticalTotals>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let plan = VerticalPlan::new(rows.a.len(), rows.categories).expect("plan");
    let vectors = [
        plan.vector_a(&rows.a).expect("A's rows"),
        plan.vector_b(&rows.b).expect("B's rows"),
    ];
    let mut states = Vec::new();
    let mut in_flight = Vec::new();
    for (i, triples) in dealt::<u128>(2, plan.products(), &mut rng)
        .into_iter()
        .enumerate()
    {
        let step =
            vertical::start(roster(2, i, recipients), plan, &vectors[i], triples).expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("nobody is done at once")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (PartyIndex(i), m)));
    }
    deliver(states, in_flight, ExpectDot::handle, &mut rng)
        .into_iter()
        .map(|out| match out {
            SumOutput::Totals(t) => Some(VerticalTotals::from_opened(plan, &t).expect("opened")),
            SumOutput::NotARecipient => None,
        })
        .collect()
}

/// A common row in the clear: (x, category, y).
type Common = (i128, Option<usize>, i128);

/// The common rows in the clear.
fn common(rows: &Rows) -> Vec<Common> {
    rows.a
        .iter()
        .zip(&rows.b)
        .filter_map(|(a, b)| Some((a.as_ref()?.value, a.as_ref()?.category, (*b)?)))
        .collect()
}

/// Asserts `reported` is `num / den` rounded to an integer: within ½.
fn assert_rounded(reported: Option<i128>, num: &BigInt, den: &BigInt, what: &str) {
    let q = BigInt::from(reported.unwrap_or_else(|| panic!("{what} is defined")));
    let twice = num * 2;
    assert!(
        (&q * 2 - 1) * den <= twice && twice <= (&q * 2 + 1) * den,
        "{what}: {q} is not {num}/{den} rounded"
    );
}

/// Checks every statistic against the common rows, computed
/// independently: two-pass centred sums in exact integers.
fn check(result: &VerticalResult, rows: &Rows) {
    let common = common(rows);
    let n = common.len() as i128;
    let sum = |f: &dyn Fn(&Common) -> i128| common.iter().map(f).sum::<i128>();
    let (sx, sy) = (sum(&|r| r.0), sum(&|r| r.2));
    assert_eq!(result.count, n);
    assert_eq!((result.x.count, result.y.count), (n, n));
    assert_eq!((result.x.sum, result.y.sum), (Some(sx), Some(sy)));
    assert_eq!(result.sum_xy, sum(&|r| r.0 * r.2));
    let unit = BigInt::from(10).pow(DIGITS);
    let big_n = BigInt::from(n);
    if n == 0 {
        assert_eq!(
            (result.x.mean, result.y.mean, result.covariance),
            (None, None, None)
        );
    } else {
        assert_rounded(result.x.mean, &BigInt::from(sx), &big_n, "mean of x");
        assert_rounded(result.y.mean, &BigInt::from(sy), &big_n, "mean of y");
    }
    // n²·Σ(u − ū)(v − v̄) = Σ(n·u − Σu)(n·v − Σv).
    let centred = |u: &dyn Fn(&Common) -> i128, v: &dyn Fn(&Common) -> i128, su: i128, sv: i128| {
        common
            .iter()
            .map(|r| BigInt::from(n * u(r) - su) * BigInt::from(n * v(r) - sv))
            .sum::<BigInt>()
    };
    let (cxx, cyy, cxy) = (
        centred(&|r| r.0, &|r| r.0, sx, sx),
        centred(&|r| r.2, &|r| r.2, sy, sy),
        centred(&|r| r.0, &|r| r.2, sx, sy),
    );
    if n >= 2 {
        let den = &big_n * &big_n * (&big_n - 1) * &unit;
        assert_rounded(result.x.variance, &cxx, &den, "variance of x");
        assert_rounded(result.y.variance, &cyy, &den, "variance of y");
        assert_rounded(result.covariance, &cxy, &den, "covariance");
        let r = f64_of(&cxy) / (f64_of(&cxx).sqrt() * f64_of(&cyy).sqrt());
        let reported = result.correlation.expect("two rows and varying columns") as f64;
        let exact = r * 10f64.powi(CORRELATION_DIGITS as i32);
        assert!(
            (reported - exact).abs() <= 0.5 + 1e-4,
            "correlation {reported} vs {exact}"
        );
        assert!(reported.abs() <= 10f64.powi(CORRELATION_DIGITS as i32));
    } else {
        assert_eq!(
            (result.x.variance, result.covariance, result.correlation),
            (None, None, None)
        );
    }
    assert_eq!(result.groups.len(), rows.categories);
    for (j, group) in result.groups.iter().enumerate() {
        let members: Vec<i128> = common
            .iter()
            .filter(|r| r.1 == Some(j))
            .map(|r| r.2)
            .collect();
        let (count, total) = (members.len() as i128, members.iter().sum::<i128>());
        assert_eq!((group.count, group.sum), (count, total), "category {j}");
        if count == 0 {
            assert_eq!(group.mean, None);
        } else {
            assert_rounded(
                group.mean,
                &BigInt::from(total),
                &BigInt::from(count),
                "a category's mean",
            );
        }
    }
}

fn f64_of(v: &BigInt) -> f64 {
    v.to_string().parse().expect("an integer")
}

#[test]
fn statistics_over_the_common_rows_match_the_clear_computation() {
    let mut rng = ChaCha20Rng::seed_from_u64(20);
    for (seed, (categories, recipients)) in [(3, vec![0]), (0, vec![1]), (5, vec![0, 1])]
        .into_iter()
        .enumerate()
    {
        let rows = random_rows(&mut rng, 80, categories, 0.7, 0.6);
        let outputs = run(&rows, &recipients, seed as u64);
        for (i, out) in outputs.iter().enumerate() {
            match out {
                Some(totals) => {
                    assert!(recipients.contains(&i));
                    check(&vertical::finish(totals, DIGITS), &rows);
                }
                None => assert!(!recipients.contains(&i)),
            }
        }
        assert!(common(&rows).len() > 10, "the data has common rows to test");
    }
}

#[test]
fn no_common_rows_release_zero_counts_and_no_means() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let mut rows = random_rows(&mut rng, 30, 2, 1.0, 1.0);
    for r in 0..30 {
        if r % 2 == 0 {
            rows.a[r] = None
        } else {
            rows.b[r] = None
        }
    }
    let totals = run(&rows, &[0], 1)[0].clone().expect("A receives");
    assert_eq!(
        totals,
        VerticalTotals {
            count: 0,
            sum_x: 0,
            sum_x2: 0,
            sum_y: 0,
            sum_y2: 0,
            sum_xy: 0,
            groups: vec![(0, 0); 2]
        }
    );
    let result = vertical::finish(&totals, DIGITS);
    check(&result, &rows);
    assert_eq!((result.x.mean, result.correlation), (None, None));
    // Nothing at all: no rows.
    let empty = Rows {
        a: vec![],
        b: vec![],
        categories: 1,
    };
    check(
        &vertical::finish(
            &run(&empty, &[0], 2)[0].clone().expect("A receives"),
            DIGITS,
        ),
        &empty,
    );
}

#[test]
fn all_rows_common_and_a_single_row() {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let rows = random_rows(&mut rng, 40, 4, 1.0, 1.0);
    assert_eq!(common(&rows).len(), 40);
    check(
        &vertical::finish(&run(&rows, &[1], 3)[1].clone().expect("B receives"), DIGITS),
        &rows,
    );
    let mut one = random_rows(&mut rng, 5, 1, 1.0, 0.0);
    one.b[2] = Some(1234);
    let result = vertical::finish(&run(&one, &[0], 4)[0].clone().expect("A receives"), DIGITS);
    check(&result, &one);
    assert_eq!(
        (result.count, result.y.mean, result.x.variance),
        (1, Some(1234), None)
    );
}

#[test]
fn integer_columns_give_exact_integer_results() {
    // x = 2y + 1 exactly: correlation 1, and every sum exact at digits 0.
    let ys: Vec<i128> = (0..25).map(|v| v * 7 - 60).collect();
    let rows = Rows {
        a: ys
            .iter()
            .map(|&y| {
                Some(RowA {
                    value: 2 * y + 1,
                    category: Some((y & 1) as usize),
                })
            })
            .collect(),
        b: ys.iter().map(|&y| Some(y)).collect(),
        categories: 2,
    };
    let totals = run(&rows, &[0], 5)[0].clone().expect("A receives");
    let sum = |f: fn(i128) -> i128| ys.iter().map(|&y| f(y)).sum::<i128>();
    assert_eq!(totals.sum_x, sum(|y| 2 * y + 1));
    assert_eq!(totals.sum_x2, sum(|y| (2 * y + 1) * (2 * y + 1)));
    assert_eq!(totals.sum_xy, sum(|y| (2 * y + 1) * y));
    assert_eq!(totals.sum_y2, sum(|y| y * y));
    let result = vertical::finish(&totals, 0);
    assert_eq!(result.correlation, Some(10i128.pow(CORRELATION_DIGITS)));
    // y = −x: correlation −1; a constant column: no correlation.
    let mut negated = rows;
    negated.b = negated.a.iter().map(|a| a.map(|a| -a.value)).collect();
    let result = vertical::finish(&run(&negated, &[0], 6)[0].clone().expect("A"), 0);
    assert_eq!(result.correlation, Some(-(10i128.pow(CORRELATION_DIGITS))));
    negated.b = vec![Some(5); 25];
    let result = vertical::finish(&run(&negated, &[0], 7)[0].clone().expect("A"), 0);
    assert_eq!((result.correlation, result.y.variance), (None, Some(0)));
}

#[test]
fn the_largest_allowed_values_do_not_wrap() {
    // ±10^15 scaled units, squared and multiplied: 10^30 per row, past
    // 2^99, summed without wrapping in Z_2^128.
    let m = MAX_SCALED;
    let rows = Rows {
        a: [m, -m, m, m, -m, 0]
            .iter()
            .map(|&v| {
                Some(RowA {
                    value: v,
                    category: Some(0),
                })
            })
            .collect(),
        b: [m, m, -m, m, -m, m].iter().map(|&v| Some(v)).collect(),
        categories: 1,
    };
    let totals = run(&rows, &[0], 8)[0].clone().expect("A receives");
    assert_eq!(totals.sum_x2, 5 * m * m);
    assert_eq!(totals.sum_y2, 6 * m * m);
    assert_eq!(
        totals.sum_xy,
        [1, -1, -1, 1, 1, 0].iter().map(|s| s * m * m).sum::<i128>()
    );
    check(&vertical::finish(&totals, DIGITS), &rows);
    // The bound the range argument rests on, at its limit.
    let worst = BigInt::from(MAX_ROWS) * BigInt::from(m) * BigInt::from(m);
    assert!(worst < BigInt::from(1u128 << 120));
}

#[test]
fn inputs_shared_by_seed_open_the_same_sums() {
    // The same job with each vector shared by seed first: valid shares
    // too, so the opened sums are the same.
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    let rows = random_rows(&mut rng, 20, 2, 0.8, 0.8);
    let plan = VerticalPlan::new(20, 2).expect("plan");
    let a = plan.vector_a(&rows.a).expect("A");
    let b = plan.vector_b(&rows.b).expect("B");
    let by_a = share_by_seed(&roster(2, 0, &[0]), JOB, b"A", &a, &mut rng).expect("share");
    let by_b = share_by_seed(&roster(2, 1, &[0]), JOB, b"B", &b, &mut rng).expect("share");
    let receive = |me, owner, label: &[u8], message| {
        ExpectInputSeed::new(
            &roster(2, me, &[0]),
            JOB,
            PartyIndex(owner),
            label,
            plan.products(),
        )
        .expect("expect")
        .handle(PartyIndex(owner), message)
        .expect("seed")
    };
    let b_share_of_a = receive(1, 0, b"A", by_a.send[0].message.clone());
    let a_share_of_b = receive(0, 1, b"B", by_b.send[0].message.clone());
    let shares = [(by_a.share, a_share_of_b), (b_share_of_a, by_b.share)];
    let mut states = Vec::new();
    let mut in_flight = Vec::new();
    for (i, triples) in dealt::<u128>(2, plan.products(), &mut rng)
        .into_iter()
        .enumerate()
    {
        let (x, y) = &shares[i];
        let step = DotProducts::start(roster(2, i, &[0]), x, y, triples, plan.statistics())
            .expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("waiting")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (PartyIndex(i), m)));
    }
    let SumOutput::Totals(opened) =
        deliver(states, in_flight, ExpectDot::handle, &mut rng).remove(0)
    else {
        panic!("A receives");
    };
    let seeded = VerticalTotals::from_opened(plan, &opened).expect("opened");
    assert_eq!(Some(seeded), run(&rows, &[0], 9).remove(0));
}

#[test]
fn bad_rows_and_plans_are_refused_before_anything_is_sent() {
    assert!(matches!(
        VerticalPlan::new(MAX_ROWS + 1, 0),
        Err(VerticalError::TooLarge { .. })
    ));
    assert!(matches!(
        VerticalPlan::new(MAX_ROWS, 200),
        Err(VerticalError::TooLarge { .. })
    ));
    assert!(matches!(
        VerticalPlan::new(usize::MAX, usize::MAX),
        Err(VerticalError::TooLarge { .. })
    ));
    let plan = VerticalPlan::new(3, 2).expect("plan");
    let row = |value, category| Some(RowA { value, category });
    assert_eq!(
        plan.vector_a(&[None, None]).map(|_| ()),
        Err(VerticalError::RowCount {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        plan.vector_a(&[None, row(MAX_SCALED + 1, None), None])
            .map(|_| ()),
        Err(VerticalError::ValueTooLarge {
            row: 1,
            value: MAX_SCALED + 1
        })
    );
    assert_eq!(
        plan.vector_a(&[row(1, Some(2)), None, None]).map(|_| ()),
        Err(VerticalError::NoSuchCategory {
            row: 0,
            category: 2,
            categories: 2
        })
    );
    assert_eq!(
        plan.vector_b(&[None, None, Some(-MAX_SCALED - 1)])
            .map(|_| ()),
        Err(VerticalError::ValueTooLarge {
            row: 2,
            value: -MAX_SCALED - 1
        })
    );
    assert!(
        plan.vector_a(&[row(-MAX_SCALED, Some(1)), None, None])
            .is_ok()
    );
    let mut rng = ChaCha20Rng::seed_from_u64(24);
    let vector = plan.vector_b(&[Some(1), None, None]).expect("B");
    let triples = dealt::<u128>(3, plan.products(), &mut rng).remove(1);
    assert_eq!(
        vertical::start(roster(3, 1, &[0]), plan, &vector, triples)
            .map(|_| ())
            .expect_err("three parties"),
        VerticalError::PartyCount(3)
    );
    let triples = dealt::<u128>(2, plan.products(), &mut rng).remove(1);
    assert!(matches!(
        vertical::start(roster(2, 1, &[0]), plan, &vector[1..], triples),
        Err(VerticalError::Beaver(BeaverError::Length { .. }))
    ));
    assert!(VerticalTotals::from_opened(plan, &[0; 9]).is_err());
}
