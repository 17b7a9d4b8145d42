//! The admission decision: a pure function of one snapshot of the node's
//! records, returning the decision and the records to write.
//!
//! Every rule that decides whether a job runs and what it costs lives here:
//! job-id reuse and retries, the node's size limit, grants, grades, the
//! minimum group size, and quotas. The store reads a [`Snapshot`] and writes
//! the [`Records`] in one transaction; nothing here touches SQLite, files or
//! the clock, so each rule has a plain unit test.

use time::OffsetDateTime;

use crate::audit::AuditEvent;
use crate::clock::rfc3339;
use crate::grant::{Charge, Grant, GrantRefusal, GrantedProtocol, Usage};
use crate::manifest::JobManifest;
use crate::policy::{self, DataPolicy, Reveals, Violation};
use crate::store::{DatasetRecord, JobRecord, Outcome, Peer, Role};

mod own_use;

pub use own_use::{OWN_USE, decide_own_use};

/// Delta per noisy release when a grant names none: one in a billion.
pub const DEFAULT_DELTA_NANOS: u64 = 1;

/// What the peer is told when the dataset is missing, has no grade, or no
/// live grant covers the job: the same words, so a refusal does not say
/// which datasets exist.
pub const NOT_GRANTED: &str = "no live grant covers this job";

/// A refused job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the peer is told: nothing about our data.
    pub public_reason: String,
    /// What our own operator is told, with the fix.
    pub local_reason: String,
}

impl Refusal {
    /// A refusal with a public and a local reason.
    pub fn new(public: &str, local: String) -> Self {
        Self {
            public_reason: public.into(),
            local_reason: local,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.local_reason)
    }
}

impl From<Violation> for Refusal {
    fn from(v: Violation) -> Self {
        Self::new(v.public_reason(), v.to_string())
    }
}

impl From<GrantRefusal> for Refusal {
    fn from(g: GrantRefusal) -> Self {
        Self::new(g.public_reason(), g.to_string())
    }
}

/// Whether the data the job needs has been read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataCheck {
    /// Not yet: the rules are checked first, so a refused job reads nothing.
    NotLoaded,
    /// Read, and it matches its registration.
    Loaded,
    /// It could not be read or changed since registration.
    Unavailable(String),
    /// It was read, but does not fit the job (a column the job names is
    /// missing, a value out of the protocol's range): refused with the
    /// reason for each side.
    Unfit(Refusal),
}

/// An earlier attempt under the same job id, in the same role.
#[derive(Debug, Clone)]
pub struct PreviousAttempt {
    /// Its record.
    pub record: JobRecord,
    /// The grant its charge stands against, if it was not refunded.
    pub charged_to: Option<String>,
}

/// Everything the decision depends on, read in one transaction.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Our side of the job.
    pub role: Role,
    /// The other node, as registered (by certificate).
    pub peer: Peer,
    /// The job.
    pub manifest: JobManifest,
    /// The requester's signed set size (known to the responder).
    pub requester_set_size: Option<u64>,
    /// Our dataset, if registered.
    pub dataset: Option<DatasetRecord>,
    /// Grants naming the peer's certificate and the dataset, newest first,
    /// each with what it has used.
    pub grants: Vec<(Grant, Usage)>,
    /// An earlier attempt under this job id.
    pub previous: Option<PreviousAttempt>,
    /// The node's limit on a peer's set (`limits.max_peer_set_size`).
    pub node_max_peer_set_size: u64,
    /// When the decision is made.
    pub now: OffsetDateTime,
    /// Whether the data was read.
    pub data: DataCheck,
}

/// What admission decided.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Refused; the records say so.
    Refuse(Refusal),
    /// Every rule passed: read the data, then decide again with it read.
    LoadData,
    /// Admitted and charged.
    Accept(Box<Admission>),
}

/// An admitted job's terms.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The grant it runs under.
    pub grant: Grant,
    /// The dataset's policy.
    pub policy: DataPolicy,
    /// What the job costs the grant.
    pub charge: Charge,
    /// False for a retry whose earlier charge still stands.
    pub newly_charged: bool,
    /// Whether the release carries differential-privacy noise.
    pub noise: bool,
    /// The largest set the peer may bring.
    pub max_peer_set_size: u64,
    /// The smallest set the peer may bring.
    pub min_peer_set_size: u64,
}

