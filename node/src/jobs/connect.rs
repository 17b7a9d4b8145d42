//! Opening a job's stream to a registered peer: resolve, connect with the
//! peer's pinned certificate, open a bidirectional stream.

use std::sync::Arc;

use super::{JobError, JobStreams, explain_close};
use crate::config::NodeConfig;
use crate::identity::{Fingerprint, Identity};
use crate::store::Peer;
use crate::transport::{self, tls};

/// What a node needs to reach its peers.
#[derive(Debug, Clone)]
pub struct Connector {
    /// The node's QUIC endpoint (also its listener).
    pub endpoint: quinn::Endpoint,
    /// The node's configuration: TLS settings and timeouts.
    pub config: Arc<NodeConfig>,
    /// The node's identity, presented as the client certificate.
    pub identity: Arc<Identity>,
}

impl Connector {
    /// Connects to `peer` and opens one stream for a job.
    pub async fn open(&self, peer: &Peer) -> Result<JobStreams, JobError> {
        let connect_error = |reason: String| JobError::Connect {
            peer: peer.name.clone(),
            addr: peer.addr.clone(),
            reason,
        };
        let addr = tokio::net::lookup_host(&peer.addr)
            .await
            .map_err(|e| connect_error(format!("cannot resolve the address: {e}")))?
            .next()
            .ok_or_else(|| connect_error("the address resolves to nothing".into()))?;
        let fingerprint =
            Fingerprint::parse(&peer.fingerprint).map_err(|e| connect_error(e.to_string()))?;
        let client = tls::client_config(&self.config, &self.identity, fingerprint)
            .map_err(|e| connect_error(e.to_string()))?;
        let connecting = self
            .endpoint
            .connect_with(client, addr, transport::SERVER_NAME)
            .map_err(|e| connect_error(e.to_string()))?;
        let timeout = self.config.connect_timeout();
        let connection = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| {
                connect_error(format!(
                    "no answer within {timeout:?}; is the peer's node serving?"
                ))
            })?
            .map_err(|e| connect_error(explain_close(&e)))?;
        let (send, recv) = connection
            .open_bi()
            .await
            .map_err(|e| connect_error(explain_close(&e)))?;
        Ok(JobStreams {
            connection,
            send,
            recv,
        })
    }
}
