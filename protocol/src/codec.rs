//! Every protocol's messages on the wire: postcard, one encoding each.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// Encodes a message with postcard.
pub(crate) fn encode<M: Serialize>(message: &M) -> Vec<u8> {
    // Serializing these plain data types into a Vec cannot fail.
    postcard::to_allocvec(message).unwrap_or_default()
}

/// Decodes one whole message of at most `limit` bytes, refused before
/// decoding when longer. postcard also decodes overlong varints, so one
/// message could have many encodings; anything but the canonical bytes is
/// refused, as are trailing bytes.
pub(crate) fn decode_canonical<M: Serialize + DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    kind: fn(&M) -> &'static str,
) -> Result<M, Error> {
    if bytes.len() > limit {
        return Err(Error::Undecodable(format!(
            "{} bytes is over the {limit}-byte message limit",
            bytes.len()
        )));
    }
    match postcard::take_from_bytes::<M>(bytes) {
        Ok((message, [])) if encode(&message) != bytes => Err(Error::Undecodable(format!(
            "{} is not in its canonical encoding",
            kind(&message)
        ))),
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(Error::Undecodable(format!(
            "{} trailing bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(Error::Undecodable(e.to_string())),
    }
}
