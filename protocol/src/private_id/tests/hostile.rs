//! Hostile and malformed input: every one aborts with an error that names it.

use super::*;
use crate::InvalidPointReason;
use curve25519_dalek::ristretto::RistrettoPoint;

const ELEMENT_KINDS: [&str; 8] = [
    "RequesterBlinded",
    "ResponderBlinded",
    "RequesterPartialUids",
    "RequesterShuffled",
    "ResponderPartialUids",
    "ResponderOnly",
    "RequesterOnlyPartialUids",
    "ResponderOnlyPartialUids",
];

/// Sets where every element-carrying message is sent (both sides hold ids
/// the other lacks).
fn sets() -> (IdSet, IdSet) {
    (ids(0..6, "h"), ids(3..10, "h"))
}

/// Runs with `change` applied to the first message of `kind`.
fn run_changing_first(kind: &str, mut change: impl FnMut(&mut Message)) -> Result<Outcome, Error> {
    let (x, y) = sets();
    let mut done = false;
    run_with(&x, &y, 2, (1, 2), |mut m| {
        if !done && m.kind() == kind {
            done = true;
            change(&mut m);
        }
        vec![m]
    })
}

fn elements_mut(message: &mut Message) -> &mut Vec<[u8; 32]> {
    match message {
        Message::RequesterBlinded(p)
        | Message::ResponderBlinded(p)
        | Message::RequesterPartialUids(p)
        | Message::RequesterShuffled(p)
        | Message::ResponderPartialUids(p)
        | Message::ResponderOnly(p)
        | Message::RequesterOnlyPartialUids(p)
        | Message::ResponderOnlyPartialUids(p) => p,
        other => panic!("{} carries no elements", other.kind()),
    }
}

#[test]
fn the_untampered_run_succeeds() {
    // The hostile tests below change one thing of this run.
    run_changing_first("RequesterBlinded", |_| {}).expect("clean run");
}

#[test]
fn a_bad_point_in_any_list_aborts() {
    let identity = RistrettoPoint::default().compress().to_bytes();
    for kind in ELEMENT_KINDS {
        for (bad, reason) in [
            ([0xff; 32], InvalidPointReason::NonCanonical),
            (identity, InvalidPointReason::Identity),
        ] {
            let err = run_changing_first(kind, |m| elements_mut(m)[1] = bad)
                .err()
                .unwrap_or_else(|| panic!("{kind} accepted a bad point"));
            assert_eq!(err, Error::InvalidPoint { index: 1, reason }, "{kind}");
        }
    }
}

#[test]
fn chunks_over_the_bound_or_empty_abort() {
    for kind in ELEMENT_KINDS {
        let err = run_changing_first(kind, |m| {
            let first = elements_mut(m)[0];
            *elements_mut(m) = vec![first; MAX_CHUNK_POINTS + 1];
        })
        .err();
        assert_eq!(
            err,
            Some(Error::BadChunk("chunk over the element limit")),
            "{kind}"
        );
        let err = run_changing_first(kind, |m| elements_mut(m).clear()).err();
        assert_eq!(err, Some(Error::BadChunk("empty chunk")), "{kind}");
    }
    // And a framing layer can refuse the bytes before decoding anything.
    let too_long = vec![0u8; Message::MAX_ENCODED_LEN + 1];
    assert!(matches!(
        Message::decode(&too_long),
        Err(Error::Undecodable(_))
    ));
}

/// Runs with `change` applied to the last message of `kind`.
fn run_changing_last(kind: &str, mut change: impl FnMut(&mut Message)) -> Result<Outcome, Error> {
    let (x, y) = sets();
    let mut count = 0;
    run_with(&x, &y, 2, (1, 2), |m| {
        count += usize::from(m.kind() == kind);
        vec![m]
    })
    .expect("clean run");
    run_with(&x, &y, 2, (1, 2), |mut m| {
        if m.kind() == kind {
            count -= 1;
            if count == 0 {
                change(&mut m);
            }
        }
        vec![m]
    })
}

#[test]
fn more_elements_than_the_hello_announced_abort() {
    for kind in ELEMENT_KINDS {
        let err = run_changing_last(kind, |m| {
            let extra = elements_mut(m)[0];
            elements_mut(m).push(extra);
        })
        .err();
        assert_eq!(
            err,
            Some(Error::BadChunk("more elements than announced")),
            "{kind}"
        );
    }
}

#[test]
fn fewer_elements_than_the_hello_announced_abort() {
    // The requester announces one id more than it sends: the responder
    // waits for the missing element and gets the next kind of message.
    let err = run_changing_first("RequesterHello", |m| {
        *m = Message::RequesterHello { set_size: 7 };
    })
    .err();
    assert_eq!(
        err,
        Some(Error::UnexpectedMessage {
            expected: "RequesterBlinded",
            received: "ResponderPartialUids"
        })
    );
}

