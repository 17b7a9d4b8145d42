//! A serving node: the QUIC listener for peers and the control socket for the
//! local CLI, sharing one store and one acceptance boundary.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::watch;
use unseen_protocol::ecdh_psi::Mode;

use crate::audit::AuditEvent;
use crate::boundary::{Accepted, Boundary, OutgoingJob};
use crate::clock::SystemClock;
use crate::config::{NodeConfig, NodePaths};
use crate::control::{self, ControlRequest, ControlResponse};
use crate::counters::{CountersSnapshot, NodeCounters, Total};
use crate::error::NodeError;
use crate::gate::{CLOSE_REFUSED, Gate, GateRefusal};
use crate::identity::{Fingerprint, Identity};
use crate::jobs::connect::Connector;
use crate::jobs::isum::IsumReport;
use crate::jobs::psi::{self as job, Served};
use crate::jobs::stats::{Registry, StatsNode, StatsReport, StatsSpec};
use crate::jobs::{JobError, JobReport, JobStreams, StreamLimits};
use crate::log_limit::LogLimit;
use crate::store::Store;
use crate::transport::{self, tls};
use crate::wire::{JobRequest, ProtocolRequest};

/// Everything a serving node holds.
#[derive(Debug)]
pub struct Node {
    paths: NodePaths,
    config: NodeConfig,
    identity: Arc<Identity>,
    store: Arc<Store>,
    boundary: Boundary,
    endpoint: quinn::Endpoint,
    gate: Arc<Gate>,
    counters: Arc<NodeCounters>,
    stats: StatsNode,
    /// Held, locked, while the node runs; the OS releases it if it dies.
    _serve_lock: std::fs::File,
}

/// A peer can make the node log on demand by failing handshakes; a few lines
/// a minute say so, the rest are counted.
static HANDSHAKE_LOG: LogLimit = LogLimit::new(5, std::time::Duration::from_secs(60));

/// A node started in the background; stops when [`RunningNode::shutdown`] is
/// called or the value is dropped.
#[derive(Debug)]
pub struct RunningNode {
    /// Where the node accepts peers.
    pub quic_addr: SocketAddr,
    /// The node's certificate fingerprint.
    pub fingerprint: Fingerprint,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<NodeCounters>,
}

