//! Nodes in this process for the integration tests: real QUIC with mutual TLS
//! on 127.0.0.1, real SQLite, real files.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod attacker;
pub mod raw_peer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use unseen::node::clock::SystemClock;
use unseen::node::config::{NodeConfig, NodePaths};
use unseen::node::control::{self, ControlRequest, ControlResponse};
use unseen::node::grant::{Grant, GrantedProtocol, Quota};
use unseen::node::identity::{Fingerprint, Identity};
use unseen::node::jobs::JobReport;
use unseen::node::policy::{DataPolicy, Grade};
use unseen::node::server::{Node, RunningNode};
use unseen::node::store::{JobRecord, Store};
use unseen::node::{dataset, setup};

pub const PURPOSE: &str = "joint customer statistics";

pub struct TestNode {
    pub name: &'static str,
    pub dir: PathBuf,
    pub running: Option<RunningNode>,
    pub addr: String,
    pub fingerprint: Fingerprint,
}

impl TestNode {
    /// Creates a node directory; `configure` may edit its configuration.
    pub fn create(
        root: &Path,
        name: &'static str,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> Self {
        let dir = root.join(name);
        let fingerprint =
            setup::init_node(&dir, name, "127.0.0.1:0".parse().expect("addr")).expect("init");
        let mut config = NodeConfig::load(&dir).expect("config");
        configure(&mut config);
        config.save(&dir).expect("save config");
        Self {
            name,
            dir,
            running: None,
            addr: String::new(),
            fingerprint,
        }
    }

    /// Creates and starts a node.
    pub fn start_new(root: &Path, name: &'static str) -> Self {
        let mut node = Self::create(root, name, |_| {});
        node.start();
        node
    }

    pub fn start(&mut self) {
        let running = Node::open(&self.dir).expect("open").start().expect("start");
        self.addr = running.quic_addr.to_string();
        self.running = Some(running);
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    pub fn store(&self) -> Store {
        let identity = Arc::new(Identity::load(&NodePaths::new(&self.dir)).expect("identity"));
        Store::open(
            &NodePaths::new(&self.dir).database(),
            identity,
            Arc::new(SystemClock),
        )
        .expect("store")
    }

    pub fn cert(&self) -> rustls_pki_types::CertificateDer<'static> {
        Identity::load(&NodePaths::new(&self.dir))
            .expect("identity")
            .cert()
            .clone()
    }

    /// Registers `other` as a peer (again, if its address changed).
    pub fn register(&self, other: &TestNode) {
        let store = self.store();
        let _ = store.remove_peer(other.name);
        store
            .add_peer(other.name, &other.addr, other.fingerprint)
            .expect("register");
        self.peers_changed();
    }

    /// Tells the running node that its peers changed, as `unseen peer add`
    /// and `peer remove` do; returns how many connections it closed.
    pub fn peers_changed(&self) -> usize {
        if self.running.is_none() {
            return 0;
        }
        let dir = self.dir.clone();
        // The caller may be on the test's runtime: ask from a thread of its own.
        let answer = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let socket = NodePaths::new(&dir).control_socket();
            runtime.block_on(control::request(
                &dir,
                &socket,
                &ControlRequest::PeersChanged,
            ))
        })
        .join()
        .expect("thread");
        match answer.expect("control socket") {
            ControlResponse::PeersReloaded { closed } => closed,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Writes `ids` as a CSV file and registers it as `name`.
    pub fn dataset(&self, name: &str, ids: &[String], policy: DataPolicy) {
        let file = self.dir.join(format!("{name}.csv"));
        let mut text = String::from("id,value\n");
        for (i, id) in ids.iter().enumerate() {
            text.push_str(&format!("{id},{i}\n"));
        }
        std::fs::write(&file, text).expect("csv");
        self.store()
            .put_dataset(name, &dataset::scan(&file, "id").expect("scan"), &policy)
            .expect("dataset");
    }

    /// Writes `text` as a CSV file (ids in column "id") and registers it
    /// as `name`; returns the file.
    pub fn dataset_text(&self, name: &str, text: &str, policy: DataPolicy) -> PathBuf {
        let file = self.dir.join(format!("{name}.csv"));
        std::fs::write(&file, text).expect("csv");
        self.store()
            .put_dataset(name, &dataset::scan(&file, "id").expect("scan"), &policy)
            .expect("dataset");
        file
    }

    /// Grants `peer` the use of `dataset`; returns the grant id.
    pub fn grant(&self, peer: &str, dataset: &str, edit: impl FnOnce(&mut Grant)) -> String {
        let store = self.store();
        let now = store.now();
        let mut grant = Grant {
            id: format!(
                "g-{peer}-{dataset}-{}",
                store.grants().expect("grants").len()
            ),
            peer: peer.into(),
            dataset: dataset.into(),
            protocols: vec![GrantedProtocol::Psi, GrantedProtocol::PsiCa],
            purpose: PURPOSE.into(),
            created_at: unseen::node::clock::rfc3339(now),
            expires_at: unseen::node::clock::rfc3339(now + time::Duration::days(30)),
            revoked_at: None,
            quota: Quota {
                period_secs: 86_400,
                ..Quota::default()
            },
        };
        edit(&mut grant);
        store.add_grant(&grant).expect("grant");
        grant.id
    }

    pub fn jobs(&self) -> Vec<JobRecord> {
        self.store().jobs().expect("jobs")
    }

    pub fn job(&self, id: &str) -> JobRecord {
        self.jobs()
            .into_iter()
            .find(|j| j.id == id)
            .unwrap_or_else(|| panic!("{} has no job {id}", self.name))
    }
}

