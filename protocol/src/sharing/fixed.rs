//! Decimal fixed point: how a decimal column becomes ring elements.
//!
//! A value is read exactly from its decimal text (never through a float) and
//! scaled by `10^digits`: with 2 digits, `"12.34"` is 1234 and `"-0.5"` is
//! -50. Digits beyond the scale are rounded half away from zero, so each
//! value is off by at most `0.5 · 10^-digits`, and a sum of `m` values by at
//! most `m · 0.5 · 10^-digits`; values with no more digits than the scale
//! are exact, and so are their sums. A square is kept at scale
//! `10^(2·digits)`, exactly.
//!
//! **Range.** A scaled value may be at most [`MAX_SCALED`] in magnitude
//! (10^15: with 2 digits, values up to ±10^13), so a square is below 10^30
//! and a sum of squares of 2^20 rows from each of 64 parties stays below
//! 2^126, inside Z_2^128. Each party checks its own contribution with
//! [`fit`] before sharing it: contributions that could make the total wrap
//! around the ring are refused, so a wrapped (wrong) total is never opened.

use super::ring::Ring;

/// The largest scaled magnitude a single value may have.
pub const MAX_SCALED: i128 = 1_000_000_000_000_000;
/// The most fractional digits a scale may have.
pub const MAX_DIGITS: u32 = 9;

/// Why a value cannot be encoded. Messages say the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixedPointError {
    /// Not a plain decimal number.
    #[error(
        "{text:?} is not a decimal number; write digits with an optional sign and decimal point, such as -12.50"
    )]
    NotANumber {
        /// The text.
        text: String,
    },
    /// Too large for the scale.
    #[error(
        "{text:?} is too large: at {digits} decimal digits a value may be at most {MAX_SCALED} in units of 10^-{digits}"
    )]
    TooLarge {
        /// The text.
        text: String,
        /// The scale's digits.
        digits: u32,
    },
    /// A party's contribution could wrap the ring when added to the others'.
    #[error(
        "a local total of {value} is outside what {parties} parties can add in a {bits}-bit ring; narrow the job (filters, fewer rows) or use fewer decimal digits"
    )]
    OutOfRange {
        /// The local total.
        value: i128,
        /// Parties in the job.
        parties: usize,
        /// The ring's bits.
        bits: u32,
    },
}

/// A decimal scale: values are stored as integers in units of `10^-digits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FixedPoint {
    digits: u32,
}

impl FixedPoint {
    /// A scale of `digits` fractional digits, at most [`MAX_DIGITS`].
    pub fn new(digits: u32) -> Option<Self> {
        (digits <= MAX_DIGITS).then_some(Self { digits })
    }

    /// The fractional digits.
    pub fn digits(self) -> u32 {
        self.digits
    }

    /// Reads a decimal exactly and scales it, rounding extra digits half
    /// away from zero.
    pub fn encode(self, text: &str) -> Result<i128, FixedPointError> {
        let not_a_number = || FixedPointError::NotANumber {
            text: text.to_string(),
        };
        let trimmed = text.trim();
        let (negative, unsigned) = match trimmed.as_bytes().first() {
            Some(b'-') => (true, &trimmed[1..]),
            Some(b'+') => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty())
            || !digits_only(whole)
            || !digits_only(fraction)
        {
            return Err(not_a_number());
        }
        let too_large = || FixedPointError::TooLarge {
            text: text.to_string(),
            digits: self.digits,
        };
        let keep = (self.digits as usize).min(fraction.len());
        let mut scaled: i128 = 0;
        for digit in whole.bytes().chain(fraction[..keep].bytes()) {
            scaled = scaled
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(digit - b'0')))
                .filter(|v| *v <= MAX_SCALED * 10)
                .ok_or_else(too_large)?;
        }
        for _ in keep..self.digits as usize {
            scaled = scaled.checked_mul(10).ok_or_else(too_large)?;
        }
        if fraction.as_bytes().get(keep).is_some_and(|&d| d >= b'5') {
            scaled += 1;
        }
        if scaled > MAX_SCALED {
            return Err(too_large());
        }
        Ok(if negative { -scaled } else { scaled })
    }

    /// Writes a scaled integer as exact decimal text.
    pub fn decode(self, scaled: i128) -> String {
        decimal(scaled, self.digits)
    }
}

/// Exact decimal text of `scaled · 10^-digits`.
pub fn decimal(scaled: i128, digits: u32) -> String {
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{magnitude}");
    }
    let unit = 10u128.pow(digits);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / unit,
        magnitude % unit,
        width = digits as usize
    )
}

/// A party's local total as a ring element, refused if it could wrap the
/// ring once added to the other parties' (each at most as large): the total
/// of `parties` contributions must stay inside `-2^(k-1) .. 2^(k-1)`.
pub fn fit<R: Ring>(value: i128, parties: usize) -> Result<R, FixedPointError> {
    let out_of_range = || FixedPointError::OutOfRange {
        value,
        parties,
        bits: R::BITS,
    };
    let bound = (1i128 << (R::BITS.min(127) - 1)) / i128::try_from(parties.max(1)).unwrap_or(1);
    if value.unsigned_abs() >= bound.unsigned_abs() {
        return Err(out_of_range());
    }
    R::from_signed(value).ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> FixedPoint {
        FixedPoint::new(2).expect("scale")
    }

    #[test]
    fn decimals_are_read_exactly_and_rounded_half_away_from_zero() {
        let f = two();
        for (text, scaled) in [
            ("12.34", 1234),
            ("-0.5", -50),
            ("+3", 300),
            ("0.005", 1),
            ("-0.005", -1),
            ("0.0049", 0),
            (".25", 25),
            ("7.", 700),
            (" 1.999 ", 200),
            ("0", 0),
        ] {
            assert_eq!(f.encode(text), Ok(scaled), "{text}");
        }
        for bad in ["", "-", ".", "1e3", "1,5", "0x10", "--1", "1.2.3", "NaN"] {
            assert!(
                matches!(f.encode(bad), Err(FixedPointError::NotANumber { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_range_is_enforced_at_the_bound() {
        let f = two();
        assert_eq!(f.encode("10000000000000"), Ok(MAX_SCALED));
        assert_eq!(f.encode("-10000000000000.00"), Ok(-MAX_SCALED));
        assert!(matches!(
            f.encode("10000000000000.01"),
            Err(FixedPointError::TooLarge { .. })
        ));
        assert!(matches!(
            f.encode(&"9".repeat(60)),
            Err(FixedPointError::TooLarge { .. })
        ));
        assert_eq!(FixedPoint::new(MAX_DIGITS + 1), None);
    }

    #[test]
    fn decoding_is_exact_text() {
        let f = two();
        assert_eq!(f.decode(1234), "12.34");
        assert_eq!(f.decode(-5), "-0.05");
        assert_eq!(f.decode(0), "0.00");
        assert_eq!(decimal(42, 0), "42");
        assert_eq!(decimal(i128::MIN, 3).len(), 41);
    }

    #[test]
    fn a_contribution_that_could_wrap_the_ring_is_refused() {
        let limit = (1i128 << 63) / 3;
        assert!(fit::<u64>(limit - 1, 3).is_ok());
        assert!(fit::<u64>(-(limit - 1), 3).is_ok());
        assert!(matches!(
            fit::<u64>(limit, 3),
            Err(FixedPointError::OutOfRange { bits: 64, .. })
        ));
        assert!(fit::<u128>(limit * 1_000_000, 3).is_ok());
        assert_eq!(fit::<u64>(-7, 2).map(Ring::to_signed), Ok(-7));
    }
}
