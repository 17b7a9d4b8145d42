use serde::{Deserialize, Serialize};

use super::MAX_CHUNK_POINTS;
use crate::group::EncodedPoint;

/// A message of the Private-ID protocol.
///
/// Exponents: the requester's match key `a` and UID key `a'`, the
/// responder's `b` and `b'`. Group elements travel as their 32-byte canonical
/// encodings in chunks of at most [`MAX_CHUNK_POINTS`]; the receiver decodes
/// each one canonically.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Requester to responder: how many ids it has.
    RequesterHello {
        /// The requester's number of distinct ids.
        set_size: u64,
    },
    /// Responder to requester: how many ids it has.
    ResponderHello {
        /// The responder's number of distinct ids.
        set_size: u64,
    },
    /// Requester to responder: `H(x)^a`, in an order only the requester knows.
    RequesterBlinded(Vec<EncodedPoint>),
    /// Responder to requester: `H(y)^b`, in an order only the responder knows.
    ResponderBlinded(Vec<EncodedPoint>),
    /// Responder to requester: `H(x)^(a·b·b')`, in the order the requester
    /// sent `H(x)^a`; the requester's own UIDs, less its UID key.
    RequesterPartialUids(Vec<EncodedPoint>),
    /// Responder to requester: `H(x)^(a·b)` for all the requester's ids,
    /// shuffled, so the requester can compare but not tell whose they are.
    RequesterShuffled(Vec<EncodedPoint>),
    /// Requester to responder: `H(y)^(a·b·a')`, in the order the responder
    /// sent `H(y)^b`; the responder's own UIDs, less its UID key.
    ResponderPartialUids(Vec<EncodedPoint>),
    /// Requester to responder: how many of each side's ids the other does not
    /// hold. Both follow from the set sizes and the intersection size.
    Differences {
        /// |X ∖ Y|: elements in the `RequesterOnlyPartialUids` that follow.
        requester_only: u64,
        /// |Y ∖ X|: elements in the `ResponderOnly` that follow.
        responder_only: u64,
    },
    /// Requester to responder: `H(y)^(a·b)` for the responder's ids that the
    /// requester does not hold, shuffled.
    ResponderOnly(Vec<EncodedPoint>),
    /// Requester to responder: `H(x)^(a·b·a')` for the requester's ids that
    /// the responder does not hold, shuffled.
    RequesterOnlyPartialUids(Vec<EncodedPoint>),
    /// Responder to requester: each `ResponderOnly` element raised to `b'`,
    /// in the order received.
    ResponderOnlyPartialUids(Vec<EncodedPoint>),
}

impl Message {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RequesterHello { .. } => "RequesterHello",
            Self::ResponderHello { .. } => "ResponderHello",
            Self::RequesterBlinded(_) => "RequesterBlinded",
            Self::ResponderBlinded(_) => "ResponderBlinded",
            Self::RequesterPartialUids(_) => "RequesterPartialUids",
            Self::RequesterShuffled(_) => "RequesterShuffled",
            Self::ResponderPartialUids(_) => "ResponderPartialUids",
            Self::Differences { .. } => "Differences",
            Self::ResponderOnly(_) => "ResponderOnly",
            Self::RequesterOnlyPartialUids(_) => "RequesterOnlyPartialUids",
            Self::ResponderOnlyPartialUids(_) => "ResponderOnlyPartialUids",
        }
    }

    /// The group elements the message carries (none for the counts).
    pub fn elements(&self) -> &[EncodedPoint] {
        match self {
            Self::RequesterHello { .. }
            | Self::ResponderHello { .. }
            | Self::Differences { .. } => &[],
            Self::RequesterBlinded(p)
            | Self::ResponderBlinded(p)
            | Self::RequesterPartialUids(p)
            | Self::RequesterShuffled(p)
            | Self::ResponderPartialUids(p)
            | Self::ResponderOnly(p)
            | Self::RequesterOnlyPartialUids(p)
            | Self::ResponderOnlyPartialUids(p) => p,
        }
    }

    /// The largest encoded size of any message, in bytes: a full chunk of
    /// points plus the enum tag and length prefix. Framing layers use it to
    /// bound what they accept before decoding.
    pub const MAX_ENCODED_LEN: usize = MAX_CHUNK_POINTS * 32 + 48;

    /// Encodes the message with postcard.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    /// Decodes one whole message; trailing bytes, an overlong message and
    /// any but the canonical encoding are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::Error> {
        crate::codec::decode_canonical(bytes, Self::MAX_ENCODED_LEN, Self::kind)
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RequesterHello { set_size } | Self::ResponderHello { set_size } => {
                write!(f, "{} {{ set_size: {set_size} }}", self.kind())
            }
            Self::Differences {
                requester_only,
                responder_only,
            } => write!(
                f,
                "Differences {{ requester_only: {requester_only}, responder_only: {responder_only} }}"
            ),
            _ => write!(f, "{}({} elements)", self.kind(), self.elements().len()),
        }
    }
}

/// Splits encoded points into messages of at most `chunk` elements.
pub(super) fn chunked(
    points: Vec<EncodedPoint>,
    chunk: usize,
    wrap: fn(Vec<EncodedPoint>) -> Message,
) -> impl Iterator<Item = Message> {
    let mut points = points.into_iter().peekable();
    std::iter::from_fn(move || {
        points.peek()?;
        Some(wrap(points.by_ref().take(chunk).collect()))
    })
}
