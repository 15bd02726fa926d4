//! Fuzz target for the OCPP sanitizer (CONTRACT §4, MAPPING.md "the field failure"): whatever
//! text a legacy charger puts in a meter value, the number/unit parser answers with a finite
//! number or an error, and a sample is Valid with a finite value or Invalid with a reason —
//! never a panic, never a made-up value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocpp809::mapping::charger::{Measurand, SampleValue};
use ocpp809::ocpp::sanitize::{
    is_plain_decimal, normalise_text, parse_number_text, parse_timestamp_text, parse_unit,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The value text, then (after a NUL) a unit field.
    let (value, unit) = match text.split_once('\0') {
        Some((v, u)) => (v, Some(u)),
        None => (text, None),
    };
    match parse_number_text(value) {
        Ok(q) => assert!(q.in_base_unit().is_finite()),
        // A plain decimal number is always readable (unless it overflows f64).
        Err(_) => assert!(!is_plain_decimal(value) || value.parse::<f64>().map_or(true, |x| !x.is_finite())),
    }
    let _ = parse_unit(value);
    let _ = parse_timestamp_text(value);
    for measurand in [
        Measurand::PowerActiveImport,
        Measurand::EnergyActiveImportRegister,
        Measurand::CurrentImport,
        Measurand::Voltage,
        Measurand::Other("SoC".to_string()),
        Measurand::Other("Vendor.Thing".to_string()),
    ] {
        for multiplier in [0, 3, -2] {
            let n = normalise_text(&measurand, value, unit, multiplier);
            match n.value {
                SampleValue::Valid(x) => assert!(x.is_finite()),
                SampleValue::Invalid { reason, .. } => assert!(!reason.is_empty()),
            }
        }
    }
});
