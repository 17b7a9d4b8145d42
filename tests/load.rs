//! Load: 50 concurrent jobs from 5 peers against one node. Every job
//! completes or is refused by a rule, the quota ledger holds exactly the jobs
//! that ran, every audit log verifies, and the control socket answers
//! throughout.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use support::{Job, TestNode, general, ids, run};
use unseen::node::audit;
use unseen::node::config::NodePaths;
use unseen::node::control::{self, ControlRequest, ControlResponse};
use unseen::node::store::Outcome;

const PEERS: [&str; 5] = ["p1", "p2", "p3", "p4", "p5"];
const JOBS_PER_PEER: usize = 10;
/// Each peer's grant at alice allows this many jobs, so some are refused.
const GRANTED_JOBS: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_jobs_from_five_peers() {
    let root = tempfile::tempdir().expect("tempdir");
    let alice_ids = ids(0..300);
    let mut alice = TestNode::start_new(root.path(), "alice");
    alice.dataset("customers", &alice_ids, general());
    let mut peers = Vec::new();
    for (i, name) in PEERS.into_iter().enumerate() {
        let peer = TestNode::start_new(root.path(), name);
        let start = 50 * i as u32;
        peer.dataset("customers", &ids(start..start + 200), general());
        peer.register(&alice);
        alice.register(&peer);
        peer.grant("alice", "customers", |_| {});
        alice.grant(name, "customers", |g| g.quota.max_jobs = Some(GRANTED_JOBS));
        peers.push(peer);
    }

    // The control socket must answer while the jobs run.
    let running = Arc::new(AtomicBool::new(true));
    let pongs = Arc::new(AtomicU64::new(0));
    let pinger = {
        let (running, pongs) = (running.clone(), pongs.clone());
        let dir = alice.dir.clone();
        tokio::spawn(async move {
            let socket = NodePaths::new(&dir).control_socket();
            // Bounded: at most 10,000 pings, and it stops with the jobs.
            for _ in 0..10_000 {
                if !running.load(Ordering::Relaxed) {
                    break;
                }
                match control::request(&dir, &socket, &ControlRequest::Ping).await {
                    Ok(ControlResponse::Pong { .. }) => {
                        pongs.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("the control socket failed under load: {other:?}"),
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let peers = Arc::new(peers);
    let mut tasks = Vec::new();
    for p in 0..PEERS.len() {
        for _ in 0..JOBS_PER_PEER {
            let peers = peers.clone();
            tasks.push(tokio::spawn(async move {
                let peer = &peers[p];
                (p, run(peer, Job::psi_ca("alice")).await)
            }));
        }
    }
    let mut completed = [0u64; PEERS.len()];
    for task in tasks {
        let (p, result) = task.await.expect("job task");
        match result {
            Ok(report) => {
                let start = 50 * p as u32;
                let theirs: BTreeSet<_> = ids(start..start + 200).into_iter().collect();
                let truth = alice_ids.iter().filter(|id| theirs.contains(*id)).count();
                assert_eq!(report.intersection_size, Some(truth as u64));
                completed[p] += 1;
            }
            // A refusal must name the rule that refused it.
            Err(e) => assert!(e.contains("quota is exhausted"), "{e}"),
        }
    }
    running.store(false, Ordering::Relaxed);
    pinger.await.expect("pinger");
    assert!(
        pongs.load(Ordering::Relaxed) > 0,
        "the control socket answered"
    );

    for (p, name) in PEERS.into_iter().enumerate() {
        // Each peer's quota binds exactly, and its ledger holds the jobs
        // that ran: every admitted job here completes.
        assert_eq!(completed[p], GRANTED_JOBS, "{name}");
        let (_, usage) = alice
            .store()
            .grants()
            .expect("grants")
            .into_iter()
            .find(|(g, _)| g.peer == name)
            .expect("grant");
        assert_eq!(usage.jobs_total, completed[p], "{name}'s ledger");
    }
    let jobs = alice.jobs();
    let done = jobs
        .iter()
        .filter(|j| j.outcome == Outcome::Completed)
        .count();
    let refused = jobs
        .iter()
        .filter(|j| j.outcome == Outcome::Refused)
        .count();
    assert_eq!((done, refused), (40, 10), "every job ended by a rule");
    for node in std::iter::once(&alice).chain(peers.iter()) {
        audit::verify(
            node.store().audit_entries().expect("audit"),
            &node.cert(),
            None,
        )
        .unwrap_or_else(|e| panic!("{}'s audit log: {e}", node.name));
    }
    alice.stop().await;
    let mut peers = Arc::try_unwrap(peers).unwrap_or_else(|_| panic!("peers still shared"));
    for peer in &mut peers {
        peer.stop().await;
    }
}
