//! Both parties in memory, against a plain set intersection.

use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::{Error, IdSet, InvalidPointReason, JobId, Progress};

/// Runs a whole protocol, passing every message through `tamper` on its way.
fn hello(set_size: u64) -> Message {
    Message::RequesterHello {
        set_size,
        key_commitment: None,
    }
}

fn run_with(
    mode: Mode,
    requester_ids: &IdSet,
    responder_ids: &IdSet,
    chunk_points: usize,
    seed: u64,
    tamper: impl FnMut(&mut Message),
) -> Result<(PsiOutput, ResponderOutput), Error> {
    run_padded(
        mode,
        requester_ids,
        responder_ids,
        chunk_points,
        seed,
        (Padding::None, Padding::None),
        tamper,
    )
}

fn run_padded(
    mode: Mode,
    requester_ids: &IdSet,
    responder_ids: &IdSet,
    chunk_points: usize,
    seed: u64,
    (requester_padding, responder_padding): (Padding, Padding),
    mut tamper: impl FnMut(&mut Message),
) -> Result<(PsiOutput, ResponderOutput), Error> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let job_id = JobId::random(&mut rng);
    let session = Session {
        job_id,
        mode,
        max_peer_set_size: 1 << 20,
        min_peer_set_size: 0,
        chunk_points,
        padding: requester_padding,
    };
    let (requester, to_responder) = Requester::start(session.clone(), requester_ids, &mut rng);
    let session = Session {
        padding: responder_padding,
        ..session
    };
    let (responder, to_requester) = Responder::start(session, responder_ids, &mut rng);
    let mut to_responder: VecDeque<_> = to_responder.into();
    let mut to_requester: VecDeque<_> = to_requester.into();
    let mut requester = Progress::Continue(RequesterState::from(requester));
    let mut responder = Progress::Continue(ResponderState::from(responder));
    loop {
        if let Some(mut message) = to_responder.pop_front() {
            tamper(&mut message);
            let Progress::Continue(state) = responder else {
                panic!("responder got {message:?} after finishing");
            };
            let step = state.handle(message, &mut rng)?;
            to_requester.extend(step.send);
            responder = step.next;
        } else if let Some(mut message) = to_requester.pop_front() {
            tamper(&mut message);
            let Progress::Continue(state) = requester else {
                panic!("requester got {message:?} after finishing");
            };
            let step = state.handle(message)?;
            to_responder.extend(step.send);
            requester = step.next;
        } else {
            break;
        }
    }
    match (requester, responder) {
        (Progress::Done(r), Progress::Done(s)) => Ok((r, s)),
        (r, s) => panic!("protocol stalled: requester {r:?}, responder {s:?}"),
    }
}

fn run(
    mode: Mode,
    requester: &[&str],
    responder: &[&str],
) -> Result<(PsiOutput, ResponderOutput), Error> {
    let a: IdSet = requester.iter().collect();
    let b: IdSet = responder.iter().collect();
    run_with(mode, &a, &b, 3, 42, |_| {})
}

/// The independent answer: positions in `a` of ids also in `b`.
fn plain_intersection(a: &IdSet, b: &IdSet) -> Vec<usize> {
    let b: BTreeSet<&[u8]> = b.iter().collect();
    a.iter()
        .enumerate()
        .filter(|(_, id)| b.contains(id))
        .map(|(i, _)| i)
        .collect()
}

fn check_against_plain(a: &IdSet, b: &IdSet, chunk: usize, seed: u64) {
    let expected = plain_intersection(a, b);
    let (out, resp) = run_with(Mode::Membership, a, b, chunk, seed, |_| {}).expect("psi");
    assert_eq!(out.result, PsiResult::Members(expected.clone()));
    assert_eq!(out.peer_set_size, b.len() as u64);
    assert_eq!(resp.peer_set_size, a.len() as u64);
    let (out, resp) = run_with(Mode::Cardinality, a, b, chunk, seed, |_| {}).expect("psi-ca");
    assert_eq!(out.result, PsiResult::Cardinality(expected.len() as u64));
    assert_eq!(out.peer_set_size, b.len() as u64);
    assert_eq!(resp.peer_set_size, a.len() as u64);
}

