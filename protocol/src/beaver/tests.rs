//! The Beaver machines in memory, any n, against plain arithmetic; hostile
//! messages; and what each party and the dealer see.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::sharing::{Addressed, PartyIndex, Ring, Roster, SumOutput, reconstruct, split};
use crate::{Error, JobId, Progress, Step};

pub(super) const JOB: JobId = JobId([0x42; 16]);

pub(super) fn roster(n: usize, me: usize, recipients: &[usize]) -> Roster {
    Roster::new(n, PartyIndex(me), recipients.iter().map(|&r| PartyIndex(r))).expect("roster")
}

/// Every party's triples for `count` products, through the dealer's
/// messages.
pub(super) fn dealt<R: MulRing>(
    n: usize,
    count: usize,
    rng: &mut ChaCha20Rng,
) -> Vec<TripleShares<R>> {
    Dealer::deal::<R, _>(JOB, n, count, rng)
        .expect("deal")
        .into_iter()
        .map(|Addressed { to, message }| {
            ExpectTriples::new(&roster(n, to.0, &[0]), JOB, count)
                .expect("count")
                .handle(message)
                .expect("the dealer's message")
        })
        .collect()
}

/// Delivers every message in flight, in a random order, until none is
/// left; returns each party's output.
pub(super) fn deliver<S, O, R: Ring>(
    mut states: Vec<Option<S>>,
    mut in_flight: Vec<(PartyIndex, Addressed<BeaverMessage<R>>)>,
    handle: impl Fn(
        S,
        PartyIndex,
        BeaverMessage<R>,
    ) -> Result<Step<S, O, Addressed<BeaverMessage<R>>>, Error>,
    rng: &mut ChaCha20Rng,
) -> Vec<O> {
    let mut outputs: Vec<Option<O>> = states.iter().map(|_| None).collect();
    while !in_flight.is_empty() {
        in_flight.shuffle(rng);
        let (from, Addressed { to, message }) = in_flight.pop().expect("a message");
        assert!(to.0 < states.len(), "a message for {to}, outside the job");
        let state = states[to.0].take().expect("a running party");
        let Step { next, send } = handle(state, from, message).expect("an honest run");
        in_flight.extend(send.into_iter().map(|m| (to, m)));
        match next {
            Progress::Continue(state) => states[to.0] = Some(state),
            Progress::Done(output) => outputs[to.0] = Some(output),
        }
    }
    outputs
        .into_iter()
        .map(|o| o.expect("every party finished"))
        .collect()
}

/// Shares of `x` and `y` among n parties, multiplied: each party's shares
/// of the products.
fn multiply<R: MulRing>(x: &[R], y: &[R], n: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<R>> {
    let transpose = |v: &[R], rng: &mut ChaCha20Rng| -> Vec<Vec<R>> {
        let per_value: Vec<Vec<R>> = v.iter().map(|&s| split(s, n, rng)).collect();
        (0..n)
            .map(|i| per_value.iter().map(|s| s[i]).collect())
            .collect()
    };
    let (xs, ys) = (transpose(x, rng), transpose(y, rng));
    let mut states = Vec::new();
    let mut in_flight = Vec::new();
    for (i, triples) in dealt::<R>(n, x.len(), rng).into_iter().enumerate() {
        let step = Multiply::start(roster(n, i, &[0]), &xs[i], &ys[i], triples).expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("nobody multiplies alone")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (PartyIndex(i), m)));
    }
    deliver(states, in_flight, ExpectMasked::handle, rng)
        .into_iter()
        .map(|p: ProductShares<R>| p.into_shares().to_vec())
        .collect()
}

fn reconstructed<R: Ring>(shares: &[Vec<R>]) -> Vec<R> {
    (0..shares[0].len())
        .map(|k| reconstruct(&shares.iter().map(|s| s[k]).collect::<Vec<_>>()))
        .collect()
}

