//! Private intersection-sum between two nodes in this process, over real
//! QUIC with mutual TLS: results against a plain join of the two CSV files,
//! the release rules, and every refusal before any protocol message.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use support::{PURPOSE, TestNode, general, run_isum};
use unseen::node::audit;
use unseen::node::grant::{self, GrantedProtocol, Quota, Usage};
use unseen::node::manifest::IsumRequest;
use unseen::node::policy::{DataPolicy, Grade};
use unseen::node::store::{Outcome, Role};

const REGIONS: [&str; 3] = ["north", "south", "east"];

fn policy(grade: Grade, k: u64) -> DataPolicy {
    DataPolicy {
        grade,
        min_group_size: k,
        ..general()
    }
}

fn sum(limbs: u8, categories: &[&str]) -> IsumRequest {
    IsumRequest {
        value_column: "amount".into(),
        category_column: (!categories.is_empty()).then(|| "region".into()),
        categories: categories.iter().map(ToString::to_string).collect(),
        value_limbs: limbs,
    }
}

/// The responder's file: `id,amount,region` for `(id, value, region)`.
fn rows(rows: impl IntoIterator<Item = (String, u64, &'static str)>) -> String {
    let mut text = String::from("id,amount,region\n");
    for (id, value, region) in rows {
        text.push_str(&format!("{id},{value},{region}\n"));
    }
    text
}

/// The requester's file: one id a line.
fn id_file(ids: &[String]) -> String {
    let mut text = String::from("id\n");
    for id in ids {
        text.push_str(&format!("{id}\n"));
    }
    text
}

/// The join in the clear, from the two files as written: the number of
/// the requester's distinct ids the responder holds, and per listed
/// category (all rows when none are listed) the count and sum of values.
fn plain_join(requester: &Path, responder: &Path, categories: &[&str]) -> (u64, Vec<(u64, u128)>) {
    let read = |path: &Path| std::fs::read_to_string(path).expect("read");
    let ours: BTreeSet<String> = read(requester)
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect();
    let mut theirs: BTreeMap<String, (u128, String)> = BTreeMap::new();
    for line in read(responder).lines().skip(1) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if !cells[0].is_empty() {
            let value = cells[1].parse::<u128>().expect("value");
            theirs
                .entry(cells[0].to_string())
                .or_insert((value, cells[2].to_string()));
        }
    }
    let mut groups = vec![(0u64, 0u128); categories.len().max(1)];
    let mut cardinality = 0;
    for (id, (value, region)) in &theirs {
        if !ours.contains(id) {
            continue;
        }
        cardinality += 1;
        let g = categories.iter().position(|c| c == region).unwrap_or(0);
        groups[g].0 += 1;
        groups[g].1 += value;
    }
    (cardinality, groups)
}

/// Two nodes; alice asks with `ids`, bob answers with `values`; both
/// grant each other intersection-sum on them.
fn pair(root: &Path, ids: &[String], values: &str, k: u64) -> (TestNode, TestNode) {
    let alice = TestNode::start_new(root, "alice");
    let bob = TestNode::start_new(root, "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset_text("customers", &id_file(ids), policy(Grade::General, k));
    bob.dataset_text("values", values, policy(Grade::General, k));
    let isum = |g: &mut grant::Grant| g.protocols = vec![GrantedProtocol::IntersectionSum];
    alice.grant("bob", "customers", isum);
    bob.grant("alice", "values", isum);
    (alice, bob)
}

fn usage(node: &TestNode, dataset: &str) -> Usage {
    node.store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.dataset == dataset)
        .map(|(_, usage)| usage)
        .expect("grant")
}

/// Checks a report against the plain join.
fn assert_matches(
    report: &unseen::node::jobs::isum::IsumReport,
    expected: &(u64, Vec<(u64, u128)>),
    k: u64,
) {
    assert_eq!(report.job.intersection_size, Some(expected.0), "{report:?}");
    assert_eq!(report.categories.len(), expected.1.len(), "{report:?}");
    for (got, &(count, total)) in report.categories.iter().zip(&expected.1) {
        if count >= k {
            assert_eq!(got.count, Some(count), "{got:?}");
            assert_eq!(got.sum, Some(total.to_string()), "{got:?}");
        } else {
            assert_eq!(
                (got.count, &got.sum),
                (None, &None),
                "withheld below k: {got:?}"
            );
        }
    }
}

