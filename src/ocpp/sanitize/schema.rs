//! Strict-mode structure check of charger→CSMS requests against a compact description of the
//! official OCPP JSON schemas (1.6 JSON schemas, 2.0.1 Part 3), with the CALLERROR code each
//! violation calls for (OCPP-J 1.6 §4.2.3, 2.0.1 Part 4 §4.3):
//!
//! | violation | code |
//! |---|---|
//! | payload not an object | FormatViolation (1.6 "FormationViolation") |
//! | property the schema does not define | FormatViolation |
//! | required property missing, too few / too many items | OccurrenceConstraintViolation |
//! | wrong JSON type | TypeConstraintViolation |
//! | value outside an enum, text too long, malformed date-time | PropertyConstraintViolation |
//!
//! The descriptions live next to each dialect (`v16::schema`, `v201::schema`); the integration
//! tests check them against the official schema files.

use serde_json::{Map, Value};

use super::reader::{error, join};
use super::time::is_strict_timestamp;
use crate::ocpp::{CallError, ErrorCode, Version};

/// The type of a property.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// Text of at most this many characters.
    Str(usize),
    Int,
    Num,
    Bool,
    /// RFC 3339 date-time text.
    DateTime,
    Enum(&'static [&'static str]),
    /// Any JSON value (2.0.1 DataTransfer `data`).
    Any,
    /// An object with exactly these properties (additionalProperties false).
    Obj(&'static [Field]),
    /// An array of items, with minItems and maxItems (0 = unbounded).
    Arr(&'static Ty, usize, usize),
}

/// One property of an object.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

/// A required property.
pub const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

/// An optional property.
pub const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

/// Checks a request payload against the schema of its version. 1.6 schemas are draft-04,
/// where `1.0` is not an integer; 2.0.1 schemas are draft-06, where it is, and where every
/// object may carry a `customData` object (a `vendorId` text and anything else).
pub fn check(payload: &Value, schema: &Ty, version: Version) -> Result<(), CallError> {
    if !payload.is_object() {
        return Err(error(
            ErrorCode::FormatViolation,
            "",
            "payload is not a JSON object",
        ));
    }
    check_value(payload, schema, version == Version::V201, "")
}

fn type_error(path: &str, what: &str) -> CallError {
    error(
        ErrorCode::TypeConstraintViolation,
        path,
        format!("expected {what}"),
    )
}

/// `draft06`: an integral number written with a fraction (`1.0`) counts as an integer.
fn is_integer(v: &Value, draft06: bool) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || (draft06
                    && n.as_f64()
                        .is_some_and(|f| f.is_finite() && f.fract() == 0.0))
        }
        _ => false,
    }
}

