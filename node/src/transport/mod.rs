//! QUIC with mutual TLS between registered peers: the handshake's pinned
//! certificates ([`tls`]), the per-peer gate held in memory ([`gate`]), and
//! the frames ([`frame`]) and messages ([`wire`]) jobs exchange.

pub mod frame;
pub mod gate;
pub mod tls;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::identity::Identity;

/// The ALPN protocol name both sides must offer.
pub const ALPN: &[u8] = b"unseen/1";

/// The server name clients put in the TLS handshake. Peers are identified by
/// their certificate's fingerprint, never by name, so this is a constant.
pub const SERVER_NAME: &str = "peer.unseen";

/// UDP socket buffer size. The OS default drops thousands of packets per GiB
/// on loopback, which QUIC then has to retransmit.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Binds the node's QUIC endpoint: it accepts registered peers and dials them.
pub fn bind_endpoint(
    config: &NodeConfig,
    identity: &Identity,
    peers: Arc<dyn tls::PeerRegistry>,
) -> Result<quinn::Endpoint, NodeError> {
    let server_config = tls::server_config(config, identity, peers)?;
    bind(config.listen, Some(server_config))
}

/// Binds a client-only endpoint on `addr`.
pub fn bind_client(addr: SocketAddr) -> Result<quinn::Endpoint, NodeError> {
    bind(addr, None)
}

fn bind(
    addr: SocketAddr,
    server_config: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, NodeError> {
    let io = |e| NodeError::Config {
        path: "unseen.toml".into(),
        message: format!("cannot listen on {addr}: {e}; choose a free address with `listen`"),
    };
    let socket = std::net::UdpSocket::bind(addr).map_err(io)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into()).map_err(io)?;
    // Best effort: a smaller buffer only costs retransmissions.
    let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER_BYTES);
    let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER_BYTES);
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server_config,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(io)
}
