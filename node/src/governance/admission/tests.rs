//! One test per admission rule, on snapshots built by hand.

use time::macros::datetime;
use unseen_protocol::ecdh_psi::Mode;

use super::*;
use crate::dataset::DatasetSummary;
use crate::grant::Quota;
use crate::manifest::Party;
use crate::manifest::ProtocolRequest;
use crate::policy::Grade;

const PEER_FP: &str = "aa";

fn grant(protocols: Vec<GrantedProtocol>, quota: Quota) -> Grant {
    Grant {
        id: "g-1".into(),
        peer: "bob".into(),
        dataset: "customers".into(),
        protocols,
        purpose: "stats".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        expires_at: "2027-01-01T00:00:00Z".into(),
        revoked_at: None,
        quota,
    }
}

fn dataset(grade: Grade, distinct_ids: u64) -> DatasetRecord {
    DatasetRecord {
        name: "customers".into(),
        summary: DatasetSummary {
            path: "/data/customers.csv".into(),
            id_column: "id".into(),
            columns: vec!["id".into()],
            row_count: distinct_ids,
            empty_id_rows: 0,
            distinct_ids,
            sha256: "00".repeat(32),
        },
        policy: Some(DataPolicy {
            grade,
            personal: false,
            legal_basis: None,
            min_group_size: 10,
        }),
        registered_at: "2026-01-01T00:00:00Z".into(),
    }
}

/// A responder's snapshot for a PSI-CA job from "bob" bringing 100 ids,
/// against a general dataset of 40 ids and an unlimited psi-ca grant.
fn snapshot() -> Snapshot {
    Snapshot {
        role: Role::Responder,
        peer: Peer {
            name: "bob".into(),
            addr: "127.0.0.1:1".into(),
            fingerprint: PEER_FP.into(),
            added_at: "2026-01-01T00:00:00Z".into(),
        },
        manifest: JobManifest {
            job_id: "0".repeat(32),
            requester: Party {
                name: "bob".into(),
                fingerprint: PEER_FP.into(),
            },
            responder: Party {
                name: "alice".into(),
                fingerprint: "bb".into(),
            },
            protocol: ProtocolRequest::EcdhPsi(Mode::Cardinality),
            requester_dataset: "theirs".into(),
            responder_dataset: "customers".into(),
            purpose: "stats".into(),
            result_recipients: vec![PEER_FP.into()],
            requester_grant: String::new(),
        },
        requester_set_size: Some(100),
        dataset: Some(dataset(Grade::General, 40)),
        grants: vec![(
            grant(vec![GrantedProtocol::PsiCa], Quota::default()),
            Usage::default(),
        )],
        previous: None,
        node_max_peer_set_size: 1_000,
        now: datetime!(2026-06-01 0:00 UTC),
        data: DataCheck::Loaded,
    }
}

/// A failed earlier attempt of the snapshot's job.
fn failed_attempt(s: &Snapshot, data_left: bool, charged: bool) -> PreviousAttempt {
    let (_, records) = decide(s);
    let Some(JobWrite::Insert(mut record)) = records.job else {
        panic!("the first attempt is inserted");
    };
    record.outcome = Outcome::Failed;
    record.data_left = data_left;
    PreviousAttempt {
        record,
        charged_to: charged.then(|| "g-1".into()),
    }
}

fn accepted(s: &Snapshot) -> (Admission, Records) {
    match decide(s) {
        (Decision::Accept(admission), records) => (*admission, records),
        (other, _) => panic!("expected acceptance, got {other:?}"),
    }
}

