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

pub mod admission;
pub mod audit;
pub mod boundary;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod crash;
pub mod dataset;
pub mod error;
pub mod fsutil;
pub mod gate;
pub mod grant;
pub mod identity;
pub mod job;
pub mod log_limit;
pub mod manifest;
mod noise;
pub mod policy;
pub mod server;
pub mod setup;
pub mod stats;
pub mod store;
pub mod transport;
pub mod wire;

pub use error::NodeError;
