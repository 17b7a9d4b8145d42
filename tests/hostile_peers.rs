//! A registered peer that attacks the node's transport and resources rather
//! than its rules: text it controls, streams it never reads, frames it never
//! finishes, more streams and connections than a job needs, and requests the
//! node refuses, in a flood. After each attack the node still serves a
//! legitimate job, and its own counters show what it holds.

mod support;

use std::time::Duration;

use support::attacker::{HandRequester, RawStream};
use support::{Job, TestNode, general, ids, run};
use unseen::node::config::NodeConfig;
use unseen::node::counters::CountersSnapshot;
use unseen::node::grant::GrantedProtocol;
use unseen::node::wire::{JobRequest, PeerMessage};
use unseen::protocol::JobId;
use unseen::protocol::ecdh_psi::Mode;

/// A node "alice" with `alice_ids` ids (ids 0..), configured by `configure`,
/// and a peer "bob" with ids 50..150 that she serves.
fn alice_and_bob(
    root: &std::path::Path,
    alice_ids: u32,
    configure: impl FnOnce(&mut NodeConfig),
) -> (TestNode, TestNode) {
    let mut alice = TestNode::create(root, "alice", configure);
    alice.start();
    let bob = TestNode::start_new(root, "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset("customers", &ids(0..alice_ids), general());
    bob.dataset("customers", &ids(50..150), general());
    alice.grant("bob", "customers", |_| {});
    bob.grant("alice", "customers", |_| {});
    (alice, bob)
}

/// [`alice_and_bob`], and an attacker "mallory" registered at Alice with a
/// PSI-CA grant on her customers.
async fn alice_bob_and_mallory(
    root: &std::path::Path,
    configure: impl FnOnce(&mut NodeConfig),
) -> (TestNode, TestNode, HandRequester) {
    let (alice, bob) = alice_and_bob(root, 100, configure);
    let mallory = HandRequester::connect(root, "mallory", "mallory", &alice).await;
    (alice, bob, mallory)
}

/// Short timeouts, so that the node gives up on a stalling peer quickly.
fn impatient(config: &mut NodeConfig) {
    config.network.message_timeout_secs = 2;
}

/// Bob's job at Alice still runs, with the plain intersection's size:
/// Alice holds ids 0..`alice_ids`, Bob 50..150.
async fn a_legitimate_job_still_runs(bob: &TestNode, alice_ids: u32) {
    let report = run(bob, Job::psi_ca("alice"))
        .await
        .expect("a legitimate job after the attack");
    let plain = ids(0..alice_ids)
        .iter()
        .filter(|id| ids(50..150).contains(id))
        .count() as u64;
    assert_eq!(report.intersection_size, Some(plain));
}

/// Whether the node refused a connection: at the handshake, or by closing
/// it right after (a QUIC client finishes its handshake before the server
/// has checked the client's certificate).
async fn refused(connection: Result<quinn::Connection, quinn::ConnectionError>) -> bool {
    match connection {
        Err(_) => true,
        Ok(connection) => tokio::time::timeout(Duration::from_secs(5), connection.closed())
            .await
            .is_ok(),
    }
}

fn counters(node: &TestNode) -> CountersSnapshot {
    node.running.as_ref().expect("running").counters()
}

/// Waits until the node's counters satisfy `settled`, or fails the test with
/// the last counters after 30 s. The node's own timeouts decide when that
/// happens; the test only watches.
async fn until(
    node: &TestNode,
    what: &str,
    settled: impl Fn(&CountersSnapshot) -> bool,
) -> CountersSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = counters(node);
        if settled(&now) {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn psi_ca_request(mallory: &HandRequester, alice: &TestNode, set_size: u64) -> JobRequest {
    let job = JobId::random(&mut rand_core::OsRng);
    mallory.request(alice, job, Mode::Cardinality, "customers", set_size)
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
    a_legitimate_job_still_runs(&bob, 100).await;
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Finding 2: the writer queue was unbounded and a frame the peer would not
/// take blocked the writer forever, so a peer that never reads held the
/// job's task and everything queued for as long as it kept the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_holds_nothing_once_the_timeouts_pass() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = alice_and_bob(root.path(), 3000, impatient);
    // Mallory's stream window is small: Alice's 3,000 blinded ids (96 KB)
    // do not fit, so her writer blocks on the flow control.
    let mallory = HandRequester::connect_with(root.path(), "mallory", "mallory", &alice, |c| {
        c.network.stream_window_bytes = 16 << 10;
    })
    .await;
    alice.grant("mallory", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
    });
    let request = psi_ca_request(&mallory, &alice, 10);
    let (_stream, answer) = mallory.ask(&request).await;
    assert!(matches!(answer, PeerMessage::JobAccepted(_)), "{answer:?}");
    // Mallory reads nothing more. Alice holds the job and what she queued,
    // within the bound the job's sizes give...
    let held = until(&alice, "Alice queues her answer", |c| c.queued_bytes > 0).await;
    assert_eq!(held.job_streams_open, 1);
    assert!(held.queued_bytes <= 40 * 3010 + (4 << 20), "{held:?}");
    // ...until her message timeout fails the job and the writer, which
    // cannot hand Mallory a frame either, resets the stream.
    until(&alice, "the stalled job is let go", |c| {
        c.job_streams_open == 0 && c.queued_bytes == 0
    })
    .await;
    let record = alice.job(&request.manifest.job_id);
    assert_eq!(record.outcome, unseen::node::store::Outcome::Failed);
    a_legitimate_job_still_runs(&bob, 3000).await;
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// A peer that announces a frame and stops halfway holds a stream only
/// until the message timeout; nothing is recorded, nothing is left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_mid_frame_is_let_go_at_the_message_timeout() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), impatient).await;
    let jobs_before = alice.jobs().len();
    let mut stream: RawStream = mallory.open().await;
    let mut cut = 1000u32.to_be_bytes().to_vec();
    cut.extend([1u8; 10]);
    stream.send_raw(&cut).await;
    until(&alice, "the half frame's stream opens", |c| {
        c.job_streams_open == 1
    })
    .await;
    until(&alice, "the half frame's stream is let go", |c| {
        c.job_streams_open == 0
    })
    .await;
    assert_eq!(alice.jobs().len(), jobs_before, "nothing was recorded");
    a_legitimate_job_still_runs(&bob, 100).await;
    drop(stream);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Finding 7: nothing limited how many jobs one peer ran at once; 200
/// streams that say nothing each held a task until its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_silent_streams_hold_only_the_per_peer_job_limit() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), |c| {
        c.limits.max_jobs_per_peer = 4;
    })
    .await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        let mut stream = mallory.open().await;
        // A stream exists for the node once it carries a byte.
        stream.send_raw(&[0]).await;
        if held.len() < 4 {
            held.push(stream);
            let n = held.len() as u64;
            until(&alice, "the stream is held", |c| c.job_streams_open == n).await;
            continue;
        }
        match stream.recv().await {
            Some(PeerMessage::JobRefused { reason }) => {
                assert!(reason.contains("at most 4 jobs"), "{reason}");
                refused += 1;
            }
            other => panic!("stream over the limit got {other:?}"),
        }
    }
    assert_eq!(refused, 196);
    let now = counters(&alice);
    assert_eq!(now.job_streams_open, 4, "{now:?}");
    assert!(now.streams_refused >= 196, "{now:?}");
    // Bob's jobs are his own: Mallory's four do not crowd him out.
    a_legitimate_job_still_runs(&bob, 100).await;
    drop(held);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Findings 7 and 8: every refused request was recorded and logged, so a
