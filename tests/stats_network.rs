//! Stats jobs among N nodes over real QUIC with mutual TLS on 127.0.0.1:
//! every statistic against the same statistic computed in the clear over
//! the pooled rows, for N = 2 (with noise), 3 and 5, and the refusal and
//! failure paths.

mod support;

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use unseen::node::config::NodePaths;
use unseen::node::control::{self, ControlRequest, ControlResponse};
use unseen::node::grant::GrantedProtocol;
use unseen::node::stats::{HistogramSpec, Statistic, StatsReport, StatsSpec};
use unseen::node::store::Outcome;

use support::{PURPOSE, TestNode, general};

const NAMES: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];
const REGIONS: [&str; 3] = ["east", "west", "north"];

/// One party's rows: (region, age, balance in cents).
type Rows = Vec<(&'static str, u32, i64)>;

fn rows(seed: u64, count: usize) -> Rows {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let region = REGIONS[(rng.next_u32() % 3) as usize];
            let age = 18 + rng.next_u32() % 60;
            // -500.00 to about 10^9: negative balances too, and squares past
            // 2^63, so sums of squares need the 128-bit ring.
            let balance = (rng.next_u64() % 100_000_000_000) as i64 - 50_000;
            (region, age, balance)
        })
        .collect()
}

fn write_rows(node: &TestNode, rows: &Rows) {
    let file = node.dir.join("accounts.csv");
    let mut text = String::from("id,region,age,balance\n");
    for (i, (region, age, cents)) in rows.iter().enumerate() {
        let sign = if *cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        text.push_str(&format!(
            "{}-{i},{region},{age},{sign}{}.{:02}\n",
            node.name,
            abs / 100,
            abs % 100
        ));
    }
    std::fs::write(&file, text).expect("csv");
    node.store()
        .put_dataset(
            "accounts",
            &unseen::node::dataset::scan(&file, "id").expect("scan"),
            &general(),
        )
        .expect("dataset");
}

/// `n` started nodes that all know each other, each with its rows; every
/// party but the first grants the first `stats` on its accounts.
fn parties(
    root: &std::path::Path,
    n: usize,
    epsilon_micros: Option<u64>,
) -> (Vec<TestNode>, Vec<Rows>) {
    let nodes: Vec<TestNode> = NAMES[..n]
        .iter()
        .map(|name| TestNode::start_new(root, name))
        .collect();
    for a in &nodes {
        for b in &nodes {
            if a.name != b.name {
                a.register(b);
            }
        }
    }
    let data: Vec<Rows> = (0..n).map(|i| rows(i as u64 + 7, 300 + 50 * i)).collect();
    for (node, rows) in nodes.iter().zip(&data) {
        write_rows(node, rows);
    }
    for node in &nodes[1..] {
        node.grant("n0", "accounts", |g| {
            g.protocols = vec![GrantedProtocol::Stats];
            g.quota.epsilon_per_job_micros = epsilon_micros;
        });
    }
    (nodes, data)
}

fn spec(n: usize, extra: &str) -> StatsSpec {
    let mut text = format!(
        "purpose = {PURPOSE:?}\nstatistics = [\"count\", \"sum\", \"mean\", \"variance\", \"std_dev\"]\n\
         value = {{ column = \"balance\", digits = 2{extra} }}\n\
         group_by = {{ column = \"region\", groups = [\"east\", \"west\", \"north\"] }}\n\
         filters = [\"age >= 30\"]\nrecipients = [\"n0\"]\n"
    );
    for name in &NAMES[..n] {
        text.push_str(&format!(
            "[[party]]\nnode = {name:?}\ndataset = \"accounts\"\n"
        ));
    }
    StatsSpec::parse(&text).expect("spec")
}

async fn run_stats(node: &TestNode, spec: StatsSpec) -> Result<StatsReport, String> {
    let socket = NodePaths::new(&node.dir).control_socket();
    let request = ControlRequest::RunStats {
        spec: Box::new(spec),
    };
    match control::request(&node.dir, &socket, &request)
        .await
        .expect("control socket")
    {
        ControlResponse::Stats(report) => Ok(*report),
        ControlResponse::Error { message } => Err(message),
        other => panic!("unexpected {other:?}"),
    }
}

