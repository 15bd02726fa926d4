//! Timestamps (OCPP 1.6 §3.1.5 / 2.0.1 Part 2 §2.1.1 "dateTime": RFC 3339, UTC recommended).
//!
//! Conforming: RFC 3339 with `Z` or an offset (converted to UTC). Lenient mode also accepts a
//! timestamp without zone (`2024-01-01T12:00:00`, `2024-01-01 12:00:00`, with or without
//! fractions or seconds), taken as UTC and counted as [`CoercionKind::TimestampWithoutZone`].

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::{clip, Coercion};
use crate::mapping::charger::CoercionKind;

/// Layouts of zone-less timestamps seen from legacy chargers.
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Layouts with a zone that RFC 3339 does not allow but chargers send: `+02`, `+0200`.
const OFFSET_FORMATS: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"];

/// True when `text` is an RFC 3339 date-time with zone as JSON schema's `date-time` format
/// reads it: `T` between date and time, a leap second only at 23:59:60. Strict mode accepts
/// only these.
pub fn is_strict_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return false;
    }
    if b.get(17..19) == Some(b"60".as_slice()) && b.get(11..16) != Some(b"23:59".as_slice()) {
        return false;
    }
    DateTime::parse_from_rfc3339(text).is_ok()
}

/// Reads a timestamp. A strict RFC 3339 one gives no coercion; other layouts chrono or the
/// zone-less formats can read (space separator, no zone — taken as UTC) are reported as
/// [`CoercionKind::TimestampWithoutZone`]. Anything else is an error with the reason.
pub fn parse_timestamp(v: &Value) -> Result<(DateTime<Utc>, Vec<Coercion>), String> {
    match v {
        Value::String(text) => parse_timestamp_text(text),
        other => Err(format!(
            "{} is not a timestamp",
            clip(&other.to_string(), 40)
        )),
    }
}

/// [`parse_timestamp`] of text.
pub fn parse_timestamp_text(text: &str) -> Result<(DateTime<Utc>, Vec<Coercion>), String> {
    if is_strict_timestamp(text) {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok((t.with_timezone(&Utc), Vec::new()));
        }
    }
    let trimmed = text.trim();
    let coercion = |what: &str| {
        vec![Coercion::new(
            CoercionKind::TimestampWithoutZone,
            format!("timestamp \"{}\" {what}", clip(text, 40)),
        )]
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok((t.with_timezone(&Utc), coercion("not in RFC 3339 layout")));
    }
    for format in OFFSET_FORMATS {
        if let Ok(t) = DateTime::parse_from_str(trimmed, format) {
            return Ok((t.with_timezone(&Utc), coercion("with a short zone offset")));
        }
    }
    for format in NAIVE_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, format) {
            return Ok((naive.and_utc(), coercion("without zone taken as UTC")));
        }
    }
    Err(format!("\"{}\" is not a timestamp", clip(text, 40)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn timestamps_are_read_as_utc() {
        let noon = utc(2024, 1, 1, 12, 0, 0);
        let rows: &[(&str, Option<DateTime<Utc>>, bool)] = &[
            ("2024-01-01T12:00:00Z", Some(noon), false),
            ("2024-01-01T12:00:00.000Z", Some(noon), false),
            ("2024-01-01T13:00:00+01:00", Some(noon), false),
            ("2024-01-01T07:00:00-05:00", Some(noon), false),
            ("2024-01-01T12:00:00+00:00", Some(noon), false),
            ("2024-01-01t12:00:00z", Some(noon), false),
            (" 2024-01-01T12:00:00Z ", Some(noon), true),
            ("2024-01-01 12:00:00Z", Some(noon), true),
            ("2024-01-01T12:00:00", Some(noon), true),
            ("2024-01-01T12:00:00.000", Some(noon), true),
            ("2024-01-01 12:00:00", Some(noon), true),
            ("2024-01-01 12:00", Some(noon), true),
            ("2024-01-01T14:00:00+02", Some(noon), true),
            ("2024-01-01T14:00:00+0200", Some(noon), true),
            (
                "2024-01-01 14:00:00.5+02",
                Some(noon + chrono::Duration::milliseconds(500)),
                true,
            ),
            (
                "2024-01-01T12:00:00.123456789Z",
                Some(noon + chrono::Duration::nanoseconds(123_456_789)),
                false,
            ),
            (
                "2024-01-01T12:00:00.1234567891234Z",
                Some(noon + chrono::Duration::nanoseconds(123_456_789)),
                false,
            ),
            ("2024-01-01T12:00", Some(noon), true),
            ("", None, false),
            ("yesterday", None, false),
            ("2024-13-01T12:00:00Z", None, false),
            ("2024-01-01", None, false),
            ("12:00:00", None, false),
            ("1704110400", None, false),
        ];
        for (text, want, zoneless) in rows {
            let got = parse_timestamp(&json!(text));
            match (got, want) {
                (Ok((t, coercions)), Some(w)) => {
                    assert_eq!(t, *w, "{text}");
                    assert_eq!(
                        coercions.iter().map(|c| c.kind).collect::<Vec<_>>(),
                        if *zoneless {
                            vec![CoercionKind::TimestampWithoutZone]
                        } else {
                            vec![]
                        },
                        "{text}"
                    );
                }
                (Err(_), None) => {}
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn non_text_is_not_a_timestamp() {
        for v in [
            json!(1704110400),
            json!(null),
            json!(true),
            json!({}),
            json!([]),
        ] {
            assert!(parse_timestamp(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn strict_accepts_only_zoned_rfc3339() {
        assert!(is_strict_timestamp("2024-01-01T12:00:00Z"));
        assert!(is_strict_timestamp("2024-01-01T12:00:00.123+02:00"));
        assert!(!is_strict_timestamp("2024-01-01T12:00:00"));
        assert!(!is_strict_timestamp("2024-01-01 12:00:00Z"));
        assert!(!is_strict_timestamp("2024-01-01T12:00:60Z"));
        assert!(is_strict_timestamp("2024-12-31T23:59:60Z"));
        assert!(!is_strict_timestamp("garbage"));
    }
}
