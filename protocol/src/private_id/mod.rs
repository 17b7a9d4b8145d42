//! Private-ID: private matching for compute, with no third party
//! (Buddhavarapu, Knox, Mohassel, Sengupta, Taubeneck, Vlaskin, *Private
//! Matching for Compute*, ePrint 2020/599, §4), over ristretto255.
//!
//! The requester holds a set X and the responder a set Y. Both end with the
//! **union** X ∪ Y as a list of universal identifiers (UIDs), in ascending
//! order of their 32 bytes, and each knows which row of that list each of its
//! own records is on. Neither learns which of its own records the other also
//! holds: a party's own UIDs and the UIDs of the other's unmatched ids are
//! pseudorandom and disjoint, so its rows are spread over the union whatever
//! the intersection is. Each learns the other's set size, hence the union
//! size and the intersection size; nothing else about membership.
//!
//! Each party draws two secret exponents for the job: a *match key* (`a`,
//! `b`) under which both sets are compared, and a *UID key* (`a'`, `b'`)
//! that the final identifiers add on top. `UID(id) = H(id)^(a·b·a'·b')`.
//!
//! ```text
//! requester (X; a, a')                                   responder (Y; b, b')
//!   RequesterHello{|X|}, RequesterBlinded{H(x)^a}* (order π) ──►
//!              ◄── ResponderHello{|Y|}, ResponderBlinded{H(y)^b}* (order ρ)
//!              ◄── RequesterPartialUids{H(x)^(a·b·b')}*   (order π, per chunk)
//!              ◄── RequesterShuffled{H(x)^(a·b)}*         (all, shuffled by σ)
//!   ResponderPartialUids{H(y)^(a·b·a')}* (order ρ, per chunk) ──►
//!   requester compares H(x)^(a·b) with H(y)^(a·b), then:
//!   Differences{|X∖Y|, |Y∖X|},
//!   ResponderOnly{H(y)^(a·b), y ∉ X}* (shuffled),
//!   RequesterOnlyPartialUids{H(x)^(a·b·a'), x ∉ Y}* (shuffled) ──►
//!              ◄── ResponderOnlyPartialUids{H(y)^(a·b·b'), y ∉ X}* (same order)
//! requester: own UIDs and responder-only UIDs: what it received, raised to a'
//! responder: own UIDs and requester-only UIDs: what it received, raised to b'
//! ```
//!
//! The requester learns which positions of the *shuffled* list `H(x)^ab`
//! match, which says nothing about its records because only the responder
//! knows σ. The model is semi-honest; see `docs/protocols/private-id.md`.
//! [`Matching::align`] turns a party's column into the column over the
//! union that the secret-sharing step consumes.

mod messages;
mod output;
mod requester;
mod responder;

pub use messages::Message;
pub use output::{AlignedColumn, ColumnLengthMismatch, Matching, Uid};
pub use requester::{
    ExpectRequesterPartialUids, ExpectRequesterShuffled, ExpectResponderBlinded,
    ExpectResponderHello, ExpectResponderOnlyPartialUids, Requester, RequesterState, RequesterStep,
};
pub use responder::{
    ExpectDifferences, ExpectRequesterBlinded, ExpectRequesterHello,
    ExpectRequesterOnlyPartialUids, ExpectResponderOnly, ExpectResponderPartialUids, Responder,
    ResponderState, ResponderStep,
};

use curve25519_dalek::ristretto::RistrettoPoint;

use crate::group::{BlindingKey, EncodedPoint, map_chunks};
use crate::{Error, JobId};

/// Version of this protocol; part of every hash-to-group tag.
pub const PROTOCOL_VERSION: u16 = 1;

/// The most group elements one message may carry (128 KiB of points).
pub const MAX_CHUNK_POINTS: usize = 4096;

/// The parameters both parties agreed on before the protocol starts.
#[derive(Debug, Clone)]
pub struct Session {
    /// The job this run belongs to.
    pub job_id: JobId,
    /// The largest set this party accepts from its peer. An announcement above
    /// it aborts the run before any element is read.
    pub max_peer_set_size: u64,
    /// The smallest set this party accepts from its peer.
    pub min_peer_set_size: u64,
    /// How many elements this party puts in one message, at most
    /// [`MAX_CHUNK_POINTS`].
    pub chunk_points: usize,
}

