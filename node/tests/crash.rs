//! kill -9 of either side at each step of a job: before admission, after the
//! charge, mid-stream, and before the finish record. After the killed node
//! restarts: no result was released twice, nothing was charged twice (a retry
//! under the same id included), both audit logs verify, and a new job runs.
//!
//! Each node process kills itself with SIGKILL at the named step
//! (`UNSEEN_CRASH_AT`, see `node/src/daemon/crash.rs`), so the kill lands at exactly
//! that point without any sleep or timing guess.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use unseen_node::audit::AuditEvent;
use unseen_node::clock::SystemClock;
use unseen_node::config::NodePaths;
use unseen_node::identity::Identity;
use unseen_node::store::Store;

mod support;
use support::{Served, UNSEEN, fingerprint, ok, unseen};

const PURPOSE: &str = "crash drill";

fn init_with_data(root: &Path, name: &str, ids: std::ops::Range<u32>) -> PathBuf {
    let dir = root.join(name);
    let out = Command::new(UNSEEN)
        .arg("init")
        .arg(&dir)
        .args(["--name", name, "--listen", "127.0.0.1:0"])
        .output()
        .expect("init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Notice a killed peer within seconds, not the default half minute.
    let config = dir.join("unseen.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("idle_timeout_secs = 30", "idle_timeout_secs = 3"),
    )
    .expect("config");
    let csv = root.join(format!("{name}.csv"));
    let mut text = String::from("id\n");
    for i in ids {
        text.push_str(&format!("c{i}\n"));
    }
    std::fs::write(&csv, text).expect("csv");
    let csv = csv.to_str().expect("utf-8");
    ok(
        &dir,
        &[
            "dataset",
            "add",
            "customers",
            csv,
            "--id-column",
            "id",
            "--grade",
            "general",
        ],
    );
    dir
}

fn introduce(dir: &Path, peer: &str, node: &Served, peer_dir: &Path) {
    ok(
        dir,
        &[
            "peer",
            "add",
            peer,
            "--addr",
            &node.addr,
            "--fingerprint",
            &fingerprint(peer_dir),
        ],
    );
    ok(
        dir,
        &[
            "grant",
            "add",
            "--peer",
            peer,
            "--dataset",
            "customers",
            "--protocols",
            "psi-ca",
            "--purpose",
            PURPOSE,
            "--expires",
            "1d",
            "--max-jobs",
            "10",
        ],
    );
}

fn run(dir: &Path, retry: Option<&str>) -> Output {
    let mut args = vec!["run", "psi", "--peer", "bob", "--dataset", "customers"];
    args.extend([
        "--peer-dataset",
        "customers",
        "--purpose",
        PURPOSE,
        "--cardinality-only",
    ]);
    if let Some(id) = retry {
        args.extend(["--retry", id]);
    }
    args.push("--json");
    unseen(dir, &args)
}

fn store(dir: &Path) -> Store {
    let paths = NodePaths::new(dir);
    let identity = Arc::new(Identity::load(&paths).expect("identity"));
    Store::open(&paths.database(), identity, Arc::new(SystemClock)).expect("store")
}

/// For every job id on the node: charges less refunds is 0 or 1, and at
/// most one release; the ledger holds exactly the standing charges; the log
/// verifies.
fn assert_consistent(dir: &Path) {
    let store = store(dir);
    let mut charged = std::collections::BTreeMap::<String, i32>::new();
    let mut released = std::collections::BTreeMap::<String, u32>::new();
    for entry in store.audit_entries().expect("audit") {
        match entry.expect("readable entry").event {
            AuditEvent::JobAdmitted {
                job_id,
                newly_charged: true,
                ..
            } => *charged.entry(job_id).or_default() += 1,
            AuditEvent::JobFailed {
                job_id,
                refunded: true,
                ..
            }
            | AuditEvent::JobRefused {
                job_id,
                refunded: true,
                ..
            } => *charged.entry(job_id).or_default() -= 1,
            AuditEvent::JobFinished { job_id, .. } => *released.entry(job_id).or_default() += 1,
            _ => {}
        }
    }
    assert!(
        charged.values().all(|&n| n == 0 || n == 1),
        "charged twice, or refunded more than charged: {charged:?}"
    );
    assert!(
        released.values().all(|&n| n <= 1),
        "released twice: {released:?}"
    );
    let standing = charged.values().filter(|&&n| n == 1).count() as u64;
    let ledger: u64 = store
        .grants()
        .expect("grants")
        .iter()
        .map(|(_, usage)| usage.jobs_total)
        .sum();
    assert_eq!(ledger, standing, "the ledger against the log: {charged:?}");
    let verified = ok(dir, &["audit", "verify"]);
    assert!(verified.contains("audit log verified"), "{verified}");
}

fn job_ids(dir: &Path) -> Vec<String> {
    ok(dir, &["jobs", "--json"])
        .lines()
        .map(|line| {
            let job: serde_json::Value = serde_json::from_str(line).expect("json");
            job["id"].as_str().expect("id").to_string()
        })
        .collect()
}

/// Kills `side` ("requester" is alice, "responder" is bob) at `step`.
fn crash_drill(side: &str, step: &str) {
    let root = tempfile::tempdir().expect("tempdir");
    let alice = init_with_data(root.path(), "alice", 0..300);
    let bob = init_with_data(root.path(), "bob", 200..500);
    let crash = format!("{side}:{step}");
    let requester_crashes = side == "requester";
    let mut alice_node =
        Served::start_crashing(&alice, requester_crashes.then_some(crash.as_str()));
    let mut bob_node = Served::start_crashing(&bob, (!requester_crashes).then_some(crash.as_str()));
    introduce(&alice, "bob", &bob_node, &bob);
    introduce(&bob, "alice", &alice_node, &alice);

    let out = run(&alice, None);
    // Once the requester has confirmed it holds its output, the responder's
    // death cannot take it back; before that, the job cannot complete.
    if crash != "responder:before-finish" {
        assert!(!out.status.success(), "the job cannot complete: {out:?}");
    }
    // A killed peer is not a certificate problem: no TLS hint.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("has not registered this node"),
        "{crash}: {stderr}"
    );
    // A responder killed inside the job is noticed by the keep-alives and
    // said plainly (the idle timeout is seconds, not half a minute).
    if matches!(
        crash.as_str(),
        "responder:after-charge" | "responder:mid-stream"
    ) {
        assert!(stderr.contains("stopped answering"), "{crash}: {stderr}");
    }
    let restarted = if requester_crashes {
        alice_node.wait_killed();
        &alice
    } else {
        bob_node.wait_killed();
        &bob
    };
    if requester_crashes {
        drop(alice_node);
        alice_node = Served::start_crashing(&alice, None);
    } else {
        drop(bob_node);
        bob_node = Served::start_crashing(&bob, None);
        // Bob may listen elsewhere now: tell alice.
        ok(&alice, &["peer", "remove", "bob"]);
        introduce(&alice, "bob", &bob_node, &bob);
    }
    assert_consistent(&alice);
    assert_consistent(&bob);

    // A retry under the same id never releases or charges twice.
    if let Some(id) = job_ids(restarted).into_iter().chain(job_ids(&alice)).next() {
        let _ = run(&alice, Some(&id));
        assert_consistent(&alice);
        assert_consistent(&bob);
    }

    // Both nodes serve a new job, with the right answer.
    let out = run(&alice, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json");
    assert_eq!(report["intersection_size"], 100);
    assert_consistent(&alice);
    assert_consistent(&bob);
    drop((alice_node, bob_node));
}

#[test]
fn requester_killed_before_admission() {
    crash_drill("requester", "before-admission");
}

#[test]
fn requester_killed_after_the_charge() {
    crash_drill("requester", "after-charge");
}

#[test]
fn requester_killed_mid_stream() {
    crash_drill("requester", "mid-stream");
}

#[test]
fn requester_killed_before_the_finish_record() {
    crash_drill("requester", "before-finish");
}

#[test]
fn responder_killed_before_admission() {
    crash_drill("responder", "before-admission");
}

#[test]
fn responder_killed_after_the_charge() {
    crash_drill("responder", "after-charge");
}

#[test]
fn responder_killed_mid_stream() {
    crash_drill("responder", "mid-stream");
}

#[test]
fn responder_killed_before_the_finish_record() {
    crash_drill("responder", "before-finish");
}
