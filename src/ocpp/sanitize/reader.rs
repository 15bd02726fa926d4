//! The field reader the dialects read payloads with, in either [`Mode`] (CONTRACT §2 `ocpp.mode`,
//! §4; CALLERROR codes per OCPP-J 1.6 §4.2.3 / 2.0.1 Part 4 §4.3).
//!
//! Lenient: whatever can be understood unambiguously is coerced and the coercion recorded.
//! Strict: the same reader refuses every coercion with the CALLERROR its kind calls for
//! (the [`schema`](super::schema) check has already rejected most of them). In both modes a
//! value that is needed and cannot be understood is a CALLERROR:
//! missing → OccurrenceConstraintViolation, wrong JSON type → TypeConstraintViolation, value out
//! of its domain → PropertyConstraintViolation.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{clip, find_field, parse_enum, parse_number, parse_timestamp, Coercion};
use crate::mapping::charger::{CoercionKind, ConnectorId};
use crate::ocpp::{CallError, ErrorCode, Mode};

/// Reads one CALL payload, collecting the coercions it needed.
#[derive(Debug)]
pub struct Sanitizer {
    mode: Mode,
    coercions: Vec<Coercion>,
}

/// Joins a path and a field name for error descriptions (`meterValue[0].timestamp`).
pub fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A CALLERROR whose description names the field.
pub fn error(code: ErrorCode, path: &str, what: impl AsRef<str>) -> CallError {
    let description = if path.is_empty() {
        what.as_ref().to_string()
    } else {
        format!("{path}: {}", what.as_ref())
    };
    CallError::new(code, clip(&description, 255))
}

impl Sanitizer {
    pub fn new(mode: Mode) -> Sanitizer {
        Sanitizer {
            mode,
            coercions: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn lenient(&self) -> bool {
        self.mode == Mode::Lenient
    }

    pub fn coercions(&self) -> &[Coercion] {
        &self.coercions
    }

    pub fn into_coercions(self) -> Vec<Coercion> {
        self.coercions
    }

    /// Records a coercion (lenient), or refuses it with the matching CALLERROR (strict).
    pub fn coerce(&mut self, path: &str, coercion: Coercion) -> Result<(), CallError> {
        match self.mode {
            Mode::Lenient => {
                self.coercions.push(coercion);
                Ok(())
            }
            Mode::Strict => {
                let code = match coercion.kind {
                    CoercionKind::NumberAsString => ErrorCode::TypeConstraintViolation,
                    CoercionKind::LegacyFieldName | CoercionKind::BinaryFrame => {
                        ErrorCode::FormatViolation
                    }
                    CoercionKind::UnitSuffix
                    | CoercionKind::UnitSuffixOverridesField
                    | CoercionKind::DecimalComma
                    | CoercionKind::EnumCase
                    | CoercionKind::TimestampWithoutZone
                    | CoercionKind::UnparseableValue => ErrorCode::PropertyConstraintViolation,
                };
                Err(error(code, path, &coercion.detail))
            }
        }
    }

    /// Records a value that could not be understood and was marked invalid rather than coerced
    /// (counted as UnparseableValue in both modes: it changes nothing, it only reports).
    pub fn report_invalid(&mut self, coercion: Coercion) {
        self.coercions.push(coercion);
    }

    fn coerce_all(&mut self, path: &str, coercions: Vec<Coercion>) -> Result<(), CallError> {
        for c in coercions {
            self.coerce(path, c)?;
        }
        Ok(())
    }

    /// The payload itself: must be a JSON object (else FormatViolation).
    pub fn root<'v>(&mut self, payload: &'v Value) -> Result<&'v Map<String, Value>, CallError> {
        payload.as_object().ok_or_else(|| {
            error(
                ErrorCode::FormatViolation,
                "",
                "payload is not a JSON object",
            )
        })
    }

