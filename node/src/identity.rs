//! The node's identity: an Ed25519 key pair and a self-signed certificate.
//!
//! Peers do not trust any certificate authority. Each node registers its
//! peers by the SHA-256 fingerprint of their certificates, checked out of band
//! (`unseen id` on one side, `unseen peer add` on the other).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::NodePaths;
use crate::error::NodeError;

/// SHA-256 of a certificate's DER encoding: how nodes name each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        Self(Sha256::digest(cert.as_ref()).into())
    }

    /// Parses 64 hex digits; colons and spaces between them are ignored, so a
    /// fingerprint copied in `AB:CD:…` form also works.
    pub fn parse(text: &str) -> Result<Self, NodeError> {
        let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits.to_ascii_lowercase(), &mut bytes).map_err(|_| {
            NodeError::BadFingerprint {
                text: text.to_string(),
            }
        })?;
        Ok(Self(bytes))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The node's key pair and certificate, loaded from the node directory.
pub struct Identity {
    cert: CertificateDer<'static>,
    /// PKCS#8 DER of the private key, wiped on drop.
    key_pkcs8: Zeroizing<Vec<u8>>,
    fingerprint: Fingerprint,
}

impl Identity {
    /// Makes a fresh Ed25519 key pair and a self-signed certificate naming
    /// the node, and writes them into the node directory: the key with mode
    /// 0600 (never overwriting an existing key), the certificate beside it.
    pub fn create(name: &str, paths: &NodePaths) -> Result<Self, NodeError> {
        let fail = |e: rcgen::Error| NodeError::Identity {
            path: paths.cert(),
            message: format!("could not generate a certificate: {e}"),
        };
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(fail)?;
        let mut params =
            rcgen::CertificateParams::new(vec![format!("{name}.unseen")]).map_err(fail)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).map_err(fail)?;

        let key_path = paths.key();
        let key_pem = Zeroizing::new(key.serialize_pem());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(|e| NodeError::io(&key_path, e))?;
        file.write_all(key_pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| NodeError::io(&key_path, e))?;
        let cert_path = paths.cert();
        std::fs::write(&cert_path, cert.pem()).map_err(|e| NodeError::io(&cert_path, e))?;

        let cert = cert.der().clone();
        Ok(Self {
            fingerprint: Fingerprint::of(&cert),
            cert,
            key_pkcs8: Zeroizing::new(key.serialize_der()),
        })
    }

    /// Loads the key and certificate, refusing a key file others can read.
    pub fn load(paths: &NodePaths) -> Result<Self, NodeError> {
        let key_path = paths.key();
        let mode = std::fs::metadata(&key_path)
            .map_err(|e| NodeError::io(&key_path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(NodeError::Identity {
                path: key_path.clone(),
                message: format!(
                    "the private key is readable by others (mode {:o}); run `chmod 600 {}`",
                    mode & 0o777,
                    key_path.display()
                ),
            });
        }
        let bad = |path: &Path, e: rustls_pki_types::pem::Error| NodeError::Identity {
            path: path.to_path_buf(),
            message: format!("not a PEM file this node wrote: {e}"),
        };
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| bad(&key_path, e))?;
        let PrivateKeyDer::Pkcs8(key) = key else {
            return Err(NodeError::Identity {
                path: key_path,
                message: "expected a PKCS#8 private key".into(),
            });
        };
        let cert_path = paths.cert();
        let cert = CertificateDer::from_pem_file(&cert_path).map_err(|e| bad(&cert_path, e))?;
        let identity = Self {
            fingerprint: Fingerprint::of(&cert),
            cert,
            key_pkcs8: Zeroizing::new(key.secret_pkcs8_der().to_vec()),
        };
        // The key must be Ed25519 and match the certificate, or every
        // signature the node makes would be worthless.
        let probe = identity.sign(b"unseen-key-check", b"");
        verify_signature(identity.cert(), b"unseen-key-check", b"", &probe).map_err(|_| {
            NodeError::Identity {
                path: key_path,
                message: "the private key is not the Ed25519 key of node.crt; restore the pair `unseen init` wrote".into(),
            }
        })?;
        Ok(identity)
    }

    /// The certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The certificate, DER.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Signs `message` under a context string, with the node's Ed25519 key.
    /// Contexts keep a signature made for one purpose from being valid for
    /// another.
    pub fn sign(&self, context: &[u8], message: &[u8]) -> Vec<u8> {
        let key = PrivatePkcs8KeyDer::from(self.key_pkcs8.as_slice());
        let signed = rustls::crypto::ring::sign::any_eddsa_type(&key)
            .ok()
            .and_then(|key| key.choose_scheme(&[rustls::SignatureScheme::ED25519]))
            .and_then(|signer| signer.sign(&contextual(context, message)).ok());
        // The key was checked to be Ed25519 when the node loaded it.
        signed.unwrap_or_default()
    }

    /// A copy of the private key for the TLS stack.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.to_vec()))
    }
}

