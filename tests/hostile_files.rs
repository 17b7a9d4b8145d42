//! Hostile files and local access at the node's edge (issue 6, findings 11
//! and 13): an output path the job cannot write is refused before admission,
//! so nothing is charged, recorded or sent to the peer; the node directory,
//! its database and its control socket are for the node's user alone.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{Job, TestNode, ids, pair, run, stop_all};
use unseen::node::config::NodePaths;

/// No job on either node and no use of either grant: the request never
/// reached admission.
fn assert_nothing_happened(alice: &TestNode, bob: &TestNode) {
    assert!(alice.jobs().is_empty(), "alice recorded {:?}", alice.jobs());
    assert!(bob.jobs().is_empty(), "bob recorded {:?}", bob.jobs());
    for node in [alice, bob] {
        for (grant, usage) in node.store().grants().expect("grants") {
            assert_eq!(usage.jobs_total, 0, "grant {} was charged", grant.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_output_path_is_refused_before_anything_is_charged_or_sent() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut alice, mut bob) = pair(root.path(), &ids(0..40), &ids(20..60));
    let own_file = alice
        .store()
        .dataset("customers")
        .expect("store")
        .expect("dataset")
        .summary
        .path;
    let cases = [
        (root.path().join("no/such/dir/out.csv"), "does not exist"),
        (root.path().to_path_buf(), "is a directory"),
        (own_file.clone(), "is the file of dataset"),
    ];
    for (out, expected) in cases {
        for job in [Job::psi("bob"), Job::psi_ca("bob")] {
            let error = run(
                &alice,
                Job {
                    out: Some(out.clone()),
                    ..job
                },
            )
            .await
            .expect_err("a bad --out is refused");
            assert!(error.contains(expected), "{out:?}: {error}");
            assert_nothing_happened(&alice, &bob);
        }
    }
    // The dataset is untouched, and a good path still works.
    let out = root.path().join("common.csv");
    let report = run(
        &alice,
        Job {
            out: Some(out.clone()),
            ..Job::psi("bob")
        },
    )
    .await
    .expect("a job with a writable --out");
    assert_eq!(report.intersection_size, Some(20));
    assert_eq!(report.rows_written, Some(20));
    assert_eq!(
        std::fs::read_to_string(&out)
            .expect("output")
            .lines()
            .count(),
        21,
        "a header and the 20 common rows"
    );
    let reloaded = unseen::node::dataset::scan(&own_file, "id").expect("dataset intact");
    assert_eq!(reloaded.distinct_ids, 40);
    stop_all(&mut [&mut alice, &mut bob]).await;
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_directory_database_and_control_socket_are_private() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut node = TestNode::start_new(root.path(), "alice");
    let paths = NodePaths::new(&node.dir);
    assert_eq!(mode(&node.dir), 0o700, "node directory");
    assert_eq!(mode(&paths.database()), 0o600, "node.db");
    assert_eq!(mode(&paths.control_socket()), 0o600, "control socket");
    assert_eq!(mode(&paths.key()), 0o600, "node.key");
    node.stop().await;

    // Loosened by hand (a copy, an archive): the next open tightens them.
    std::fs::set_permissions(&node.dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(paths.database(), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    node.start();
    assert_eq!(mode(&node.dir), 0o700, "node directory, tightened");
    assert_eq!(mode(&paths.database()), 0o600, "node.db, tightened");
    for journal in ["node.db-wal", "node.db-shm"] {
        let path = node.dir.join(journal);
        if path.exists() {
            assert_eq!(mode(&path) & 0o077, 0, "{journal} follows node.db");
        }
    }
    node.stop().await;
}