impl Session {
    /// A session with the default chunk size and no minimum.
    pub fn new(job_id: JobId, max_peer_set_size: u64) -> Self {
        Self {
            job_id,
            max_peer_set_size,
            min_peer_set_size: 0,
            chunk_points: MAX_CHUNK_POINTS,
        }
    }

    /// The hash-to-group domain-separation tag: protocol, version and job.
    /// Distinct from ECDH-PSI's, so elements of one protocol are useless in
    /// the other even for the same job.
    fn tag(&self) -> Vec<u8> {
        let mut tag = b"unseen/private-id/v".to_vec();
        tag.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        tag.extend_from_slice(b"/job/");
        tag.extend_from_slice(&self.job_id.0);
        tag
    }

    fn chunk_points(&self) -> usize {
        self.chunk_points.clamp(1, MAX_CHUNK_POINTS)
    }

    fn check_announced(&self, announced: u64) -> Result<(), Error> {
        if announced > self.max_peer_set_size {
            return Err(Error::SetTooLarge {
                announced,
                limit: self.max_peer_set_size,
            });
        }
        if announced < self.min_peer_set_size {
            return Err(Error::SetTooSmall {
                announced,
                minimum: self.min_peer_set_size,
            });
        }
        Ok(())
    }
}

/// Tracks one stream of elements whose length is known in advance, chunk by
/// chunk.
#[derive(Debug)]
struct Expected {
    total: u64,
    received: u64,
}

impl Expected {
    fn new(total: u64) -> Self {
        Self { total, received: 0 }
    }

    /// Accounts for a chunk of `len` elements and returns the stream index of
    /// its first element.
    fn accept_chunk(&mut self, len: usize) -> Result<u64, Error> {
        if len == 0 {
            return Err(Error::BadChunk("empty chunk"));
        }
        if len > MAX_CHUNK_POINTS {
            return Err(Error::BadChunk("chunk over the element limit"));
        }
        let first = self.received;
        self.received = first
            .checked_add(len as u64)
            .filter(|&after| after <= self.total)
            .ok_or(Error::BadChunk("more elements than announced"))?;
        Ok(first)
    }

    fn is_complete(&self) -> bool {
        self.received == self.total
    }
}

/// `inner·P` (encoded) and `outer·inner·P` (encoded) for each point: the
/// element both parties compare, and the same element one UID key further.
fn blind_twice(
    inner: &BlindingKey,
    outer: &BlindingKey,
    points: &[RistrettoPoint],
) -> (Vec<EncodedPoint>, Vec<EncodedPoint>) {
    let once: Vec<RistrettoPoint> = map_chunks(points, 256, |chunk| {
        chunk.iter().map(|p| inner.blind(p)).collect::<Vec<_>>()
    })
    .concat();
    let once_encoded = map_chunks(&once, 256, |chunk| {
        chunk
            .iter()
            .map(|p| p.compress().to_bytes())
            .collect::<Vec<_>>()
    })
    .concat();
    let twice_encoded = outer.blind_batch(&once);
    (once_encoded, twice_encoded)
}

/// Refuses a list that holds some element twice. An honest peer never sends
/// one (ids are distinct and the hash to the group is collision-resistant),
/// and a repeat would put two records on one row or skew the counts.
fn refuse_repeats(sorted: &[EncodedPoint], what: &'static str) -> Result<(), Error> {
    if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(Error::DuplicateElement { what });
    }
    Ok(())
}

/// Undoes a sending order: `by_position[i]` belongs to record `order[i]`.
fn to_record_order(order: &[usize], by_position: Vec<EncodedPoint>) -> Vec<EncodedPoint> {
    let mut by_record = vec![[0u8; 32]; order.len()];
    for (&record, element) in order.iter().zip(by_position) {
        by_record[record] = element;
    }
    by_record
}

#[cfg(test)]
mod tests;
