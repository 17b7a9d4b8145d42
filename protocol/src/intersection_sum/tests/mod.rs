//! Both parties in memory, against a plain join computed in the clear.

mod hostile;
mod privacy;
mod timing;

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;
use crate::{Error, IdSet, JobId, Progress};

/// One table for every test: 2^10 baby steps keeps it quick to build,
/// and the bounds in these tests need at most a few thousand giant steps.
fn table() -> &'static DlogTable {
    static TABLE: OnceLock<DlogTable> = OnceLock::new();
    TABLE.get_or_init(|| DlogTable::new(10).expect("table"))
}

fn layout(categories: u16, value_limbs: u8) -> Layout {
    Layout {
        categories,
        value_limbs,
    }
}

fn session(layout: Layout, chunk_points: usize, seed: u64) -> Session {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5e55);
    Session {
        chunk_points,
        ..Session::new(JobId::random(&mut rng), layout, 1 << 16)
    }
}

/// A responder row, in the clear.
type Row = (String, u64, u16);

fn valued(rows: &[Row]) -> ValuedIds {
    ValuedIds::new(rows.iter().map(|(id, v, c)| (id.as_bytes(), *v, *c))).expect("rows")
}

fn ids(ids: &[String]) -> IdSet {
    ids.iter().collect()
}