/// A write to the job table.
#[derive(Debug, Clone)]
pub enum JobWrite {
    /// The job's first record.
    Insert(JobRecord),
    /// Another attempt of a job that failed before any data left.
    Restart(JobRecord),
}

/// What to write, all in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// The job they are about.
    pub job_id: String,
    /// The job's record.
    pub job: Option<JobWrite>,
    /// A charge to a grant.
    pub charge: Option<(String, Charge)>,
    /// Audit entries, in order.
    pub audit: Vec<AuditEvent>,
}

/// Decides a job from one snapshot.
pub fn decide(s: &Snapshot) -> (Decision, Records) {
    match check(s) {
        Err(refusal) => {
            let records = refusal_records(s, &refusal);
            (Decision::Refuse(refusal), records)
        }
        Ok(None) => (
            Decision::LoadData,
            Records {
                job_id: s.manifest.job_id.clone(),
                ..Records::default()
            },
        ),
        Ok(Some(admission)) => {
            let records = admission_records(s, &admission);
            (Decision::Accept(Box::new(admission)), records)
        }
    }
}

/// The rules, in order; `Ok(None)` means the data must be read first.
fn check(s: &Snapshot) -> Result<Option<Admission>, Refusal> {
    check_retry(s)?;
    check_announced_size(s)?;
    let dataset = s.dataset.as_ref().ok_or_else(|| {
        Refusal::new(
            NOT_GRANTED,
            format!(
                "no dataset named {:?}; {}",
                s.local_dataset(),
                match s.role {
                    Role::Requester =>
                        "register it with `unseen dataset add NAME FILE --id-column COL --grade GRADE`",
                    Role::Responder => "the peer asked for a dataset this node has not registered",
                }
            ),
        )
    })?;
    let policy = dataset.policy.clone().ok_or_else(|| {
        Refusal::new(
            NOT_GRANTED,
            format!(
                "dataset {:?} has no grade; register it again with `unseen dataset add ... --grade GRADE`",
                dataset.name
            ),
        )
    })?;
    check_request(s)?;
    let (grant, usage) = find_grant(s)?;
    check_grant_terms(&grant)?;
    let reveals = policy::disclosure(&s.manifest.protocol).of(s.role);
    let noisy_grant = grant.quota.epsilon_per_job_micros.is_some();
    policy::check_noise_built(&s.manifest.protocol, &policy, reveals, noisy_grant)?;
    // A noisy release protects an aggregate, or a two-party sum's exact
    // input; the rules below say which need it.
    let noise = matches!(reveals, Reveals::Aggregate | Reveals::ExactInput)
        && grant.quota.epsilon_per_job_micros.is_some();
    policy::check_use(&policy, reveals, noise)?;
    let own_ids = dataset.summary.distinct_ids;
    if let Some(size) = s.requester_set_size {
        // Any result is over at most min(|X|, |Y|) of our records: both
        // numbers this node knows, unlike the requester's later count.
        let group = size.min(own_ids);
        if !policy::may_release(group, policy.min_group_size) {
            return Err(Refusal::new(
                "the job is below the data owner's minimum group size",
                format!(
                    "the job would cover at most {group} of this dataset's records (peer brings {size}, the dataset has {own_ids}), below its minimum group size {}; no result could be released",
                    policy.min_group_size
                ),
            ));
        }
    }
    let charge = charge(s, &grant, reveals, noise, own_ids);
    let standing = s
        .previous
        .as_ref()
        .and_then(|p| p.charged_to.as_deref())
        .is_some_and(|id| id == grant.id);
    if !standing {
        grant.check_quota(&usage, &charge, s.requester_set_size)?;
    }
    match &s.data {
        DataCheck::NotLoaded => return Ok(None),
        DataCheck::Unavailable(reason) => {
            return Err(Refusal::new(
                "the dataset is not available for this job right now",
                reason.clone(),
            ));
        }
        DataCheck::Unfit(refusal) => return Err(refusal.clone()),
        DataCheck::Loaded => {}
    }
    let max_grant = grant.quota.max_set_size.unwrap_or(u64::MAX);
    let (max_peer_set_size, min_peer_set_size) = match s.requester_set_size {
        // The requester must bring exactly the set it announced and signed.
        Some(size) => (size, size),
        None => (s.node_max_peer_set_size.min(max_grant), 0),
    };
    Ok(Some(Admission {
        grant,
        policy,
        charge,
        newly_charged: !standing,
        noise,
        max_peer_set_size,
        min_peer_set_size,
    }))
}

