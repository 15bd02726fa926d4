//! Fuzz target for OCPP-J framing (OCPP-J 1.6 §4 "RPC framework"; OCPP 2.0.1 Part 4 §4):
//! whatever a charger sends as a text frame, `framing::parse` answers with a frame or with
//! the CALLERROR to send, for both versions, and never panics. What parses re-encodes to a
//! frame with the same MessageId; every refusal is itself a well-formed CALLERROR.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp809::ocpp::framing::{parse, Frame};
use ocpp809::ocpp::Version;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8; lossy conversion also exercises U+FFFD.
    let text = String::from_utf8_lossy(data);
    for version in [Version::V16, Version::V201] {
        match parse(&text, version) {
            Ok(frame) => {
                let again = parse(&frame.encode(), version).expect("re-encoded frame parses");
                assert_eq!(again.id(), frame.id());
            }
            Err(e) => {
                // 1.6 reading: a 2.0.1 MessageId over 36 characters is echoed as it came.
                let answer = parse(&e.to_call_error(version), Version::V16);
                assert!(matches!(answer, Ok(Frame::CallError { .. })), "{answer:?}");
            }
        }
    }
});
