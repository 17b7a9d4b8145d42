//! Mutual TLS 1.3 pinned to registered certificates.
//!
//! Neither side trusts a certificate authority. A server accepts a client
//! only if the client's certificate fingerprint belongs to a registered peer;
//! a client accepts a server only if it presents exactly the fingerprint the
//! client registered for the peer it dials. Both checks run inside the TLS
//! handshake, so an unknown party is refused before any protocol byte.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::ALPN;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::identity::{Fingerprint, Identity};

/// Answers whether a certificate fingerprint belongs to a registered peer.
/// Consulted at every handshake, so a peer added or removed while the node
/// serves takes effect at its next connection.
pub trait PeerRegistry: Send + Sync + std::fmt::Debug {
    /// Whether `fingerprint` is a registered peer's.
    fn is_registered(&self, fingerprint: &Fingerprint) -> bool;
}

/// Unregistered certificates logged per minute.
static UNREGISTERED_LOG: crate::log_limit::LogLimit =
    crate::log_limit::LogLimit::new(5, std::time::Duration::from_secs(60));

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(e: rustls::Error) -> NodeError {
    NodeError::Config {
        path: "node.crt".into(),
        message: format!("cannot use the node's certificate and key for TLS: {e}"),
    }
}

fn transport_config(config: &NodeConfig) -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    let window = config.network.stream_window_bytes;
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout())
        .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::from_u32(30_000)));
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(config.idle_timeout() / 3))
        // One stream per job; a peer gets a handful at once, not thousands.
        .max_concurrent_bidi_streams(16u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window(window.into())
        .receive_window(window.saturating_mul(2).into())
        .send_window(16 << 20);
    Arc::new(transport)
}

/// The server side: demands a client certificate from a registered peer.
pub fn server_config(
    config: &NodeConfig,
    identity: &Identity,
    peers: Arc<dyn PeerRegistry>,
) -> Result<quinn::ServerConfig, NodeError> {
    let provider = provider();
    let verifier = Arc::new(RegisteredClients {
        peers,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert().clone()], identity.private_key())
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // No session resumption: a resumed TLS 1.3 session skips the client
    // certificate, so the pinned check would not run on that connection.
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    tls.max_early_data_size = 0;
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| NodeError::Config {
            path: "unseen.toml".into(),
            message: format!("cannot build the QUIC server configuration: {e}"),
        })?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport_config(config));
    Ok(server)
}

/// The client side, for dialling one peer: the server must present exactly
/// `expected`.
pub fn client_config(
    config: &NodeConfig,
    identity: &Identity,
    expected: Fingerprint,
) -> Result<quinn::ClientConfig, NodeError> {
    let provider = provider();
    let verifier = Arc::new(PinnedServer {
        expected,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert().clone()], identity.private_key())
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| NodeError::Config {
            path: "unseen.toml".into(),
            message: format!("cannot build the QUIC client configuration: {e}"),
        })?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport_config(config));
    Ok(client)
}

/// The certificate the peer presented on an established connection.
pub fn peer_certificate(connection: &quinn::Connection) -> Option<CertificateDer<'static>> {
    // quinn hands back rustls's peer certificates as `Box<dyn Any>`.
    let identity = connection.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().cloned()
}

/// The fingerprint of the peer on an established connection.
pub fn peer_fingerprint(connection: &quinn::Connection) -> Option<Fingerprint> {
    peer_certificate(connection).map(|cert| Fingerprint::of(&cert))
}

/// The handshake-signature methods both verifiers share: TLS 1.3 only, with
/// the provider's algorithms. Only the certificate checks differ.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls12NotOffered,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

#[derive(Debug)]
struct RegisteredClients {
    peers: Arc<dyn PeerRegistry>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RegisteredClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        if self.peers.is_registered(&fingerprint) {
            Ok(ClientCertVerified::assertion())
        } else {
            // Anyone can make us log this: a few lines a minute, then a count.
            if let Some(suppressed) = UNREGISTERED_LOG.allow(std::time::Instant::now()) {
                tracing::warn!(%fingerprint, suppressed, "refused a TLS handshake: the client certificate is not a registered peer's");
            }
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    handshake_signatures!();
}

#[derive(Debug)]
struct PinnedServer {
    expected: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        if fingerprint == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(
                %fingerprint,
                expected = %self.expected,
                "refused a TLS handshake: the server's certificate is not the registered one"
            );
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    handshake_signatures!();
}
