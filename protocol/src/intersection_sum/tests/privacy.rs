//! What each party sees: the double-blinded list is shuffled, the rows are
//! encrypted under the joint key, the sums are re-randomised, and secrets
//! never reach a Debug string.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

use super::*;
use crate::intersection_sum::REQUESTER_ROLE;
use crate::intersection_sum::elgamal::{SecretShare, decode_ciphertexts};

/// The hello of a requester whose share's secret is `x1`, with its proof.
fn requester_hello(set_size: usize, x1: &Scalar, seed: u64, rng: &mut ChaCha20Rng) -> Message {
    let secret = SecretShare::from_scalar(*x1);
    Message::RequesterHello {
        set_size: set_size as u64,
        elgamal_key: secret.public().compress().to_bytes(),
        key_proof: secret.prove(
            &session(layout(1, 1), 4096, seed).tag(),
            REQUESTER_ROLE,
            rng,
        ),
    }
}

fn times_g(k: u64) -> RistrettoPoint {
    RistrettoPoint::mul_base(&Scalar::from(k))
}

fn decode(bytes: &[u8; 32]) -> RistrettoPoint {
    CompressedRistretto(*bytes).decompress().expect("point")
}

/// Plays the requester against a real responder with one row `("r", value)`:
/// sends `X1 = x1·G` and `inputs` as its blinded elements, and returns every
/// message the responder sent.
fn responder_answers(
    inputs: &[RistrettoPoint],
    x1: &Scalar,
    value: u64,
    seed: u64,
) -> Vec<Message> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let session = session(layout(1, 1), 4096, seed);
    let rows = valued(&[("r".into(), value, 0)]);
    let (state, mut sent) =
        Responder::start(session, &rows, LimbOffsets::none(), &mut rng).expect("start");
    let hello = requester_hello(inputs.len(), x1, seed, &mut rng);
    let step = ResponderState::from(state)
        .handle(hello, &mut rng)
        .expect("hello");
    sent.extend(step.send);
    let Progress::Continue(state) = step.next else {
        panic!("finished early");
    };
    let blinded = inputs.iter().map(|p| p.compress().to_bytes()).collect();
    let step = state
        .handle(Message::RequesterBlinded(blinded), &mut rng)
        .expect("blinded");
    sent.extend(step.send);
    sent
}

