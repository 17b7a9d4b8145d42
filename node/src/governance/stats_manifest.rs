//! A stats job's manifest: the spec every party runs, with each party named
//! by its certificate fingerprint, signed by every party.
//!
//! Each party signs the manifest together with the grant it admitted the job
//! under and the release terms its data owner sets (its minimum group size
//! and its noise). The requester's signature is its request; the others'
//! are their acceptances. Before any share leaves a node, the node holds all
//! `n` signatures, each checked against a certificate whose fingerprint the
//! manifest names, so every party can later prove who agreed to what with
//! the certificates alone.

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{Fingerprint, Identity, verify_signature};
use crate::jobs::stats::StatsSpec;

const ACCEPT_CONTEXT: &[u8] = b"unseen/stats/accept/v1";

/// What a stats job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsManifest {
    /// The job id (32 hex digits).
    pub job_id: String,
    /// The spec, in canonical form: each party's `node` and each recipient
    /// is a certificate fingerprint (hex). Party 0 is the requester.
    pub spec: StatsSpec,
    /// Each party's name for itself, in party order, for reports.
    pub names: Vec<String>,
}

impl StatsManifest {
    /// SHA-256 of the manifest's canonical (postcard) encoding.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(postcard::to_allocvec(self).unwrap_or_default()).into()
    }

    /// The parties' fingerprints, in party order.
    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        self.spec.parties.iter().map(|p| p.node.as_str())
    }

    /// The index of the party with this fingerprint.
    pub fn index_of(&self, fingerprint: &Fingerprint) -> Option<usize> {
        let hex = fingerprint.to_string();
        self.fingerprints().position(|f| f == hex)
    }

    fn signed(&self, index: usize, grant: &str, terms: &StatsTerms) -> Vec<u8> {
        let mut message = self.digest().to_vec();
        message.extend_from_slice(&(index as u64).to_be_bytes());
        message.extend_from_slice(&Sha256::digest(grant.as_bytes()));
        message.extend_from_slice(&Sha256::digest(
            postcard::to_allocvec(terms).unwrap_or_default(),
        ));
        message
    }

    /// Party `index`'s agreement: its grant and terms, signed.
    pub fn agree(
        &self,
        identity: &Identity,
        index: usize,
        grant: String,
        terms: StatsTerms,
    ) -> StatsAcceptance {
        StatsAcceptance {
            signature: identity.sign(ACCEPT_CONTEXT, &self.signed(index, &grant, &terms)),
            certificate: identity.cert().to_vec(),
            grant,
            terms,
        }
    }

    /// Checks party `index`'s agreement: its certificate is the one the
    /// manifest names, and its signature verifies.
    pub fn verify(&self, index: usize, acceptance: &StatsAcceptance) -> Result<(), String> {
        let cert = CertificateDer::from(acceptance.certificate.as_slice());
        let expected = self
            .spec
            .parties
            .get(index)
            .map(|p| p.node.as_str())
            .ok_or_else(|| format!("party {index} is not in the manifest"))?;
        let presented = Fingerprint::of(&cert).to_string();
        if presented != expected {
            return Err(format!(
                "party {index}'s certificate has fingerprint {presented}, the manifest names {expected}"
            ));
        }
        verify_signature(
            &cert,
            ACCEPT_CONTEXT,
            &self.signed(index, &acceptance.grant, &acceptance.terms),
            &acceptance.signature,
        )
        .map_err(|e| format!("party {index}'s signature: {e}"))
    }

    /// Checks every party's agreement, in party order.
    pub fn verify_all(&self, acceptances: &[StatsAcceptance]) -> Result<(), String> {
        if acceptances.len() != self.spec.parties.len() {
            return Err(format!(
                "{} agreements for {} parties",
                acceptances.len(),
                self.spec.parties.len()
            ));
        }
        acceptances
            .iter()
            .enumerate()
            .try_for_each(|(i, a)| self.verify(i, a))
    }
}

/// The release rules one party's data owner sets for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsTerms {
    /// Groups with fewer records than this (over all parties) are suppressed.
    pub min_group_size: u64,
    /// The epsilon of the noise this party adds, in millionths, if any.
    pub epsilon_micros: Option<u64>,
}

/// One party's signed agreement to a stats job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsAcceptance {
    /// The grant it admitted the job under ("" where no other party learns
    /// anything of its data).
    pub grant: String,
    /// Its data owner's release terms.
    pub terms: StatsTerms,
    /// Its certificate, DER, so every party can check the signature.
    pub certificate: Vec<u8>,
    /// Its signature over the manifest, grant and terms.
    pub signature: Vec<u8>,
}
