//! Row filters of a stats job, applied by each party to its own rows before
//! anything is computed: `COLUMN OP LITERAL`, where OP is one of
//! `=`, `!=`, `<`, `<=`, `>`, `>=` and LITERAL is a decimal number or a
//! double-quoted string (`age >= 30`, `region = "east"`). Numbers compare
//! exactly as decimals (to nine fractional digits); strings compare as text,
//! with `=` and `!=` only. A row whose cell is not a number where the filter
//! compares numbers is an error naming the row, not a silent skip.

use unseen_protocol::sharing::{FixedPoint, MAX_DIGITS};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// What a cell is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A decimal, scaled to nine digits.
    Number(i128),
    /// Text.
    Text(String),
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The column it reads.
    pub column: String,
    /// The comparison.
    pub op: Op,
    /// The value compared with.
    pub literal: Literal,
}

fn exact() -> FixedPoint {
    FixedPoint::new(MAX_DIGITS).expect("the widest scale")
}

impl Filter {
    /// Parses `COLUMN OP LITERAL`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage =
            || format!("{text:?}: write COLUMN OP VALUE, such as age >= 30 or region = \"east\"");
        // The first operator outside quotes; two-character ones first.
        let quote = text.find('"').unwrap_or(text.len());
        let (at, op, width) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .filter_map(|(token, op)| text[..quote].find(token).map(|at| (at, *op, token.len())))
        .min_by_key(|(at, _, width)| (*at, usize::MAX - width))
        .ok_or_else(usage)?;
        let column = text[..at].trim();
        let value = text[at + width..].trim();
        if column.is_empty() || value.is_empty() {
            return Err(usage());
        }
        let literal = match value.strip_prefix('"') {
            Some(rest) => {
                let inner = rest
                    .strip_suffix('"')
                    .filter(|s| !s.contains('"'))
                    .ok_or_else(usage)?;
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err(format!("{text:?}: text compares with = or != only"));
                }
                Literal::Text(inner.to_string())
            }
            None => Literal::Number(
                exact()
                    .encode(value)
                    .map_err(|e| format!("{text:?}: {e}"))?,
            ),
        };
        Ok(Self {
            column: column.to_string(),
            op,
            literal,
        })
    }

    /// Whether a row's `cell` passes; an error says why the cell cannot be
    /// compared.
    pub fn accepts(&self, cell: &str) -> Result<bool, String> {
        let ordering = match &self.literal {
            Literal::Text(text) => cell.trim().cmp(text.as_str()),
            Literal::Number(number) => {
                let value = exact().encode(cell).map_err(|_| {
                    format!(
                        "column {:?} holds {cell:?}, not a number, and the filter compares it with a number",
                        self.column
                    )
                })?;
                value.cmp(number)
            }
        };
        use std::cmp::Ordering::{Equal, Greater, Less};
        Ok(match self.op {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_compare_numbers_exactly_and_text_as_text() {
        let age = Filter::parse("age >= 30").expect("parse");
        assert_eq!(age.column, "age");
        assert_eq!(age.op, Op::Ge);
        assert_eq!(age.accepts("30"), Ok(true));
        assert_eq!(age.accepts(" 29.999999999 "), Ok(false));
        assert_eq!(
            age.accepts("30.0000000001"),
            Ok(true),
            "rounded to nine digits"
        );
        let region = Filter::parse("home region = \"east >= west\"").expect("parse");
        assert_eq!(region.column, "home region");
        assert_eq!(region.literal, Literal::Text("east >= west".into()));
        assert_eq!(region.accepts("east >= west"), Ok(true));
        assert_eq!(region.accepts("east"), Ok(false));
        for (text, cell, expected) in [
            ("x != 1", "1.0", false),
            ("x < -2.5", "-3", true),
            ("x <= -2.5", "-2.50", true),
            ("x > 0", "0", false),
            ("x = 7", "7.000", true),
        ] {
            let filter = Filter::parse(text).expect(text);
            assert_eq!(filter.accepts(cell), Ok(expected), "{text} on {cell}");
        }
    }

    #[test]
    fn bad_filters_and_cells_say_what_to_write() {
        for bad in [
            "age",
            ">= 30",
            "age >=",
            "region < \"east\"",
            "age >= thirty",
            "r = \"a",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        let err = Filter::parse("age").expect_err("no operator");
        assert!(err.contains("COLUMN OP VALUE"), "{err}");
        let err = Filter::parse("age >= 30")
            .expect("parse")
            .accepts("unknown")
            .expect_err("not a number");
        assert!(err.contains("not a number"), "{err}");
    }
}
