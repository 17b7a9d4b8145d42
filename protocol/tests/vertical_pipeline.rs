//! Issue 8's pipeline in memory, through the crate's public API only: a
//! bank and a retailer match their customers with Private-ID (neither
//! learns which are common), lay their columns over the union, pad it to
//! the sum of their set sizes (so the dealer learns those sizes, not the
//! union's), and compute vertical statistics by inner products with a
//! dealer. Every opened sum equals the same sum over a plain join.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_protocol::beaver::vertical::{self, RowA, VerticalPlan, VerticalTotals};
use unseen_protocol::beaver::{ExpectInner, InnerDealer};
use unseen_protocol::private_id::{
    Matching, Requester, RequesterState, Responder, ResponderState, Session,
};
use unseen_protocol::sharing::{Addressed, PartyIndex, Roster, SumOutput};
use unseen_protocol::{IdSet, JobId, Progress};

const JOB: JobId = JobId([8; 16]);
const BANDS: usize = 4;

/// The bank's customers: id → (balance in cents, age band).
type Bank = BTreeMap<String, (i128, usize)>;
/// The retailer's: id → spend in cents.
type Shop = BTreeMap<String, i128>;

fn customers(rng: &mut ChaCha20Rng, bank: usize, shop: usize, common: usize) -> (Bank, Shop) {
    let bank_ids = (0..bank).map(|i| format!("c{i:05}"));
    // The shop's ids: `common` of the bank's, then its own.
    let shop_ids = (0..common)
        .map(|i| format!("c{i:05}"))
        .chain((common..shop).map(|i| format!("s{i:05}")));
    let bank = bank_ids
        .map(|id| {
            let balance = rng.gen_range(-5_000_000..50_000_000);
            (id, (balance, rng.gen_range(0..BANDS)))
        })
        .collect();
    let shop = shop_ids
        .map(|id| (id, rng.gen_range(0..2_000_000)))
        .collect();
    (bank, shop)
}

/// Runs Private-ID between the two in memory; each side's matching.
fn matched(x: &IdSet, y: &IdSet, rng: &mut ChaCha20Rng) -> (Matching, Matching) {
    let session = || Session::new(JOB, 1 << 20);
    let (requester, to_responder) = Requester::start(session(), x, rng);
    let (responder, to_requester) = Responder::start(session(), y, rng);
    let mut to_responder: VecDeque<_> = to_responder.into();
    let mut to_requester: VecDeque<_> = to_requester.into();
    let mut requester = Progress::Continue(RequesterState::from(requester));
    let mut responder = Progress::Continue(ResponderState::from(responder));
    while !(to_responder.is_empty() && to_requester.is_empty()) {
        if let Some(message) = to_responder.pop_front() {
            let Progress::Continue(state) = responder else {
                panic!("the responder was done")
            };
            let step = state.handle(message, rng).expect("an honest run");
            to_requester.extend(step.send);
            responder = step.next;
        }
        if let Some(message) = to_requester.pop_front() {
            let Progress::Continue(state) = requester else {
                panic!("the requester was done")
            };
            let step = state.handle(message, rng).expect("an honest run");
            to_responder.extend(step.send);
            requester = step.next;
        }
    }
    match (requester, responder) {
        (Progress::Done(a), Progress::Done(b)) => (a, b),
        _ => panic!("both finish"),
    }
}

