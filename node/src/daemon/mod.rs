//! The serving node: the process that accepts peers and its operator's CLI.
//!
//! [`server`] runs the QUIC endpoint and the control socket ([`control`]),
//! counts what it holds and turns away ([`counters`]), limits repeated log
//! lines ([`log_limit`]), and can stop itself at named steps for the crash
//! drills ([`crash`]).

pub mod control;
pub mod counters;
pub mod crash;
pub mod log_limit;
pub mod server;
