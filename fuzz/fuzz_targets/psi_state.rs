//! The ECDH-PSI state machines, requester and responder, fed fuzzer-chosen
//! sequences of honest, replayed, dropped and forged messages: they must
//! return an error or the right answer, never panic or allocate without
//! bound. See `unseen_fuzz::psi`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unseen_fuzz::psi::{Scenario, run};

fuzz_target!(|scenario: Scenario| run(&scenario));
