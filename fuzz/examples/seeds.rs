//! Writes the committed seed corpus, fuzz/seeds/TARGET/NAME: valid inputs
//! made by the node's own encoders, so the fuzzer starts from real traffic
//! and real files. Run without the fuzzer's flags:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_node::audit::{AuditEntry, AuditEvent, Release, seal};
use unseen_node::config::NodePaths;
use unseen_node::identity::Identity;
use unseen_node::manifest::{JobManifest, Party};
use unseen_node::policy::{DataPolicy, Grade, LegalBasis};
use unseen_node::store::Role;
use unseen_node::transport::frame::write_frame;
use unseen_node::wire::{
    JobAcceptance, JobRequest, NoiseTerms, PeerMessage, ProtocolRequest, ReleaseTerms, encode,
};
use unseen_protocol::ecdh_psi::{Message, Mode, Padding, Requester, Responder, Session};
use unseen_protocol::sharing::SumMessage;
use unseen_protocol::{IdSet, JobId};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let psi = psi_messages();
    let dir = tempfile::tempdir()?;
    let alice = identity(dir.path(), "alice")?;
    let bob = identity(dir.path(), "bob")?;
    let manifest = manifest(&alice, &bob);
    let wire = peer_messages(&alice, &bob, &manifest, &psi);

    let mut seeds = Seeds::new(&root);
    for (name, message) in &psi {
        seeds.add("psi_message", name, message.encode())?;
    }
    for (name, message) in &wire {
        seeds.add("wire", name, encode(message))?;
    }
    frame_seeds(&mut seeds, &wire)?;
    psi_state_seeds(&mut seeds)?;
    dataset_seeds(&mut seeds)?;
    config_seeds(&mut seeds)?;
    audit_seeds(&mut seeds, dir.path(), &alice, &bob, &manifest)?;
    println!("wrote {} seeds under {}", seeds.count, root.display());
    Ok(())
}

struct Seeds {
    root: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            count: 0,
        }
    }

    fn add(&mut self, target: &str, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        self.count += 1;
        Ok(())
    }
}

fn identity(dir: &Path, name: &str) -> Result<Identity> {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(Identity::create(name, &NodePaths::new(dir))?)
}

fn party(name: &str, identity: &Identity) -> Party {
    Party {
        name: name.into(),
        fingerprint: identity.fingerprint().to_string(),
    }
}

fn manifest(alice: &Identity, bob: &Identity) -> JobManifest {
    JobManifest {
        job_id: JobId([0x5a; 16]).to_string(),
        requester: party("alice", alice),
        responder: party("bob", bob),
        protocol: ProtocolRequest::EcdhPsi(Mode::Cardinality),
        requester_dataset: "customers".into(),
        responder_dataset: "subscribers".into(),
        purpose: "campaign overlap".into(),
        result_recipients: vec![alice.fingerprint().to_string()],
        requester_grant: "g-00000000abcd".into(),
    }
}

/// A real padded cardinality run with two-element chunks: every kind of
/// PSI message, as the protocol makes them.
fn psi_messages() -> Vec<(String, Message)> {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let job = JobId([0x5a; 16]);
    let mut requester_session = Session::new(job, Mode::Cardinality, 1 << 24);
    requester_session.chunk_points = 2;
    requester_session.padding = Padding::Requester {
        offset: 1,
        total: 2,
    };
    let mut responder_session = requester_session.clone();
    responder_session.padding = Padding::Responder {
        matching: 1,
        total: 2,
    };
    let own: IdSet = ["a", "b", "c"].into_iter().collect();
    let theirs: IdSet = ["b", "c", "d"].into_iter().collect();
    let (_, from_requester) = Requester::start(requester_session, &own, &mut rng);
    let (state, mut from_responder) = Responder::start(responder_session, &theirs, &mut rng);
    let mut state = unseen_protocol::ecdh_psi::ResponderState::from(state);
    for message in from_requester.clone() {
        let step = state.handle(message, &mut rng).expect("honest run");
        from_responder.extend(step.send);
        match step.next {
            unseen_protocol::Progress::Continue(next) => state = next,
            unseen_protocol::Progress::Done(_) => break,
        }
    }
    let mut messages: Vec<(String, Message)> = Vec::new();
    for (i, message) in from_requester.into_iter().chain(from_responder).enumerate() {
        messages.push((format!("{i:02}-{}", message.kind()), message));
    }
    messages.push((
        "hello-no-commitment".into(),
        Message::RequesterHello {
            set_size: 300,
            key_commitment: None,
        },
    ));
    messages
}

