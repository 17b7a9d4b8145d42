use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::{Error, Progress, Step};

/// Runs a secure sum among `inputs.len()` parties in memory, delivering
/// messages in a random order; returns each party's output.
pub(super) fn run<R: Ring>(
    inputs: &[Vec<R>],
    recipients: &[usize],
    seed: u64,
) -> Vec<SumOutput<R>> {
    let n = inputs.len();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut states: Vec<Option<ExpectShares<R>>> = Vec::new();
    let mut outputs: Vec<Option<SumOutput<R>>> = vec![None; n];
    let mut in_flight: Vec<(PartyIndex, Addressed<SumMessage<R>>)> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let roster = Roster::new(n, PartyIndex(i), recipients.iter().map(|&r| PartyIndex(r)))
            .expect("roster");
        match SecureSum::start(roster, input, &mut rng) {
            Step {
                next: Progress::Continue(state),
                send: messages,
            } => {
                states.push(Some(state));
                in_flight.extend(messages.into_iter().map(|m| (PartyIndex(i), m)));
            }
            Step {
                next: Progress::Done(_),
                ..
            } => unreachable!("nobody is done before hearing from the others"),
        }
    }
    while !in_flight.is_empty() {
        in_flight.shuffle(&mut rng);
        let (from, Addressed { to, message }) = in_flight.pop().expect("a message");
        let state = states[to.0]
            .take()
            .expect("a party still running gets no late message");
        match state.handle(from, message).expect("an honest run") {
            Step {
                next: Progress::Continue(state),
                send: messages,
            } => {
                states[to.0] = Some(state);
                in_flight.extend(messages.into_iter().map(|m| (to, m)));
            }
            Step {
                next: Progress::Done(output),
                send: messages,
            } => {
                outputs[to.0] = Some(output);
                in_flight.extend(messages.into_iter().map(|m| (to, m)));
            }
        }
    }
    outputs
        .into_iter()
        .map(|o| o.expect("every party finished"))
        .collect()
}

/// The plain element-wise sum, in i128, for comparison.
fn plain_sum(inputs: &[Vec<i128>]) -> Vec<i128> {
    (0..inputs[0].len())
        .map(|k| inputs.iter().map(|v| v[k]).sum())
        .collect()
}

#[test]
fn recipients_get_the_plain_totals_and_nobody_else_gets_anything() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for n in [2, 3, 5, 8] {
        for recipients in [vec![0], vec![n - 1], (0..n).collect::<Vec<_>>()] {
            let plain: Vec<Vec<i128>> = (0..n)
                .map(|_| {
                    (0..6)
                        .map(|_| {
                            i128::from(rand::Rng::gen_range(&mut rng, -1_000_000i64..1_000_000))
                        })
                        .collect()
                })
                .collect();
            let inputs: Vec<Vec<u64>> = plain
                .iter()
                .map(|v| v.iter().map(|&x| fit::<u64>(x, n).expect("fits")).collect())
                .collect();
            let outputs = run(&inputs, &recipients, n as u64);
            let expected = plain_sum(&plain);
            for (i, output) in outputs.iter().enumerate() {
                match output {
                    SumOutput::Totals(totals) => {
                        assert!(recipients.contains(&i), "party {i} is not a recipient");
                        let totals: Vec<i128> = totals.iter().map(|t| t.to_signed()).collect();
                        assert_eq!(totals, expected, "n = {n}, party {i}");
                    }
                    SumOutput::NotARecipient => assert!(!recipients.contains(&i)),
                }
            }
        }
    }
}

#[test]
fn wide_sums_of_squares_use_the_128_bit_ring() {
    // Squares of the largest fixed-point values overflow 64 bits at once.
    let square = MAX_SCALED * MAX_SCALED;
    let plain = [vec![square, -3], vec![square, 5], vec![square, 0]];
    let inputs: Vec<Vec<u128>> = plain
        .iter()
        .map(|v| {
            v.iter()
                .map(|&x| fit::<u128>(x, 3).expect("fits"))
                .collect()
        })
        .collect();
    let outputs = run(&inputs, &[2], 9);
    assert_eq!(
        outputs[2],
        SumOutput::Totals(vec![
            u128::from_signed(3 * square).expect("in range"),
            u128::from_signed(2).expect("in range")
        ])
    );
    assert!(fit::<u64>(square, 3).is_err());
}

#[test]
fn an_empty_vector_of_values_still_completes() {
    let outputs = run::<u64>(&[vec![], vec![], vec![]], &[0], 3);
    assert_eq!(outputs[0], SumOutput::Totals(vec![]));
}

fn started(n: usize, me: usize, recipients: &[usize], values: &[u64]) -> ExpectShares<u64> {
    let roster =
        Roster::new(n, PartyIndex(me), recipients.iter().map(|&r| PartyIndex(r))).expect("roster");
    match SecureSum::start(roster, values, &mut ChaCha20Rng::seed_from_u64(5)) {
        Step {
            next: Progress::Continue(state),
            send: _,
        } => state,
        Step {
            next: Progress::Done(_),
            ..
        } => unreachable!(),
    }
}

