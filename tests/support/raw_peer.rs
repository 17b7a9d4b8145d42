//! A registered peer that speaks raw frames: bytes that lie about their
//! length, payloads that are not messages.

use std::path::Path;

use unseen::node::transport::frame;
use unseen::node::wire::{self, PeerMessage};

use super::TestNode;
use super::attacker::HandRequester;

/// A registered peer that writes raw frames.
pub struct RawPeer(HandRequester);

impl RawPeer {
    pub async fn connect(root: &Path, server: &TestNode) -> Self {
        Self(HandRequester::connect(root, "raw", "raw", server).await)
    }

    /// Sends raw bytes on a new stream and returns the node's first answer.
    pub async fn exchange(&self, bytes: &[u8]) -> PeerMessage {
        let mut stream = self.0.open().await;
        stream.send_raw(bytes).await;
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            frame::read_frame(&mut stream.recv, 1 << 20),
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
