//! Criterion benchmarks of ECDH-PSI's hot paths: hashing to the group,
//! blinding (batched encoding against the naive per-point encoding, in one
//! run), canonical decoding, and whole in-memory runs of both parties.
//!
//! Run: `cargo bench --bench psi`.

use std::collections::{BTreeSet, VecDeque};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_protocol::ecdh_psi::{
    Message, Mode, Padding, PsiResult, Requester, RequesterState, Responder, ResponderState,
    Session,
};
use unseen_protocol::group::{BlindingKey, decode_point, hash_to_group};
use unseen_protocol::{IdSet, JobId, Progress};

const TAG: &[u8] = b"unseen/ecdh-psi/v\x00\x01/job/0123456789abcdef";

fn ids(range: std::ops::Range<u32>) -> IdSet {
    range.map(|i| format!("CN{i:010}")).collect()
}

/// Runs both parties in memory; returns the requester's intersection size.
fn run(mode: Mode, a: &IdSet, b: &IdSet, seed: u64) -> u64 {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let session = Session::new(JobId([7; 16]), mode, 1 << 24);
    let (requester, to_b) = Requester::start(session.clone(), a, &mut rng);
    let (responder, to_a) = Responder::start(session, b, &mut rng);
    let (mut to_b, mut to_a): (VecDeque<_>, VecDeque<_>) = (to_b.into(), to_a.into());
    let mut requester = Progress::Continue(RequesterState::from(requester));
    let mut responder = Progress::Continue(ResponderState::from(responder));
    loop {
        if let (Some(_), Progress::Continue(_)) = (to_b.front(), &responder) {
            let (Some(m), Progress::Continue(s)) = (to_b.pop_front(), responder) else {
                unreachable!("checked above")
            };
            let step = s.handle(m, &mut rng).expect("responder");
            to_a.extend(step.send);
            responder = step.next;
        } else if let (Some(_), Progress::Continue(_)) = (to_a.front(), &requester) {
            let (Some(m), Progress::Continue(s)) = (to_a.pop_front(), requester) else {
                unreachable!("checked above")
            };
            let step = s.handle(m).expect("requester");
            to_b.extend(step.send);
            requester = step.next;
        } else {
            break;
        }
    }
    match requester {
        Progress::Done(out) => match out.result {
            PsiResult::Members(m) => m.len() as u64,
            PsiResult::Cardinality(n) => n,
        },
        Progress::Continue(_) => panic!("requester did not finish"),
    }
}

fn primitives(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key = BlindingKey::random(&mut rng);
    let set = ids(0..4096);
    let points: Vec<_> = set.iter().map(|id| hash_to_group(TAG, id)).collect();

    let mut group = c.benchmark_group("primitives");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hash_to_group", |b| {
        b.iter(|| hash_to_group(black_box(TAG), black_box(b"CN0000012345")))
    });
    let encoded = points[0].compress().to_bytes();
    group.bench_function("decode_point", |b| {
        b.iter(|| decode_point(black_box(&encoded), 0))
    });
    group.finish();

    let mut group = c.benchmark_group("blind_4096");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("batch_encoding", |b| {
        b.iter(|| key.blind_batch(black_box(&points)))
    });
    group.bench_function("naive_per_point_encoding", |b| {
        b.iter(|| {
            points
                .iter()
                .map(|p| key.blind(p).compress().to_bytes())
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

fn whole_runs(c: &mut Criterion) {
    let mut group = c.benchmark_group("psi_in_memory");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (log_n, modes) in [
        (12u32, &[Mode::Membership, Mode::Cardinality][..]),
        (16, &[Mode::Cardinality][..]),
    ] {
        let n = 1u32 << log_n;
        // Half overlap: the responder's set starts halfway through ours.
        let a = ids(0..n);
        let b = ids(n / 2..n + n / 2);
        let truth = {
            let a: BTreeSet<_> = a.iter().collect();
            b.iter().filter(|id| a.contains(id)).count() as u64
        };
        group.throughput(Throughput::Elements(u64::from(n)));
        for &mode in modes {
            // Checked once outside the timing: a broken run must not be measured.
            assert_eq!(run(mode, &a, &b, 3), truth, "{mode:?} 2^{log_n}");
            group.bench_with_input(
                BenchmarkId::new(format!("{mode:?}"), format!("2^{log_n}")),
                &(),
                |bench, ()| bench.iter(|| run(mode, &a, &b, 3)),
            );
        }
    }
    group.finish();
}

/// The same whole run on one thread and on the default pool (all cores), in
/// one run, to measure what the `parallel` feature buys on this machine.
fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("psi_threads");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    let n = 1u32 << 14;
    let a = ids(0..n);
    let b = ids(n / 2..n + n / 2);
    group.throughput(Throughput::Elements(u64::from(n)));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        assert_eq!(
            pool.install(|| run(Mode::Cardinality, &a, &b, 3)),
            u64::from(n / 2)
        );
        group.bench_with_input(
            BenchmarkId::new("Cardinality/2^14", format!("{threads} threads")),
            &(),
            |bench, ()| bench.iter(|| pool.install(|| run(Mode::Cardinality, &a, &b, 3))),
        );
    }
    group.finish();
}

/// The responder's work for one job: its list, then the reply to a hello
/// with an empty set (so every dummy among the double-blinded elements is
/// built, and nothing else).
fn respond(ids: &IdSet, padding: Padding, commitment: [u8; 32]) -> usize {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut session = Session::new(JobId([7; 16]), Mode::Cardinality, 1 << 24);
    session.padding = padding;
    let (state, sent) = Responder::start(session, ids, &mut rng);
    let hello = Message::RequesterHello {
        set_size: 0,
        key_commitment: Some(commitment),
    };
    let step = ResponderState::from(state)
        .handle(hello, &mut rng)
        .expect("responder");
    sent.len() + step.send.len()
}

/// The responder's work for its noise dummies, at the extremes of the secret
/// noise. The time must not tell them apart, or a requester that times the
/// responder learns the noise.
///
/// `dummies_2048`: 2048 count dummies beside 256 ids, all matching against
/// none. `size_dummies_2048`: the same announced size of 2048, as 2048 real
/// ids against 1024 ids and 1024 size dummies.
fn dummy_timing(c: &mut Criterion) {
    const TOTAL: u64 = 2048;
    let commitment = BlindingKey::random(&mut ChaCha20Rng::seed_from_u64(5)).commitment();
    let mut group = c.benchmark_group("dummies_2048");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(TOTAL));
    let theirs = ids(0..256);
    for (name, matching) in [("all_matching", TOTAL), ("none_matching", 0)] {
        let padding = Padding::Responder {
            matching,
            total: TOTAL,
        };
        group.bench_function(name, |bench| {
            bench.iter(|| respond(&theirs, black_box(padding), commitment))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("size_dummies_2048");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(TOTAL));
    for (name, real, size_dummies) in [
        ("2048_ids", 2048, 0),
        ("1024_ids_1024_size_dummies", 1024, 1024),
    ] {
        let theirs = ids(0..real);
        let padding = Padding::ResponderWithSize {
            matching: 0,
            total: 0,
            size_dummies,
        };
        group.bench_function(name, |bench| {
            bench.iter(|| respond(&theirs, black_box(padding), commitment))
        });
    }
    group.finish();
}

criterion_group!(benches, primitives, whole_runs, threads, dummy_timing);
criterion_main!(benches);
