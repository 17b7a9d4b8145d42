//! Nodes in this process, talking over real QUIC with mutual TLS on
//! 127.0.0.1: PSI results against a plain intersection, the handshake
//! refusing unregistered certificates, and bad frames from a registered peer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use unseen::node::config::{NodeConfig, NodePaths};
use unseen::node::control::{self, ControlRequest, ControlResponse};
use unseen::node::identity::{Fingerprint, Identity};
use unseen::node::job::JobReport;
use unseen::node::server::{Node, RunningNode};
use unseen::node::store::{Outcome, Role, Store};
use unseen::node::transport::{self, frame, tls};
use unseen::node::wire::{self, PeerMessage};
use unseen::node::{dataset, setup};

struct TestNode {
    name: &'static str,
    dir: PathBuf,
    running: Option<RunningNode>,
    addr: String,
    fingerprint: Fingerprint,
}

impl TestNode {
    fn store(&self) -> Store {
        Store::open(&NodePaths::new(&self.dir).database()).expect("store")
    }
}

/// Creates, configures and starts a node; `csv` becomes dataset "customers".
fn node(root: &Path, name: &'static str, csv: &str, peers: &[&TestNode]) -> TestNode {
    let dir = root.join(name);
    setup::init_node(&dir, name, "127.0.0.1:0".parse().expect("addr")).expect("init");
    let file = root.join(format!("{name}.csv"));
    std::fs::write(&file, csv).expect("csv");
    let store = Store::open(&NodePaths::new(&dir).database()).expect("store");
    store
        .put_dataset("customers", &dataset::scan(&file, "id").expect("scan"))
        .expect("dataset");
    for peer in peers {
        store
            .add_peer(peer.name, &peer.addr, peer.fingerprint)
            .expect("peer");
    }
    let node = Node::open(&dir).expect("open");
    let running = node.start().expect("start");
    TestNode {
        name,
        addr: running.quic_addr.to_string(),
        fingerprint: running.fingerprint,
        dir,
        running: Some(running),
    }
}

fn register(at: &TestNode, peer: &TestNode) {
    at.store()
        .add_peer(peer.name, &peer.addr, peer.fingerprint)
        .expect("register");
}

async fn run_psi(
    from: &TestNode,
    to: &str,
    cardinality_only: bool,
    out: Option<PathBuf>,
) -> Result<JobReport, String> {
    let request = ControlRequest::RunPsi {
        peer: to.into(),
        dataset: "customers".into(),
        peer_dataset: "customers".into(),
        cardinality_only,
        out,
    };
    let socket = NodePaths::new(&from.dir).control_socket();
    match control::request(&from.dir, &socket, &request)
        .await
        .expect("control")
    {
        ControlResponse::Job(report) => Ok(report),
        ControlResponse::Error { message } => Err(message),
        other => panic!("unexpected {other:?}"),
    }
}

fn csv(ids: &[String]) -> String {
    let mut text = String::from("id,value\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("{id},{i}\n"));
    }
    text
}

fn plain_intersection(a: &[String], b: &[String]) -> BTreeSet<String> {
    let norm = |ids: &[String]| -> BTreeSet<String> {
        ids.iter()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .collect()
    };
    norm(a).intersection(&norm(b)).cloned().collect()
}