#[test]
fn products_of_shared_vectors_are_the_plain_products_for_two_three_and_five_parties() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for n in [2, 3, 5] {
        // Signed values whose products fit: the ring's product is the
        // integer product.
        let plain: Vec<(i64, i64)> = (0..40)
            .map(|_| {
                (
                    rng.gen_range(-1_000_000_000..1_000_000_000),
                    rng.gen_range(-3_000_000..3_000_000),
                )
            })
            .chain([(0, 0), (i64::from(i32::MAX), i64::from(i32::MIN)), (-1, -1)])
            .collect();
        let x: Vec<u128> = plain.iter().map(|&(x, _)| x as i128 as u128).collect();
        let y: Vec<u128> = plain.iter().map(|&(_, y)| y as i128 as u128).collect();
        let z = reconstructed(&multiply(&x, &y, n, &mut rng));
        let expected: Vec<i128> = plain
            .iter()
            .map(|&(x, y)| i128::from(x) * i128::from(y))
            .collect();
        assert_eq!(
            z.iter().map(|z| z.to_signed()).collect::<Vec<_>>(),
            expected,
            "n = {n}"
        );
        // In Z_2^64, products wrap exactly as the ring says.
        let x: Vec<u64> = (0..20)
            .map(|_| rng.r#gen())
            .chain([u64::MAX, 1 << 63])
            .collect();
        let y: Vec<u64> = (0..20).map(|_| rng.r#gen()).chain([u64::MAX, 2]).collect();
        let z = reconstructed(&multiply(&x, &y, n, &mut rng));
        let wrapped: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
        assert_eq!(z, wrapped, "n = {n}");
    }
}

#[test]
fn an_empty_batch_completes_with_no_products() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let z = multiply::<u64>(&[], &[], 3, &mut rng);
    assert!(z.iter().all(Vec::is_empty));
}

#[test]
fn the_dealer_deals_triples_that_multiply_and_sends_about_32n_bytes_plus_one_element_each() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for n in [2, 3, 5] {
        let count = 500;
        let messages = Dealer::deal::<u64, _>(JOB, n, count, &mut rng).expect("deal");
        let bytes: usize = messages.iter().map(|m| m.message.encode().len()).sum();
        // A seed is 32 bytes; a uniform u64 takes 9 or 10 bytes as a
        // postcard varint (8 bytes would be a fixed-width encoding).
        assert!(bytes >= 32 * n + 8 * count, "n = {n}: {bytes}");
        assert!(bytes <= 32 * n + 10 * count + 4 * n, "n = {n}: {bytes}");
        let triples: Vec<TripleShares<u64>> = messages
            .into_iter()
            .map(|m| {
                ExpectTriples::new(&roster(n, m.to.0, &[0]), JOB, count)
                    .expect("count")
                    .handle(m.message)
                    .expect("dealt")
            })
            .collect();
        let sum = |f: fn(&TripleShares<u64>) -> &[u64]| {
            reconstructed(&triples.iter().map(|t| f(t).to_vec()).collect::<Vec<_>>())
        };
        let (a, b, c) = (sum(|t| &t.a), sum(|t| &t.b), sum(|t| &t.c));
        for k in 0..count {
            assert_eq!(c[k], a[k].wrapping_mul(b[k]), "n = {n}, triple {k}");
        }
        // The triples are random, not a fixed pattern.
        assert!(a.iter().any(|&v| v != a[0]) && b.iter().any(|&v| v != b[0]));
    }
}

#[test]
fn input_shared_by_seed_reconstructs_and_multiplies() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for n in [2, 3] {
        let values: Vec<u128> = (0..30).map(|_| rng.r#gen()).collect();
        let owner = n - 1;
        let shared = share_by_seed(&roster(n, owner, &[0]), JOB, b"column x", &values, &mut rng)
            .expect("share");
        assert_eq!(shared.send.len(), n - 1);
        let mut shares = vec![Vec::new(); n];
        shares[owner] = shared.share.to_vec();
        for Addressed { to, message } in shared.send {
            assert_eq!(message.encode().len(), 33, "a tag and a 32-byte seed");
            let expect = ExpectInputSeed::new(
                &roster(n, to.0, &[0]),
                JOB,
                PartyIndex(owner),
                b"column x",
                values.len(),
            )
            .expect("expect");
            shares[to.0] = expect
                .handle(PartyIndex(owner), message)
                .expect("seed")
                .to_vec();
        }
        assert_eq!(reconstructed(&shares), values, "n = {n}");
        // The shares multiply like any others.
        let y: Vec<u128> = (0..30).map(|k| k as u128).collect();
        let z = reconstructed(&multiply(&reconstructed(&shares), &y, n, &mut rng));
        let plain: Vec<u128> = values
            .iter()
            .zip(&y)
            .map(|(a, b)| a.wrapping_mul(*b))
            .collect();
        assert_eq!(z, plain);
    }
}

