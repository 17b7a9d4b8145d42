//! What an intersection-sum job releases to the requester's operator, after
//! the release rules: the minimum group size k of both data owners.
//!
//! The whole result is withheld when the intersection is below k; a
//! category whose count is below k has its count and sum withheld. (With
//! one category withheld, its count still follows from the cardinality and
//! the others' counts; its sum does not.) These checks run on the
//! requester's node, on the exact result it decrypted: the responder cannot
//! see the cardinality, and enforces k only on what it knows, the sizes of
//! the two sets (docs/GOVERNANCE.md).

use serde::{Deserialize, Serialize};
use unseen_protocol::intersection_sum::IsumOutput;

use super::super::JobReport;
use super::super::stream::Traffic;
use crate::boundary::Accepted;
use crate::manifest::IsumRequest;
use crate::policy::may_release;
use crate::wire::{ProtocolRequest, ReleaseTerms};

/// One category's part of the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryReport {
    /// The category, or `None` when the sum is not grouped.
    pub category: Option<String>,
    /// Matched rows in it, or `None` if withheld (below k).
    pub count: Option<u64>,
    /// The sum of their values, in decimal (it may pass 2^64), or `None`
    /// if withheld.
    pub sum: Option<String>,
}

/// What the requester's operator gets back from an intersection-sum job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsumReport {
    /// The job, as for PSI: `intersection_size` is the cardinality (or
    /// `None` with `suppressed` saying why).
    pub job: JobReport,
    /// The responder's column summed.
    pub value_column: String,
    /// The responder's column grouped by, if any.
    pub category_column: Option<String>,
    /// Per category, in the order the job listed them (one, unnamed, when
    /// not grouped); empty when the whole result is suppressed.
    pub categories: Vec<CategoryReport>,
    /// The minimum group size applied: the larger of the two owners'.
    pub min_group_size: u64,
}

impl IsumReport {
    /// The report of a completed job, with the release rules applied.
    pub(super) fn released(
        accepted: &Accepted,
        terms: &ReleaseTerms,
        output: &IsumOutput,
        traffic: Traffic,
    ) -> Self {
        let k = accepted.min_group_size.max(terms.min_group_size);
        let ask = match accepted.protocol() {
            ProtocolRequest::IntersectionSum(ask) => ask.clone(),
            _ => IsumRequest {
                value_column: String::new(),
                category_column: None,
                categories: Vec::new(),
                value_limbs: 0,
            },
        };
        let suppressed = (!may_release(output.cardinality, k)).then(|| {
            format!(
                "the intersection is below the minimum group size k = {k}, so nothing is released"
            )
        });
        let categories = if suppressed.is_some() {
            Vec::new()
        } else {
            categories(&ask, output, k)
        };
        let job = JobReport {
            job_id: accepted.job_id.to_string(),
            peer: accepted.peer.name.clone(),
            protocol: accepted.protocol().name().into(),
            purpose: accepted.manifest.purpose.clone(),
            grant: accepted.grant.id.clone(),
            own_set_size: accepted.data.ids().len() as u64,
            own_empty_id_rows: accepted.data.summary().empty_id_rows,
            peer_set_size: output.peer_set_size,
            intersection_size: suppressed.is_none().then_some(output.cardinality),
            suppressed,
            noise: None,
            out: None,
            rows_written: None,
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
            duration_ms: accepted.started.elapsed().as_millis() as u64,
        };
        Self {
            job,
            value_column: ask.value_column,
            category_column: ask.category_column,
            categories,
            min_group_size: k,
        }
    }

    /// What was released, in words, for the audit log and the job record.
    pub(super) fn release_text(&self) -> Option<String> {
        let size = self.job.intersection_size?;
        let parts: Vec<String> = self
            .categories
            .iter()
            .map(|c| {
                let figures = match (c.count, &c.sum) {
                    (Some(count), Some(sum)) => format!("count {count}, sum {sum}"),
                    _ => format!("withheld (below k = {})", self.min_group_size),
                };
                match &c.category {
                    Some(name) => format!("{name:?}: {figures}"),
                    None => figures,
                }
            })
            .collect();
        Some(format!(
            "intersection size {size}; sum of {:?}: {}",
            self.value_column,
            parts.join("; ")
        ))
    }
}

/// Each category's count and sum, withheld below k.
fn categories(ask: &IsumRequest, output: &IsumOutput, k: u64) -> Vec<CategoryReport> {
    output
        .categories
        .iter()
        .enumerate()
        .map(|(g, figures)| {
            let shown = may_release(figures.count, k);
            CategoryReport {
                category: ask.categories.get(g).cloned(),
                count: shown.then_some(figures.count),
                sum: shown.then(|| figures.sum.to_string()),
            }
        })
        .collect()
}
