//! `unseen grant`: make, list and revoke grants.
//!
//! `grant add` fills conservative caps for every flag left out (see
//! `unseen_node::grant::making`), checks the grant against the dataset's
//! grade and legal basis before storing it, says in one sentence what it
//! allows, and warns where it opens more than a data owner may expect.

use std::path::Path;

use anyhow::{Context, Result, bail};
use unseen_node::clock::rfc3339;
use unseen_node::grant::{self as grants, Grant, Quota};
use unseen_node::policy::Grade;
use unseen_node::store::Store;

use crate::commands::open_store;
use crate::{GrantAdd, GrantCommand};

pub(crate) fn grant(dir: &Path, command: GrantCommand) -> Result<()> {
    let store = open_store(dir)?;
    match command {
        GrantCommand::Add(add) => add_grant(&store, add),
        GrantCommand::List { json } => list(&store, json),
        GrantCommand::Revoke { id } => {
            store.revoke_grant(&id)?;
            println!("revoked {id}");
            Ok(())
        }
    }
}

fn add_grant(store: &Store, add: GrantAdd) -> Result<()> {
    let GrantAdd {
        peer,
        dataset,
        protocols,
        purpose,
        expires,
        max_jobs,
        period,
        max_rows,
        max_set_size,
        epsilon,
        epsilon_budget,
        delta,
        delta_budget,
    } = add;
    if purpose.trim().is_empty() {
        bail!("--purpose must say what the data is used for");
    }
    let now = store.now();
    let expires = grants::parse_expiry(&expires, now).map_err(anyhow::Error::msg)?;
    let period = grants::parse_duration(&period).map_err(anyhow::Error::msg)?;
    let record = store.dataset(&dataset)?.with_context(|| {
        format!("no dataset named {dataset:?}; register it first with `unseen dataset add`")
    })?;
    let policy = record.policy.clone().with_context(|| {
        format!(
            "dataset {dataset:?} has no grade; register it again with `unseen dataset add ... --grade GRADE`"
        )
    })?;
    let count = |t: &str| {
        t.parse::<u64>()
            .map_err(|_| format!("invalid number {t:?}: give a whole number"))
    };
    // An absent flag gets its conservative default; `unlimited` lifts a cap.
    let cap = |flag: &str,
               text: Option<String>,
               parse: &dyn Fn(&str) -> Result<u64, String>,
               default: Option<u64>|
     -> Result<Option<u64>> {
        match text {
            None => Ok(default),
            Some(text) => {
                grants::parse_cap(&text, parse).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
            }
        }
    };
    let epsilon = epsilon
        .map(|t| grants::parse_micros(&t).map_err(|e| anyhow::anyhow!("--epsilon: {e}")))
        .transpose()?;
    if epsilon == Some(0) {
        bail!("--epsilon must be above 0; leave it out for no noise");
    }
    let delta = match epsilon {
        Some(_) => Some(grants::parse_nanos(&delta).map_err(|e| anyhow::anyhow!("--delta: {e}"))?),
        None => None,
    };
    let releases =
        |per: Option<u64>| per.map(|p| p.saturating_mul(grants::DEFAULT_BUDGET_RELEASES));
    let quota = Quota {
        max_jobs: cap("max-jobs", max_jobs, &count, Some(grants::DEFAULT_MAX_JOBS))?,
        period_secs: period.whole_seconds().unsigned_abs(),
        max_rows: cap("max-rows", max_rows, &count, None)?,
        max_set_size: cap(
            "max-set-size",
            max_set_size,
            &count,
            Some(grants::default_max_set_size(record.summary.distinct_ids)),
        )?,
        epsilon_per_job_micros: epsilon,
        epsilon_budget_micros: cap(
            "epsilon-budget",
            epsilon_budget,
            &grants::parse_micros,
            releases(epsilon),
        )?,
        delta_per_job_nanos: delta,
        delta_budget_nanos: cap(
            "delta-budget",
            delta_budget,
            &grants::parse_nanos,
            releases(delta),
        )?,
    };
    let mut id = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    let grant = Grant {
        id: format!("g-{}", hex::encode(id)),
        peer,
        dataset,
        protocols,
        purpose,
        created_at: rfc3339(now),
        expires_at: rfc3339(expires),
        revoked_at: None,
        quota,
    };
    let warnings = grants::check_new_grant(&grant, &policy).context("no grant was made")?;
    store.add_grant(&grant)?;
    println!("{}", grant.id);
    println!("{}", grant.describe(Some(policy.grade)));
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

fn list(store: &Store, json: bool) -> Result<()> {
    for (grant, usage) in store.grants()? {
        if json {
            println!("{}", serde_json::json!({ "grant": grant, "usage": usage }));
            continue;
        }
        let state = if grant.revoked_at.is_some() {
            "revoked"
        } else if grant.check_live(store.now()).is_err() {
            "expired"
        } else {
            "live"
        };
        let grade: Option<Grade> = store
            .dataset(&grant.dataset)?
            .and_then(|d| d.policy)
            .map(|p| p.grade);
        println!("{}  {state:<7}  {}", grant.id, grant.describe(grade));
    }
    Ok(())
}