/// The opened sums at the bank, which is the only recipient.
fn vertical_sums(bank: &Bank, shop: &Shop, rng: &mut ChaCha20Rng) -> VerticalTotals {
    let x: IdSet = bank.keys().collect();
    let y: IdSet = shop.keys().collect();
    let (at_bank, at_shop) = matched(&x, &y, rng);
    // Columns in each IdSet's order (the keys' order: BTreeMap, distinct).
    let balances: Vec<i128> = bank.values().map(|(b, _)| *b).collect();
    let bands: Vec<usize> = bank.values().map(|(_, band)| *band).collect();
    let spends: Vec<i128> = shop.values().copied().collect();
    let balance = at_bank.align(&balances).expect("one value a record");
    let band = at_bank.align(&bands).expect("one band a record");
    let spend = at_shop.align(&spends).expect("one value a record");
    // Padded with rows neither has, to |X| + |Y| rows: what the dealer may
    // learn. The union is never larger.
    let rows = bank.len() + shop.len();
    assert!(at_bank.union().len() <= rows);
    let rows_a: Vec<Option<RowA>> = (0..rows)
        .map(|r| {
            balance
                .present()
                .get(r)
                .copied()
                .unwrap_or(false)
                .then(|| RowA {
                    value: balance.values()[r],
                    category: Some(band.values()[r]),
                })
        })
        .collect();
    let rows_b: Vec<Option<i128>> = (0..rows)
        .map(|r| {
            spend
                .present()
                .get(r)
                .copied()
                .unwrap_or(false)
                .then(|| spend.values()[r])
        })
        .collect();
    let plan = VerticalPlan::new(rows, BANDS).expect("plan");
    let vectors = [
        plan.owned_vectors_a(&rows_a).expect("the bank's rows"),
        plan.owned_vectors_b(&rows_b).expect("the shop's rows"),
    ];
    let inner = plan.inner_plan().expect("inner plan");
    let mut states = Vec::new();
    let mut in_flight = VecDeque::new();
    for Addressed { to, message } in InnerDealer::deal::<u128, _>(JOB, &inner, rng) {
        let roster = Roster::new(2, to, [PartyIndex(0)]).expect("roster");
        let step =
            vertical::start_inner(JOB, roster, plan, &vectors[to.0], message).expect("start");
        let Progress::Continue(state) = step.next else {
            panic!("nobody is done at once")
        };
        states.push(Some(state));
        in_flight.extend(step.send.into_iter().map(|m| (to, m)));
    }
    let mut opened = None;
    while let Some((from, Addressed { to, message })) = in_flight.pop_front() {
        let state: ExpectInner<u128> = states[to.0].take().expect("running");
        let step = state.handle(from, message).expect("an honest run");
        in_flight.extend(step.send.into_iter().map(|m| (to, m)));
        match step.next {
            Progress::Continue(state) => states[to.0] = Some(state),
            Progress::Done(SumOutput::Totals(t)) => opened = Some(t),
            Progress::Done(SumOutput::NotARecipient) => assert_eq!(to.0, 1),
        }
    }
    VerticalTotals::from_opened(plan, &opened.expect("the bank opened")).expect("sums")
}

/// The same sums over a plain join of the two tables.
fn plain_sums(bank: &Bank, shop: &Shop) -> VerticalTotals {
    let join: Vec<(i128, usize, i128)> = bank
        .iter()
        .filter_map(|(id, &(balance, band))| Some((balance, band, *shop.get(id)?)))
        .collect();
    VerticalTotals {
        count: join.len() as i128,
        sum_x: join.iter().map(|j| j.0).sum(),
        sum_x2: join.iter().map(|j| j.0 * j.0).sum(),
        sum_y: join.iter().map(|j| j.2).sum(),
        sum_y2: join.iter().map(|j| j.2 * j.2).sum(),
        sum_xy: join.iter().map(|j| j.0 * j.2).sum(),
        groups: (0..BANDS)
            .map(|band| {
                let in_band = join.iter().filter(|j| j.1 == band);
                (in_band.clone().count() as i128, in_band.map(|j| j.2).sum())
            })
            .collect(),
    }
}

#[test]
fn matched_then_multiplied_sums_equal_the_plain_join() {
    let mut rng = ChaCha20Rng::seed_from_u64(88);
    for (bank, shop, common) in [(300, 200, 120), (50, 400, 50), (80, 60, 0), (100, 100, 100)] {
        let (bank, shop) = customers(&mut rng, bank, shop, common);
        let sums = vertical_sums(&bank, &shop, &mut rng);
        assert_eq!(sums, plain_sums(&bank, &shop), "{common} common");
        assert_eq!(sums.count, common as i128);
        // What the bank gets out of it: per band, the count and the mean
        // spend of the common customers, and the correlation.
        let result = vertical::finish(&sums, 2);
        assert_eq!(result.count, common as i128);
    }
}
