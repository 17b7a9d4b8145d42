//! The Beaver machines in memory, any n, against plain arithmetic; hostile
//! messages; and what each party and the dealer see.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;

mod hostile;
mod inner;
mod vertical;
mod views;
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