#[test]
fn edge_cases_match_plain_intersection() {
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &[]),
        (&["a"], &[]),
        (&[], &["a"]),
        (&["a", "b", "c"], &["d", "e"]),
        (&["a", "b", "c", "d"], &["a", "b", "c", "d"]),
        (&["a", "a", "b", "b", "x"], &["b", "b", "b", "x", "y"]),
        (&["Zoë", "Łódź", "東京", "😀"], &["東京", "😀", "Zoe"]),
    ];
    for (i, (a, b)) in cases.iter().enumerate() {
        let a: IdSet = a.iter().collect();
        let b: IdSet = b.iter().collect();
        check_against_plain(&a, &b, 2, i as u64);
    }
}

#[test]
fn duplicates_do_not_change_the_answer() {
    let (out, resp) = run(Mode::Cardinality, &["x", "x", "x", "y"], &["x", "x"]).expect("run");
    assert_eq!(out.result, PsiResult::Cardinality(1));
    assert_eq!(out.peer_set_size, 1);
    assert_eq!(resp.peer_set_size, 2);
}

#[test]
fn many_chunks_and_default_chunk_size_agree() {
    let a: IdSet = (0..5000).map(|i| format!("cust-{i}")).collect();
    let b: IdSet = (2500..9000).map(|i| format!("cust-{i}")).collect();
    check_against_plain(&a, &b, MAX_CHUNK_POINTS, 1);
    check_against_plain(&a, &b, 97, 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn matches_plain_intersection(
        a in proptest::collection::vec("[a-f]{1,2}|\\PC{0,4}", 0..40),
        b in proptest::collection::vec("[a-f]{1,2}|\\PC{0,4}", 0..40),
        chunk in 1usize..8,
        seed in any::<u64>(),
    ) {
        let a: IdSet = a.iter().collect();
        let b: IdSet = b.iter().collect();
        check_against_plain(&a, &b, chunk, seed);
    }
}

#[test]
fn responder_order_hides_positions_in_cardinality_mode() {
    // With the same inputs, two seeds give the double-blinded answers in
    // different orders: the responder shuffles them before sending.
    let a: IdSet = (0..64).map(|i| i.to_string()).collect();
    let b = a.clone();
    let mut first_seen = Vec::new();
    for seed in [1, 2] {
        let mut order = Vec::new();
        run_with(Mode::Cardinality, &a, &b, 64, seed, |m| {
            if let Message::DoubleBlinded(points) = m {
                order.push(points.clone());
            }
        })
        .expect("run");
        first_seen.push(order);
    }
    assert_ne!(first_seen[0], first_seen[1]);
}

#[test]
fn identity_point_aborts() {
    let a: IdSet = ["a", "b"].into_iter().collect();
    let identity = curve25519_dalek::ristretto::RistrettoPoint::default()
        .compress()
        .to_bytes();
    let err = run_with(Mode::Membership, &a, &a, 4, 3, |m| {
        if let Message::ResponderBlinded(points) = m {
            points[1] = identity;
        }
    })
    .expect_err("identity must abort");
    assert_eq!(
        err,
        Error::InvalidPoint {
            index: 1,
            reason: InvalidPointReason::Identity
        }
    );
}

#[test]
fn non_canonical_point_aborts_on_either_side() {
    let a: IdSet = ["a", "b"].into_iter().collect();
    for victim in ["RequesterBlinded", "DoubleBlinded"] {
        let err = run_with(Mode::Membership, &a, &a, 4, 3, |m| {
            if m.kind() == victim
                && let Message::RequesterBlinded(p) | Message::DoubleBlinded(p) = m
            {
                p[0] = [0xff; 32];
            }
        })
        .expect_err("non-canonical must abort");
        assert!(matches!(
            err,
            Error::InvalidPoint {
                index: 0,
                reason: InvalidPointReason::NonCanonical
            }
        ));
    }
}

#[test]
fn wrong_message_names_expected_and_received() {
    let a: IdSet = ["a"].into_iter().collect();
    let err = run_with(Mode::Membership, &a, &a, 4, 3, |m| {
        if let Message::ResponderHello { .. } = m {
            *m = Message::RequesterHello {
                set_size: 1,
                key_commitment: None,
            };
        }
    })
    .expect_err("must abort");
    assert_eq!(
        err,
        Error::UnexpectedMessage {
            expected: "ResponderHello",
            received: "RequesterHello"
        }
    );
}

#[test]
fn more_elements_than_announced_abort() {
    let a: IdSet = ["a", "b"].into_iter().collect();
    let err = run_with(Mode::Cardinality, &a, &a, 4, 3, |m| {
        if let Message::RequesterHello { set_size, .. } = m {
            *set_size = 1;
        }
    })
    .expect_err("must abort");
    assert_eq!(err, Error::BadChunk("more elements than announced"));
}

#[test]
fn oversized_announcement_aborts_before_elements() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let session = Session::new(JobId([1; 16]), Mode::Cardinality, 10);
    let ids: IdSet = ["a"].into_iter().collect();
    let (state, _) = Responder::start(session, &ids, &mut rng);
    let err = state.handle(hello(11), &mut rng).expect_err("over limit");
    assert_eq!(
        err,
        Error::SetTooLarge {
            announced: 11,
            limit: 10
        }
    );
}

