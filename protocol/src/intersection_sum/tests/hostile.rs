//! Messages a faulty or hostile peer could send: each aborts the run with
//! an error that names the problem.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

use super::*;
use crate::InvalidPointReason;
use crate::group::EncodedPoint;
use crate::intersection_sum::elgamal::{SecretShare, verify_key};
use crate::intersection_sum::{REQUESTER_ROLE, RESPONDER_ROLE};

const NON_CANONICAL: [u8; 32] = [0xff; 32];

/// 10 requester ids, 8 rows of which 5 match, one category, one limb,
/// chunks of 4 points.
fn setup() -> (Session, IdSet, ValuedIds) {
    let rows = random_rows(0..8, 65_535, 1, 101);
    (
        session(layout(1, 1), 4, 101),
        ids(&names("id", 3..13)),
        valued(&rows),
    )
}

fn run_hostile(tamper: impl FnMut(Message) -> Vec<Message>) -> Result<IsumOutput, Error> {
    let (session, requester, rows) = setup();
    run_tampered(session, &requester, &rows, LimbOffsets::none(), 101, tamper).map(|(out, _)| out)
}

/// Applies `change` to the first message of kind `kind` only.
fn on_first(
    kind: &'static str,
    mut change: impl FnMut(Message) -> Vec<Message>,
) -> impl FnMut(Message) -> Vec<Message> {
    let mut done = false;
    move |message| {
        if !done && message.kind() == kind {
            done = true;
            change(message)
        } else {
            vec![message]
        }
    }
}

fn non_canonical_at(index: u64) -> Result<IsumOutput, Error> {
    Err(Error::InvalidPoint {
        index,
        reason: InvalidPointReason::NonCanonical,
    })
}

#[test]
fn the_untampered_setup_succeeds() {
    let rows = random_rows(0..8, 65_535, 1, 101);
    let out = run_hostile(|m| vec![m]).expect("run");
    assert_eq!(out, plain_join(&names("id", 3..13), &rows, 1));
    assert_eq!(out.cardinality, 5);
}

/// A change to one message in place.
type Change = fn(&mut Message);

#[test]
fn a_non_canonical_point_anywhere_aborts() {
    let cases: Vec<(&str, Change, u64)> = vec![
        (
            "RequesterHello",
            |m| {
                if let Message::RequesterHello { elgamal_key, .. } = m {
                    *elgamal_key = NON_CANONICAL;
                }
            },
            0,
        ),
        (
            "ResponderHello",
            |m| {
                if let Message::ResponderHello { elgamal_key, .. } = m {
                    *elgamal_key = NON_CANONICAL;
                }
            },
            0,
        ),
        (
            "RequesterBlinded",
            |m| {
                if let Message::RequesterBlinded(p) = m {
                    p[1] = NON_CANONICAL;
                }
            },
            1,
        ),
        (
            "DoubleBlinded",
            |m| {
                if let Message::DoubleBlinded(p) = m {
                    p[2] = NON_CANONICAL;
                }
            },
            2,
        ),
        // A row is 3 points here: its id, then C1 and C2.
        (
            "ResponderRows",
            |m| {
                if let Message::ResponderRows(rows) = m {
                    rows[0].ciphertexts[0].c2 = NON_CANONICAL;
                }
            },
            2,
        ),
        (
            "ResponderRows",
            |m| {
                if let Message::ResponderRows(rows) = m {
                    rows[0].blinded_id = NON_CANONICAL;
                }
            },
            0,
        ),
        (
            "SumCiphertexts",
            |m| {
                if let Message::SumCiphertexts(sums) = m {
                    sums[0].c1 = NON_CANONICAL;
                }
            },
            0,
        ),
        (
            "PartialDecryptions",
            |m| {
                if let Message::PartialDecryptions(shares) = m {
                    shares[0] = NON_CANONICAL;
                }
            },
            0,
        ),
    ];
    for (kind, change, index) in cases {
        let result = run_hostile(on_first(kind, |mut m| {
            change(&mut m);
            vec![m]
        }));
        assert_eq!(result, non_canonical_at(index), "{kind}");
    }
}

