//! A job that uses this node's data for this node alone: the requester's
//! side of a stats job whose result goes only to the requester. No other
//! node learns anything of the data, so no grant is needed and nothing is
//! charged; the grade rules still hold (core data is never used), and the
//! job is recorded and audited like any other.

use super::{
    Admission, DataCheck, Decision, NOT_GRANTED, Records, Refusal, Snapshot, admission_records,
    check_retry, refusal_records,
};
use crate::grant::{Charge, Grant, Quota};
use crate::policy::{self, Reveals};

/// The grant id recorded for a job that needs none.
pub const OWN_USE: &str = "own-use";

/// Decides an own-use job from one snapshot.
pub fn decide_own_use(s: &Snapshot) -> (Decision, Records) {
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

fn check(s: &Snapshot) -> Result<Option<Admission>, Refusal> {
    check_retry(s)?;
    let name = s.local_dataset();
    let dataset = s.dataset.as_ref().ok_or_else(|| {
        Refusal::new(
            NOT_GRANTED,
            format!(
                "no dataset named {name:?}; register it with `unseen dataset add NAME FILE --id-column COL --grade GRADE`"
            ),
        )
    })?;
    let policy = dataset.policy.clone().ok_or_else(|| {
        Refusal::new(
            NOT_GRANTED,
            format!("dataset {name:?} has no grade; register it again with `--grade GRADE`"),
        )
    })?;
    policy::check_use(&policy, Reveals::SetSizeOnly, false)?;
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
    Ok(Some(Admission {
        grant: Grant {
            id: OWN_USE.into(),
            peer: String::new(),
            dataset: name.clone(),
            protocols: Vec::new(),
            purpose: s.manifest.purpose.clone(),
            created_at: String::new(),
            expires_at: String::new(),
            revoked_at: None,
            quota: Quota::default(),
        },
        policy,
        charge: Charge {
            rows: 0,
            epsilon_micros: 0,
            delta_nanos: 0,
        },
        newly_charged: false,
        noise: false,
        max_peer_set_size: 0,
        min_peer_set_size: 0,
    }))
}