/// The responder returns `b·P` for each element the requester sent, in an
/// order of its own drawing, so the requester cannot tell which of its ids
/// matched. Sending `(i+1)·G` lets the test find the permutation: the
/// answer to `G` is `B = b·G`, and the answer to `(i+1)·G` is `(i+1)·B`.
#[test]
fn the_double_blinded_list_is_shuffled_uniformly() {
    let n = 6u64;
    let inputs: Vec<RistrettoPoint> = (1..=n).map(times_g).collect();
    let runs = 300u64;
    let mut where_first_went = vec![0u32; n as usize];
    let mut identity_orders = 0;
    for seed in 0..runs {
        let sent = responder_answers(&inputs, &Scalar::from(7u8), 1, seed);
        let returned: Vec<RistrettoPoint> = sent
            .iter()
            .filter_map(|m| match m {
                Message::DoubleBlinded(p) => Some(p.iter().map(decode).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(returned.len(), n as usize);
        let b_g = returned
            .iter()
            .find(|b| (1..=n).all(|k| returned.contains(&(Scalar::from(k) * **b))))
            .expect("some element is b·G");
        let positions: Vec<usize> = (1..=n)
            .map(|k| {
                let target = Scalar::from(k) * b_g;
                returned.iter().position(|p| *p == target).expect("present")
            })
            .collect();
        where_first_went[positions[0]] += 1;
        if positions.iter().enumerate().all(|(i, &p)| i == p) {
            identity_orders += 1;
        }
    }
    // Uniform: 50 expected in each position (standard deviation about 6.5).
    for (position, &count) in where_first_went.iter().enumerate() {
        assert!((25..=80).contains(&count), "position {position}: {count}");
    }
    // 1/720 expected per run; never more than a few in 300.
    assert!(identity_orders <= 3, "{identity_orders} unshuffled answers");
}

/// The rows are encrypted under `X1 + X2`: the responder's share alone, or
/// the requester's alone, does not decrypt; both together do. The test is
/// the requester, so it knows `x1`, and it sends a single row's ciphertext
/// back as a "sum", which is also what a malicious requester could do.
#[test]
fn rows_are_encrypted_under_the_joint_key() {
    let x1 = Scalar::from(123_456_789u64);
    let value = 4242;
    let sent = responder_answers(&[times_g(5)], &x1, value, 77);
    let row = sent
        .iter()
        .find_map(|m| match m {
            Message::ResponderRows(rows) => Some(rows[0].clone()),
            _ => None,
        })
        .expect("rows sent");
    let ciphertext = decode_ciphertexts(&row.ciphertexts, 0).expect("decode")[0];
    // The responder's own partial decryption of the single row.
    let share = partial_for(&[times_g(5)], &x1, value, 77, &row.ciphertexts);
    let expected = times_g(value);
    assert_ne!(ciphertext.c2 - share, expected, "x2 alone decrypted");
    assert_ne!(
        ciphertext.c2 - x1 * ciphertext.c1,
        expected,
        "x1 alone decrypted"
    );
    assert_eq!(ciphertext.c2 - x1 * ciphertext.c1 - share, expected);
}

/// Replays [`responder_answers`] with the same seed (so the same responder
/// keys) and asks for the partial decryption of `ciphertexts`.
fn partial_for(
    inputs: &[RistrettoPoint],
    x1: &Scalar,
    value: u64,
    seed: u64,
    ciphertexts: &[EncodedCiphertext],
) -> RistrettoPoint {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let session = session(layout(1, 1), 4096, seed);
    let rows = valued(&[("r".into(), value, 0)]);
    let (state, _) =
        Responder::start(session, &rows, LimbOffsets::none(), &mut rng).expect("start");
    let hello = requester_hello(inputs.len(), x1, seed, &mut rng);
    let mut state = ResponderState::from(state);
    for message in [
        hello,
        Message::RequesterBlinded(inputs.iter().map(|p| p.compress().to_bytes()).collect()),
        Message::SumCiphertexts(ciphertexts.to_vec()),
    ] {
        let step = state.handle(message, &mut rng).expect("step");
        match step.next {
            Progress::Continue(next) => state = next,
            Progress::Done(_) => {
                let Some(Message::PartialDecryptions(shares)) = step.send.last() else {
                    panic!("no decryption shares");
                };
                return decode(&shares[0]);
            }
        }
    }
    panic!("responder did not finish");
}

/// The responder knows every row's randomness, so the requester adds a
/// fresh encryption of 0 to each sum: with one matched row, the sum it
/// sends is not that row's ciphertext.
#[test]
fn sums_are_re_randomised_before_the_responder_sees_them() {
    let rows: Vec<Row> = vec![("a".into(), 9, 0), ("b".into(), 8, 0)];
    let requester: Vec<String> = vec!["a".into()];
    let mut row_ciphertexts = Vec::new();
    let mut sums = Vec::new();
    let (out, _) = run_tampered(
        session(layout(1, 1), 4096, 3),
        &ids(&requester),
        &valued(&rows),
        LimbOffsets::none(),
        3,
        |m| {
            match &m {
                Message::ResponderRows(rows) => {
                    row_ciphertexts.extend(rows.iter().map(|r| r.ciphertexts[0]));
                }
                Message::SumCiphertexts(s) => sums.extend(s.iter().copied()),
                _ => {}
            }
            vec![m]
        },
    )
    .expect("run");
    assert_eq!(out.categories[0], CategorySum { count: 1, sum: 9 });
    assert_eq!(row_ciphertexts.len(), 2);
    assert_eq!(sums.len(), 1);
    for row in &row_ciphertexts {
        assert_ne!(sums[0].c1, row.c1);
        assert_ne!(sums[0].c2, row.c2);
    }
}

#[test]
fn debug_output_shows_no_secrets() {
    let rows = valued(&[("secret-customer".into(), 987_654, 0)]);
    let offsets = LimbOffsets::per_slot(vec![31_337, 0]);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut session = session(layout(1, 2), 4096, 1);
    session.max_limb_offset = 40_000;
    let (responder, _) =
        Responder::start(session.clone(), &rows, offsets.clone(), &mut rng).expect("start");
    let requester_ids = ids(&["secret-customer".into()]);
    let (requester, hello) = Requester::start(session, &requester_ids, &mut rng).expect("start");
    let printed = format!(
        "{rows:?} {offsets:?} {responder:?} {requester:?} {hello:?} {:?}",
        super::super::elgamal::SecretShare::random(&mut rng)
    );
    for secret in ["secret", "987654", "31337"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}
