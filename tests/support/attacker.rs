//! A registered peer that plays the requester by hand, on the protocol crate,
//! and stops wherever an attacker would: it signs its own manifests, speaks
//! frames directly, and never goes through its own acceptance boundary.

use std::path::Path;

use unseen::node::config::{NodeConfig, NodePaths};
use unseen::node::identity::Identity;
use unseen::node::manifest::{JobManifest, Party};
use unseen::node::transport::{self, frame, tls};
use unseen::node::wire::{self, JobAcceptance, JobRequest, PeerMessage, ProtocolRequest};
use unseen::protocol::ecdh_psi::{Mode, Padding, PsiOutput, Requester, RequesterState, Session};
use unseen::protocol::{IdSet, JobId, Progress};

use super::{PURPOSE, TestNode};

/// How long the attacker waits for any one answer before the test fails.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// A peer registered at `server` under `name`, with a key of its own.
pub struct HandRequester {
    pub name: String,
    pub identity: Identity,
    pub connection: quinn::Connection,
    client: quinn::ClientConfig,
    server_addr: std::net::SocketAddr,
    endpoint: quinn::Endpoint,
}

/// One job's stream, as raw frames.
pub struct RawStream {
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
}

impl HandRequester {
    /// Creates a node directory `name` under `root` for the attacker's key,
    /// registers it at `server` under `registered_as`, and connects.
    pub async fn connect(
        root: &Path,
        name: &'static str,
        registered_as: &str,
        server: &TestNode,
    ) -> Self {
        Self::connect_with(root, name, registered_as, server, |_| {}).await
    }

    /// As [`Self::connect`], with the attacker's own configuration edited
    /// first (its QUIC windows, for one).
    pub async fn connect_with(
        root: &Path,
        name: &'static str,
        registered_as: &str,
        server: &TestNode,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        let own = TestNode::create(root, name, configure);
        let identity = Identity::load(&NodePaths::new(&own.dir)).expect("identity");
        server
            .store()
            .add_peer(registered_as, "127.0.0.1:9", identity.fingerprint())
            .expect("register the attacker");
        server.peers_changed();
        Self::unregistered(&own, registered_as, identity, server)
            .await
            .expect("handshake")
    }

    /// Connects with `own`'s key, registered or not.
    pub async fn unregistered(
        own: &TestNode,
        name: &str,
        identity: Identity,
        server: &TestNode,
    ) -> Result<Self, quinn::ConnectionError> {
        let config = NodeConfig::load(&own.dir).expect("config");
        let client = tls::client_config(&config, &identity, server.fingerprint).expect("client");
        let endpoint = transport::bind_client("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let server_addr = server.addr.parse().expect("addr");
        let connection = endpoint
            .connect_with(client.clone(), server_addr, transport::SERVER_NAME)
            .expect("connect")
            .await?;
        Ok(Self {
            name: name.to_string(),
            identity,
            connection,
            client,
            server_addr,
            endpoint,
        })
    }

    /// One more connection with the same key, from the same endpoint.
    pub async fn another_connection(&self) -> Result<quinn::Connection, quinn::ConnectionError> {
        self.endpoint
            .connect_with(
                self.client.clone(),
                self.server_addr,
                transport::SERVER_NAME,
            )
            .expect("connect")
            .await
    }

    /// A job request for `server`'s `dataset`, signed for `set_size` ids.
    pub fn request(
        &self,
        server: &TestNode,
        job_id: JobId,
        mode: Mode,
        dataset: &str,
        set_size: u64,
    ) -> JobRequest {
        let own = self.identity.fingerprint().to_string();
        let manifest = JobManifest {
            job_id: job_id.to_string(),
            requester: Party {
                name: self.name.clone(),
                fingerprint: own.clone(),
            },
            responder: Party {
                name: server.name.into(),
                fingerprint: server.fingerprint.to_string(),
            },
            protocol: ProtocolRequest::EcdhPsi(mode),
            requester_dataset: "candidates".into(),
            responder_dataset: dataset.into(),
            purpose: PURPOSE.into(),
            result_recipients: vec![own],
            requester_grant: String::new(),
        };
        JobRequest {
            requester_signature: manifest.sign_request(&self.identity, set_size),
            requester_set_size: set_size,
            manifest,
        }
    }

    /// Opens a stream for one job, or says why the connection cannot.
    pub async fn open_checked(&self) -> Result<RawStream, quinn::ConnectionError> {
        let (send, recv) = self.connection.open_bi().await?;
        Ok(RawStream { send, recv })
    }

    /// Opens a stream for one job.
    pub async fn open(&self) -> RawStream {
        let (send, recv) = self.connection.open_bi().await.expect("stream");
        RawStream { send, recv }
    }

    /// Sends `request` on a new stream and returns the stream and the
    /// node's answer (accepted or refused).
    pub async fn ask(&self, request: &JobRequest) -> (RawStream, PeerMessage) {
        let mut stream = self.open().await;
        // A node that refuses unread stops the stream as soon as it sees it,
        // which can fail the second half of this write; its answer is
        // already on the way, so read it either way.
        let _ = frame::write_frame(
            &mut stream.send,
            &wire::encode(&PeerMessage::JobRequest(request.clone())),
        )
        .await;
        let answer = stream.recv().await.expect("an answer to the request");
        (stream, answer)
    }
}

impl RawStream {
    /// Writes bytes as they are: a frame cut short, a length that lies.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.send.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, message: &PeerMessage) {
        frame::write_frame(&mut self.send, &wire::encode(message))
            .await
            .expect("write frame");
    }

    /// The next message, or `None` when the node closed the stream.
    pub async fn recv(&mut self) -> Option<PeerMessage> {
        let frame = tokio::time::timeout(ANSWER_WITHIN, frame::read_frame(&mut self.recv, 1 << 22))
            .await
            .expect("an answer in time")
            .expect("a whole frame")?;
        Some(wire::decode(&frame).expect("a decodable message"))
    }

    /// Runs the requester's side of ECDH-PSI to its output, leaving the
    /// stream open: the attacker decides what to send next.
    pub async fn run_protocol(
        &mut self,
        job_id: JobId,
        mode: Mode,
        ids: &IdSet,
        acceptance: &JobAcceptance,
    ) -> PsiOutput {
        let mut session = Session::new(job_id, mode, 1 << 24);
        if let Some(noise) = acceptance.terms.noise {
            session.padding = Padding::Requester {
                offset: noise.offset,
                total: noise.total,
            };
        }
        let (state, opening) = Requester::start(session, ids, &mut rand_core::OsRng);
        for message in opening {
            self.send(&PeerMessage::Psi(message)).await;
        }
        let mut state = RequesterState::from(state);
        loop {
            let message = match self.recv().await {
                Some(PeerMessage::Psi(message)) => message,
                other => panic!("expected a PSI message, got {other:?}"),
            };
            let step = state.handle(message).expect("the honest node's messages");
            for message in step.send {
                self.send(&PeerMessage::Psi(message)).await;
            }
            match step.next {
                Progress::Continue(next) => state = next,
                Progress::Done(output) => return output,
            }
        }
    }
}
