//! Bounds on every string a peer sends, checked as a message is decoded.
//!
//! A frame may be a megabyte, and refused requests are recorded: without
//! these bounds a peer could write megabytes of its own text into the audit
//! log and the node's logs with each refusal, or put terminal escapes and
//! forged log lines in front of an operator. Nothing from a peer is stored or
//! printed before it passes here; control characters are refused, never
//! passed on.

use super::{JobAcceptance, JobRequest, PeerMessage, StatsAcceptance, StatsManifest, WireError};
use crate::jobs::stats::StatsSpec;
use crate::manifest::{IsumRequest, JobManifest, Party, ProtocolRequest};
use unseen_protocol::sharing::MAX_PARTIES;

/// The longest name a peer may send: a node, dataset or grant name.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest purpose.
pub const MAX_PURPOSE_BYTES: usize = 512;
/// The longest reason in a refusal or an abort.
pub const MAX_REASON_BYTES: usize = 1024;
/// The most result recipients a manifest may name.
pub const MAX_RECIPIENTS: usize = 16;
/// The longest signature: ECDSA P-256 in DER is at most 72 bytes.
pub const MAX_SIGNATURE_BYTES: usize = 256;
/// The largest certificate a party may present in a stats agreement.
pub const MAX_CERTIFICATE_BYTES: usize = 4096;
/// The longest filter, category or bin edge in a stats spec.
pub const MAX_SPEC_TEXT_BYTES: usize = 256;
/// The most filters in a stats spec.
pub const MAX_FILTERS: usize = 32;

/// Checks every string and list in `message` against its bound.
pub(super) fn check(message: &PeerMessage) -> Result<(), WireError> {
    match message {
        PeerMessage::JobRequest(request) => check_request(request),
        PeerMessage::JobAccepted(acceptance) => check_acceptance(acceptance),
        PeerMessage::JobRefused { reason } | PeerMessage::Abort { reason, .. } => {
            text("reason", reason, MAX_REASON_BYTES)
        }
        PeerMessage::Psi(_)
        | PeerMessage::JobFinished
        | PeerMessage::Shares(_)
        | PeerMessage::Shares128(_)
        | PeerMessage::Isum(_) => Ok(()),
        PeerMessage::StatsRequest(request) => {
            check_stats_manifest(&request.manifest)?;
            check_agreement(&request.requester)
        }
        PeerMessage::StatsAccepted(acceptance) => check_agreement(acceptance),
        PeerMessage::StatsGo(all) => {
            if all.len() > MAX_PARTIES {
                return Err(too_long("agreements", all.len(), MAX_PARTIES, "entries"));
            }
            all.iter().try_for_each(check_agreement)
        }
        PeerMessage::StatsHello { job_id, .. } => text("job id", job_id, MAX_NAME_BYTES),
    }
}

fn check_agreement(a: &StatsAcceptance) -> Result<(), WireError> {
    text("grant", &a.grant, MAX_NAME_BYTES)?;
    bytes("certificate", &a.certificate, MAX_CERTIFICATE_BYTES)?;
    bytes("signature", &a.signature, MAX_SIGNATURE_BYTES)
}

fn check_stats_manifest(m: &StatsManifest) -> Result<(), WireError> {
    text("job id", &m.job_id, MAX_NAME_BYTES)?;
    if m.names.len() > MAX_PARTIES {
        return Err(too_long(
            "party names",
            m.names.len(),
            MAX_PARTIES,
            "entries",
        ));
    }
    for name in &m.names {
        text("party name", name, MAX_NAME_BYTES)?;
    }
    check_spec(&m.spec)
}

fn check_spec(spec: &StatsSpec) -> Result<(), WireError> {
    text("purpose", &spec.purpose, MAX_PURPOSE_BYTES)?;
    let lists = [
        ("parties", spec.parties.len(), MAX_PARTIES),
        ("recipients", spec.recipients.len(), MAX_PARTIES),
        ("filters", spec.filters.len(), MAX_FILTERS),
        ("statistics", spec.statistics.len(), 16),
    ];
    for (field, len, max) in lists {
        if len > max {
            return Err(too_long(field, len, max, "entries"));
        }
    }
    let names = spec
        .parties
        .iter()
        .flat_map(|p| {
            [
                Some(&p.node),
                Some(&p.dataset),
                p.value_column.as_ref(),
                p.group_column.as_ref(),
            ]
        })
        .flatten()
        .chain(&spec.recipients)
        .chain(spec.value.iter().map(|v| &v.column))
        .chain(spec.group_by.iter().map(|g| &g.column));
    for name in names {
        text("name in the spec", name, MAX_NAME_BYTES)?;
    }
    let texts = spec
        .filters
        .iter()
        .chain(spec.group_by.iter().flat_map(|g| &g.groups))
        .chain(spec.histogram.iter().flat_map(|h| &h.edges))
        .chain(
            spec.histogram
                .iter()
                .flat_map(|h| h.start.iter().chain(&h.width)),
        );
    for t in texts {
        text("text in the spec", t, MAX_SPEC_TEXT_BYTES)?;
    }
    let groups = spec.group_by.as_ref().map_or(0, |g| g.groups.len());
    let edges = spec.histogram.as_ref().map_or(0, |h| h.edges.len());
    let max = crate::jobs::stats::MAX_GROUPS;
    let bins = spec
        .histogram
        .as_ref()
        .and_then(|h| h.bins)
        .map_or(0, |b| b as usize);
    if bins > crate::jobs::stats::MAX_REGULAR_BINS as usize {
        return Err(too_long(
            "histogram bins",
            bins,
            crate::jobs::stats::MAX_REGULAR_BINS as usize,
            "bins",
        ));
    }
    if groups > max || edges > max + 1 {
        return Err(too_long(
            "groups or bins",
            groups.max(edges),
            max,
            "entries",
        ));
    }
    Ok(())
}

