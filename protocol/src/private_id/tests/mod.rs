//! Both parties in memory, against a plain union and intersection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::{Error, IdSet, JobId, Progress};

mod hiding;
mod hostile;

/// What each party received, after any tampering.
#[derive(Debug, Default)]
struct Transcript {
    to_requester: Vec<Message>,
    to_responder: Vec<Message>,
}

/// The result of one run: both outputs and what each party received.
struct Outcome {
    requester: Matching,
    responder: Matching,
    transcript: Transcript,
}

fn session(chunk_points: usize) -> Session {
    Session {
        job_id: JobId([7; 16]),
        max_peer_set_size: 1 << 20,
        min_peer_set_size: 0,
        chunk_points,
    }
}

/// Runs the protocol with the requester's rng seeded by `seeds.0` and the
/// responder's by `seeds.1`; every message passes through `deliver`, which
/// may change, drop, hold back or repeat it.
fn run_with(
    x: &IdSet,
    y: &IdSet,
    chunk: usize,
    seeds: (u64, u64),
    mut deliver: impl FnMut(Message) -> Vec<Message>,
) -> Result<Outcome, Error> {
    let mut requester_rng = ChaCha20Rng::seed_from_u64(seeds.0);
    let mut responder_rng = ChaCha20Rng::seed_from_u64(seeds.1);
    let (requester, to_responder) = Requester::start(session(chunk), x, &mut requester_rng);
    let (responder, to_requester) = Responder::start(session(chunk), y, &mut responder_rng);
    let mut to_responder: VecDeque<_> = to_responder.into();
    let mut to_requester: VecDeque<_> = to_requester.into();
    let mut requester = Progress::Continue(RequesterState::from(requester));
    let mut responder = Progress::Continue(ResponderState::from(responder));
    let mut transcript = Transcript::default();
    let finished = |received: &Message| Error::UnexpectedMessage {
        expected: "nothing: the run is over",
        received: received.kind(),
    };
    loop {
        if let Some(message) = to_responder.pop_front() {
            for message in deliver(message) {
                transcript.to_responder.push(message.clone());
                let Progress::Continue(state) = responder else {
                    return Err(finished(&message));
                };
                let step = state.handle(message, &mut responder_rng)?;
                to_requester.extend(step.send);
                responder = step.next;
            }
        } else if let Some(message) = to_requester.pop_front() {
            for message in deliver(message) {
                transcript.to_requester.push(message.clone());
                let Progress::Continue(state) = requester else {
                    return Err(finished(&message));
                };
                let step = state.handle(message, &mut requester_rng)?;
                to_responder.extend(step.send);
                requester = step.next;
            }
        } else {
            break;
        }
    }
    match (requester, responder) {
        (Progress::Done(requester), Progress::Done(responder)) => Ok(Outcome {
            requester,
            responder,
            transcript,
        }),
        (r, s) => Err(Error::UnexpectedMessage {
            expected: "more messages: the run stalled",
            received: stalled_at(&r, &s),
        }),
    }
}

fn stalled_at(
    r: &Progress<RequesterState, Matching>,
    s: &Progress<ResponderState, Matching>,
) -> &'static str {
    match (r, s) {
        (Progress::Continue(_), _) => "nothing (requester waiting)",
        _ => "nothing (responder waiting)",
    }
}

fn run(x: &IdSet, y: &IdSet, chunk: usize, seed: u64) -> Outcome {
    run_with(x, y, chunk, (seed, seed ^ 0x5eed), |m| vec![m]).expect("private-id run")
}