/// flood of badly signed requests wrote without bound. Past the per-peer
/// refusal rate the node answers without reading, and records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_badly_signed_requests_is_refused_unread_past_the_rate() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), |c| {
        c.limits.max_refusals_per_peer_per_minute = 10;
    })
    .await;
    alice.grant("mallory", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
    });
    let audit_before = alice.store().audit_entries().expect("audit").len();
    let mut unread = 0;
    for _ in 0..200 {
        let mut request = psi_ca_request(&mallory, &alice, 10);
        request.requester_signature[0] ^= 1;
        let (_, answer) = mallory.ask(&request).await;
        match answer {
            PeerMessage::JobRefused { reason } if reason.contains("too many of your requests") => {
                unread += 1;
            }
            PeerMessage::JobRefused { reason } => {
                assert!(reason.contains("signature"), "{reason}");
            }
            other => panic!("a badly signed request got {other:?}"),
        }
    }
    // Ten refusals a minute, and a few more refilled while the flood ran;
    // each read refusal is one job record and its audit entries.
    let read = 200 - unread;
    assert!(read <= 15, "{read} requests read and refused");
    let recorded = alice.store().audit_entries().expect("audit").len() - audit_before;
    assert!(
        recorded <= 2 * read,
        "{recorded} audit entries for {read} refusals"
    );
    assert!(counters(&alice).streams_refused >= 185);
    a_legitimate_job_still_runs(&bob, 100).await;
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Counts the log lines that mention a refused handshake, across the test
/// binary (only the storm test causes any).
#[derive(Clone, Default)]
struct RefusedHandshakeLines(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl std::io::Write for RefusedHandshakeLines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if String::from_utf8_lossy(line).contains("refused a") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Finding 7: nothing limited connections. A registered peer opening 30 and
/// a stranger failing 50 handshakes hold no more than the per-peer limit.
/// Finding 12: each refused handshake wrote two warnings; now a few lines a
/// minute say so, and a count follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_holds_only_the_per_peer_connection_limit() {
    let lines = RefusedHandshakeLines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .init();
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), |c| {
        c.limits.max_connections_per_peer = 4;
    })
    .await;
    let mut kept = Vec::new();
    let mut closed = 0;
    for _ in 0..30 {
        let connection = mallory.another_connection().await.expect("handshake");
        // The node closes a connection over the limit as soon as it has it.
        let over = tokio::time::timeout(Duration::from_secs(2), connection.closed()).await;
        match over {
            Ok(reason) => {
                assert!(
                    format!("{reason}").contains("connections per peer"),
                    "{reason}"
                );
                closed += 1;
            }
            Err(_) => kept.push(connection),
        }
    }
    // Mallory's first connection plus three more.
    assert_eq!(kept.len(), 3);
    assert_eq!(closed, 27);
    let stranger = TestNode::create(root.path(), "stranger", |_| {});
    let key = || {
        unseen::node::identity::Identity::load(&unseen::node::config::NodePaths::new(&stranger.dir))
            .expect("identity")
    };
    for _ in 0..50 {
        let attempt = HandRequester::unregistered(&stranger, "stranger", key(), &alice).await;
        assert!(
            refused(attempt.map(|a| a.connection)).await,
            "a stranger was let in"
        );
    }
    let now = until(&alice, "the storm is counted", |c| {
        c.handshakes_refused >= 50
    })
    .await;
    assert_eq!(now.connections_open, 4, "{now:?}");
    assert_eq!(now.connections_refused, 27, "{now:?}");
    // Five a minute from the certificate check and five from the listener.
    let logged = lines.0.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (1..=10).contains(&logged),
        "{logged} lines for 50 refused handshakes"
    );
    a_legitimate_job_still_runs(&bob, 100).await;
    drop(kept);
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Finding 9: `peer remove` changed the registry, but a connected peer kept
/// its connection and its streams until it chose to leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_removed_mid_connection_is_cut_off_at_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), |_| {}).await;
    let mut stream = mallory.open().await;
    stream.send_raw(&[0]).await;
    until(&alice, "Mallory's stream is open", |c| {
        c.job_streams_open == 1
    })
    .await;

    alice.store().remove_peer("mallory").expect("remove");
    assert_eq!(alice.peers_changed(), 1, "one live connection closed");
    let reason = tokio::time::timeout(Duration::from_secs(10), mallory.connection.closed())
        .await
        .expect("the connection closes at once");
    assert!(format!("{reason}").contains("removed"), "{reason}");
    assert!(mallory.open_checked().await.is_err(), "no new stream");
    assert!(
        refused(mallory.another_connection().await).await,
        "no new connection"
    );
    let now = until(&alice, "Mallory holds nothing", |c| {
        c.job_streams_open == 0 && c.connections_open == 0
    })
    .await;
    assert_eq!(now.connections_closed_for_removal, 1);
    a_legitimate_job_still_runs(&bob, 100).await;
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}

