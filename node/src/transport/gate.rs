//! Who may hold what on this node, decided in memory: the registered peers
//! (the TLS handshake checks them here, never under the store's lock), each
//! peer's live connections (so `peer remove` can close them at once), and
//! per-peer limits on connections, concurrent jobs and refused requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::config::Limits;
use crate::counters::{Gauge, Held, NodeCounters, Total};
use crate::error::NodeError;
use crate::identity::Fingerprint;
use crate::store::{Peer, Store};
use crate::transport::tls::PeerRegistry;

/// QUIC close code for a connection the gate turns away or cuts.
pub const CLOSE_REFUSED: u32 = 2;

/// Why the gate turned a connection or a stream away, in words for the
/// peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateRefusal {
    /// The certificate is not (or no longer) a registered peer's.
    #[error("not a registered peer")]
    NotRegistered,
    /// Over `limits.max_connections_per_peer`.
    #[error("this node allows {0} connections per peer; close one first")]
    TooManyConnections(u32),
    /// Over `limits.max_jobs_per_peer`.
    #[error("this node runs at most {0} jobs at once for one peer; wait for one to finish")]
    TooManyJobs(u32),
    /// Refusals over `limits.max_refusals_per_peer_per_minute`.
    #[error(
        "this node refused too many of your requests in the last minute; fix them and try again later"
    )]
    TooManyRefusals,
}

#[derive(Debug)]
struct PeerState {
    connections: HashMap<u64, quinn::Connection>,
    jobs: u32,
    refusals: Bucket,
}

/// A token bucket: `capacity` refusals, refilled evenly over a minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(capacity),
            at: now,
        }
    }

    fn refill(&mut self, capacity: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let capacity = f64::from(capacity);
        self.tokens = (self.tokens + elapsed * capacity / 60.0).min(capacity);
        self.at = now;
    }
}

/// The registered peers and what each holds.
#[derive(Debug)]
pub struct Gate {
    peers: RwLock<HashMap<Fingerprint, Peer>>,
    live: Mutex<HashMap<Fingerprint, PeerState>>,
    limits: Limits,
    counters: Arc<NodeCounters>,
    next_connection: AtomicU64,
}

impl Gate {
    /// Reads the registered peers from `store`.
    pub fn load(
        store: &Store,
        limits: Limits,
        counters: Arc<NodeCounters>,
    ) -> Result<Self, NodeError> {
        let gate = Self {
            peers: RwLock::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            limits,
            counters,
            next_connection: AtomicU64::new(0),
        };
        gate.reload(store)?;
        Ok(gate)
    }

    /// Reads the registered peers again and closes every live connection
    /// whose certificate is no longer among them. Returns how many closed.
    pub fn reload(&self, store: &Store) -> Result<usize, NodeError> {
        let mut peers = HashMap::new();
        for peer in store.peers()? {
            match Fingerprint::parse(&peer.fingerprint) {
                Ok(fingerprint) => {
                    peers.insert(fingerprint, peer);
                }
                Err(e) => {
                    tracing::error!(peer = %peer.name, "a registered peer's fingerprint does not parse: {e}")
                }
            }
        }
        let removed: Vec<quinn::Connection> = {
            let mut live = self.lock_live();
            let gone: Vec<Fingerprint> = live
                .keys()
                .filter(|fp| !peers.contains_key(fp))
                .copied()
                .collect();
            gone.iter()
                .filter_map(|fp| live.remove(fp))
                .flat_map(|state| state.connections.into_values())
                .collect()
        };
        *self.peers.write().unwrap_or_else(|e| e.into_inner()) = peers;
        for connection in &removed {
            connection.close(CLOSE_REFUSED.into(), b"the peer was removed");
            self.counters.count(Total::ConnectionsClosedForRemoval);
        }
        Ok(removed.len())
    }