impl RunningNode {
    /// What the node holds and has turned away, now.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    /// Stops accepting, lets running jobs end their streams, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Node {
    /// Opens the node directory and binds the QUIC listener.
    pub fn open(dir: &Path) -> Result<Self, NodeError> {
        let config = NodeConfig::load(dir)?;
        let paths = NodePaths::new(dir);
        // First, before any record is read or written: a second process on
        // this directory would mark the first one's running jobs interrupted.
        let serve_lock = lock_directory(&paths)?;
        let identity = Arc::new(Identity::load(&paths)?);
        let store = Arc::new(Store::open(
            &paths.database(),
            identity.clone(),
            Arc::new(SystemClock),
        )?);
        let interrupted = store.mark_interrupted()?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "jobs left running by the previous process are marked interrupted"
            );
        }
        let counters = Arc::new(NodeCounters::default());
        // The handshake checks peers in memory, never under the store's lock.
        let gate = Arc::new(Gate::load(&store, config.limits.clone(), counters.clone())?);
        let endpoint = transport::bind_endpoint(&config, &identity, gate.clone())?;
        store.audit(AuditEvent::NodeStarted {
            name: config.name.clone(),
            fingerprint: identity.fingerprint().to_string(),
        })?;
        let boundary = Boundary::new(
            store.clone(),
            identity.clone(),
            config.name.clone(),
            config.limits.max_peer_set_size,
        );
        let stats = StatsNode {
            name: config.name.clone(),
            identity: identity.clone(),
            store: store.clone(),
            boundary: boundary.clone(),
            connector: Connector {
                endpoint: endpoint.clone(),
                config: Arc::new(config.clone()),
                identity: identity.clone(),
            },
            limits: stream_limits(&config, &counters),
            registry: Arc::new(Registry::default()),
        };
        Ok(Self {
            stats,
            boundary,
            paths,
            config,
            identity,
            store,
            endpoint,
            gate,
            counters,
            _serve_lock: serve_lock,
        })
    }

    /// The node's certificate fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// The address the QUIC listener is bound to.
    pub fn quic_addr(&self) -> Result<SocketAddr, NodeError> {
        self.endpoint
            .local_addr()
            .map_err(|e| NodeError::io(Path::new("udp socket"), e))
    }

    /// Starts serving in the background.
    pub fn start(self) -> Result<RunningNode, NodeError> {
        let quic_addr = self.quic_addr()?;
        let fingerprint = self.identity.fingerprint();
        let (control, control_uid) = bind_control(&self.paths)?;
        let (stop, stopped) = watch::channel(false);
        let counters = self.counters.clone();
        let node = Arc::new(self);
        let task = tokio::spawn(node.run(control, control_uid, stopped));
        Ok(RunningNode {
            quic_addr,
            fingerprint,
            stop,
            task,
            counters,
        })
    }

    async fn run(
        self: Arc<Self>,
        control: UnixListener,
        control_uid: u32,
        mut stopped: watch::Receiver<bool>,
    ) {
        tracing::info!(name = %self.config.name, addr = ?self.endpoint.local_addr().ok(), "serving");
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => {
                        let node = self.clone();
                        tokio::spawn(async move { node.serve_connection(incoming).await });
                    }
                    None => break,
                },
                accepted = control.accept() => match accepted {
                    Ok((mut stream, _)) => {
                        if let Err(message) = control::check_caller(&stream, control_uid) {
                            tracing::warn!("refused a control connection: {message}");
                            tokio::spawn(async move {
                                control::write_response(&mut stream, &ControlResponse::Error { message }).await;
                            });
                            continue;
                        }
                        let node = self.clone();
                        tokio::spawn(async move { node.serve_control(stream).await });
                    }
                    Err(e) => tracing::warn!("control socket accept failed: {e}"),
                },
            }
        }
        self.endpoint.close(0u32.into(), b"node shutting down");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.endpoint.wait_idle())
            .await;
        let _ = std::fs::remove_file(self.paths.control_socket());
        tracing::info!("stopped");
    }

    fn limits(&self) -> StreamLimits {
        stream_limits(&self.config, &self.counters)
    }

    async fn serve_connection(self: Arc<Self>, incoming: quinn::Incoming) {
        let remote = incoming.remote_address();
        let connection = match incoming.await {
            Ok(connection) => connection,
            Err(e) => {
                self.counters.count(Total::HandshakesRefused);
                if let Some(suppressed) = HANDSHAKE_LOG.allow(std::time::Instant::now()) {
                    tracing::warn!(%remote, suppressed, "refused a connection during the TLS handshake: {e}");
                }
                return;
            }
        };
        let Some(fingerprint) = tls::peer_fingerprint(&connection) else {
            connection.close(CLOSE_REFUSED.into(), b"no client certificate");
            return;
        };
        let _slot = match self.gate.open_connection(fingerprint, &connection) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::debug!(%remote, "closed a connection at once: {refusal}");
                connection.close(CLOSE_REFUSED.into(), refusal.to_string().as_bytes());
                return;
            }
        };
        tracing::debug!(%remote, "peer connected");
        while let Ok((send, recv)) = connection.accept_bi().await {
            let streams = JobStreams {
                connection: connection.clone(),
                send,
                recv,
            };
            // Each stream is checked again, in memory: a peer removed since
            // the handshake gets nothing more.
            let (slot, peer) = match self.gate.open_stream(fingerprint) {
                Ok(slot) => (slot, self.gate.peer(&fingerprint)),
                Err(GateRefusal::NotRegistered) => {
                    connection.close(CLOSE_REFUSED.into(), b"the peer was removed");
                    break;
                }
                Err(refusal) => {
                    tokio::spawn(job::refuse_stream(streams, refusal.to_string()));
                    continue;
                }
            };
            let Some(peer) = peer else { continue };
            let node = self.clone();
            tokio::spawn(async move {
                let served = crate::jobs::serve_stream(
                    &node.boundary,
                    &node.stats,
                    peer,
                    streams,
                    node.limits(),
                )
                .await;
                if served == Served::Refused {
                    node.gate.note_refusal(fingerprint);
                }
                drop(slot);
            });
        }
    }

    async fn serve_control(self: Arc<Self>, mut stream: tokio::net::UnixStream) {
        let request = control::read_request(&mut stream).await;
        if let Ok(ControlRequest::RunStats { spec }) = request {
            return self.serve_stats(stream, *spec).await;
        }
        let response = match request {
            Err(message) => ControlResponse::Error { message },
            Ok(ControlRequest::Ping) => ControlResponse::Pong {
                name: self.config.name.clone(),
                listen: self
                    .endpoint
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                counters: self.counters.snapshot(),
            },
            Ok(ControlRequest::PeersChanged) => match self.gate.reload(&self.store) {
                Ok(closed) => ControlResponse::PeersReloaded { closed },
                Err(e) => ControlResponse::Error {
                    message: e.to_string(),
                },
            },
            Ok(ControlRequest::RunStats { .. }) => unreachable!("answered above"),
            Ok(ControlRequest::RunPsi {
                peer,
                dataset,
                peer_dataset,
                cardinality_only,
                purpose,
                retry,
                out,
            }) => {
                let mode = if cardinality_only {
                    Mode::Cardinality
                } else {
                    Mode::Membership
                };
                let job = OutgoingJob {
                    retry,
                    peer,
                    local_dataset: dataset,
                    peer_dataset,
                    protocol: ProtocolRequest::EcdhPsi(mode),
                    purpose,
                };
                match self.run_job(job, out).await {
                    Ok(report) => ControlResponse::Job(Box::new(report)),
                    Err(e) => ControlResponse::Error {
                        message: e.to_string(),
                    },
                }
            }
            Ok(ControlRequest::RunIntersectionSum {
                peer,
                dataset,
                peer_dataset,
                purpose,
                sum,
            }) => {
                let job = OutgoingJob {
                    retry: None,
                    peer,
                    local_dataset: dataset,
                    peer_dataset,
                    protocol: ProtocolRequest::IntersectionSum(sum),
                    purpose,
                };
                match self.run_intersection_sum(job).await {
                    Ok(report) => ControlResponse::IntersectionSum(Box::new(report)),
                    Err(e) => ControlResponse::Error {
                        message: e.to_string(),
                    },
                }
            }
        };
        control::write_response(&mut stream, &response).await;
    }

    /// Runs a job as the requester.
    pub async fn run_job(
        &self,
        job: OutgoingJob,
        out: Option<PathBuf>,
    ) -> Result<JobReport, JobError> {
        let (accepted, request, streams) = self.start_job(job, out.clone()).await?;
        job::run_requester(
            &self.boundary,
            accepted,
            request,
            streams,
            self.limits(),
            out,
        )
        .await
    }

    /// Runs an intersection-sum job as the requester.
    pub async fn run_intersection_sum(&self, job: OutgoingJob) -> Result<IsumReport, JobError> {
        let (accepted, request, streams) = self.start_job(job, None).await?;
        crate::jobs::isum::run_requester(&self.boundary, accepted, request, streams, self.limits())
            .await
    }

    /// Admits a job we ask for and opens its stream to the peer; a job
    /// whose peer cannot be reached is recorded as failed.
    async fn start_job(
        &self,
        job: OutgoingJob,
        out: Option<PathBuf>,
    ) -> Result<(Accepted, JobRequest, JobStreams), JobError> {
        crate::crash::point(
            crate::store::Role::Requester,
            crate::crash::Step::BeforeAdmission,
        );
        // Admission reads SQLite and hashes the dataset: keep it off the runtime.
        // A bad output path is refused first, before anything is charged or sent.
        let boundary = self.boundary.clone();
        let store = self.store.clone();
        let out_to_check = out;
        let (accepted, request) = tokio::task::spawn_blocking(move || {
            if let Some(out) = &out_to_check {
                check_output(&store, &job.local_dataset, out)?;
            }
            boundary
                .admit_outgoing(job)
                .map_err(|refusal| JobError::Refused(refusal.local_reason))
        })
        .await
        .map_err(|e| JobError::Internal(e.to_string()))??;
        crate::crash::point(
            crate::store::Role::Requester,
            crate::crash::Step::AfterCharge,
        );
        let streams = match self.open_job_stream(&accepted.peer).await {
            Ok(streams) => streams,
            Err(error) => {
                self.boundary.fail(
                    &accepted,
                    &crate::store::JobEnd {
                        outcome: crate::store::Outcome::Failed,
                        local_set_size: Some(accepted.data.ids().len() as u64),
                        peer_set_size: None,
                        bytes_sent: 0,
                        bytes_received: 0,
                        data_messages_sent: 0,
                        data_messages_received: 0,
                        duration: accepted.started.elapsed(),
                        detail: Some(error.to_string()),
                        result: None,
                    },
                );
                return Err(error);
            }
        };
        Ok((accepted, request, streams))
    }

    async fn open_job_stream(&self, peer: &crate::store::Peer) -> Result<JobStreams, JobError> {
        self.stats.connector.open(peer).await
    }

    /// Runs a stats job as its requester; `progress` hears each phase.
    pub async fn run_stats(
        &self,
        spec: StatsSpec,
        progress: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> Result<StatsReport, JobError> {
        self.stats.run(spec, progress).await
    }

    /// Runs a stats job for the CLI, passing on each phase as a progress
    /// line while it runs.
    async fn serve_stats(&self, mut stream: tokio::net::UnixStream, spec: StatsSpec) {
        if spec.form == crate::stats::Form::Vertical {
            let response = self.serve_vertical(spec).await;
            control::write_response(&mut stream, &response).await;
            return;
        }
        let (progress, mut phases) = tokio::sync::mpsc::unbounded_channel();
        let job = self.run_stats(spec, Some(progress));
        tokio::pin!(job);
        let outcome = loop {
            tokio::select! {
                outcome = &mut job => break outcome,
                Some(phase) = phases.recv() => control::write_progress(&mut stream, &phase).await,
            }
        };
        while let Ok(phase) = phases.try_recv() {
            control::write_progress(&mut stream, &phase).await;
        }
        let response = match outcome {
            Ok(report) => ControlResponse::Stats(Box::new(report)),
            Err(e) => ControlResponse::Error {
                message: e.to_string(),
            },
        };
        control::write_response(&mut stream, &response).await;
    }
}

