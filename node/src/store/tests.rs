use super::*;
use crate::clock::FixedClock;
use crate::config::NodePaths;
use crate::grant::{GrantedProtocol, Quota};
use crate::policy::Grade;
use proptest::prelude::*;
use time::macros::datetime;

struct Fixture {
    dir: tempfile::TempDir,
    identity: Arc<Identity>,
    clock: Arc<FixedClock>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let identity =
            Arc::new(Identity::create("node", &NodePaths::new(dir.path())).expect("identity"));
        Self {
            dir,
            identity,
            clock: Arc::new(FixedClock::new(datetime!(2026-06-01 0:00 UTC))),
        }
    }

    fn open(&self) -> Store {
        Store::open(
            &self.dir.path().join("node.db"),
            self.identity.clone(),
            self.clock.clone(),
        )
        .expect("open")
    }

    fn verify(&self, store: &Store) -> Result<audit::Verified, AuditError> {
        audit::verify(
            store.audit_entries().expect("entries"),
            self.identity.cert(),
            None,
        )
    }
}

fn job(id: &str, role: Role) -> JobRecord {
    JobRecord {
        id: id.into(),
        role,
        peer: "bob".into(),
        protocol: "ecdh-psi/membership".into(),
        local_dataset: "mine".into(),
        peer_dataset: "theirs".into(),
        local_set_size: Some(3),
        peer_set_size: None,
        bytes_sent: 0,
        bytes_received: 0,
        started_at: "2026-06-01T00:00:00Z".into(),
        duration_ms: None,
        outcome: Outcome::Running,
        detail: None,
        result: None,
        purpose: Some("testing".into()),
        grant_id: None,
        attempts: 1,
        data_messages_sent: 0,
        data_messages_received: 0,
        peer_fingerprint: "01".repeat(32),
        data_left: true,
    }
}

fn summary(name: &str) -> DatasetSummary {
    DatasetSummary {
        path: format!("/data/{name}.csv").into(),
        id_column: "id".into(),
        columns: vec!["id".into()],
        row_count: 100,
        empty_id_rows: 0,
        distinct_ids: 100,
        sha256: "00".repeat(32),
    }
}

fn policy() -> DataPolicy {
    DataPolicy {
        grade: Grade::General,
        personal: false,
        legal_basis: None,
        min_group_size: 10,
    }
}

fn grant(id: &str, peer: &str, dataset: &str) -> Grant {
    Grant {
        id: id.into(),
        peer: peer.into(),
        dataset: dataset.into(),
        protocols: vec![GrantedProtocol::PsiCa],
        purpose: "testing".into(),
        created_at: "2026-06-01T00:00:00Z".into(),
        expires_at: "2027-06-01T00:00:00Z".into(),
        revoked_at: None,
        quota: Quota {
            max_jobs: Some(10),
            period_secs: 86_400,
            ..Quota::default()
        },
    }
}

#[test]
fn peers_are_unique_by_name_and_fingerprint() {
    let f = Fixture::new();
    let store = f.open();
    let fp = Fingerprint([1; 32]);
    store.add_peer("bob", "127.0.0.1:1", fp).expect("add");
    assert!(matches!(
        store.add_peer("bob", "127.0.0.1:2", Fingerprint([2; 32])),
        Err(NodeError::Duplicate { kind: "peer", .. })
    ));
    assert!(matches!(
        store.add_peer("carol", "127.0.0.1:2", fp),
        Err(NodeError::Duplicate {
            kind: "fingerprint",
            ..
        })
    ));
    assert_eq!(
        store
            .peer_by_fingerprint(fp)
            .expect("q")
            .expect("found")
            .name,
        "bob"
    );
    store.remove_peer("bob").expect("remove");
    assert!(store.peer_by_fingerprint(fp).expect("q").is_none());
    assert!(matches!(
        store.remove_peer("bob"),
        Err(NodeError::NotFound { .. })
    ));
    // Two changes, two audit entries; refused changes leave none.
    assert_eq!(f.verify(&store).expect("verifies").entries, 2);
}

#[test]
fn jobs_survive_reopening_and_running_ones_become_interrupted() {
    let f = Fixture::new();
    {
        let store = f.open();
        store
            .write(|tx| {
                tx.insert_job(&job("a", Role::Requester))?;
                tx.insert_job(&job("b", Role::Requester))
            })
            .expect("insert");
        let end = JobEnd {
            outcome: Outcome::Completed,
            local_set_size: None,
            peer_set_size: Some(7),
            bytes_sent: 10,
            bytes_received: 20,
            data_messages_sent: 1,
            data_messages_received: 2,
            duration: Duration::from_millis(5),
            detail: None,
            result: Some("size 2".into()),
        };
        let event = AuditEvent::JobFailed {
            job_id: "b".into(),
            role: Role::Requester,
            reason: "test".into(),
            refunded: false,
        };
        store
            .finish_job("b", Role::Requester, &end, event, None)
            .expect("finish");
        assert!(
            store
                .write(|tx| tx.insert_job(&job("b", Role::Requester)))
                .is_err(),
            "replayed id"
        );
    }
    let store = f.open();
    assert_eq!(store.mark_interrupted().expect("mark"), 1);
    let jobs = store.jobs().expect("jobs");
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].outcome, Outcome::Interrupted);
    assert_eq!(jobs[1].outcome, Outcome::Completed);
    assert_eq!(jobs[1].local_set_size, Some(3));
    assert_eq!(jobs[1].peer_set_size, Some(7));
    f.verify(&store).expect("verifies");
}

