//! Stats jobs among three `unseen serve` processes, driven through the CLI
//! as operators would: the released statistics equal the same statistics in
//! the clear, and a party killed mid-job fails the job for every party with
//! nothing released.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::{Served, fingerprint, init, ok, path, unseen};

const PURPOSE: &str = "regional balance statistics";
const NAMES: [&str; 3] = ["bank-a", "bank-b", "bank-c"];

/// Rows of one bank: (region, balance in cents), deterministic per bank.
fn rows(bank: usize) -> Vec<(&'static str, i64)> {
    let regions = ["east", "west"];
    (0..120 + 40 * bank)
        .map(|i| {
            let x = (i * 7919 + bank * 104_729) as i64;
            (regions[(x % 2) as usize], (x * 37) % 2_000_000 - 100_000)
        })
        .collect()
}

fn write_rows(dir: &Path, bank: usize) -> PathBuf {
    let file = dir.join("accounts.csv");
    let mut text = String::from("id,region,balance\n");
    for (i, (region, cents)) in rows(bank).iter().enumerate() {
        let sign = if *cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        text.push_str(&format!(
            "{bank}-{i},{region},{sign}{}.{:02}\n",
            abs / 100,
            abs % 100
        ));
    }
    std::fs::write(&file, text).expect("csv");
    file
}

/// Three node directories, datasets registered, grants from banks b and c
/// to bank a; `crash` names a crash point for bank c.
fn three_banks(root: &Path, crash: Option<&str>) -> (Vec<PathBuf>, Vec<Served>) {
    let dirs: Vec<PathBuf> = NAMES.iter().map(|n| init(root, n)).collect();
    for (i, dir) in dirs.iter().enumerate() {
        let file = write_rows(dir, i);
        ok(
            dir,
            &[
                "dataset",
                "add",
                "accounts",
                path(&file),
                "--id-column",
                "id",
                "--grade",
                "general",
            ],
        );
    }
    let served: Vec<Served> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| Served::start_crashing(dir, crash.filter(|_| i == 2)))
        .collect();
    for (i, dir) in dirs.iter().enumerate() {
        for (j, other) in dirs.iter().enumerate() {
            if i != j {
                ok(
                    dir,
                    &[
                        "peer",
                        "add",
                        NAMES[j],
                        "--addr",
                        &served[j].addr,
                        "--fingerprint",
                        &fingerprint(other),
                    ],
                );
            }
        }
    }
    for dir in &dirs[1..] {
        ok(
            dir,
            &[
                "grant",
                "add",
                "--peer",
                "bank-a",
                "--dataset",
                "accounts",
                "--protocols",
                "stats",
                "--purpose",
                PURPOSE,
                "--expires",
                "30d",
            ],
        );
    }
    (dirs, served)
}

fn write_spec(root: &Path) -> PathBuf {
    let spec = root.join("job.toml");
    let mut text = format!(
        "purpose = {PURPOSE:?}\nstatistics = [\"count\", \"sum\", \"mean\"]\n\
         value = {{ column = \"balance\", digits = 2 }}\n\
         group_by = {{ column = \"region\", groups = [\"east\", \"west\"] }}\n\
         recipients = [\"bank-a\"]\n"
    );
    for name in NAMES {
        text.push_str(&format!(
            "[[party]]\nnode = {name:?}\ndataset = \"accounts\"\n"
        ));
    }
    std::fs::write(&spec, text).expect("spec");
    spec
}

#[test]
fn three_processes_release_the_plain_statistics() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dirs, _served) = three_banks(root.path(), None);
    let spec = write_spec(root.path());
    let csv = root.path().join("result.csv");
    let run = unseen(
        &dirs[0],
        &[
            "run",
            "stats",
            "--spec",
            path(&spec),
            "--json",
            "--out",
            path(&csv),
        ],
    );
    let progress = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{progress}");
    // The node reports each phase while the job runs.
    for phase in [
        "asking 2 other parties",
        "bank-b agreed",
        "bank-c agreed",
        "every party agreed",
        "totals opened",
    ] {
        assert!(progress.contains(phase), "no {phase:?} in {progress}");
    }
    let out = String::from_utf8(run.stdout).expect("utf-8");
    let report: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("a json line")).expect("json");
    let mut clear: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
    for bank in 0..3 {
        for (region, cents) in rows(bank) {
            let e = clear.entry(region).or_default();
            e.0 += 1;
            e.1 += cents;
        }
    }
    for row in report["rows"].as_array().expect("rows") {
        let (count, sum) = clear[row["group"].as_str().expect("group")];
        assert_eq!(
            row["count"].as_str(),
            Some(count.to_string().as_str()),
            "{row}"
        );
        let released: f64 = row["sum"].as_str().expect("sum").parse().expect("decimal");
        assert_eq!((released * 100.0).round() as i64, sum, "{row}");
    }
    let written = std::fs::read_to_string(&csv).expect("csv written");
    assert!(written.starts_with("group,count,sum,mean\n"), "{written}");
    // Every party recorded the job completed, and its audit log verifies.
    let job_id = report["job_id"].as_str().expect("job id");
    for dir in &dirs {
        let jobs = ok(dir, &["jobs", "--json"]);
        assert!(
            jobs.lines()
                .any(|l| l.contains(job_id) && l.contains("\"completed\"")),
            "{jobs}"
        );
        ok(dir, &["audit", "verify"]);
    }
}

#[test]
fn a_party_killed_mid_job_fails_it_everywhere_with_nothing_released() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dirs, mut served) = three_banks(root.path(), Some("responder:after-go"));
    let spec = write_spec(root.path());
    let csv = root.path().join("result.csv");
    let out = unseen(
        &dirs[0],
        &["run", "stats", "--spec", path(&spec), "--out", path(&csv)],
    );
    assert!(!out.status.success(), "the job must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bank-c"),
        "the error names the party: {stderr}"
    );
    assert!(!csv.exists(), "nothing is released");
    served[2].wait_killed();
    // Bank b learns of the failure from bank a's abort or its own stream to
    // bank c, and records it; wait (bounded) for that record.
    for dir in &dirs[..2] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let line = loop {
            let jobs = ok(dir, &["jobs", "--json"]);
            let line = jobs
                .lines()
                .find(|l| l.contains("secure-stats"))
                .expect("the job")
                .to_string();
            if !line.contains("\"running\"") || std::time::Instant::now() > deadline {
                break line;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        };
        assert!(line.contains("\"failed\""), "{line}");
        assert!(!line.contains("\"completed\""), "{line}");
    }
}