/// Both nodes recorded `job` the same way, and their audit logs verify.
fn assert_recorded(alice: &TestNode, bob: &TestNode, job: &str, outcome: Outcome) {
    let (mine, theirs) = (alice.job(job), bob.job(job));
    assert_eq!((mine.role, theirs.role), (Role::Requester, Role::Responder));
    assert_eq!(
        (mine.outcome, theirs.outcome),
        (outcome, outcome),
        "{mine:?} {theirs:?}"
    );
    assert_eq!(mine.protocol, "intersection-sum");
    assert_eq!(mine.data_messages_sent, theirs.data_messages_received);
    assert_eq!(mine.data_messages_received, theirs.data_messages_sent);
    assert!(theirs.result.is_none(), "the responder learns no result");
    for node in [alice, bob] {
        audit::verify(
            node.store().audit_entries().expect("audit"),
            &node.cert(),
            None,
        )
        .unwrap_or_else(|e| panic!("{}'s audit log: {e}", node.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_match_a_plain_join_ungrouped_and_grouped() {
    let root = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (0..400)
        .map(|i| match i % 40 {
            0 => format!("  c{i} "),
            1 => String::new(),
            _ => format!("c{}", i % 370),
        })
        .collect();
    let mut values: Vec<(String, u64, &str)> = (250..700)
        .map(|i| {
            (
                format!("c{i}"),
                (i * 7919) % 70_000,
                REGIONS[i as usize % 3],
            )
        })
        .collect();
    // A row repeated whole counts once.
    values.push(values[3].clone());
    let k = 10;
    let (mut alice, mut bob) = pair(root.path(), &ids, &rows(values), k);
    let (ours, theirs) = (alice.dir.join("customers.csv"), bob.dir.join("values.csv"));

    let plain = plain_join(&ours, &theirs, &[]);
    assert!(plain.0 > 100, "the test data must overlap");
    let report = run_isum(&alice, "bob", "values", sum(2, &[]))
        .await
        .expect("ungrouped");
    assert_matches(&report, &plain, k);
    assert_eq!(report.job.peer_set_size, 450);
    assert!(
        plain.1[0].1 > u128::from(u16::MAX),
        "the sum spans both limbs"
    );
    assert_recorded(&alice, &bob, &report.job.job_id, Outcome::Completed);
    // Charged once on each side, for min(|X|, |Y|) of bob's rows.
    assert_eq!(usage(&bob, "values").jobs_total, 1);
    assert_eq!(usage(&bob, "values").rows, report.job.own_set_size.min(450));
    assert_eq!(usage(&alice, "customers").jobs_total, 1);

    // Grouped, with a listed category no row has: below k, withheld.
    let listed = ["north", "south", "east", "west"];
    let plain = plain_join(&ours, &theirs, &listed);
    assert_eq!(plain.1[3], (0, 0));
    let report = run_isum(&alice, "bob", "values", sum(3, &listed))
        .await
        .expect("grouped");
    assert_matches(&report, &plain, k);
    let names: Vec<_> = report
        .categories
        .iter()
        .map(|c| c.category.clone())
        .collect();
    assert_eq!(names, listed.map(|c| Some(c.to_string())));
    assert_recorded(&alice, &bob, &report.job.job_id, Outcome::Completed);
    let released = alice.job(&report.job.job_id).result.expect("released");
    assert!(
        released.contains("\"west\": withheld (below k = 10)"),
        "{released}"
    );
    assert_eq!(usage(&bob, "values").jobs_total, 2);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_whole_intersections_and_the_largest_values() {
    let root = tempfile::tempdir().expect("tempdir");
    let ids = support::ids(0..30);
    // k = 0: an empty intersection is released as such.
    let none = rows((100..130).map(|i| (format!("c{i}"), 5, "north")));
    let (mut alice, mut bob) = pair(root.path(), &ids, &none, 0);
    let (ours, theirs) = (alice.dir.join("customers.csv"), bob.dir.join("values.csv"));
    let report = run_isum(&alice, "bob", "values", sum(1, &[]))
        .await
        .expect("empty");
    assert_matches(&report, &plain_join(&ours, &theirs, &[]), 0);
    assert_eq!(report.job.intersection_size, Some(0));

    // Every id common, every value the largest 64-bit one: the sum passes
    // 2^64 and must still be exact.
    let all = rows((0..30).map(|i| (format!("c{i}"), u64::MAX, REGIONS[i as usize % 3])));
    bob.dataset_text("values", &all, policy(Grade::General, 0));
    for (limbs, categories) in [(4, &[][..]), (4, &REGIONS[..])] {
        let plain = plain_join(&ours, &theirs, categories);
        assert_eq!(plain.0, 30);
        let report = run_isum(&alice, "bob", "values", sum(limbs, categories))
            .await
            .expect("all common");
        assert_matches(&report, &plain, 0);
        assert_recorded(&alice, &bob, &report.job.job_id, Outcome::Completed);
    }
    // The largest value two limbs hold is accepted; one more is refused.
    let edge = rows((0..30).map(|i| (format!("c{i}"), u64::from(u32::MAX), "north")));
    bob.dataset_text("values", &edge, policy(Grade::General, 0));
    let report = run_isum(&alice, "bob", "values", sum(2, &[]))
        .await
        .expect("2^32 - 1");
    assert_matches(&report, &plain_join(&ours, &theirs, &[]), 0);
    let over = rows([(String::from("c1"), u64::from(u32::MAX) + 1, "north")]);
    bob.dataset_text("values", &over, policy(Grade::General, 0));
    let err = run_isum(&alice, "bob", "values", sum(2, &[]))
        .await
        .expect_err("2^32");
    assert!(
        err.contains("not a whole number from 0 to 4294967295"),
        "{err}"
    );
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// A job bob must refuse: `reason` reaches alice, bob's own record says
/// `detail`, no protocol message left either node, and neither grant is
/// charged.
async fn refused(
    alice: &TestNode,
    bob: &TestNode,
    dataset: &str,
    ask: IsumRequest,
    reason: &str,
    detail: &str,
) {
    let err = run_isum(alice, "bob", dataset, ask)
        .await
        .expect_err(reason);
    assert!(err.contains(reason), "alice was told: {err}");
    let theirs = bob.jobs().into_iter().last().expect("bob recorded the job");
    assert_eq!(theirs.outcome, Outcome::Refused);
    let why = theirs.detail.clone().unwrap_or_default();
    assert!(why.contains(detail), "bob recorded: {why}");
    let mine = alice.job(&theirs.id);
    assert_eq!(mine.outcome, Outcome::Refused, "{mine:?}");
    for record in [&mine, &theirs] {
        let data = (record.data_messages_sent, record.data_messages_received);
        assert_eq!(data, (0, 0), "{record:?}");
    }
    assert_eq!(usage(alice, "customers").jobs_total, 0, "refunded");
    for (g, usage) in bob.store().grants().expect("grants") {
        assert_eq!(usage.jobs_total, 0, "grant {} was charged", g.id);
    }
    assert_recorded(alice, bob, &theirs.id, Outcome::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_before_any_protocol_message() {
    let root = tempfile::tempdir().expect("tempdir");
    let ids = support::ids(0..40);
    let values = rows((0..40).map(|i| (format!("c{i}"), i, "north")));
    let (mut alice, mut bob) = pair(root.path(), &ids, &values, 10);
    let general = policy(Grade::General, 10);

    // No grant, and a grant for another protocol.
    bob.dataset_text("ungranted", &values, general.clone());
    refused(
        &alice,
        &bob,
        "ungranted",
        sum(2, &[]),
        "no live grant covers this job",
        "no grant",
    )
    .await;
    bob.dataset_text("psi-only", &values, general.clone());
    bob.grant("alice", "psi-only", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa]
    });
    let reason = "the grant does not cover this protocol";
    refused(
        &alice,
        &bob,
        "psi-only",
        sum(2, &[]),
        reason,
        "not intersection-sum",
    )
    .await;

    // Important data: `grant add` makes the grant only with a warning that
    // it covers this node's own requests; as the answering side it is
    // refused at admission.
    let important = policy(Grade::Important, 10);
    bob.dataset_text("important", &values, important.clone());
    let by_hand = bob.grant("alice", "important", |g| {
        g.protocols = vec![GrantedProtocol::IntersectionSum];
    });
    let (made, _) = bob
        .store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.id == by_hand)
        .expect("grant");
    let warnings = grant::check_new_grant(&made, &important).expect("made with a warning");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("can never run it") && w.contains("only lets this node ask")),
        "{warnings:?}"
    );
    let reason = "grading does not allow this protocol";
    refused(
        &alice,
        &bob,
        "important",
        sum(2, &[]),
        reason,
        "graded important",
    )
    .await;

    // A grant with a budget on general data: noise is not built.
    bob.dataset_text("noisy", &values, general.clone());
    bob.grant("alice", "noisy", |g| {
        g.protocols = vec![GrantedProtocol::IntersectionSum];
        g.quota = Quota {
            epsilon_per_job_micros: Some(500_000),
            epsilon_budget_micros: Some(5_000_000),
            ..g.quota.clone()
        };
    });
    let reason = "the data owner's grant is invalid for this job";
    refused(
        &alice,
        &bob,
        "noisy",
        sum(2, &[]),
        reason,
        "without --epsilon",
    )
    .await;

    // A column the file lacks, a value that is not an integer, and a
    // category the job does not list: refused with the reason, and bob's
    // operator gets the file and line.
    let mut ask = sum(2, &[]);
    ask.value_column = "amont".into();
    refused(
        &alice,
        &bob,
        "values",
        ask,
        "no value column \"amont\"",
        "values.csv",
    )
    .await;
    let decimal = format!("{values}c40,12.50,north\n");
    bob.dataset_text("values", &decimal, general.clone());
    let reason = "value column holds a value that is not a whole number";
    refused(
        &alice,
        &bob,
        "values",
        sum(2, &[]),
        reason,
        "values.csv: line 42",
    )
    .await;
    bob.dataset_text("values", &values, general);
    let reason = "holds a category the job does not list";
    refused(
        &alice,
        &bob,
        "values",
        sum(2, &["south"]),
        reason,
        "values.csv: line 2",
    )
    .await;

    // The same pair then runs the job.
    let report = run_isum(&alice, "bob", "values", sum(2, &["north"]))
        .await
        .expect("runs");
    assert_eq!(report.job.intersection_size, Some(40));
    assert_eq!(
        report.categories[0].sum,
        Some((0..40u64).sum::<u64>().to_string())
    );
    assert_eq!(PURPOSE, report.job.purpose);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}
