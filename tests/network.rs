//! Nodes in this process, talking over real QUIC with mutual TLS on
//! 127.0.0.1: PSI results against a plain intersection, the handshake
//! refusing unregistered certificates, and bad frames from a registered peer.

mod support;

use std::collections::BTreeSet;

use support::raw_peer::{RawPeer, framed};
use support::{Job, TestNode, general, ids, pair, run};
use unseen::node::store::{Outcome, Role};
use unseen::node::wire::{self, PeerMessage};

fn plain_intersection(a: &[String], b: &[String]) -> BTreeSet<String> {
    let norm = |ids: &[String]| -> BTreeSet<String> {
        ids.iter()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .collect()
    };
    norm(a).intersection(&norm(b)).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psi_and_psi_ca_over_quic_match_a_plain_intersection() {
    let root = tempfile::tempdir().expect("tempdir");
    let a_ids: Vec<String> = (0..700)
        .map(|i| match i % 50 {
            0 => format!("  c{i} "),
            1 => String::new(),
            _ => format!("c{}", i % 650),
        })
        .collect();
    let b_ids = ids(400..1500);
    let expected = plain_intersection(&a_ids, &b_ids);
    assert!(expected.len() > 100, "the test data must overlap");
    let (mut a, mut b) = pair(root.path(), &a_ids, &b_ids);

    let ca = run(&a, Job::psi_ca("bob")).await.expect("psi-ca");
    assert_eq!(ca.intersection_size, Some(expected.len() as u64));
    assert_eq!(
        ca.peer_set_size,
        plain_intersection(&b_ids, &b_ids).len() as u64
    );
    assert_eq!(
        ca.own_set_size,
        plain_intersection(&a_ids, &a_ids).len() as u64
    );

    let out = root.path().join("out.csv");
    let psi = run(
        &a,
        Job {
            out: Some(out.clone()),
            ..Job::psi("bob")
        },
    )
    .await
    .expect("psi");
    assert_eq!(psi.intersection_size, Some(expected.len() as u64));
    let written: Vec<String> = std::fs::read_to_string(&out)
        .expect("out")
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap_or("").trim().to_string())
        .collect();
    // Every matching row of alice's, duplicates included, and nothing else.
    let expected_rows: Vec<String> = a_ids
        .iter()
        .map(|id| id.trim().to_string())
        .filter(|id| expected.contains(id))
        .collect();
    assert_eq!(written, expected_rows);

    // Both sides recorded both jobs, and agree on what crossed the wire.
    let (a_jobs, b_jobs) = (a.jobs(), b.jobs());
    assert_eq!(a_jobs.len(), 2);
    assert_eq!(b_jobs.len(), 2);
    for (mine, theirs) in a_jobs.iter().zip(&b_jobs) {
        assert_eq!(mine.id, theirs.id);
        assert_eq!((mine.role, theirs.role), (Role::Requester, Role::Responder));
        assert_eq!(mine.outcome, Outcome::Completed);
        assert_eq!(theirs.outcome, Outcome::Completed);
        assert_eq!(mine.bytes_sent, theirs.bytes_received);
        assert_eq!(mine.bytes_received, theirs.bytes_sent);
        assert_eq!(mine.data_messages_sent, theirs.data_messages_received);
        assert!(mine.data_messages_sent > 0);
        assert_eq!(mine.local_set_size, theirs.peer_set_size);
        assert_eq!(mine.peer_set_size, theirs.local_set_size);
        assert!(theirs.result.is_none(), "the responder learns no result");
    }
    support::stop_all(&mut [&mut a, &mut b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_certificates_are_refused_in_the_handshake() {
    let root = tempfile::tempdir().expect("tempdir");
    let set = ids(0..50);
    let (mut alice, mut bob) = pair(root.path(), &set, &set);
    // Mallory knows alice's address and fingerprint, but alice never
    // registered mallory.
    let mut mallory = TestNode::start_new(root.path(), "mallory");
    mallory.register(&alice);
    mallory.dataset("customers", &set, general());
    mallory.grant("alice", "customers", |_| {});
    let before = alice.jobs().len();
    let err = run(&mallory, Job::psi_ca("alice"))
        .await
        .expect_err("must be refused");
    assert!(err.contains("has not registered this node"), "{err}");
    assert_eq!(alice.jobs().len(), before, "no job reached alice");

    // A client pinning the wrong fingerprint refuses the server in turn.
    let store = bob.store();
    store.remove_peer("alice").expect("remove");
    store
        .add_peer("alice", &alice.addr, mallory.fingerprint)
        .expect("register wrongly");
    bob.peers_changed();
    // Grants belong to a certificate: the new registration needs its own.
    bob.grant("alice", "customers", |_| {});
    let err = run(&bob, Job::psi_ca("alice"))
        .await
        .expect_err("pinned fingerprint differs");
    assert!(err.contains("fingerprint"), "{err}");
    assert_eq!(alice.jobs().len(), before);

    // Alice still serves a correctly registered peer.
    bob.register(&alice);
    bob.grant("alice", "customers", |_| {});
    let report = run(&bob, Job::psi_ca("alice")).await.expect("job");
    assert_eq!(report.intersection_size, Some(set.len() as u64));
    support::stop_all(&mut [&mut alice, &mut mallory, &mut bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_abort_and_the_node_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let set = ids(0..40);
    let (mut alice, mut bob) = pair(root.path(), &set, &set);
    let raw = RawPeer::connect(root.path(), &alice).await;
    let before = alice.jobs().len();

    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("oversized frame", u32::MAX.to_be_bytes().to_vec(), 101),
        ("garbage payload", framed(&[2, 0xee, 0xff, 0x00]), 100),
        ("other wire version", framed(&[7, 1]), 100),
        ("trailing bytes", framed(&[2, 4, 0]), 100),
    ];
    for (what, bytes, code) in cases {
        match raw.exchange(&bytes).await {
            PeerMessage::Abort { code: got, reason } => {
                assert_eq!(got, code, "{what}: {reason}");
            }
            other => panic!("{what}: expected an abort, got {other:?}"),
        }
    }
    // A message that is valid but out of place is refused too.
    match raw
        .exchange(&framed(&wire::encode(&PeerMessage::JobFinished)))
        .await
    {
        PeerMessage::Abort { code, .. } => assert_eq!(code, 102),
        other => panic!("expected an abort, got {other:?}"),
    }
    // None of that reached the acceptance boundary.
    assert_eq!(alice.jobs().len(), before);

    // The node still serves a real job.
    let report = run(&bob, Job::psi("alice")).await.expect("job");
    assert_eq!(report.intersection_size, Some(set.len() as u64));
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Counts the handshakes that ran the pinned client-certificate check.
#[derive(Debug)]
struct CountingRegistry {
    checks: std::sync::atomic::AtomicUsize,
    allowed: unseen::node::identity::Fingerprint,
}

impl unseen::node::transport::tls::PeerRegistry for CountingRegistry {
    fn is_registered(&self, fingerprint: &unseen::node::identity::Fingerprint) -> bool {
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *fingerprint == self.allowed
    }
}

/// With TLS session resumption a returning client skips its certificate,
/// so a peer removed since its last connection could come back unchecked.
/// Every connection must run the pinned check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_runs_the_pinned_certificate_check() {
    use std::sync::atomic::Ordering;
    use unseen::node::config::{NodeConfig, NodePaths};
    use unseen::node::identity::Identity;
    use unseen::node::transport::{self, tls};

    let root = tempfile::tempdir().expect("tempdir");
    let server = TestNode::create(root.path(), "server", |_| {});
    let client = TestNode::create(root.path(), "client", |_| {});
    let server_id = Identity::load(&NodePaths::new(&server.dir)).expect("identity");
    let client_id = Identity::load(&NodePaths::new(&client.dir)).expect("identity");
    let registry = std::sync::Arc::new(CountingRegistry {
        checks: 0.into(),
        allowed: client_id.fingerprint(),
    });
    let config = NodeConfig::load(&server.dir).expect("config");
    let endpoint =
        transport::bind_endpoint(&config, &server_id, registry.clone()).expect("endpoint");
    let addr = endpoint.local_addr().expect("addr");
    let (accepted, mut handshakes) = tokio::sync::mpsc::channel(2);
    let acceptor = tokio::spawn(async move {
        for _ in 0..2 {
            let incoming = endpoint.accept().await.expect("incoming");
            let connection = incoming.await.expect("handshake");
            accepted.send(connection).await.expect("report");
        }
    });
    let client_config = NodeConfig::load(&client.dir).expect("config");
    let tls_config =
        tls::client_config(&client_config, &client_id, server_id.fingerprint()).expect("client");
    let dialer = transport::bind_client("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let mut checks = Vec::new();
    for _ in 0..2 {
        let connection = dialer
            .connect_with(tls_config.clone(), addr, transport::SERVER_NAME)
            .expect("connect")
            .await
            .expect("handshake");
        // The server finished its side of the handshake, verifier included.
        let server_side = handshakes.recv().await.expect("server handshake");
        checks.push(registry.checks.load(Ordering::SeqCst));
        server_side.close(0u32.into(), b"done");
        connection.close(0u32.into(), b"done");
    }
    acceptor.await.expect("acceptor");
    assert!(checks[0] >= 1, "{checks:?}");
    assert_eq!(
        checks[1],
        2 * checks[0],
        "the second connection was checked too: {checks:?}"
    );
}

/// A second node process on a serving node's directory must fail before it
/// reads or writes any record: opening it used to mark the running node's
/// jobs interrupted and log a start before noticing the first process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_a_serving_directory_touches_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let set = ids(0..40);
    let (mut alice, mut bob) = pair(root.path(), &set, &set);
    run(&bob, Job::psi_ca("alice")).await.expect("job");
    let entries = alice.store().audit_entries().expect("audit").len();
    let err = unseen::node::server::Node::open(&alice.dir).expect_err("alice is serving");
    assert!(err.to_string().contains("already running"), "{err}");
    assert_eq!(alice.store().audit_entries().expect("audit").len(), entries);
    // The first node is unharmed.
    let report = run(&bob, Job::psi_ca("alice")).await.expect("job");
    assert_eq!(report.intersection_size, Some(set.len() as u64));
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}
