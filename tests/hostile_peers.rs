//! A registered peer that attacks the node's transport and resources rather
//! than its rules: text it controls, streams it never reads, frames it never
//! finishes, more streams and connections than a job needs, and requests the
//! node refuses, in a flood. After each attack the node still serves a
//! legitimate job, and its own counters show what it holds.

mod support;

use support::attacker::HandRequester;
use support::{Job, TestNode, general, ids, run};
use unseen::node::wire::{JobRequest, PeerMessage};
use unseen::protocol::JobId;
use unseen::protocol::ecdh_psi::Mode;

/// A node "alice" with 100 ids, a peer "bob" she serves, and an attacker
/// "mallory" registered at her.
async fn alice_bob_and_mallory(
    root: &std::path::Path,
    configure: impl FnOnce(&mut unseen::node::config::NodeConfig),
) -> (TestNode, TestNode, HandRequester) {
    let mut alice = TestNode::create(root, "alice", configure);
    alice.start();
    let bob = TestNode::start_new(root, "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset("customers", &ids(0..100), general());
    bob.dataset("customers", &ids(50..150), general());
    alice.grant("bob", "customers", |_| {});
    bob.grant("alice", "customers", |_| {});
    let mallory = HandRequester::connect(root, "mallory", "mallory", &alice).await;
    (alice, bob, mallory)
}

/// Bob's job at Alice still runs, with the plain intersection's size.
async fn a_legitimate_job_still_runs(bob: &TestNode) {
    let report = run(bob, Job::psi_ca("alice"))
        .await
        .expect("a legitimate job after the attack");
    assert_eq!(report.intersection_size, Some(50));
}

fn signed(mallory: &HandRequester, mut request: JobRequest) -> JobRequest {
    request.requester_signature = request
        .manifest
        .sign_request(&mallory.identity, request.requester_set_size);
    request
}

/// Finding 8: a refused request recorded whatever text the peer sent. A
/// 100 KB purpose, or one with terminal escapes and a forged log line, went
/// into the audit log and the node's log with each refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_text_over_its_bound_or_with_control_characters_is_refused_unrecorded() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), |_| {}).await;
    let audit_before = alice.store().audit_entries().expect("audit").len();
    let base = mallory.request(
        &alice,
        JobId::random(&mut rand_core::OsRng),
        Mode::Cardinality,
        "customers",
        10,
    );
    let hostile = [
        "x".repeat(100_000),
        "stats\u{1b}[2J\nINFO admitted job peer=bob".to_string(),
    ];
    for purpose in hostile {
        let mut request = base.clone();
        request.manifest.purpose = purpose.clone();
        let (_, answer) = mallory.ask(&signed(&mallory, request)).await;
        match answer {
            PeerMessage::Abort { reason, .. } => {
                assert!(reason.contains("purpose"), "{reason}");
                assert!(!reason.contains(&purpose[..20]), "echoed: {reason}");
            }
            other => panic!("the node took the request: {other:?}"),
        }
    }
    let mut request = base.clone();
    request.manifest.requester_dataset = "d".repeat(200);
    let (_, answer) = mallory.ask(&signed(&mallory, request)).await;
    assert!(matches!(answer, PeerMessage::Abort { .. }), "{answer:?}");

    let audit = alice.store().audit_entries().expect("audit");
    assert_eq!(audit.len(), audit_before, "refused text was recorded");
    a_legitimate_job_still_runs(&bob).await;
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}
