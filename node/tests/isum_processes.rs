//! Intersection-sum between two `unseen serve` processes, driven through the
//! CLI as two operators would: datasets, peers and grants added with
//! `unseen`, the job run with `unseen run intersection-sum --json`, the
//! result compared with a join of the two files computed here.

mod support;

use std::collections::BTreeMap;

use support::{Served, init, introduce, ok, path, stdout_json, unseen};

const PURPOSE: &str = "spend of shared customers";

#[test]
fn two_node_processes_run_an_intersection_sum_through_the_cli() {
    let root = tempfile::tempdir().expect("tempdir");
    let (alice, bob) = (init(root.path(), "alice"), init(root.path(), "bob"));
    // Alice has customers c0..c300; bob c200..c700 with a spend and a region.
    let alice_csv = root.path().join("alice.csv");
    let mut text = String::from("customer,segment\n");
    for i in 0..300 {
        text.push_str(&format!("c{i},s{}\n", i % 4));
    }
    std::fs::write(&alice_csv, text).expect("alice's file");
    let bob_csv = root.path().join("bob.csv");
    let mut text = String::from("customer,spend,region\n");
    let mut bob_rows = BTreeMap::new();
    for i in 200..700u64 {
        let (spend, region) = (i * 37 % 5_000, ["east", "west"][(i % 2) as usize]);
        text.push_str(&format!("c{i},{spend},{region}\n"));
        bob_rows.insert(format!("c{i}"), (spend, region));
    }
    std::fs::write(&bob_csv, text).expect("bob's file");
    // The join in the clear: per region, the common customers and their spend.
    let mut expected: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for i in 0..300 {
        if let Some((spend, region)) = bob_rows.get(&format!("c{i}")) {
            let slot = expected.entry(region).or_default();
            slot.0 += 1;
            slot.1 += spend;
        }
    }
    assert_eq!(expected.values().map(|e| e.0).sum::<u64>(), 100);

    let add = |dir: &std::path::Path, name: &str, file: &std::path::Path| {
        ok(
            dir,
            &[
                "dataset",
                "add",
                name,
                path(file),
                "--id-column",
                "customer",
                "--grade",
                "general",
            ],
        );
    };
    add(&alice, "customers", &alice_csv);
    add(&bob, "clients", &bob_csv);
    let alice_node = Served::start(&alice);
    let bob_node = Served::start(&bob);
    introduce(&alice, &alice_node, &bob, &bob_node);
    let grant = |dir: &std::path::Path, peer: &str, dataset: &str| {
        ok(
            dir,
            &[
                "grant",
                "add",
                "--peer",
                peer,
                "--dataset",
                dataset,
                "--protocols",
                "intersection-sum",
                "--purpose",
                PURPOSE,
                "--expires",
                "30d",
            ],
        );
    };
    grant(&alice, "bob", "customers");
    grant(&bob, "alice", "clients");

    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "intersection-sum",
            "--peer",
            "bob",
            "--dataset",
            "customers",
            "--peer-dataset",
            "clients",
            "--purpose",
            PURPOSE,
            "--value-column",
            "spend",
            "--limbs",
            "1",
        ];
        args.extend(extra);
        unseen(&alice, &args)
    };
    let report = stdout_json(&run(&[
        "--category-column",
        "region",
        "--categories",
        "east,west",
        "--json",
    ]));
    assert_eq!(report["job"]["intersection_size"], 100, "{report}");
    let categories = report["categories"].as_array().expect("categories");
    assert_eq!(categories.len(), 2, "{report}");
    for row in categories {
        let region = row["category"].as_str().expect("a category");
        let (count, sum) = expected[region];
        assert_eq!(row["count"], count, "{region}: {report}");
        assert_eq!(row["sum"], sum.to_string(), "{region}: {report}");
    }

    // The table form says the same, and a value column bob does not have is
    // refused with the column's name before any protocol message.
    let table = run(&[]);
    let printed = String::from_utf8_lossy(&table.stdout);
    let total: u64 = expected.values().map(|e| e.1).sum();
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(printed.contains(&total.to_string()), "{printed}");
    let mut args = vec![
        "run",
        "intersection-sum",
        "--peer",
        "bob",
        "--dataset",
        "customers",
    ];
    args.extend([
        "--peer-dataset",
        "clients",
        "--purpose",
        PURPOSE,
        "--value-column",
        "price",
    ]);
    let refused = unseen(&alice, &args);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("price"), "{said}");

    // The same through the stats spec's vertical form (`unseen run stats`),
    // with the mean and a CSV file.
    let spec = root.path().join("vertical.toml");
    std::fs::write(
        &spec,
        format!(
            "purpose = {PURPOSE:?}\nform = \"vertical\"\ntriples = \"none\"\n\
             statistics = [\"count\", \"sum\", \"mean\"]\n\
             value = {{ column = \"spend\", digits = 0, clamp = \"65535\" }}\n\
             group_by = {{ column = \"region\", groups = [\"east\", \"west\"] }}\n\
             recipients = [\"alice\"]\n\
             [[party]]\nnode = \"alice\"\ndataset = \"customers\"\n\
             [[party]]\nnode = \"bob\"\ndataset = \"clients\"\n"
        ),
    )
    .expect("spec");
    let csv = root.path().join("vertical.csv");
    let printed = ok(
        &alice,
        &["run", "stats", "--spec", path(&spec), "--out", path(&csv)],
    );
    for (region, (count, sum)) in &expected {
        // sum / count to two decimals, half up, in whole numbers.
        let hundredths = (sum * 200 + count) / (2 * count);
        let line = format!(
            "{region},{count},{sum},{}.{:02}",
            hundredths / 100,
            hundredths % 100
        );
        let written = std::fs::read_to_string(&csv).expect("csv");
        assert!(written.lines().any(|l| l == line), "{line} in {written}");
        assert!(printed.contains(&sum.to_string()), "{printed}");
    }

    // Both nodes recorded the jobs; the refused one moved no data.
    let jobs = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        ok(dir, &["jobs", "--json"])
            .lines()
            .map(support::json)
            .collect()
    };
    for (dir, role) in [(&alice, "requester"), (&bob, "responder")] {
        let jobs = jobs(dir);
        assert_eq!(jobs.len(), 4, "{dir:?}: {jobs:?}");
        let completed = jobs.iter().filter(|j| j["outcome"] == "completed").count();
        assert_eq!(completed, 3, "{dir:?}: {jobs:?}");
        assert!(jobs.iter().all(|j| j["role"] == role));
    }
    drop((alice_node, bob_node));
}