fn check_request(request: &JobRequest) -> Result<(), WireError> {
    check_manifest(&request.manifest)?;
    bytes(
        "requester signature",
        &request.requester_signature,
        MAX_SIGNATURE_BYTES,
    )
}

fn check_acceptance(acceptance: &JobAcceptance) -> Result<(), WireError> {
    text(
        "responder grant",
        &acceptance.responder_grant,
        MAX_NAME_BYTES,
    )?;
    bytes(
        "responder signature",
        &acceptance.responder_signature,
        MAX_SIGNATURE_BYTES,
    )
}

fn check_manifest(manifest: &JobManifest) -> Result<(), WireError> {
    text("job id", &manifest.job_id, MAX_NAME_BYTES)?;
    party("requester", &manifest.requester)?;
    party("responder", &manifest.responder)?;
    text(
        "requester dataset",
        &manifest.requester_dataset,
        MAX_NAME_BYTES,
    )?;
    text(
        "responder dataset",
        &manifest.responder_dataset,
        MAX_NAME_BYTES,
    )?;
    text("purpose", &manifest.purpose, MAX_PURPOSE_BYTES)?;
    text("requester grant", &manifest.requester_grant, MAX_NAME_BYTES)?;
    if manifest.result_recipients.len() > MAX_RECIPIENTS {
        return Err(too_long(
            "result recipients",
            manifest.result_recipients.len(),
            MAX_RECIPIENTS,
            "entries",
        ));
    }
    for recipient in &manifest.result_recipients {
        text("result recipient", recipient, MAX_NAME_BYTES)?;
    }
    if let ProtocolRequest::IntersectionSum(ask) = &manifest.protocol {
        check_isum(ask)?;
    }
    Ok(())
}

/// Columns are names; categories are cells of the responder's file. How
/// many there may be is admission's rule ([`IsumRequest::check`]); here,
/// only that the list cannot be long enough to cost anything.
fn check_isum(ask: &IsumRequest) -> Result<(), WireError> {
    text("value column", &ask.value_column, MAX_NAME_BYTES)?;
    if let Some(column) = &ask.category_column {
        text("category column", column, MAX_NAME_BYTES)?;
    }
    let max = usize::from(unseen_protocol::intersection_sum::MAX_CATEGORIES);
    if ask.categories.len() > max {
        return Err(too_long("categories", ask.categories.len(), max, "entries"));
    }
    for category in &ask.categories {
        text("category", category, MAX_SPEC_TEXT_BYTES)?;
    }
    Ok(())
}

fn party(role: &'static str, party: &Party) -> Result<(), WireError> {
    text(role, &party.name, MAX_NAME_BYTES)?;
    text(role, &party.fingerprint, MAX_NAME_BYTES)
}

/// The field's name and sizes only: the peer's text itself is never echoed.
fn text(field: &'static str, value: &str, max: usize) -> Result<(), WireError> {
    if value.len() > max {
        return Err(too_long(field, value.len(), max, "bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(WireError::Bounds(format!(
            "the {field} contains control characters"
        )));
    }
    Ok(())
}

fn bytes(field: &'static str, value: &[u8], max: usize) -> Result<(), WireError> {
    if value.len() > max {
        return Err(too_long(field, value.len(), max, "bytes"));
    }
    Ok(())
}

fn too_long(field: &str, len: usize, max: usize, unit: &str) -> WireError {
    WireError::Bounds(format!(
        "the {field} has {len} {unit}, over the limit of {max}"
    ))
}

/// Makes our own text safe to send as a reason: control characters are
/// escaped and the length is cut to [`MAX_REASON_BYTES`], so a peer's node
/// never refuses our abort for its wording (an error may quote a file name).
pub fn reason(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REASON_BYTES));
    for c in text.chars() {
        let escaped: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if out.len() + escaped.len() > MAX_REASON_BYTES {
            break;
        }
        out.push_str(&escaped);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own abort reasons must pass the peer's bounds whatever they quote.
    #[test]
    fn our_reasons_always_pass_the_bounds() {
        let quoted = format!("cannot write /tmp/a\nb\u{1b}[2J: {}", "é".repeat(2000));
        let sent = reason(&quoted);
        assert!(sent.len() <= MAX_REASON_BYTES);
        assert!(sent.starts_with("cannot write /tmp/a\\nb\\u{1b}[2J: é"));
        let abort = PeerMessage::Abort {
            code: 1,
            reason: sent,
        };
        assert_eq!(
            super::super::decode(&super::super::encode(&abort)),
            Ok(abort)
        );
    }
}