fn noisy_terms() -> ReleaseTerms {
    ReleaseTerms {
        min_group_size: 10,
        noise: Some(NoiseTerms {
            epsilon_micros: 500_000,
            delta_nanos: 1000,
            offset: 1,
            total: 2,
        }),
    }
}

fn exact_terms() -> ReleaseTerms {
    ReleaseTerms {
        min_group_size: 1,
        noise: None,
    }
}

fn peer_messages(
    alice: &Identity,
    bob: &Identity,
    manifest: &JobManifest,
    psi: &[(String, Message)],
) -> Vec<(String, PeerMessage)> {
    let grant = "g-0000000bcdef";
    let mut messages = vec![
        (
            "job-request".to_string(),
            PeerMessage::JobRequest(JobRequest {
                manifest: manifest.clone(),
                requester_signature: manifest.sign_request(alice, 3),
                requester_set_size: 3,
            }),
        ),
        (
            "job-accepted-noise".to_string(),
            PeerMessage::JobAccepted(JobAcceptance {
                responder_grant: grant.into(),
                responder_signature: manifest.sign_acceptance(bob, grant, &noisy_terms()),
                terms: noisy_terms(),
            }),
        ),
        (
            "job-accepted-exact".to_string(),
            PeerMessage::JobAccepted(JobAcceptance {
                responder_grant: grant.into(),
                responder_signature: manifest.sign_acceptance(bob, grant, &exact_terms()),
                terms: exact_terms(),
            }),
        ),
        (
            "job-refused".to_string(),
            PeerMessage::JobRefused {
                reason: "no grant covers this purpose".into(),
            },
        ),
        ("job-finished".to_string(), PeerMessage::JobFinished),
        (
            "abort".to_string(),
            PeerMessage::Abort {
                code: 3,
                reason: "peer sent an invalid group element".into(),
            },
        ),
    ];
    for (name, message) in psi {
        messages.push((format!("psi-{name}"), PeerMessage::Psi(message.clone())));
    }
    messages.extend(isum_messages());
    // Stats jobs' messages that need no signed manifest: the mesh's hello
    // and both rings' shares (fixed-width byte strings since wire version 2).
    messages.extend([
        (
            "stats-hello".to_string(),
            PeerMessage::StatsHello {
                job_id: "00112233445566778899aabbccddeeff".into(),
                from: 2,
            },
        ),
        (
            "stats-input-shares".to_string(),
            PeerMessage::Shares(SumMessage::InputShares(vec![1, u64::MAX, 1 << 63])),
        ),
        (
            "stats-total-shares-128".to_string(),
            PeerMessage::Shares128(SumMessage::TotalShares(vec![7, u128::MAX])),
        ),
    ]);
    messages
}

