use serde::{Deserialize, Serialize};

use super::MAX_CHUNK_POINTS;
use crate::group::EncodedPoint;

/// A message of the ECDH-PSI protocol.
///
/// Group elements travel as their 32-byte canonical encodings in chunks of at
/// most [`MAX_CHUNK_POINTS`]; the receiver decodes each one canonically.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Requester to responder: how many elements follow.
    RequesterHello {
        /// The requester's number of distinct ids.
        set_size: u64,
        /// `a·G`, sent only when the responder pads the count with noise.
        key_commitment: Option<EncodedPoint>,
    },
    /// Responder to requester: how many elements follow.
    ResponderHello {
        /// The responder's number of distinct ids.
        set_size: u64,
    },
    /// Requester to responder: `H(x)^a` for a chunk of the requester's ids.
    RequesterBlinded(Vec<EncodedPoint>),
    /// Responder to requester: `H(y)^b` for a chunk of the responder's ids.
    ResponderBlinded(Vec<EncodedPoint>),
    /// Responder to requester: `H(x)^ab` for a chunk of the requester's elements.
    DoubleBlinded(Vec<EncodedPoint>),
}

impl Message {
    /// The message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RequesterHello { .. } => "RequesterHello",
            Self::ResponderHello { .. } => "ResponderHello",
            Self::RequesterBlinded(_) => "RequesterBlinded",
            Self::ResponderBlinded(_) => "ResponderBlinded",
            Self::DoubleBlinded(_) => "DoubleBlinded",
        }
    }

    /// Number of group elements the message carries.
    pub fn element_count(&self) -> usize {
        match self {
            Self::RequesterHello { .. } | Self::ResponderHello { .. } => 0,
            Self::RequesterBlinded(p) | Self::ResponderBlinded(p) | Self::DoubleBlinded(p) => {
                p.len()
            }
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

    /// Decodes one whole message in its canonical encoding; a longer or
    /// non-canonical one, or trailing bytes, are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::Error> {
        crate::codec::decode_canonical(bytes, Self::MAX_ENCODED_LEN, Self::kind)
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RequesterHello { set_size, .. } | Self::ResponderHello { set_size } => {
                write!(f, "{} {{ set_size: {set_size} }}", self.kind())
            }
            _ => write!(f, "{}({} elements)", self.kind(), self.element_count()),
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
