//! Inner products with a dealer: against plain inner products, the
//! vertical statistics through them against the general Beaver path, what
//! each party sees, and hostile messages.

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::views::{CHI2_255_P001, chi_square};
use super::{JOB, deliver, roster};
use crate::beaver::vertical::{self, RowA, VerticalPlan, VerticalTotals};
use crate::beaver::*;
use crate::sharing::{Addressed, PartyIndex, SumOutput};
use crate::{Error, Progress};

/// Both parties' states, and the messages in flight with their senders.
type Started<R> = (
    Vec<Option<ExpectInner<R>>>,
    Vec<(PartyIndex, Addressed<BeaverMessage<R>>)>,
);

/// Starts both parties on `own[0]` (A's vectors) and `own[1]` (B's), with
/// the dealer's messages.
fn started<R: MulRing>(
    plan: &InnerPlan,
    own: [&[R]; 2],
    recipients: &[usize],
    rng: &mut ChaCha20Rng,
) -> Started<R> {
    let mut states = Vec::new();
    let mut in_flight = Vec::new();
    for Addressed { to, message } in InnerDealer::deal::<R, _>(JOB, plan, rng) {
        let step = InnerProducts::start(
            JOB,
            roster(2, to.0, recipients),
            plan.clone(),
            own[to.0],
            message,
        )
        .expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("nobody is done before the other's vectors")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (to, m)));
    }
    (states, in_flight)
}

fn plain_inner(plan: &InnerPlan, a: &[u64], b: &[u64], rows: usize) -> Vec<u64> {
    let (wa, wb) = (a.len() / rows, b.len() / rows);
    plan.pairs()
        .iter()
        .map(|&(i, j)| {
            (0..rows).fold(0u64, |s, l| {
                s.wrapping_add(a[l * wa + i].wrapping_mul(b[l * wb + j]))
            })
        })
        .collect()
}