/// Runs a whole protocol, passing every message through `tamper`, which
/// may drop, change, repeat or add messages.
fn run_tampered(
    session: Session,
    requester_ids: &IdSet,
    rows: &ValuedIds,
    offsets: LimbOffsets,
    seed: u64,
    mut tamper: impl FnMut(Message) -> Vec<Message>,
) -> Result<(IsumOutput, ResponderOutput), Error> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (requester, to_responder) =
        Requester::start(session.clone(), requester_ids, &mut rng).expect("requester input");
    let (responder, to_requester) =
        Responder::start(session, rows, offsets, &mut rng).expect("responder input");
    let mut to_responder: VecDeque<_> = to_responder.into_iter().flat_map(&mut tamper).collect();
    let mut to_requester: VecDeque<_> = to_requester.into_iter().flat_map(&mut tamper).collect();
    let mut requester = Progress::Continue(RequesterState::from(requester));
    let mut responder = Progress::Continue(ResponderState::from(responder));
    loop {
        if let Some(message) = to_responder.pop_front() {
            let Progress::Continue(state) = responder else {
                panic!("responder got {message:?} after finishing");
            };
            let step = state.handle(message, &mut rng)?;
            to_requester.extend(step.send.into_iter().flat_map(&mut tamper));
            responder = step.next;
        } else if let Some(message) = to_requester.pop_front() {
            let Progress::Continue(state) = requester else {
                panic!("requester got {message:?} after finishing");
            };
            let step = state.handle(message, &mut rng, table())?;
            to_responder.extend(step.send.into_iter().flat_map(&mut tamper));
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
    session: Session,
    requester_ids: &[String],
    rows: &[Row],
    seed: u64,
) -> Result<(IsumOutput, ResponderOutput), Error> {
    run_tampered(
        session,
        &ids(requester_ids),
        &valued(rows),
        LimbOffsets::none(),
        seed,
        |m| vec![m],
    )
}

/// The independent answer: a join in the clear, summed per category.
fn plain_join(requester_ids: &[String], rows: &[Row], categories: u16) -> IsumOutput {
    let wanted: std::collections::HashSet<&String> = requester_ids.iter().collect();
    let mut per_category = vec![CategorySum { count: 0, sum: 0 }; usize::from(categories)];
    for (id, value, category) in rows {
        if wanted.contains(id) {
            let entry = &mut per_category[usize::from(*category)];
            entry.count += 1;
            entry.sum += u128::from(*value);
        }
    }
    IsumOutput {
        peer_set_size: rows.len() as u64,
        cardinality: per_category.iter().map(|c| c.count).sum(),
        categories: per_category,
    }
}

fn check_against_plain(session: Session, requester_ids: &[String], rows: &[Row], seed: u64) {
    let expected = plain_join(requester_ids, rows, session.layout.categories);
    let (out, resp) = run(session, requester_ids, rows, seed).expect("protocol");
    assert_eq!(out, expected);
    assert_eq!(resp.peer_set_size, requester_ids.len() as u64);
}

fn names(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Rows `id{i}` for `i` in `range`, with pseudo-random values below `max`
/// and categories below `categories`.
fn random_rows(range: std::ops::Range<u32>, max: u64, categories: u16, seed: u64) -> Vec<Row> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    range
        .map(|i| {
            let value = match max.checked_add(1) {
                Some(modulus) => rng.next_u64() % modulus,
                None => rng.next_u64(),
            };
            let category = (rng.next_u32() % u32::from(categories)) as u16;
            (format!("id{i}"), value, category)
        })
        .collect()
}

#[test]
fn ungrouped_sums_match_a_plain_join() {
    for (value_limbs, seed) in [(1u8, 1u64), (2, 2), (3, 3), (4, 4)] {
        let layout = layout(1, value_limbs);
        let rows = random_rows(0..40, layout.max_value(), 1, seed);
        // 25 of the requester's 45 ids are rows; chunks of 7 points split
        // every list into several messages.
        let requester = names("id", 15..60);
        check_against_plain(session(layout, 7, seed), &requester, &rows, seed);
    }
}

#[test]
fn grouped_sums_and_counts_match_a_plain_join() {
    for (categories, value_limbs, seed) in [(2u16, 1u8, 11u64), (5, 2, 12), (16, 1, 13)] {
        let layout = layout(categories, value_limbs);
        let rows = random_rows(0..30, layout.max_value(), categories, seed);
        let requester = names("id", 10..50);
        check_against_plain(session(layout, 64, seed), &requester, &rows, seed);
    }
}

#[test]
fn a_category_without_matches_sums_to_zero() {
    let rows: Vec<Row> = vec![("a".into(), 5, 0), ("b".into(), 7, 2), ("c".into(), 9, 1)];
    let requester: Vec<String> = vec!["a".into(), "b".into(), "z".into()];
    let (out, _) = run(session(layout(3, 1), 4096, 5), &requester, &rows, 5).expect("run");
    assert_eq!(
        out.categories,
        vec![
            CategorySum { count: 1, sum: 5 },
            CategorySum { count: 0, sum: 0 },
            CategorySum { count: 1, sum: 7 },
        ]
    );
    assert_eq!(out, plain_join(&requester, &rows, 3));
}

#[test]
fn empty_sets_and_empty_intersections() {
    let rows = random_rows(0..10, 1000, 2, 21);
    let cases: [(Vec<String>, &[Row]); 4] = [
        (names("other", 0..8), &rows),
        (Vec::new(), &rows),
        (names("id", 0..10), &[]),
        (Vec::new(), &[]),
    ];
    for (seed, (requester, rows)) in (22..).zip(cases) {
        for categories in [1, 2] {
            let layout = layout(categories, 1);
            let rows: Vec<Row> = rows
                .iter()
                .map(|(i, v, c)| (i.clone(), *v, c % categories))
                .collect();
            let expected = plain_join(&requester, &rows, categories);
            assert_eq!(expected.cardinality, 0);
            let (out, resp) =
                run(session(layout, 5, seed), &requester, &rows, seed).expect("protocol");
            assert_eq!(out, expected);
            assert_eq!(resp.peer_set_size, requester.len() as u64);
        }
    }
}

#[test]
fn all_ids_common() {
    let rows = random_rows(0..50, 65_535, 3, 31);
    let requester = names("id", 0..50);
    let expected = plain_join(&requester, &rows, 3);
    assert_eq!(expected.cardinality, 50);
    let (out, _) = run(session(layout(3, 1), 100, 31), &requester, &rows, 31).expect("run");
    assert_eq!(out, expected);
}

/// Every matched value at the largest the layout allows: each limb sum is
/// `count · (2^16 − 1)`, exactly the bound the requester searches to.
#[test]
fn largest_values_reach_the_search_bound_exactly() {
    for (categories, value_limbs) in [(1u16, 1u8), (1, 4), (2, 2)] {
        let layout = layout(categories, value_limbs);
        let max = layout.max_value();
        let rows: Vec<Row> = (0..30)
            .map(|i| (format!("id{i}"), max, (i % u32::from(categories)) as u16))
            .collect();
        let requester = names("id", 0..30);
        let (out, _) = run(session(layout, 4096, 41), &requester, &rows, 41).expect("run");
        assert_eq!(out, plain_join(&requester, &rows, categories));
        let per_category = 30 / u128::from(categories);
        assert_eq!(out.categories[0].sum, per_category * u128::from(max));
    }
}

#[test]
fn zero_values_sum_to_zero_but_are_counted() {
    let rows: Vec<Row> = (0..12)
        .map(|i| (format!("id{i}"), 0, (i % 2) as u16))
        .collect();
    let requester = names("id", 4..20);
    let (out, _) = run(session(layout(2, 2), 4096, 51), &requester, &rows, 51).expect("run");
    assert_eq!(out, plain_join(&requester, &rows, 2));
    assert_eq!(out.cardinality, 8);
}

#[test]
fn duplicate_requester_ids_count_once_and_duplicate_rows_are_refused() {
    // The requester's IdSet drops repeats, so a repeat cannot count twice.
    let requester: Vec<String> = ["id1", "id1", "id2", "id2", "id9"]
        .map(String::from)
        .to_vec();
    let rows = random_rows(0..5, 1000, 1, 61);
    let (out, resp) = run(session(layout(1, 1), 4096, 61), &requester, &rows, 61).expect("run");
    assert_eq!(out, plain_join(&["id1".into(), "id2".into()], &rows, 1));
    assert_eq!(resp.peer_set_size, 3);
    // Two values for one id: which counts is ambiguous, so it is refused.
    let repeated = ValuedIds::new([("a", 1, 0), ("b", 2, 0), ("a", 3, 0)]);
    assert_eq!(repeated.err(), Some(InputError::DuplicateId { row: 2 }));
}

#[test]
fn offsets_are_added_to_each_slot_sum() {
    let layout = layout(2, 2);
    let rows = random_rows(0..20, layout.max_value(), 2, 71);
    let requester = names("id", 5..25);
    let expected = plain_join(&requester, &rows, 2);
    // Slots: per category the count, then limbs low and high.
    let offsets = [3u64, 0, 5, 0, 1000, 2];
    let mut session = session(layout, 4096, 71);
    session.max_limb_offset = 1000;
    for offsets in [vec![0; 6], offsets.to_vec()] {
        let (out, _) = run_tampered(
            session.clone(),
            &ids(&requester),
            &valued(&rows),
            LimbOffsets::per_slot(offsets.clone()),
            71,
            |m| vec![m],
        )
        .expect("run");
        for (c, (got, want)) in out.categories.iter().zip(&expected.categories).enumerate() {
            let slot = &offsets[3 * c..3 * c + 3];
            assert_eq!(got.count, want.count + slot[0]);
            let noise = u128::from(slot[1]) + (u128::from(slot[2]) << 16);
            assert_eq!(got.sum, want.sum + noise);
        }
        assert_eq!(out.cardinality, expected.cardinality);
    }
}

#[test]
fn inputs_out_of_range_are_refused_before_any_message() {
    let mut rng = ChaCha20Rng::seed_from_u64(81);
    let s = session(layout(2, 1), 4096, 81);
    let start = |rows: &ValuedIds, offsets: LimbOffsets, s: Session| {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        Responder::start(s, rows, offsets, &mut rng)
            .map(|_| ())
            .err()
    };
    let over = valued(&[("a".into(), 1, 0), ("b".into(), 65_536, 1)]);
    assert_eq!(
        start(&over, LimbOffsets::none(), s.clone()),
        Some(InputError::ValueTooLarge {
            row: 1,
            max: 65_535
        })
    );
    let bad_category = valued(&[("a".into(), 1, 2)]);
    assert_eq!(
        start(&bad_category, LimbOffsets::none(), s.clone()),
        Some(InputError::CategoryOutOfRange {
            row: 0,
            category: 2,
            categories: 2
        })
    );
    let fine = valued(&[("a".into(), 65_535, 1)]);
    assert_eq!(
        start(&fine, LimbOffsets::per_slot(vec![0; 3]), s.clone()),
        Some(InputError::WrongOffsetCount {
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        start(&fine, LimbOffsets::per_slot(vec![0, 0, 1, 0]), s.clone()),
        Some(InputError::OffsetTooLarge { offset: 1 })
    );
    for (categories, value_limbs) in [(0, 1), (17, 1), (1, 0), (1, 5)] {
        let bad = Session {
            layout: layout(categories, value_limbs),
            ..s.clone()
        };
        let refused = Some(InputError::BadLayout {
            categories,
            value_limbs,
        });
        assert_eq!(start(&fine, LimbOffsets::none(), bad.clone()), refused);
        let requester = Requester::start(bad, &IdSet::default(), &mut rng);
        assert_eq!(requester.map(|_| ()).err(), refused);
    }
    let too_many = Session {
        max_peer_set_size: MAX_SET_SIZE + 1,
        ..s.clone()
    };
    assert_eq!(
        start(&fine, LimbOffsets::none(), too_many),
        Some(InputError::SetTooLarge {
            size: MAX_SET_SIZE + 1
        })
    );
    // An own set over the limit (2^24 ids are too many to build here).
    assert_eq!(
        s.check(MAX_SET_SIZE as usize + 1),
        Err(InputError::SetTooLarge {
            size: MAX_SET_SIZE + 1
        })
    );
    assert_eq!(s.check(MAX_SET_SIZE as usize), Ok(()));
    let loud = Session {
        max_limb_offset: MAX_LIMB_OFFSET + 1,
        ..s
    };
    assert_eq!(
        start(&fine, LimbOffsets::none(), loud),
        Some(InputError::OffsetTooLarge {
            offset: MAX_LIMB_OFFSET + 1
        })
    );
}

#[test]
fn layout_puts_each_limb_in_its_categorys_slots_only() {
    let grouped = layout(3, 2);
    let slots: Vec<u64> = grouped.plaintexts(0x0001_0002, 1).collect();
    assert_eq!(slots, vec![0, 0, 0, 1, 2, 1, 0, 0, 0]);
    let single = layout(1, 4);
    let slots: Vec<u64> = single.plaintexts(u64::MAX - 1, 0).collect();
    assert_eq!(slots, vec![0xfffe, 0xffff, 0xffff, 0xffff]);
    assert_eq!(single.max_value(), u64::MAX);
    assert_eq!(layout(1, 3).max_value(), (1 << 48) - 1);
}

#[test]
fn wire_messages_round_trip_and_are_canonical() {
    let row = EncryptedRow {
        blinded_id: [1; 32],
        ciphertexts: vec![EncodedCiphertext {
            c1: [2; 32],
            c2: [3; 32],
        }],
    };
    let messages = [
        Message::RequesterHello {
            set_size: 300,
            elgamal_key: [4; 32],
            key_proof: KeyProof {
                commitment: [6; 32],
                response: [7; 32],
            },
        },
        Message::ResponderRows(vec![row.clone(), row]),
        Message::PartialDecryptions(vec![[5; 32]]),
    ];
    for message in messages {
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes), Ok(message));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Message::decode(&trailing),
            Err(Error::Undecodable(_))
        ));
    }
    // 300 as an overlong varint: the same value, not the canonical bytes.
    let mut overlong = vec![0u8, 0xac, 0x82, 0x00];
    overlong.extend([4; 32]);
    assert!(matches!(
        Message::decode(&overlong),
        Err(Error::Undecodable(_))
    ));
    let huge = vec![0u8; Message::MAX_ENCODED_LEN + 1];
    assert!(matches!(Message::decode(&huge), Err(Error::Undecodable(_))));
    // A full chunk of rows fits the limit.
    let slots = 1;
    let rows = MAX_CHUNK_POINTS / (1 + 2 * slots);
    let full = Message::ResponderRows(vec![
        EncryptedRow {
            blinded_id: [9; 32],
            ciphertexts: vec![
                EncodedCiphertext {
                    c1: [9; 32],
                    c2: [9; 32]
                };
                slots
            ],
        };
        rows
    ]);
    assert!(full.encode().len() <= Message::MAX_ENCODED_LEN);
}

/// How the rows map to results is independent of how they are split.
#[test]
fn results_do_not_depend_on_chunking() {
    let rows = random_rows(0..60, 65_535, 4, 91);
    let requester = names("id", 20..90);
    let mut seen = HashMap::new();
    for chunk in [1, 9, 4096] {
        let (out, _) = run(session(layout(4, 1), chunk, 92), &requester, &rows, 92).expect("run");
        seen.insert(chunk, out);
    }
    let expected = plain_join(&requester, &rows, 4);
    assert!(seen.values().all(|out| *out == expected));
}
