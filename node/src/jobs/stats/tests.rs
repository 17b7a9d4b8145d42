use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_protocol::dp::Epsilon;
use unseen_protocol::sharing::{
    Addressed, GroupResult, PartyIndex, Ring, SecureSum, SumOutput, finish,
};
use unseen_protocol::{Progress, Step};

use super::*;
use crate::dataset;
use crate::policy::{DEFAULT_MIN_GROUP_SIZE, Grade};

const EXAMPLE: &str = include_str!("../../../../docs/stats.example.toml");

fn general() -> DataPolicy {
    DataPolicy {
        grade: Grade::General,
        personal: false,
        legal_basis: None,
        min_group_size: DEFAULT_MIN_GROUP_SIZE,
    }
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn peers(names: &[&str]) -> Vec<String> {
    columns(names)
}

#[test]
fn the_documented_example_parses_and_plans() {
    let spec = StatsSpec::parse(EXAMPLE).expect("the example is valid");
    assert_eq!(spec.parties.len(), 3);
    let cols = columns(&["id", "region", "balance", "age", "status"]);
    let plan = plan(
        spec,
        "bank-a",
        &peers(&["bank-b", "bank-c"]),
        Some((&cols, &general())),
        false,
    )
    .expect("plan");
    assert_eq!(plan.roster.me(), PartyIndex(0));
    assert!(plan.roster.is_recipient(PartyIndex(0)));
    assert_eq!(
        plan.layout,
        Layout {
            groups: 4,
            values: true
        }
    );
}

/// The example with one edit.
fn edited(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "{from}");
    EXAMPLE.replacen(from, to, 1)
}