#[test]
fn messages_from_the_wrong_party_or_of_the_wrong_size_abort() {
    let shares = || SumMessage::InputShares(vec![1u64, 2]);
    let cases: Vec<(ExpectShares<u64>, PartyIndex, SumMessage<u64>, &str)> = vec![
        (
            started(3, 0, &[0], &[1, 2]),
            PartyIndex(3),
            shares(),
            "not a party",
        ),
        (
            started(3, 0, &[0], &[1, 2]),
            PartyIndex(0),
            shares(),
            "itself",
        ),
        (
            started(3, 1, &[0], &[1, 2]),
            PartyIndex(2),
            SumMessage::TotalShares(vec![1, 2]),
            "not a recipient",
        ),
    ];
    for (state, from, message, problem) in cases {
        let err = state.handle(from, message).expect_err(problem);
        assert!(
            matches!(&err, Error::WrongParty { problem: p, .. } if p.contains(problem)),
            "{err:?}"
        );
        assert_eq!(err.abort_code(), 8);
    }
    let err = started(3, 0, &[0], &[1, 2])
        .handle(PartyIndex(1), SumMessage::InputShares(vec![1]))
        .expect_err("short");
    assert_eq!(
        err,
        Error::WrongShareCount {
            from: 1,
            expected: 2,
            found: 1
        }
    );
    // A second message of the same kind from one party.
    let Step {
        next: Progress::Continue(state),
        ..
    } = started(3, 0, &[0], &[1, 2])
        .handle(PartyIndex(1), shares())
        .expect("first")
    else {
        panic!("still waiting for party 2");
    };
    let err = state.handle(PartyIndex(1), shares()).expect_err("twice");
    assert!(matches!(err, Error::WrongParty { from: 1, .. }), "{err:?}");
}

#[test]
fn shares_never_print() {
    let state = started(3, 0, &[0], &[424_242, 171_717]);
    let message = SumMessage::InputShares(vec![424_242u64]);
    let printed = format!("{state:?} {message:?}");
    assert!(
        !printed.contains("424242") && !printed.contains("171717"),
        "{printed}"
    );
    assert!(printed.contains("redacted"), "{printed}");
}

#[test]
fn rosters_are_checked() {
    assert_eq!(
        Roster::new(1, PartyIndex(0), [PartyIndex(0)]),
        Err(RosterError::PartyCount(1))
    );
    assert_eq!(
        Roster::new(MAX_PARTIES + 1, PartyIndex(0), [PartyIndex(0)]),
        Err(RosterError::PartyCount(MAX_PARTIES + 1))
    );
    assert_eq!(
        Roster::new(3, PartyIndex(3), [PartyIndex(0)]),
        Err(RosterError::NotAParty(PartyIndex(3)))
    );
    assert_eq!(
        Roster::new(3, PartyIndex(0), []),
        Err(RosterError::NoRecipient)
    );
    let roster = Roster::new(3, PartyIndex(1), [PartyIndex(2), PartyIndex(2)]).expect("ok");
    assert_eq!(roster.recipients().count(), 1);
}

/// Pearson's chi-square statistic of `counts` against a uniform spread.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn any_n_minus_1_parties_see_uniform_shares_whatever_the_secret() {
    // The coalition of parties 1..n sees n-1 of party 0's n shares. Each of
    // them, and their sum (secret minus the share party 0 kept), must be
    // uniform for any secret: bucket them by their top 4 bits over many
    // runs, for two very different secrets. With 15 degrees of freedom, the
    // chi-square statistic is above 37.7 with probability 0.001; the seed is
    // fixed, so the test is deterministic.
    const RUNS: usize = 20_000;
    for n in [2, 3, 5] {
        for secret in [0u64, (1 << 63) + 12_345] {
            let mut rng = ChaCha20Rng::seed_from_u64(n as u64 ^ secret);
            let mut per_share = vec![vec![0u64; 16]; n - 1];
            let mut of_sum = vec![0u64; 16];
            for _ in 0..RUNS {
                let roster = Roster::new(n, PartyIndex(0), [PartyIndex(0)]).expect("roster");
                let Step {
                    next: Progress::Continue(_),
                    send: messages,
                } = SecureSum::start(roster, &[secret], &mut rng)
                else {
                    panic!("party 0 waits for the others");
                };
                let mut seen = 0u64;
                for Addressed { to, message } in messages {
                    let SumMessage::InputShares(shares) = message else {
                        panic!("the first round sends input shares");
                    };
                    per_share[to.0 - 1][(shares[0] >> 60) as usize] += 1;
                    seen = seen.wrapping_add(shares[0]);
                }
                of_sum[(seen >> 60) as usize] += 1;
            }
            for (k, counts) in per_share.iter().chain([&of_sum]).enumerate() {
                let statistic = chi_square(counts);
                assert!(
                    statistic < 37.7,
                    "n = {n}, secret {secret}, view {k}: chi-square {statistic:.1}"
                );
            }
        }
    }
}
