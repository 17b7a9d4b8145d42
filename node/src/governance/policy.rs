//! The data owner's rules, as pure functions the acceptance boundary applies.
//!
//! A protocol declares what its output reveals about each party's data to the
//! other party ([`Disclosure`]); the rules here decide from that, the data's
//! grade and legal basis, and the grant, whether a job may run and what may be
//! released. A new protocol adds a [`Disclosure`] and nothing else.

use serde::{Deserialize, Serialize};
use unseen_protocol::ecdh_psi::Mode;

use crate::manifest::ProtocolRequest;

/// A dataset's grade under China's data classification and grading scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    /// General data: any protocol a grant allows.
    General,
    /// Important data: only protocols whose output is an aggregate.
    Important,
    /// Core data: never used by any job.
    Core,
}

impl std::str::FromStr for Grade {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "general" => Ok(Self::General),
            "important" => Ok(Self::Important),
            "core" => Ok(Self::Core),
            other => Err(format!(
                "unknown grade {other:?}; use general, important or core"
            )),
        }
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::General => "general",
            Self::Important => "important",
            Self::Core => "core",
        })
    }
}

/// Why personal information may circulate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "snake_case",
    tag = "basis",
    content = "text",
    deny_unknown_fields
)]
pub enum LegalBasis {
    /// The data subjects consented; the reference identifies the consent record.
    Consent(String),
    /// The data is anonymised; the statement says how.
    Anonymised(String),
}

/// Which side of a job this node was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This node asked for the job.
    Requester,
    /// A peer asked this node.
    Responder,
}

impl Role {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requester => "requester",
            Self::Responder => "responder",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "requester" => Some(Self::Requester),
            "responder" => Some(Self::Responder),
            _ => None,
        }
    }
}

/// What the owner declares about a dataset at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPolicy {
    /// The grade.
    pub grade: Grade,
    /// Whether the data holds personal information.
    pub personal: bool,
    /// Required before personal data is used.
    pub legal_basis: Option<LegalBasis>,
    /// Results over fewer than this many of the owner's records are suppressed.
    pub min_group_size: u64,
}

/// The default minimum group size k.
pub const DEFAULT_MIN_GROUP_SIZE: u64 = 10;

/// What a protocol's output reveals about one party's records to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reveals {
    /// Only how many records the party brought.
    SetSizeOnly,
    /// An aggregate (a count or a sum) over a group of the party's records.
    Aggregate,
    /// Which records are in the output (e.g. PSI membership).
    Membership,
    /// The party's exact input, e.g. a two-party sum the other party can
    /// subtract its own input from.
    ExactInput,
}

/// What a protocol reveals, for each role's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disclosure {
    /// About the requester's data, to the responder.
    pub requester_data: Reveals,
    /// About the responder's data, to the requester.
    pub responder_data: Reveals,
}

impl Disclosure {
    /// What the protocol reveals about the data of the party in `role`.
    pub fn of(&self, role: Role) -> Reveals {
        match role {
            Role::Requester => self.requester_data,
            Role::Responder => self.responder_data,
        }
    }
}

/// The protocols the node knows, by what they reveal. A new protocol adds
/// its line here.
pub fn disclosure(protocol: &ProtocolRequest) -> Disclosure {
    match protocol {
        ProtocolRequest::EcdhPsi(Mode::Membership) => Disclosure {
            requester_data: Reveals::SetSizeOnly,
            responder_data: Reveals::Membership,
        },
        ProtocolRequest::EcdhPsi(Mode::Cardinality) => Disclosure {
            requester_data: Reveals::SetSizeOnly,
            responder_data: Reveals::Aggregate,
        },
        // Two parties: each learns the total, hence the other's input.
        ProtocolRequest::SecureStats { parties: 2 } => planned::TWO_PARTY_SUM,
        ProtocolRequest::SecureStats { .. } => planned::SECURE_AGGREGATION,
        ProtocolRequest::IntersectionSum(_) => planned::INTERSECTION_SUM,
    }
}

