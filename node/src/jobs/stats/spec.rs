//! The stats job spec (`unseen run stats --spec JOB.toml`): who takes part
//! with which dataset, what is computed over which columns, which rows count,
//! and who receives the result. Its format is documented with an annotated
//! example in `docs/stats.example.toml`.
//!
//! [`StatsSpec::parse`] checks everything a spec can get wrong on its own
//! (unknown keys or statistics, a statistic without the column it needs,
//! too few parties, a recipient who is not a party, a malformed filter);
//! [`super::plan`] then checks it against this node's own datasets and
//! peers. Both run before any protocol message leaves the node.

use serde::{Deserialize, Serialize};
use unseen_protocol::sharing::{FixedPoint, MAX_DIGITS, MAX_PARTIES};

use super::filter::Filter;

/// The largest clamp, in scaled units: the noise on a sum of squares has
/// sensitivity clamp², and the exact sampler takes epsilon / (3·clamp²) as
/// a fraction of 64-bit integers, with epsilon in millionths:
/// 3·10^6·clamp² < 2^64.
pub const MAX_SCALED_CLAMP: i128 = 2_000_000;

/// The most categories or histogram bins a job may have: each costs three
/// ring elements per party in every message.
pub const MAX_GROUPS: usize = 1024;

/// A statistic a job can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Rows (per group).
    Count,
    /// Sum of the value column.
    Sum,
    /// Mean of the value column.
    Mean,
    /// Sample variance of the value column.
    Variance,
    /// Sample standard deviation of the value column.
    StdDev,
    /// Counts of the value column's histogram bins.
    Histogram,
}

impl Statistic {
    fn needs_value(self) -> bool {
        !matches!(self, Self::Count)
    }
}

/// The value column, read as a decimal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    /// Its name (each party may name its own column, see [`PartySpec`]).
    pub column: String,
    /// Fractional digits kept (0 to 9); more are rounded half away from zero.
    #[serde(default = "default_digits")]
    pub digits: u32,
    /// The largest magnitude a value counts with, as a decimal: needed when
    /// a party's data owner adds noise, which must cover one record's
    /// largest effect on a sum. Values beyond it count as ±clamp, for every
    /// party alike.
    pub clamp: Option<String>,
}

fn default_digits() -> u32 {
    2
}

/// Grouping by a public category column: the categories are listed in the
/// spec, so every party knows them; rows with another category are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The category column.
    pub column: String,
    /// The categories, in the order results are printed.
    pub groups: Vec<String>,
}

/// The most bins of equal width a histogram may have: one ring element per
/// party each (a 2^20-bin histogram is a secure sum of a 2^20-element
/// vector; its shares need frames of about 8 MiB, see `max_frame_bytes`).
pub const MAX_REGULAR_BINS: u32 = 1 << 20;

/// A histogram of the value column over public bins: listed edges, bin i
/// holding values in `[edges[i], edges[i+1])`, or `bins` bins of equal
/// `width` from `start`. Values outside every bin are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramSpec {
    /// Increasing edges, as decimals (or none, with the regular form).
    #[serde(default)]
    pub edges: Vec<String>,
    /// The regular form's first edge, as a decimal.
    pub start: Option<String>,
    /// The regular form's bin width, as a decimal.
    pub width: Option<String>,
    /// The regular form's number of bins.
    pub bins: Option<u32>,
}

/// One party: a node, by the name this node knows it by, and its dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartySpec {
    /// A registered peer's name, or this node's own name.
    pub node: String,
    /// The dataset that node contributes.
    pub dataset: String,
    /// Its name for the value column, if not the spec's.
    pub value_column: Option<String>,
    /// Its name for the group column, if not the spec's.
    pub group_column: Option<String>,
}

/// A stats job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSpec {
    /// The purpose, as every party's grant must name it.
    pub purpose: String,
    /// What to compute.
    pub statistics: Vec<Statistic>,
    /// The value column, for every statistic but `count`.
    pub value: Option<ValueSpec>,
    /// Grouping by a category.
    pub group_by: Option<GroupSpec>,
    /// Histogram bins (with the `histogram` statistic).
    pub histogram: Option<HistogramSpec>,
    /// Rows that count, e.g. `age >= 30` or `region = "east"`; all must hold.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Who receives the result, by node name.
    pub recipients: Vec<String>,
    /// The parties, this node among them.
    #[serde(rename = "party")]
    pub parties: Vec<PartySpec>,
    /// `horizontal` (the default: every party holds rows of one schema) or
    /// `vertical` (two parties hold columns about customers they may share;
    /// see [`super::vertical`]).
    #[serde(default)]
    pub form: Form,
    /// A vertical job's source of products: `"none"` (an intersection-sum,
    /// no third party) or `{ dealer = "NODE" }`.
    pub triples: Option<Triples>,
}