/// Per region over the pooled rows with age >= 30: count, sum of cents,
/// and the sample standard deviation in cents.
fn in_the_clear(data: &[Rows]) -> BTreeMap<&'static str, (u64, i128, f64)> {
    let mut groups: BTreeMap<&'static str, Vec<i128>> = BTreeMap::new();
    for (region, age, cents) in data.iter().flatten() {
        if *age >= 30 {
            groups.entry(region).or_default().push(i128::from(*cents));
        }
    }
    groups
        .into_iter()
        .map(|(region, values)| {
            let n = values.len() as f64;
            let sum: i128 = values.iter().sum();
            let mean = sum as f64 / n;
            let var = values
                .iter()
                .map(|v| (*v as f64 - mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            (region, (values.len() as u64, sum, var.sqrt()))
        })
        .collect()
}

fn cents(text: &str) -> f64 {
    text.parse::<f64>().expect("a decimal") * 100.0
}

fn assert_exact(report: &StatsReport, data: &[Rows]) {
    let clear = in_the_clear(data);
    assert_eq!(report.rows.len(), 3);
    for row in &report.rows {
        let (count, sum, std_dev) = clear[row.group.as_str()];
        assert_eq!(
            row.count.as_deref(),
            Some(count.to_string().as_str()),
            "{row:?}"
        );
        let got_sum = cents(row.sum.as_deref().expect("sum"));
        assert_eq!(got_sum.round() as i128, sum, "{row:?}");
        // Mean and standard deviation are rounded to the value's 2 digits.
        let mean = sum as f64 / count as f64;
        assert!(
            (cents(row.mean.as_deref().expect("mean")) - mean).abs() <= 0.5 + 1e-6,
            "{row:?}"
        );
        assert!(
            (cents(row.std_dev.as_deref().expect("std")) - std_dev).abs() <= 0.5 + 1e-3,
            "{row:?}"
        );
        // The variance, in currency units squared, rounded to 2 digits.
        let variance: f64 = row
            .variance
            .as_deref()
            .expect("variance")
            .parse()
            .expect("decimal");
        let expected = std_dev * std_dev / 10_000.0;
        assert!(
            (variance - expected).abs() <= 0.005 + expected * 1e-9,
            "{row:?} vs {expected}"
        );
    }
}

async fn stats_among(n: usize) {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, data) = parties(root.path(), n, None);
    let report = run_stats(&nodes[0], spec(n, ""))
        .await
        .expect("the job runs");
    // A histogram of the balance over public bins, all parties pooled.
    let edges = ["-1000", "0", "250000000", "500000000", "1000000000"];
    let mut histogram = spec(n, "");
    histogram.statistics = vec![Statistic::Histogram];
    histogram.group_by = None;
    histogram.filters.clear();
    histogram.histogram = Some(HistogramSpec {
        edges: edges.iter().map(ToString::to_string).collect(),
        start: None,
        width: None,
        bins: None,
    });
    histogram.check().expect("a valid spec");
    let binned = run_stats(&nodes[0], histogram)
        .await
        .expect("the histogram runs");
    assert_eq!(binned.rows.len(), edges.len() - 1);
    for (bin, row) in binned.rows.iter().enumerate() {
        let (lo, hi) = (cents(edges[bin]) as i64, cents(edges[bin + 1]) as i64);
        let count = data
            .iter()
            .flatten()
            .filter(|(_, _, c)| lo <= *c && *c < hi)
            .count();
        // General data's minimum group size is 10: a bin below it is withheld.
        if count < 10 {
            assert!(row.suppressed.is_some() && row.count.is_none(), "{row:?}");
            continue;
        }
        assert_eq!(
            row.count.as_deref(),
            Some(count.to_string().as_str()),
            "{row:?}"
        );
    }
    assert_exact(&report, &data);
    // Every party recorded the job as completed, and every audit log verifies.
    // Shares counted on both sides: each party sends its input shares to
    // every other party and its shares of the totals to the requester (the
    // only recipient); the requester receives both kinds from every party.
    for (index, node) in nodes.iter().enumerate() {
        let job = node.job(&report.job_id);
        assert_eq!(job.outcome, Outcome::Completed, "{}", node.name);
        let (sent, received) = if index == 0 {
            (n - 1, 2 * (n - 1))
        } else {
            (n, n - 1)
        };
        assert_eq!(
            job.data_messages_sent, sent as u64,
            "{}: {job:?}",
            node.name
        );
        assert_eq!(
            job.data_messages_received, received as u64,
            "{}: {job:?}",
            node.name
        );
        let entries = node.store().audit_entries().expect("audit");
        unseen::node::audit::verify(entries, &node.cert(), None)
            .unwrap_or_else(|e| panic!("{}'s audit log: {e}", node.name));
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_parties_get_the_plain_statistics() {
    stats_among(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_parties_get_the_plain_statistics() {
    stats_among(5).await;
}

/// Two parties: a sum would reveal the other's input, so the other party's
/// grant adds noise; the result is near the plain one, not equal to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_parties_get_noisy_statistics_near_the_plain_ones() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, data) = parties(root.path(), 2, Some(1_000_000));
    let report = run_stats(&nodes[0], spec(2, ", clamp = \"20000\""))
        .await
        .expect("the job runs");
    assert_eq!(report.noise.len(), 1, "{:?}", report.noise);
    // Values count clamped to ±20,000.00, as the spec says.
    let clamped: Vec<Rows> = data
        .iter()
        .map(|rows| {
            rows.iter()
                .map(|(r, a, c)| (*r, *a, (*c).clamp(-2_000_000, 2_000_000)))
                .collect()
        })
        .collect();
    let clear = in_the_clear(&clamped);
    for row in &report.rows {
        let (count, sum, _) = clear[row.group.as_str()];
        let noisy: i64 = row.count.as_deref().expect("count").parse().expect("int");
        // Discrete Laplace with epsilon 1/3 per statistic: |noise| > 60 has
        // probability about e^-20.
        assert!((noisy - count as i64).abs() <= 60, "{row:?} vs {count}");
        // The sum's sensitivity is the clamp, 2·10^6 cents.
        let noisy_sum = cents(row.sum.as_deref().expect("sum"));
        assert!(
            (noisy_sum - sum as f64).abs() <= 60.0 * 2e6,
            "{row:?} vs {sum}"
        );
    }
    // The release spent n1's grant's privacy budget: one job's epsilon.
    let (grant, usage) = nodes[1]
        .store()
        .grants()
        .expect("grants")
        .into_iter()
        .next()
        .expect("n1's grant");
    assert_eq!(usage.epsilon_micros, 1_000_000, "{usage:?}");
    assert_eq!(usage.jobs_total, 1, "{usage:?}");
    // Without noise the same job is refused: two parties, exact input.
    nodes[1].store().revoke_grant(&grant.id).expect("revoke");
    nodes[1].grant("n0", "accounts", |g| {
        g.protocols = vec![GrantedProtocol::Stats];
    });
    let error = run_stats(&nodes[0], spec(2, ", clamp = \"20000\""))
        .await
        .expect_err("refused without noise");
    assert!(error.contains("n1"), "{error}");
    let refused = nodes[1]
        .jobs()
        .into_iter()
        .find(|j| j.outcome == Outcome::Refused)
        .expect("n1 recorded the refusal");
    assert!(
        refused.detail.as_deref().unwrap_or("").contains("noise"),
        "{refused:?}"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A party without a grant refuses; the job fails for all with nothing
/// shared, and the error names the party.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_party_without_a_grant_stops_the_job_for_all() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = parties(root.path(), 3, None);
    let store = nodes[2].store();
    for (grant, _) in store.grants().expect("grants") {
        store.revoke_grant(&grant.id).expect("revoke");
    }
    let error = run_stats(&nodes[0], spec(3, ""))
        .await
        .expect_err("refused");
    assert!(error.contains("n2"), "{error}");
    for node in &nodes {
        for job in node.jobs() {
            assert_ne!(job.outcome, Outcome::Completed, "{}: {job:?}", node.name);
            assert_eq!(job.data_messages_sent, 0, "{}: {job:?}", node.name);
        }
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Groups below a party's minimum group size are suppressed for everyone:
/// the largest k among the parties' terms applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_below_any_partys_k_are_suppressed() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, data) = parties(root.path(), 3, None);
    let clear = in_the_clear(&data);
    // n2's owner asks for more records than the smallest group has.
    let smallest = clear
        .values()
        .map(|(count, _, _)| *count)
        .min()
        .expect("groups");
    let largest = clear
        .values()
        .map(|(count, _, _)| *count)
        .max()
        .expect("groups");
    assert!(
        smallest < largest,
        "the data must have groups of different sizes"
    );
    let file = nodes[2].dir.join("accounts.csv");
    let mut policy = general();
    policy.min_group_size = smallest + 1;
    nodes[2]
        .store()
        .put_dataset(
            "accounts",
            &unseen::node::dataset::scan(&file, "id").expect("scan"),
            &policy,
        )
        .expect("dataset");
    let report = run_stats(&nodes[0], spec(3, ""))
        .await
        .expect("the job runs");
    assert_eq!(report.min_group_size, smallest + 1);
    for row in &report.rows {
        let (count, _, _) = clear[row.group.as_str()];
        if count <= smallest {
            assert!(
                row.suppressed.is_some() && row.count.is_none() && row.sum.is_none(),
                "{row:?}"
            );
        } else {
            assert_eq!(
                row.count.as_deref(),
                Some(count.to_string().as_str()),
                "{row:?}"
            );
        }
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A spec naming a party this node does not know is refused before any
/// message leaves it; so is one whose value column a party lacks, by that
/// party, before it admits anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_specs_are_refused_before_anything_is_sent() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = parties(root.path(), 3, None);
    let mut unknown = spec(3, "");
    unknown.parties[2].node = "stranger".into();
    let error = run_stats(&nodes[0], unknown).await.expect_err("refused");
    assert!(
        error.contains("stranger") && error.contains("peer add"),
        "{error}"
    );
    let mut missing = spec(3, "");
    missing.parties[1].value_column = Some("salary".into());
    let error = run_stats(&nodes[0], missing).await.expect_err("refused");
    assert!(error.contains("n1"), "{error}");
    for node in &nodes {
        for job in node.jobs() {
            assert_eq!(job.data_messages_sent, 0, "{}: {job:?}", node.name);
        }
    }
    assert!(nodes[1].jobs().is_empty(), "n1 refused before admission");
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A second recipient learns the same totals; every party whose rows it
/// would see must have granted it `stats` too, or the job is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_recipient_needs_every_partys_grant_and_gets_the_same_result() {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, data) = parties(root.path(), 3, None);
    let mut both = spec(3, "");
    both.recipients = vec!["n0".into(), "n2".into()];
    let grant_n2 = |owner: &TestNode| {
        owner.grant("n2", "accounts", |g| {
            g.protocols = vec![GrantedProtocol::Stats];
        });
    };
    // Without its own grant to n2, the requester refuses to start.
    let error = run_stats(&nodes[0], both.clone())
        .await
        .expect_err("refused");
    assert!(error.contains("n2") && error.contains("grant"), "{error}");
    // n1 has granted n0 only: its rows must not reach n2.
    grant_n2(&nodes[0]);
    let error = run_stats(&nodes[0], both.clone())
        .await
        .expect_err("refused");
    assert!(error.contains("n1"), "{error}");
    grant_n2(&nodes[1]);
    let report = run_stats(&nodes[0], both).await.expect("the job runs");
    assert_exact(&report, &data);
    let at_n2 = nodes[2].job(&report.job_id);
    let released: Vec<unseen::node::stats::StatsRow> =
        serde_json::from_str(at_n2.result.as_deref().expect("n2 received the result"))
            .expect("rows");
    assert_eq!(released, report.rows);
    assert_eq!(
        nodes[1].job(&report.job_id).result,
        None,
        "n1 is no recipient"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A registered peer built by hand on the node's wire types: it asks n1 to
/// join a stats job in someone else's name, with a forged signature, and
/// joins a job nobody runs. Each is refused, and nothing is recorded as run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hand_built_stats_requests_in_another_name_or_forged_are_refused() {
    use unseen::node::stats_manifest::{StatsManifest, StatsTerms};
    use unseen::node::wire::{PeerMessage, StatsRequest};
    let root = tempfile::tempdir().expect("tempdir");
    let (mut nodes, _) = parties(root.path(), 3, None);
    let mallory =
        support::attacker::HandRequester::connect(root.path(), "mallory", "mallory", &nodes[1])
            .await;
    let mallory_fp = mallory.identity.fingerprint().to_string();
    let ask = |manifest: StatsManifest, forge: bool| {
        let mut requester = manifest.agree(
            &mallory.identity,
            0,
            String::new(),
            StatsTerms {
                min_group_size: 1,
                epsilon_micros: None,
            },
        );
        if forge {
            requester.signature[0] ^= 1;
        }
        PeerMessage::StatsRequest(StatsRequest {
            manifest,
            requester,
        })
    };
    let manifest = |requester: &str| {
        let mut spec = spec(3, "");
        spec.parties[0].node = requester.to_string();
        spec.parties[1].node = nodes[1].fingerprint.to_string();
        spec.parties[2].node = nodes[2].fingerprint.to_string();
        spec.recipients = vec![requester.to_string()];
        StatsManifest {
            job_id: "0123456789abcdef0123456789abcdef".into(),
            spec,
            names: vec!["x".into(), "n1".into(), "n2".into()],
        }
    };
    let n0 = nodes[0].fingerprint.to_string();
    for (message, expected) in [
        // Mallory names n0 as the requester: the connection is not n0's.
        (ask(manifest(&n0), false), "this connection's node"),
        // Mallory as requester, with a signature that does not verify.
        (ask(manifest(&mallory_fp), true), "signature is invalid"),
        // A party-to-party stream for a job n1 is not running.
        (
            PeerMessage::StatsHello {
                job_id: "0123456789abcdef0123456789abcdef".into(),
                from: 2,
            },
            "no stats job",
        ),
    ] {
        let mut stream = mallory.open().await;
        stream.send(&message).await;
        match stream.recv().await {
            Some(PeerMessage::JobRefused { reason }) => {
                assert!(reason.contains(expected), "{reason}");
            }
            other => panic!("{} got {other:?}", message.kind()),
        }
    }
    assert!(nodes[1].jobs().is_empty(), "nothing was admitted or run");
    for node in &mut nodes {
        node.stop().await;
    }
}