fn refused(s: &Snapshot) -> (Refusal, Records) {
    match decide(s) {
        (Decision::Refuse(refusal), records) => (refusal, records),
        (other, _) => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_new_job_is_charged_and_recorded_once_its_data_is_read() {
    let mut s = snapshot();
    s.data = DataCheck::NotLoaded;
    let (decision, records) = decide(&s);
    assert!(matches!(decision, Decision::LoadData));
    assert!(records.job.is_none() && records.charge.is_none() && records.audit.is_empty());
    s.data = DataCheck::Loaded;
    let (admission, records) = accepted(&s);
    assert!(admission.newly_charged);
    assert_eq!(
        (admission.max_peer_set_size, admission.min_peer_set_size),
        (100, 100)
    );
    let Some(JobWrite::Insert(job)) = &records.job else {
        panic!("inserted");
    };
    assert!(
        job.data_left,
        "assumed sent until the job's end says otherwise"
    );
    assert_eq!(job.peer_fingerprint, PEER_FP);
    assert_eq!(
        records.charge.as_ref().map(|(g, _)| g.as_str()),
        Some("g-1")
    );
    assert_eq!(records.audit.len(), 2);
}

#[test]
fn a_job_charges_the_owner_ids_it_can_reveal() {
    let (admission, _) = accepted(&snapshot());
    assert_eq!(admission.charge.rows, 40, "min(40 own ids, 100 announced)");
    let mut s = snapshot();
    s.requester_set_size = Some(25);
    assert_eq!(accepted(&s).0.charge.rows, 25);
    // The requester's data reveals only its size.
    let mut s = snapshot();
    s.role = Role::Requester;
    s.requester_set_size = None;
    s.manifest.requester_dataset = "customers".into();
    assert_eq!(accepted(&s).0.charge.rows, 0);
}

#[test]
fn a_retry_after_data_left_is_refused_whatever_it_brings() {
    let mut s = snapshot();
    s.previous = Some(failed_attempt(&s, true, true));
    let (refusal, records) = refused(&s);
    assert!(refusal.public_reason.contains("start a new job"));
    assert!(records.job.is_none(), "the original record is kept");
    assert!(records.charge.is_none());
}

#[test]
fn a_retry_before_any_data_left_must_be_the_same_job() {
    let base = snapshot();
    let mut s = base.clone();
    s.previous = Some(failed_attempt(&base, false, true));
    let (admission, records) = accepted(&s);
    assert!(!admission.newly_charged, "its charge still stands");
    assert!(records.charge.is_none());
    assert!(matches!(records.job, Some(JobWrite::Restart(_))));
    // Refunded earlier: charged again, through the quota.
    s.previous = Some(failed_attempt(&base, false, false));
    let (admission, records) = accepted(&s);
    assert!(admission.newly_charged && records.charge.is_some());
    // Another set size, purpose or peer certificate is another job.
    for change in [
        (|s: &mut Snapshot| s.requester_set_size = Some(99)) as fn(&mut Snapshot),
        |s| s.manifest.purpose = "other".into(),
        |s| s.peer.fingerprint = "cc".into(),
    ] {
        let mut s = base.clone();
        s.previous = Some(failed_attempt(&base, false, true));
        change(&mut s);
        s.grants[0].0.purpose = s.manifest.purpose.clone();
        assert!(refused(&s).0.local_reason.contains("same peer"));
    }
}

#[test]
fn a_finished_job_id_is_never_reused() {
    let mut s = snapshot();
    let mut previous = failed_attempt(&s, false, true);
    previous.record.outcome = Outcome::Completed;
    s.previous = Some(previous);
    assert!(refused(&s).0.local_reason.contains("already ran"));
}

#[test]
fn an_announcement_over_the_node_limit_is_refused_first() {
    let mut s = snapshot();
    s.requester_set_size = Some(1_001);
    s.dataset = None;
    assert!(refused(&s).0.public_reason.contains("larger than"));
}

#[test]
fn a_missing_and_an_ungranted_dataset_look_the_same_to_the_peer() {
    let mut missing = snapshot();
    missing.dataset = None;
    let mut ungranted = snapshot();
    ungranted.grants.clear();
    assert_eq!(refused(&missing).0.public_reason, NOT_GRANTED);
    assert_eq!(refused(&ungranted).0.public_reason, NOT_GRANTED);
}

#[test]
fn important_data_needs_noise_and_membership_breaks_a_budget() {
    let mut s = snapshot();
    s.dataset = Some(dataset(Grade::Important, 40));
    assert!(refused(&s).0.local_reason.contains("--epsilon"));
    s.grants[0].0.quota.epsilon_per_job_micros = Some(500_000);
    let (admission, _) = accepted(&s);
    assert!(admission.noise);
    assert_eq!(admission.charge.epsilon_micros, 500_000);
    s.grants[0].0.protocols.push(GrantedProtocol::Psi);
    assert!(refused(&s).0.local_reason.contains("also allows psi"));
}

#[test]
fn the_group_size_rule_counts_what_the_owner_knows() {
    let mut s = snapshot();
    s.dataset = Some(dataset(Grade::General, 9));
    assert!(refused(&s).0.local_reason.contains("at most 9"));
    let mut s = snapshot();
    s.requester_set_size = Some(9);
    assert!(refused(&s).0.local_reason.contains("at most 9"));
}

#[test]
fn quotas_are_checked_before_the_data_is_read() {
    let mut s = snapshot();
    s.grants[0].0.quota.max_jobs = Some(1);
    s.grants[0].1.jobs_in_period = 1;
    s.data = DataCheck::Unavailable("file gone".into());
    assert!(refused(&s).0.local_reason.contains("quota exhausted"));
    s.grants[0].1.jobs_in_period = 0;
    assert_eq!(refused(&s).0.local_reason, "file gone");
}

/// Intersection-sum: exact sums on general data only, a request the
/// protocol can run, and data that fits it.
#[test]
fn intersection_sum_is_exact_on_general_data_and_checked_whole() {
    let ask = crate::manifest::IsumRequest {
        value_column: "amount".into(),
        category_column: None,
        categories: Vec::new(),
        value_limbs: 2,
    };
    let isum = |s: &mut Snapshot, ask: &crate::manifest::IsumRequest| {
        s.manifest.protocol = ProtocolRequest::IntersectionSum(ask.clone());
        s.grants[0].0.protocols = vec![GrantedProtocol::IntersectionSum];
    };
    let mut s = snapshot();
    isum(&mut s, &ask);
    let (admission, _) = accepted(&s);
    assert!(!admission.noise);
    assert_eq!(admission.charge.rows, 40);

    let mut noisy = s.clone();
    noisy.grants[0].0.quota.epsilon_per_job_micros = Some(500_000);
    let (refusal, records) = refused(&noisy);
    assert!(
        refusal.local_reason.contains("without --epsilon"),
        "{refusal}"
    );
    assert!(records.charge.is_none());

    let mut important = s.clone();
    important.dataset = Some(dataset(Grade::Important, 40));
    let (refusal, _) = refused(&important);
    assert!(
        refusal
            .local_reason
            .contains("intersection-sum does not have yet")
    );

    let mut hostile = s.clone();
    let too_many = crate::manifest::IsumRequest {
        category_column: Some("region".into()),
        categories: (0..17).map(|i| i.to_string()).collect(),
        ..ask.clone()
    };
    isum(&mut hostile, &too_many);
    let (refusal, _) = refused(&hostile);
    assert_eq!(
        refusal.public_reason,
        "the intersection-sum request is malformed"
    );

    let mut unfit = s;
    unfit.data = DataCheck::Unfit(Refusal::new("the data does not fit", "line 7".into()));
    let (refusal, records) = refused(&unfit);
    assert_eq!(refusal.local_reason, "line 7");
    assert!(records.charge.is_none());
}