#[test]
fn announcement_below_the_agreed_size_aborts() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut session = Session::new(JobId([1; 16]), Mode::Cardinality, 100);
    session.min_peer_set_size = 50;
    let ids: IdSet = ["a"].into_iter().collect();
    let (state, _) = Responder::start(session, &ids, &mut rng);
    let err = state
        .handle(hello(3), &mut rng)
        .expect_err("below the minimum");
    assert_eq!(
        err,
        Error::SetTooSmall {
            announced: 3,
            minimum: 50
        }
    );
}

#[test]
fn empty_chunk_aborts() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let session = Session::new(JobId([1; 16]), Mode::Cardinality, 10);
    let ids: IdSet = ["a"].into_iter().collect();
    let (state, _) = Responder::start(session, &ids, &mut rng);
    let Progress::Continue(state) = state.handle(hello(2), &mut rng).expect("hello").next else {
        panic!("responder finished early");
    };
    let err = state
        .handle(Message::RequesterBlinded(vec![]), &mut rng)
        .expect_err("empty chunk");
    assert_eq!(err, Error::BadChunk("empty chunk"));
}

#[test]
fn job_id_separates_runs() {
    // The same id hashes differently in two jobs, so elements cannot be
    // replayed across jobs.
    let one = Session::new(JobId([1; 16]), Mode::Membership, 1);
    let two = Session::new(JobId([2; 16]), Mode::Membership, 1);
    assert_ne!(
        crate::group::hash_to_group(&one.tag(), b"x"),
        crate::group::hash_to_group(&two.tag(), b"x")
    );
}

#[test]
fn state_debug_output_is_redacted() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let ids: IdSet = ["secret-id"].into_iter().collect();
    let session = Session::new(JobId([1; 16]), Mode::Membership, 10);
    let (requester, _) = Requester::start(session.clone(), &ids, &mut rng);
    let (responder, _) = Responder::start(session, &ids, &mut rng);
    let printed = format!("{requester:?} {responder:?}");
    assert!(printed.contains("redacted"), "{printed}");
    assert!(!printed.contains("secret"), "{printed}");
}

#[test]
fn wire_bytes_are_pinned() {
    assert_eq!(hello(300).encode(), vec![0, 0xac, 0x02, 0]);
    assert_eq!(Message::ResponderHello { set_size: 0 }.encode(), vec![1, 0]);
    let mut chunk = vec![4, 1];
    chunk.extend([7u8; 32]);
    assert_eq!(Message::DoubleBlinded(vec![[7; 32]]).encode(), chunk);
    assert_eq!(
        Message::decode(&chunk),
        Ok(Message::DoubleBlinded(vec![[7; 32]]))
    );
}

#[test]
fn truncated_and_trailing_bytes_are_rejected() {
    let bytes = Message::RequesterBlinded(vec![[9; 32], [8; 32]]).encode();
    for cut in 0..bytes.len() {
        assert!(
            matches!(Message::decode(&bytes[..cut]), Err(Error::Undecodable(_))),
            "a message cut at {cut} bytes decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Message::decode(&longer),
        Err(Error::Undecodable(_))
    ));
    assert!(matches!(Message::decode(&[9]), Err(Error::Undecodable(_))));
}