/// Finding 2: a job had only a per-message timeout, so a peer that answers
/// just inside it, message after message, held a job as long as it liked.
/// The whole job now has a deadline from its sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_outlives_its_deadline_is_stopped_whatever_the_peer_sends() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob, mallory) = alice_bob_and_mallory(root.path(), |c| {
        c.network.message_timeout_secs = 600;
        c.limits.job_seconds_base = 2;
        c.limits.job_seconds_per_million_ids = 1;
    })
    .await;
    alice.grant("mallory", "customers", |g| {
        g.protocols = vec![GrantedProtocol::PsiCa];
    });
    let request = psi_ca_request(&mallory, &alice, 10);
    let (mut stream, answer) = mallory.ask(&request).await;
    assert!(matches!(answer, PeerMessage::JobAccepted(_)), "{answer:?}");
    // Mallory takes Alice's opening and then keeps quiet, well inside the
    // ten-minute message timeout.
    let opening = stream.recv().await;
    assert!(matches!(opening, Some(PeerMessage::Psi(_))), "{opening:?}");
    let now = until(&alice, "the deadline stops the job", |c| {
        c.jobs_over_deadline == 1 && c.job_streams_open == 0
    })
    .await;
    assert_eq!(now.queued_bytes, 0);
    let record = alice.job(&request.manifest.job_id);
    assert_eq!(record.outcome, unseen::node::store::Outcome::Failed);
    assert!(
        record
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("deadline")),
        "{record:?}"
    );
    a_legitimate_job_still_runs(&bob, 100).await;
    support::stop_all(&mut [&mut alice, &mut bob]).await;
}
