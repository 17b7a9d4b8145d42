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

pub mod beaver;
mod codec;
pub mod dp;
pub mod ecdh_psi;
mod error;
pub mod group;
mod id_set;
pub mod intersection_sum;
pub mod private_id;
pub mod sharing;

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

    /// Parses exactly the form that [`JobId`]'s `Display` prints: 32
    /// lower-case hex digits, nothing around them.
    ///
    /// Any other spelling (upper case, a sign, spaces, another length) is
    /// refused rather than normalised: stores, audit logs and replay checks
    /// compare job ids as text, so one job must have one spelling.
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
        }
        Some(Self(bytes))
    }
}

/// The value of one lower-case hex digit; `None` for anything else.
fn lower_hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
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

    /// A job id names a record in both nodes' stores and audit logs, so one
    /// job must have exactly one spelling: a second spelling of the same
    /// bytes would let a peer present a replayed job as a new one to any
    /// code that compares the text.
    #[test]
    fn job_id_parse_refuses_every_non_canonical_spelling() {
        let canonical = "00112233445566778899aabbccddeeff";
        assert_eq!(
            JobId::parse(canonical).map(|id| id.to_string()),
            Some(canonical.to_string())
        );
        let refused = [
            "00112233445566778899AABBCCDDEEFF".to_string(),
            "00112233445566778899aabbccddeeFf".to_string(),
            format!(" {canonical}"),
            format!("{canonical}\n"),
            format!("\t{canonical} "),
            canonical[..30].to_string(),
            format!("{canonical}00"),
            String::new(),
            // `from_str_radix` alone accepts a sign.
            format!("+f{}", &canonical[2..]),
            format!("-0{}", &canonical[2..]),
            format!("0x{}", &canonical[2..]),
            format!("zz{}", &canonical[2..]),
            // Multi-byte characters: 32 bytes, but not 32 hex digits.
            format!("é{}", &canonical[2..]),
        ];
        for text in refused {
            assert_eq!(JobId::parse(&text), None, "{text:?} was accepted");
        }
    }
}
