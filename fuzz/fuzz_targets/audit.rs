//! The audit export as `unseen audit verify --file F --cert C` reads it: the
//! certificate's PEM, then the JSON lines (`audit::parse_line`, `audit::verify`).
//!
//! Input: a PEM certificate, then the export. Both may come from whoever hands
//! the auditor the files. Every entry that parses must print back to itself;
//! a log that verifies must verify against its own head and fail against any
//! other.
//!
//! The parsed entries are then made into the log a forger with a key of its
//! own would write: sealed again with this process's node key (so sequence,
//! links, hashes and signatures hold), each job manifest naming this node as
//! requester, signed by it, and naming as responder whatever certificate
//! bytes the entry carries. The only check left to fail is the responder's
//! countersignature, so the fuzzer's certificate bytes reach the X.509
//! parser and the signature check.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use unseen_fuzz::scratch_dir;
use unseen_node::audit::{AuditEntry, AuditError, AuditEvent, parse_line, seal, verify};
use unseen_node::config::NodePaths;
use unseen_node::identity::{Fingerprint, Identity};

const PEM_END: &str = "-----END CERTIFICATE-----";

fn own_identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let dir = scratch_dir().join("identity");
        std::fs::create_dir_all(&dir).expect("the scratch directory is writable");
        Identity::create("fuzz", &NodePaths::new(dir)).expect("a fresh identity")
    })
}

/// Makes a job agreement this node's own, as a forger holding a key would.
fn own_the_job(event: &mut AuditEvent, identity: &Identity) {
    if let AuditEvent::JobAgreed {
        manifest,
        requester_signature,
        requester_set_size,
        peer_certificate,
        ..
    } = event
    {
        let peer_cert = CertificateDer::from(hex::decode(&*peer_certificate).unwrap_or_default());
        manifest.requester.fingerprint = identity.fingerprint().to_string();
        manifest.responder.fingerprint = Fingerprint::of(&peer_cert).to_string();
        *requester_signature = hex::encode(manifest.sign_request(identity, *requester_set_size));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(end) = text.find(PEM_END) else {
        return;
    };
    let (cert_file, export) = text.split_at(end + PEM_END.len());
    let Ok(cert) = CertificateDer::from_pem_slice(cert_file.as_bytes()) else {
        return;
    };
    let lines: Vec<&str> = export.trim_start_matches('\n').lines().collect();
    let entries: Vec<Result<AuditEntry, AuditError>> = lines
        .iter()
        .zip(1..)
        .map(|(line, number)| parse_line(line, number))
        .collect();
    for entry in entries.iter().flatten() {
        let printed = serde_json::to_string(entry).expect("an entry prints as JSON");
        assert_eq!(parse_line(&printed, 1).as_ref(), Ok(entry), "{printed}");
    }

    match verify(entries.clone(), &cert, None) {
        Ok(verified) => {
            assert_eq!(verified.entries, lines.len() as u64);
            if verified.entries > 0 {
                let again = verify(entries.clone(), &cert, Some(&verified.head));
                assert_eq!(again.as_ref(), Ok(&verified));
            }
            let other = verify(entries.clone(), &cert, Some("not a head"));
            assert!(
                matches!(other, Err(AuditError::Truncated { .. })),
                "{other:?}"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let identity = own_identity();
    let mut last = None;
    let mut resealed = Vec::new();
    for entry in entries.into_iter().flatten() {
        let mut event = entry.event;
        own_the_job(&mut event, identity);
        let entry = seal(identity, last.take(), entry.time, event);
        last = Some((entry.seq, entry.hash.clone()));
        resealed.push(Ok(entry));
    }
    let count = resealed.len() as u64;
    match verify(resealed, identity.cert(), None) {
        Ok(verified) => assert_eq!(verified.entries, count),
        Err(AuditError::BadManifest {
            party: "responder", ..
        }) => {}
        Err(e) => panic!("a log this node sealed itself does not verify: {e}"),
    }
});