fn check_value(v: &Value, ty: &Ty, custom_data: bool, path: &str) -> Result<(), CallError> {
    match ty {
        Ty::Any => Ok(()),
        Ty::Str(max) => {
            let s = v.as_str().ok_or_else(|| type_error(path, "text"))?;
            if s.chars().count() > *max {
                return Err(error(
                    ErrorCode::PropertyConstraintViolation,
                    path,
                    format!("longer than {max} characters"),
                ));
            }
            Ok(())
        }
        Ty::Int => {
            if is_integer(v, custom_data) {
                Ok(())
            } else {
                Err(type_error(path, "an integer"))
            }
        }
        Ty::Num => match v {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
            _ => Err(type_error(path, "a number")),
        },
        Ty::Bool => {
            if v.is_boolean() {
                Ok(())
            } else {
                Err(type_error(path, "a boolean"))
            }
        }
        Ty::DateTime => {
            let s = v.as_str().ok_or_else(|| type_error(path, "a date-time"))?;
            if is_strict_timestamp(s) {
                Ok(())
            } else {
                Err(error(
                    ErrorCode::PropertyConstraintViolation,
                    path,
                    "not an RFC 3339 date-time with zone",
                ))
            }
        }
        Ty::Enum(allowed) => {
            let s = v.as_str().ok_or_else(|| type_error(path, "text"))?;
            if allowed.contains(&s) {
                Ok(())
            } else {
                Err(error(
                    ErrorCode::PropertyConstraintViolation,
                    path,
                    format!("\"{}\" is not an allowed value", super::clip(s, 40)),
                ))
            }
        }
        Ty::Arr(item, min, max) => {
            let items = v.as_array().ok_or_else(|| type_error(path, "an array"))?;
            if items.len() < *min || (*max > 0 && items.len() > *max) {
                return Err(error(
                    ErrorCode::OccurrenceConstraintViolation,
                    path,
                    format!("{} items where {min}..{max} are allowed", items.len()),
                ));
            }
            for (i, x) in items.iter().enumerate() {
                check_value(x, item, custom_data, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Ty::Obj(fields) => {
            let obj = v.as_object().ok_or_else(|| type_error(path, "an object"))?;
            check_object(obj, fields, custom_data, path)
        }
    }
}

fn check_object(
    obj: &Map<String, Value>,
    fields: &[Field],
    custom_data: bool,
    path: &str,
) -> Result<(), CallError> {
    for field in fields {
        let here = join(path, field.name);
        match obj.get(field.name) {
            None if field.required => {
                return Err(error(
                    ErrorCode::OccurrenceConstraintViolation,
                    &here,
                    "required field missing",
                ))
            }
            None => {}
            Some(v) => check_value(v, &field.ty, custom_data, &here)?,
        }
    }
    for (key, v) in obj {
        if fields.iter().any(|f| f.name == key) {
            continue;
        }
        if custom_data && key == "customData" {
            check_custom_data(v, &join(path, key))?;
            continue;
        }
        return Err(error(
            ErrorCode::FormatViolation,
            &join(path, key),
            "property not defined for this message",
        ));
    }
    Ok(())
}

/// 2.0.1 CustomDataType: the one open object — a `vendorId` text and anything else.
fn check_custom_data(v: &Value, path: &str) -> Result<(), CallError> {
    let obj = v.as_object().ok_or_else(|| type_error(path, "an object"))?;
    match obj.get("vendorId") {
        None => Err(error(
            ErrorCode::OccurrenceConstraintViolation,
            &join(path, "vendorId"),
            "required field missing",
        )),
        Some(vendor) => check_value(vendor, &Ty::Str(255), false, &join(path, "vendorId")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PERIOD: Ty = Ty::Obj(&[req("startPeriod", Ty::Int), req("limit", Ty::Num)]);
    const SCHEMA: Ty = Ty::Obj(&[
        req("id", Ty::Int),
        opt("name", Ty::Str(5)),
        opt("when", Ty::DateTime),
        opt("kind", Ty::Enum(&["A", "B"])),
        opt("flag", Ty::Bool),
        opt("periods", Ty::Arr(&PERIOD, 1, 2)),
        opt("data", Ty::Any),
    ]);

    fn code(v: Value, v201: bool) -> Option<ErrorCode> {
        let version = if v201 { Version::V201 } else { Version::V16 };
        check(&v, &SCHEMA, version).err().map(|e| e.code)
    }

    #[test]
    fn each_violation_gets_its_code() {
        use ErrorCode::*;
        let rows: Vec<(Value, Option<ErrorCode>)> = vec![
            (json!({"id": 1}), None),
            (json!({"id": 1.0}), Some(TypeConstraintViolation)),
            (
                json!({"id": 1, "name": "abcde", "when": "2024-01-01T00:00:00Z", "kind": "B",
                       "flag": false, "periods": [{"startPeriod": 0, "limit": 1.5}], "data": [1]}),
                None,
            ),
            (json!("garbage"), Some(FormatViolation)),
            (json!([1, 2]), Some(FormatViolation)),
            (json!(null), Some(FormatViolation)),
            (json!({"id": 1, "extra": 1}), Some(FormatViolation)),
            (json!({}), Some(OccurrenceConstraintViolation)),
            (
                json!({"id": 1, "periods": []}),
                Some(OccurrenceConstraintViolation),
            ),
            (
                json!({"id": 1, "periods": [{"startPeriod": 0, "limit": 1}, {"startPeriod": 0, "limit": 1},
                                            {"startPeriod": 0, "limit": 1}]}),
                Some(OccurrenceConstraintViolation),
            ),
            (
                json!({"id": 1, "periods": [{"limit": 1}]}),
                Some(OccurrenceConstraintViolation),
            ),
            (json!({"id": "1"}), Some(TypeConstraintViolation)),
            (json!({"id": 1.5}), Some(TypeConstraintViolation)),
            (json!({"id": 1, "name": 5}), Some(TypeConstraintViolation)),
            (
                json!({"id": 1, "flag": "true"}),
                Some(TypeConstraintViolation),
            ),
            (
                json!({"id": 1, "periods": {}}),
                Some(TypeConstraintViolation),
            ),
            (
                json!({"id": 1, "periods": [{"startPeriod": 0, "limit": "1"}]}),
                Some(TypeConstraintViolation),
            ),
            (
                json!({"id": 1, "name": "abcdef"}),
                Some(PropertyConstraintViolation),
            ),
            (
                json!({"id": 1, "kind": "a"}),
                Some(PropertyConstraintViolation),
            ),
            (
                json!({"id": 1, "when": "2024-01-01T00:00:00"}),
                Some(PropertyConstraintViolation),
            ),
            (
                json!({"id": 1, "customData": {"vendorId": "x"}}),
                Some(FormatViolation),
            ),
        ];
        for (v, want) in rows {
            assert_eq!(code(v.clone(), false), want, "{v}");
        }
    }

    #[test]
    fn integral_fractions_are_integers_in_two_point_zero_one_only() {
        assert_eq!(code(json!({"id": 1.0}), true), None);
        assert_eq!(
            code(json!({"id": 1.5}), true),
            Some(ErrorCode::TypeConstraintViolation)
        );
    }

    #[test]
    fn custom_data_is_allowed_in_two_point_zero_one() {
        assert_eq!(
            code(
                json!({"id": 1, "customData": {"vendorId": "x", "any": [1]}}),
                true
            ),
            None
        );
        assert_eq!(
            code(json!({"id": 1, "customData": {"any": 1}}), true),
            Some(ErrorCode::OccurrenceConstraintViolation)
        );
    }

    #[test]
    fn descriptions_name_the_field() {
        let e = check(
            &json!({"id": 1, "periods": [{"startPeriod": "0", "limit": 1}]}),
            &SCHEMA,
            Version::V16,
        );
        assert_eq!(
            e.err().map(|e| e.description),
            Some("periods[0].startPeriod: expected an integer".to_string())
        );
    }
}