/// A job id runs once. Another attempt under it is allowed only if this
/// node's own records show that no data-bearing message left it under that
/// id, and it is the same job: same peer certificate, protocol, datasets,
/// purpose and requester set size. Anything else is a new, charged job.
fn check_retry(s: &Snapshot) -> Result<(), Refusal> {
    let Some(previous) = &s.previous else {
        return Ok(());
    };
    let p = &previous.record;
    let job = &s.manifest.job_id;
    let refuse = |why: String| {
        Err(Refusal::new(
            "this job id cannot be used again; start a new job",
            format!("job {job}: {why}; the requester must start a new job, which is charged"),
        ))
    };
    if !matches!(p.outcome, Outcome::Failed | Outcome::Interrupted) {
        return refuse(format!("it already ran ({})", p.outcome.as_str()));
    }
    if p.data_left {
        return refuse("data-bearing messages already left this node under this id".into());
    }
    let previous_requester_size = match s.role {
        Role::Requester => p.local_set_size,
        Role::Responder => p.peer_set_size,
    };
    let requester_size = match s.role {
        Role::Requester => s.dataset.as_ref().map(|d| d.summary.distinct_ids),
        Role::Responder => s.requester_set_size,
    };
    let same = p.peer_fingerprint == s.peer.fingerprint
        && p.protocol == s.manifest.protocol.name()
        && p.local_dataset == *s.local_dataset()
        && p.peer_dataset == *s.peer_dataset()
        && p.purpose.as_deref() == Some(s.manifest.purpose.as_str())
        && previous_requester_size == requester_size;
    if !same {
        return refuse(
            "a retry must bring the same peer, protocol, datasets, purpose and set size".into(),
        );
    }
    Ok(())
}

/// What the job asks must be something the protocol can run; a peer's
/// request is checked here like our own operator's.
fn check_request(s: &Snapshot) -> Result<(), Refusal> {
    let crate::manifest::ProtocolRequest::IntersectionSum(ask) = &s.manifest.protocol else {
        return Ok(());
    };
    ask.check().map_err(|problem| {
        Refusal::new(
            "the intersection-sum request is malformed",
            format!("the intersection-sum request is refused: {problem}"),
        )
    })
}

/// The node-wide limit on a peer's set, before anything else is looked at.
fn check_announced_size(s: &Snapshot) -> Result<(), Refusal> {
    match s.requester_set_size {
        Some(size) if size > s.node_max_peer_set_size => Err(Refusal::new(
            "the requester's set is larger than this node accepts",
            format!(
                "the peer announced {size} ids, larger than this node's limits.max_peer_set_size = {}",
                s.node_max_peer_set_size
            ),
        )),
        _ => Ok(()),
    }
}

