//! The noise padding: its effect on the results, hostile noise terms, equal
//! work for every dummy, and redaction.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;

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