/// Whether the node can noise this protocol's releases when a grant sets
/// `--epsilon`. Intersection-sum has the protocol's hook (offsets on the
/// decrypted sums) but no drawing of the noise, no release terms for it
/// and no accounting yet.
pub fn noise_built(protocol: &ProtocolRequest) -> bool {
    !matches!(protocol, ProtocolRequest::IntersectionSum(_))
}

/// The rule for a protocol the node cannot noise yet: no grant for it may
/// set a budget (it would protect nothing), and important data, whose
/// aggregates are released only with noise, cannot answer it. Checked at
/// `grant add` and again at admission, before [`check_use`].
pub fn check_noise_built(
    protocol: &ProtocolRequest,
    policy: &DataPolicy,
    reveals: Reveals,
    noisy_grant: bool,
) -> Result<(), Violation> {
    if noise_built(protocol) {
        return Ok(());
    }
    if policy.grade >= Grade::Important && reveals >= Reveals::Aggregate {
        return Err(Violation::ImportantNoiseNotBuilt);
    }
    if noisy_grant {
        return Err(Violation::NoiseNotBuilt);
    }
    Ok(())
}

/// Future protocols' disclosures, declared now so their rules are tested.
pub mod planned {
    use super::{Disclosure, Reveals};

    /// Intersection-sum: the requester learns the sum of the responder's
    /// values over the intersection.
    pub const INTERSECTION_SUM: Disclosure = Disclosure {
        requester_data: Reveals::SetSizeOnly,
        responder_data: Reveals::Aggregate,
    };
    /// A two-party secure sum: each learns the total, hence the other's input.
    pub const TWO_PARTY_SUM: Disclosure = Disclosure {
        requester_data: Reveals::ExactInput,
        responder_data: Reveals::ExactInput,
    };
    /// Secure aggregation over three or more parties: an aggregate only.
    pub const SECURE_AGGREGATION: Disclosure = Disclosure {
        requester_data: Reveals::Aggregate,
        responder_data: Reveals::Aggregate,
    };
}

/// Why the rules refuse a use of data. The text is for the data owner's
/// operator; the peer is told only [`Violation::public_reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// Core data is never used.
    #[error("dataset is graded core: core data is never used by any job")]
    CoreData,
    /// Important data in a protocol that reveals records.
    #[error(
        "dataset is graded important, and this protocol reveals which records matched; use an aggregate protocol (PSI-CA) or regrade the data"
    )]
    ImportantNotAggregate,
    /// An aggregate of important data without noise: exact counts let a
    /// peer learn one record's membership by differencing two jobs.
    #[error(
        "dataset is graded important, and its aggregates are released only with differential-privacy noise; the grant must set --epsilon and --epsilon-budget"
    )]
    ImportantWithoutNoise,
    /// Personal data without a recorded legal basis.
    #[error(
        "dataset holds personal information and has no legal basis recorded; register it again with --consent REF or --anonymised STATEMENT"
    )]
    MissingLegalBasis,
    /// Important data asked for a protocol the node cannot noise yet.
    #[error(
        "dataset is graded important, and its aggregates are released only with differential-privacy noise, which intersection-sum does not have yet; answer with psi-ca and --epsilon, or grade the data general if exact sums may leave"
    )]
    ImportantNoiseNotBuilt,
    /// A budget on a protocol the node cannot noise yet.
    #[error(
        "intersection-sum has no differential-privacy noise yet, so --epsilon would protect nothing; grant it without --epsilon, on general data only"
    )]
    NoiseNotBuilt,
    /// An exact input would be revealed and no noise protects it.
    #[error(
        "this protocol would reveal the exact input of this dataset, and the grant adds no noise; add --epsilon to the grant"
    )]
    ExactInputWithoutNoise,
}