/// The newest live grant covering the job, or the reason none does.
fn find_grant(s: &Snapshot) -> Result<(Grant, Usage), Refusal> {
    let protocol = GrantedProtocol::of(&s.manifest.protocol);
    let mut first_refusal = None;
    for (grant, usage) in &s.grants {
        match grant
            .check_live(s.now)
            .and_then(|()| grant.check_scope(protocol, &s.manifest.purpose))
        {
            Ok(()) => return Ok((grant.clone(), *usage)),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    Err(first_refusal
        .unwrap_or(GrantRefusal::NoGrant {
            peer: s.peer.name.clone(),
            dataset: s.local_dataset().clone(),
        })
        .into())
}

/// A privacy budget that a membership protocol in the same grant bypasses
/// is meaningless, so such a grant admits nothing (`grant add` refuses to
/// make one; this catches one made before that rule).
fn check_grant_terms(grant: &Grant) -> Result<(), Refusal> {
    if grant.budget_bypassed_by_membership() {
        return Err(Refusal::new(
            "the data owner's grant is invalid for this job",
            format!(
                "grant {} sets a privacy budget and also allows psi, whose membership answers the budget cannot bound; revoke it and grant psi and psi-ca separately",
                grant.id
            ),
        ));
    }
    Ok(())
}

/// What the job costs: the owner's ids it can reveal, and its noise.
fn charge(s: &Snapshot, grant: &Grant, reveals: Reveals, noise: bool, own_ids: u64) -> Charge {
    let rows = match reveals {
        Reveals::SetSizeOnly => 0,
        _ => own_ids.min(s.requester_set_size.unwrap_or(own_ids)),
    };
    Charge {
        rows,
        epsilon_micros: if noise {
            grant.quota.epsilon_per_job_micros.unwrap_or(0)
        } else {
            0
        },
        delta_nanos: if noise {
            grant
                .quota
                .delta_per_job_nanos
                .unwrap_or(DEFAULT_DELTA_NANOS)
                .max(1)
        } else {
            0
        },
    }
}

impl Snapshot {
    fn local_dataset(&self) -> &String {
        match self.role {
            Role::Requester => &self.manifest.requester_dataset,
            Role::Responder => &self.manifest.responder_dataset,
        }
    }

    fn peer_dataset(&self) -> &String {
        match self.role {
            Role::Requester => &self.manifest.responder_dataset,
            Role::Responder => &self.manifest.requester_dataset,
        }
    }

    fn record(&self, outcome: Outcome) -> JobRecord {
        JobRecord {
            id: self.manifest.job_id.clone(),
            role: self.role,
            peer: self.peer.name.clone(),
            peer_fingerprint: self.peer.fingerprint.clone(),
            protocol: self.manifest.protocol.name().into(),
            local_dataset: self.local_dataset().clone(),
            peer_dataset: self.peer_dataset().clone(),
            local_set_size: None,
            peer_set_size: self.requester_set_size,
            bytes_sent: 0,
            bytes_received: 0,
            started_at: rfc3339(self.now),
            duration_ms: None,
            outcome,
            detail: None,
            result: None,
            purpose: Some(self.manifest.purpose.clone()),
            grant_id: None,
            attempts: 1,
            data_messages_sent: 0,
            data_messages_received: 0,
            data_left: false,
        }
    }

    fn requested(&self) -> AuditEvent {
        AuditEvent::JobRequested {
            job_id: self.manifest.job_id.clone(),
            role: self.role,
            peer: self.peer.name.clone(),
            manifest: self.manifest.clone(),
        }
    }
}

/// The records of a refusal: the job (unless an earlier attempt holds the
/// id) and the audit entries.
pub fn refusal_records(s: &Snapshot, refusal: &Refusal) -> Records {
    // A refused replay keeps the original record; the audit log still
    // records the attempt.
    let job = s.previous.is_none().then(|| {
        JobWrite::Insert(JobRecord {
            duration_ms: Some(0),
            detail: Some(refusal.local_reason.clone()),
            ..s.record(Outcome::Refused)
        })
    });
    Records {
        job_id: s.manifest.job_id.clone(),
        job,
        charge: None,
        audit: vec![
            s.requested(),
            AuditEvent::JobRefused {
                job_id: s.manifest.job_id.clone(),
                role: s.role,
                reason: refusal.local_reason.clone(),
                refunded: false,
            },
        ],
    }
}

fn admission_records(s: &Snapshot, a: &Admission) -> Records {
    let own_ids = s.dataset.as_ref().map(|d| d.summary.distinct_ids);
    let record = JobRecord {
        local_set_size: own_ids,
        grant_id: Some(a.grant.id.clone()),
        // Until the job ends and says otherwise, assume data left: a node
        // killed mid-job then allows no free retry.
        data_left: true,
        ..s.record(Outcome::Running)
    };
    let job = match s.previous {
        Some(_) => JobWrite::Restart(record),
        None => JobWrite::Insert(record),
    };
    Records {
        job_id: s.manifest.job_id.clone(),
        job: Some(job),
        charge: a.newly_charged.then(|| (a.grant.id.clone(), a.charge)),
        audit: vec![
            s.requested(),
            AuditEvent::JobAdmitted {
                job_id: s.manifest.job_id.clone(),
                role: s.role,
                grant_id: a.grant.id.clone(),
                charge: a.charge,
                newly_charged: a.newly_charged,
            },
        ],
    }
}

#[cfg(test)]
mod tests;
