//! Grants: a data owner's permission for one peer to use one dataset, for
//! named protocols and one purpose, until a time, within quotas.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use unseen_protocol::ecdh_psi::Mode;

use crate::clock::parse_rfc3339;
use crate::manifest::ProtocolRequest;

mod making;
pub use making::{
    DEFAULT_BUDGET_RELEASES, DEFAULT_MAX_JOBS, DEFAULT_MIN_PEER_SET, DEFAULT_PEER_SET_FACTOR,
    NewGrantError, check_new_grant, default_max_set_size, parse_cap,
};

/// A protocol as grants name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantedProtocol {
    /// ECDH-PSI, membership: the requester learns which ids match.
    Psi,
    /// ECDH-PSI, cardinality: the requester learns how many.
    PsiCa,
    /// Horizontal statistics by secure aggregation: the job's recipients
    /// learn totals over every party's rows.
    Stats,
    /// Private intersection-sum: the requester learns how many of its ids
    /// are in the dataset and the sum of their values (per category).
    IntersectionSum,
}

impl GrantedProtocol {
    /// The grant name of a requested protocol.
    pub fn of(protocol: &ProtocolRequest) -> Self {
        match protocol {
            ProtocolRequest::EcdhPsi(Mode::Membership) => Self::Psi,
            ProtocolRequest::EcdhPsi(Mode::Cardinality) => Self::PsiCa,
            ProtocolRequest::SecureStats { .. } => Self::Stats,
            ProtocolRequest::IntersectionSum(_) => Self::IntersectionSum,
        }
    }
}

impl std::str::FromStr for GrantedProtocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "psi" => Ok(Self::Psi),
            "psi-ca" => Ok(Self::PsiCa),
            "stats" => Ok(Self::Stats),
            "intersection-sum" => Ok(Self::IntersectionSum),
            other => Err(format!(
                "unknown protocol {other:?}; use psi, psi-ca, stats or intersection-sum"
            )),
        }
    }
}

impl std::fmt::Display for GrantedProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Psi => "psi",
            Self::PsiCa => "psi-ca",
            Self::Stats => "stats",
            Self::IntersectionSum => "intersection-sum",
        })
    }
}

/// Privacy budgets are counted in millionths of epsilon, rounded up when
/// spent and down when granted, so accounting is exact and errs safe.
pub const MICROS: u64 = 1_000_000;

/// Parses a non-negative decimal with up to six fractional digits into
/// millionths ("0.5" → 500000).
pub fn parse_micros(text: &str) -> Result<u64, String> {
    parse_fixed(text, 6)
}

/// Parses a probability with up to nine fractional digits into billionths
/// ("0.000000001" → 1); it must be below 1.
pub fn parse_nanos(text: &str) -> Result<u64, String> {
    match parse_fixed(text, 9)? {
        n if n < 1_000_000_000 => Ok(n),
        _ => Err(format!("invalid probability {text:?}: it must be below 1")),
    }
}

fn parse_fixed(text: &str, decimals: usize) -> Result<u64, String> {
    let bad = || {
        format!("invalid number {text:?}: give a decimal such as 0.5 (at most {decimals} decimals)")
    };
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > decimals {
        return Err(bad());
    }
    let digits = |s: &str| s.is_empty() || s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction: u64 = if decimals == 0 {
        0
    } else {
        format!("{fraction:0<decimals$}")
            .parse()
            .map_err(|_| bad())?
    };
    whole
        .checked_mul(10u64.pow(decimals as u32))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(bad)
}

