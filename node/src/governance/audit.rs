//! The audit log: append-only, each entry committing to the hash of the one
//! before and signed with the node's identity key.
//!
//! An entry's hash is SHA-256 over `"unseen/audit/v1"` and the JSON of
//! `(seq, time, prev_hash, event)`; its signature is the node's Ed25519
//! signature of that hash. Verification recomputes every hash and checks
//! every link and signature, so an edited, removed, reordered or inserted
//! entry, or one appended without the node's key, is detected. Removing
//! entries from the end leaves a shorter valid chain: compare the head with
//! one recorded earlier (`unseen audit verify --head`, or a previous export).

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::grant::{Charge, Grant};
use crate::identity::{Fingerprint, Identity, verify_signature};
use crate::manifest::JobManifest;
use crate::manifest::ReleaseTerms;
use crate::policy::{DataPolicy, Role};

const HASH_CONTEXT: &[u8] = b"unseen/audit/v1";
const SIGNATURE_CONTEXT: &[u8] = b"unseen/audit-entry/v1";

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was released to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Fingerprint of the node that received the result.
    pub recipient: String,
    /// The aggregate released, or `None` if it was suppressed.
    pub value: Option<String>,
    /// Why it was suppressed.
    pub suppressed: Option<String>,
    /// The noise mechanism, or `none`.
    pub mechanism: String,
    /// Epsilon spent on this release, if noise was added.
    pub epsilon: Option<String>,
    /// Delta of this release, if any.
    pub delta: Option<String>,
}

/// Something the node did that an auditor may need to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AuditEvent {
    /// The node started serving.
    NodeStarted {
        /// Its name.
        name: String,
        /// Its certificate fingerprint.
        fingerprint: String,
    },
    /// A peer was registered.
    PeerAdded {
        /// Local name.
        name: String,
        /// Address.
        addr: String,
        /// Certificate fingerprint.
        fingerprint: String,
    },
    /// A peer was removed.
    PeerRemoved {
        /// Local name.
        name: String,
    },
    /// A dataset was registered (or registered again).
    DatasetRegistered {
        /// Its name.
        name: String,
        /// SHA-256 of the file.
        sha256: String,
        /// Data rows.
        rows: u64,
        /// Distinct ids.
        distinct_ids: u64,
        /// Grade, legal basis, k.
        policy: DataPolicy,
    },
    /// A grant was made.
    GrantAdded {
        /// The grant.
        grant: Grant,
    },
    /// A grant was revoked.
    GrantRevoked {
        /// Its id.
        grant_id: String,
    },
    /// A job was asked for: by our operator (requester) or a peer (responder).
    JobRequested {
        /// The job.
        job_id: String,
        /// Our side.
        role: Role,
        /// The other node, by local name.
        peer: String,
        /// The manifest as requested.
        manifest: JobManifest,
    },
    /// A job was refused, here or by the peer.
    JobRefused {
        /// The job.
        job_id: String,
        /// Our side.
        role: Role,
        /// Why (for our operator).
        reason: String,
        /// Whether a charge made for it was given back (no data had left).
        refunded: bool,
    },
    /// A job passed our boundary and its quota was charged.
    JobAdmitted {
        /// The job.
        job_id: String,
        /// Our side.
        role: Role,
        /// The grant it runs under.
        grant_id: String,
        /// What was charged.
        charge: Charge,
        /// False when a retry reused an earlier charge.
        newly_charged: bool,
    },
    /// Both nodes signed the manifest.
    JobAgreed {
        /// The job.
        job_id: String,
        /// The manifest.
        manifest: JobManifest,
        /// The requester's signature, hex.
        requester_signature: String,
        /// The set size the requester signed for.
        requester_set_size: u64,
        /// The responder's grant.
        responder_grant: String,
        /// The release terms the responder signed for.
        terms: ReleaseTerms,
        /// The responder's countersignature, hex.
        responder_signature: String,
        /// The other node's certificate (DER, hex), so the signatures can be
        /// checked from the log alone.
        peer_certificate: String,
    },
    /// Every party of a stats job agreed: the manifest and all `n` signed
    /// agreements, each with its certificate, checkable from the log alone.
    StatsJobAgreed {
        /// The job.
        job_id: String,
        /// The manifest.
        manifest: crate::stats_manifest::StatsManifest,
        /// Each party's agreement, in party order.
        agreements: Vec<crate::stats_manifest::StatsAcceptance>,
    },
    /// A job failed after it was admitted.
    JobFailed {
        /// The job.
        job_id: String,
        /// Our side.
        role: Role,
        /// Why.
        reason: String,
        /// Whether its charge was given back (no data had left).
        refunded: bool,
    },
    /// A job finished.
    JobFinished {
        /// The job.
        job_id: String,
        /// Our side.
        role: Role,
        /// What was released.
        release: Release,
    },
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// What happened.
    pub event: AuditEvent,
    /// This entry's hash, hex.
    pub hash: String,
    /// The node's signature of the hash, hex.
    pub signature: String,
}