/// Runs [`DotProducts`] with the inputs held whole by one party each: x by
/// party 0, y by party n − 1, zeros elsewhere (valid additive shares).
pub(super) fn dot_products<R: MulRing>(
    x: &[R],
    y: &[R],
    parts: usize,
    n: usize,
    recipients: &[usize],
    rng: &mut ChaCha20Rng,
) -> Vec<SumOutput<R>> {
    let zeros = vec![R::default(); x.len()];
    let mut states = Vec::new();
    let mut in_flight = Vec::new();
    for (i, triples) in dealt::<R>(n, x.len(), rng).into_iter().enumerate() {
        let mine_x = if i == 0 { x } else { &zeros };
        let mine_y = if i == n - 1 { y } else { &zeros };
        let step = DotProducts::start(roster(n, i, recipients), mine_x, mine_y, triples, parts)
            .expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("nobody is done at once")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (PartyIndex(i), m)));
    }
    deliver(states, in_flight, ExpectDot::handle, rng)
}

#[test]
fn dot_products_reach_the_recipients_only_in_any_delivery_order() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for n in [2, 3, 4] {
        for recipients in [vec![0], vec![n - 1], (0..n).collect()] {
            for seed in 0..4 {
                let (parts, run) = (3, 7);
                let x: Vec<u64> = (0..parts * run).map(|_| rng.gen_range(0..1000)).collect();
                let y: Vec<u64> = (0..parts * run).map(|_| rng.gen_range(0..1000)).collect();
                let plain: Vec<u64> = x
                    .chunks(run)
                    .zip(y.chunks(run))
                    .map(|(a, b)| a.iter().zip(b).map(|(p, q)| p * q).sum())
                    .collect();
                let mut order = ChaCha20Rng::seed_from_u64(seed);
                for (i, out) in dot_products(&x, &y, parts, n, &recipients, &mut order)
                    .into_iter()
                    .enumerate()
                {
                    match out {
                        SumOutput::Totals(t) => {
                            assert!(recipients.contains(&i));
                            assert_eq!(t, plain, "n = {n}, party {i}");
                        }
                        SumOutput::NotARecipient => assert!(!recipients.contains(&i)),
                    }
                }
            }
        }
    }
}

#[test]
fn sums_of_runs_are_checked_and_empty_runs_sum_to_zero() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let out = dot_products::<u64>(&[], &[], 4, 2, &[0], &mut rng);
    assert_eq!(out[0], SumOutput::Totals(vec![0; 4]));
    let triples = dealt::<u64>(2, 5, &mut rng).remove(0);
    assert!(matches!(
        DotProducts::start(roster(2, 0, &[0]), &[1; 5], &[1; 5], triples, 2),
        Err(BeaverError::Length { .. })
    ));
}

#[test]
fn triples_must_fit_the_party_and_the_batch() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut triples = dealt::<u64>(3, 4, &mut rng);
    let err = Multiply::start(roster(3, 0, &[0]), &[1; 4], &[1; 4], triples.remove(1))
        .expect_err("party 1's");
    assert!(
        matches!(err, BeaverError::TriplesForAnotherParty { .. }),
        "{err}"
    );
    let err = Multiply::start(roster(2, 0, &[0]), &[1; 4], &[1; 4], triples.remove(0))
        .expect_err("3 parties'");
    assert!(
        matches!(err, BeaverError::TriplesForAnotherParty { .. }),
        "{err}"
    );
    let err = Multiply::start(roster(3, 2, &[0]), &[1; 3], &[1; 3], triples.remove(0))
        .expect_err("4 triples");
    assert!(
        matches!(
            err,
            BeaverError::Length {
                expected: 3,
                found: 4,
                ..
            }
        ),
        "{err}"
    );
    let more = dealt::<u64>(3, 4, &mut rng).remove(0);
    let err = Multiply::start(roster(3, 0, &[0]), &[1; 4], &[1; 3], more).expect_err("y short");
    assert!(matches!(err, BeaverError::Length { .. }), "{err}");
    assert!(matches!(
        Dealer::deal::<u64, _>(JOB, 1, 4, &mut rng),
        Err(BeaverError::PartyCount(1))
    ));
    assert!(matches!(
        Dealer::deal::<u64, _>(JOB, 2, MAX_PRODUCTS + 1, &mut rng),
        Err(BeaverError::TooManyProducts(_))
    ));
}