/// Prints millionths as a decimal.
pub fn format_micros(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / MICROS, micros % MICROS);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` or `4w`.
pub fn parse_duration(text: &str) -> Result<time::Duration, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "invalid duration {text:?}: give a number and a unit, such as 90s, 30m, 12h, 7d or 4w"
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(seconds)
        .map(time::Duration::seconds)
        .ok_or_else(bad)
}

/// Parses an expiry: an RFC 3339 time, or a duration from `now`.
pub fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Some(at) = parse_rfc3339(text.trim()) {
        if at <= now {
            return Err(format!(
                "expiry {text:?} is in the past; give a later time or a duration such as 30d"
            ));
        }
        return Ok(at);
    }
    let duration = parse_duration(text)
        .map_err(|e| format!("{e}, or an RFC 3339 time such as 2027-01-01T00:00:00Z"))?;
    // A duration can be valid and still reach past the calendar's end.
    now.checked_add(duration)
        .filter(|at| at.year() <= 9999)
        .ok_or_else(|| {
            format!(
                "expiry {text:?} is too far in the future; give at most a few years, such as 365d"
            )
        })
}

/// Limits on a grant's use. `None` means no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Jobs allowed per period.
    pub max_jobs: Option<u64>,
    /// The period for `max_jobs`, in seconds (a rolling window).
    pub period_secs: u64,
    /// Total distinct ids of the owner's data that jobs may touch.
    pub max_rows: Option<u64>,
    /// The largest set the peer may bring to one job.
    pub max_set_size: Option<u64>,
    /// Differential-privacy noise on each aggregate release: epsilon per
    /// release, in millionths.
    pub epsilon_per_job_micros: Option<u64>,
    /// Total epsilon the grant may spend, in millionths.
    pub epsilon_budget_micros: Option<u64>,
    /// Delta per release (the padding mechanism's tail), in billionths.
    pub delta_per_job_nanos: Option<u64>,
    /// Total delta the grant may spend, in billionths (deltas add up).
    #[serde(default)]
    pub delta_budget_nanos: Option<u64>,
}

/// A grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Its id, `g-` and 12 hex digits.
    pub id: String,
    /// The peer it is for.
    pub peer: String,
    /// The dataset it opens.
    pub dataset: String,
    /// The protocols allowed.
    pub protocols: Vec<GrantedProtocol>,
    /// The one purpose allowed; a job must state it exactly.
    pub purpose: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// When it ends (RFC 3339).
    pub expires_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Its limits.
    pub quota: Quota,
}

/// What a grant has been used for so far, from the charge ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Jobs charged within the current period.
    pub jobs_in_period: u64,
    /// Jobs charged ever.
    pub jobs_total: u64,
    /// Distinct ids touched, summed over jobs.
    pub rows: u64,
    /// Epsilon spent, in millionths.
    pub epsilon_micros: u64,
    /// Delta spent, in billionths.
    pub delta_nanos: u64,
}

/// What one job would charge to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// Distinct ids of the owner's data the job touches.
    pub rows: u64,
    /// Epsilon the job spends, in millionths.
    pub epsilon_micros: u64,
    /// Delta the job spends, in billionths.
    pub delta_nanos: u64,
}

/// Why a grant does not cover a job. Messages are for the owner's operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantRefusal {
    /// No grant names this peer and dataset.
    #[error("no grant lets peer {peer:?} use dataset {dataset:?}; add one with `unseen grant add`")]
    NoGrant {
        /// The peer.
        peer: String,
        /// The dataset.
        dataset: String,
    },
    /// The grants for this peer and dataset have all expired.
    #[error("grant {0} expired; add a new grant to continue")]
    Expired(String),
    /// Revoked.
    #[error("grant {0} was revoked")]
    Revoked(String),
    /// The protocol is not in the grant.
    #[error("grant {id} allows {allowed}, not {asked}")]
    ProtocolNotGranted {
        /// The grant.
        id: String,
        /// What it allows.
        allowed: String,
        /// What was asked.
        asked: GrantedProtocol,
    },
    /// The purpose differs.
    #[error("grant {id} is for purpose {granted:?}, the job states {asked:?}")]
    WrongPurpose {
        /// The grant.
        id: String,
        /// Its purpose.
        granted: String,
        /// The job's.
        asked: String,
    },
    /// A quota is used up.
    #[error(
        "grant {id}: {what} quota exhausted ({used} used of {limit}); ask the data owner for more"
    )]
    QuotaExhausted {
        /// The grant.
        id: String,
        /// Which quota.
        what: &'static str,
        /// Used so far, including this job.
        used: String,
        /// The limit.
        limit: String,
    },
}

impl GrantRefusal {
    /// What the peer is told.
    pub fn public_reason(&self) -> &'static str {
        match self {
            Self::NoGrant { .. } | Self::Expired(_) | Self::Revoked(_) => {
                "no live grant covers this job"
            }
            Self::ProtocolNotGranted { .. } => "the grant does not cover this protocol",
            Self::WrongPurpose { .. } => "the grant does not cover this purpose",
            Self::QuotaExhausted { .. } => "the grant's quota is exhausted",
        }
    }
}

impl Grant {
    /// Whether the grant sets a privacy budget and also allows a membership
    /// protocol, whose answers that budget cannot bound: such a grant is
    /// refused when made and admits nothing.
    pub fn budget_bypassed_by_membership(&self) -> bool {
        self.quota.epsilon_per_job_micros.is_some()
            && self.protocols.contains(&GrantedProtocol::Psi)
    }

    /// Whether the grant is live at `now`.
    pub fn check_live(&self, now: OffsetDateTime) -> Result<(), GrantRefusal> {
        if self.revoked_at.is_some() {
            return Err(GrantRefusal::Revoked(self.id.clone()));
        }
        match parse_rfc3339(&self.expires_at) {
            Some(expires) if expires > now => Ok(()),
            _ => Err(GrantRefusal::Expired(self.id.clone())),
        }
    }

    /// Whether the grant covers this protocol and purpose.
    pub fn check_scope(
        &self,
        protocol: GrantedProtocol,
        purpose: &str,
    ) -> Result<(), GrantRefusal> {
        if !self.protocols.contains(&protocol) {
            return Err(GrantRefusal::ProtocolNotGranted {
                id: self.id.clone(),
                allowed: self
                    .protocols
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                asked: protocol,
            });
        }
        if self.purpose != purpose {
            return Err(GrantRefusal::WrongPurpose {
                id: self.id.clone(),
                granted: self.purpose.clone(),
                asked: purpose.to_string(),
            });
        }
        Ok(())
    }

    /// Whether the quotas leave room for a job charging `charge`, with a
    /// peer set of `peer_set_size` (when known).
    pub fn check_quota(
        &self,
        usage: &Usage,
        charge: &Charge,
        peer_set_size: Option<u64>,
    ) -> Result<(), GrantRefusal> {
        let q = &self.quota;
        let exhausted = |what, used: String, limit: String| GrantRefusal::QuotaExhausted {
            id: self.id.clone(),
            what,
            used,
            limit,
        };
        if let Some(max) = q.max_jobs
            && usage.jobs_in_period + 1 > max
        {
            return Err(exhausted(
                "jobs per period",
                (usage.jobs_in_period + 1).to_string(),
                format!("{max} per {} s", q.period_secs),
            ));
        }
        if let Some(max) = q.max_rows
            && usage.rows + charge.rows > max
        {
            return Err(exhausted(
                "rows",
                (usage.rows + charge.rows).to_string(),
                max.to_string(),
            ));
        }
        if let (Some(max), Some(size)) = (q.max_set_size, peer_set_size)
            && size > max
        {
            return Err(exhausted("set size", size.to_string(), max.to_string()));
        }
        if let Some(budget) = q.epsilon_budget_micros
            && usage.epsilon_micros + charge.epsilon_micros > budget
        {
            return Err(exhausted(
                "privacy budget (epsilon)",
                format_micros(usage.epsilon_micros + charge.epsilon_micros),
                format_micros(budget),
            ));
        }
        if let Some(budget) = q.delta_budget_nanos
            && usage.delta_nanos + charge.delta_nanos > budget
        {
            return Err(exhausted(
                "privacy budget (delta)",
                format!("{}e-9", usage.delta_nanos + charge.delta_nanos),
                format!("{budget}e-9"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn grant() -> Grant {
        Grant {
            id: "g-1".into(),
            peer: "bob".into(),
            dataset: "customers".into(),
            protocols: vec![GrantedProtocol::PsiCa],
            purpose: "joint marketing".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-12-31T00:00:00Z".into(),
            revoked_at: None,
            quota: Quota {
                max_jobs: Some(2),
                period_secs: 86_400,
                max_rows: Some(1_000),
                max_set_size: Some(500),
                epsilon_per_job_micros: Some(500_000),
                epsilon_budget_micros: Some(1_000_000),
                delta_per_job_nanos: Some(1),
                delta_budget_nanos: Some(3),
            },
        }
    }

    #[test]
    fn liveness_follows_expiry_and_revocation() {
        let mut g = grant();
        assert!(g.check_live(datetime!(2026-06-01 0:00 UTC)).is_ok());
        assert_eq!(
            g.check_live(datetime!(2026-12-31 0:00 UTC)),
            Err(GrantRefusal::Expired("g-1".into()))
        );
        g.revoked_at = Some("2026-05-01T00:00:00Z".into());
        assert_eq!(
            g.check_live(datetime!(2026-06-01 0:00 UTC)),
            Err(GrantRefusal::Revoked("g-1".into()))
        );
    }

    #[test]
    fn scope_is_protocol_and_exact_purpose() {
        let g = grant();
        assert!(
            g.check_scope(GrantedProtocol::PsiCa, "joint marketing")
                .is_ok()
        );
        assert!(matches!(
            g.check_scope(GrantedProtocol::Psi, "joint marketing"),
            Err(GrantRefusal::ProtocolNotGranted { .. })
        ));
        assert!(matches!(
            g.check_scope(GrantedProtocol::PsiCa, "credit scoring"),
            Err(GrantRefusal::WrongPurpose { .. })
        ));
    }

    #[test]
    fn each_quota_binds() {
        let g = grant();
        let charge = Charge {
            rows: 100,
            epsilon_micros: 500_000,
            delta_nanos: 1,
        };
        assert!(g.check_quota(&Usage::default(), &charge, Some(500)).is_ok());
        let cases = [
            (
                Usage {
                    jobs_in_period: 2,
                    ..Usage::default()
                },
                charge,
                None,
                "jobs per period",
            ),
            (
                Usage {
                    rows: 901,
                    ..Usage::default()
                },
                charge,
                None,
                "rows",
            ),
            (Usage::default(), charge, Some(501), "set size"),
            (
                Usage {
                    epsilon_micros: 600_000,
                    ..Usage::default()
                },
                charge,
                None,
                "privacy budget (epsilon)",
            ),
        ];
        for (usage, charge, size, expected) in cases {
            match g.check_quota(&usage, &charge, size) {
                Err(GrantRefusal::QuotaExhausted { what, .. }) => assert_eq!(what, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn durations_and_expiries_parse() {
        assert_eq!(parse_duration("90s"), Ok(time::Duration::seconds(90)));
        assert_eq!(parse_duration("7d"), Ok(time::Duration::days(7)));
        for bad in ["", "7", "d", "0d", "-1d", "7y", "1.5d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let now = datetime!(2026-06-01 0:00 UTC);
        assert_eq!(parse_expiry("30d", now), Ok(datetime!(2026-07-01 0:00 UTC)));
        assert_eq!(
            parse_expiry("2027-01-01T00:00:00Z", now),
            Ok(datetime!(2027-01-01 0:00 UTC))
        );
        assert!(parse_expiry("2026-01-01T00:00:00Z", now).is_err());
        // Absurd durations are errors, not panics.
        for absurd in ["99999999999w", "9223372036854775807s", "999999999d"] {
            assert!(parse_expiry(absurd, now).is_err(), "{absurd}");
        }
    }

    #[test]
    fn micros_parse_exactly() {
        assert_eq!(parse_micros("0.5"), Ok(500_000));
        assert_eq!(parse_micros("2"), Ok(2_000_000));
        assert_eq!(parse_micros(".25"), Ok(250_000));
        assert_eq!(parse_micros("0.000001"), Ok(1));
        for bad in ["", ".", "-1", "1e3", "0.0000001", "abc"] {
            assert!(parse_micros(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_nanos("0.000000001"), Ok(1));
        assert_eq!(parse_nanos("0.5"), Ok(500_000_000));
        assert!(parse_nanos("1").is_err());
        assert_eq!(format_micros(500_000), "0.5");
        assert_eq!(format_micros(2_000_000), "2");
        assert_eq!(format_micros(1), "0.000001");
    }
}
