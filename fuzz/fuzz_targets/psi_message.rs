//! Every ECDH-PSI message, decoded alone: `unseen_protocol::ecdh_psi::Message::decode`.
//!
//! Whatever decodes must re-encode to exactly the bytes received, and stay
//! within the size the framing layers budget for one message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unseen_protocol::ErrorCategory;
use unseen_protocol::ecdh_psi::Message;

fuzz_target!(|data: &[u8]| {
    match Message::decode(data) {
        Ok(message) => {
            let again = message.encode();
            assert!(again.len() <= Message::MAX_ENCODED_LEN);
            assert_eq!(Message::decode(&again).as_ref().ok(), Some(&message));
            assert_eq!(
                again, data,
                "{message:?} decoded from a non-canonical encoding"
            );
        }
        Err(e) => {
            assert!(matches!(e.category(), ErrorCategory::Undecodable), "{e}");
            assert_eq!(e.abort_code(), 1);
        }
    }
});