#[test]
fn bad_specs_are_refused_with_the_key_and_the_fix() {
    for (spec, expected) in [
        (edited("\"std_dev\"]", "\"median\"]"), "unknown variant"),
        (edited("purpose = ", "porpoise = "), "unknown field"),
        (
            edited("value = { column = \"balance\", digits = 2 }\n", ""),
            "need a value column",
        ),
        (edited("digits = 2", "digits = 12"), "at most 9 digits"),
        (
            edited("recipients = [\"bank-a\"]", "recipients = [\"bank-z\"]"),
            "not a party",
        ),
        (
            edited("recipients = [\"bank-a\"]", "recipients = []"),
            "at least one party",
        ),
        (
            edited("\"age >= 30\"", "\"age >= thirty\""),
            "not a decimal number",
        ),
        (edited("\"age >= 30\"", "\"age\""), "COLUMN OP VALUE"),
        (
            edited(
                "groups = [\"east\", \"west\"",
                "groups = [\"east\", \"east\"",
            ),
            "each category once",
        ),
        (
            edited("\"std_dev\"]", "\"std_dev\", \"histogram\"]"),
            "needs histogram",
        ),
    ] {
        let err = StatsSpec::parse(&spec).expect_err(expected);
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    // Too few parties: the example without its last two.
    let at = EXAMPLE
        .find("[[party]]\nnode = \"bank-b\"")
        .expect("bank-b");
    let err = StatsSpec::parse(&EXAMPLE[..at]).expect_err("one party");
    assert!(err.to_string().contains("at least 2 parties"), "{err}");
    let err =
        StatsSpec::parse(&edited("node = \"bank-b\"", "node = \"bank-a\"")).expect_err("twice");
    assert!(err.to_string().contains("appears twice"), "{err}");
}

#[test]
fn a_spec_is_checked_against_this_nodes_datasets_and_peers() {
    let spec = StatsSpec::parse(EXAMPLE).expect("valid");
    let cols = columns(&["id", "region", "balance", "age", "status"]);
    let known = peers(&["bank-b", "bank-c"]);
    let check =
        |own: &str, peers: &[String], cols: Option<&[String]>, policy: DataPolicy, noisy| {
            plan(spec.clone(), own, peers, cols.map(|c| (c, &policy)), noisy)
        };
    assert_eq!(
        check("bank-x", &known, Some(&cols), general(), false),
        Err(PlanError::NotAParty("bank-x".into()))
    );
    assert_eq!(
        check("bank-a", &peers(&["bank-b"]), Some(&cols), general(), false),
        Err(PlanError::UnknownPeer("bank-c".into()))
    );
    assert_eq!(
        check("bank-a", &known, None, general(), false),
        Err(PlanError::UnknownDataset("accounts".into()))
    );
    let no_age = columns(&["id", "region", "balance", "status"]);
    let err = check("bank-a", &known, Some(&no_age), general(), false).expect_err("no age");
    assert!(
        matches!(&err, PlanError::MissingColumn { column, role, .. } if column == "age" && *role == "a filter's column"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("\"balance\""),
        "lists the columns: {err}"
    );
    // bank-c names its value column differently.
    let cols_c = columns(&["id", "region", "balance_eur", "age", "status"]);
    let known_c = peers(&["bank-a", "bank-b"]);
    let plan_c = check("bank-c", &known_c, Some(&cols_c), general(), false).expect("bank-c");
    assert_eq!(plan_c.value_column.as_deref(), Some("balance_eur"));
    // Core data never; important data only with noise.
    let mut core = general();
    core.grade = Grade::Core;
    let err = check("bank-a", &known, Some(&cols), core, true).expect_err("core");
    assert!(matches!(
        err,
        PlanError::Policy {
            violation: Violation::CoreData,
            ..
        }
    ));
    let mut important = general();
    important.grade = Grade::Important;
    assert!(check("bank-a", &known, Some(&cols), important.clone(), false).is_err());
    assert!(check("bank-a", &known, Some(&cols), important, true).is_ok());
}

#[test]
fn a_two_party_sum_needs_noise() {
    let at = EXAMPLE
        .find("[[party]]\nnode = \"bank-c\"")
        .expect("bank-c");
    let spec = StatsSpec::parse(&EXAMPLE[..at]).expect("two parties");
    let cols = columns(&["id", "region", "balance", "age", "status"]);
    let err = plan(
        spec.clone(),
        "bank-a",
        &peers(&["bank-b"]),
        Some((&cols, &general())),
        false,
    )
    .expect_err("exact two-party sum");
    assert!(
        matches!(
            err,
            PlanError::Policy {
                violation: Violation::ExactInputWithoutNoise,
                ..
            }
        ),
        "{err:?}"
    );
    plan(
        spec,
        "bank-a",
        &peers(&["bank-b"]),
        Some((&cols, &general())),
        true,
    )
    .expect("noisy");
}

/// A party's rows: (id, region, balance in cents, age, status).
type Row = (String, &'static str, i64, u32, &'static str);

fn party_rows(rng: &mut ChaCha20Rng, party: usize, count: usize) -> Vec<Row> {
    const REGIONS: [&str; 5] = ["east", "west", "north", "south", "abroad"];
    (0..count)
        .map(|i| {
            (
                format!("p{party}-c{i}"),
                REGIONS[rng.gen_range(0..REGIONS.len())],
                rng.gen_range(-20_000..5_000_000),
                rng.gen_range(18..90),
                if rng.gen_bool(0.8) {
                    "active"
                } else {
                    "closed"
                },
            )
        })
        .collect()
}

fn write(dir: &std::path::Path, party: usize, rows: &[Row], value_column: &str) -> LoadedDataset {
    let path = dir.join(format!("party{party}.csv"));
    let mut text = format!("id,region,{value_column},age,status\n");
    for (id, region, cents, age, status) in rows {
        let sign = if *cents < 0 { "-" } else { "" };
        let (whole, frac) = (cents.abs() / 100, cents.abs() % 100);
        text.push_str(&format!(
            "{id},{region},{sign}{whole}.{frac:02},{age},{status}\n"
        ));
    }
    std::fs::write(&path, text).expect("csv");
    let summary = dataset::scan(&path, "id").expect("scan");
    LoadedDataset::load(&path, "id", &summary.sha256).expect("load")
}

/// A spec for `n` parties named p0.., all recipients of party 0's choice.
fn spec_for(n: usize) -> StatsSpec {
    let mut text = String::from(
        "purpose = \"pooled balances\"\nstatistics = [\"count\", \"sum\", \"mean\", \"variance\", \"std_dev\"]\n\
         value = { column = \"balance\", digits = 2 }\n\
         group_by = { column = \"region\", groups = [\"east\", \"west\", \"north\", \"south\"] }\n\
         filters = [\"age >= 30\", \"status = \\\"active\\\"\"]\nrecipients = [\"p0\"]\n",
    );
    for i in 0..n {
        text.push_str(&format!("[[party]]\nnode = \"p{i}\"\ndataset = \"d\"\n"));
        if i == n - 1 {
            text.push_str("value_column = \"balance_eur\"\n");
        }
    }
    StatsSpec::parse(&text).expect("spec")
}

/// Runs the secure sum over the parties' shares in memory, in order.
fn open(inputs: Vec<Vec<u128>>, rosters: Vec<Roster>, seed: u64) -> Vec<i128> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut states = Vec::new();
    let mut queue: Vec<(PartyIndex, Addressed<_>)> = Vec::new();
    let mut totals = None;
    for (i, (input, roster)) in inputs.iter().zip(rosters).enumerate() {
        let Step {
            next: Progress::Continue(state),
            send: messages,
        } = SecureSum::start(roster, input, &mut rng)
        else {
            panic!("nobody finishes alone");
        };
        states.push(Some(state));
        queue.extend(messages.into_iter().map(|m| (PartyIndex(i), m)));
    }
    while let Some((from, Addressed { to, message })) = queue.pop() {
        let state = states[to.0].take().expect("running");
        match state.handle(from, message).expect("honest") {
            Step {
                next: Progress::Continue(state),
                send: messages,
            } => {
                states[to.0] = Some(state);
                queue.extend(messages.into_iter().map(|m| (to, m)));
            }
            Step {
                next: Progress::Done(output),
                send: messages,
            } => {
                queue.extend(messages.into_iter().map(|m| (to, m)));
                if let SumOutput::Totals(t) = output {
                    totals = Some(t.iter().map(|x| x.to_signed()).collect());
                }
            }
        }
    }
    totals.expect("the recipient opened the totals")
}

/// Each party's rows through its filters and local statistics, shared and
/// opened; `noise` for the noisy two-party case.
fn job(n: usize, noise: Option<StatsNoise>, seed: u64) -> (Vec<GroupResult>, Vec<Vec<Row>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let spec = spec_for(n);
    let mut all_rows = Vec::new();
    let mut inputs = Vec::new();
    let mut rosters = Vec::new();
    for party in 0..n {
        let rows = party_rows(&mut rng, party, 150 + 40 * party);
        let value_column = if party == n - 1 {
            "balance_eur"
        } else {
            "balance"
        };
        let data = write(dir.path(), party, &rows, value_column);
        let others: Vec<String> = (0..n)
            .filter(|&j| j != party)
            .map(|j| format!("p{j}"))
            .collect();
        let columns = data.summary().columns.clone();
        let plan = plan(
            spec.clone(),
            &format!("p{party}"),
            &others,
            Some((&columns, &general())),
            noise.is_some(),
        )
        .expect("plan");
        let local = local_stats(&plan, &data, noise.as_ref()).expect("local statistics");
        inputs.push(
            local
                .to_share::<u128, _>(n, noise.as_ref(), &mut rng)
                .expect("share")
                .to_vec(),
        );
        rosters.push(plan.roster.clone());
        all_rows.push(rows);
    }
    let layout = Layout {
        groups: 4,
        values: true,
    };
    (finish(layout, &open(inputs, rosters, seed), 2), all_rows)
}

/// The same statistics over the pooled rows, computed plainly: filter,
/// group, then exact integer sums and a float variance.
fn pooled(rows: &[Vec<Row>]) -> BTreeMap<&'static str, (i128, i128, f64)> {
    let mut groups: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    for (_, region, cents, age, status) in rows.iter().flatten() {
        if *age >= 30 && *status == "active" && *region != "abroad" {
            groups.entry(region).or_default().push(*cents);
        }
    }
    groups
        .into_iter()
        .map(|(region, values)| {
            let count = values.len() as i128;
            let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
            let mean = sum as f64 / count as f64;
            let variance = values
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / (count as f64 - 1.0);
            (region, (count, sum, variance))
        })
        .collect()
}