async fn shutdown(nodes: Vec<TestNode>) {
    for mut node in nodes {
        if let Some(running) = node.running.take() {
            running.shutdown().await;
        }
    }
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
    let b_ids: Vec<String> = (400..1500).map(|i| format!("c{i}")).collect();
    let expected = plain_intersection(&a_ids, &b_ids);
    assert!(expected.len() > 100, "the test data must overlap");

    let b = node(root.path(), "bob", &csv(&b_ids), &[]);
    let a = node(root.path(), "alice", &csv(&a_ids), &[&b]);
    register(&b, &a);

    let ca = run_psi(&a, "bob", true, None).await.expect("psi-ca");
    assert_eq!(ca.intersection_size, expected.len() as u64);
    assert_eq!(
        ca.peer_set_size,
        plain_intersection(&b_ids, &b_ids).len() as u64
    );
    assert_eq!(
        ca.own_set_size,
        plain_intersection(&a_ids, &a_ids).len() as u64
    );

    let out = root.path().join("out.csv");
    let psi = run_psi(&a, "bob", false, Some(out.clone()))
        .await
        .expect("psi");
    assert_eq!(psi.intersection_size, expected.len() as u64);
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

    // Both sides recorded both jobs, and agree on the bytes that crossed.
    let a_jobs = a.store().jobs().expect("jobs");
    let b_jobs = b.store().jobs().expect("jobs");
    assert_eq!(a_jobs.len(), 2);
    assert_eq!(b_jobs.len(), 2);
    for (mine, theirs) in a_jobs.iter().zip(&b_jobs) {
        assert_eq!(mine.id, theirs.id);
        assert_eq!((mine.role, theirs.role), (Role::Requester, Role::Responder));
        assert_eq!(mine.outcome, Outcome::Completed);
        assert_eq!(theirs.outcome, Outcome::Completed);
        assert_eq!(mine.bytes_sent, theirs.bytes_received);
        assert_eq!(mine.bytes_received, theirs.bytes_sent);
        assert_eq!(mine.local_set_size, theirs.peer_set_size);
        assert_eq!(mine.peer_set_size, theirs.local_set_size);
        assert!(theirs.result.is_none(), "the responder learns no result");
    }
    shutdown(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_certificates_are_refused_in_the_handshake() {
    let root = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (0..50).map(|i| format!("x{i}")).collect();
    let alice = node(root.path(), "alice", &csv(&ids), &[]);
    // Mallory knows alice's address and fingerprint, but alice never
    // registered mallory.
    let mallory = node(root.path(), "mallory", &csv(&ids), &[&alice]);
    let err = run_psi(&mallory, "alice", true, None)
        .await
        .expect_err("must be refused");
    assert!(err.contains("has not registered this node"), "{err}");
    assert!(
        alice.store().jobs().expect("jobs").is_empty(),
        "no job reached alice"
    );

    // A client pinning the wrong fingerprint refuses the server in turn.
    let bob = node(root.path(), "bob", &csv(&ids), &[]);
    bob.store()
        .add_peer("alice", &alice.addr, mallory.fingerprint)
        .expect("register wrongly");
    register(&alice, &bob);
    let err = run_psi(&bob, "alice", true, None)
        .await
        .expect_err("pinned fingerprint differs");
    assert!(err.contains("fingerprint"), "{err}");
    assert!(alice.store().jobs().expect("jobs").is_empty());

    // Alice still serves a correctly registered peer.
    bob.store().remove_peer("alice").expect("remove");
    register(&bob, &alice);
    let report = run_psi(&bob, "alice", true, None).await.expect("job");
    assert_eq!(report.intersection_size, ids.len() as u64);
    shutdown(vec![alice, mallory, bob]).await;
}

/// A registered peer that writes raw frames.
struct RawPeer {
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl RawPeer {
    async fn connect(root: &Path, server: &TestNode) -> Self {
        let dir = root.join("raw");
        setup::init_node(&dir, "raw", "127.0.0.1:0".parse().expect("addr")).expect("init");
        let identity = Identity::load(&NodePaths::new(&dir)).expect("identity");
        server
            .store()
            .add_peer("raw", "127.0.0.1:9", identity.fingerprint())
            .expect("register raw");
        let config = NodeConfig::load(&dir).expect("config");
        let client = tls::client_config(&config, &identity, server.fingerprint).expect("client");
        let endpoint = transport::bind_client("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let connection = endpoint
            .connect_with(
                client,
                server.addr.parse().expect("addr"),
                transport::SERVER_NAME,
            )
            .expect("connect")
            .await
            .expect("handshake");
        Self {
            connection,
            _endpoint: endpoint,
        }
    }

    /// Sends raw bytes on a new stream and returns the node's first answer.
    async fn exchange(&self, bytes: &[u8]) -> PeerMessage {
        let (mut send, mut recv) = self.connection.open_bi().await.expect("stream");
        send.write_all(bytes).await.expect("write");
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            frame::read_frame(&mut recv, 1 << 20),
        )
        .await
        .expect("answer in time")
        .expect("frame")
        .expect("not end of stream");
        wire::decode(&answer).expect("decodable answer")
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_abort_and_the_node_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let ids: Vec<String> = (0..40).map(|i| format!("x{i}")).collect();
    let alice = node(root.path(), "alice", &csv(&ids), &[]);
    let raw = RawPeer::connect(root.path(), &alice).await;

    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("oversized frame", u32::MAX.to_be_bytes().to_vec(), 101),
        ("garbage payload", framed(&[1, 0xee, 0xff, 0x00]), 100),
        ("other wire version", framed(&[7, 1]), 100),
        ("trailing bytes", framed(&[1, 1, 0]), 100),
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
    assert!(alice.store().jobs().expect("jobs").is_empty());

    // The node still serves a real job.
    let bob = node(root.path(), "bob", &csv(&ids), &[&alice]);
    register(&alice, &bob);
    let report = run_psi(&bob, "alice", false, None).await.expect("job");
    assert_eq!(report.intersection_size, ids.len() as u64);
    shutdown(vec![alice, bob]).await;
}
