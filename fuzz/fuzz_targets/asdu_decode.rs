//! Fuzz target for the ASDU codec (IEC 60870-5-101 §7, as used by IEC 60870-5-104): any
//! input, under every accepted field-size combination, must decode without panicking, and
//! whatever decodes must re-encode to exactly the input octets.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp809::asdu::{mirror, Asdu, AsduParams, Cause, Header};

fuzz_target!(|data: &[u8]| {
    // COT 1|2 × CA 1|2 × IOA 1|2|3: the 104 sizes, the usual 101 sizes and all the rest.
    for cot in 1..=2 {
        for ca in 1..=2 {
            for ioa in 1..=3 {
                let Ok(params) = AsduParams::new(cot, ca, ioa) else {
                    continue;
                };
                let _ = Header::decode(data, params);
                let _ = mirror(data, params, Cause::UNKNOWN_TYPE, true);
                if let Ok(asdu) = Asdu::decode(data, params) {
                    let mut out = Vec::new();
                    asdu.encode(params, &mut out)
                        .expect("a decoded ASDU must encode");
                    assert_eq!(out, data, "re-encoding changed the octets");
                    assert_eq!(asdu.encoded_len(params), data.len());
                }
            }
        }
    }
});
