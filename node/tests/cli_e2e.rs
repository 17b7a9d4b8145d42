//! Two `unseen serve` processes on 127.0.0.1, driven by the `unseen` CLI as an
//! operator would, checked against a plain intersection of the same files.
//!
//! This test lives in the node crate because only there does Cargo build the
//! `unseen` binary for it and say where (`CARGO_BIN_EXE_unseen`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use unicode_normalization::UnicodeNormalization;

mod support;
use support::*;

/// Ids as an operator's exports have them: padding, duplicates, empty ids
/// and one customer written in two Unicode forms.
fn ids(range: std::ops::Range<u32>, messy: bool) -> Vec<String> {
    let mut ids: Vec<String> = range.map(|i| format!("cust-{i}")).collect();
    if messy {
        ids.push(" cust-350 ".into());
        ids.push("cust-351".into());
        ids.push(String::new());
        ids.push("Zoe\u{301}".into()); // e + combining acute: NFD
    } else {
        ids.push("Zo\u{e9}".into()); // é precomposed: NFC
    }
    ids
}

fn normalise(ids: &[String]) -> BTreeSet<String> {
    ids.iter()
        .map(|id| id.trim().nfc().collect::<String>())
        .filter(|id| !id.is_empty())
        .collect()
}

/// `unseen run psi` from `dir` to peer `bob`'s dataset `clients`, with extra flags.
fn run_psi(dir: &Path, purpose: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "psi", "--peer", "bob", "--dataset", "customers"];
    args.extend(["--peer-dataset", "clients", "--purpose", purpose]);
    args.extend(extra);
    unseen(dir, &args)
}