#[test]
fn announced_sizes_outside_the_session_limits_abort() {
    let (x, y) = sets();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let strict = Session {
        max_peer_set_size: 5,
        min_peer_set_size: 2,
        ..session(4)
    };
    let (state, _) = Requester::start(strict.clone(), &x, &mut rng);
    let err = state
        .handle(Message::ResponderHello { set_size: 6 }, &mut rng)
        .expect_err("too large");
    assert_eq!(
        err,
        Error::SetTooLarge {
            announced: 6,
            limit: 5
        }
    );
    let (state, _) = Responder::start(strict, &y, &mut rng);
    let err = state
        .handle(Message::RequesterHello { set_size: 1 }, &mut rng)
        .expect_err("too small");
    assert_eq!(
        err,
        Error::SetTooSmall {
            announced: 1,
            minimum: 2
        }
    );
}

#[test]
fn differences_the_set_sizes_cannot_give_abort() {
    // Honest: |X| = 6, |Y| = 7, 3 common, so 3 requester-only and 4
    // responder-only.
    let cases = [
        (4, 4, "the two counts give different intersection sizes"),
        (3, 5, "the two counts give different intersection sizes"),
        (7, 8, "more requester-only ids than the requester announced"),
        (0, 8, "more responder-only ids than we hold"),
    ];
    for (requester_only, responder_only, problem) in cases {
        let err = run_changing_first("Differences", |m| {
            *m = Message::Differences {
                requester_only,
                responder_only,
            };
        })
        .err();
        assert_eq!(
            err,
            Some(Error::BadDifferences {
                requester_only,
                responder_only,
                problem
            })
        );
    }
}

#[test]
fn a_message_twice_aborts() {
    let (x, y) = sets();
    for kind in ["RequesterHello", "ResponderHello", "Differences"] {
        let mut done = false;
        let err = run_with(&x, &y, 2, (1, 2), |m| {
            if !done && m.kind() == kind {
                done = true;
                return vec![m.clone(), m];
            }
            vec![m]
        })
        .err()
        .unwrap_or_else(|| panic!("{kind} twice was accepted"));
        assert!(
            matches!(err, Error::UnexpectedMessage { received, .. } if received == kind),
            "{kind}: {err:?}"
        );
    }
    for kind in ELEMENT_KINDS {
        // The last chunk of a stream, twice: the stream is complete, so the
        // copy arrives where the next kind of message is expected.
        let (x, y) = sets();
        let mut count = 0;
        run_with(&x, &y, 2, (1, 2), |m| {
            count += usize::from(m.kind() == kind);
            vec![m]
        })
        .expect("clean run");
        let err = run_with(&x, &y, 2, (1, 2), |m| {
            if m.kind() == kind {
                count -= 1;
                if count == 0 {
                    return vec![m.clone(), m];
                }
            }
            vec![m]
        })
        .err()
        .unwrap_or_else(|| panic!("{kind} twice was accepted"));
        assert!(
            matches!(err, Error::UnexpectedMessage { received, .. } if received == kind),
            "{kind}: {err:?}"
        );
    }
}

#[test]
fn a_message_out_of_order_aborts() {
    // The shuffled list overtakes the partial UIDs it should follow.
    let (x, y) = sets();
    let mut held = Vec::new();
    let err = run_with(&x, &y, 64, (1, 2), |m| match m.kind() {
        "RequesterPartialUids" => {
            held.push(m);
            Vec::new()
        }
        "RequesterShuffled" => {
            let mut out = vec![m];
            out.append(&mut held);
            out
        }
        _ => vec![m],
    })
    .err();
    assert_eq!(
        err,
        Some(Error::UnexpectedMessage {
            expected: "RequesterPartialUids",
            received: "RequesterShuffled"
        })
    );
}

#[test]
fn repeated_elements_abort() {
    // A repeat among the elements the requester compares would skew the
    // counts; a repeat among UIDs would put two records on one row.
    for (kind, what) in [
        ("RequesterShuffled", "RequesterShuffled"),
        ("ResponderBlinded", "ResponderBlinded"),
        ("RequesterPartialUids", "the union's identifiers"),
        ("RequesterOnlyPartialUids", "the union's identifiers"),
    ] {
        let err = run_changing_first(kind, |m| {
            let first = elements_mut(m)[0];
            elements_mut(m)[1] = first;
        })
        .err();
        assert_eq!(err, Some(Error::DuplicateElement { what }), "{kind}");
    }
}

#[test]
fn non_canonical_and_trailing_bytes_are_undecodable() {
    let hello = Message::ResponderHello { set_size: 5 }.encode();
    // 5 as an overlong varint: 0x85 0x00.
    let overlong = [hello[0], 0x85, 0x00];
    assert!(matches!(
        Message::decode(&overlong),
        Err(Error::Undecodable(_))
    ));
    let mut trailing = hello.clone();
    trailing.push(0);
    assert!(matches!(
        Message::decode(&trailing),
        Err(Error::Undecodable(_))
    ));
    assert!(matches!(
        Message::decode(&[0x0b]),
        Err(Error::Undecodable(_))
    ));
}
