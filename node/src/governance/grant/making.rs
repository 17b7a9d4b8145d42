//! Making a grant: the caps a grant gets when its maker names none, the
//! rules a new grant must meet, and the one sentence that says what it allows.
//!
//! Every grant carries caps. A grant made with no options used to allow any
//! number of jobs, exact counts and any set size, so one registered peer
//! could learn 40 of 40 candidate memberships by differencing, or a whole
//! 5,000-id set with one PSI job over 200,000 sequential ids. So `grant add`
//! fills the caps below when a flag is absent, and lifting one is an explicit
//! `unlimited`. In storage, [`Quota`]'s `None` still means "no limit".

use crate::manifest::ProtocolRequest;
use crate::policy::Role;
use crate::policy::{self, DataPolicy, Grade, Reveals, Violation};

use super::{Grant, GrantedProtocol, Quota, format_micros};

/// Jobs per period (the period defaults to a day) when `--max-jobs` is
/// absent: enough for a study, too few for a differencing sweep.
pub const DEFAULT_MAX_JOBS: u64 = 10;
/// With no `--max-set-size`, the peer's set may be at most this many times
/// the dataset's distinct ids ...
pub const DEFAULT_PEER_SET_FACTOR: u64 = 2;
/// ... and at least this many ids, so a small dataset can still be matched.
pub const DEFAULT_MIN_PEER_SET: u64 = 1_000;
/// With `--epsilon` and no `--epsilon-budget`, the budget is this many
/// releases' worth (and likewise for delta).
pub const DEFAULT_BUDGET_RELEASES: u64 = 10;

/// The largest peer set a grant allows by default over a dataset of
/// `distinct_ids`: a peer probing a large id space for members needs a set
/// far larger than the owner's.
pub fn default_max_set_size(distinct_ids: u64) -> u64 {
    distinct_ids
        .saturating_mul(DEFAULT_PEER_SET_FACTOR)
        .max(DEFAULT_MIN_PEER_SET)
}

/// Parses a cap: `unlimited` lifts it (`None`); anything else goes to
/// `parse`.
pub fn parse_cap(
    text: &str,
    parse: impl Fn(&str) -> Result<u64, String>,
) -> Result<Option<u64>, String> {
    match text.trim() {
        "unlimited" => Ok(None),
        other => parse(other)
            .map(Some)
            .map_err(|e| format!("{e}, or `unlimited` to lift the cap")),
    }
}

/// Why a grant cannot be made. Each message says the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NewGrantError {
    /// The data's policy forbids a granted protocol.
    #[error("dataset {dataset:?} cannot be granted for {protocol}: {violation}")]
    Policy {
        /// The dataset.
        dataset: String,
        /// The protocol.
        protocol: GrantedProtocol,
        /// The rule.
        violation: Violation,
    },
    /// A budget and a membership protocol in one grant.
    #[error(
        "--epsilon with psi: psi tells the peer which ids match, which no privacy budget bounds; grant psi-ca with --epsilon, and psi (if the peer must learn members) in a separate grant"
    )]
    BudgetBypassedByMembership,
    /// Noise on important data with no end to the budget.
    #[error(
        "dataset {dataset:?} is graded important: its releases need a finite privacy budget; give --epsilon-budget (and --delta-budget) a number, not unlimited"
    )]
    UnboundedBudget {
        /// The dataset.
        dataset: String,
    },
}

