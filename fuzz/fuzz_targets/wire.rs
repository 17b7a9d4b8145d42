//! The postcard envelope of every message on a job's stream, PSI messages
//! included: `unseen_node::wire::decode`.
//!
//! Whatever decodes must re-encode to exactly the bytes received: one message
//! has one encoding, so nothing downstream can be fed two spellings of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unseen_node::wire::{WIRE_VERSION, WireError, decode, encode};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(message) => {
            assert!(!message.kind().is_empty());
            let again = encode(&message);
            assert_eq!(
                decode(&again).as_ref(),
                Ok(&message),
                "re-encoding changed it"
            );
            assert_eq!(
                again,
                data,
                "{} decoded from a non-canonical encoding",
                message.kind()
            );
        }
        Err(WireError::Version(version)) => assert_ne!(version, WIRE_VERSION),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
