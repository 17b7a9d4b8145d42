//! The acceptance boundary, end to end over QUIC: every refusal path, each
//! checked to send no data-bearing protocol message and to be in the audit
//! log; quotas across a restart; retries charged once; release rules; and
//! audit logs that verify with the nodes' certificates alone.

mod support;

use support::{Job, TestNode, general, ids, pair, run};
use unseen::node::audit::{self, AuditEvent};
use unseen::node::clock::rfc3339;
use unseen::node::grant::GrantedProtocol;
use unseen::node::policy::{DataPolicy, Grade, LegalBasis};
use unseen::node::store::Outcome;

/// The last job on `node`.
fn last_job(node: &TestNode) -> unseen::node::store::JobRecord {
    node.jobs().pop().expect("a job")
}

/// Asserts the refusal reached neither side's data: no protocol message was
/// sent or received by either node, both recorded the refusal, and the
/// deciding node's audit log has it.
fn assert_refused_without_data(requester: &TestNode, responder: &TestNode, decided_by: &TestNode) {
    let mine = last_job(requester);
    assert_eq!(mine.outcome, Outcome::Refused, "{mine:?}");
    assert_eq!(
        (mine.data_messages_sent, mine.data_messages_received),
        (0, 0)
    );
    if let Some(theirs) = responder.jobs().into_iter().find(|j| j.id == mine.id) {
        assert_eq!(theirs.outcome, Outcome::Refused, "{theirs:?}");
        assert_eq!(
            (theirs.data_messages_sent, theirs.data_messages_received),
            (0, 0)
        );
    }
    let refused = decided_by
        .store()
        .audit_entries()
        .expect("audit")
        .into_iter()
        .filter_map(Result::ok)
        .any(|e| matches!(&e.event, AuditEvent::JobRefused { job_id, .. } if *job_id == mine.id));
    assert!(
        refused,
        "{}'s audit log records the refusal of {}",
        decided_by.name, mine.id
    );
    for node in [requester, responder] {
        audit::verify(
            node.store().audit_entries().expect("audit"),
            &node.cert(),
            None,
        )
        .unwrap_or_else(|e| panic!("{}'s audit log: {e}", node.name));
    }
}