#[test]
fn the_identity_is_refused_as_an_element() {
    let identity = RistrettoPoint::default().compress().to_bytes();
    let result = run_hostile(on_first("RequesterBlinded", |mut m| {
        if let Message::RequesterBlinded(p) = &mut m {
            p[0] = identity;
        }
        vec![m]
    }));
    assert_eq!(
        result,
        Err(Error::InvalidPoint {
            index: 0,
            reason: InvalidPointReason::Identity
        })
    );
}

/// A share chosen from the other's (`t·G − X_peer`, or `−X_peer`, which
/// makes the joint key the identity) would let its sender decrypt every
/// ciphertext alone; it cannot prove knowledge of its secret, so it is
/// refused both ways, as is a proof made for the other role or another job.
#[test]
fn a_key_share_chosen_from_the_peers_is_refused() {
    let t = Scalar::from(7u64);
    for cancel in [true, false] {
        let rogue = |peer: &EncodedPoint| {
            let peer = CompressedRistretto(*peer).decompress().expect("point");
            let share = if cancel {
                -peer
            } else {
                RistrettoPoint::mul_base(&t) - peer
            };
            share.compress().to_bytes()
        };
        // The responder answers with a share derived from the requester's,
        // keeping its own (valid, but for another key) proof.
        let mut requester_key = None;
        let result = run_hostile(move |mut m| {
            match &mut m {
                Message::RequesterHello { elgamal_key, .. } => requester_key = Some(*elgamal_key),
                Message::ResponderHello { elgamal_key, .. } => {
                    *elgamal_key = rogue(&requester_key.expect("hello first"));
                }
                _ => {}
            }
            vec![m]
        });
        assert_eq!(result.map(|_| ()), Err(Error::BadKeyProof));

        // The requester does the same to the responder's share.
        let (session, _, rows) = setup();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (responder, hello) =
            Responder::start(session, &rows, LimbOffsets::none(), &mut rng).expect("start");
        let Message::ResponderHello {
            elgamal_key,
            key_proof,
            ..
        } = &hello[0]
        else {
            panic!("hello first");
        };
        let attack = Message::RequesterHello {
            set_size: 1,
            elgamal_key: rogue(elgamal_key),
            key_proof: *key_proof,
        };
        assert_eq!(
            responder.handle(attack, &mut rng).map(|_| ()),
            Err(Error::BadKeyProof)
        );
    }
    // The joint-key check stays behind the proofs.
    let p = RistrettoPoint::mul_base(&t);
    assert!(crate::intersection_sum::elgamal::joint_key(&p, &-p).is_err());
}

#[test]
fn a_key_proof_holds_only_for_its_key_role_and_job() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let secret = SecretShare::from_scalar(Scalar::from(11u64));
    let key = secret.public();
    let tag = b"job one".as_slice();
    let proof = secret.prove(tag, REQUESTER_ROLE, &mut rng);
    assert_eq!(verify_key(tag, REQUESTER_ROLE, &key, &proof), Ok(()));
    assert_eq!(
        verify_key(tag, RESPONDER_ROLE, &key, &proof),
        Err(Error::BadKeyProof)
    );
    assert_eq!(
        verify_key(b"job two", REQUESTER_ROLE, &key, &proof),
        Err(Error::BadKeyProof)
    );
    let other = RistrettoPoint::mul_base(&Scalar::from(12u64));
    assert_eq!(
        verify_key(tag, REQUESTER_ROLE, &other, &proof),
        Err(Error::BadKeyProof)
    );
    // A response that is not a canonical scalar.
    let mut bent = proof;
    bent.response = [0xff; 32];
    assert_eq!(
        verify_key(tag, REQUESTER_ROLE, &key, &bent),
        Err(Error::BadKeyProof)
    );
}