#[test]
fn quota_usage_is_the_same_after_a_restart_and_a_job_is_charged_once() {
    let f = Fixture::new();
    let g = grant("g-1", "bob", "customers");
    let charge = Charge {
        rows: 40,
        epsilon_micros: 250_000,
        delta_nanos: 1,
    };
    let before = {
        let store = f.open();
        store
            .add_peer("bob", "127.0.0.1:1", Fingerprint([1; 32]))
            .expect("peer");
        store
            .put_dataset("customers", &summary("customers"), &policy())
            .expect("dataset");
        store.add_grant(&g).expect("grant");
        store
            .write(|tx| {
                tx.charge("job-1", &g.id, &charge)?;
                tx.charge("job-2", &g.id, &charge)
            })
            .expect("charge");
        // A retry of job-1 finds its charge and is not charged again; a
        // second insert of the same charge is refused by the ledger.
        assert_eq!(
            store.write(|tx| tx.charged_to("job-1")).expect("q"),
            Some(g.id.clone())
        );
        assert!(
            store
                .write(|tx| tx.charge("job-1", &g.id, &charge))
                .is_err()
        );
        store.write(|tx| tx.usage(&g)).expect("usage")
    };
    assert_eq!(before.rows, 80);
    assert_eq!(before.epsilon_micros, 500_000);
    assert_eq!(before.delta_nanos, 2);
    assert_eq!(before.jobs_in_period, 2);
    let after = f.open().write(|tx| tx.usage(&g)).expect("usage");
    assert_eq!(after, before);
    // A day later the jobs leave the period; the totals stay.
    f.clock
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    let later = f.open().write(|tx| tx.usage(&g)).expect("usage");
    assert_eq!(later.jobs_in_period, 0);
    assert_eq!(later.jobs_total, 2);
    assert_eq!(later.rows, 80);
}

/// A store with some history.
fn history(f: &Fixture) -> Store {
    let store = f.open();
    store
        .add_peer("bob", "127.0.0.1:1", Fingerprint([1; 32]))
        .expect("peer");
    store
        .put_dataset("customers", &summary("customers"), &policy())
        .expect("dataset");
    store
        .add_grant(&grant("g-1", "bob", "customers"))
        .expect("grant");
    store.revoke_grant("g-1").expect("revoke");
    store.remove_peer("bob").expect("remove");
    store
}

#[test]
fn an_edited_entry_is_detected() {
    let f = Fixture::new();
    let store = history(&f);
    f.verify(&store).expect("untouched log verifies");
    store
        .execute_raw(
            "UPDATE audit SET event = replace(event, '127.0.0.1:1', '10.9.9.9:1') WHERE seq = 1",
        )
        .expect("tamper");
    assert_eq!(f.verify(&store), Err(AuditError::Edited { seq: 1 }));
}

#[test]
fn a_removed_entry_is_detected() {
    let f = Fixture::new();
    let store = history(&f);
    store
        .execute_raw("DELETE FROM audit WHERE seq = 3")
        .expect("tamper");
    assert_eq!(
        f.verify(&store),
        Err(AuditError::Sequence {
            expected: 3,
            found: 4
        })
    );
}

#[test]
fn reordered_entries_are_detected() {
    let f = Fixture::new();
    let store = history(&f);
    store.execute_raw(&swap(2, 3)).expect("tamper");
    assert!(matches!(
        f.verify(&store),
        Err(AuditError::BrokenLink { seq: 2 })
    ));
}

#[test]
fn an_entry_appended_out_of_band_is_detected() {
    let f = Fixture::new();
    let store = history(&f);
    // The forger chains the entry correctly but signs it with another key.
    let other = Fixture::new();
    let entries = store.audit_entries().expect("entries");
    let last = entries.last().expect("some").clone().expect("readable");
    let forged = audit::seal(
        &other.identity,
        Some((last.seq, last.hash)),
        "2026-06-02T00:00:00Z".into(),
        AuditEvent::GrantRevoked {
            grant_id: "g-9".into(),
        },
    );
    store
        .execute_raw(&format!(
            "INSERT INTO audit (seq, time, prev_hash, event, hash, signature) VALUES ({}, '{}', '{}', '{}', '{}', '{}')",
            forged.seq,
            forged.time,
            forged.prev_hash,
            serde_json::to_string(&forged.event).expect("json"),
            forged.hash,
            forged.signature
        ))
        .expect("append");
    assert!(matches!(
        f.verify(&store),
        Err(AuditError::Unsigned { seq: 6, .. })
    ));
}

