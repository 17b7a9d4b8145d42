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

/// postcard decodes overlong varints too; a message with two encodings could
/// be fed to a signature or a replay check under either, so only the
/// canonical bytes decode (found by the `psi_message` fuzz target).
#[test]
fn overlong_integers_are_refused() {
    assert_eq!(
        Message::decode(&[1, 0x7f]),
        Ok(Message::ResponderHello { set_size: 127 })
    );
    for overlong in [
        vec![1, 0xff, 0x00],
        vec![1, 0x80, 0x00],
        vec![0, 0xac, 0x82, 0x00, 0],
    ] {
        assert!(
            matches!(Message::decode(&overlong), Err(Error::Undecodable(_))),
            "{overlong:02x?} decoded"
        );
    }
    let mut chunk = vec![4, 0x81, 0x00];
    chunk.extend([7u8; 32]);
    assert!(matches!(
        Message::decode(&chunk),
        Err(Error::Undecodable(_))
    ));
}

#[test]
fn full_chunk_fits_the_encoded_limit() {
    let full = Message::RequesterBlinded(vec![[0xee; 32]; MAX_CHUNK_POINTS]);
    assert!(full.encode().len() <= Message::MAX_ENCODED_LEN);
}

mod noise;
