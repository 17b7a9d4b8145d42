//! `unseen grant add` makes safe grants by default (issue 6, finding 10):
//! caps filled when flags are absent, lifted only by an explicit
//! `unlimited`; important data only with noise and a finite budget; no
//! budget beside membership; one sentence saying what the grant allows; a
//! warning when membership is granted on personal data. End to end, a grant
//! made with no options stops a differencing loop.

mod support;

use std::path::Path;

use support::*;
use unseen_node::grant::DEFAULT_MAX_JOBS;

fn grant_add(dir: &Path, dataset: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["grant", "add", "--peer", "alice", "--dataset", dataset];
    args.extend(["--purpose", "loyalty study", "--expires", "30d"]);
    args.extend(extra);
    unseen(dir, &args)
}

fn stored_grants(dir: &Path) -> Vec<serde_json::Value> {
    ok(dir, &["grant", "list", "--json"])
        .lines()
        .map(|line| json(line)["grant"].clone())
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Bob, who knows alice, with a general dataset `clients` of 300 ids (no
/// personal data), an important personal one `accounts` of 5,000, and a
/// personal general one `contacts`.
fn bob_with_datasets(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let alice = init(root, "alice");
    let bob = init(root, "bob");
    let addr = "127.0.0.1:9";
    ok(
        &bob,
        &[
            "peer",
            "add",
            "alice",
            "--addr",
            addr,
            "--fingerprint",
            &fingerprint(&alice),
        ],
    );
    let ids = |n: u32| (0..n).map(|i| format!("id-{i}")).collect::<Vec<_>>();
    for (name, count, flags) in [
        ("clients", 300, vec!["--grade", "general"]),
        (
            "accounts",
            5_000,
            vec!["--grade", "important", "--personal", "--consent", "form-7"],
        ),
        (
            "contacts",
            300,
            vec!["--grade", "general", "--personal", "--consent", "form-8"],
        ),
    ] {
        let csv = root.join(format!("{name}.csv"));
        write_csv(&csv, &ids(count));
        let mut args = vec![
            "dataset",
            "add",
            name,
            path(&csv),
            "--id-column",
            "customer id",
        ];
        args.extend(flags);
        ok(&bob, &args);
    }
    (alice, bob)
}

#[test]
fn a_grant_with_no_options_gets_conservative_caps_and_says_so() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_alice, bob) = bob_with_datasets(root.path());

    let made = grant_add(&bob, "clients", &["--protocols", "psi,psi-ca"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stdout = text(&made.stdout);
    let mut lines = stdout.lines();
    assert!(
        lines.next().is_some_and(|id| id.starts_with("g-")),
        "{stdout}"
    );
    let sentence = lines.next().expect("the sentence");
    assert!(
        sentence
            .starts_with("alice may run psi and psi-ca on clients (general) for \"loyalty study\"")
            && sentence.contains("at most 10 jobs per day")
            && sentence.contains("peer sets of at most 1000 ids")
            && sentence.contains("exact counts (no noise)"),
        "{sentence}"
    );
    let stored = stored_grants(&bob);
    assert_eq!(stored[0]["quota"]["max_jobs"], 10);
    assert_eq!(stored[0]["quota"]["period_secs"], 86_400);
    assert_eq!(stored[0]["quota"]["max_set_size"], 1000, "at least 1,000");
    assert!(stored[0]["quota"]["max_rows"].is_null());
    // `grant list` says the same sentence.
    assert!(ok(&bob, &["grant", "list"]).contains(sentence));

    // Explicit limits and explicit opt-outs are kept as given, with a warning.
    let made = grant_add(
        &bob,
        "clients",
        &[
            "--protocols",
            "psi-ca",
            "--max-jobs",
            "unlimited",
            "--max-set-size",
            "unlimited",
            "--max-rows",
            "900",
        ],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stored = stored_grants(&bob);
    assert!(stored[1]["quota"]["max_jobs"].is_null());
    assert!(stored[1]["quota"]["max_set_size"].is_null());
    assert_eq!(stored[1]["quota"]["max_rows"], 900);
    let stderr = text(&made.stderr);
    assert!(
        stderr.contains("any number of jobs") && stderr.contains("peer sets of any size"),
        "{stderr}"
    );
    let bad = grant_add(
        &bob,
        "clients",
        &["--protocols", "psi-ca", "--max-jobs", "lots"],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("`unlimited`"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn important_data_is_granted_only_with_noise_and_a_finite_budget() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_alice, bob) = bob_with_datasets(root.path());

    let refused = grant_add(&bob, "accounts", &["--protocols", "psi-ca"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--epsilon"),
        "{}",
        text(&refused.stderr)
    );
    let refused = grant_add(
        &bob,
        "accounts",
        &["--protocols", "psi", "--epsilon", "0.5"],
    );
    assert!(!refused.status.success());
    let refused = grant_add(
        &bob,
        "accounts",
        &[
            "--protocols",
            "psi-ca",
            "--epsilon",
            "0.5",
            "--epsilon-budget",
            "unlimited",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("finite"),
        "{}",
        text(&refused.stderr)
    );
    assert!(stored_grants(&bob).is_empty(), "nothing was stored");

    let made = grant_add(
        &bob,
        "accounts",
        &["--protocols", "psi-ca", "--epsilon", "0.5"],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stdout = text(&made.stdout);
    assert!(
        stdout.contains("each count noised with epsilon 0.5 from a budget of 5")
            && stdout.contains("peer sets of at most 10000 ids"),
        "{stdout}"
    );
    let stored = stored_grants(&bob);
    assert_eq!(stored[0]["quota"]["epsilon_budget_micros"], 5_000_000);
    assert_eq!(stored[0]["quota"]["delta_budget_nanos"], 10);
}

#[test]
fn a_budget_beside_membership_is_refused_and_membership_on_personal_data_warned() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_alice, bob) = bob_with_datasets(root.path());

    let refused = grant_add(
        &bob,
        "clients",
        &["--protocols", "psi,psi-ca", "--epsilon", "1"],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("separate grant"),
        "{}",
        text(&refused.stderr)
    );
    // Unbounded budgets are the owner's choice on general data.
    let made = grant_add(
        &bob,
        "clients",
        &[
            "--protocols",
            "psi-ca",
            "--epsilon",
            "1",
            "--epsilon-budget",
            "unlimited",
        ],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(text(&made.stdout).contains("an unlimited budget"));

    let made = grant_add(&bob, "contacts", &["--protocols", "psi"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stderr = text(&made.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("personal information"),
        "{stderr}"
    );
    let made = grant_add(&bob, "contacts", &["--protocols", "psi-ca"]);
    assert!(text(&made.stderr).is_empty(), "{}", text(&made.stderr));
}

#[test]
fn a_grant_made_with_no_options_stops_a_differencing_loop() {
    let root = tempfile::tempdir().expect("tempdir");
    let alice = init(root.path(), "alice");
    let bob = init(root.path(), "bob");
    let ids = |range: std::ops::Range<u32>| range.map(|i| format!("id-{i}")).collect::<Vec<_>>();
    let (alice_csv, bob_csv) = (root.path().join("a.csv"), root.path().join("b.csv"));
    write_csv(&alice_csv, &ids(0..100));
    write_csv(&bob_csv, &ids(50..400));
    for (dir, csv) in [(&alice, &alice_csv), (&bob, &bob_csv)] {
        let args = [
            "dataset",
            "add",
            "customers",
            path(csv),
            "--id-column",
            "customer id",
            "--grade",
            "general",
        ];
        ok(dir, &args);
    }
    let (alice_node, bob_node) = (Served::start(&alice), Served::start(&bob));
    introduce(&alice, &alice_node, &bob, &bob_node);
    let study = [
        "--protocols",
        "psi-ca",
        "--purpose",
        "loyalty study",
        "--expires",
        "30d",
    ];
    // Alice lifts her own cap, so it is bob's default that must hold.
    let mut args = vec!["grant", "add", "--peer", "bob", "--dataset", "customers"];
    args.extend(study);
    args.extend(["--max-jobs", "unlimited"]);
    ok(&alice, &args);
    let mut args = vec!["grant", "add", "--peer", "alice", "--dataset", "customers"];
    args.extend(study);
    ok(&bob, &args);

    // Alice asks for the count again and again, as a differencing attack
    // would (each time one candidate more); the default cap ends it.
    let run = || {
        unseen(
            &alice,
            &[
                "run",
                "psi",
                "--peer",
                "bob",
                "--dataset",
                "customers",
                "--peer-dataset",
                "customers",
                "--purpose",
                "loyalty study",
                "--cardinality-only",
                "--json",
            ],
        )
    };
    for job in 1..=DEFAULT_MAX_JOBS {
        let report = stdout_json(&run());
        assert_eq!(report["intersection_size"], 50, "job {job}");
    }
    let refused = run();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("the grant's quota is exhausted"),
        "{}",
        text(&refused.stderr)
    );
    assert!(ok(&bob, &["quota"]).contains("10 of 10 (0 left)"));
}

/// Intersection-sum has no noise yet: `grant add` refuses it on important
/// data and with any --epsilon, saying why; exact sums on general data are
/// granted.
#[test]
fn intersection_sum_is_granted_only_exact_on_general_data() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_alice, bob) = bob_with_datasets(root.path());
    for (dataset, extra) in [
        (
            "accounts",
            &["--epsilon", "0.5", "--epsilon-budget", "5"][..],
        ),
        ("clients", &["--epsilon", "0.5"][..]),
    ] {
        let mut args = vec!["--protocols", "intersection-sum"];
        args.extend(extra);
        let refused = grant_add(&bob, dataset, &args);
        assert!(!refused.status.success(), "{dataset} {extra:?}");
        let stderr = text(&refused.stderr);
        assert!(
            stderr.contains("intersection-sum does not have yet")
                || stderr.contains("grant it without --epsilon"),
            "{stderr}"
        );
    }
    assert!(stored_grants(&bob).is_empty());
    // On important data without a budget it is made, with a warning: it
    // covers only bob's own requests (alice can never run it on accounts).
    let own_use = grant_add(&bob, "accounts", &["--protocols", "intersection-sum"]);
    assert!(own_use.status.success(), "{}", text(&own_use.stderr));
    let said = format!("{}{}", text(&own_use.stdout), text(&own_use.stderr));
    assert!(said.contains("only lets this node ask alice"), "{said}");
    let made = grant_add(&bob, "clients", &["--protocols", "intersection-sum"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(
        text(&made.stdout).contains("alice may run intersection-sum on clients (general)"),
        "{}",
        text(&made.stdout)
    );
}
