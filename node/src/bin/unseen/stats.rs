//! `unseen run stats`: reads and checks the spec here, asks the node to run
//! it, prints the released statistics as a table (or JSON), and writes
//! them as CSV or JSON if asked.

use std::path::Path;

use anyhow::{Context, Result, bail};
use unseen_node::config::{NodeConfig, NodePaths};
use unseen_node::control::{self, ControlRequest, ControlResponse};
use unseen_node::stats::{StatsReport, StatsSpec};

use crate::commands::runtime;

pub(crate) fn run_stats(
    dir: &Path,
    spec_path: &Path,
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    NodeConfig::load(dir)?;
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("cannot read the spec {}", spec_path.display()))?;
    // A bad spec is refused here, before the node admits or sends anything.
    let spec = StatsSpec::parse(&text)
        .with_context(|| format!("the spec {} is refused", spec_path.display()))?;
    if let Some(out) = out {
        unseen_node::fsutil::check_output_path(out).map_err(anyhow::Error::msg)?;
    }
    let socket = NodePaths::new(dir).control_socket();
    let request = ControlRequest::RunStats {
        spec: Box::new(spec.clone()),
    };
    // The node reports each phase as it starts; elapsed time beside it.
    let started = std::time::Instant::now();
    let response = runtime()?.block_on(control::request_with_progress(
        dir,
        &socket,
        &request,
        |phase| eprintln!("[{:>6.1} s] {phase}", started.elapsed().as_secs_f64()),
    ))?;
    let report = match response {
        ControlResponse::Stats(report) => report,
        ControlResponse::IntersectionSum(report) => {
            return vertical_result(&report, &spec, out, json);
        }
        ControlResponse::Error { message } => bail!("{message}"),
        _ => bail!("the node answered a different request; is it the same unseen version?"),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(out) = out {
        let body = if out.extension().is_some_and(|e| e == "json") {
            serde_json::to_string_pretty(&*report)?
        } else {
            report.csv().map_err(anyhow::Error::msg)?
        };
        std::fs::write(out, body).with_context(|| format!("cannot write {}", out.display()))?;
        println!("wrote {} rows to {}", report.rows.len(), out.display());
    }
    Ok(())
}

/// A vertical spec's result (an intersection-sum): printed, and written as
/// JSON or CSV if asked.
fn vertical_result(
    report: &unseen_node::jobs::isum::IsumReport,
    spec: &StatsSpec,
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        crate::isum::print_report(report);
        if spec
            .statistics
            .contains(&unseen_node::stats::Statistic::Mean)
        {
            for c in &report.categories {
                if let Some(mean) = c
                    .count
                    .zip(c.sum.as_deref())
                    .and_then(|(n, s)| crate::isum::mean(n, s))
                {
                    let name = c.category.as_deref().unwrap_or("all");
                    println!("mean of {} ({name}): {mean}", report.value_column);
                }
            }
        }
    }
    if let Some(out) = out {
        let body = if out.extension().is_some_and(|e| e == "json") {
            serde_json::to_string_pretty(report)?
        } else {
            crate::isum::csv(report)
        };
        std::fs::write(out, body).with_context(|| format!("cannot write {}", out.display()))?;
        println!(
            "wrote {} rows to {}",
            report.categories.len(),
            out.display()
        );
    }
    Ok(())
}

fn print_report(report: &StatsReport) {
    println!(
        "job {} among {} ({})",
        report.job_id,
        report.parties.join(", "),
        report.purpose
    );
    println!("{}", report.table());
    if report.rows.iter().any(|r| r.suppressed.is_some()) {
        println!(
            "groups with fewer than {} records are suppressed (the parties' largest minimum group size)",
            report.min_group_size
        );
    }
    for noise in &report.noise {
        println!("noise: {noise}");
    }
    println!(
        "sent {} bytes, received {} bytes, {} ms",
        report.bytes_sent, report.bytes_received, report.duration_ms
    );
}