/// An honest intersection-sum run's messages (2 categories, 2 limbs, two
/// points a chunk), as the wire carries them: both hellos with their key
/// proofs, blinded ids, double-blinded ids and encrypted rows.
fn isum_messages() -> Vec<(String, PeerMessage)> {
    use unseen_protocol::intersection_sum::{
        Layout, LimbOffsets, Requester as IsumRequester, Responder as IsumResponder,
        ResponderState, Session as IsumSession, ValuedIds,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let layout = Layout {
        categories: 2,
        value_limbs: 2,
    };
    let mut session = IsumSession::new(JobId([0x1c; 16]), layout, 1 << 20);
    session.chunk_points = 2;
    let own: IdSet = ["a", "b", "c"].into_iter().collect();
    let rows =
        ValuedIds::new([("b", 7u64, 0u16), ("c", 65_536, 1), ("d", 1, 0)]).expect("valid rows");
    let (_, from_requester) =
        IsumRequester::start(session.clone(), &own, &mut rng).expect("requester starts");
    let (state, mut from_responder) =
        IsumResponder::start(session, &rows, LimbOffsets::none(), &mut rng)
            .expect("responder starts");
    let mut state = ResponderState::from(state);
    for message in from_requester.clone() {
        let step = state.handle(message, &mut rng).expect("honest run");
        from_responder.extend(step.send);
        match step.next {
            unseen_protocol::Progress::Continue(next) => state = next,
            unseen_protocol::Progress::Done(_) => break,
        }
    }
    from_requester
        .into_iter()
        .chain(from_responder)
        .enumerate()
        .map(|(i, m)| (format!("isum-{i:02}-{}", m.kind()), PeerMessage::Isum(m)))
        .collect()
}

/// Frames as a stream carries them: `step || max (BE u16) || frames`.
fn frame_seeds(seeds: &mut Seeds, wire: &[(String, PeerMessage)]) -> Result<()> {
    let block_on = |payloads: &[&[u8]]| -> Result<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let mut stream = Vec::new();
        for payload in payloads {
            runtime.block_on(write_frame(&mut stream, payload))?;
        }
        Ok(stream)
    };
    let envelopes: Vec<Vec<u8>> = wire.iter().map(|(_, m)| encode(m)).collect();
    let refs: Vec<&[u8]> = envelopes.iter().map(Vec::as_slice).collect();
    for (name, step, max, payloads) in [
        ("job-stream-whole-reads", 0u8, u16::MAX, &refs[..]),
        ("job-stream-3-byte-reads", 3, 4096, &refs[..]),
        ("empty-and-small", 1, 16, &[&b""[..], b"hello", b"x"][..]),
    ] {
        let mut input = vec![step];
        input.extend_from_slice(&max.to_be_bytes());
        input.extend(block_on(payloads)?);
        seeds.add("frame", name, input)?;
    }
    seeds.add("frame", "too-large", [1, 0, 8, 0, 0, 0x10, 0, 1, 2, 3])?;
    seeds.add("frame", "truncated", [2, 0, 64, 0, 0, 0, 9, 1, 2])?;
    Ok(())
}

/// Scenarios in `arbitrary`'s byte layout (see `unseen_fuzz::psi::Scenario`):
/// flags, set sizes, limits, padding, seed, then no actions, so the honest
/// peer's messages are all delivered and the run must reach the right answer.
fn psi_state_seeds(seeds: &mut Seeds) -> Result<()> {
    let scenario = |test_requester: u8, cardinality: u8, padding: Option<[u64; 3]>| {
        let mut bytes = vec![test_requester, cardinality, 5, 6, 3, 2, 0, 0];
        match padding {
            None => bytes.push(0),
            Some(values) => {
                bytes.push(1);
                for value in values {
                    bytes.extend_from_slice(&value.to_le_bytes());
                }
            }
        }
        bytes.extend_from_slice(&42u64.to_le_bytes());
        bytes
    };
    seeds.add("psi_state", "requester-membership", scenario(1, 0, None))?;
    seeds.add("psi_state", "responder-membership", scenario(0, 0, None))?;
    seeds.add("psi_state", "requester-cardinality", scenario(1, 1, None))?;
    seeds.add("psi_state", "responder-cardinality", scenario(0, 1, None))?;
    // Padding: offset 1, total 4, 2 of them matching.
    let padded = Some([1, 4, 2]);
    seeds.add("psi_state", "requester-padded", scenario(1, 1, padded))?;
    seeds.add("psi_state", "responder-padded", scenario(0, 1, padded))?;
    Ok(())
}

