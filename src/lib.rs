//! Unseen: privacy-preserving joint statistics between organisations.
//!
//! This crate is a facade. The protocols live in [`protocol`] (pure, sans-IO
//! state machines); the node that runs them over QUIC with mutual TLS, with
//! its identity, peers, datasets, acceptance boundary and job log, lives in
//! [`node`]. The `unseen` binary is built by the `unseen-node` crate.
#![forbid(unsafe_code)]

pub use unseen_node as node;
pub use unseen_protocol as protocol;