impl Violation {
    /// What the peer is told: the kind of rule, nothing about the data.
    pub fn public_reason(&self) -> &'static str {
        match self {
            Self::CoreData | Self::ImportantNotAggregate | Self::ImportantNoiseNotBuilt => {
                "the data owner's grading does not allow this protocol on that dataset"
            }
            Self::MissingLegalBasis => {
                "the data owner has not recorded a legal basis for that dataset"
            }
            Self::ExactInputWithoutNoise => "the result would reveal an exact input",
            Self::ImportantWithoutNoise => {
                "the data owner releases aggregates of that dataset only with noise"
            }
            Self::NoiseNotBuilt => "the data owner's grant is invalid for this job",
        }
    }
}

/// Whether data under `policy` may be used by a protocol that reveals
/// `reveals` of it, with or without noise on the release.
pub fn check_use(policy: &DataPolicy, reveals: Reveals, noise: bool) -> Result<(), Violation> {
    if policy.grade == Grade::Core {
        return Err(Violation::CoreData);
    }
    if policy.grade == Grade::Important && reveals >= Reveals::Membership {
        return Err(Violation::ImportantNotAggregate);
    }
    if policy.grade == Grade::Important && reveals == Reveals::Aggregate && !noise {
        return Err(Violation::ImportantWithoutNoise);
    }
    if policy.personal && policy.legal_basis.is_none() {
        return Err(Violation::MissingLegalBasis);
    }
    if reveals == Reveals::ExactInput && !noise {
        return Err(Violation::ExactInputWithoutNoise);
    }
    Ok(())
}