    /// The registered peer with this certificate.
    pub fn peer(&self, fingerprint: &Fingerprint) -> Option<Peer> {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(fingerprint)
            .cloned()
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, PeerState>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state<'a>(
        &self,
        live: &'a mut HashMap<Fingerprint, PeerState>,
        fingerprint: Fingerprint,
    ) -> &'a mut PeerState {
        let capacity = self.limits.max_refusals_per_peer_per_minute;
        live.entry(fingerprint).or_insert_with(|| PeerState {
            connections: HashMap::new(),
            jobs: 0,
            refusals: Bucket::full(capacity, Instant::now()),
        })
    }

    /// Admits a connection from `fingerprint`, held until the slot drops.
    pub fn open_connection(
        self: &Arc<Self>,
        fingerprint: Fingerprint,
        connection: &quinn::Connection,
    ) -> Result<ConnectionSlot, GateRefusal> {
        let refused = |why| {
            self.counters.count(Total::ConnectionsRefused);
            Err(why)
        };
        if self.peer(&fingerprint).is_none() {
            return refused(GateRefusal::NotRegistered);
        }
        let max = self.limits.max_connections_per_peer;
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        {
            let mut live = self.lock_live();
            let state = self.state(&mut live, fingerprint);
            if state.connections.len() >= max as usize {
                drop(live);
                return refused(GateRefusal::TooManyConnections(max));
            }
            state.connections.insert(id, connection.clone());
        }
        Ok(ConnectionSlot {
            gate: self.clone(),
            fingerprint,
            id,
            _open: Held::new(self.counters.clone(), Gauge::ConnectionsOpen),
        })
    }

    /// Admits one job stream from `fingerprint`, held until the slot drops.
    /// Checks, in memory, that the peer is still registered, that it runs
    /// fewer jobs than its limit, and that its refusals are within their rate.
    pub fn open_stream(
        self: &Arc<Self>,
        fingerprint: Fingerprint,
    ) -> Result<StreamSlot, GateRefusal> {
        if self.peer(&fingerprint).is_none() {
            return Err(GateRefusal::NotRegistered);
        }
        let max = self.limits.max_jobs_per_peer;
        let rate = self.limits.max_refusals_per_peer_per_minute;
        let verdict = {
            let mut live = self.lock_live();
            let state = self.state(&mut live, fingerprint);
            state.refusals.refill(rate, Instant::now());
            if state.refusals.tokens < 1.0 {
                Err(GateRefusal::TooManyRefusals)
            } else if state.jobs >= max {
                Err(GateRefusal::TooManyJobs(max))
            } else {
                state.jobs += 1;
                Ok(())
            }
        };
        if let Err(why) = verdict {
            self.counters.count(Total::StreamsRefused);
            return Err(why);
        }
        Ok(StreamSlot {
            gate: self.clone(),
            fingerprint,
            _open: Held::new(self.counters.clone(), Gauge::JobStreamsOpen),
        })
    }

    /// Spends one of the peer's refusals: a request the boundary refused.
    pub fn note_refusal(&self, fingerprint: Fingerprint) {
        let rate = self.limits.max_refusals_per_peer_per_minute;
        let mut live = self.lock_live();
        let state = self.state(&mut live, fingerprint);
        state.refusals.refill(rate, Instant::now());
        state.refusals.tokens = (state.refusals.tokens - 1.0).max(0.0);
    }
}

impl PeerRegistry for Gate {
    fn is_registered(&self, fingerprint: &Fingerprint) -> bool {
        self.peer(fingerprint).is_some()
    }
}

/// A live connection, counted against its peer until dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    gate: Arc<Gate>,
    fingerprint: Fingerprint,
    id: u64,
    _open: Held,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut live = self.gate.lock_live();
        if let Some(state) = live.get_mut(&self.fingerprint) {
            state.connections.remove(&self.id);
        }
    }
}

/// A running job stream, counted against its peer until dropped.
#[derive(Debug)]
pub struct StreamSlot {
    gate: Arc<Gate>,
    fingerprint: Fingerprint,
    _open: Held,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut live = self.gate.lock_live();
        if let Some(state) = live.get_mut(&self.fingerprint) {
            state.jobs = state.jobs.saturating_sub(1);
        }
    }
}
