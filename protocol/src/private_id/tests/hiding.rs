//! Membership hiding: a party's view does not depend on whether a given id
//! of its own is in the other's set, for a fixed intersection size.
//!
//! Two worlds differ only in *which* of one party's ids the other holds
//! (t or t′), so the sizes and the intersection size, which both parties may
//! learn, are the same. With the same randomness in both worlds, the party's
//! output and every message it receives are checked to be byte for byte
//! equal, except the elements that are blinded under the other party's keys
//! (those differ in value, never in position or number). The one thing the
//! requester computes from its view, the positions of its shuffled list that
//! match, is checked to be uniform over the positions in both worlds.

use super::*;
use crate::group::{BlindingKey, decode_all};

/// The elements of two transcripts that differ, as (kind, position in the
/// stream of that kind); panics if the message kinds or lengths differ.
fn differing_elements(a: &[Message], b: &[Message]) -> Vec<(&'static str, usize)> {
    assert_eq!(a.len(), b.len(), "different numbers of messages");
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut differing = Vec::new();
    for (m, n) in a.iter().zip(b) {
        assert_eq!(m.kind(), n.kind());
        assert_eq!(m.elements().len(), n.elements().len(), "{}", m.kind());
        if m.elements().is_empty() {
            assert_eq!(m, n, "counts differ");
        }
        let offset = seen.entry(m.kind()).or_default();
        for (i, (p, q)) in m.elements().iter().zip(n.elements()).enumerate() {
            if p != q {
                differing.push((m.kind(), *offset + i));
            }
        }
        *offset += m.elements().len();
    }
    differing
}

/// X = 8 ids; the responder holds 5 ids of its own and one of X: t = x2
/// in world A, t′ = x5 in world B, at the same place in its set.
fn requester_worlds() -> (IdSet, IdSet, IdSet) {
    let x = ids(0..8, "x");
    let world = |t: &str| -> IdSet {
        (0..5)
            .map(|i| format!("z{i}"))
            .chain(std::iter::once(t.to_string()))
            .collect()
    };
    (x, world("x2"), world("x5"))
}

#[test]
fn requester_view_is_the_same_whichever_of_its_ids_is_common() {
    let (x, y_a, y_b) = requester_worlds();
    let a = run_with(&x, &y_a, 3, (11, 12), |m| vec![m]).expect("world A");
    let b = run_with(&x, &y_b, 3, (11, 12), |m| vec![m]).expect("world B");

    // The worlds really differ: the responder's last record shares a row
    // with x2 in A and with x5 in B.
    let row_of =
        |out: &Outcome, set: &IdSet, id: &str| rows_by_id(set, &out.requester)[id.as_bytes()];
    assert_eq!(a.responder.rows()[5], row_of(&a, &x, "x2"));
    assert_eq!(b.responder.rows()[5], row_of(&b, &x, "x5"));

    // The requester's output is identical...
    assert_eq!(a.requester, b.requester);
    // ...and of all it receives only H(t)^b vs H(t′)^b differs: one element
    // of the responder's blinded list, at the same position.
    let differing = differing_elements(&a.transcript.to_requester, &b.transcript.to_requester);
    assert_eq!(differing.len(), 1, "{differing:?}");
    assert_eq!(differing[0].0, "ResponderBlinded");
}

#[test]
fn responder_view_is_the_same_whichever_of_its_ids_is_common() {
    let y = ids(0..8, "y");
    let world = |t: &str| -> IdSet {
        (0..6)
            .map(|i| format!("w{i}"))
            .chain(std::iter::once(t.to_string()))
            .collect()
    };
    let (x_a, x_b) = (world("y1"), world("y6"));
    let a = run_with(&x_a, &y, 2, (21, 22), |m| vec![m]).expect("world A");
    let b = run_with(&x_b, &y, 2, (21, 22), |m| vec![m]).expect("world B");
    assert_eq!(
        a.requester.rows()[6],
        rows_by_id(&y, &a.responder)[&b"y1"[..]]
    );
    assert_eq!(
        b.requester.rows()[6],
        rows_by_id(&y, &b.responder)[&b"y6"[..]]
    );

    assert_eq!(a.responder, b.responder);
    // H(t)^a vs H(t′)^a in the requester's blinded list, and H(t′)^ab vs
    // H(t)^ab among the responder-only elements: values under the
    // requester's key, at the same positions.
    let differing = differing_elements(&a.transcript.to_responder, &b.transcript.to_responder);
    let kinds: Vec<&str> = differing.iter().map(|d| d.0).collect();
    assert_eq!(
        kinds,
        ["RequesterBlinded", "ResponderOnly"],
        "{differing:?}"
    );
}

/// A curious requester, which knows its own match key, finds which
/// positions of the responder's shuffled list are in the intersection.
/// Over the responder's randomness that position must be uniform in both
/// worlds: if it depended on which id is common, the requester could tell.
#[test]
fn the_matched_position_is_uniform_in_both_worlds() {
    let (x, y_a, y_b) = requester_worlds();
    let requester_seed = 31;
    // `Requester::start` draws its match key first.
    let match_key = BlindingKey::random(&mut ChaCha20Rng::seed_from_u64(requester_seed));
    let runs = 160u64;
    for y in [&y_a, &y_b] {
        let mut counts = [0u64; 8];
        for responder_seed in 0..runs {
            let out =
                run_with(&x, y, 8, (requester_seed, responder_seed), |m| vec![m]).expect("run");
            let matched = matched_positions(&out.transcript, &match_key);
            assert_eq!(matched.len(), 1, "exactly one common id");
            counts[matched[0]] += 1;
        }
        // Pearson's statistic against uniform, 7 degrees of freedom:
        // P(χ² > 30) < 1e-4; an unshuffled list scores 160·7 = 1120.
        let expected = runs as f64 / 8.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 30.0, "positions {counts:?}, chi² {chi2}");
    }
}

/// Positions in the received `RequesterShuffled` list of elements that equal
/// some `a·H(y)^b`, computed from the transcript and the match key.
fn matched_positions(transcript: &Transcript, match_key: &BlindingKey) -> Vec<usize> {
    let of_kind = |kind: &str| -> Vec<[u8; 32]> {
        transcript
            .to_requester
            .iter()
            .filter(|m| m.kind() == kind)
            .flat_map(|m| m.elements().to_vec())
            .collect()
    };
    let responder_blinded = decode_all(&of_kind("ResponderBlinded"), 0).expect("valid");
    let responder_matchable: BTreeSet<[u8; 32]> = match_key
        .blind_batch(&responder_blinded)
        .into_iter()
        .collect();
    of_kind("RequesterShuffled")
        .iter()
        .enumerate()
        .filter(|(_, e)| responder_matchable.contains(*e))
        .map(|(i, _)| i)
        .collect()
}