#[test]
fn truncation_is_detected_against_a_recorded_head() {
    let f = Fixture::new();
    let store = history(&f);
    let head = f.verify(&store).expect("verifies").head;
    store
        .execute_raw("DELETE FROM audit WHERE seq = 5")
        .expect("truncate");
    let entries = store.audit_entries().expect("entries");
    assert!(matches!(
        audit::verify(entries, f.identity.cert(), Some(&head)),
        Err(AuditError::Truncated { last: 4, .. })
    ));
}

fn swap(a: u64, b: u64) -> String {
    format!(
        "UPDATE audit SET seq = -1 WHERE seq = {a};
         UPDATE audit SET seq = {a} WHERE seq = {b};
         UPDATE audit SET seq = {b} WHERE seq = -1;"
    )
}

#[derive(Debug, Clone)]
enum Op {
    AddPeer(u8),
    RemovePeer(u8),
    Dataset(u8),
    Grant(u8, u8),
    Revoke(u8),
    Started,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4).prop_map(Op::AddPeer),
        (0u8..4).prop_map(Op::RemovePeer),
        (0u8..3).prop_map(Op::Dataset),
        (0u8..4, 0u8..3).prop_map(|(p, d)| Op::Grant(p, d)),
        (0u8..6).prop_map(Op::Revoke),
        Just(Op::Started),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    EditEvent,
    EditTime,
    Delete,
    SwapWithNext,
    DuplicateLast,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_chain_verifies_after_any_operations_and_fails_after_any_tampering(
        ops in proptest::collection::vec(op(), 1..25),
        tamper in prop_oneof![
            Just(Tamper::EditEvent),
            Just(Tamper::EditTime),
            Just(Tamper::Delete),
            Just(Tamper::SwapWithNext),
            Just(Tamper::DuplicateLast),
        ],
        pick in any::<prop::sample::Index>(),
    ) {
        let f = Fixture::new();
        let store = f.open();
        let mut grants = 0u8;
        for op in ops {
            // Refused operations (duplicates, unknown names) are part of
            // the sequence too: they must leave the log valid.
            let _ = match op {
                Op::AddPeer(p) => store.add_peer(&format!("p{p}"), "127.0.0.1:1", Fingerprint([p; 32])).map(drop),
                Op::RemovePeer(p) => store.remove_peer(&format!("p{p}")),
                Op::Dataset(d) => store.put_dataset(&format!("d{d}"), &summary("d"), &policy()).map(drop),
                Op::Grant(p, d) => {
                    grants += 1;
                    store.add_grant(&grant(&format!("g{grants}"), &format!("p{p}"), &format!("d{d}")))
                }
                Op::Revoke(g) => store.revoke_grant(&format!("g{g}")),
                Op::Started => store.audit(AuditEvent::NodeStarted { name: "n".into(), fingerprint: "f".into() }),
            };
        }
        store.audit(AuditEvent::NodeStarted { name: "n".into(), fingerprint: "f".into() }).expect("audit");
        let verified = f.verify(&store).expect("an untampered log verifies");
        let n = verified.entries;
        let seq = pick.index(n as usize) as u64 + 1;
        let sql = match tamper {
            // Replace the event with another well-formed one.
            Tamper::EditEvent => format!(
                "UPDATE audit SET event = '{{\"event\":\"grant_revoked\",\"grant_id\":\"g-forged\"}}' WHERE seq = {seq}"
            ),
            Tamper::EditTime => format!("UPDATE audit SET time = '1999-01-01T00:00:00Z' WHERE seq = {seq}"),
            Tamper::Delete if seq < n => format!("DELETE FROM audit WHERE seq = {seq}"),
            // Deleting the last entry is truncation: see the head test.
            Tamper::Delete => format!("UPDATE audit SET hash = '{}' WHERE seq = {seq}", "0".repeat(64)),
            Tamper::SwapWithNext if seq < n => swap(seq, seq + 1),
            Tamper::SwapWithNext | Tamper::DuplicateLast => format!(
                "INSERT INTO audit (seq, time, prev_hash, event, hash, signature)
                 SELECT seq + 1, time, hash, event, hash, signature FROM audit WHERE seq = {n}"
            ),
        };
        store.execute_raw(&sql).expect("tamper");
        prop_assert!(f.verify(&store).is_err(), "tampering with {tamper:?} at {seq} of {n} went unnoticed");
    }
}