#[test]
fn two_node_processes_run_psi_and_psi_ca_through_the_cli() {
    let root = tempfile::tempdir().expect("tempdir");
    let alice = init(root.path(), "alice");
    let bob = init(root.path(), "bob");
    let alice_ids = ids(0..400, true);
    let bob_ids = ids(250..900, false);
    let alice_csv = root.path().join("alice.csv");
    let bob_csv = root.path().join("bob.csv");
    write_csv(&alice_csv, &alice_ids);
    write_csv(&bob_csv, &bob_ids);
    let expected: BTreeSet<String> = normalise(&alice_ids)
        .intersection(&normalise(&bob_ids))
        .cloned()
        .collect();
    assert_eq!(expected.len(), 151, "150 shared customers plus Zoé");

    let id_col = [
        "--id-column",
        "customer id",
        "--grade",
        "general",
        "--personal",
    ];
    let mut add = vec!["dataset", "add", "customers", path(&alice_csv)];
    add.extend(id_col);
    add.extend(["--consent", "CRM-2026-07"]);
    ok(&alice, &add);
    let mut add = vec!["dataset", "add", "clients", path(&bob_csv)];
    add.extend(id_col);
    add.extend(["--anonymised", "pseudonymous ids only"]);
    ok(&bob, &add);

    let alice_node = Served::start(&alice);
    let bob_node = Served::start(&bob);
    let alice_fp = introduce(&alice, &alice_node, &bob, &bob_node);
    let status = ok(&alice, &["status"]);
    assert!(
        status.contains("node alice is serving") && status.contains(&alice_node.addr),
        "{status}"
    );
    let purpose = "loyalty overlap study";
    let grant = [
        "--protocols",
        "psi,psi-ca",
        "--purpose",
        purpose,
        "--expires",
        "30d",
    ];
    let mut add = vec!["grant", "add", "--peer", "bob", "--dataset", "customers"];
    add.extend(grant);
    ok(&alice, &add);
    let mut add = vec!["grant", "add", "--peer", "alice", "--dataset", "clients"];
    add.extend(grant);
    add.extend(["--max-jobs", "3"]);
    let bob_grant = ok(&bob, &add);
    assert!(bob_grant.trim().starts_with("g-"), "{bob_grant}");

    let report = stdout_json(&run_psi(&alice, purpose, &["--cardinality-only", "--json"]));
    assert_eq!(report["intersection_size"], expected.len() as u64);
    assert_eq!(report["own_set_size"], normalise(&alice_ids).len() as u64);
    assert_eq!(report["peer_set_size"], normalise(&bob_ids).len() as u64);
    assert_eq!(report["own_empty_id_rows"], 1);

    let out = root.path().join("matches.csv");
    let report = stdout_json(&run_psi(&alice, purpose, &["--out", path(&out), "--json"]));
    assert_eq!(report["intersection_size"], expected.len() as u64);
    let mut reader = csv::Reader::from_path(&out).expect("output csv");
    let rows: Vec<String> = reader
        .records()
        .map(|r| r.expect("row")[1].trim().nfc().collect())
        .collect();
    let expected_rows: Vec<String> = alice_ids
        .iter()
        .map(|id| id.trim().nfc().collect::<String>())
        .filter(|id| expected.contains(id))
        .collect();
    assert_eq!(
        rows, expected_rows,
        "alice's own matching rows, in file order"
    );

    // Both nodes recorded both jobs.
    for (dir, role) in [(&alice, "requester"), (&bob, "responder")] {
        let jobs: Vec<serde_json::Value> = ok(dir, &["jobs", "--json"]).lines().map(json).collect();
        assert_eq!(jobs.len(), 2, "{dir:?}");
        for job in &jobs {
            assert_eq!(job["role"], role);
            assert_eq!(job["outcome"], "completed");
            assert!(job["bytes_sent"].as_u64().expect("bytes") > 0);
        }
    }

    // A dataset whose file changed since registration is refused until it is
    // registered again, and the refusal is recorded.
    std::fs::write(&alice_csv, "region,customer id,score\nr0,cust-1,0\n").expect("rewrite");
    let failed = run_psi(&alice, purpose, &["--cardinality-only"]);
    assert!(!failed.status.success());
    let message = String::from_utf8_lossy(&failed.stderr);
    assert!(
        message.contains("changed") && message.contains("dataset add"),
        "{message}"
    );
    let mut add = vec!["dataset", "add", "customers", path(&alice_csv)];
    add.extend(["--id-column", "customer id", "--grade", "general"]);
    ok(&alice, &add);
    // One id is below bob's k = 10: bob refuses before any data moves.
    let refused = run_psi(&alice, purpose, &["--cardinality-only"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("below the data owner's minimum group size"),
        "{stderr}"
    );

    write_csv(&alice_csv, &alice_ids);
    ok(&alice, &add);
    let report = stdout_json(&run_psi(&alice, purpose, &["--cardinality-only", "--json"]));
    assert_eq!(report["intersection_size"], expected.len() as u64);

    // Bob's grant allowed three jobs; the fourth is refused, and says why.
    let quota = ok(&bob, &["quota"]);
    assert!(quota.contains("3 of 3 (0 left)"), "{quota}");
    let refused = run_psi(&alice, purpose, &["--cardinality-only"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("quota is exhausted"));

    // Both audit logs verify, in place and as exports checked with the
    // certificate alone; an edited export does not.
    let auditor = root.path().join("auditor");
    for (dir, name) in [(&alice, "alice"), (&bob, "bob")] {
        let verified = ok(dir, &["audit", "verify"]);
        assert!(verified.contains("audit log verified"), "{verified}");
        let export = root.path().join(format!("{name}-audit.jsonl"));
        ok(dir, &["audit", "export", path(&export)]);
        let cert = export.with_extension("crt");
        let check = [
            "audit",
            "verify",
            "--file",
            path(&export),
            "--cert",
            path(&cert),
        ];
        let checked = unseen(&auditor, &check);
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        // It says which certificate it trusted, and can be told which to require.
        let own_fp = fingerprint(dir);
        assert!(
            String::from_utf8_lossy(&checked.stdout).contains(&own_fp),
            "{}",
            String::from_utf8_lossy(&checked.stdout)
        );
        let mut pinned = check.to_vec();
        pinned.extend(["--fingerprint", &own_fp]);
        assert!(unseen(&auditor, &pinned).status.success());
        let other_fp = fingerprint(if name == "alice" { &bob } else { &alice });
        let mut wrong = check.to_vec();
        wrong.extend(["--fingerprint", &other_fp]);
        let refused = unseen(&auditor, &wrong);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains(&other_fp) && stderr.contains(&own_fp),
            "{stderr}"
        );
        // A field the node never wrote, anywhere in an entry, is refused: it
        // would otherwise be dropped before hashing and pass as signed.
        let text = std::fs::read_to_string(&export).expect("export");
        for object in [
            "{\"seq\":",
            "\"policy\":{",
            "\"legal_basis\":{",
            "\"quota\":{",
            "\"grant\":{",
            "\"manifest\":{",
            "\"requester\":{",
            "\"terms\":{",
            "\"charge\":{",
            "\"release\":{",
            "\"event\":{",
        ] {
            let Some(at) = text.find(object) else {
                assert!(
                    matches!(object, "\"legal_basis\":{" | "\"event\":{"),
                    "{name}'s export has no {object}"
                );
                continue;
            };
            let at = at + object.find('{').expect("an object") + 1;
            let injected = format!(
                "{}\"approved_by\":\"the board\",{}",
                &text[..at],
                &text[at..]
            );
            std::fs::write(&export, injected).expect("inject");
            let added = unseen(&auditor, &check);
            let stderr = String::from_utf8_lossy(&added.stderr);
            assert!(
                !added.status.success() && stderr.contains("unreadable"),
                "{name}: a field injected after {object} passed: {stderr}"
            );
        }
        std::fs::write(&export, text.replacen("general", "core", 1)).expect("tamper");
        let tampered = unseen(&auditor, &check);
        assert!(!tampered.status.success());
        assert!(String::from_utf8_lossy(&tampered.stderr).contains("does NOT verify"));
    }

    // A third node that alice never registered is refused in the handshake
    // and alice logs it.
    let mallory = init(root.path(), "mallory");
    let mallory_node = Served::start(&mallory);
    ok(
        &mallory,
        &[
            "peer",
            "add",
            "alice",
            "--addr",
            &alice_node.addr,
            "--fingerprint",
            &alice_fp,
        ],
    );
    let before = ok(&alice, &["jobs", "--json"]).lines().count();
    let mut add = vec!["dataset", "add", "stolen", path(&bob_csv)];
    add.extend(["--id-column", "customer id", "--grade", "general"]);
    ok(&mallory, &add);
    let mut add = vec!["grant", "add", "--peer", "alice", "--dataset", "stolen"];
    add.extend([
        "--protocols",
        "psi",
        "--purpose",
        purpose,
        "--expires",
        "1d",
    ]);
    ok(&mallory, &add);
    let mut args = vec!["run", "psi", "--peer", "alice", "--dataset", "stolen"];
    args.extend(["--peer-dataset", "customers", "--purpose", purpose]);
    let refused = unseen(&mallory, &args);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("has not registered this node"), "{stderr}");
    let after = ok(&alice, &["jobs", "--json"]).lines().count();
    assert_eq!(after, before, "no job from mallory reached alice's log");
    assert!(
        alice_node.wait_for_log("not a registered peer"),
        "alice logs the refused handshake"
    );
    drop(mallory_node);
    drop(bob_node);
    drop(alice_node);
}

