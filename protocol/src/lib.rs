//! Sans-IO state machines for Unseen's privacy-preserving protocols.
//!
//! Nothing in this crate touches a socket, a file, a clock or the operating
//! system's random number generator. A caller (the node, or a test) feeds each
//! protocol the messages its peer sent and transmits the messages the protocol
//! returns:
//!
//! ```text
//!   ids ──► Requester::start ──► [messages] ──► (network) ──► ExpectRequesterHello
//!                 │                                                   │
//!   ExpectResponderHello ◄── (network) ◄── [messages] ◄── Responder::start ◄── ids
//!                 │                                                   │
//!         ... one state per expected message ...                    ...
//!                 ▼                                                   ▼
//!           PsiOutput (requester)                     ResponderOutput (responder)
//! ```
//!
//! Every state is its own type, named for the message it expects next, and a
//! transition consumes it. Randomness is passed in as a [`rand_core::CryptoRng`],
//! so tests are deterministic and run both parties in one process.
#![forbid(unsafe_code)]

pub mod dp;
pub mod ecdh_psi;
mod error;
pub mod group;
mod id_set;

pub use error::{Error, ErrorCategory, InvalidPointReason};
pub use id_set::IdSet;

use serde::{Deserialize, Serialize};

/// A job's identifier: 16 random bytes chosen by the requesting node.
///
/// Protocols mix it into their domain-separation tags, so group elements from
/// one job are useless in any other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub [u8; 16]);

impl JobId {
    /// Draws a fresh job id.
    pub fn random<R: rand_core::CryptoRng + rand_core::RngCore>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses the one spelling [`JobId`]'s `Display` prints: exactly 32
    /// lower-case hex digits. Anything else (upper case, a sign, spaces,
    /// another length) is refused, so one job has one id in every record.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// The result of feeding one message to a state machine: the next state (or
/// the protocol's output) and the messages to send to the peer, in order.
#[derive(Debug)]
#[must_use = "the messages in `send` must reach the peer"]
pub struct Step<S, O, M> {
    /// Where the protocol goes next.
    pub next: Progress<S, O>,
    /// Messages for the peer, to be sent in this order.
    pub send: Vec<M>,
}

/// Either the next state, or the finished protocol's output.
#[derive(Debug)]
pub enum Progress<S, O> {
    /// The protocol expects more messages.
    Continue(S),
    /// The protocol is finished.
    Done(O),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_display_parses_back() {
        let id = JobId([0xab; 16]);
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(JobId::parse(&text), Some(id));
        assert_eq!(JobId::parse("zz"), None);
        assert_eq!(JobId::parse(&"g".repeat(32)), None);
    }

    /// A peer must not reach one job under two spellings of its id (two
    /// records, two charges): only the printed form parses.
    #[test]
    fn job_ids_have_one_spelling() {
        let canonical = JobId([0xab; 16]).to_string();
        for other in [
            canonical.to_uppercase(),
            format!(" {canonical}"),
            format!("{canonical} "),
            canonical[..31].to_string(),
            format!("{canonical}0"),
            format!("+{}", &canonical[1..]),
            format!("{}+b", &canonical[..30]),
        ] {
            assert_eq!(JobId::parse(&other), None, "{other:?}");
        }
    }
}