/// Sets up a pair, lets `configure_bob` change bob's side, runs one PSI-CA
/// (or PSI) job from alice and expects bob to refuse it with `reason`.
async fn refused_by_bob(psi: bool, reason: &str, configure_bob: impl FnOnce(&TestNode)) {
    let root = tempfile::tempdir().expect("tempdir");
    let set = ids(0..60);
    let alice = TestNode::start_new(root.path(), "alice");
    let bob = TestNode::start_new(root.path(), "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset("customers", &set, general());
    alice.grant("bob", "customers", |_| {});
    configure_bob(&bob);
    let job = if psi {
        Job::psi("bob")
    } else {
        Job::psi_ca("bob")
    };
    let err = run(&alice, job).await.expect_err("bob refuses");
    assert!(err.contains(reason), "expected {reason:?} in {err:?}");
    assert_refused_without_data(&alice, &bob, &bob);
    let mut nodes = (alice, bob);
    support::stop_all(&mut [&mut nodes.0, &mut nodes.1]).await;
}

fn bob_data(bob: &TestNode, policy: DataPolicy) {
    bob.dataset("customers", &ids(30..90), policy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_without_a_grant() {
    refused_by_bob(false, "no live grant covers this job", |bob| {
        bob_data(bob, general());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_after_the_grant_expired() {
    refused_by_bob(false, "no live grant covers this job", |bob| {
        bob_data(bob, general());
        bob.grant("alice", "customers", |g| {
            g.expires_at = rfc3339(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
        });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_after_the_grant_was_revoked() {
    refused_by_bob(false, "no live grant covers this job", |bob| {
        bob_data(bob, general());
        let id = bob.grant("alice", "customers", |_| {});
        bob.store().revoke_grant(&id).expect("revoke");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_for_another_purpose() {
    refused_by_bob(false, "does not cover this purpose", |bob| {
        bob_data(bob, general());
        bob.grant("alice", "customers", |g| {
            g.purpose = "credit scoring".into()
        });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_for_a_protocol_the_grant_does_not_name() {
    refused_by_bob(true, "does not cover this protocol", |bob| {
        bob_data(bob, general());
        bob.grant("alice", "customers", |g| {
            g.protocols = vec![unseen::node::grant::GrantedProtocol::PsiCa];
        });
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn important_data_is_refused_to_psi_but_serves_psi_ca() {
    refused_by_bob(true, "grading does not allow this protocol", |bob| {
        bob_data(
            bob,
            DataPolicy {
                grade: Grade::Important,
                ..general()
            },
        );
        bob.grant("alice", "customers", |_| {});
    })
    .await;
    // The same data answers an aggregate.
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..60), &ids(30..90));
    bob_data(
        &bob,
        DataPolicy {
            grade: Grade::Important,
            ..general()
        },
    );
    // Important data answers an aggregate only with noise (an exact count
    // would let a peer difference two jobs into a membership answer).
    let err = run(&alice, Job::psi_ca("bob"))
        .await
        .expect_err("an exact aggregate of important data");
    assert!(err.contains("only with noise"), "{err}");
    bob.grant("alice", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
        g.quota.epsilon_per_job_micros = Some(1_000_000);
        g.quota.epsilon_budget_micros = Some(2_000_000);
    });
    let report = run(&alice, Job::psi_ca("bob"))
        .await
        .expect("a noisy aggregate is allowed");
    assert!(report.noise.is_some(), "{report:?}");
    assert!(report.intersection_size.is_some());
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_data_is_never_used() {
    refused_by_bob(false, "grading does not allow this protocol", |bob| {
        bob_data(
            bob,
            DataPolicy {
                grade: Grade::Core,
                ..general()
            },
        );
        bob.grant("alice", "customers", |_| {});
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_without_a_legal_basis_is_refused() {
    refused_by_bob(false, "has not recorded a legal basis", |bob| {
        bob_data(
            bob,
            DataPolicy {
                personal: true,
                ..general()
            },
        );
        bob.grant("alice", "customers", |_| {});
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_set_below_k_is_refused_before_any_data() {
    refused_by_bob(false, "below the data owner's minimum group size", |bob| {
        bob_data(
            bob,
            DataPolicy {
                min_group_size: 61,
                ..general()
            },
        );
        bob.grant("alice", "customers", |_| {});
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requesters_own_rules_refuse_before_any_connection() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..60), &ids(30..90));
    alice.dataset(
        "customers",
        &ids(0..60),
        DataPolicy {
            grade: Grade::Core,
            ..general()
        },
    );
    let err = run(&alice, Job::psi_ca("bob")).await.expect_err("core");
    assert!(err.contains("core data is never used"), "{err}");
    assert!(bob.jobs().is_empty(), "nothing reached bob");
    assert_refused_without_data(&alice, &bob, &alice);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_over_fewer_than_k_records_is_suppressed() {
    let root = tempfile::tempdir().expect("tempdir");
    // 55 of 60 differ: the intersection has 5 records, under k = 10.
    let (mut alice, mut bob) = pair(root.path(), &ids(0..60), &ids(55..115));
    let out = root.path().join("out.csv");
    let report = run(
        &alice,
        support::Job {
            out: Some(out.clone()),
            ..Job::psi("bob")
        },
    )
    .await
    .expect("job completes");
    assert_eq!(report.intersection_size, None);
    assert!(report.suppressed.expect("suppressed").contains("k = 10"));
    assert!(!out.exists(), "nothing is written");
    let release = alice
        .store()
        .audit_entries()
        .expect("audit")
        .into_iter()
        .filter_map(Result::ok)
        .find_map(|e| match e.event {
            AuditEvent::JobFinished { release, .. } => Some(release),
            _ => None,
        })
        .expect("release recorded");
    assert!(release.value.is_none() && release.suppressed.is_some());
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_bind_and_stay_right_across_a_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let alice_ids = ids(0..60);
    let mut alice = TestNode::start_new(root.path(), "alice");
    let mut bob = TestNode::start_new(root.path(), "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset("customers", &alice_ids, general());
    alice.grant("bob", "customers", |_| {});
    bob.dataset("customers", &ids(30..90), general());
    let grant = bob.grant("alice", "customers", |g| {
        g.quota.max_jobs = Some(2);
        g.quota.max_rows = Some(1_000);
    });
    run(&alice, Job::psi_ca("bob")).await.expect("first job");

    // Bob restarts (on a new port); his ledger is on disk.
    bob.stop().await;
    bob.start();
    alice.register(&bob);
    let (_, usage) = bob
        .store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.id == grant)
        .expect("grant");
    assert_eq!((usage.jobs_in_period, usage.rows), (1, 60));

    run(&alice, Job::psi_ca("bob")).await.expect("second job");
    let err = run(&alice, Job::psi_ca("bob"))
        .await
        .expect_err("third job");
    assert!(err.contains("quota is exhausted"), "{err}");
    assert_refused_without_data(&alice, &bob, &bob);
    let (_, usage) = bob
        .store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.id == grant)
        .expect("grant");
    assert_eq!(
        (usage.jobs_in_period, usage.rows),
        (2, 120),
        "refusals are not charged"
    );
    // Alice's own grant gave back the charge of the job bob refused.
    let (_, alice_usage) = alice
        .store()
        .grants()
        .expect("grants")
        .pop()
        .expect("grant");
    assert_eq!(alice_usage.jobs_total, 2);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_retried_under_its_id_is_charged_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut alice = TestNode::create(root.path(), "alice", |c| c.network.connect_timeout_secs = 1);
    alice.start();
    let mut bob = TestNode::start_new(root.path(), "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset("customers", &ids(0..60), general());
    let grant = alice.grant("bob", "customers", |_| {});
    bob.dataset("customers", &ids(30..90), general());
    bob.grant("alice", "customers", |_| {});

    // Bob is down: alice charges her grant, then the job fails.
    bob.stop().await;
    let err = run(&alice, Job::psi_ca("bob"))
        .await
        .expect_err("bob is down");
    assert!(err.contains("cannot reach peer bob"), "{err}");
    let failed = last_job(&alice);
    assert_eq!(failed.outcome, Outcome::Failed);

    bob.start();
    alice.register(&bob);
    let retry = unseen::protocol::JobId::parse(&failed.id);
    let report = run(
        &alice,
        Job {
            retry,
            ..Job::psi_ca("bob")
        },
    )
    .await
    .expect("retry succeeds");
    assert_eq!(report.job_id, failed.id);
    assert_eq!(report.intersection_size, Some(30));
    let job = last_job(&alice);
    assert_eq!((job.outcome, job.attempts), (Outcome::Completed, 2));
    let (_, usage) = alice
        .store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.id == grant)
        .expect("grant");
    assert_eq!(
        usage.jobs_total, 1,
        "charged once: the failed attempt sent no data and was refunded"
    );

    // A completed job cannot be run again under its id.
    let err = run(
        &alice,
        Job {
            retry,
            ..Job::psi_ca("bob")
        },
    )
    .await
    .expect_err("replay");
    assert!(err.contains("already ran"), "{err}");
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_nodes_hold_both_signatures_and_their_logs_verify() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..60), &ids(30..90));
    bob.dataset(
        "customers",
        &ids(30..90),
        DataPolicy {
            personal: true,
            legal_basis: Some(LegalBasis::Consent("CRM-consent-2026-07".into())),
            ..general()
        },
    );
    let report = run(&alice, Job::psi_ca("bob")).await.expect("job");
    for node in [&alice, &bob] {
        let verified = audit::verify(
            node.store().audit_entries().expect("audit"),
            &node.cert(),
            None,
        )
        .expect("verifies");
        assert_eq!(verified.manifests, 1, "{}", node.name);
        let agreed = node
            .store()
            .audit_entries()
            .expect("audit")
            .into_iter()
            .filter_map(Result::ok)
            .find_map(|e| match e.event {
                AuditEvent::JobAgreed { manifest, .. } => Some(manifest),
                _ => None,
            })
            .expect("agreement");
        assert_eq!(agreed.job_id, report.job_id);
        assert_eq!(agreed.purpose, support::PURPOSE);
        assert_eq!(
            agreed.result_recipients,
            vec![alice.fingerprint.to_string()]
        );
    }
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_counts_spend_the_privacy_budget_and_never_show_the_exact_value() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..400), &ids(200..600));
    let truth = 200i64;
    // ε = 0.1 per job (the count's noise has σ ≈ 28), a budget of five jobs.
    let grant = bob.grant("alice", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
        g.quota.epsilon_per_job_micros = Some(100_000);
        g.quota.epsilon_budget_micros = Some(500_000);
        g.quota.delta_per_job_nanos = Some(1);
    });
    let mut released = Vec::new();
    for _ in 0..5 {
        let report = run(&alice, Job::psi_ca("bob")).await.expect("noisy job");
        assert!(
            report
                .noise
                .expect("noise reported")
                .contains("epsilon 0.1")
        );
        released.push(report.intersection_size.expect("released") as i64);
    }
    // The job's ε = 0.1 and δ = 1e-9 are split between the set size and the
    // count, so the count's noise uses ε = 0.05 and is clamped to truth ±
    // offset with tail δ/4: ⌈ln(1/(2.5e-10·(1+e^-0.05)))/0.05⌉ = 429.
    let eps = 0.05f64;
    let offset = (1.0 / (2.5e-10 * (1.0 + (-eps).exp()))).ln() / eps;
    let offset = offset.ceil() as i64;
    assert_eq!(offset, 429);
    assert!(
        released.iter().all(|r| (r - truth).abs() <= offset),
        "{released:?}"
    );
    let mean = released.iter().sum::<i64>() as f64 / 5.0;
    let sigma = (2.0 * (-eps).exp()).sqrt() / (1.0 - (-eps).exp());
    assert!(
        (mean - truth as f64).abs() <= 5.0 * sigma / 5f64.sqrt(),
        "{released:?}"
    );
    assert!(
        released.iter().any(|&r| r != released[0]),
        "independent noise on each release: {released:?}"
    );
    let err = run(&alice, Job::psi_ca("bob"))
        .await
        .expect_err("budget spent");
    assert!(err.contains("quota is exhausted"), "{err}");
    let (_, usage) = bob
        .store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.id == grant)
        .expect("grant");
    assert_eq!(usage.epsilon_micros, 500_000);
    // A budget that membership could bypass binds nothing: a grant that
    // sets epsilon and also allows psi admits no job at all.
    bob.grant("alice", "customers", |g| {
        g.protocols = vec![GrantedProtocol::Psi, GrantedProtocol::PsiCa];
        g.quota.epsilon_per_job_micros = Some(100_000);
        g.quota.epsilon_budget_micros = Some(500_000);
    });
    let err = run(&alice, Job::psi("bob"))
        .await
        .expect_err("membership under a budgeted grant");
    assert!(err.contains("grant is invalid"), "{err}");
    let mechanisms: Vec<String> = bob
        .store()
        .audit_entries()
        .expect("audit")
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| match e.event {
            AuditEvent::JobFinished { release, .. } => Some(release.mechanism),
            _ => None,
        })
        .collect();
    assert_eq!(mechanisms.len(), 5);
    assert_eq!(
        mechanisms
            .iter()
            .filter(|m| m.contains("discrete Laplace"))
            .count(),
        5
    );
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}
