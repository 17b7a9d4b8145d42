//! The stats bench: three nodes on 127.0.0.1, real QUIC with mutual TLS,
//! real SQLite and CSV files, timing whole stats jobs as the requester's
//! operator sees them (acceptance to release).
//!
//! Workloads (issue 7):
//! - secure sum of a 2^20-element vector: a histogram over 2^20 regular bins
//!   of 10^6 rows per party, so each party shares a 2^20-element vector;
//! - a histogram of 10^6 rows per party over 100 bins;
//! - count, sum and mean of 10^6 rows per party grouped by 100 categories.
//!
//! Every result is checked against the same statistic computed in the
//! clear from the three CSV files. Prints a table and one JSON line per
//! workload. Run: `cargo run --release --example stats_bench [-- --quick]`
//! (`--quick`: a tenth of the rows and 2^16 bins). Writes under
//! `target/stats-bench/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use unseen::node::clock::{SystemClock, rfc3339};
use unseen::node::config::{NodeConfig, NodePaths};
use unseen::node::grant::{Grant, GrantedProtocol, Quota};
use unseen::node::identity::Identity;
use unseen::node::policy::{DataPolicy, Grade};
use unseen::node::server::{Node, RunningNode};
use unseen::node::stats::{StatsReport, StatsSpec};
use unseen::node::store::Store;
use unseen::node::{dataset, setup};

const NAMES: [&str; 3] = ["bank-a", "bank-b", "bank-c"];
const PURPOSE: &str = "stats bench";

struct Bench {
    rows: usize,
    bins: u32,
}

/// One party's rows: (category 0..100, value in cents 0..bins·100).
fn rows(party: usize, count: usize, bins: u32) -> Vec<(u32, u64)> {
    let mut rng = ChaCha20Rng::seed_from_u64(party as u64 + 99);
    (0..count)
        .map(|_| {
            let category = rng.next_u32() % 100;
            let cents = u64::from(rng.next_u32()) % (u64::from(bins) * 100);
            (category, cents)
        })
        .collect()
}

fn store(dir: &Path) -> Result<Store> {
    let identity = Arc::new(Identity::load(&NodePaths::new(dir))?);
    Ok(Store::open(
        &NodePaths::new(dir).database(),
        identity,
        Arc::new(SystemClock),
    )?)
}

/// Three nodes that know each other, each with its rows; banks b and c
/// grant bank a `stats`. Frames are raised to carry 2^20-element shares.
fn nodes(root: &Path, bench: &Bench) -> Result<(Vec<PathBuf>, Vec<RunningNode>)> {
    let mut dirs = Vec::new();
    let mut running = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let dir = root.join(name);
        setup::init_node(&dir, name, "127.0.0.1:0".parse()?)?;
        let mut config = NodeConfig::load(&dir)?;
        config.limits.max_frame_bytes = 32 << 20;
        config.save(&dir)?;
        let mut csv = String::from("id,category,value\n");
        for (r, (category, cents)) in rows(i, bench.rows, bench.bins).iter().enumerate() {
            writeln!(
                csv,
                "{i}-{r},g{category:02},{}.{:02}",
                cents / 100,
                cents % 100
            )?;
        }
        let file = dir.join("accounts.csv");
        std::fs::write(&file, csv)?;
        let policy = DataPolicy {
            grade: Grade::General,
            personal: false,
            legal_basis: None,
            min_group_size: 1,
        };
        store(&dir)?.put_dataset("accounts", &dataset::scan(&file, "id")?, &policy)?;
        running.push(Node::open(&dir)?.start()?);
        dirs.push(dir);
    }
    for (i, dir) in dirs.iter().enumerate() {
        let store = store(dir)?;
        for (j, name) in NAMES.iter().enumerate() {
            if i != j {
                store.add_peer(
                    name,
                    &running[j].quic_addr.to_string(),
                    running[j].fingerprint,
                )?;
            }
        }
        if i > 0 {
            let now = store.now();
            store.add_grant(&Grant {
                id: format!("bench-{i}"),
                peer: NAMES[0].into(),
                dataset: "accounts".into(),
                protocols: vec![GrantedProtocol::Stats],
                purpose: PURPOSE.into(),
                created_at: rfc3339(now),
                expires_at: rfc3339(now + time::Duration::days(1)),
                revoked_at: None,
                quota: Quota {
                    period_secs: 86_400,
                    ..Quota::default()
                },
            })?;
        }
    }
    Ok((dirs, running))
}