impl Node {
    /// A vertical spec: today, an intersection-sum with the other party, as
    /// `unseen run intersection-sum` would ask for it.
    async fn serve_vertical(&self, spec: StatsSpec) -> ControlResponse {
        let error = |message: String| ControlResponse::Error { message };
        if let Err(e) = spec.check() {
            return error(format!("the spec is refused: {e}"));
        }
        let Some(sum) = spec.intersection_sum() else {
            return error("this vertical spec is not an intersection-sum".into());
        };
        let (own, other) = (&spec.parties[0], &spec.parties[1]);
        if own.node != self.config.name {
            return error(format!(
                "the requester must be the first [[party]]; move node = {:?} to the top of the spec",
                self.config.name
            ));
        }
        let job = OutgoingJob {
            retry: None,
            peer: other.node.clone(),
            local_dataset: own.dataset.clone(),
            peer_dataset: other.dataset.clone(),
            protocol: ProtocolRequest::IntersectionSum(sum),
            purpose: spec.purpose.clone(),
        };
        match self.run_intersection_sum(job).await {
            Ok(report) => ControlResponse::IntersectionSum(Box::new(report)),
            Err(e) => error(e.to_string()),
        }
    }
}

fn stream_limits(config: &NodeConfig, counters: &Arc<NodeCounters>) -> StreamLimits {
    StreamLimits {
        max_frame: config.limits.max_frame_bytes,
        message_timeout: config.message_timeout(),
        max_peer_set_size: config.limits.max_peer_set_size,
        limits: config.limits.clone(),
        counters: counters.clone(),
    }
}