/// Checks a grant about to be made over data under `policy`. Returns the
/// warnings its maker should read (the grant is still valid), or why it
/// cannot be made. Admission applies the same rules to every job, so a grant
/// made another way gains nothing.
pub fn check_new_grant(grant: &Grant, policy: &DataPolicy) -> Result<Vec<String>, NewGrantError> {
    if grant.budget_bypassed_by_membership() {
        return Err(NewGrantError::BudgetBypassedByMembership);
    }
    let noisy = grant.quota.epsilon_per_job_micros.is_some();
    let mut warnings = Vec::new();
    for &protocol in &grant.protocols {
        // Judged where the owner's data is most exposed: in the peer's jobs,
        // where this node answers.
        let asked = request(protocol);
        let reveals = policy::disclosure(&asked).of(Role::Responder);
        let noise = noisy && reveals == Reveals::Aggregate;
        let checked = policy::check_noise_built(&asked, policy, reveals, noisy)
            .and_then(|()| policy::check_use(policy, reveals, noise));
        match checked {
            Ok(()) => {}
            // The grant still covers this node's own requests, where its data
            // reveals only its size; admission refuses the peer's.
            Err(Violation::ImportantNotAggregate) => warnings.push(format!(
                "dataset {:?} is graded important, so {} can never run {protocol} on it; this grant only lets this node ask {} for {protocol}, which reveals nothing of {0:?} but its size",
                grant.dataset, grant.peer, grant.peer
            )),
            // The same for a protocol without noise yet, when no budget was
            // asked for (a budget it cannot spend is refused below).
            Err(Violation::ImportantNoiseNotBuilt) if !noisy && policy.grade == Grade::Important => warnings.push(format!(
                "dataset {:?} is graded important and {protocol} has no noise yet, so {} can never run it on {0:?}; this grant only lets this node ask {} for {protocol}, which reveals nothing of {0:?} but its size",
                grant.dataset, grant.peer, grant.peer
            )),
            Err(violation) => {
                return Err(NewGrantError::Policy {
                    dataset: grant.dataset.clone(),
                    protocol,
                    violation,
                });
            }
        }
    }
    let q = &grant.quota;
    if policy.grade == Grade::Important
        && noisy
        && (q.epsilon_budget_micros.is_none() || q.delta_budget_nanos.is_none())
    {
        return Err(NewGrantError::UnboundedBudget {
            dataset: grant.dataset.clone(),
        });
    }
    if policy.personal
        && policy.grade == Grade::General
        && grant.protocols.contains(&GrantedProtocol::Psi)
    {
        warnings.push(format!(
            "dataset {:?} holds personal information, and psi tells {} which of its people are in {0:?}; grant psi-ca alone unless {1} must learn who they are",
            grant.dataset, grant.peer
        ));
    }
    for (cap, missing) in [
        (q.max_jobs, "any number of jobs"),
        (q.max_set_size, "peer sets of any size"),
    ] {
        if cap.is_none() {
            warnings.push(format!(
                "this grant allows {missing}: a peer may difference exact answers or sweep an id space"
            ));
        }
    }
    Ok(warnings)
}

fn request(protocol: GrantedProtocol) -> ProtocolRequest {
    use unseen_protocol::ecdh_psi::Mode;
    match protocol {
        GrantedProtocol::Psi => ProtocolRequest::EcdhPsi(Mode::Membership),
        GrantedProtocol::PsiCa => ProtocolRequest::EcdhPsi(Mode::Cardinality),
        // Judged as a job of three or more parties; a two-party stats job
        // is refused at admission unless its release is noisy.
        GrantedProtocol::Stats => ProtocolRequest::SecureStats { parties: 3 },
        // What it reveals does not depend on the columns.
        GrantedProtocol::IntersectionSum => {
            ProtocolRequest::IntersectionSum(crate::manifest::IsumRequest {
                value_column: String::new(),
                category_column: None,
                categories: Vec::new(),
                value_limbs: 1,
            })
        }
    }
}

impl Grant {
    /// What the grant allows, in one sentence, for the data owner's operator.
    pub fn describe(&self, grade: Option<Grade>) -> String {
        // Psi on important data serves only this node's own requests.
        let own_only =
            |p: &&GrantedProtocol| grade == Some(Grade::Important) && **p == GrantedProtocol::Psi;
        let protocols: Vec<String> = self
            .protocols
            .iter()
            .filter(|p| !own_only(p))
            .map(ToString::to_string)
            .collect();
        let grade = grade.map_or(String::new(), |g| format!(" ({g})"));
        let who = if protocols.is_empty() {
            format!(
                "this node may ask {} for psi with {}{grade} ({0} may run nothing on it)",
                self.peer, self.dataset
            )
        } else {
            format!(
                "{} may run {} on {}{grade}",
                self.peer,
                protocols.join(" and "),
                self.dataset
            )
        };
        let q = &self.quota;
        let mut limits = vec![
            match q.max_jobs {
                Some(n) => format!("at most {n} jobs per {}", period(q.period_secs)),
                None => "any number of jobs".into(),
            },
            match q.max_set_size {
                Some(n) => format!("peer sets of at most {n} ids"),
                None => "peer sets of any size".into(),
            },
            match q.max_rows {
                Some(n) => format!("at most {n} of the dataset's ids revealed in all"),
                None => "no cap on the dataset's ids revealed in all".into(),
            },
        ];
        limits.push(noise(q));
        format!(
            "{who} for {:?} until {}: {}.",
            self.purpose,
            self.expires_at,
            limits.join(", ")
        )
    }
}