#[test]
fn three_and_five_parties_get_the_statistics_of_their_pooled_filtered_rows() {
    for n in [3, 5] {
        let (results, rows) = job(n, None, n as u64);
        let expected = pooled(&rows);
        for (region, result) in ["east", "west", "north", "south"].iter().zip(&results) {
            let (count, sum, variance) = expected[region];
            assert_eq!(result.count, count, "{n} parties, {region}");
            assert_eq!(result.sum, Some(sum), "{n} parties, {region}");
            let mean = (sum as f64 / count as f64).round() as i128;
            assert!((result.mean.expect("mean") - mean).abs() <= 1);
            // The variance is in units² at the value's scale; the plain one
            // is in cents², 100 times more.
            let got = result.variance.expect("variance") as f64 * 100.0;
            assert!(
                (got - variance).abs() / variance < 1e-9,
                "{got} vs {variance}"
            );
            let std = result.std_dev.expect("std dev") as f64;
            assert!(
                (std - variance.sqrt()).abs() <= 1.0,
                "{std} vs {}",
                variance.sqrt()
            );
        }
    }
}

#[test]
fn two_parties_with_noise_get_counts_near_the_truth_but_not_the_truth() {
    let noise = StatsNoise {
        epsilon: Epsilon::new(3, 1).expect("epsilon"),
        clamp: 5_000_000,
    };
    let (results, rows) = job(2, Some(noise), 2);
    let expected = pooled(&rows);
    let mut differ = 0;
    for (region, result) in ["east", "west", "north", "south"].iter().zip(&results) {
        let (count, ..) = expected[region];
        // Each party adds discrete Laplace with parameter 1 (epsilon 3
        // split three ways) to each count: within 25 of the truth with
        // probability above 1 - 1e-9.
        assert!(
            (result.count - count).abs() < 25,
            "{region}: {} vs {count}",
            result.count
        );
        differ += usize::from(result.count != count);
    }
    assert!(differ > 0, "no count was noised");
}

