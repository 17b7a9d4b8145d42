//! Timing of the parts, for the docs; ignored in ordinary runs.

use std::collections::VecDeque;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;

/// Timing of the parts (release build), for the docs:
/// `cargo test -p unseen-protocol --release -- --ignored isum_timing --nocapture`.
#[test]
#[ignore]
fn isum_timing() {
    let started = Instant::now();
    let table = DlogTable::new(DlogTable::RECOMMENDED_BITS).expect("table");
    println!("DlogTable::new(20): {:?}", started.elapsed());
    // The worst case: a limb sum at its bound with 2^24 matched rows.
    let bound = MAX_SET_SIZE * ((1 << LIMB_BITS) - 1);
    let point = curve25519_dalek::ristretto::RistrettoPoint::mul_base(
        &curve25519_dalek::scalar::Scalar::from(bound),
    );
    let started = Instant::now();
    assert_eq!(table.solve(&point, bound), Ok(bound));
    println!(
        "solve at bound 2^24·(2^16−1) ({} giant steps): {:?}",
        table.giant_steps(bound),
        started.elapsed()
    );
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    // A reference with a documented figure (docs/BENCHMARKS.md,
    // blind_4096/batch_encoding), to read the others against this machine.
    let key = crate::group::BlindingKey::random(&mut rng);
    let points: Vec<_> = (0..4096u32)
        .map(|i| crate::group::hash_to_group(b"timing", &i.to_be_bytes()))
        .collect();
    let started = Instant::now();
    key.blind_batch(&points);
    println!("reference: blind_batch of 4096: {:?}", started.elapsed());
    let joint = curve25519_dalek::ristretto::RistrettoPoint::mul_base(
        &curve25519_dalek::scalar::Scalar::from(12_345u64),
    );
    let encryptor = super::elgamal::Encryptor::new(&joint);
    let plaintexts: Vec<u64> = (0..4096).collect();
    let started = Instant::now();
    let encrypted = encryptor.encrypt_batch(&plaintexts, &mut rng);
    println!(
        "encrypt_batch of 4096: {:?} ({:?} per ciphertext)",
        started.elapsed(),
        started.elapsed() / 4096
    );
    let started = Instant::now();
    super::elgamal::decode_ciphertexts(&encrypted, 0).expect("decode");
    println!("decode 4096 ciphertexts: {:?}", started.elapsed());
    for (n, categories, value_limbs) in [(10_000u32, 1u16, 2u8), (1_000, 16, 4)] {
        time_run(n, layout(categories, value_limbs), &table);
    }
}

/// Times one whole run of `n` ids a side, half of them matching.
fn time_run(n: u32, layout: Layout, table: &DlogTable) {
    let (categories, value_limbs) = (layout.categories, layout.value_limbs);
    let rows = random_rows(0..n, layout.max_value(), categories, 7);
    let requester = names("id", n / 2..n + n / 2);
    let rows_v = valued(&rows);
    let set = ids(&requester);
    let started = Instant::now();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let session = session(layout, MAX_CHUNK_POINTS, 3);
    let (requester_state, to_responder) =
        Requester::start(session.clone(), &set, &mut rng).expect("start");
    let (responder_state, to_requester) =
        Responder::start(session, &rows_v, LimbOffsets::none(), &mut rng).expect("start");
    let mut bytes = 0usize;
    let mut req = Progress::Continue(RequesterState::from(requester_state));
    let mut resp = Progress::Continue(ResponderState::from(responder_state));
    let mut to_resp: VecDeque<Message> = to_responder.into();
    let mut to_req: VecDeque<Message> = to_requester.into();
    let (mut t_req, mut t_resp) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    while let Some(m) = to_resp.pop_front() {
        bytes += m.encode().len();
        let Progress::Continue(s) = resp else {
            panic!()
        };
        let t = Instant::now();
        let step = s.handle(m, &mut rng).expect("responder");
        t_resp += t.elapsed();
        resp = step.next;
        to_req.extend(step.send);
        while let Some(m) = to_req.pop_front() {
            bytes += m.encode().len();
            let Progress::Continue(s) = req else { panic!() };
            let t = Instant::now();
            let step = s.handle(m, &mut rng, table).expect("requester");
            t_req += t.elapsed();
            req = step.next;
            to_resp.extend(step.send);
        }
    }
    let Progress::Done(out) = req else {
        panic!("requester unfinished")
    };
    assert_eq!(out, plain_join(&requester, &rows, categories));
    println!(
        "|X| = |Y| = {n}, G = {categories}, L = {value_limbs}: total {:?} \
         (requester handling {t_req:?}, responder handling {t_resp:?}, starts the rest), \
         {bytes} bytes",
        started.elapsed()
    );
}
