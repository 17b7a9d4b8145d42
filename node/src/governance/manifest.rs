//! A job's manifest: who asks whom to compute what, on which data, for what
//! purpose, and who receives the result. The requesting node signs it; the
//! accepting node countersigns it with the grant it accepted under. Both
//! signatures are stored on both sides, so who provided and who used data is
//! provable later with the two certificates alone.

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{BadSignature, Identity, verify_signature};
use unseen_protocol::ecdh_psi::Mode;
use unseen_protocol::intersection_sum::{Layout, MAX_CATEGORIES, MAX_VALUE_LIMBS};

// v2: the request binds the requester's set size, the acceptance the release
// terms, so neither can be changed after signing without breaking it.
const REQUEST_CONTEXT: &[u8] = b"unseen/manifest/request/v2";
const ACCEPT_CONTEXT: &[u8] = b"unseen/manifest/accept/v2";

/// A node taking part in a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The name the node gives itself.
    pub name: String,
    /// Its certificate fingerprint, hex.
    pub fingerprint: String,
}

/// What a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobManifest {
    /// The job id (32 hex digits).
    pub job_id: String,
    /// The node that asks, and uses the result.
    pub requester: Party,
    /// The node that answers, and provides data.
    pub responder: Party,
    /// The protocol and mode.
    pub protocol: ProtocolRequest,
    /// The requester's dataset.
    pub requester_dataset: String,
    /// The responder's dataset.
    pub responder_dataset: String,
    /// The purpose, as the grants must name it.
    pub purpose: String,
    /// Fingerprints of the nodes that receive the result.
    pub result_recipients: Vec<String>,
    /// The requester's grant for its own dataset.
    pub requester_grant: String,
}

impl JobManifest {
    /// SHA-256 of the manifest's canonical (postcard) encoding.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(postcard::to_allocvec(self).unwrap_or_default()).into()
    }

    /// The requester's signature, binding the number of distinct ids it
    /// will bring.
    pub fn sign_request(&self, requester: &Identity, set_size: u64) -> Vec<u8> {
        requester.sign(REQUEST_CONTEXT, &self.request(set_size))
    }

    fn request(&self, set_size: u64) -> Vec<u8> {
        let mut message = self.digest().to_vec();
        message.extend_from_slice(&set_size.to_be_bytes());
        message
    }

    /// The responder's countersignature, binding the grant it accepted under
    /// and the release terms it set (k, noise and padding).
    pub fn sign_acceptance(
        &self,
        responder: &Identity,
        responder_grant: &str,
        terms: &ReleaseTerms,
    ) -> Vec<u8> {
        responder.sign(ACCEPT_CONTEXT, &self.acceptance(responder_grant, terms))
    }

    fn acceptance(&self, responder_grant: &str, terms: &ReleaseTerms) -> Vec<u8> {
        let grant = Sha256::digest(responder_grant.as_bytes());
        let terms = Sha256::digest(postcard::to_allocvec(terms).unwrap_or_default());
        let mut message = self.digest().to_vec();
        message.extend_from_slice(&grant);
        message.extend_from_slice(&terms);
        message
    }

    /// Checks the requester's signature with its certificate.
    pub fn verify_request(
        &self,
        requester_cert: &CertificateDer<'_>,
        set_size: u64,
        signature: &[u8],
    ) -> Result<(), BadSignature> {
        verify_signature(
            requester_cert,
            REQUEST_CONTEXT,
            &self.request(set_size),
            signature,
        )
    }

    /// Checks the responder's countersignature with its certificate.
    pub fn verify_acceptance(
        &self,
        responder_cert: &CertificateDer<'_>,
        responder_grant: &str,
        terms: &ReleaseTerms,
        signature: &[u8],
    ) -> Result<(), BadSignature> {
        verify_signature(
            responder_cert,
            ACCEPT_CONTEXT,
            &self.acceptance(responder_grant, terms),
            signature,
        )
    }
}

