//! The boundary for stats jobs: each party admits its own part.
//!
//! A party other than the requester admits the job under the `stats` grant
//! it gave the requester, who receives the result: the same rules, quotas
//! and records as any job it answers ([`admission::decide`]). The requester,
//! whose result goes to itself alone, lets no other node learn anything of
//! its data; it admits its own part without a grant, under the grade rules
//! ([`admission::decide_own_use`]). Each party's signed agreement carries
//! its release terms: its minimum group size, and the epsilon of the noise
//! it adds, if its grant asks for noise.

use unseen_protocol::JobId;

use super::{Accepted, Boundary, refuse};
use crate::admission::{self, Refusal};
use crate::audit::AuditEvent;
use crate::error::NodeError;
use crate::manifest::{JobManifest, Party};
use crate::stats_manifest::{StatsAcceptance, StatsManifest, StatsTerms};
use crate::store::{Peer, Role};
use crate::wire::ProtocolRequest;

impl Boundary {
    /// Decides this node's part in a stats job, as party `me` of `manifest`.
    /// `peer` is the requester as registered here, or (for the requester
    /// itself) the first other party, named in the job's record. Blocks on
    /// SQLite and on reading the dataset: call it off the async runtime.
    pub fn admit_stats(
        &self,
        manifest: &StatsManifest,
        me: usize,
        peer: &Peer,
    ) -> Result<(Accepted, StatsAcceptance), Refusal> {
        let job_id = JobId::parse(&manifest.job_id)
            .ok_or_else(|| refuse("malformed job id", "malformed job id".into()))?;
        let view = view(manifest, me)?;
        self.check_other_recipients(manifest, me)?;
        let role = if me == 0 {
            Role::Requester
        } else {
            Role::Responder
        };
        // The requester's rows reach other nodes only through recipients
        // other than itself, whose grants were just checked.
        let decide = if me == 0 {
            admission::decide_own_use
        } else {
            admission::decide
        };
        let needs_clamp = manifest
            .spec
            .statistics
            .iter()
            .any(|s| !matches!(s, crate::stats::Statistic::Count));
        let clamp_given = manifest
            .spec
            .value
            .as_ref()
            .is_some_and(|v| v.clamp.is_some());
        let request = self.request(role, peer, &view, None);
        let (admission, data, acceptance) = self.admit_by(request, decide, |admission, _| {
            let epsilon_micros = admission
                .noise
                .then_some(admission.grant.quota.epsilon_per_job_micros)
                .flatten();
            if epsilon_micros.is_some() && needs_clamp && !clamp_given {
                return Err(NodeError::Config {
                    path: format!("grant {}", admission.grant.id).into(),
                    message: "the data owner adds noise to every release, and noise on a sum needs a public bound on each value: the spec must set value.clamp".into(),
                });
            }
            let terms = StatsTerms {
                min_group_size: admission.policy.min_group_size,
                epsilon_micros,
            };
            let acceptance = manifest.agree(&self.identity, me, admission.grant.id.clone(), terms);
            Ok((acceptance, Vec::new()))
        })?;
        let accepted = self.accepted(job_id, role, peer, &view, admission, data);
        Ok((accepted, acceptance))
    }

    /// Every recipient other than the requester and this node learns the
    /// totals over this node's rows too: each must hold a live `stats` grant
    /// on the dataset for the job's purpose, as the requester must. (The
    /// charge is the requester's grant's; these are the owner's consent.)
    fn check_other_recipients(&self, manifest: &StatsManifest, me: usize) -> Result<(), Refusal> {
        let spec = &manifest.spec;
        let own = &spec.parties[me];
        let requester = &spec.parties[0].node;
        for recipient in &spec.recipients {
            if recipient == requester || *recipient == own.node {
                continue;
            }
            let grant = self.store.live_grant(
                recipient,
                &own.dataset,
                crate::grant::GrantedProtocol::Stats,
                &spec.purpose,
            )?;
            if grant.is_none() {
                let name = spec
                    .parties
                    .iter()
                    .position(|p| &p.node == recipient)
                    .and_then(|i| manifest.names.get(i).cloned())
                    .unwrap_or_else(|| recipient.clone());
                return Err(refuse(
                    admission::NOT_GRANTED,
                    format!(
                        "the job sends its result to {name} ({recipient}) too, which holds no live stats grant on {:?} for {:?}; grant it `stats` or leave it out of the recipients",
                        own.dataset, spec.purpose
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Records every party's agreement, checked, before any share leaves.
    pub fn record_stats_agreement(
        &self,
        manifest: &StatsManifest,
        agreements: &[StatsAcceptance],
    ) -> Result<(), Refusal> {
        manifest
            .verify_all(agreements)
            .map_err(|e| refuse("a party's agreement does not verify", e))?;
        self.store
            .audit(AuditEvent::StatsJobAgreed {
                job_id: manifest.job_id.clone(),
                manifest: manifest.clone(),
                agreements: agreements.to_vec(),
            })
            .map_err(Refusal::from)
    }
}

/// The job as one pair sees it (the requester and party `me`): what this
/// node's records, grants and quotas are keyed by. The whole manifest, with
/// every party's signature, is recorded by [`Boundary::record_stats_agreement`].
fn view(manifest: &StatsManifest, me: usize) -> Result<JobManifest, Refusal> {
    let spec = &manifest.spec;
    let party = |i: usize| -> Result<Party, Refusal> {
        let p = spec.parties.get(i).ok_or_else(|| {
            refuse(
                "the manifest has too few parties",
                format!("party {i} is missing"),
            )
        })?;
        Ok(Party {
            name: manifest.names.get(i).cloned().unwrap_or_default(),
            fingerprint: p.node.clone(),
        })
    };
    let parties = u8::try_from(spec.parties.len())
        .map_err(|_| refuse("too many parties", "too many parties".into()))?;
    // Party 0's view of its own part names party 1 as the other node.
    let other = if me == 0 { 1 } else { me };
    Ok(JobManifest {
        job_id: manifest.job_id.clone(),
        requester: party(0)?,
        responder: party(other)?,
        protocol: ProtocolRequest::SecureStats { parties },
        requester_dataset: spec.parties[0].dataset.clone(),
        responder_dataset: spec.parties[other].dataset.clone(),
        purpose: spec.purpose.clone(),
        result_recipients: spec.recipients.clone(),
        requester_grant: String::new(),
    })
}