#[test]
fn a_non_numeric_value_or_filter_cell_names_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.csv");
    std::fs::write(
        &path,
        "id,region,balance,age,status\na,east,1.00,40,active\nb,east,lots,41,active\nc,west,2,unknown,active\n",
    )
    .expect("csv");
    let summary = dataset::scan(&path, "id").expect("scan");
    let data = LoadedDataset::load(&path, "id", &summary.sha256).expect("load");
    let plan = plan(
        spec_for(3),
        "p0",
        &peers(&["p1", "p2"]),
        Some((&summary.columns, &general())),
        false,
    )
    .expect("plan");
    let err = local_stats(&plan, &data, None).expect_err("lots");
    assert!(
        matches!(&err, LocalError::BadRow { line: 3, problem, .. } if problem.contains("\"lots\"")),
        "{err:?}"
    );
    std::fs::write(
        &path,
        "id,region,balance,age,status\na,east,1.00,40,active\nc,west,2,unknown,active\n",
    )
    .expect("csv");
    let summary = dataset::scan(&path, "id").expect("scan");
    let data = LoadedDataset::load(&path, "id", &summary.sha256).expect("load");
    let err = local_stats(&plan, &data, None).expect_err("unknown age");
    assert!(
        matches!(&err, LocalError::BadRow { line: 3, problem, .. } if problem.contains("not a number")),
        "{err:?}"
    );
}

#[test]
fn regular_bins_are_the_listed_edges_they_stand_for() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/stats.example.toml"
    ))
    .expect("example");
    let base = example
        .replace("statistics = [\"count\", \"mean\", \"std_dev\"]", "statistics = [\"histogram\"]")
        .replace(
            "group_by = { column = \"region\", groups = [\"east\", \"west\", \"north\", \"south\"] }",
            "",
        );
    let listed = StatsSpec::parse(&format!(
        "histogram = {{ edges = [\"0\", \"2.5\", \"5\", \"7.5\"] }}\n{base}"
    ))
    .expect("listed");
    let regular = StatsSpec::parse(&format!(
        "histogram = {{ start = \"0\", width = \"2.5\", bins = 3 }}\n{base}"
    ))
    .expect("regular");
    assert_eq!(listed.scaled_edges(), regular.scaled_edges());
    assert_eq!(regular.scaled_edges(), vec![0, 250, 500, 750]);
    for bad in [
        "histogram = { start = \"0\", width = \"0\", bins = 3 }",
        "histogram = { start = \"0\", width = \"1\", bins = 0 }",
        "histogram = { start = \"0\", bins = 3 }",
        "histogram = { edges = [\"0\", \"1\"], start = \"0\", width = \"1\", bins = 3 }",
        "histogram = { start = \"0\", width = \"1\", bins = 2000000 }",
    ] {
        assert!(
            StatsSpec::parse(&format!("{bad}\n{base}")).is_err(),
            "{bad}"
        );
    }
}