#[test]
fn cli_errors_name_the_input_and_the_fix() {
    let root = tempfile::tempdir().expect("tempdir");
    let missing = root.path().join("nowhere");
    let out = unseen(&missing, &["id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unseen init"));

    let node = init(root.path(), "n1");
    let out = unseen(
        &node,
        &[
            "peer",
            "add",
            "p",
            "--addr",
            "127.0.0.1:1",
            "--fingerprint",
            "zz",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
    let out = unseen(
        &node,
        &[
            "dataset",
            "add",
            "d",
            "/no/such.csv",
            "--id-column",
            "id",
            "--grade",
            "general",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such.csv"));
    let folder = path(&node).to_string();
    let out = unseen(
        &node,
        &[
            "dataset",
            "add",
            "d",
            &folder,
            "--id-column",
            "id",
            "--grade",
            "general",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("is a directory").count(),
        1,
        "said once, with the fix: {stderr}"
    );
    assert!(stderr.contains("give the CSV file inside it"), "{stderr}");
    let out = unseen(
        &node,
        &[
            "dataset",
            "add",
            "d",
            "x.csv",
            "--id-column",
            "id",
            "--grade",
            "secret",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("general, important or core"));
    let mut args = vec![
        "grant",
        "add",
        "--peer",
        "p",
        "--dataset",
        "d",
        "--protocols",
        "psi",
    ];
    args.extend(["--purpose", "x", "--expires", "soon"]);
    let out = unseen(&node, &args);
    assert!(String::from_utf8_lossy(&out.stderr).contains("7d"));
    let out = unseen(
        &node,
        &[
            "run",
            "psi",
            "--peer",
            "p",
            "--dataset",
            "d",
            "--peer-dataset",
            "e",
            "--purpose",
            "x",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unseen serve"));
    // A bad --out is refused by the CLI itself, before the node is asked.
    let out = unseen(
        &node,
        &[
            "run",
            "psi",
            "--peer",
            "p",
            "--dataset",
            "d",
            "--peer-dataset",
            "e",
            "--purpose",
            "x",
            "--out",
            "/no/such/dir/out.csv",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("/no/such/dir") && stderr.contains("create it"),
        "{stderr}"
    );
    let out = unseen(&node, &["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not serving"));
    let again = Command::new(UNSEEN)
        .arg("init")
        .arg(&node)
        .args(["--name", "n1", "--listen", "127.0.0.1:0"])
        .output()
        .expect("init");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a node"));
}

#[test]
fn a_node_killed_mid_job_loses_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let alice = init(root.path(), "alice");
    let bob = init(root.path(), "bob");
    // Alice notices a dead peer after 3 s of silence rather than 30.
    let config = alice.join("unseen.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("idle_timeout_secs = 30", "idle_timeout_secs = 3"),
    )
    .expect("config");
    // Large enough that the job is still computing when bob is killed a few
    // milliseconds after admitting it.
    let big: Vec<String> = (0..60_000).map(|i| format!("id-{i}")).collect();
    let (alice_csv, bob_csv) = (root.path().join("a.csv"), root.path().join("b.csv"));
    write_csv(&alice_csv, &big);
    write_csv(&bob_csv, &big);
    let add = |dir: &Path, name: &str, csv: &Path| {
        let mut args = vec!["dataset", "add", name, path(csv)];
        args.extend(["--id-column", "customer id", "--grade", "general"]);
        ok(dir, &args);
    };
    add(&alice, "customers", &alice_csv);
    add(&bob, "clients", &bob_csv);
    let alice_node = Served::start(&alice);
    let mut bob_node = Served::start(&bob);
    introduce(&alice, &alice_node, &bob, &bob_node);
    let purpose = "crash drill";
    let grant = [
        "--protocols",
        "psi-ca",
        "--purpose",
        purpose,
        "--expires",
        "1d",
    ];
    let mut args = vec!["grant", "add", "--peer", "bob", "--dataset", "customers"];
    args.extend(grant);
    ok(&alice, &args);
    let mut args = vec!["grant", "add", "--peer", "alice", "--dataset", "clients"];
    args.extend(grant);
    ok(&bob, &args);

    let requester = std::thread::spawn({
        let alice = alice.clone();
        move || run_psi(&alice, purpose, &["--cardinality-only"])
    });
    // Bob logs the admission once the job is charged and recorded; then he dies.
    assert!(
        bob_node.wait_for_log("admitted job"),
        "bob admitted the job"
    );
    bob_node.child.kill().expect("kill -9 bob");
    bob_node.child.wait().expect("reap bob");

    let outcome = requester.join().expect("requester thread");
    assert!(
        !outcome.status.success(),
        "the job cannot finish without bob"
    );
    let alice_jobs: Vec<serde_json::Value> =
        ok(&alice, &["jobs", "--json"]).lines().map(json).collect();
    assert_eq!(alice_jobs.len(), 1);
    assert_eq!(alice_jobs[0]["outcome"], "failed");

    // Bob's process died with the job running; restarting marks it.
    drop(bob_node);
    let _bob_again = Served::start(&bob);
    let bob_jobs: Vec<serde_json::Value> =
        ok(&bob, &["jobs", "--json"]).lines().map(json).collect();
    assert_eq!(bob_jobs.len(), 1);
    assert_eq!(bob_jobs[0]["id"], alice_jobs[0]["id"]);
    assert_eq!(bob_jobs[0]["outcome"], "interrupted");
    // The charge made before the first protocol message survived the crash.
    let quota = ok(&bob, &["quota"]);
    assert!(quota.contains("1 of 10 (9 left)"), "{quota}");
    for dir in [&alice, &bob] {
        let verified = ok(dir, &["audit", "verify"]);
        assert!(verified.contains("audit log verified"), "{verified}");
    }
}