/// Tells each running node its peers changed (as `unseen peer add` does).
async fn reload_peers(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        let socket = NodePaths::new(dir).control_socket();
        let request = unseen::node::control::ControlRequest::PeersChanged;
        unseen::node::control::request(dir, &socket, &request).await?;
    }
    Ok(())
}

fn spec(statistics: &str, shape: &str) -> Result<StatsSpec> {
    let mut text = format!(
        "purpose = {PURPOSE:?}\nstatistics = [{statistics}]\n\
         value = {{ column = \"value\", digits = 2 }}\n{shape}\nrecipients = [\"bank-a\"]\n"
    );
    for name in NAMES {
        writeln!(text, "[[party]]\nnode = {name:?}\ndataset = \"accounts\"")?;
    }
    Ok(StatsSpec::parse(&text)?)
}

/// Runs a job on bank a's node (as the control socket would) and times it:
/// the whole request, and the sharing phase alone (from the progress line
/// that says every party signed to the one that says the totals opened:
/// local aggregation, input shares, total shares), which is what SPU's
/// figures in the comparison cover.
async fn run(dirs: &[PathBuf], spec: StatsSpec) -> Result<(StatsReport, f64, f64)> {
    let socket = NodePaths::new(&dirs[0]).control_socket();
    let request = unseen::node::control::ControlRequest::RunStats {
        spec: Box::new(spec),
    };
    let started = Instant::now();
    let (mut sharing, mut opened) = (None, None);
    let response =
        unseen::node::control::request_with_progress(&dirs[0], &socket, &request, |line| {
            if line.contains("computing and sharing") {
                sharing = Some(Instant::now());
            } else if line.contains("totals opened") {
                opened = Some(Instant::now());
            }
        })
        .await?;
    let wall = started.elapsed().as_secs_f64();
    let phase = match (sharing, opened) {
        (Some(from), Some(to)) => (to - from).as_secs_f64(),
        _ => anyhow::bail!("the node did not report the sharing phase"),
    };
    match response {
        unseen::node::control::ControlResponse::Stats(report) => Ok((*report, wall, phase)),
        other => anyhow::bail!("the job failed: {other:?}"),
    }
}

/// Bytes each party sent and received for `job_id`, from its job record.
fn traffic(dirs: &[PathBuf], job_id: &str) -> Result<Vec<(u64, u64)>> {
    dirs.iter()
        .map(|dir| {
            let job = store(dir)?
                .jobs()?
                .into_iter()
                .find(|j| j.id == job_id)
                .context("the job's record")?;
            Ok((job.bytes_sent, job.bytes_received))
        })
        .collect()
}

