//! Jobs: what the node runs once a job has passed the boundary.
//!
//! [`psi`] runs ECDH-PSI and PSI-CA between two nodes over a job's QUIC
//! stream; [`stats`] holds stats job specs and each party's local
//! statistics for the secret-sharing engine.

pub mod psi;
pub mod stats;
