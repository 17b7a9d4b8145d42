//! Bounds on every string a peer sends, checked as a message is decoded.
//!
//! A frame may be a megabyte, and refused requests are recorded: without
//! these bounds a peer could write megabytes of its own text into the audit
//! log and the node's logs with each refusal, or put terminal escapes and
//! forged log lines in front of an operator. Nothing from a peer is stored or
//! printed before it passes here; control characters are refused, never
//! passed on.

use super::{JobAcceptance, JobRequest, PeerMessage, WireError};
use crate::manifest::{JobManifest, Party};

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

/// Checks every string and list in `message` against its bound.
pub(super) fn check(message: &PeerMessage) -> Result<(), WireError> {
    match message {
        PeerMessage::JobRequest(request) => check_request(request),
        PeerMessage::JobAccepted(acceptance) => check_acceptance(acceptance),
        PeerMessage::JobRefused { reason } | PeerMessage::Abort { reason, .. } => {
            text("reason", reason, MAX_REASON_BYTES)
        }
        PeerMessage::Psi(_) | PeerMessage::JobFinished => Ok(()),
    }
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
