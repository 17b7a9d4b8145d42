//! Stats jobs: the spec, the checks a node makes before any protocol message
//! leaves it, and each party's local sufficient statistics over its own rows.
//!
//! The protocol side (sharing, opening, noise, turning totals into results)
//! is `unseen_protocol::sharing`. What is here is the node's part: reading
//! the spec, checking it against this node's own datasets and peers
//! ([`plan`]), and computing this party's statistics from its CSV file after
//! its filters ([`local_stats`]).

mod filter;
mod party;
mod registry;
mod report;
mod requester;
mod run;
mod spec;
pub mod vertical;

pub use filter::{Filter, Literal, Op};
pub(crate) use party::arrive;
pub use registry::Registry;
pub use report::{StatsReport, StatsRow};
pub use run::StatsNode;
pub use spec::{
    Form, GroupSpec, HistogramSpec, MAX_GROUPS, MAX_REGULAR_BINS, MAX_SCALED_CLAMP, PartySpec,
    SpecError, Statistic, StatsSpec, Triples, ValueSpec,
};

use unseen_protocol::sharing::{Layout, LocalStats, PartyIndex, Roster, StatsError, StatsNoise};

use crate::dataset::LoadedDataset;
use crate::policy::{self, DataPolicy, Violation};

/// A spec checked against this node: its place in the job and what it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The spec.
    pub spec: StatsSpec,
    /// Who takes part, who this node is, who receives the result.
    pub roster: Roster,
    /// The layout every party shares.
    pub layout: Layout,
    /// This node's dataset name.
    pub dataset: String,
    /// This node's value column, if any.
    pub value_column: Option<String>,
    /// This node's group column, if any.
    pub group_column: Option<String>,
}

/// Why a job cannot start here. Each message names the input and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The spec itself.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// This node is not a party.
    #[error("this node ({0}) is not one of the spec's parties; add a [[party]] with node = {0:?}")]
    NotAParty(String),
    /// A party this node has not registered.
    #[error(
        "party {0:?} is not a registered peer; register it with `unseen peer add` (every party must know every other)"
    )]
    UnknownPeer(String),
    /// This node's dataset is not registered.
    #[error("dataset {0:?} is not registered here; register it with `unseen dataset add`")]
    UnknownDataset(String),
    /// A column this node's dataset lacks.
    #[error(
        "dataset {dataset:?} has no column {column:?} (used as {role}); its columns are {available}"
    )]
    MissingColumn {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// What the spec uses it for.
        role: &'static str,
        /// The dataset's columns.
        available: String,
    },
    /// The dataset's grade or legal basis forbids the job.
    #[error("dataset {dataset:?}: {violation}")]
    Policy {
        /// The dataset.
        dataset: String,
        /// The rule.
        violation: Violation,
    },
}