fn masked_state(n: usize, me: usize, count: usize) -> ExpectMasked<u64> {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let triples = dealt::<u64>(n, count, &mut rng).remove(me);
    let values = vec![5u64; count];
    match Multiply::start(roster(n, me, &[0]), &values, &values, triples)
        .expect("start")
        .next
    {
        Progress::Continue(state) => state,
        Progress::Done(_) => unreachable!(),
    }
}

fn masked(d: usize, e: usize) -> BeaverMessage<u64> {
    BeaverMessage::Masked {
        d: vec![1; d],
        e: vec![2; e],
    }
}

#[test]
fn hostile_masked_values_abort() {
    let wrong_party = |state: ExpectMasked<u64>, from: usize, message| {
        let err = state
            .handle(PartyIndex(from), message)
            .expect_err("refused");
        assert_eq!(err.abort_code(), 8, "{err}");
        err
    };
    assert!(
        wrong_party(masked_state(3, 0, 4), 3, masked(4, 4))
            .to_string()
            .contains("not a party")
    );
    assert!(
        wrong_party(masked_state(3, 0, 4), 0, masked(4, 4))
            .to_string()
            .contains("itself")
    );
    for (d, e) in [(3, 4), (4, 5), (0, 0)] {
        let err = masked_state(3, 0, 4)
            .handle(PartyIndex(1), masked(d, e))
            .expect_err("length");
        let found = if d != 4 { d } else { e };
        assert_eq!(
            err,
            Error::WrongShareCount {
                from: 1,
                expected: 4,
                found
            }
        );
    }
    let err = masked_state(3, 0, 4)
        .handle(PartyIndex(1), BeaverMessage::Opening(vec![1; 4]))
        .expect_err("an opening before any product");
    assert!(matches!(
        err,
        Error::UnexpectedMessage {
            expected: "Masked",
            received: "Opening"
        }
    ));
    let Progress::Continue(state) = masked_state(3, 0, 4)
        .handle(PartyIndex(1), masked(4, 4))
        .expect("first")
        .next
    else {
        panic!("party 2 is still to come");
    };
    assert!(
        wrong_party(state, 1, masked(4, 4))
            .to_string()
            .contains("twice")
    );
}

fn dot_state(n: usize, me: usize, recipients: &[usize]) -> ExpectDot<u64> {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let triples = dealt::<u64>(n, 4, &mut rng).remove(me);
    match DotProducts::start(roster(n, me, recipients), &[1; 4], &[1; 4], triples, 2)
        .expect("start")
        .next
    {
        Progress::Continue(state) => state,
        Progress::Done(_) => unreachable!(),
    }
}

#[test]
fn hostile_openings_abort_early_or_late() {
    let opening = |k: usize| BeaverMessage::Opening(vec![7u64; k]);
    // Early: before this party's own sums.
    let err = dot_state(3, 1, &[0])
        .handle(PartyIndex(0), opening(2))
        .expect_err("not a recipient");
    assert!(err.to_string().contains("not a recipient"), "{err}");
    let err = dot_state(3, 0, &[0])
        .handle(PartyIndex(1), opening(3))
        .expect_err("length");
    assert_eq!(
        err,
        Error::WrongShareCount {
            from: 1,
            expected: 2,
            found: 3
        }
    );
    let err = dot_state(3, 0, &[0])
        .handle(PartyIndex(5), opening(2))
        .expect_err("outsider");
    assert!(err.to_string().contains("not a party"), "{err}");
    let Progress::Continue(state) = dot_state(3, 0, &[0])
        .handle(PartyIndex(1), opening(2))
        .expect("held")
        .next
    else {
        panic!("still multiplying");
    };
    let err = state.handle(PartyIndex(1), opening(2)).expect_err("twice");
    assert!(err.to_string().contains("twice"), "{err}");
    // Late: after the products, while opening.
    let mut state = dot_state(2, 0, &[0]);
    let Progress::Continue(next) = state
        .handle(PartyIndex(1), masked(4, 4))
        .expect("products")
        .next
    else {
        panic!("waiting for party 1's opening");
    };
    state = next;
    let err = state
        .handle(PartyIndex(1), masked(4, 4))
        .expect_err("masked again");
    assert!(
        matches!(
            err,
            Error::UnexpectedMessage {
                expected: "Opening",
                ..
            }
        ),
        "{err}"
    );
    let Progress::Done(SumOutput::Totals(t)) = dot_state(2, 0, &[0])
        .handle(PartyIndex(1), opening(2))
        .and_then(|s| match s.next {
            Progress::Continue(s) => s.handle(PartyIndex(1), masked(4, 4)),
            Progress::Done(_) => unreachable!(),
        })
        .expect("an early opening is used once the products are done")
        .next
    else {
        panic!("party 0 has everything");
    };
    assert_eq!(t.len(), 2);
}