fn counts(report: &StatsReport) -> Vec<u64> {
    report
        .rows
        .iter()
        .map(|r| r.count.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0))
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    // The nodes' own log, for seeing where a job's time goes:
    // UNSEEN_LOG=unseen_node=debug.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("UNSEEN_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let bench = if quick {
        Bench {
            rows: 100_000,
            bins: 1 << 16,
        }
    } else {
        Bench {
            rows: 1_000_000,
            bins: 1 << 20,
        }
    };
    let root = PathBuf::from("target/stats-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    eprintln!("writing {} rows for each of 3 nodes…", bench.rows);
    let (dirs, running) = nodes(&root, &bench)?;
    reload_peers(&dirs).await?;
    let all: Vec<Vec<(u32, u64)>> = (0..3).map(|i| rows(i, bench.rows, bench.bins)).collect();
    let mut table = String::from(
        "| workload | ring elements shared per party | wall s (CLI to release) | job s (acceptance to release) | sharing s (local aggregation, shares, totals opened) | bytes sent per party (a, b, c) | rounds |\n|---|---|---|---|---|---|---|\n",
    );
    let workloads = [
        (
            format!(
                "secure sum of a {}-element vector (histogram, {} rows per party)",
                bench.bins, bench.rows
            ),
            spec(
                "\"histogram\"",
                &format!(
                    "histogram = {{ start = \"0\", width = \"1\", bins = {} }}",
                    bench.bins
                ),
            )?,
        ),
        (
            format!("histogram, 100 bins, {} rows per party", bench.rows),
            spec(
                "\"histogram\"",
                &format!(
                    "histogram = {{ start = \"0\", width = \"{}\", bins = 100 }}",
                    bench.bins / 100 + 1
                ),
            )?,
        ),
        (
            format!(
                "count, sum, mean by 100 categories, {} rows per party",
                bench.rows
            ),
            spec(
                "\"count\", \"sum\", \"mean\"",
                &format!(
                    "group_by = {{ column = \"category\", groups = [{}] }}",
                    (0..100)
                        .map(|g| format!("\"g{g:02}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )?,
        ),
    ];
    for (index, (name, spec)) in workloads.into_iter().enumerate() {
        let elements = spec
            .scaled_edges()
            .len()
            .saturating_sub(1)
            .max(if spec.group_by.is_some() { 300 } else { 0 });
        let (report, wall, sharing_s) = run(&dirs, spec).await?;
        // Check against the clear computation over all three files.
        let clear: Vec<u64> = match index {
            0 => {
                let mut c = vec![0u64; bench.bins as usize];
                for (_, cents) in all.iter().flatten() {
                    c[(*cents / 100) as usize] += 1;
                }
                c
            }
            1 => {
                let width = u64::from(bench.bins / 100 + 1) * 100;
                let mut c = vec![0u64; 100];
                for (_, cents) in all.iter().flatten() {
                    if let Some(slot) = c.get_mut((*cents / width) as usize) {
                        *slot += 1;
                    }
                }
                c
            }
            _ => {
                let mut c = vec![0u64; 100];
                for (category, _) in all.iter().flatten() {
                    c[*category as usize] += 1;
                }
                c
            }
        };
        ensure!(
            counts(&report) == clear,
            "{name}: the released counts differ from the clear ones"
        );
        if index == 2 {
            let mut sums = vec![0u64; 100];
            for (category, cents) in all.iter().flatten() {
                sums[*category as usize] += cents;
            }
            for (row, sum) in report.rows.iter().zip(&sums) {
                let released = row.sum.as_deref().unwrap_or_default().replace('.', "");
                ensure!(
                    released == sum.to_string(),
                    "{name}: sum {released} != {sum}"
                );
            }
        }
        let bytes = traffic(&dirs, &report.job_id)?;
        let job_s = report.duration_ms as f64 / 1000.0;
        let sent: Vec<String> = bytes.iter().map(|(s, _)| s.to_string()).collect();
        writeln!(
            table,
            "| {name} | {elements} | {wall:.2} | {job_s:.2} | {sharing_s:.2} | {} | 4 |",
            sent.join(", ")
        )?;
        println!(
            "{{\"workload\":{name:?},\"elements\":{elements},\"wall_s\":{wall:.3},\"job_s\":{job_s:.3},\"sharing_s\":{sharing_s:.3},\"bytes_sent_received\":{},\"rounds\":4}}",
            serde_json::to_string(&bytes)?
        );
    }
    println!("\n{table}");
    println!(
        "rounds: request/agree, go, input shares, total shares (then JobFinished). Checked against the clear computation."
    );
    for node in running {
        node.shutdown().await;
    }
    Ok(())
}
