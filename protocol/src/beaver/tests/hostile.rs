//! Hostile messages and caller mistakes: each refused with its reason.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{JOB, dealt, roster};
use crate::beaver::*;
use crate::sharing::{PartyIndex, SumOutput};
use crate::{Error, Progress};

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
    assert_eq!(err.abort_code(), 12);

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