/// Release rules the responder's data owner sets for this job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTerms {
    /// Results over fewer records than this are suppressed.
    pub min_group_size: u64,
    /// Noise the responder adds, if any.
    pub noise: Option<NoiseTerms>,
}

/// The public parameters of the noise in a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseTerms {
    /// Epsilon, in millionths.
    pub epsilon_micros: u64,
    /// Delta (the tail of the padding), in billionths.
    pub delta_nanos: u64,
    /// The fixed offset the requester subtracts from its count.
    pub offset: u64,
    /// Dummies in each of the responder's lists (public, so list lengths
    /// reveal nothing of the noise).
    pub total: u64,
}

/// The protocols a job can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtocolRequest {
    /// ECDH-PSI in the given mode.
    EcdhPsi(Mode),
    /// Horizontal statistics by secure aggregation among this many parties
    /// (`crate::stats_manifest`).
    SecureStats {
        /// Parties in the job, the requester among them.
        parties: u8,
    },
    // New variants go last: the variant index is in every signed manifest.
    /// Private intersection-sum: the requester learns the intersection's
    /// size and the sum of the responder's values over it, per category.
    IntersectionSum(IsumRequest),
}

impl ProtocolRequest {
    /// The name used in job records, e.g. `ecdh-psi/cardinality`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EcdhPsi(Mode::Membership) => "ecdh-psi/membership",
            Self::EcdhPsi(Mode::Cardinality) => "ecdh-psi/cardinality",
            Self::SecureStats { .. } => "secure-stats",
            Self::IntersectionSum(_) => "intersection-sum",
        }
    }
}

/// What an intersection-sum job sums, as the requester names it: the
/// responder's columns and the protocol's layout. Both nodes check it at
/// admission ([`IsumRequest::check`]); the responder's values must be
/// non-negative integers below `2^(16·value_limbs)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsumRequest {
    /// The responder's column of values to sum.
    pub value_column: String,
    /// The responder's column of categories, if the sum is grouped.
    pub category_column: Option<String>,
    /// The categories, in the order the result lists them; every row's
    /// category must be one of them. Empty without a category column.
    pub categories: Vec<String>,
    /// 16-bit limbs per value, 1 to 4: values below `2^(16·value_limbs)`.
    pub value_limbs: u8,
}

impl IsumRequest {
    /// The protocol's layout: categories (1 when ungrouped) and limbs.
    pub fn layout(&self) -> Layout {
        Layout {
            categories: self.categories.len().max(1) as u16,
            value_limbs: self.value_limbs,
        }
    }

    /// Whether the request is one the protocol can run: limbs and
    /// categories in range, categories distinct and non-empty, and listed
    /// exactly when a category column is named.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_VALUE_LIMBS).contains(&self.value_limbs) {
            return Err(format!(
                "{} limbs asked for; give 1 to {MAX_VALUE_LIMBS} (values below 2^16, 2^32, 2^48 or 2^64)",
                self.value_limbs
            ));
        }
        match (&self.category_column, self.categories.len()) {
            (None, 0) => return Ok(()),
            (None, _) => {
                return Err(
                    "categories are listed but no category column is named; give --category-column"
                        .into(),
                );
            }
            (Some(_), 0) => return Err(
                "a category column is named but no categories are listed; give --categories a,b,c"
                    .into(),
            ),
            (Some(_), n) if n > usize::from(MAX_CATEGORIES) => {
                return Err(format!(
                    "{n} categories listed, over the protocol's limit of {MAX_CATEGORIES} (every row carries a ciphertext per category)"
                ));
            }
            (Some(_), _) => {}
        }
        let mut seen = std::collections::HashSet::new();
        for category in &self.categories {
            if category.trim().is_empty() || category.trim() != category {
                return Err(format!(
                    "category {category:?} is empty or has surrounding spaces; list each category as the file holds it, trimmed"
                ));
            }
            if !seen.insert(category) {
                return Err(format!("category {category:?} is listed twice"));
            }
        }
        Ok(())
    }
}
