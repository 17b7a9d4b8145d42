//! The acceptance boundary against a registered peer that plays the requester
//! by hand: free retries, oversized announcements, differencing on important
//! data, a new key under an old name, probing for datasets, a set size outside
//! the signature, and racing requests against a quota. Each test is the attack
//! the issue describes, followed by what the node's own records must show.

mod support;

use std::collections::BTreeSet;

use support::attacker::HandRequester;
use support::{Job, TestNode, general, ids, pair, run};
use unseen::node::grant::{GrantedProtocol, Usage};
use unseen::node::policy::{DataPolicy, Grade};
use unseen::node::store::Outcome;
use unseen::node::wire::PeerMessage;
use unseen::protocol::ecdh_psi::Mode;
use unseen::protocol::{IdSet, JobId};

fn usage(node: &TestNode, grant: &str) -> Usage {
    node.store()
        .grants()
        .expect("grants")
        .into_iter()
        .find(|(g, _)| g.id == grant)
        .map(|(_, usage)| usage)
        .expect("the grant")
}

fn id_set(ids: &[String]) -> IdSet {
    ids.iter().map(String::as_bytes).collect()
}

fn refusal(answer: &PeerMessage) -> &str {
    match answer {
        PeerMessage::JobRefused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A responder "alice" with 100 ids, and an attacker registered at her.
async fn alice_and_mallory(
    root: &std::path::Path,
    configure: impl FnOnce(&mut unseen::node::config::NodeConfig),
) -> (TestNode, HandRequester) {
    let mut alice = TestNode::create(root, "alice", configure);
    alice.start();
    alice.dataset("customers", &ids(0..100), general());
    let mallory = HandRequester::connect(root, "mallory", "mallory", &alice).await;
    (alice, mallory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_data_left_is_refused_and_every_run_is_charged() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mallory) = alice_and_mallory(root.path(), |_| {}).await;
    let grant = alice.grant("mallory", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
        g.quota.epsilon_per_job_micros = Some(500_000);
        g.quota.epsilon_budget_micros = Some(10_000_000);
    });
    let candidates = ids(50..150);
    let set = id_set(&candidates);
    let job = JobId::random(&mut rand_core::OsRng);
    let request = mallory.request(&alice, job, Mode::Cardinality, "customers", 100);

    // The attacker runs the whole exchange, gets its noisy count, and then
    // aborts instead of confirming, hoping to retry under the same id.
    let (mut stream, answer) = mallory.ask(&request).await;
    let PeerMessage::JobAccepted(acceptance) = answer else {
        panic!("first run refused: {answer:?}");
    };
    let output = stream
        .run_protocol(job, Mode::Cardinality, &set, &acceptance)
        .await;
    assert!(output.peer_set_size >= 100);
    stream
        .send(&PeerMessage::Abort {
            code: 104,
            reason: "try again".into(),
        })
        .await;
    assert_eq!(stream.recv().await, None, "alice ends the stream");
    assert_eq!(alice.job(&job.to_string()).outcome, Outcome::Failed);

    // The same request again: data already left alice under this id.
    let (_, answer) = mallory.ask(&request).await;
    assert!(refusal(&answer).contains("start a new job"), "{answer:?}");
    // The same id with another set: refused as well.
    let other = mallory.request(&alice, job, Mode::Cardinality, "customers", 99);
    let (_, answer) = mallory.ask(&other).await;
    assert!(refusal(&answer).contains("start a new job"), "{answer:?}");

    // One run, one charge; a new job is a new, charged run.
    let spent = usage(&alice, &grant);
    assert_eq!((spent.jobs_total, spent.epsilon_micros), (1, 500_000));
    let fresh = JobId::random(&mut rand_core::OsRng);
    let request = mallory.request(&alice, fresh, Mode::Cardinality, "customers", 100);
    let (mut stream, answer) = mallory.ask(&request).await;
    let PeerMessage::JobAccepted(acceptance) = answer else {
        panic!("a new job is refused: {answer:?}");
    };
    stream
        .run_protocol(fresh, Mode::Cardinality, &set, &acceptance)
        .await;
    stream.send(&PeerMessage::JobFinished).await;
    assert_eq!(stream.recv().await, None);
    let spent = usage(&alice, &grant);
    assert_eq!((spent.jobs_total, spent.epsilon_micros), (2, 1_000_000));
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_set_over_the_node_limit_is_refused_before_any_charge() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mallory) = alice_and_mallory(root.path(), |config| {
        config.limits.max_peer_set_size = 1_000;
    })
    .await;
    let grant = alice.grant("mallory", "customers", |_| {});
    for announced in [1u64 << 40, 1_001] {
        let job = JobId::random(&mut rand_core::OsRng);
        let request = mallory.request(&alice, job, Mode::Cardinality, "customers", announced);
        let (_, answer) = mallory.ask(&request).await;
        assert!(
            refusal(&answer).contains("larger than"),
            "{announced}: {answer:?}"
        );
        let record = alice.job(&job.to_string());
        assert_eq!(record.outcome, Outcome::Refused);
        assert_eq!(record.data_messages_sent, 0);
    }
    assert_eq!(usage(&alice, &grant).jobs_total, 0);
    // At the limit the job runs.
    let job = JobId::random(&mut rand_core::OsRng);
    let request = mallory.request(&alice, job, Mode::Cardinality, "customers", 1_000);
    let (_, answer) = mallory.ask(&request).await;
    assert!(matches!(answer, PeerMessage::JobAccepted(_)), "{answer:?}");
    alice.stop().await;
}