fn ids(range: std::ops::Range<u32>, prefix: &str) -> IdSet {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Each record's row, keyed by the record's id.
fn rows_by_id(set: &IdSet, matching: &Matching) -> BTreeMap<Vec<u8>, usize> {
    set.iter()
        .map(<[u8]>::to_vec)
        .zip(matching.rows().iter().copied())
        .collect()
}

/// Checks both outputs against the plain union and intersection of the ids.
fn check_against_plain(x: &IdSet, y: &IdSet, chunk: usize, seed: u64) {
    let out = run(x, y, chunk, seed);
    let xs: BTreeSet<&[u8]> = x.iter().collect();
    let ys: BTreeSet<&[u8]> = y.iter().collect();
    let union_size = xs.union(&ys).count();
    let common: BTreeSet<&[u8]> = xs.intersection(&ys).copied().collect();

    assert_eq!(out.requester.union(), out.responder.union());
    assert_eq!(out.requester.union().len(), union_size);
    assert!(out.requester.union().windows(2).all(|w| w[0] < w[1]));
    assert_eq!(out.requester.peer_set_size(), y.len() as u64);
    assert_eq!(out.responder.peer_set_size(), x.len() as u64);
    assert_eq!(out.requester.intersection_size(), common.len() as u64);
    assert_eq!(out.responder.intersection_size(), common.len() as u64);

    let x_rows = rows_by_id(x, &out.requester);
    let y_rows = rows_by_id(y, &out.responder);
    for rows in [&x_rows, &y_rows] {
        let distinct: BTreeSet<usize> = rows.values().copied().collect();
        assert_eq!(distinct.len(), rows.len(), "two records on one row");
        assert!(distinct.iter().all(|&row| row < union_size));
    }
    // A row holds a record of both parties exactly when its id is common.
    let y_row_set: BTreeSet<usize> = y_rows.values().copied().collect();
    for (id, row) in &x_rows {
        let shared = y_row_set.contains(row);
        assert_eq!(shared, common.contains(id.as_slice()), "id {id:?}");
        if shared {
            assert_eq!(y_rows.get(id), Some(row));
        }
    }
    let x_row_set: BTreeSet<usize> = x_rows.values().copied().collect();
    assert_eq!(x_row_set.union(&y_row_set).count(), union_size);
}

#[test]
fn edge_cases_match_plain_union() {
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &[]),
        (&["a"], &[]),
        (&[], &["a"]),
        (&["a", "b", "c"], &["d", "e"]),
        (&["a", "b", "c", "d"], &["d", "c", "b", "a"]),
        (&["a", "a", "b", "b", "x"], &["b", "b", "b", "x", "y"]),
        (&["Zoë", "Łódź", "東京", "😀"], &["東京", "😀", "Zoe"]),
    ];
    for (i, (x, y)) in cases.iter().enumerate() {
        let x: IdSet = x.iter().collect();
        let y: IdSet = y.iter().collect();
        for chunk in [1, 2, MAX_CHUNK_POINTS] {
            check_against_plain(&x, &y, chunk, i as u64);
        }
    }
}

#[test]
fn sizes_differing_by_far_and_many_chunks() {
    let small = ids(0..3, "c");
    let large = ids(0..3000, "c");
    check_against_plain(&small, &large, 512, 1);
    check_against_plain(&large, &small, 512, 2);
    let a = ids(0..5000, "c");
    let b = ids(4000..9000, "c");
    check_against_plain(&a, &b, MAX_CHUNK_POINTS, 3);
}