fn dataset_seeds(seeds: &mut Seeds) -> Result<()> {
    let files: [(&str, &[u8]); 6] = [
        (
            "plain.csv",
            b"id,region,spend\nc-001,north,12\nc-002,south,7\nc-003,north,30\n",
        ),
        (
            "quoted-multiline.csv",
            b"id,note\nb,\"has, comma\"\na,plain\nb,\"two\nlines\"\nc,x\n",
        ),
        (
            "empty-and-duplicate-ids.csv",
            b"id,v\na,1\n b ,2\na,3\n,4\n   ,5\nc,6\n",
        ),
        (
            "unicode-nfc.csv",
            "id,name\nZoe\u{301},1\nZo\u{e9},2\n Zo\u{e9} ,3\n".as_bytes(),
        ),
        ("bom-crlf.csv", b"\xef\xbb\xbfid,v\r\nx,1\r\ny,2\r\n"),
        ("id-not-first.csv", b"name,id\nann,7\nbo,8\n"),
    ];
    for (name, bytes) in files {
        seeds.add("dataset", name, bytes)?;
    }
    Ok(())
}

fn config_seeds(seeds: &mut Seeds) -> Result<()> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/unseen.example.toml");
    seeds.add("config", "unseen.example.toml", std::fs::read(example)?)?;
    seeds.add(
        "config",
        "minimal.toml",
        "name = \"alice\"\nlisten = \"127.0.0.1:7000\"\n",
    )?;
    seeds.add(
        "config",
        "ipv6-limits.toml",
        "name = \"bank-01.east\"\nlisten = \"[::1]:7700\"\n[limits]\nmax_frame_bytes = 200000\nmax_peer_set_size = 5\n",
    )?;
    Ok(())
}

/// A real export: alice's certificate, then her signed log, with a job both
/// nodes signed.
fn audit_seeds(
    seeds: &mut Seeds,
    dir: &Path,
    alice: &Identity,
    bob: &Identity,
    manifest: &JobManifest,
) -> Result<()> {
    let grant = "g-0000000bcdef";
    let job_id = manifest.job_id.clone();
    let events = vec![
        AuditEvent::NodeStarted {
            name: "alice".into(),
            fingerprint: alice.fingerprint().to_string(),
        },
        AuditEvent::PeerAdded {
            name: "bob".into(),
            addr: "127.0.0.1:7701".into(),
            fingerprint: bob.fingerprint().to_string(),
        },
        AuditEvent::DatasetRegistered {
            name: "customers".into(),
            sha256: "ab".repeat(32),
            rows: 3,
            distinct_ids: 3,
            policy: DataPolicy {
                grade: Grade::Important,
                personal: true,
                legal_basis: Some(LegalBasis::Consent("signed form 12".into())),
                min_group_size: 10,
            },
        },
        AuditEvent::JobRequested {
            job_id: job_id.clone(),
            role: Role::Requester,
            peer: "bob".into(),
            manifest: manifest.clone(),
        },
        AuditEvent::JobAgreed {
            job_id: job_id.clone(),
            manifest: manifest.clone(),
            requester_signature: hex::encode(manifest.sign_request(alice, 3)),
            requester_set_size: 3,
            responder_grant: grant.into(),
            responder_signature: hex::encode(manifest.sign_acceptance(bob, grant, &noisy_terms())),
            terms: noisy_terms(),
            peer_certificate: hex::encode(bob.cert().as_ref()),
        },
        AuditEvent::JobFinished {
            job_id,
            role: Role::Requester,
            release: Release {
                recipient: alice.fingerprint().to_string(),
                value: Some("2".into()),
                suppressed: None,
                mechanism: "padding".into(),
                epsilon: Some("0.5".into()),
                delta: Some("1000e-9".into()),
            },
        },
        AuditEvent::PeerRemoved { name: "bob".into() },
    ];
    let mut entries: Vec<AuditEntry> = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let last = entries.last().map(|e| (e.seq, e.hash.clone()));
        let time = format!("2026-11-24T10:00:{i:02}Z");
        entries.push(seal(alice, last, time, event));
    }
    let cert = std::fs::read_to_string(dir.join("alice").join("node.crt"))?;
    let mut export = cert.clone();
    for entry in &entries {
        export.push_str(&serde_json::to_string(entry)?);
        export.push('\n');
    }
    seeds.add("audit", "export-with-job.jsonl", &export)?;
    let mut first_two = cert;
    for entry in &entries[..2] {
        first_two.push_str(&serde_json::to_string(entry)?);
        first_two.push('\n');
    }
    seeds.add("audit", "export-short.jsonl", first_two)?;
    Ok(())
}