fn contextual(context: &[u8], message: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + context.len() + message.len());
    bytes.extend_from_slice(&(context.len() as u64).to_be_bytes());
    bytes.extend_from_slice(context);
    bytes.extend_from_slice(message);
    bytes
}

/// A signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify against the certificate {0}")]
pub struct BadSignature(pub Fingerprint);

/// Checks a signature made by [`Identity::sign`] against the signer's
/// certificate, with nothing but the certificate.
pub fn verify_signature(
    cert: &CertificateDer<'_>,
    context: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), BadSignature> {
    let fail = || BadSignature(Fingerprint::of(cert));
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|_| fail())?;
    parsed
        .verify_signature(
            webpki::ring::ED25519,
            &contextual(context, message),
            signature,
        )
        .map_err(|_| fail())
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({}, key redacted)", self.fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_identity_loads_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = NodePaths::new(dir.path());
        let identity = Identity::create("alice", &paths).expect("create");
        let mode = std::fs::metadata(paths.key())
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = Identity::load(&paths).expect("load");
        assert_eq!(loaded.fingerprint(), identity.fingerprint());
        assert_eq!(loaded.cert(), identity.cert());
        assert_eq!(*loaded.key_pkcs8, *identity.key_pkcs8);
    }

    #[test]
    fn world_readable_key_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = NodePaths::new(dir.path());
        Identity::create("alice", &paths).expect("create");
        std::fs::set_permissions(paths.key(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let err = Identity::load(&paths).expect_err("must refuse");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn fingerprint_parses_plain_and_colon_forms() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(Fingerprint::parse(&fp.to_string()).expect("plain"), fp);
        let colons = fp
            .to_string()
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(Fingerprint::parse(&colons).expect("colons"), fp);
        assert!(Fingerprint::parse("abc").is_err());
    }

    #[test]
    fn signatures_verify_with_the_certificate_alone() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let alice = Identity::create("alice", &NodePaths::new(a.path())).expect("alice");
        let bob = Identity::create("bob", &NodePaths::new(b.path())).expect("bob");
        let signature = alice.sign(b"ctx", b"manifest");
        assert_eq!(signature.len(), 64);
        verify_signature(alice.cert(), b"ctx", b"manifest", &signature).expect("valid");
        assert!(verify_signature(alice.cert(), b"ctx", b"manifest!", &signature).is_err());
        assert!(verify_signature(alice.cert(), b"other", b"manifest", &signature).is_err());
        assert!(verify_signature(bob.cert(), b"ctx", b"manifest", &signature).is_err());
    }

    #[test]
    fn mismatched_key_and_certificate_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dir");
            Identity::create(sub, &NodePaths::new(dir.path().join(sub).as_path())).expect("create");
        }
        let a = NodePaths::new(dir.path().join("a").as_path());
        let b = NodePaths::new(dir.path().join("b").as_path());
        std::fs::copy(b.cert(), a.cert()).expect("swap certificate");
        let err = Identity::load(&a).expect_err("mismatch");
        assert!(err.to_string().contains("not the Ed25519 key"), "{err}");
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = Identity::create("alice", &NodePaths::new(dir.path())).expect("create");
        let printed = format!("{identity:?}");
        assert!(printed.contains("redacted"));
        assert!(!printed.contains(&hex::encode(&*identity.key_pkcs8)));
    }
}