/// Computes an entry's hash.
pub fn entry_hash(seq: u64, time: &str, prev_hash: &str, event: &AuditEvent) -> String {
    let body = serde_json::to_vec(&(seq, time, prev_hash, event)).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(HASH_CONTEXT);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// Makes the entry that follows `(last_seq, last_hash)`.
pub fn seal(
    identity: &Identity,
    last: Option<(u64, String)>,
    time: String,
    event: AuditEvent,
) -> AuditEntry {
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_string()),
    };
    let hash = entry_hash(seq, &time, &prev_hash, &event);
    let signature = hex::encode(identity.sign(SIGNATURE_CONTEXT, hash.as_bytes()));
    AuditEntry {
        seq,
        time,
        prev_hash,
        event,
        hash,
        signature,
    }
}

/// What is wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An entry could not be read at all.
    #[error("entry {seq}: unreadable ({reason}); it was edited outside the node")]
    Unreadable {
        /// Where.
        seq: u64,
        /// The parser's message.
        reason: String,
    },
    /// Entries are missing or out of order.
    #[error(
        "entry {found} stands where entry {expected} should: entries were removed or reordered"
    )]
    Sequence {
        /// The position expected.
        expected: u64,
        /// The position found.
        found: u64,
    },
    /// The link to the previous entry is broken.
    #[error(
        "entry {seq} does not follow the entry before it: entries were removed, reordered or inserted"
    )]
    BrokenLink {
        /// Where.
        seq: u64,
    },
    /// The content does not match its hash.
    #[error("entry {seq} does not match its hash: it was edited")]
    Edited {
        /// Where.
        seq: u64,
    },
    /// The node did not sign this entry.
    #[error("entry {seq} is not signed by the node ({fingerprint}): it was added outside the node")]
    Unsigned {
        /// Where.
        seq: u64,
        /// The node whose key was expected.
        fingerprint: Fingerprint,
    },
    /// A job manifest's signature does not verify.
    #[error("entry {seq}: job {job_id}'s manifest signature by the {party} does not verify")]
    BadManifest {
        /// Where.
        seq: u64,
        /// The job.
        job_id: String,
        /// Which signature.
        party: &'static str,
    },
    /// The log ends before the head it must reach.
    #[error(
        "the log ends at entry {last} ({last_hash}), not at the expected head {expected}: entries were removed from the end"
    )]
    Truncated {
        /// The last entry present.
        last: u64,
        /// Its hash.
        last_hash: String,
        /// The head expected.
        expected: String,
    },
}

/// A verified log's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// The last entry's hash (the head), or [`GENESIS`] if empty.
    pub head: String,
    /// Job manifests whose two signatures were checked.
    pub manifests: u64,
}