/// Checks `spec` against this node (`own_name`), its registered `peers`, and
/// its dataset's `columns` and `policy` (`None` if the dataset is not
/// registered). With `noise`, the job's releases carry noise.
pub fn plan(
    spec: StatsSpec,
    own_name: &str,
    peers: &[String],
    own_dataset: Option<(&[String], &DataPolicy)>,
    noisy: bool,
) -> Result<Plan, PlanError> {
    let me = spec
        .parties
        .iter()
        .position(|p| p.node == own_name)
        .ok_or_else(|| PlanError::NotAParty(own_name.to_string()))?;
    for party in &spec.parties {
        if party.node != own_name && !peers.contains(&party.node) {
            return Err(PlanError::UnknownPeer(party.node.clone()));
        }
    }
    let own = spec.parties[me].clone();
    let (columns, data_policy) =
        own_dataset.ok_or_else(|| PlanError::UnknownDataset(own.dataset.clone()))?;
    // Two parties: a recipient subtracts its own input from the total, so
    // the other's input is exact unless the release is noisy.
    let disclosure = if spec.parties.len() == 2 {
        policy::planned::TWO_PARTY_SUM
    } else {
        policy::planned::SECURE_AGGREGATION
    };
    policy::check_use(data_policy, disclosure.requester_data, noisy).map_err(|violation| {
        PlanError::Policy {
            dataset: own.dataset.clone(),
            violation,
        }
    })?;
    let value_column = own
        .value_column
        .clone()
        .or_else(|| spec.value.as_ref().map(|v| v.column.clone()));
    let group_column = own
        .group_column
        .clone()
        .or_else(|| spec.group_by.as_ref().map(|g| g.column.clone()));
    let needed = value_column
        .iter()
        .map(|c| (c.clone(), "the value column"))
        .chain(group_column.iter().map(|c| (c.clone(), "the group column")))
        .chain(
            spec.parsed_filters()
                .into_iter()
                .map(|f| (f.column, "a filter's column")),
        );
    for (column, role) in needed {
        if !columns.iter().any(|c| c == column.trim()) {
            return Err(PlanError::MissingColumn {
                dataset: own.dataset.clone(),
                column,
                role,
                available: columns
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let recipients = spec.recipients.iter().filter_map(|r| {
        spec.parties
            .iter()
            .position(|p| &p.node == r)
            .map(PartyIndex)
    });
    let roster = Roster::new(spec.parties.len(), PartyIndex(me), recipients).map_err(|e| {
        SpecError::Invalid {
            key: "party",
            problem: e.to_string(),
        }
    })?;
    let groups = match (&spec.group_by, &spec.histogram) {
        (Some(g), _) => g.groups.len(),
        (None, Some(_)) => spec.scaled_edges().len() - 1,
        (None, None) => 1,
    };
    let layout = Layout {
        groups,
        values: spec
            .statistics
            .iter()
            .any(|s| !matches!(s, Statistic::Count | Statistic::Histogram)),
    };
    Ok(Plan {
        roster,
        layout,
        dataset: own.dataset,
        value_column,
        group_column,
        spec,
    })
}

/// Why this party's statistics could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A cell that must be a number is not.
    #[error("{file}: line {line}: {problem}")]
    BadRow {
        /// The dataset's file.
        file: String,
        /// Where.
        line: u64,
        /// What, and what to fix.
        problem: String,
    },
    /// The statistics would not fit the ring.
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// This party's sufficient statistics over the rows of `data` that pass the
/// plan's filters.
pub fn local_stats(
    plan: &Plan,
    data: &LoadedDataset,
    noise: Option<&StatsNoise>,
) -> Result<LocalStats, LocalError> {
    let file = data.summary().path.display().to_string();
    let bad = |line, problem: String| LocalError::BadRow {
        file: file.clone(),
        line,
        problem,
    };
    let column = |name: &Option<String>| name.as_deref().and_then(|n| data.column(n));
    let value_at = column(&plan.value_column);
    let group_at = column(&plan.group_column);
    let filters: Vec<(usize, Filter)> = plan
        .spec
        .parsed_filters()
        .into_iter()
        .filter_map(|f| data.column(&f.column).map(|at| (at, f)))
        .collect();
    let scale = plan.spec.scale();
    let edges = plan.spec.scaled_edges();
    let groups = plan.spec.group_by.as_ref().map(|g| &g.groups);
    let clamp = plan.spec.scaled_clamp();
    let mut stats = LocalStats::new(plan.layout, noise);
    // A row without an id is left out of every job, as registration says.
    let id_at = data.column(&data.summary().id_column);
    'rows: for (line, row) in data.rows() {
        if id_at.is_some_and(|at| row.get(at).unwrap_or("").trim().is_empty()) {
            continue;
        }
        for (at, filter) in &filters {
            if !filter
                .accepts(row.get(*at).unwrap_or(""))
                .map_err(|e| bad(line, e))?
            {
                continue 'rows;
            }
        }
        let value = match value_at {
            Some(at) => {
                let cell = row.get(at).unwrap_or("");
                Some(
                    scale
                        .encode(cell)
                        .map_err(|e| bad(line, format!("the value column holds {cell:?}: {e}")))?,
                )
            }
            None => None,
        };
        let group = match (groups, group_at) {
            (Some(groups), Some(at)) => {
                let cell = row.get(at).unwrap_or("").trim();
                match groups.iter().position(|g| g == cell) {
                    Some(g) => g,
                    None => continue, // a category the spec does not list
                }
            }
            _ if !edges.is_empty() => {
                let v = value.unwrap_or_default();
                // The first edge above v closes v's bin.
                match edges.partition_point(|e| *e <= v) {
                    0 => continue,                             // below every bin
                    above if above == edges.len() => continue, // past every bin
                    above => above - 1,
                }
            }
            _ => 0,
        };
        // The spec's clamp holds for every party alike, noisy or not, so
        // the totals are of one well-defined quantity. (Bins are found on
        // the value as it is.)
        let value = match clamp {
            Some(c) => value.map(|v| v.clamp(-c, c)),
            None => value,
        };
        let shared_value = if plan.layout.values { value } else { None };
        stats.add(group, shared_value)?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests;
