//! The responder's rows of an intersection-sum job, read from its dataset
//! at admission: each id with its value and category, checked against what
//! the job asks, before any protocol message is sent.
//!
//! An id is normalised as every job normalises it; a row with an empty id
//! is left out, as registration reports. A value is a whole number from 0
//! to the layout's maximum, written in ASCII digits (surrounding spaces
//! allowed): no sign, no decimals, no exponent, so one cell has one reading.
//! An id repeated with the same value and category counts once (duplicate
//! rows never change an answer); repeated with a different one, which
//! would count is ambiguous, and the data is refused.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use unseen_protocol::intersection_sum::ValuedIds;

use crate::dataset::{LoadedDataset, normalize_id};
use crate::manifest::IsumRequest;

/// Why the responder's data does not fit an intersection-sum job. The
/// message (for the data owner's operator) names the file, the line and
/// the fix, never a cell's content; the peer gets [`Unfit::public_reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unfit {
    /// The job names a column the file does not have.
    #[error(
        "{file}: the job asks for {role} column {column:?}, which the file does not have (its columns: {available}); the requester must name one of them"
    )]
    MissingColumn {
        /// The dataset's file.
        file: String,
        /// "value" or "category".
        role: &'static str,
        /// The column asked for.
        column: String,
        /// The header's columns.
        available: String,
    },
    /// A value is not a whole number in range.
    #[error(
        "{file}: line {line}: the value column {column:?} holds something other than a whole number from 0 to {max}; write the value in digits (no sign, no decimals: scale amounts to an integer unit such as cents), or, if it is larger, the requester must ask with more --limbs"
    )]
    BadValue {
        /// The dataset's file.
        file: String,
        /// 1-based line.
        line: u64,
        /// The value column.
        column: String,
        /// The largest value the job's limbs hold.
        max: u64,
    },
    /// A row's category is not among those the job lists.
    #[error(
        "{file}: line {line}: the category column {column:?} holds a category the job does not list ({listed}); the requester must list every category the file holds with --categories"
    )]
    UnknownCategory {
        /// The dataset's file.
        file: String,
        /// 1-based line.
        line: u64,
        /// The category column.
        column: String,
        /// The categories listed.
        listed: String,
    },
    /// An id repeated with a different value or category.
    #[error(
        "{file}: line {line}: the id of line {first} again, with a different value or category; keep one row per id"
    )]
    ConflictingDuplicate {
        /// The dataset's file.
        file: String,
        /// 1-based line of the later row.
        line: u64,
        /// 1-based line of the first.
        first: u64,
    },
}

impl Unfit {
    /// What the requester is told: which rule the data broke, about the
    /// columns it named, without a line, a cell or a count.
    pub fn public_reason(&self) -> String {
        match self {
            Self::MissingColumn { role, column, .. } => {
                format!("the responder's dataset has no {role} column {column:?}")
            }
            Self::BadValue { max, .. } => format!(
                "the responder's value column holds a value that is not a whole number from 0 to {max}; its data owner can find the row and fix it"
            ),
            Self::UnknownCategory { .. } => {
                "the responder's category column holds a category the job does not list".into()
            }
            Self::ConflictingDuplicate { .. } => {
                "the responder's dataset repeats an id with different values".into()
            }
        }
    }
}