#[test]
fn chunks_that_break_the_announced_counts_abort() {
    let more = Err(Error::BadChunk("more elements than announced"));
    // The requester announces 2 ids but sends 10.
    let result = run_hostile(on_first("RequesterHello", |m| match m {
        Message::RequesterHello {
            elgamal_key,
            key_proof,
            ..
        } => vec![Message::RequesterHello {
            set_size: 2,
            elgamal_key,
            key_proof,
        }],
        m => vec![m],
    }));
    assert_eq!(result, more);
    // The responder announces 3 rows but sends 8, one row per message:
    // the fourth arrives when the rows are complete.
    let result = run_hostile(on_first("ResponderHello", |m| match m {
        Message::ResponderHello {
            elgamal_key,
            key_proof,
            ..
        } => vec![Message::ResponderHello {
            set_size: 3,
            elgamal_key,
            key_proof,
        }],
        m => vec![m],
    }));
    assert_eq!(
        result,
        Err(Error::UnexpectedMessage {
            expected: "PartialDecryptions",
            received: "ResponderRows"
        })
    );
    // A single chunk of 9 rows where 8 were announced.
    let result = run_hostile(on_first("ResponderRows", |m| {
        let Message::ResponderRows(rows) = m else {
            return vec![m];
        };
        vec![Message::ResponderRows(vec![rows[0].clone(); 9])]
    }));
    assert_eq!(result, more);
    // One double-blinded element too many.
    let result = run_hostile(on_first("DoubleBlinded", |mut m| {
        if let Message::DoubleBlinded(p) = &mut m {
            p.push(p[0]);
        }
        vec![m]
    }));
    assert_eq!(result, more);
    // An empty chunk.
    let result = run_hostile(on_first("ResponderRows", |m| {
        vec![Message::ResponderRows(Vec::new()), m]
    }));
    assert_eq!(result, Err(Error::BadChunk("empty chunk")));
}

#[test]
fn a_chunk_over_the_element_limit_aborts() {
    // 1366 rows of 3 points is 4098 points, over 4096.
    let result = run_hostile(on_first("ResponderRows", |m| {
        let Message::ResponderRows(rows) = m else {
            return vec![m];
        };
        vec![Message::ResponderRows(vec![rows[0].clone(); 1366])]
    }));
    assert_eq!(result, Err(Error::BadChunk("chunk over the element limit")));
}

#[test]
fn announced_sizes_outside_the_session_limits_abort() {
    let (mut session, requester, rows) = setup();
    session.max_peer_set_size = 7;
    let result = run_tampered(
        session.clone(),
        &requester,
        &rows,
        LimbOffsets::none(),
        1,
        |m| vec![m],
    );
    // The responder sees 10 requester ids first.
    assert_eq!(
        result.map(|_| ()),
        Err(Error::SetTooLarge {
            announced: 10,
            limit: 7
        })
    );
    session.max_peer_set_size = 100;
    session.min_peer_set_size = 9;
    let result = run_tampered(session, &requester, &rows, LimbOffsets::none(), 1, |m| {
        vec![m]
    });
    assert_eq!(
        result.map(|_| ()),
        Err(Error::SetTooSmall {
            announced: 8,
            minimum: 9
        })
    );
}

#[test]
fn messages_out_of_order_or_twice_abort() {
    // Rows where the double-blinded elements belong.
    let (session, requester, rows) = setup();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (req, _) = Requester::start(session.clone(), &requester, &mut rng).expect("start");
    let (_, hello) =
        Responder::start(session, &rows, LimbOffsets::none(), &mut rng).expect("start");
    let step = RequesterState::from(req)
        .handle(hello[0].clone(), &mut rng, table())
        .expect("hello");
    let Progress::Continue(state) = step.next else {
        panic!("finished early");
    };
    assert_eq!(
        state
            .handle(Message::ResponderRows(Vec::new()), &mut rng, table())
            .map(|_| ()),
        Err(Error::UnexpectedMessage {
            expected: "DoubleBlinded",
            received: "ResponderRows"
        })
    );

    let twice = |kind: &'static str| on_first(kind, |m| vec![m.clone(), m]);
    assert_eq!(
        run_hostile(twice("RequesterHello")),
        Err(Error::UnexpectedMessage {
            expected: "RequesterBlinded",
            received: "RequesterHello"
        })
    );
    assert_eq!(
        run_hostile(twice("ResponderHello")),
        Err(Error::UnexpectedMessage {
            expected: "DoubleBlinded",
            received: "ResponderHello"
        })
    );
    // The sums where the requester's elements belong.
    assert_eq!(
        run_hostile(on_first("RequesterBlinded", |_| vec![
            Message::SumCiphertexts(Vec::new())
        ])),
        Err(Error::UnexpectedMessage {
            expected: "RequesterBlinded",
            received: "SumCiphertexts"
        })
    );
}