pub fn general() -> DataPolicy {
    DataPolicy {
        grade: Grade::General,
        personal: false,
        legal_basis: None,
        min_group_size: 10,
    }
}

pub fn ids(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("c{i}")).collect()
}

/// A job request as the CLI would send it.
pub struct Job<'a> {
    pub peer: &'a str,
    pub dataset: &'a str,
    pub peer_dataset: &'a str,
    pub cardinality_only: bool,
    pub purpose: &'a str,
    pub retry: Option<unseen::protocol::JobId>,
    pub out: Option<PathBuf>,
}

impl<'a> Job<'a> {
    pub fn psi_ca(peer: &'a str) -> Self {
        Self {
            peer,
            dataset: "customers",
            peer_dataset: "customers",
            cardinality_only: true,
            purpose: PURPOSE,
            retry: None,
            out: None,
        }
    }

    pub fn psi(peer: &'a str) -> Self {
        Self {
            cardinality_only: false,
            ..Self::psi_ca(peer)
        }
    }
}

pub async fn run(from: &TestNode, job: Job<'_>) -> Result<JobReport, String> {
    let request = ControlRequest::RunPsi {
        peer: job.peer.into(),
        dataset: job.dataset.into(),
        peer_dataset: job.peer_dataset.into(),
        cardinality_only: job.cardinality_only,
        purpose: job.purpose.into(),
        retry: job.retry,
        out: job.out,
    };
    let socket = NodePaths::new(&from.dir).control_socket();
    match control::request(&from.dir, &socket, &request)
        .await
        .expect("control socket")
    {
        ControlResponse::Job(report) => Ok(*report),
        ControlResponse::Error { message } => Err(message),
        other => panic!("unexpected {other:?}"),
    }
}

/// Runs an intersection-sum job from `from` as the CLI would, on the
/// peer's `peer_dataset` with our "customers".
pub async fn run_isum(
    from: &TestNode,
    peer: &str,
    peer_dataset: &str,
    sum: unseen::node::manifest::IsumRequest,
) -> Result<unseen::node::jobs::isum::IsumReport, String> {
    let request = ControlRequest::RunIntersectionSum {
        peer: peer.into(),
        dataset: "customers".into(),
        peer_dataset: peer_dataset.into(),
        purpose: PURPOSE.into(),
        sum,
    };
    let socket = NodePaths::new(&from.dir).control_socket();
    match control::request(&from.dir, &socket, &request)
        .await
        .expect("control socket")
    {
        ControlResponse::IntersectionSum(report) => Ok(*report),
        ControlResponse::Error { message } => Err(message),
        other => panic!("unexpected {other:?}"),
    }
}

/// Two started nodes that know each other, each with a general dataset
/// "customers" and a grant letting the other use it for PSI and PSI-CA.
pub fn pair(root: &Path, alice_ids: &[String], bob_ids: &[String]) -> (TestNode, TestNode) {
    let alice = TestNode::start_new(root, "alice");
    let bob = TestNode::start_new(root, "bob");
    alice.register(&bob);
    bob.register(&alice);
    alice.dataset("customers", alice_ids, general());
    bob.dataset("customers", bob_ids, general());
    alice.grant("bob", "customers", |_| {});
    bob.grant("alice", "customers", |_| {});
    (alice, bob)
}

pub async fn stop_all(nodes: &mut [&mut TestNode]) {
    for node in nodes {
        node.stop().await;
    }
}
