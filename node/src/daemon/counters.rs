//! What the node holds and has turned away, counted as it happens: the
//! operator reads them in `unseen status`, and the hostile-peer tests assert
//! on them instead of on timing.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Live gauges and running totals, shared by every task of a serving node.
#[derive(Debug, Default)]
pub struct NodeCounters {
    connections_open: AtomicU64,
    job_streams_open: AtomicU64,
    queued_bytes: AtomicU64,
    connections_refused: AtomicU64,
    streams_refused: AtomicU64,
    handshakes_refused: AtomicU64,
    connections_closed_for_removal: AtomicU64,
    jobs_over_deadline: AtomicU64,
}

/// A copy of [`NodeCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersSnapshot {
    /// Peer connections open now.
    pub connections_open: u64,
    /// Job streams open now, from their first frame to their record.
    pub job_streams_open: u64,
    /// Bytes queued to peers and not yet written.
    pub queued_bytes: u64,
    /// Connections closed at once: over the per-peer limit, or from a peer
    /// no longer registered.
    pub connections_refused: u64,
    /// Streams refused before reading a request: over the per-peer job
    /// limit, or the peer's refusals over their rate.
    pub streams_refused: u64,
    /// TLS handshakes refused (an unregistered certificate).
    pub handshakes_refused: u64,
    /// Live connections closed because `peer remove` removed their peer.
    pub connections_closed_for_removal: u64,
    /// Jobs stopped at their whole-job deadline.
    pub jobs_over_deadline: u64,
}

/// Which total to add to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// See [`CountersSnapshot::connections_refused`].
    ConnectionsRefused,
    /// See [`CountersSnapshot::streams_refused`].
    StreamsRefused,
    /// See [`CountersSnapshot::handshakes_refused`].
    HandshakesRefused,
    /// See [`CountersSnapshot::connections_closed_for_removal`].
    ConnectionsClosedForRemoval,
    /// See [`CountersSnapshot::jobs_over_deadline`].
    JobsOverDeadline,
}

/// Which gauge a [`Held`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// See [`CountersSnapshot::connections_open`].
    ConnectionsOpen,
    /// See [`CountersSnapshot::job_streams_open`].
    JobStreamsOpen,
    /// See [`CountersSnapshot::queued_bytes`].
    QueuedBytes,
}

impl NodeCounters {
    /// Adds one to a running total.
    pub fn count(&self, total: Total) {
        let counter = match total {
            Total::ConnectionsRefused => &self.connections_refused,
            Total::StreamsRefused => &self.streams_refused,
            Total::HandshakesRefused => &self.handshakes_refused,
            Total::ConnectionsClosedForRemoval => &self.connections_closed_for_removal,
            Total::JobsOverDeadline => &self.jobs_over_deadline,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn gauge(&self, gauge: Gauge) -> &AtomicU64 {
        match gauge {
            Gauge::ConnectionsOpen => &self.connections_open,
            Gauge::JobStreamsOpen => &self.job_streams_open,
            Gauge::QueuedBytes => &self.queued_bytes,
        }
    }

    /// Adds `amount` to a gauge.
    pub fn add(&self, gauge: Gauge, amount: u64) {
        self.gauge(gauge).fetch_add(amount, Ordering::Relaxed);
    }

    /// Takes `amount` off a gauge.
    pub fn sub(&self, gauge: Gauge, amount: u64) {
        self.gauge(gauge).fetch_sub(amount, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> CountersSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CountersSnapshot {
            connections_open: read(&self.connections_open),
            job_streams_open: read(&self.job_streams_open),
            queued_bytes: read(&self.queued_bytes),
            connections_refused: read(&self.connections_refused),
            streams_refused: read(&self.streams_refused),
            handshakes_refused: read(&self.handshakes_refused),
            connections_closed_for_removal: read(&self.connections_closed_for_removal),
            jobs_over_deadline: read(&self.jobs_over_deadline),
        }
    }
}

/// One unit of a gauge, given back when dropped, so no early return or
/// panic can leave a gauge counting something that is gone.
#[derive(Debug)]
pub struct Held {
    counters: std::sync::Arc<NodeCounters>,
    gauge: Gauge,
}

impl Held {
    /// Adds one to `gauge` until the value is dropped.
    pub fn new(counters: std::sync::Arc<NodeCounters>, gauge: Gauge) -> Self {
        counters.add(gauge, 1);
        Self { counters, gauge }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.counters.sub(self.gauge, 1);
    }
}
