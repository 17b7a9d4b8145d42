//! `unseen run intersection-sum`: checks the request here, asks the node to
//! run it, and prints the cardinality and the sums (per category).

use std::path::Path;

use anyhow::{Context, Result, bail};
use unseen_node::config::{NodeConfig, NodePaths};
use unseen_node::control::{self, ControlRequest, ControlResponse};
use unseen_node::jobs::isum::IsumReport;
use unseen_node::manifest::IsumRequest;

use crate::commands::runtime;

/// What `run intersection-sum` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct IsumArgs {
    /// The registered peer, which holds the values.
    #[arg(long)]
    peer: String,
    /// Your registered dataset: its ids are matched against the peer's.
    #[arg(long)]
    dataset: String,
    /// The peer's dataset name.
    #[arg(long)]
    peer_dataset: String,
    /// The purpose, as the grants on both nodes name it.
    #[arg(long)]
    purpose: String,
    /// The peer's column of values to sum: whole numbers from 0 (no sign,
    /// no decimals: scale amounts to an integer unit such as cents).
    #[arg(long)]
    value_column: String,
    /// The peer's column to group the sum by.
    #[arg(long, requires = "categories")]
    category_column: Option<String>,
    /// Comma-separated: every category the peer's column holds, at most 16,
    /// in the order to print them.
    #[arg(long, value_delimiter = ',', requires = "category_column")]
    categories: Vec<String>,
    /// 16-bit limbs per value: values below 2^16, 2^32, 2^48 or 2^64 for 1
    /// to 4. Fewer cost less (the peer encrypts one ciphertext per limb of
    /// every row).
    #[arg(long, default_value_t = 4)]
    limbs: u8,
    /// Print the job report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(dir: &Path, args: IsumArgs) -> Result<()> {
    NodeConfig::load(dir)?;
    let sum = IsumRequest {
        value_column: args.value_column,
        category_column: args.category_column,
        categories: args
            .categories
            .iter()
            .map(|c| c.trim().to_string())
            .collect(),
        value_limbs: args.limbs,
    };
    // Refused here, before the node admits (and charges) anything; both
    // nodes check again at admission.
    sum.check()
        .map_err(anyhow::Error::msg)
        .context("the intersection-sum request is refused")?;
    let request = ControlRequest::RunIntersectionSum {
        peer: args.peer,
        dataset: args.dataset,
        peer_dataset: args.peer_dataset,
        purpose: args.purpose,
        sum,
    };
    let socket = NodePaths::new(dir).control_socket();
    let report = match runtime()?.block_on(control::request(dir, &socket, &request))? {
        ControlResponse::IntersectionSum(report) => report,
        ControlResponse::Error { message } => bail!("{message}"),
        _ => bail!("the node answered a different request; is it the same unseen version?"),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The mean of a category, `sum / count` to two decimals (half up), from
/// the released whole numbers.
pub(crate) fn mean(count: u64, sum: &str) -> Option<String> {
    let sum: u128 = sum.parse().ok()?;
    let count = u128::from(count);
    let hundredths = (sum * 200 + count).checked_div(2 * count)?;
    Some(format!("{}.{:02}", hundredths / 100, hundredths % 100))
}

/// The report as CSV: one line per category with its count, sum and mean.
pub(crate) fn csv(report: &IsumReport) -> String {
    let mut text = String::from("category,count,sum,mean\n");
    for c in &report.categories {
        let (count, sum) = (c.count.map(|n| n.to_string()), c.sum.clone());
        let mean = c.count.zip(c.sum.as_deref()).and_then(|(n, s)| mean(n, s));
        text.push_str(&format!(
            "{},{},{},{}\n",
            c.category.as_deref().unwrap_or(""),
            count.unwrap_or_default(),
            sum.unwrap_or_default(),
            mean.unwrap_or_default()
        ));
    }
    text
}

pub(crate) fn print_report(report: &IsumReport) {
    let job = &report.job;
    println!("job {} with {} ({})", job.job_id, job.peer, job.protocol);
    match (job.intersection_size, &job.suppressed) {
        (Some(size), _) => println!(
            "intersection size: {size} (your {} distinct ids, the peer's {} rows)",
            job.own_set_size, job.peer_set_size
        ),
        (None, Some(why)) => println!("no result released: {why}"),
        (None, None) => println!("no result released"),
    }
    let withheld = || format!("withheld (below k = {})", report.min_group_size);
    match (&report.category_column, report.categories.as_slice()) {
        (_, []) => {}
        (None, [all]) => match &all.sum {
            Some(sum) => println!("sum of {}: {sum}", report.value_column),
            None => println!("sum of {}: {}", report.value_column, withheld()),
        },
        (column, categories) => {
            let column = column.as_deref().unwrap_or("category");
            let width = categories
                .iter()
                .filter_map(|c| c.category.as_ref().map(|n| n.chars().count()))
                .chain([column.chars().count()])
                .max()
                .unwrap_or(8);
            println!(
                "{column:<width$}  {:>10}  sum of {}",
                "count", report.value_column
            );
            for c in categories {
                let name = c.category.as_deref().unwrap_or("");
                match (c.count, &c.sum) {
                    (Some(count), Some(sum)) => println!("{name:<width$}  {count:>10}  {sum}"),
                    _ => println!("{name:<width$}  {}", withheld()),
                }
            }
        }
    }
    if job.own_empty_id_rows > 0 {
        println!("left out {} rows with an empty id", job.own_empty_id_rows);
    }
    println!(
        "sent {} bytes, received {} bytes, {} ms",
        job.bytes_sent, job.bytes_received, job.duration_ms
    );
}