#[test]
fn full_chunk_fits_the_encoded_limit() {
    let full = Message::RequesterBlinded(vec![[0xee; 32]; MAX_CHUNK_POINTS]);
    assert!(full.encode().len() <= Message::MAX_ENCODED_LEN);
}

#[test]
fn padding_adds_exactly_the_matching_dummies_and_hides_their_number() {
    let a: IdSet = (0..40).map(|i| format!("a{i}")).collect();
    let b: IdSet = (25..90).map(|i| format!("a{i}")).collect();
    let truth = plain_intersection(&a, &b).len() as u64;
    let (offset, total) = (6, 12);
    let mut lengths = Vec::new();
    for matching in [0, 3, offset, total] {
        let (mut responder_list, mut returned) = (0, 0);
        let (out, resp) = run_padded(
            Mode::Cardinality,
            &a,
            &b,
            7,
            matching,
            (
                Padding::Requester { offset, total },
                Padding::Responder { matching, total },
            ),
            |m| match m {
                Message::ResponderBlinded(p) => responder_list += p.len(),
                Message::DoubleBlinded(p) => returned += p.len(),
                _ => {}
            },
        )
        .expect("padded run");
        assert_eq!(
            out.result,
            PsiResult::Cardinality((truth + matching).saturating_sub(offset))
        );
        assert_eq!(out.peer_set_size, b.len() as u64 + total);
        assert_eq!(resp.peer_set_size, a.len() as u64);
        lengths.push((responder_list, returned));
    }
    // Whatever the noise, the requester sees lists of the same lengths.
    assert!(
        lengths.iter().all(|l| *l == (b.len() + 12, a.len() + 12)),
        "{lengths:?}"
    );
}

#[test]
fn padding_works_with_an_empty_requester_set() {
    let empty = IdSet::default();
    let b: IdSet = ["x", "y"].into_iter().collect();
    let (out, _) = run_padded(
        Mode::Cardinality,
        &empty,
        &b,
        4,
        1,
        (
            Padding::Requester {
                offset: 2,
                total: 4,
            },
            Padding::Responder {
                matching: 3,
                total: 4,
            },
        ),
        |_| {},
    )
    .expect("padded run");
    assert_eq!(out.result, PsiResult::Cardinality(1));
}

#[test]
fn padding_without_a_key_commitment_aborts() {
    let a: IdSet = ["x"].into_iter().collect();
    let err = run_padded(
        Mode::Cardinality,
        &a,
        &a,
        4,
        1,
        (
            Padding::None,
            Padding::Responder {
                matching: 1,
                total: 2,
            },
        ),
        |_| {},
    )
    .expect_err("no commitment");
    assert!(matches!(err, Error::UnexpectedMessage { .. }), "{err:?}");
}

#[test]
fn membership_mode_ignores_padding() {
    let a: IdSet = (0..10).map(|i| i.to_string()).collect();
    let (out, _) = run_padded(
        Mode::Membership,
        &a,
        &a,
        4,
        1,
        (
            Padding::Requester {
                offset: 2,
                total: 4,
            },
            Padding::Responder {
                matching: 3,
                total: 4,
            },
        ),
        |_| {},
    )
    .expect("run");
    assert_eq!(out.result, PsiResult::Members((0..10).collect()));
}

/// A requester facing a hand-built responder: starts a cardinality run with
/// the noise terms the responder's node sent, and feeds it `hello`.
fn requester_meets(
    padding: Padding,
    max_peer_set_size: u64,
    announced: u64,
) -> Result<RequesterStep, Error> {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let mut session = Session::new(JobId([3; 16]), Mode::Cardinality, max_peer_set_size);
    session.padding = padding;
    let ids: IdSet = ["p", "q"].into_iter().collect();
    let (state, _) = Requester::start(session, &ids, &mut rng);
    state.handle(Message::ResponderHello {
        set_size: announced,
    })
}

fn bad_terms(result: Result<RequesterStep, Error>) -> &'static str {
    match result {
        Err(Error::BadNoiseTerms { problem, .. }) => problem,
        other => panic!("hostile noise terms were used: {other:?}"),
    }
}

#[test]
fn hostile_noise_terms_offset_above_total_are_refused() {
    // The requester would subtract more than the responder can have added.
    let problem = bad_terms(requester_meets(
        Padding::Requester {
            offset: 5,
            total: 4,
        },
        100,
        10,
    ));
    assert!(problem.contains("offset"), "{problem}");
}

