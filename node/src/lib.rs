//! The Unseen node: runs privacy-preserving jobs with registered peers.
//!
//! ```text
//!   CLI ──(control.sock, JSON)──► Node ──► Boundary ──► job runner ──(QUIC, mTLS)──► peer
//!                                   │         │               │
//!                                   │     Store (SQLite): peers, datasets, job log
//!                                   └── Identity (Ed25519 key, self-signed certificate)
//! ```
//!
//! Peers are pinned by certificate fingerprint in both directions. Every job
//! passes [`boundary::Boundary`], which alone can create the
//! [`boundary::Accepted`] value the job runner needs. The protocols
//! themselves live in the sans-IO crate `unseen-protocol`.
#![forbid(unsafe_code)]

// The node's parts, by folder. A newcomer starts here.
pub mod daemon; // the serving process: server, control socket, counters
pub mod governance; // policy, grants, admission, boundary, manifest, audit
pub mod jobs; // PSI, intersection-sum and stats jobs
pub mod store; // SQLite, by table
pub mod transport; // QUIC, mutual TLS, the peer gate, frames and wire messages

// Node-wide basics.
pub mod clock;
pub mod config;
pub mod dataset;
pub mod error;
pub mod fsutil;
pub mod identity;
pub mod setup;

// The paths these modules had before they moved into folders; the crate's
// users (the CLI, the tests, the fuzz targets) and its own code use them.
pub use daemon::{control, counters, crash, log_limit, server};
pub(crate) use governance::noise;
pub use governance::{admission, audit, boundary, grant, manifest, policy, stats_manifest};
pub use jobs::stats;
pub use transport::{gate, wire};

pub use error::NodeError;