#[test]
fn ciphertext_counts_that_do_not_match_the_layout_abort() {
    let result = run_hostile(on_first("ResponderRows", |mut m| {
        if let Message::ResponderRows(rows) = &mut m {
            let extra = rows[0].ciphertexts[0];
            rows[0].ciphertexts.push(extra);
        }
        vec![m]
    }));
    assert_eq!(
        result,
        Err(Error::WrongCiphertextCount {
            what: "ciphertexts in a row",
            expected: 1,
            found: 2
        })
    );
    let result = run_hostile(on_first("SumCiphertexts", |mut m| {
        if let Message::SumCiphertexts(sums) = &mut m {
            sums.clear();
        }
        vec![m]
    }));
    assert_eq!(
        result,
        Err(Error::WrongCiphertextCount {
            what: "sum ciphertexts",
            expected: 1,
            found: 0
        })
    );
    let result = run_hostile(on_first("PartialDecryptions", |mut m| {
        if let Message::PartialDecryptions(shares) = &mut m {
            shares.push(shares[0]);
        }
        vec![m]
    }));
    assert_eq!(
        result,
        Err(Error::WrongCiphertextCount {
            what: "decryption shares",
            expected: 1,
            found: 2
        })
    );
}

/// A wrong decryption share moves the plaintext out of the searched range:
/// an error, never a wrong sum.
#[test]
fn a_wrong_decryption_share_gives_an_error_not_a_wrong_sum() {
    // 5 matches of at most 2^16 − 1: the bound is 5·65535.
    let bound = 5 * 65_535;
    let shift = |by: u64| {
        on_first("PartialDecryptions", move |mut m| {
            if let Message::PartialDecryptions(shares) = &mut m {
                let share = CompressedRistretto(shares[0]).decompress().expect("point");
                let moved = share - RistrettoPoint::mul_base(&Scalar::from(by));
                shares[0] = moved.compress().to_bytes();
            }
            vec![m]
        })
    };
    let exact = run_hostile(|m| vec![m]).expect("run").categories[0].sum;
    // Within the bound a shifted share shifts the sum: semi-honest only.
    assert_eq!(
        run_hostile(shift(1)).expect("run").categories[0].sum,
        exact + 1
    );
    let past = bound - u64::try_from(exact).expect("small") + 1;
    assert_eq!(
        run_hostile(shift(past)),
        Err(Error::DecryptionOutOfRange { bound })
    );
    let random = run_hostile(on_first("PartialDecryptions", |mut m| {
        if let Message::PartialDecryptions(shares) = &mut m {
            shares[0] = crate::group::hash_to_group(b"t", b"x")
                .compress()
                .to_bytes();
        }
        vec![m]
    }));
    assert_eq!(random, Err(Error::DecryptionOutOfRange { bound }));
}

#[test]
fn undecodable_bytes_are_refused() {
    assert!(matches!(Message::decode(&[]), Err(Error::Undecodable(_))));
    assert!(matches!(Message::decode(&[9]), Err(Error::Undecodable(_))));
    // A hello whose key is cut short.
    assert!(matches!(
        Message::decode(&[0, 1, 7, 7]),
        Err(Error::Undecodable(_))
    ));
}