#[test]
fn hostile_noise_terms_with_more_dummies_than_announced_are_refused() {
    // The dummies are part of the responder's list, so they cannot outnumber
    // it; otherwise the responder could make us expect (and read) an
    // unbounded number of double-blinded elements.
    let problem = bad_terms(requester_meets(
        Padding::Requester {
            offset: 2,
            total: 4,
        },
        100,
        3,
    ));
    assert!(problem.contains("announced"), "{problem}");
    let problem = bad_terms(requester_meets(
        Padding::Requester {
            offset: 0,
            total: u64::MAX,
        },
        100,
        100,
    ));
    assert!(problem.contains("announced"), "{problem}");
}

#[test]
fn hostile_noise_terms_that_overflow_our_own_size_are_refused() {
    // Two ids of ours plus u64::MAX − 1 dummies: the sum must not wrap (or
    // panic) into a small expected count.
    let problem = bad_terms(requester_meets(
        Padding::Requester {
            offset: 0,
            total: u64::MAX - 1,
        },
        u64::MAX,
        u64::MAX,
    ));
    assert!(problem.contains("overflow"), "{problem}");
}

#[test]
fn usable_noise_terms_pass_and_the_whole_hand_built_sequence_completes() {
    // The same hand-built responder with honest terms: the checks refuse
    // nothing that a real responder sends. Offset 1 of 2 dummies, one
    // matching (so the count shows our one id in common plus 1 − 1).
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let mut session = Session::new(JobId([3; 16]), Mode::Cardinality, 100);
    session.padding = Padding::Requester {
        offset: 1,
        total: 2,
    };
    let ids: IdSet = ["p", "q"].into_iter().collect();
    let (state, to_responder) = Requester::start(session.clone(), &ids, &mut rng);
    let responder_session = Session {
        padding: Padding::Responder {
            matching: 1,
            total: 2,
        },
        ..session
    };
    let theirs: IdSet = ["q", "r", "s"].into_iter().collect();
    let (responder, from_responder) = Responder::start(responder_session, &theirs, &mut rng);
    let mut responder = Some(ResponderState::from(responder));
    let mut replies = from_responder;
    for message in to_responder {
        let step = responder
            .take()
            .expect("responder still running")
            .handle(message, &mut rng)
            .expect("responder");
        replies.extend(step.send);
        if let Progress::Continue(next) = step.next {
            responder = Some(next);
        }
    }
    let mut state = Some(RequesterState::from(state));
    let mut output = None;
    for message in replies {
        let step = state
            .take()
            .expect("requester still running")
            .handle(message)
            .expect("requester");
        match step.next {
            Progress::Continue(next) => state = Some(next),
            Progress::Done(out) => output = Some(out),
        }
    }
    let output = output.expect("requester finished");
    assert_eq!(output.result, PsiResult::Cardinality(1));
    assert_eq!(output.peer_set_size, 3 + 2);
}

/// Counts the bytes a run draws from its RNG.
struct CountingRng {
    inner: ChaCha20Rng,
    drawn: u64,
}

impl rand_core::RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        self.drawn += 4;
        self.inner.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.drawn += 8;
        self.inner.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.drawn += dest.len() as u64;
        self.inner.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.drawn += dest.len() as u64;
        self.inner.try_fill_bytes(dest)
    }
}

impl rand_core::CryptoRng for CountingRng {}