/// Whether a result computed over `group_size` of the owner's records may be
/// released under a minimum group size `k`.
pub fn may_release(group_size: u64, k: u64) -> bool {
    group_size >= k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grade: Grade) -> DataPolicy {
        DataPolicy {
            grade,
            personal: false,
            legal_basis: None,
            min_group_size: DEFAULT_MIN_GROUP_SIZE,
        }
    }

    const ALL: [Reveals; 4] = [
        Reveals::SetSizeOnly,
        Reveals::Aggregate,
        Reveals::Membership,
        Reveals::ExactInput,
    ];

    #[test]
    fn core_data_is_never_used() {
        for reveals in ALL {
            for noise in [false, true] {
                assert_eq!(
                    check_use(&policy(Grade::Core), reveals, noise),
                    Err(Violation::CoreData)
                );
            }
        }
    }

    #[test]
    fn important_data_only_in_aggregates() {
        let important = policy(Grade::Important);
        assert_eq!(check_use(&important, Reveals::SetSizeOnly, false), Ok(()));
        assert_eq!(
            check_use(&important, Reveals::Aggregate, false),
            Err(Violation::ImportantWithoutNoise)
        );
        assert_eq!(check_use(&important, Reveals::Aggregate, true), Ok(()));
        assert_eq!(
            check_use(&important, Reveals::Membership, false),
            Err(Violation::ImportantNotAggregate)
        );
        assert_eq!(
            check_use(&important, Reveals::ExactInput, true),
            Err(Violation::ImportantNotAggregate)
        );
    }

    #[test]
    fn general_data_in_any_protocol_but_exact_inputs_need_noise() {
        let general = policy(Grade::General);
        assert_eq!(check_use(&general, Reveals::Membership, false), Ok(()));
        assert_eq!(
            check_use(&general, Reveals::ExactInput, false),
            Err(Violation::ExactInputWithoutNoise)
        );
        assert_eq!(check_use(&general, Reveals::ExactInput, true), Ok(()));
    }

    #[test]
    fn personal_data_needs_a_legal_basis() {
        let mut personal = policy(Grade::General);
        personal.personal = true;
        assert_eq!(
            check_use(&personal, Reveals::Aggregate, false),
            Err(Violation::MissingLegalBasis)
        );
        personal.legal_basis = Some(LegalBasis::Consent("CRM-2026-07".into()));
        assert_eq!(check_use(&personal, Reveals::Aggregate, false), Ok(()));
        personal.legal_basis = Some(LegalBasis::Anonymised("k-anonymised, k=50".into()));
        assert_eq!(check_use(&personal, Reveals::Aggregate, false), Ok(()));
    }

    #[test]
    fn protocols_declare_what_they_reveal() {
        let psi = disclosure(&ProtocolRequest::EcdhPsi(Mode::Membership));
        assert_eq!(psi.of(Role::Responder), Reveals::Membership);
        assert_eq!(psi.of(Role::Requester), Reveals::SetSizeOnly);
        let ca = disclosure(&ProtocolRequest::EcdhPsi(Mode::Cardinality));
        assert_eq!(ca.of(Role::Responder), Reveals::Aggregate);
        // Important data may answer PSI-CA, with noise, but not PSI.
        let important = policy(Grade::Important);
        assert!(check_use(&important, ca.of(Role::Responder), true).is_ok());
        assert!(check_use(&important, ca.of(Role::Responder), false).is_err());
        assert!(check_use(&important, psi.of(Role::Responder), false).is_err());
        // ... and may ask either, since asking reveals only its set size.
        assert!(check_use(&important, psi.of(Role::Requester), false).is_ok());
    }

    #[test]
    fn planned_protocols_follow_the_same_rules() {
        let general = policy(Grade::General);
        let important = policy(Grade::Important);
        let sum = planned::INTERSECTION_SUM;
        assert!(check_use(&important, sum.of(Role::Responder), true).is_ok());
        let two = planned::TWO_PARTY_SUM;
        assert_eq!(
            check_use(&general, two.of(Role::Requester), false),
            Err(Violation::ExactInputWithoutNoise)
        );
        assert!(check_use(&general, two.of(Role::Responder), true).is_ok());
        let agg = planned::SECURE_AGGREGATION;
        assert!(check_use(&important, agg.of(Role::Requester), true).is_ok());
    }

    #[test]
    fn a_protocol_without_noise_runs_only_exact_on_general_data() {
        let isum = ProtocolRequest::IntersectionSum(crate::manifest::IsumRequest {
            value_column: "v".into(),
            category_column: None,
            categories: Vec::new(),
            value_limbs: 2,
        });
        let ca = ProtocolRequest::EcdhPsi(Mode::Cardinality);
        let (general, important) = (policy(Grade::General), policy(Grade::Important));
        let answer = disclosure(&isum).of(Role::Responder);
        assert_eq!(answer, Reveals::Aggregate);
        assert_eq!(check_noise_built(&isum, &general, answer, false), Ok(()));
        assert_eq!(
            check_noise_built(&isum, &general, answer, true),
            Err(Violation::NoiseNotBuilt)
        );
        for noisy in [false, true] {
            assert_eq!(
                check_noise_built(&isum, &important, answer, noisy),
                Err(Violation::ImportantNoiseNotBuilt)
            );
        }
        // Asking reveals only the requester's set size, whatever its grade.
        let ask = disclosure(&isum).of(Role::Requester);
        assert_eq!(check_noise_built(&isum, &important, ask, false), Ok(()));
        // Protocols with noise are left to check_use.
        assert_eq!(check_noise_built(&ca, &important, answer, true), Ok(()));
        assert!(
            Violation::NoiseNotBuilt
                .to_string()
                .contains("without --epsilon")
        );
    }

    #[test]
    fn release_needs_k_records() {
        assert!(!may_release(9, 10));
        assert!(may_release(10, 10));
        assert!(may_release(0, 0));
    }

    #[test]
    fn grades_parse_and_print() {
        for grade in [Grade::General, Grade::Important, Grade::Core] {
            assert_eq!(grade.to_string().parse::<Grade>(), Ok(grade));
        }
        assert!(
            "secret"
                .parse::<Grade>()
                .expect_err("unknown grade")
                .contains("general, important or core")
        );
    }
}