#[test]
fn all_common_and_disjoint() {
    let a = ids(0..50, "k");
    check_against_plain(&a, &a.clone(), 7, 4);
    check_against_plain(&a, &ids(0..50, "other"), 7, 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn matches_plain_union(
        x in proptest::collection::vec("[a-f]{1,2}|\\PC{0,4}", 0..30),
        y in proptest::collection::vec("[a-f]{1,2}|\\PC{0,4}", 0..30),
        chunk in 1usize..6,
        seed in any::<u64>(),
    ) {
        let x: IdSet = x.iter().collect();
        let y: IdSet = y.iter().collect();
        check_against_plain(&x, &y, chunk, seed);
    }
}

/// The aligned columns give the plain join's answer: Σ over common ids of
/// the product of both parties' values, and each party's own total.
#[test]
fn aligned_columns_give_the_plain_join() {
    let x = ids(0..40, "p");
    let y = ids(25..70, "p");
    let value = |id: &[u8], salt: u64| -> u64 {
        id.iter().fold(salt, |acc, &b| {
            acc.wrapping_mul(31).wrapping_add(u64::from(b))
        }) % 1000
    };
    let x_values: Vec<u64> = x.iter().map(|id| value(id, 1)).collect();
    let y_values: Vec<u64> = y.iter().map(|id| value(id, 2)).collect();
    let out = run(&x, &y, 16, 9);
    let x_col = out
        .requester
        .align(&x_values)
        .expect("one value per record");
    let y_col = out
        .responder
        .align(&y_values)
        .expect("one value per record");
    assert_eq!(x_col.values().len(), out.requester.union().len());

    let mut joined = 0u64;
    for row in 0..x_col.values().len() {
        let both = x_col.present()[row] && y_col.present()[row];
        joined += u64::from(both) * x_col.values()[row] * y_col.values()[row];
        for col in [&x_col, &y_col] {
            if !col.present()[row] {
                assert_eq!(col.values()[row], 0);
            }
        }
    }
    let y_by_id: BTreeMap<&[u8], u64> = y.iter().zip(y_values.iter().copied()).collect();
    let plain: u64 = x
        .iter()
        .zip(&x_values)
        .filter_map(|(id, &xv)| y_by_id.get(id).map(|&yv| xv * yv))
        .sum();
    assert_eq!(joined, plain);
    assert_eq!(
        x_col.values().iter().sum::<u64>(),
        x_values.iter().sum::<u64>()
    );
    assert_eq!(x_col.present().iter().filter(|&&p| p).count(), x.len());
    assert_eq!(
        out.requester
            .align(&x_values[1..])
            .expect_err("short column"),
        ColumnLengthMismatch {
            records: 40,
            values: 39
        }
    );
}

#[test]
fn debug_output_is_redacted() {
    let x: IdSet = ["secret-customer"].into_iter().collect();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (state, _) = Requester::start(session(4), &x, &mut rng);
    let (responder, _) = Responder::start(session(4), &x, &mut rng);
    let out = run(&x, &x, 4, 1);
    let column = out.requester.align(&[123_456_789u64]).expect("aligned");
    for printed in [
        format!("{state:?}"),
        format!("{responder:?}"),
        format!("{:?}", out.requester),
        format!("{column:?}"),
    ] {
        assert!(printed.contains("redacted"), "{printed}");
        assert!(!printed.contains("secret") && !printed.contains("123456789"));
    }
}

#[test]
fn every_message_round_trips_and_wire_bytes_are_pinned() {
    let out = run(&ids(0..5, "w"), &ids(3..9, "w"), 2, 3);
    let all = out
        .transcript
        .to_requester
        .iter()
        .chain(&out.transcript.to_responder);
    let mut kinds = BTreeSet::new();
    for message in all {
        assert_eq!(Message::decode(&message.encode()).as_ref(), Ok(message));
        kinds.insert(message.kind());
    }
    assert_eq!(kinds.len(), 11, "{kinds:?}");
    assert_eq!(
        Message::RequesterHello { set_size: 300 }.encode(),
        [0x00, 0xac, 0x02]
    );
    let differences = Message::Differences {
        requester_only: 1,
        responder_only: 2,
    };
    assert_eq!(differences.encode(), [0x07, 0x01, 0x02]);
}

/// Cost at scale: time and bytes for 2^16 ids a side, half common. Run with
/// `cargo test -p unseen-protocol --release -- --ignored --nocapture
/// private_id_cost`.
#[test]
#[ignore = "timing run; use --release"]
fn private_id_cost() {
    let n = 1u32 << 16;
    let x = ids(0..n, "cust-");
    let y = ids(n / 2..n + n / 2, "cust-");
    let started = std::time::Instant::now();
    let out = run(&x, &y, MAX_CHUNK_POINTS, 1);
    let elapsed = started.elapsed();
    assert_eq!(out.requester.union().len(), (n + n / 2) as usize);
    let bytes = |messages: &[Message]| messages.iter().map(|m| m.encode().len()).sum::<usize>();
    let (to_responder, to_requester) = (
        bytes(&out.transcript.to_responder),
        bytes(&out.transcript.to_requester),
    );
    println!(
        "private-id |X| = |Y| = {n}, |X∩Y| = {}: {elapsed:?} for both parties on one thread pool; \
         requester sent {to_responder} B ({:.1} B/id), responder sent {to_requester} B ({:.1} B/id)",
        n / 2,
        to_responder as f64 / f64::from(n),
        to_requester as f64 / f64::from(n),
    );
}