    /// A nested object (else TypeConstraintViolation).
    pub fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
    ) -> Result<&'v Map<String, Value>, CallError> {
        v.as_object().ok_or_else(|| {
            error(
                ErrorCode::TypeConstraintViolation,
                path,
                "expected an object",
            )
        })
    }

    /// An optional field. Lenient mode finds it under 1.5-era or mis-cased names too, and
    /// treats `null` as absent.
    pub fn get<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        path: &str,
        name: &str,
        legacy: &[&str],
    ) -> Result<Option<&'v Value>, CallError> {
        let field = join(path, name);
        match find_field(obj, name, legacy) {
            None => Ok(None),
            Some((v, coercion)) => {
                if let Some(c) = coercion {
                    self.coerce(&field, c)?;
                }
                if v.is_null() && self.lenient() {
                    Ok(None)
                } else {
                    Ok(Some(v))
                }
            }
        }
    }

    /// A required field (missing → OccurrenceConstraintViolation).
    pub fn require<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        path: &str,
        name: &str,
        legacy: &[&str],
    ) -> Result<&'v Value, CallError> {
        self.get(obj, path, name, legacy)?.ok_or_else(|| {
            error(
                ErrorCode::OccurrenceConstraintViolation,
                &join(path, name),
                "required field missing",
            )
        })
    }

    /// An integer. Lenient: text holding an integer (`"1"`) is coerced.
    pub fn int(&mut self, v: &Value, path: &str) -> Result<i64, CallError> {
        let out_of_range = || {
            error(
                ErrorCode::PropertyConstraintViolation,
                path,
                format!("{} out of range", clip(&v.to_string(), 40)),
            )
        };
        if let Value::Number(n) = v {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            if n.is_u64() {
                return Err(out_of_range());
            }
        }
        let q = parse_number(v, false).map_err(|reason| match v {
            Value::String(_) if self.lenient() => {
                error(ErrorCode::PropertyConstraintViolation, path, reason)
            }
            _ => error(
                ErrorCode::TypeConstraintViolation,
                path,
                "expected an integer",
            ),
        })?;
        if q.unit.is_some() || q.number.fract() != 0.0 {
            let code = if v.is_string() {
                ErrorCode::PropertyConstraintViolation
            } else {
                ErrorCode::TypeConstraintViolation
            };
            return Err(error(code, path, "expected an integer"));
        }
        if q.number.abs() > 9.0e15 {
            return Err(out_of_range());
        }
        self.coerce_all(path, q.coercions)?;
        // Whole and within ±9e15 by the checks above.
        Ok(q.number as i64)
    }

    /// A 32-bit integer (OCPP "integer" fields such as transaction and request ids).
    pub fn int32(&mut self, v: &Value, path: &str) -> Result<i32, CallError> {
        let n = self.int(v, path)?;
        i32::try_from(n).map_err(|_| {
            error(
                ErrorCode::PropertyConstraintViolation,
                path,
                format!("{n} out of range"),
            )
        })
    }

    /// A connector / EVSE number (0..=255 in this product's model).
    pub fn connector(&mut self, v: &Value, path: &str) -> Result<ConnectorId, CallError> {
        let n = self.int(v, path)?;
        ConnectorId::try_from(n).map_err(|_| {
            error(
                ErrorCode::PropertyConstraintViolation,
                path,
                format!("connector {n} out of range"),
            )
        })
    }

    /// Text. Other JSON types are TypeConstraintViolation in both modes.
    pub fn text<'v>(&mut self, v: &'v Value, path: &str) -> Result<&'v str, CallError> {
        v.as_str()
            .ok_or_else(|| error(ErrorCode::TypeConstraintViolation, path, "expected text"))
    }

    /// Informational text (vendor, model, serial, …). Lenient mode leaves out what is not text
    /// (counted as UnparseableValue) rather than rejecting the message.
    pub fn info_text(
        &mut self,
        v: Option<&Value>,
        path: &str,
    ) -> Result<Option<String>, CallError> {
        match v {
            None => Ok(None),
            Some(Value::String(t)) => Ok(Some(t.clone())),
            Some(other) if self.lenient() => {
                self.coerce(
                    path,
                    Coercion::new(
                        CoercionKind::UnparseableValue,
                        format!("{} is not text; left out", clip(&other.to_string(), 40)),
                    ),
                )?;
                Ok(None)
            }
            Some(_) => Err(error(
                ErrorCode::TypeConstraintViolation,
                path,
                "expected text",
            )),
        }
    }

    /// Lenient mode turns a failed read of an optional, non-essential field into "absent"
    /// (counted as UnparseableValue); strict mode passes the CALLERROR on.
    pub fn soft<T>(
        &mut self,
        read: Result<T, CallError>,
        path: &str,
    ) -> Result<Option<T>, CallError> {
        match read {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.lenient() => {
                self.coerce(
                    path,
                    Coercion::new(CoercionKind::UnparseableValue, e.description),
                )?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A boolean. Lenient: `"true"` / `"false"` as text (any case) are coerced.
    pub fn boolean(&mut self, v: &Value, path: &str) -> Result<bool, CallError> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => {
                self.coerce(
                    path,
                    Coercion::new(CoercionKind::EnumCase, "boolean as text"),
                )?;
                Ok(true)
            }
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => {
                self.coerce(
                    path,
                    Coercion::new(CoercionKind::EnumCase, "boolean as text"),
                )?;
                Ok(false)
            }
            _ => Err(error(
                ErrorCode::TypeConstraintViolation,
                path,
                "expected a boolean",
            )),
        }
    }

    /// An enum value; lenient mode fixes the case. Unknown → PropertyConstraintViolation.
    pub fn enumeration(
        &mut self,
        v: &Value,
        path: &str,
        allowed: &[&'static str],
    ) -> Result<&'static str, CallError> {
        if !v.is_string() {
            return Err(error(
                ErrorCode::TypeConstraintViolation,
                path,
                "expected text",
            ));
        }
        let (value, coercion) = parse_enum(v, allowed)
            .map_err(|reason| error(ErrorCode::PropertyConstraintViolation, path, reason))?;
        if let Some(c) = coercion {
            self.coerce(path, c)?;
        }
        Ok(value)
    }

    /// An optional enum value of no consequence: lenient mode drops what it cannot read
    /// (counted as UnparseableValue) instead of rejecting the message.
    pub fn soft_enumeration(
        &mut self,
        v: Option<&Value>,
        path: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, CallError> {
        let Some(v) = v else { return Ok(None) };
        match self.enumeration(v, path, allowed) {
            Ok(value) => Ok(Some(value)),
            Err(e) if self.lenient() => {
                self.coerce(
                    path,
                    Coercion::new(CoercionKind::UnparseableValue, e.description),
                )?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A timestamp. Lenient: zone-less ones are taken as UTC; one that cannot be read is left
    /// out (`None`, counted as UnparseableValue) — the receive time stands in for it.
    pub fn timestamp(
        &mut self,
        v: Option<&Value>,
        path: &str,
    ) -> Result<Option<DateTime<Utc>>, CallError> {
        let Some(v) = v else { return Ok(None) };
        match parse_timestamp(v) {
            Ok((t, coercions)) => {
                self.coerce_all(path, coercions)?;
                Ok(Some(t))
            }
            Err(reason) => {
                if self.lenient() {
                    self.coerce(path, Coercion::new(CoercionKind::UnparseableValue, reason))?;
                    Ok(None)
                } else if v.is_string() {
                    Err(error(ErrorCode::PropertyConstraintViolation, path, reason))
                } else {
                    Err(error(ErrorCode::TypeConstraintViolation, path, reason))
                }
            }
        }
    }

    /// An array. Lenient: a single object where an array is defined is taken as a list of one
    /// (1.5-era payloads), counted as LegacyFieldName.
    pub fn list<'v>(&mut self, v: &'v Value, path: &str) -> Result<Vec<&'v Value>, CallError> {
        match v {
            Value::Array(items) => Ok(items.iter().collect()),
            Value::Object(_) if self.lenient() => {
                self.coerce(
                    path,
                    Coercion::new(
                        CoercionKind::LegacyFieldName,
                        "single object where a list is defined",
                    ),
                )?;
                Ok(vec![v])
            }
            _ => Err(error(
                ErrorCode::TypeConstraintViolation,
                path,
                "expected a list",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: &Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lenient_coerces_and_records() {
        let mut s = Sanitizer::new(Mode::Lenient);
        assert_eq!(s.int(&json!("3"), "connectorId"), Ok(3));
        assert_eq!(s.connector(&json!(2), "connectorId"), Ok(2));
        assert_eq!(s.boolean(&json!("TRUE"), "offline"), Ok(true));
        let o = obj(&json!({"IdTag": "X", "timestamp": null}));
        assert_eq!(s.get(&o, "", "idTag", &[]), Ok(Some(&json!("X"))));
        assert_eq!(s.get(&o, "", "timestamp", &[]), Ok(None));
        assert_eq!(s.timestamp(Some(&json!("soon")), "timestamp"), Ok(None));
        let kinds: Vec<_> = s.coercions().iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![
                CoercionKind::NumberAsString,
                CoercionKind::EnumCase,
                CoercionKind::LegacyFieldName,
                CoercionKind::UnparseableValue
            ]
        );
    }

    #[test]
    fn strict_refuses_with_the_matching_code() {
        let mut s = Sanitizer::new(Mode::Strict);
        let code = |r: Result<i64, CallError>| r.err().map(|e| e.code);
        assert_eq!(
            code(s.int(&json!("3"), "connectorId")),
            Some(ErrorCode::TypeConstraintViolation)
        );
        assert_eq!(
            s.enumeration(&json!("charging"), "status", &["Charging"])
                .err()
                .map(|e| e.code),
            Some(ErrorCode::PropertyConstraintViolation)
        );
        let o = obj(&json!({"idtag": "X"}));
        assert_eq!(
            s.get(&o, "", "idTag", &[]).err().map(|e| e.code),
            Some(ErrorCode::FormatViolation)
        );
        assert_eq!(
            s.require(&obj(&json!({})), "", "idTag", &[])
                .err()
                .map(|e| e.code),
            Some(ErrorCode::OccurrenceConstraintViolation)
        );
        assert_eq!(
            s.timestamp(Some(&json!("2024-01-01 12:00")), "timestamp")
                .err()
                .map(|e| e.code),
            Some(ErrorCode::PropertyConstraintViolation)
        );
        assert!(s.coercions().is_empty());
    }

    #[test]
    fn numbers_that_are_not_integers_are_refused_in_both_modes() {
        for mode in [Mode::Lenient, Mode::Strict] {
            let mut s = Sanitizer::new(mode);
            assert!(s.int(&json!(1.5), "x").is_err());
            assert!(s.int(&json!("1.5"), "x").is_err());
            assert!(s.int(&json!("5 kW"), "x").is_err());
            assert!(s.int(&json!(true), "x").is_err());
            assert!(s.int(&json!(1e300), "x").is_err());
            assert!(s.connector(&json!(256), "x").is_err());
            assert!(s.connector(&json!(-1), "x").is_err());
            assert!(s.int32(&json!(3_000_000_000_i64), "x").is_err());
        }
    }
}
