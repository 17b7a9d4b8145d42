//! The stats spec's vertical form: two parties hold columns about customers
//! they may share, and the statistics are over the customers both hold,
//! without either learning which those are.
//!
//! Runnable today: `triples = "none"`, an intersection-sum
//! (docs/protocols/intersection-sum.md): the requester (first `[[party]]`)
//! brings ids, the other party a column of whole numbers (its
//! `value_column`, or the spec's `value.column`) and optionally a category
//! column (`group_by`, the other party's); the requester learns the count
//! of common customers and the sum (and mean) of the column over them, per
//! category. `triples = { dealer = "NODE" }` (any column of either party,
//! products through a dealer: docs/protocols/vertical-statistics.md) is
//! refused until the node runs it.

use unseen_protocol::intersection_sum::{LIMB_BITS, MAX_CATEGORIES};

use super::spec::{Form, StatsSpec, Triples, invalid};
use super::{SpecError, Statistic};
use crate::manifest::IsumRequest;

impl StatsSpec {
    /// The vertical form's rules (see the module).
    pub(super) fn check_vertical(&self) -> Result<(), SpecError> {
        if self.form != Form::Vertical {
            return Err(invalid(
                "triples",
                "only a vertical job takes triples; add form = \"vertical\" or remove triples",
            ));
        }
        match &self.triples {
            None => {
                return Err(invalid(
                    "triples",
                    "say where products come from: triples = \"none\" for an intersection-sum",
                ));
            }
            Some(Triples::Dealer(node)) => {
                return Err(invalid(
                    "triples",
                    format!(
                        "vertical statistics with a dealer ({node:?}) are not run by the node yet; use triples = \"none\" for the count, sum and mean of the other party's column over the customers you share"
                    ),
                ));
            }
            Some(Triples::None) => {}
        }
        if self.purpose.trim().is_empty() {
            return Err(invalid(
                "purpose",
                "say what the statistics are for; both parties' grants must name the same purpose",
            ));
        }
        if self.parties.len() != 2 {
            return Err(invalid(
                "party",
                format!(
                    "a vertical job has exactly 2 parties, this one has {}: first yours (its ids), then the one whose column is summed",
                    self.parties.len()
                ),
            ));
        }
        self.check_parties()?;
        if self.recipients != [self.parties[0].node.clone()] {
            return Err(invalid(
                "recipients",
                format!(
                    "an intersection-sum releases to the requester alone: recipients = [{:?}]",
                    self.parties[0].node
                ),
            ));
        }
        let allowed = [Statistic::Count, Statistic::Sum, Statistic::Mean];
        if self.statistics.is_empty() || self.statistics.iter().any(|s| !allowed.contains(s)) {
            return Err(invalid(
                "statistics",
                "an intersection-sum gives count, sum and mean; ask for those (variance, histograms and the rest need a dealer)",
            ));
        }
        let value = self.value.as_ref().ok_or_else(|| {
            invalid(
                "value",
                "name the other party's column of whole numbers: value = { column = \"NAME\", digits = 0 }",
            )
        })?;
        if value.digits != 0 {
            return Err(invalid(
                "value.digits",
                "an intersection-sum adds whole numbers: set digits = 0 (scale amounts to a whole unit, such as cents, in the file)",
            ));
        }
        if self.value_limbs().is_none() {
            return Err(invalid(
                "value.clamp",
                "give the largest value as a whole number below 2^64, or leave clamp out for any 64-bit value",
            ));
        }
        if !self.filters.is_empty() || self.histogram.is_some() {
            return Err(invalid(
                "filters",
                "an intersection-sum takes no filters or histogram: filter the file, or use a horizontal job",
            ));
        }
        if let Some(g) = &self.group_by {
            let mut seen = std::collections::HashSet::new();
            if g.groups.is_empty()
                || g.groups.len() > usize::from(MAX_CATEGORIES)
                || g.groups.iter().any(|c| !seen.insert(c))
            {
                return Err(invalid(
                    "group_by.groups",
                    format!(
                        "list each of the other party's categories once, 1 to {MAX_CATEGORIES}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The intersection-sum a checked vertical spec asks for, if it is one:
    /// the other party's columns, with limbs enough for the clamp (any
    /// 64-bit value without one).
    pub fn intersection_sum(&self) -> Option<IsumRequest> {
        if self.form != Form::Vertical || self.triples != Some(Triples::None) {
            return None;
        }
        let other = self.parties.get(1)?;
        let value = self.value.as_ref()?;
        let group = self.group_by.as_ref();
        Some(IsumRequest {
            value_column: other
                .value_column
                .clone()
                .unwrap_or_else(|| value.column.clone()),
            category_column: group.map(|g| {
                other
                    .group_column
                    .clone()
                    .unwrap_or_else(|| g.column.clone())
            }),
            categories: group.map(|g| g.groups.clone()).unwrap_or_default(),
            value_limbs: self.value_limbs()?,
        })
    }

    /// 16-bit limbs for the clamp (the largest value), 4 without one.
    fn value_limbs(&self) -> Option<u8> {
        let Some(clamp) = self.value.as_ref().and_then(|v| v.clamp.as_ref()) else {
            return Some(4);
        };
        let largest: u64 = clamp.trim().parse().ok()?;
        let bits = 64 - largest.leading_zeros();
        u8::try_from(bits.div_ceil(LIMB_BITS).max(1)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
purpose = "spend of shared customers"
form = "vertical"
triples = "none"
statistics = ["count", "sum", "mean"]
value = { column = "spend", digits = 0 }
recipients = ["bank"]
[[party]]
node = "bank"
dataset = "customers"
[[party]]
node = "shop"
dataset = "orders"
"#;

    #[test]
    fn the_documented_example_parses_to_a_grouped_intersection_sum() {
        let text = include_str!("../../../../docs/vertical.example.toml");
        let ask = StatsSpec::parse(text)
            .expect("the example is valid")
            .intersection_sum()
            .expect("an intersection-sum");
        assert_eq!(ask.value_column, "annual_spend");
        assert_eq!(ask.category_column.as_deref(), Some("store"));
        assert_eq!(ask.categories.len(), 4);
        assert_eq!(ask.value_limbs, 2, "2^32 - 1 takes two 16-bit limbs");
    }

    #[test]
    fn a_vertical_spec_without_a_third_party_is_an_intersection_sum() {
        let spec = StatsSpec::parse(BASE).expect("valid");
        assert_eq!(
            spec.intersection_sum(),
            Some(IsumRequest {
                value_column: "spend".into(),
                category_column: None,
                categories: Vec::new(),
                value_limbs: 4,
            })
        );
        let grouped = BASE.replace(
            "recipients",
            "group_by = { column = \"store\", groups = [\"east\", \"west\"] }\nrecipients",
        );
        let clamped = grouped.replace("digits = 0", "digits = 0, clamp = \"65535\"");
        let ask = StatsSpec::parse(&clamped)
            .expect("valid")
            .intersection_sum()
            .expect("an intersection-sum");
        assert_eq!(ask.category_column.as_deref(), Some("store"));
        assert_eq!(ask.categories, ["east", "west"]);
        assert_eq!(ask.value_limbs, 1, "65,535 fits one 16-bit limb");
        let wider = clamped.replace("65535", "65536");
        assert_eq!(
            StatsSpec::parse(&wider)
                .expect("valid")
                .intersection_sum()
                .map(|a| a.value_limbs),
            Some(2)
        );
        // A horizontal spec is not one.
        assert!(!BASE.contains("form = \"horizontal\""));
    }

    #[test]
    fn bad_vertical_specs_are_refused_with_the_key_and_the_fix() {
        for (change, key, says) in [
            (
                ("triples = \"none\"", "triples = { dealer = \"operator\" }"),
                "triples",
                "not run by the node yet",
            ),
            (
                ("triples = \"none\"\n", ""),
                "triples",
                "triples = \"none\"",
            ),
            (
                ("form = \"vertical\"\n", ""),
                "triples",
                "form = \"vertical\"",
            ),
            (("digits = 0", "digits = 2"), "value.digits", "digits = 0"),
            (
                ("\"mean\"]", "\"mean\", \"variance\"]"),
                "statistics",
                "need a dealer",
            ),
            (
                ("recipients = [\"bank\"]", "recipients = [\"shop\"]"),
                "recipients",
                "requester alone",
            ),
            (
                ("digits = 0 }", "digits = 0, clamp = \"-3\" }"),
                "value.clamp",
                "whole number",
            ),
            (
                ("recipients", "filters = [\"spend >= 10\"]\nrecipients"),
                "filters",
                "no filters",
            ),
            (
                (
                    "recipients",
                    "group_by = { column = \"store\", groups = [] }\nrecipients",
                ),
                "group_by.groups",
                "once",
            ),
            (
                (
                    "dataset = \"orders\"\n",
                    "dataset = \"orders\"\n[[party]]\nnode = \"third\"\ndataset = \"x\"\n",
                ),
                "party",
                "exactly 2",
            ),
        ] {
            let text = BASE.replacen(change.0, change.1, 1);
            assert_ne!(text, BASE, "{change:?} changed nothing");
            match StatsSpec::parse(&text) {
                Err(SpecError::Invalid { key: k, problem }) => {
                    assert_eq!(k, key, "{change:?}: {problem}");
                    assert!(problem.contains(says), "{change:?}: {problem}");
                }
                other => panic!("{change:?}: {other:?}"),
            }
        }
    }
}