/// The responder's whole part of a run (its list, then the reply to a hello
/// with an empty set, so all its dummies are built): the bytes it drew from
/// its RNG, and the lengths of everything it sent.
fn responder_work(padding: Padding) -> (u64, Vec<(&'static str, usize)>) {
    let mut rng = CountingRng {
        inner: ChaCha20Rng::seed_from_u64(31),
        drawn: 0,
    };
    let mut session = Session::new(JobId([4; 16]), Mode::Cardinality, 100);
    session.padding = padding;
    let theirs: IdSet = (0..20).map(|i| format!("y{i}")).collect();
    let commitment =
        crate::group::BlindingKey::random(&mut ChaCha20Rng::seed_from_u64(32)).commitment();
    let (state, mut sent) = Responder::start(session, &theirs, &mut rng);
    let hello = Message::RequesterHello {
        set_size: 0,
        key_commitment: Some(commitment),
    };
    let step = ResponderState::from(state)
        .handle(hello, &mut rng)
        .expect("responder");
    assert!(matches!(step.next, Progress::Done(_)));
    sent.extend(step.send);
    let shape = sent.iter().map(|m| (m.kind(), m.element_count())).collect();
    (rng.drawn, shape)
}

#[test]
fn every_dummy_costs_the_same_whatever_the_noise() {
    // The time the responder takes must not depend on how many dummies
    // match (the secret noise). Timing is measured by the `dummies_2048`
    // benchmark; this test checks the deterministic part of the same
    // property: every dummy draws the same randomness, whatever its kind
    // (before, a matching dummy drew one scalar and an unmatched one two
    // random points, and cost a different amount of work), and the messages
    // have the same shape.
    let total = 12;
    let runs: Vec<_> = [0, 1, 5, total - 1, total]
        .into_iter()
        .map(|matching| responder_work(Padding::Responder { matching, total }))
        .collect();
    assert!(runs.iter().all(|run| *run == runs[0]), "{runs:?}");
}

#[test]
fn release_padding_makes_the_announced_size_noisy_and_keeps_the_estimates_right() {
    // Each run draws a fresh release padding, as the node does per job. The
    // announced size must vary from run to run (it hides whether one record
    // was added), and both estimates must be right: the count exactly truth
    // plus the count noise, and on average truth; the announced size minus
    // the public dummies and offset, on average |Y|.
    let a: IdSet = (0..12).map(|i| format!("k{i}")).collect();
    let b: IdSet = (6..21).map(|i| format!("k{i}")).collect();
    let truth = plain_intersection(&a, &b).len() as i64;
    let epsilon = crate::dp::Epsilon::new(2, 1).expect("epsilon");
    let runs = 24;
    let (mut announced, mut counts, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for seed in 0..runs {
        let mut rng = ChaCha20Rng::seed_from_u64(1000 + seed);
        let drawn = crate::dp::padding_for_release(epsilon, 1, 1_000, &mut rng).expect("padding");
        let params = drawn.params;
        let (out, resp) = run_padded(
            Mode::Cardinality,
            &a,
            &b,
            5,
            seed,
            (
                Padding::for_requester(&params),
                Padding::for_responder(&drawn),
            ),
            |_| {},
        )
        .expect("padded run");
        assert_eq!(resp.peer_set_size, a.len() as u64);
        // What the responder knows: the size is |Y| plus every dummy in its
        // list, and the count is the truth plus the matching dummies.
        assert_eq!(
            out.peer_set_size,
            b.len() as u64 + params.count_total + drawn.size_dummies
        );
        let noisy = truth + drawn.matching as i64 - params.count_offset as i64;
        assert_eq!(out.result, PsiResult::Cardinality(noisy.max(0) as u64));
        announced.push(out.peer_set_size);
        counts.push(noisy as f64);
        sizes.push((out.peer_set_size - params.count_total - params.size_offset) as f64);
    }
    assert!(
        announced.iter().any(|&n| n != announced[0]),
        "the announced size never varied: {announced:?}"
    );
    // Discrete Laplace at ε/2 = 1: variance 2q/(1−q)², q = e^-1.
    let q = (-1f64).exp();
    let sigma_of_mean = (2.0 * q / (1.0 - q).powi(2) / runs as f64).sqrt();
    for (name, values, expected) in [
        ("count", &counts, truth as f64),
        ("size", &sizes, b.len() as f64),
    ] {
        let mean = values.iter().sum::<f64>() / runs as f64;
        assert!(
            (mean - expected).abs() <= 5.0 * sigma_of_mean,
            "{name}: mean {mean} against {expected}"
        );
    }
}

#[test]
fn padding_debug_output_redacts_the_noise() {
    let padding = Padding::ResponderWithSize {
        matching: 123_457,
        total: 12,
        size_dummies: 987_653,
    };
    let mut session = Session::new(JobId([1; 16]), Mode::Cardinality, 10);
    session.padding = padding;
    let printed = format!("{padding:?} {session:?}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(
        !printed.contains("123457") && !printed.contains("987653"),
        "{printed}"
    );
}
