//! A registered peer that speaks raw frames: the attacker in the hostile-peer
//! tests, built by hand on the node's transport and the protocol crate.

use std::path::Path;

use unseen::node::config::{NodeConfig, NodePaths};
use unseen::node::identity::Identity;
use unseen::node::transport::{self, frame, tls};
use unseen::node::wire::{self, PeerMessage};

use super::TestNode;

/// A registered peer that writes raw frames.
pub struct RawPeer {
    pub connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl RawPeer {
    pub async fn connect(root: &Path, server: &TestNode) -> Self {
        let raw = TestNode::create(root, "raw", |_| {});
        let identity = Identity::load(&NodePaths::new(&raw.dir)).expect("identity");
        server
            .store()
            .add_peer("raw", "127.0.0.1:9", identity.fingerprint())
            .expect("register raw");
        server.peers_changed();
        let config = NodeConfig::load(&raw.dir).expect("config");
        let client = tls::client_config(&config, &identity, server.fingerprint).expect("client");
        let endpoint = transport::bind_client("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let connection = endpoint
            .connect_with(
                client,
                server.addr.parse().expect("addr"),
                transport::SERVER_NAME,
            )
            .expect("connect")
            .await
            .expect("handshake");
        Self {
            connection,
            _endpoint: endpoint,
        }
    }

    /// Sends raw bytes on a new stream and returns the node's first answer.
    pub async fn exchange(&self, bytes: &[u8]) -> PeerMessage {
        let (mut send, mut recv) = self.connection.open_bi().await.expect("stream");
        send.write_all(bytes).await.expect("write");
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            frame::read_frame(&mut recv, 1 << 20),
        )
        .await
        .expect("answer in time")
        .expect("frame")
        .expect("not end of stream");
        wire::decode(&answer).expect("decodable answer")
    }
}

pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}
