//! Time and bytes of a vertical statistics job between two parties and a
//! dealer, in one process, both ways: general Beaver triples, and inner
//! products of owner-masked vectors. `cargo run -p unseen-protocol
//! --release --example beaver_cost [rows] [categories]`.

use std::time::Instant;

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_protocol::beaver::vertical::{self, RowA, VerticalPlan, VerticalTotals};
use unseen_protocol::beaver::{BeaverMessage, Dealer, ExpectTriples, InnerDealer};
use unseen_protocol::sharing::{Addressed, PartyIndex, Roster, SumOutput};
use unseen_protocol::{Error, JobId, Progress, Step};

type Flight = Vec<(usize, Addressed<BeaverMessage<u128>>)>;

/// Runs the parties' messages to the end; returns what A opened and the
/// bytes of the second round.
fn drain<S>(
    mut states: Vec<Option<S>>,
    first_round: Flight,
    handle: impl Fn(
        S,
        PartyIndex,
        BeaverMessage<u128>,
    ) -> Result<Step<S, SumOutput<u128>, Addressed<BeaverMessage<u128>>>, Error>,
) -> (Vec<u128>, usize) {
    let mut opened = None;
    let mut round_two_bytes = 0;
    // First in, first out: each sender's messages in the order sent, as on
    // a stream.
    let mut queue: std::collections::VecDeque<_> = first_round.into();
    while let Some((from, m)) = queue.pop_front() {
        let state = states[m.to.0].take().expect("running");
        let step = handle(state, PartyIndex(from), m.message).expect("honest");
        round_two_bytes += step
            .send
            .iter()
            .map(|s| s.message.encode().len())
            .sum::<usize>();
        queue.extend(step.send.into_iter().map(|s| (m.to.0, s)));
        match step.next {
            Progress::Continue(s) => states[m.to.0] = Some(s),
            Progress::Done(SumOutput::Totals(t)) => opened = Some(t),
            Progress::Done(SumOutput::NotARecipient) => {}
        }
    }
    (opened.expect("A opened"), round_two_bytes)
}

fn bytes(flight: &Flight) -> usize {
    flight.iter().map(|(_, m)| m.message.encode().len()).sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let categories: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let job = JobId([1; 16]);
    let plan = VerticalPlan::new(rows, categories).expect("plan");
    let a: Vec<Option<RowA>> = (0..rows)
        .map(|_| {
            rng.gen_bool(0.7).then(|| RowA {
                value: rng.gen_range(-1_000_000..1_000_000),
                category: (categories > 0).then(|| rng.gen_range(0..categories)),
            })
        })
        .collect();
    let b: Vec<Option<i128>> = (0..rows)
        .map(|_| rng.gen_bool(0.7).then(|| rng.gen_range(0..100_000)))
        .collect();
    let roster = |me| Roster::new(2, PartyIndex(me), [PartyIndex(0)]).expect("roster");

    // General Beaver triples: every statistic's factors masked apart.
    let clock = Instant::now();
    let dealt = Dealer::deal::<u128, _>(job, 2, plan.products(), &mut rng).expect("deal");
    let deal_time = clock.elapsed();
    let dealer_bytes: Vec<usize> = dealt.iter().map(|m| m.message.encode().len()).collect();
    let clock = Instant::now();
    let vectors = [plan.vector_a(&a).expect("A"), plan.vector_b(&b).expect("B")];
    let mut states = Vec::new();
    let mut first_round = Vec::new();
    for (i, m) in dealt.into_iter().enumerate() {
        let triples = ExpectTriples::new(&roster(i), job, plan.products())
            .expect("count")
            .handle(m.message)
            .expect("triples");
        let step = vertical::start(roster(i), plan, &vectors[i], triples).expect("start");
        let Progress::Continue(state) = step.next else {
            unreachable!()
        };
        states.push(Some(state));
        first_round.extend(step.send.into_iter().map(|m| (i, m)));
    }
    let round_one_bytes = bytes(&first_round);
    let (opened, round_two_bytes) = drain(states, first_round, |s, f, m| s.handle(f, m));
    let general = VerticalTotals::from_opened(plan, &opened).expect("totals");
    let party_time = clock.elapsed();
    println!(
        "rows {rows}, categories {categories}, general triples: {} products; dealer {:.2?} and \
         {:?} bytes to A, B; parties (both, one process) {:.2?}; round 1 (masked) {} bytes, \
         round 2 (opening) {} bytes; common rows {}",
        plan.products(),
        deal_time,
        dealer_bytes,
        party_time,
        round_one_bytes,
        round_two_bytes,
        vertical::finish(&general, 2).count
    );

    // Inner products: each party's distinct factors masked once.
    let inner = plan.inner_plan().expect("inner plan");
    let clock = Instant::now();
    let dealt = InnerDealer::deal::<u128, _>(job, &inner, &mut rng);
    let deal_time = clock.elapsed();
    let dealer_bytes: Vec<usize> = dealt.iter().map(|m| m.message.encode().len()).collect();
    let clock = Instant::now();
    let vectors = [
        plan.owned_vectors_a(&a).expect("A"),
        plan.owned_vectors_b(&b).expect("B"),
    ];
    let mut states = Vec::new();
    let mut first_round = Vec::new();
    for (i, m) in dealt.into_iter().enumerate() {
        let step =
            vertical::start_inner(job, roster(i), plan, &vectors[i], m.message).expect("start");
        let Progress::Continue(state) = step.next else {
            unreachable!()
        };
        states.push(Some(state));
        first_round.extend(step.send.into_iter().map(|m| (i, m)));
    }
    let round_one_bytes = bytes(&first_round);
    let (opened, round_two_bytes) = drain(states, first_round, |s, f, m| s.handle(f, m));
    let totals = VerticalTotals::from_opened(plan, &opened).expect("totals");
    let party_time = clock.elapsed();
    assert_eq!(totals, general, "both ways open the same sums");
    println!(
        "rows {rows}, categories {categories}, inner products: {} pairs; dealer {:.2?} and {:?} \
         bytes to A, B; parties (both, one process) {:.2?}; round 1 (masked vectors) {} bytes, \
         round 2 (opening) {} bytes; the same sums",
        inner.pairs().len(),
        deal_time,
        dealer_bytes,
        party_time,
        round_one_bytes,
        round_two_bytes,
    );
}
