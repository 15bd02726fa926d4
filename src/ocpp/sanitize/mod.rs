//! Lenient coercion of non-conforming OCPP payloads (CONTRACT §4, MAPPING "the field failure"),
//! and the strict schema check that rejects them instead (OCPP-J 1.6 §4.2.3, 2.0.1 Part 4 §4.3).
//!
//! Every coercion is reported as a [`Coercion`] (kind + detail) so the session can count it per
//! charger and kind and log the first occurrence. A value that cannot be understood is never
//! turned into a number: meter samples become [`SampleValue::Invalid`] (IEC 104 IV bit), other
//! fields are left out or answered with a CALLERROR.
//!
//! - [`number`]: numbers written as text, with decimal comma, with unit suffix (`"14.4kW"`),
//!   units and prefixes, normalisation of a meter sample to W, Wh, A or V.
//! - [`time`]: timestamps without zone, with space separator, with offsets.
//! - [`names`]: enum values in the wrong case, OCPP 1.5-era field names.
//! - [`reader`]: the mode-aware field reader the dialects use ([`Sanitizer`]).
//! - [`sample`]: one sampled value of a meter value, read into the version-neutral model.
//! - [`schema`]: a compact description of the charger→CSMS request schemas, checked in strict
//!   mode, mapping each violation to the CALLERROR code the specification prescribes.
//!
//! [`SampleValue::Invalid`]: crate::mapping::charger::SampleValue::Invalid

pub mod names;
pub mod number;
pub mod reader;
pub mod sample;
pub mod schema;
pub mod time;

use crate::mapping::charger::CoercionKind;

pub use names::{find_field, match_enum, parse_enum, parse_measurand};
pub use number::{
    is_plain_decimal, normalise_sample, normalise_text, parse_number, parse_number_text,
    parse_unit, BaseUnit, Normalised, Quantity, Unit,
};
pub use reader::Sanitizer;
pub use time::{is_strict_timestamp, parse_timestamp, parse_timestamp_text};

/// One non-conforming input that was accepted by coercing it.
#[derive(Clone, Debug, PartialEq)]
pub struct Coercion {
    pub kind: CoercionKind,
    /// What was seen and what it was taken as, e.g. `unit suffix in "14.4kW" taken as 14400 W`.
    pub detail: String,
}

impl Coercion {
    pub fn new(kind: CoercionKind, detail: impl Into<String>) -> Coercion {
        Coercion {
            kind,
            detail: detail.into(),
        }
    }
}

/// Shortens text quoted in details and error descriptions (OCPP-J errorDescription is limited
/// to 255 characters; a charger may send megabytes in one field).
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_marks_cut_text() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("ääää", 2), "ä…");
    }
}