#[test]
fn hostile_dealer_and_seed_messages_abort() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let mut messages = Dealer::deal::<u64, _>(JOB, 3, 4, &mut rng).expect("deal");
    let last = messages.pop().expect("the last party's").message;
    let first = messages.remove(0).message;
    let expect = |me| ExpectTriples::new(&roster(3, me, &[0]), JOB, 4).expect("count");
    let err = expect(0)
        .handle(last.clone())
        .expect_err("the last party's message to party 0");
    assert!(
        matches!(
            err,
            Error::UnexpectedMessage {
                expected: "DealerSeed",
                ..
            }
        ),
        "{err}"
    );
    let err = expect(2)
        .handle(first)
        .expect_err("a seed alone to the last party");
    assert!(
        matches!(
            err,
            Error::UnexpectedMessage {
                expected: "DealerSeedAndCorrection",
                ..
            }
        ),
        "{err}"
    );
    let DealerMessage::SeedAndCorrection {
        seed,
        mut correction,
    } = last
    else {
        panic!("the last party's kind")
    };
    correction.pop();
    let err = expect(2)
        .handle(DealerMessage::SeedAndCorrection { seed, correction })
        .expect_err("short");
    assert_eq!(
        err,
        Error::WrongDealerCount {
            expected: 4,
            found: 3
        }
    );
    assert_eq!(err.abort_code(), 10);

    let shared =
        share_by_seed(&roster(3, 2, &[0]), JOB, b"v", &[1u64, 2], &mut rng).expect("share");
    let seed = shared.send.into_iter().next().expect("a seed").message;
    let waiting =
        || ExpectInputSeed::new(&roster(3, 0, &[0]), JOB, PartyIndex(2), b"v", 2).expect("expect");
    let err = waiting()
        .handle(PartyIndex(1), seed.clone())
        .expect_err("from a non-owner");
    assert!(matches!(err, Error::WrongParty { from: 1, .. }), "{err}");
    let err = waiting()
        .handle(PartyIndex(2), masked(2, 2))
        .expect_err("kind");
    assert!(
        matches!(
            err,
            Error::UnexpectedMessage {
                expected: "InputSeed",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        ExpectInputSeed::new(&roster(3, 0, &[0]), JOB, PartyIndex(0), b"v", 2),
        Err(BeaverError::NotAnotherParty(_))
    ));
}

#[test]
fn decoding_refuses_oversized_trailing_and_non_canonical_bytes() {
    let message = masked(4, 4);
    let bytes = message.encode();
    assert_eq!(BeaverMessage::<u64>::decode(&bytes, 4), Ok(message));
    let err = BeaverMessage::<u64>::decode(&masked(400, 400).encode(), 4).expect_err("oversized");
    assert!(err.to_string().contains("limit"), "{err}");
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(BeaverMessage::<u64>::decode(&trailing, 4).is_err());
    // The varint 1 written in two bytes (0x81 0x00) is not canonical.
    let mut overlong = bytes.clone();
    let at = bytes.iter().position(|&b| b == 1).expect("a 1 in d");
    overlong.splice(at..=at, [0x81, 0x00]);
    let err = BeaverMessage::<u64>::decode(&overlong, 4).expect_err("overlong");
    assert!(err.to_string().contains("canonical"), "{err}");
    assert!(DealerMessage::<u64>::decode(&[9, 9, 9], 4).is_err());
}

#[test]
fn secrets_never_print() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let triples = dealt::<u64>(2, 2, &mut rng);
    let secret = 424_242u64;
    let printed = format!(
        "{:?} {:?} {:?} {:?}",
        triples[0],
        BeaverMessage::Opening(vec![secret]),
        masked_state(2, 0, 2),
        Dealer::deal::<u64, _>(JOB, 2, 1, &mut rng).expect("deal"),
    );
    assert!(!printed.contains("424242"), "{printed}");
    for t in &triples {
        for v in t.a.iter().chain(t.b.iter()).chain(t.c.iter()) {
            assert!(!printed.contains(&v.to_string()), "{printed}");
        }
    }
    assert!(printed.contains("redacted"));
}

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