/// Refuses an output path the job could not write, or one that would
/// overwrite the job's own registered dataset.
fn check_output(store: &Store, dataset: &str, out: &std::path::Path) -> Result<(), JobError> {
    crate::fsutil::check_output_path(out).map_err(JobError::Output)?;
    let registered = store
        .dataset(dataset)
        .map_err(|e| JobError::Internal(e.to_string()))?;
    if let (Some(record), Ok(out)) = (registered, std::fs::canonicalize(out))
        && out == record.summary.path
    {
        return Err(JobError::Output(format!(
            "--out {}: is the file of dataset {dataset:?} itself; write the result to another file",
            out.display()
        )));
    }
    Ok(())
}

/// Binds the control socket; returns it and the user id it belongs to, the
/// only user it serves.
fn bind_control(paths: &NodePaths) -> Result<(UnixListener, u32), NodeError> {
    let path = paths.control_socket();
    if path.exists() {
        // A live node answers on it; a dead one left a stale file behind.
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(NodeError::Config {
                path: paths.dir.clone(),
                message:
                    "another `unseen serve` is already running from this directory; stop it first"
                        .into(),
            });
        }
        std::fs::remove_file(&path).map_err(|e| NodeError::io(&path, e))?;
    }
    // The socket is made inside the node directory, which is 0700 before
    // the bind: no other user can reach the socket in the moment between
    // bind and chmod. (A umask around bind would do the same, but the umask
    // is process-wide and other threads create files meanwhile.)
    crate::fsutil::make_private(&paths.dir, crate::fsutil::PRIVATE_DIR)
        .map_err(|e| NodeError::io(&paths.dir, e))?;
    let listener = UnixListener::bind(&path).map_err(|e| NodeError::io(&path, e))?;
    std::fs::set_permissions(
        &path,
        std::fs::Permissions::from_mode(crate::fsutil::PRIVATE_FILE),
    )
    .map_err(|e| NodeError::io(&path, e))?;
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(&path).map_err(|e| NodeError::io(&path, e))?,
    );
    Ok((listener, owner))
}

/// Takes the node directory's exclusive serve lock, or says who holds it.
fn lock_directory(paths: &NodePaths) -> Result<std::fs::File, NodeError> {
    let path = paths.serve_lock();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| NodeError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::Config {
            path: paths.dir.clone(),
            message: "another `unseen serve` is already running from this directory; stop it first"
                .into(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(NodeError::io(&path, e)),
    }
}