fn noise(q: &Quota) -> String {
    let Some(epsilon) = q.epsilon_per_job_micros else {
        return "exact counts (no noise)".into();
    };
    let budget = q
        .epsilon_budget_micros
        .map_or("an unlimited budget".into(), |b| {
            format!("a budget of {}", format_micros(b))
        });
    let delta = match (q.delta_per_job_nanos, q.delta_budget_nanos) {
        (Some(d), Some(b)) => format!(" (delta {d}e-9 each, {b}e-9 in all)"),
        (Some(d), None) => format!(" (delta {d}e-9 each, no delta budget)"),
        _ => String::new(),
    };
    format!(
        "each count noised with epsilon {} from {budget}{delta}",
        format_micros(epsilon)
    )
}

fn period(seconds: u64) -> String {
    match seconds {
        86_400 => "day".into(),
        3_600 => "hour".into(),
        604_800 => "week".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DEFAULT_MIN_GROUP_SIZE, LegalBasis};

    fn policy(grade: Grade, personal: bool) -> DataPolicy {
        DataPolicy {
            grade,
            personal,
            legal_basis: personal.then(|| LegalBasis::Consent("form 7".into())),
            min_group_size: DEFAULT_MIN_GROUP_SIZE,
        }
    }

    fn grant(protocols: &[GrantedProtocol], epsilon: Option<u64>) -> Grant {
        Grant {
            id: "g-1".into(),
            peer: "bob".into(),
            dataset: "customers".into(),
            protocols: protocols.to_vec(),
            purpose: "loyalty".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-02-01T00:00:00Z".into(),
            revoked_at: None,
            quota: Quota {
                max_jobs: Some(DEFAULT_MAX_JOBS),
                period_secs: 86_400,
                max_rows: None,
                max_set_size: Some(2_000),
                epsilon_per_job_micros: epsilon,
                epsilon_budget_micros: epsilon.map(|e| e * DEFAULT_BUDGET_RELEASES),
                delta_per_job_nanos: epsilon.map(|_| 1),
                delta_budget_nanos: epsilon.map(|_| DEFAULT_BUDGET_RELEASES),
            },
        }
    }

    use GrantedProtocol::{Psi, PsiCa};

    #[test]
    fn important_data_needs_noise_and_a_finite_budget() {
        let important = policy(Grade::Important, false);
        let err = check_new_grant(&grant(&[PsiCa], None), &important).expect_err("no noise");
        assert!(
            matches!(
                err,
                NewGrantError::Policy {
                    violation: Violation::ImportantWithoutNoise,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("--epsilon"), "{err}");
        check_new_grant(&grant(&[PsiCa], Some(500_000)), &important).expect("noisy, budgeted");
        for unbounded in [
            |q: &mut Quota| q.epsilon_budget_micros = None,
            |q: &mut Quota| q.delta_budget_nanos = None,
        ] {
            let mut g = grant(&[PsiCa], Some(500_000));
            unbounded(&mut g.quota);
            let err = check_new_grant(&g, &important).expect_err("unbounded");
            assert_eq!(
                err,
                NewGrantError::UnboundedBudget {
                    dataset: "customers".into()
                }
            );
        }
        // Psi on important data serves only this node's own requests (the
        // peer's are refused at admission), and the grant says so.
        let warnings = check_new_grant(&grant(&[Psi], None), &important).expect("own requests");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("bob can never run psi on it"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_budget_beside_membership_is_refused() {
        let general = policy(Grade::General, false);
        let err = check_new_grant(&grant(&[Psi, PsiCa], Some(500_000)), &general)
            .expect_err("epsilon with psi");
        assert_eq!(err, NewGrantError::BudgetBypassedByMembership);
        assert!(err.to_string().contains("separate grant"));
        check_new_grant(&grant(&[Psi, PsiCa], None), &general).expect("exact, general");
    }

    #[test]
    fn intersection_sum_is_granted_only_exact_on_general_data() {
        use GrantedProtocol::IntersectionSum;
        let general = policy(Grade::General, true);
        let warnings = check_new_grant(&grant(&[IntersectionSum], None), &general)
            .expect("exact sums on general data");
        assert!(warnings.is_empty(), "{warnings:?}");
        // Important data without a budget: made, with a warning that it
        // serves only this node's own asking (admission refuses answering).
        let warnings = check_new_grant(
            &grant(&[IntersectionSum], None),
            &policy(Grade::Important, false),
        )
        .expect("own asking on important data");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("only lets this node ask")),
            "{warnings:?}"
        );
        for (grade, epsilon, violation) in [
            (Grade::General, Some(500_000), Violation::NoiseNotBuilt),
            (
                Grade::Important,
                Some(500_000),
                Violation::ImportantNoiseNotBuilt,
            ),
        ] {
            let err = check_new_grant(
                &grant(&[IntersectionSum, PsiCa], epsilon),
                &policy(grade, false),
            )
            .expect_err("no noise for intersection-sum");
            assert_eq!(
                err,
                NewGrantError::Policy {
                    dataset: "customers".into(),
                    protocol: IntersectionSum,
                    violation,
                }
            );
        }
        assert!(
            check_new_grant(
                &grant(&[IntersectionSum], None),
                &policy(Grade::Core, false)
            )
            .is_err()
        );
        assert_eq!("intersection-sum".parse(), Ok(IntersectionSum));
    }

    #[test]
    fn core_data_and_personal_data_without_a_basis_are_never_granted() {
        let err = check_new_grant(&grant(&[PsiCa], Some(1)), &policy(Grade::Core, false))
            .expect_err("core");
        assert!(matches!(
            err,
            NewGrantError::Policy {
                violation: Violation::CoreData,
                ..
            }
        ));
        let mut no_basis = policy(Grade::General, true);
        no_basis.legal_basis = None;
        let err = check_new_grant(&grant(&[PsiCa], None), &no_basis).expect_err("no basis");
        assert!(err.to_string().contains("--consent"), "{err}");
    }

    #[test]
    fn membership_on_personal_data_and_lifted_caps_are_warned_about() {
        let personal = policy(Grade::General, true);
        let warnings = check_new_grant(&grant(&[Psi], None), &personal).expect("allowed");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("personal information") && warnings[0].contains("psi-ca alone")
        );
        assert!(
            check_new_grant(&grant(&[PsiCa], None), &personal)
                .expect("allowed")
                .is_empty()
        );
        let mut open = grant(&[PsiCa], None);
        open.quota.max_jobs = None;
        open.quota.max_set_size = None;
        let warnings = check_new_grant(&open, &policy(Grade::General, false)).expect("allowed");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn the_sentence_says_every_cap() {
        let text = grant(&[PsiCa], Some(500_000)).describe(Some(Grade::Important));
        assert_eq!(
            text,
            "bob may run psi-ca on customers (important) for \"loyalty\" until 2026-02-01T00:00:00Z: at most 10 jobs per day, peer sets of at most 2000 ids, no cap on the dataset's ids revealed in all, each count noised with epsilon 0.5 from a budget of 5 (delta 1e-9 each, 10e-9 in all)."
        );
        let mut open = grant(&[Psi, PsiCa], None);
        open.quota.max_jobs = None;
        open.quota.max_set_size = None;
        open.quota.max_rows = Some(500);
        open.quota.period_secs = 7 * 86_400;
        let text = open.describe(None);
        assert!(
            text.contains("psi and psi-ca on customers for")
                && text.contains("any number of jobs, peer sets of any size, at most 500 of the dataset's ids revealed in all, exact counts (no noise)."),
            "{text}"
        );
    }

    #[test]
    fn psi_on_important_data_is_described_as_this_nodes_own_use() {
        let text = grant(&[Psi], None).describe(Some(Grade::Important));
        assert!(
            text.starts_with("this node may ask bob for psi with customers (important) (bob may run nothing on it)"),
            "{text}"
        );
        let warnings = check_new_grant(&grant(&[Psi], None), &policy(Grade::Important, true))
            .expect("own requests");
        assert_eq!(warnings.len(), 1, "no personal-data warning: {warnings:?}");
    }

    #[test]
    fn caps_default_conservatively_and_lift_only_when_asked() {
        assert_eq!(default_max_set_size(0), DEFAULT_MIN_PEER_SET);
        assert_eq!(default_max_set_size(5_000), 10_000);
        assert_eq!(default_max_set_size(u64::MAX), u64::MAX);
        let number = |t: &str| t.parse::<u64>().map_err(|e| e.to_string());
        assert_eq!(parse_cap("unlimited", number), Ok(None));
        assert_eq!(parse_cap(" 12 ", number), Ok(Some(12)));
        let err = parse_cap("lots", number).expect_err("not a number");
        assert!(err.contains("`unlimited`"), "{err}");
    }
}
