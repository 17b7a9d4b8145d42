//! What a stats job releases: one row per group, as decimals, with what
//! was suppressed and what noise it carries, printable as a table, CSV or
//! JSON.

use serde::{Deserialize, Serialize};
use unseen_protocol::sharing::{FixedPoint, GroupResult};

use super::{Statistic, StatsSpec};

/// One group's released statistics, as decimal text (`None`: not asked
/// for, undefined, or suppressed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRow {
    /// The category, the bin (`[lo, hi)`), or `all`.
    pub group: String,
    /// Rows over all parties.
    pub count: Option<String>,
    /// Sum of the value column.
    pub sum: Option<String>,
    /// Mean.
    pub mean: Option<String>,
    /// Sample variance.
    pub variance: Option<String>,
    /// Sample standard deviation.
    pub std_dev: Option<String>,
    /// Why this group is withheld, if it is.
    pub suppressed: Option<String>,
}

/// A stats job's outcome, as its requester's operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    /// The job id.
    pub job_id: String,
    /// The parties, by this node's names for them, in party order.
    pub parties: Vec<String>,
    /// The purpose.
    pub purpose: String,
    /// The statistics asked for.
    pub statistics: Vec<Statistic>,
    /// One row per group.
    pub rows: Vec<StatsRow>,
    /// The largest minimum group size among the parties' terms.
    pub min_group_size: u64,
    /// The noise each party added, e.g. `bank-b: discrete Laplace, epsilon 1`.
    pub noise: Vec<String>,
    /// Bytes sent, over all streams.
    pub bytes_sent: u64,
    /// Bytes received, over all streams.
    pub bytes_received: u64,
    /// Wall time from acceptance to release.
    pub duration_ms: u64,
}

/// Turns opened results into rows: the groups' labels, only the statistics
/// asked for, and suppression below `k`.
pub(super) fn rows(spec: &StatsSpec, results: &[GroupResult], k: u64) -> Vec<StatsRow> {
    let scale = spec.scale();
    let labels = labels(spec);
    let asked = |s: Statistic| spec.statistics.contains(&s);
    let wants_count = asked(Statistic::Count) || asked(Statistic::Histogram);
    results
        .iter()
        .zip(labels)
        .map(|(r, group)| {
            let count = u64::try_from(r.count).unwrap_or(0);
            if count < k {
                return StatsRow {
                    group,
                    count: None,
                    sum: None,
                    mean: None,
                    variance: None,
                    std_dev: None,
                    suppressed: Some(format!("fewer than {k} records")),
                };
            }
            let show =
                |s: Statistic, v: Option<i128>| v.filter(|_| asked(s)).map(|v| scale.decode(v));
            StatsRow {
                group,
                count: wants_count.then(|| r.count.to_string()),
                sum: show(Statistic::Sum, r.sum),
                mean: show(Statistic::Mean, r.mean),
                variance: variance(asked(Statistic::Variance), r.variance, scale),
                std_dev: show(Statistic::StdDev, r.std_dev),
                suppressed: None,
            }
        })
        .collect()
}

/// The variance is at scale 10^digits like the rest, so it decodes alike.
fn variance(asked: bool, v: Option<i128>, scale: FixedPoint) -> Option<String> {
    v.filter(|_| asked).map(|v| scale.decode(v))
}

fn labels(spec: &StatsSpec) -> Vec<String> {
    if let Some(g) = &spec.group_by {
        return g.groups.clone();
    }
    if spec.histogram.is_some() {
        let scale = spec.scale();
        return spec
            .scaled_edges()
            .windows(2)
            .map(|w| format!("[{}, {})", scale.decode(w[0]), scale.decode(w[1])))
            .collect();
    }
    vec!["all".into()]
}

impl StatsReport {
    /// The columns a table or CSV shows: the group and each statistic asked.
    fn columns(&self) -> Vec<&'static str> {
        let mut columns = vec!["group"];
        let asked = |s| self.statistics.contains(&s);
        if asked(Statistic::Count) || asked(Statistic::Histogram) {
            columns.push("count");
        }
        for (s, name) in [
            (Statistic::Sum, "sum"),
            (Statistic::Mean, "mean"),
            (Statistic::Variance, "variance"),
            (Statistic::StdDev, "std_dev"),
        ] {
            if asked(s) {
                columns.push(name);
            }
        }
        columns
    }

    fn cells(&self, row: &StatsRow) -> Vec<String> {
        self.columns()
            .iter()
            .map(|c| {
                let v = match *c {
                    "group" => Some(row.group.clone()),
                    "count" => row.count.clone(),
                    "sum" => row.sum.clone(),
                    "mean" => row.mean.clone(),
                    "variance" => row.variance.clone(),
                    _ => row.std_dev.clone(),
                };
                v.unwrap_or_else(|| {
                    if row.suppressed.is_some() {
                        "suppressed".into()
                    } else {
                        "-".into()
                    }
                })
            })
            .collect()
    }

    /// The rows as an aligned text table.
    pub fn table(&self) -> String {
        let header: Vec<String> = self.columns().iter().map(|c| (*c).to_string()).collect();
        let body: Vec<Vec<String>> = self.rows.iter().map(|r| self.cells(r)).collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                std::iter::once(&header)
                    .chain(&body)
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        let mut out = line(&header);
        for row in &body {
            out.push('\n');
            out.push_str(&line(row));
        }
        out
    }

    /// The rows as CSV, with a header.
    pub fn csv(&self) -> Result<String, String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let e = |e: csv::Error| e.to_string();
        writer.write_record(self.columns()).map_err(e)?;
        for row in &self.rows {
            writer.write_record(self.cells(row)).map_err(e)?;
        }
        String::from_utf8(writer.into_inner().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    }
}