/// Reads the rows of `data` that the job sums. Blocks on parsing.
pub fn valued_rows(ask: &IsumRequest, data: &LoadedDataset) -> Result<ValuedIds, Unfit> {
    let file = data.summary().path.display().to_string();
    let column = |role: &'static str, name: &str| {
        data.column(name).ok_or_else(|| Unfit::MissingColumn {
            file: file.clone(),
            role,
            column: name.to_string(),
            available: data
                .summary()
                .columns
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    };
    let id_at = column("id", &data.summary().id_column)?;
    let value_at = column("value", &ask.value_column)?;
    let category_at = match &ask.category_column {
        Some(name) => Some(column("category", name)?),
        None => None,
    };
    let max = ask.layout().max_value();
    // Each id once, in file order, with the line it was first seen on.
    let mut rows: Vec<(String, u64, u16)> = Vec::new();
    let mut first_seen: HashMap<String, (usize, u64)> = HashMap::new();
    for (line, record) in data.rows() {
        let Some(id) = normalize_id(record.get(id_at).unwrap_or("")) else {
            continue;
        };
        let value = parse_value(record.get(value_at).unwrap_or(""), max).ok_or_else(|| {
            Unfit::BadValue {
                file: file.clone(),
                line,
                column: ask.value_column.clone(),
                max,
            }
        })?;
        let category = match category_at {
            None => 0,
            Some(at) => category_of(ask, record.get(at).unwrap_or("")).ok_or_else(|| {
                Unfit::UnknownCategory {
                    file: file.clone(),
                    line,
                    column: ask.category_column.clone().unwrap_or_default(),
                    listed: ask.categories.join(", "),
                }
            })?,
        };
        match first_seen.entry(id) {
            Entry::Vacant(slot) => {
                rows.push((slot.key().clone(), value, category));
                slot.insert((rows.len() - 1, line));
            }
            Entry::Occupied(seen) => {
                let (at, first) = *seen.get();
                let (_, v, c) = &rows[at];
                if (*v, *c) != (value, category) {
                    return Err(Unfit::ConflictingDuplicate { file, line, first });
                }
            }
        }
    }
    // Every id is distinct by construction, so the protocol's own check
    // cannot refuse them.
    ValuedIds::new(rows).map_err(|_| Unfit::ConflictingDuplicate {
        file,
        line: 0,
        first: 0,
    })
}

/// A whole number from 0 to `max` in ASCII digits, or `None`.
fn parse_value(cell: &str, max: u64) -> Option<u64> {
    let digits = cell.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().filter(|&v| v <= max)
}

/// The index of the cell's category among the job's, or `None`.
fn category_of(ask: &IsumRequest, cell: &str) -> Option<u16> {
    let cell = cell.trim();
    ask.categories
        .iter()
        .position(|c| c == cell)
        .and_then(|at| u16::try_from(at).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn load(dir: &tempfile::TempDir, text: &str) -> LoadedDataset {
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, text).expect("write");
        let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        LoadedDataset::load(&path, "id", &sha).expect("load")
    }

    fn ask(limbs: u8, categories: &[&str]) -> IsumRequest {
        IsumRequest {
            value_column: "amount".into(),
            category_column: (!categories.is_empty()).then(|| "region".into()),
            categories: categories.iter().map(|c| c.to_string()).collect(),
            value_limbs: limbs,
        }
    }

    #[test]
    fn rows_are_read_once_per_id_with_their_value_and_category() {
        let dir = tempfile::tempdir().expect("dir");
        let data = load(
            &dir,
            "id,amount,region\n a ,7,north\n,9,south\nb, 65535 ,south\na,7,north\n",
        );
        let rows = valued_rows(&ask(1, &["north", "south"]), &data).expect("fits");
        // a twice with the same value counts once; the empty id is left out.
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn each_misfit_names_the_line_and_says_nothing_of_the_cell_to_the_peer() {
        let dir = tempfile::tempdir().expect("dir");
        let cases: [(&str, IsumRequest, &str); 6] = [
            ("id,amount\na,1.5\n", ask(2, &[]), "line 2"),
            ("id,amount\na,1\nb,-3\n", ask(2, &[]), "line 3"),
            ("id,amount\na,65536\n", ask(1, &[]), "from 0 to 65535"),
            ("id,amount,region\na,1,west\n", ask(2, &["north"]), "line 2"),
            ("id,amount\na,1\na,2\n", ask(2, &[]), "the id of line 2"),
            ("id,total\na,1\n", ask(2, &[]), "no value column \"amount\""),
        ];
        for (text, ask, expected) in cases {
            let unfit = valued_rows(&ask, &load(&dir, text)).expect_err(text);
            let both = format!("{unfit} | {}", unfit.public_reason());
            assert!(both.contains(expected), "{both}");
            assert!(both.contains("rows.csv"), "{both}");
            let public = unfit.public_reason();
            assert!(
                !public.contains("line") && !public.contains("rows.csv"),
                "{public}"
            );
            for cell in ["1.5", "-3", "west"] {
                assert!(!both.contains(cell), "{both}");
            }
        }
        let exact = valued_rows(
            &ask(4, &[]),
            &load(&dir, "id,amount\na,18446744073709551615\n"),
        );
        assert_eq!(exact.expect("the largest u64").len(), 1);
    }
}