/// Checks a whole log against the node's certificate: sequence, links,
/// hashes, entry signatures, and both signatures of every job manifest.
/// `expected_head`, if given, must be the hash of some entry.
pub fn verify(
    entries: impl IntoIterator<Item = Result<AuditEntry, AuditError>>,
    node_cert: &CertificateDer<'_>,
    expected_head: Option<&str>,
) -> Result<Verified, AuditError> {
    let node_fingerprint = Fingerprint::of(node_cert);
    let mut prev = GENESIS.to_string();
    let mut count = 0;
    let mut manifests = 0;
    let mut head_seen = expected_head.is_none();
    for entry in entries {
        let entry = entry?;
        let expected = count + 1;
        if entry.seq != expected {
            return Err(AuditError::Sequence {
                expected,
                found: entry.seq,
            });
        }
        if entry.prev_hash != prev {
            return Err(AuditError::BrokenLink { seq: entry.seq });
        }
        if entry_hash(entry.seq, &entry.time, &entry.prev_hash, &entry.event) != entry.hash {
            return Err(AuditError::Edited { seq: entry.seq });
        }
        let signature = hex::decode(&entry.signature).unwrap_or_default();
        if verify_signature(
            node_cert,
            SIGNATURE_CONTEXT,
            entry.hash.as_bytes(),
            &signature,
        )
        .is_err()
        {
            return Err(AuditError::Unsigned {
                seq: entry.seq,
                fingerprint: node_fingerprint,
            });
        }
        if let AuditEvent::JobAgreed { .. } = &entry.event {
            verify_manifest(&entry, node_cert, &node_fingerprint)?;
            manifests += 1;
        }
        if let AuditEvent::StatsJobAgreed {
            job_id,
            manifest,
            agreements,
        } = &entry.event
        {
            // This node must be a party, and every party's signature hold.
            if manifest.index_of(&node_fingerprint).is_none()
                || manifest.verify_all(agreements).is_err()
            {
                return Err(AuditError::BadManifest {
                    seq: entry.seq,
                    job_id: job_id.clone(),
                    party: "stats parties",
                });
            }
            manifests += 1;
        }
        head_seen |= expected_head == Some(entry.hash.as_str());
        prev = entry.hash;
        count += 1;
    }
    if let (false, Some(expected)) = (head_seen, expected_head) {
        return Err(AuditError::Truncated {
            last: count,
            last_hash: prev,
            expected: expected.to_string(),
        });
    }
    Ok(Verified {
        entries: count,
        head: prev,
        manifests,
    })
}

fn verify_manifest(
    entry: &AuditEntry,
    node_cert: &CertificateDer<'_>,
    node_fingerprint: &Fingerprint,
) -> Result<(), AuditError> {
    let AuditEvent::JobAgreed {
        job_id,
        manifest,
        requester_signature,
        requester_set_size,
        responder_grant,
        terms,
        responder_signature,
        peer_certificate,
    } = &entry.event
    else {
        return Ok(());
    };
    let bad = |party| AuditError::BadManifest {
        seq: entry.seq,
        job_id: job_id.clone(),
        party,
    };
    let peer_cert = CertificateDer::from(hex::decode(peer_certificate).unwrap_or_default());
    let peer_fingerprint = Fingerprint::of(&peer_cert).to_string();
    let own = node_fingerprint.to_string();
    // The certificates must be the ones the manifest names.
    let (requester_cert, responder_cert) = if manifest.requester.fingerprint == own
        && manifest.responder.fingerprint == peer_fingerprint
    {
        (node_cert, &peer_cert)
    } else if manifest.responder.fingerprint == own
        && manifest.requester.fingerprint == peer_fingerprint
    {
        (&peer_cert, node_cert)
    } else {
        return Err(bad("named parties"));
    };
    manifest
        .verify_request(
            requester_cert,
            *requester_set_size,
            &hex::decode(requester_signature).unwrap_or_default(),
        )
        .map_err(|_| bad("requester"))?;
    manifest
        .verify_acceptance(
            responder_cert,
            responder_grant,
            terms,
            &hex::decode(responder_signature).unwrap_or_default(),
        )
        .map_err(|_| bad("responder"))?;
    Ok(())
}

/// Parses one line of an export.
pub fn parse_line(line: &str, line_number: u64) -> Result<AuditEntry, AuditError> {
    serde_json::from_str(line).map_err(|e| AuditError::Unreadable {
        seq: line_number,
        reason: e.to_string(),
    })
}