#[test]
fn inner_products_are_the_plain_ones_at_every_recipient() {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    for (rows, wa, wb) in [(1usize, 1usize, 1usize), (17, 4, 2), (300, 3, 3)] {
        let pairs: Vec<(usize, usize)> =
            (0..wa).flat_map(|i| (0..wb).map(move |j| (i, j))).collect();
        let plan = InnerPlan::new(rows, wa, wb, pairs).expect("plan");
        let a: Vec<u64> = (0..rows * wa).map(|_| rng.r#gen()).collect();
        let b: Vec<u64> = (0..rows * wb).map(|_| rng.r#gen()).collect();
        let expected = plain_inner(&plan, &a, &b, rows);
        for recipients in [&[0usize][..], &[1], &[0, 1]] {
            let (states, in_flight) = started(&plan, [&a, &b], recipients, &mut rng);
            let outputs = deliver(states, in_flight, ExpectInner::handle, &mut rng);
            for (party, output) in outputs.into_iter().enumerate() {
                match output {
                    SumOutput::Totals(t) => {
                        assert!(recipients.contains(&party));
                        assert_eq!(t, expected, "rows {rows}, party {party}");
                    }
                    SumOutput::NotARecipient => assert!(!recipients.contains(&party)),
                }
            }
        }
    }
}

/// Delivers the messages in flight as ordered streams do: each sender's in
/// the order sent, the senders interleaved at random.
fn deliver_in_order(
    mut states: Vec<Option<ExpectInner<u64>>>,
    in_flight: Vec<(PartyIndex, Addressed<BeaverMessage<u64>>)>,
    rng: &mut ChaCha20Rng,
) -> Vec<SumOutput<u64>> {
    let mut queues: Vec<std::collections::VecDeque<_>> = vec![Default::default(); 2];
    for (from, m) in in_flight {
        queues[from.0].push_back(m);
    }
    let mut outputs = vec![None, None];
    while queues.iter().any(|q| !q.is_empty()) {
        let from = if queues[0].is_empty() || (!queues[1].is_empty() && rng.gen_bool(0.5)) {
            1
        } else {
            0
        };
        let Addressed { to, message } = queues[from].pop_front().expect("a message");
        let state = states[to.0].take().expect("running");
        let step = state
            .handle(PartyIndex(from), message)
            .expect("an honest run");
        queues[to.0].extend(step.send);
        match step.next {
            Progress::Continue(state) => states[to.0] = Some(state),
            Progress::Done(output) => outputs[to.0] = Some(output),
        }
    }
    outputs.into_iter().map(|o| o.expect("finished")).collect()
}

#[test]
fn masked_rows_travel_in_bounded_chunks_and_no_rows_is_one_empty_message() {
    let mut rng = ChaCha20Rng::seed_from_u64(36);
    for rows in [0usize, 1, 40_000] {
        let plan = InnerPlan::new(rows, 2, 1, vec![(0, 0), (1, 0)]).expect("plan");
        let a: Vec<u64> = (0..rows * 2).map(|_| rng.r#gen()).collect();
        let b: Vec<u64> = (0..rows).map(|_| rng.r#gen()).collect();
        let (states, in_flight) = started(&plan, [&a, &b], &[0, 1], &mut rng);
        for (from, Addressed { message, .. }) in &in_flight {
            let BeaverMessage::MaskedVectors(v) = message else {
                panic!("masked vectors first")
            };
            let width = plan.width(*from);
            assert!(v.len() <= MAX_CHUNK_ELEMENTS && v.len().is_multiple_of(width));
        }
        let chunks = |party: usize| in_flight.iter().filter(|(f, _)| f.0 == party).count();
        // 80,000 elements of A in 32,768-element chunks; 40,000 of B.
        let expected = if rows == 40_000 { (3, 2) } else { (1, 1) };
        assert_eq!((chunks(0), chunks(1)), expected, "{rows} rows");
        let outputs = deliver_in_order(states, in_flight, &mut rng);
        let expected = if rows == 0 {
            vec![0, 0]
        } else {
            plain_inner(&plan, &a, &b, rows)
        };
        for output in outputs {
            let SumOutput::Totals(t) = output else {
                panic!("both are recipients")
            };
            assert_eq!(t, expected, "{rows} rows");
        }
    }
    // An empty chunk while rows are still due would never end the wait.
    let plan = InnerPlan::new(2, 1, 1, vec![(0, 0)]).expect("plan");
    let (mut states, _) = started(&plan, [&[1u64, 2], &[3, 4]], &[0], &mut rng);
    let a = states[0].take().expect("A");
    assert!(matches!(
        a.handle(PartyIndex(1), BeaverMessage::MaskedVectors(Vec::new())),
        Err(Error::WrongShareCount { .. })
    ));
}

#[test]
fn the_dealer_sends_three_seeds_and_one_element_a_pair_whatever_the_rows() {
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    for rows in [10usize, 10_000] {
        let plan = InnerPlan::new(rows, 4, 3, vec![(0, 0), (3, 2), (1, 1)]).expect("plan");
        let sent: usize = InnerDealer::deal::<u128, _>(JOB, &plan, &mut rng)
            .iter()
            .map(|m| m.message.encode().len())
            .sum();
        // Three 32-byte seeds, three 16-byte shares and a few bytes of tags.
        assert!(
            (3 * 32 + 3 * 16..3 * 32 + 3 * 16 + 8).contains(&sent),
            "{sent}"
        );
    }
}

/// A vertical job through inner products: the opened sums at A.
fn vertical_inner(
    plan: VerticalPlan,
    a: &[Option<RowA>],
    b: &[Option<i128>],
    seed: u64,
) -> VerticalTotals {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let inner = plan.inner_plan().expect("inner plan");
    let va = plan.owned_vectors_a(a).expect("A's rows");
    let vb = plan.owned_vectors_b(b).expect("B's rows");
    let mut states = Vec::new();
    let mut in_flight = Vec::new();
    for Addressed { to, message } in InnerDealer::deal::<u128, _>(JOB, &inner, &mut rng) {
        let own = if to.0 == 0 { &va } else { &vb };
        let step =
            vertical::start_inner(JOB, roster(2, to.0, &[0]), plan, own, message).expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("nobody is done at once")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (to, m)));
    }
    let outputs = deliver(states, in_flight, ExpectInner::handle, &mut rng);
    let SumOutput::Totals(opened) = &outputs[0] else {
        panic!("A is the recipient")
    };
    VerticalTotals::from_opened(plan, opened).expect("opened")
}

#[test]
fn vertical_statistics_through_inner_products_equal_the_plain_sums() {
    let mut rng = ChaCha20Rng::seed_from_u64(33);
    for (rows, categories) in [(1usize, 0usize), (200, 0), (300, 4)] {
        let plan = VerticalPlan::new(rows, categories).expect("plan");
        let a: Vec<Option<RowA>> = (0..rows)
            .map(|_| {
                rng.gen_bool(0.7).then(|| RowA {
                    value: rng.gen_range(-MAX_SCALED_TEST..=MAX_SCALED_TEST),
                    category: (categories > 0 && rng.gen_bool(0.9))
                        .then(|| rng.gen_range(0..categories)),
                })
            })
            .collect();
        let b: Vec<Option<i128>> = (0..rows)
            .map(|_| {
                rng.gen_bool(0.6)
                    .then(|| rng.gen_range(-MAX_SCALED_TEST..=MAX_SCALED_TEST))
            })
            .collect();
        let totals = vertical_inner(plan, &a, &b, rows as u64);
        // The sums in the clear, over the rows both have.
        let both: Vec<(RowA, i128)> = a
            .iter()
            .zip(&b)
            .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
            .collect();
        assert_eq!(totals.count, both.len() as i128);
        assert_eq!(
            totals.sum_x,
            both.iter().map(|(a, _)| a.value).sum::<i128>()
        );
        assert_eq!(
            totals.sum_x2,
            both.iter().map(|(a, _)| a.value * a.value).sum::<i128>()
        );
        assert_eq!(totals.sum_y, both.iter().map(|(_, y)| y).sum::<i128>());
        assert_eq!(totals.sum_y2, both.iter().map(|(_, y)| y * y).sum::<i128>());
        assert_eq!(
            totals.sum_xy,
            both.iter().map(|(a, y)| a.value * y).sum::<i128>()
        );
        for (j, &(count, sum)) in totals.groups.iter().enumerate() {
            let in_group = || both.iter().filter(|(a, _)| a.category == Some(j));
            assert_eq!(count, in_group().count() as i128, "category {j}");
            assert_eq!(
                sum,
                in_group().map(|(_, y)| y).sum::<i128>(),
                "category {j}"
            );
        }
    }
}

/// Values as large as the vertical plan takes (`MAX_SCALED`, 10^15).
const MAX_SCALED_TEST: i128 = 1_000_000_000_000_000;

#[test]
fn what_a_party_receives_is_uniform_whatever_its_peers_vectors() {
    // A sees B's vectors masked by streams it does not know; over many
    // runs, for B's vectors all zeros and all the largest value, every byte
    // of what A receives is uniform.
    const RUNS: usize = 1500;
    for value in [0u128, u128::MAX >> 1] {
        let mut rng = ChaCha20Rng::seed_from_u64(34 ^ value as u64);
        let plan = InnerPlan::new(2, 1, 2, vec![(0, 0), (0, 1)]).expect("plan");
        let mut counts = [0u64; 256];
        for _ in 0..RUNS {
            let (_, in_flight) = started(&plan, [&[1u128, 2], &[value; 4]], &[0], &mut rng);
            for (from, Addressed { message, .. }) in in_flight {
                let BeaverMessage::MaskedVectors(v) = message else {
                    panic!("masked vectors")
                };
                if from.0 == 1 {
                    v.iter()
                        .flat_map(|x| x.to_le_bytes())
                        .for_each(|b| counts[usize::from(b)] += 1);
                }
            }
        }
        let statistic = chi_square(&counts);
        assert!(
            statistic < CHI2_255_P001,
            "B's value {value}: chi-square {statistic:.1}"
        );
    }
}

#[test]
fn hostile_or_misaddressed_messages_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(35);
    let plan = InnerPlan::new(3, 2, 1, vec![(0, 0), (1, 0)]).expect("plan");
    let dealt = InnerDealer::deal::<u64, _>(JOB, &plan, &mut rng);
    // B's dealer message handed to A, and A's to B.
    for (me, wrong) in [(0usize, 1usize), (1, 0)] {
        let own = vec![1u64; plan.elements(PartyIndex(me))];
        let refused = InnerProducts::start(
            JOB,
            roster(2, me, &[0]),
            plan.clone(),
            &own,
            dealt[wrong].message.clone(),
        );
        assert!(
            matches!(refused, Err(Error::UnexpectedMessage { .. })),
            "{refused:?}"
        );
    }
    // B's betas cut short.
    let DealerMessage::InnerToB { masks_b, betas } = dealt[1].message.clone() else {
        panic!("B's message")
    };
    let short = DealerMessage::InnerToB {
        masks_b,
        betas: betas[..1].to_vec(),
    };
    let refused = InnerProducts::start(JOB, roster(2, 1, &[0]), plan.clone(), &[1u64; 3], short);
    assert!(
        matches!(refused, Err(Error::WrongDealerCount { .. })),
        "{refused:?}"
    );
    // A's own vectors of the wrong length.
    let refused = InnerProducts::start(
        JOB,
        roster(2, 0, &[0]),
        plan.clone(),
        &[1u64; 5],
        dealt[0].message.clone(),
    );
    assert!(
        matches!(refused, Err(Error::WrongShareCount { .. })),
        "{refused:?}"
    );
    // B's masked vectors of the wrong length, then twice, then from A itself.
    let start_a = || {
        let step = InnerProducts::start(
            JOB,
            roster(2, 0, &[0]),
            plan.clone(),
            &[1u64; 6],
            dealt[0].message.clone(),
        )
        .expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("A waits")
        };
        state
    };
    let long = BeaverMessage::MaskedVectors(vec![0u64; 4]);
    assert!(matches!(
        start_a().handle(PartyIndex(1), long),
        Err(Error::WrongShareCount { .. })
    ));
    let right = BeaverMessage::MaskedVectors(vec![0u64; 3]);
    assert!(matches!(
        start_a().handle(PartyIndex(0), right.clone()),
        Err(Error::WrongParty { .. })
    ));
    let step = start_a()
        .handle(PartyIndex(1), right.clone())
        .expect("B's vectors");
    let Progress::Continue(opening) = step.next else {
        panic!("A, a recipient, waits for B's shares")
    };
    assert!(matches!(
        opening.handle(PartyIndex(1), right),
        Err(Error::UnexpectedMessage { .. })
    ));
    let wrong_kind = BeaverMessage::Masked {
        d: vec![0u64; 3],
        e: vec![0u64; 3],
    };
    assert!(matches!(
        start_a().handle(PartyIndex(1), wrong_kind),
        Err(Error::UnexpectedMessage { .. })
    ));
}
