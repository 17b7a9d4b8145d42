//! Governance: the data owner's rules and the proof they were kept.
//!
//! Every job passes one boundary ([`boundary`]): the dataset's grade and
//! legal basis ([`policy`]), the grant and its quotas ([`grant`]), decided by
//! one pure function over one snapshot ([`admission`]); the job's terms are
//! signed by both sides ([`manifest`]) with its noise ([`noise`]), and every
//! step is written to the signed, hash-chained audit log ([`audit`]).

pub mod admission;
pub mod audit;
pub mod boundary;
pub mod grant;
pub mod manifest;
pub(crate) mod noise;
pub mod policy;
pub mod stats_manifest;