/// Which way the parties' data is split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Every party holds rows of the same schema.
    #[default]
    Horizontal,
    /// Two parties hold columns about customers they may share.
    Vertical,
}

/// Where a vertical job's products come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Triples {
    /// No products: the statistics are an intersection-sum's.
    None,
    /// A dealer node, which sees neither inputs nor results.
    Dealer(String),
}

/// Why a spec is refused. Each message names the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Not valid TOML for a spec.
    #[error("the spec is not valid: {0}; see docs/stats.example.toml")]
    Syntax(String),
    /// Something in it is inconsistent or missing.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key at fault.
        key: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
}

pub(super) fn invalid(key: &'static str, problem: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        key,
        problem: problem.into(),
    }
}

impl StatsSpec {
    /// Parses and checks a spec on its own.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let spec: Self = toml::from_str(text).map_err(|e| SpecError::Syntax(e.to_string()))?;
        spec.check()?;
        Ok(spec)
    }

    /// Checks a spec on its own (as [`Self::parse`] does); a spec received
    /// from a peer is checked again with this.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.form == Form::Vertical || self.triples.is_some() {
            return self.check_vertical();
        }
        if self.purpose.trim().is_empty() {
            return Err(invalid(
                "purpose",
                "say what the statistics are for; every party's grant must name the same purpose",
            ));
        }
        if self.statistics.is_empty() {
            return Err(invalid(
                "statistics",
                "name at least one of count, sum, mean, variance, std_dev, histogram",
            ));
        }
        let needs_value = self.statistics.iter().any(|s| s.needs_value());
        match &self.value {
            None if needs_value => {
                return Err(invalid(
                    "value",
                    "the statistics asked for need a value column: add value = { column = \"NAME\", digits = 2 }",
                ));
            }
            Some(v) if v.digits > MAX_DIGITS => {
                return Err(invalid(
                    "value.digits",
                    format!("at most {MAX_DIGITS} digits"),
                ));
            }
            Some(v) if v.clamp.is_some() && self.scaled_clamp().is_none() => {
                return Err(invalid(
                    "value.clamp",
                    "give a positive decimal, the largest magnitude a value counts with",
                ));
            }
            Some(_) if self.scaled_clamp().is_some_and(|c| c > MAX_SCALED_CLAMP) => {
                return Err(invalid(
                    "value.clamp",
                    format!(
                        "at most {} with {} digits: noise on a sum of squares must cover clamp², and the exact noise sampler's range ends there; use fewer digits or a smaller clamp",
                        self.scale().decode(MAX_SCALED_CLAMP),
                        self.scale().digits()
                    ),
                ));
            }
            _ => {}
        }
        let histogram = self.statistics.contains(&Statistic::Histogram);
        match (&self.histogram, histogram, &self.group_by) {
            (None, true, _) => {
                return Err(invalid(
                    "histogram",
                    "the histogram statistic needs histogram = { edges = [\"0\", \"100\", ...] }",
                ));
            }
            (Some(_), false, _) => {
                return Err(invalid(
                    "histogram",
                    "bins are given but the histogram statistic is not asked for; add \"histogram\" to statistics or remove the bins",
                ));
            }
            (Some(_), true, Some(_)) => {
                return Err(invalid(
                    "group_by",
                    "a histogram groups by its bins; ask for grouped statistics in a separate job",
                ));
            }
            _ => {}
        }
        if let Some(h) = &self.histogram {
            self.check_edges(h)?;
        }
        let groups = self.group_by.as_ref().map_or(0, |g| g.groups.len());
        let bins = self
            .histogram
            .as_ref()
            .map_or(0, |h| h.edges.len().saturating_sub(1));
        if groups.max(bins) > MAX_GROUPS {
            return Err(invalid(
                "group_by",
                format!("at most {MAX_GROUPS} categories or bins; split the job"),
            ));
        }
        if let Some(g) = &self.group_by {
            let mut seen = std::collections::HashSet::new();
            if g.groups.is_empty() || g.groups.iter().any(|c| !seen.insert(c)) {
                return Err(invalid(
                    "group_by.groups",
                    "list each category once, at least one",
                ));
            }
        }
        for filter in &self.filters {
            Filter::parse(filter).map_err(|e| invalid("filters", e))?;
        }
        self.check_parties()
    }

    fn check_edges(&self, histogram: &HistogramSpec) -> Result<(), SpecError> {
        let scale = self.scale();
        match (&histogram.start, &histogram.width, histogram.bins) {
            (None, None, None) => {}
            (Some(start), Some(width), Some(bins)) if histogram.edges.is_empty() => {
                let start = scale
                    .encode(start)
                    .map_err(|e| invalid("histogram.start", e.to_string()))?;
                let width = scale
                    .encode(width)
                    .map_err(|e| invalid("histogram.width", e.to_string()))?;
                if width <= 0 || !(1..=MAX_REGULAR_BINS).contains(&bins) {
                    return Err(invalid(
                        "histogram",
                        format!("give a positive width and 1 to {MAX_REGULAR_BINS} bins"),
                    ));
                }
                let end = i128::from(bins)
                    .checked_mul(width)
                    .and_then(|w| w.checked_add(start));
                if end.is_none_or(|end| end.abs() > unseen_protocol::sharing::MAX_SCALED) {
                    return Err(invalid(
                        "histogram",
                        "the bins reach past the largest value",
                    ));
                }
                return Ok(());
            }
            _ => {
                return Err(invalid(
                    "histogram",
                    "give either edges = [...] or all of start, width and bins",
                ));
            }
        }
        let edges: Vec<i128> = histogram
            .edges
            .iter()
            .map(|e| {
                scale
                    .encode(e)
                    .map_err(|e| invalid("histogram.edges", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid(
                "histogram.edges",
                "give at least two increasing edges (after rounding to the value's digits)",
            ));
        }
        Ok(())
    }

    pub(super) fn check_parties(&self) -> Result<(), SpecError> {
        let n = self.parties.len();
        if n < 2 {
            return Err(invalid(
                "party",
                format!(
                    "a stats job has at least 2 parties, this one has {n}; add a [[party]] for each node that contributes data"
                ),
            ));
        }
        if n > MAX_PARTIES {
            return Err(invalid("party", format!("at most {MAX_PARTIES} parties")));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.parties {
            if !names.insert(p.node.as_str()) {
                return Err(invalid(
                    "party",
                    format!(
                        "node {:?} appears twice; a node contributes one dataset",
                        p.node
                    ),
                ));
            }
        }
        if self.recipients.is_empty() {
            return Err(invalid(
                "recipients",
                "name at least one party to receive the result",
            ));
        }
        for r in &self.recipients {
            if !names.contains(r.as_str()) {
                return Err(invalid(
                    "recipients",
                    format!("{r:?} is not a party; a recipient must be one of the [[party]] nodes"),
                ));
            }
        }
        Ok(())
    }

    /// The fixed-point scale of the value column (2 digits without one).
    pub fn scale(&self) -> FixedPoint {
        let digits = self.value.as_ref().map_or(default_digits(), |v| v.digits);
        FixedPoint::new(digits.min(MAX_DIGITS)).unwrap_or(FixedPoint::new(0).expect("0 digits"))
    }

    /// The clamp, scaled (checked by [`Self::parse`]); `None` without one.
    pub fn scaled_clamp(&self) -> Option<i128> {
        let text = self.value.as_ref()?.clamp.as_ref()?;
        self.scale().encode(text).ok().filter(|c| *c > 0)
    }

    /// The parsed filters (checked by [`Self::parse`]).
    pub fn parsed_filters(&self) -> Vec<Filter> {
        self.filters
            .iter()
            .filter_map(|f| Filter::parse(f).ok())
            .collect()
    }

    /// The histogram's edges, scaled (checked by [`Self::parse`]).
    pub fn scaled_edges(&self) -> Vec<i128> {
        let scale = self.scale();
        if let Some(h) = &self.histogram
            && let (Some(start), Some(width), Some(bins)) = (&h.start, &h.width, h.bins)
        {
            let (Ok(start), Ok(width)) = (scale.encode(start), scale.encode(width)) else {
                return Vec::new();
            };
            return (0..=i128::from(bins)).map(|i| start + i * width).collect();
        }
        self.histogram
            .iter()
            .flat_map(|h| h.edges.iter())
            .filter_map(|e| scale.encode(e).ok())
            .collect()
    }
}