/// Differencing: with exact counts, X and X ∪ {t} differ by one exactly when
/// t is in the owner's set. Important data must never answer an exact count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn important_data_answers_no_exact_count() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..60), &ids(30..90));
    bob.dataset(
        "customers",
        &ids(30..90),
        DataPolicy {
            grade: Grade::Important,
            ..general()
        },
    );
    let err = run(&alice, Job::psi_ca("bob"))
        .await
        .expect_err("an exact count over important data");
    assert!(err.contains("noise"), "{err}");
    assert_eq!(bob.jobs().pop().expect("job").outcome, Outcome::Refused);
    // A noisy grant answers.
    bob.grant("alice", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
        g.quota.epsilon_per_job_micros = Some(1_000_000);
        g.quota.epsilon_budget_micros = Some(5_000_000);
    });
    let report = run(&alice, Job::psi_ca("bob")).await.expect("noisy count");
    assert!(report.noise.is_some());
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_under_an_old_name_inherits_no_grant() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..40), &ids(0..40));
    run(&alice, Job::psi_ca("bob"))
        .await
        .expect("alice's grant");
    // Bob's operator replaces alice's registration with another key.
    bob.store().remove_peer("alice").expect("remove");
    bob.peers_changed();
    let mallory = HandRequester::connect(root.path(), "mallory", "alice", &bob).await;
    let job = JobId::random(&mut rand_core::OsRng);
    let request = mallory.request(&bob, job, Mode::Cardinality, "customers", 40);
    let (_, answer) = mallory.ask(&request).await;
    assert_eq!(refusal(&answer), "no live grant covers this job");
    assert_eq!(bob.job(&job.to_string()).outcome, Outcome::Refused);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_and_an_ungranted_dataset_look_the_same() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mallory) = alice_and_mallory(root.path(), |_| {}).await;
    alice.dataset("secret", &ids(0..50), general());
    alice.grant("mallory", "customers", |_| {});
    let mut answers = BTreeSet::new();
    for dataset in ["no-such-dataset", "secret"] {
        let job = JobId::random(&mut rand_core::OsRng);
        let request = mallory.request(&alice, job, Mode::Cardinality, dataset, 50);
        let (_, answer) = mallory.ask(&request).await;
        answers.insert(refusal(&answer).to_string());
    }
    assert_eq!(answers.len(), 1, "{answers:?}");
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_signature_binds_its_set_size() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mallory) = alice_and_mallory(root.path(), |_| {}).await;
    alice.grant("mallory", "customers", |_| {});
    let job = JobId::random(&mut rand_core::OsRng);
    let mut request = mallory.request(&alice, job, Mode::Cardinality, "customers", 50);
    request.requester_set_size = 20;
    let (_, answer) = mallory.ask(&request).await;
    assert!(refusal(&answer).contains("signature"), "{answer:?}");
    alice.stop().await;
}

/// Quotas are checked before the data is read: an exhausted grant is refused
/// for its quota even when the file has gone, so no request makes the node
/// read and hash a file it would refuse anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_is_checked_before_the_dataset_is_read() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..40), &ids(0..40));
    bob.grant("alice", "customers", |g| g.quota.max_jobs = Some(1));
    run(&alice, Job::psi_ca("bob")).await.expect("first job");
    std::fs::remove_file(bob.dir.join("customers.csv")).expect("remove the file");
    run(&alice, Job::psi_ca("bob"))
        .await
        .expect_err("quota spent");
    let refused = bob.jobs().pop().expect("job");
    assert_eq!(refused.outcome, Outcome::Refused);
    let detail = refused.detail.unwrap_or_default();
    assert!(detail.contains("quota exhausted"), "{detail}");
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Many requests at once against a quota of four: at most four are admitted,
/// and the ledger holds exactly the admitted ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_requests_never_exceed_the_quota() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mallory) = alice_and_mallory(root.path(), |_| {}).await;
    let grant = alice.grant("mallory", "customers", |g| g.quota.max_jobs = Some(4));
    let mallory = std::sync::Arc::new(mallory);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let job = JobId::random(&mut rand_core::OsRng);
        let request = mallory.request(&alice, job, Mode::Cardinality, "customers", 50);
        let mallory = mallory.clone();
        tasks.push(tokio::spawn(async move {
            let (mut stream, answer) = mallory.ask(&request).await;
            let accepted = matches!(answer, PeerMessage::JobAccepted(_));
            if accepted {
                stream
                    .send(&PeerMessage::Abort {
                        code: 104,
                        reason: "enough".into(),
                    })
                    .await;
            }
            accepted
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += u64::from(task.await.expect("task"));
    }
    assert_eq!(admitted, 4);
    assert_eq!(usage(&alice, &grant).jobs_total, 4);
    alice.stop().await;
}
