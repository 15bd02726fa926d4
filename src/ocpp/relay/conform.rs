//! The sanitized payload the upstream CSMS receives (`upstream.forward = "sanitized"`): a
//! charger→CSMS CALL payload re-written so that it satisfies the official JSON schema of its
//! action (OCPP-J 1.6 JSON schemas; OCPP 2.0.1 Part 3), reading it the way the lenient
//! dialects do (CONTRACT §4): numbers written as text, enum values in the wrong case, 1.5-era
//! field names, zone-less timestamps, and meter samples with unit suffixes (`"14.4kW"` →
//! `"14400"` with unit `W`, the value SCADA sees too).
//!
//! Pure: JSON in, JSON out. When the payload cannot be made conformant (a required field is
//! missing or unreadable, an unknown action), [`conform`] returns `None` and the caller
//! forwards the charger's original payload: the upstream then sees exactly what the charger
//! sent, which is better than an invented value.

use chrono::SecondsFormat;
use serde_json::{Map, Number, Value};

use crate::mapping::charger::SampleValue;
use crate::ocpp::sanitize::schema::{check, Field, Ty};
use crate::ocpp::sanitize::{
    find_field, normalise_sample, parse_enum, parse_measurand, parse_number, parse_timestamp,
    BaseUnit,
};
use crate::ocpp::{v16, v201, Version};

/// The schema-conformant form of `payload` for `action`, or `None` when there is none (see
/// the module doc). A payload that already conforms comes back with the same meaning.
pub fn conform(version: Version, action: &str, payload: &Value) -> Option<Value> {
    let schema = match version {
        Version::V16 => v16::schema_of(action)?,
        Version::V201 => v201::schema_of(action)?,
    };
    // Even a payload that passes the schema may hide a unit suffix in 1.6 sample text.
    let out = value(payload, schema, version)?;
    check(&out, schema, version).is_ok().then_some(out)
}

fn value(v: &Value, ty: &Ty, version: Version) -> Option<Value> {
    match ty {
        Ty::Any => Some(v.clone()),
        Ty::Str(max) => {
            let text = match v {
                Value::String(s) => s.trim().to_owned(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            // Cutting could turn one idTag into another: too long is unreadable (an optional
            // field is left out, a required one sends the original payload).
            (text.chars().count() <= *max).then_some(Value::String(text))
        }
        Ty::Int if v.is_i64() || v.is_u64() => Some(v.clone()),
        Ty::Int => {
            let x = parse_number(v, false).ok()?.in_base_unit();
            (x.fract() == 0.0 && x.abs() < 9.0e15).then(|| Value::from(x as i64))
        }
        Ty::Num => match v {
            Value::Number(_) => Some(v.clone()),
            _ => Number::from_f64(parse_number(v, false).ok()?.in_base_unit()).map(Value::Number),
        },
        Ty::Bool => match v {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
            _ => None,
        },
        Ty::DateTime => {
            let (t, _) = parse_timestamp(v).ok()?;
            Some(Value::String(
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            ))
        }
        Ty::Enum(allowed) => parse_enum(v, allowed)
            .ok()
            .map(|(name, _)| Value::String(name.to_owned())),
        Ty::Arr(item, _, _) => {
            let items: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                // A single object where a list is defined: the list of that one.
                Value::Object(_) => vec![v],
                _ => return None,
            };
            items
                .into_iter()
                .map(|i| value(i, item, version))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
        }
        Ty::Obj(fields) => object(v.as_object()?, fields, version).map(Value::Object),
    }
}

fn object(
    obj: &Map<String, Value>,
    fields: &[Field],
    version: Version,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for field in fields {
        match find_field(obj, field.name, legacy_names(field.name)) {
            Some((v, _)) if !v.is_null() => match value(v, &field.ty, version) {
                Some(converted) => {
                    out.insert(field.name.to_owned(), converted);
                }
                None if field.required => return None,
                // An optional field we cannot read is left out rather than invented.
                None => {}
            },
            _ if field.required => return None,
            _ => {}
        }
    }
    if version == Version::V201 {
        if let Some(custom) = obj.get("customData").filter(|c| c.is_object()) {
            out.insert("customData".to_owned(), custom.clone());
        }
    }
    if is_sampled_value(fields) {
        sampled_value(obj, &mut out, version);
    }
    Some(out)
}

/// The OCPP 1.5 names the dialects also accept (see `sanitize::names`).
fn legacy_names(name: &str) -> &'static [&'static str] {
    match name {
        "meterValue" => &["values"],
        "sampledValue" => &["value"],
        _ => &[],
    }
}

fn is_sampled_value(fields: &[Field]) -> bool {
    fields.iter().any(|f| f.name == "value") && fields.iter().any(|f| f.name == "measurand")
}

/// Meter samples in the base unit of their measurand, as the mapping engine reads them.
fn sampled_value(raw: &Map<String, Value>, out: &mut Map<String, Value>, version: Version) {
    let Some((raw_value, _)) = find_field(raw, "value", &[]) else {
        return;
    };
    let measurand_text = out
        .get("measurand")
        .and_then(Value::as_str)
        .unwrap_or("Energy.Active.Import.Register");
    let (measurand, _) = parse_measurand(measurand_text);
    match version {
        Version::V16 => {
            let unit = raw.get("unit").and_then(Value::as_str);
            let n = normalise_sample(&measurand, raw_value, unit, 0, true);
            if let (SampleValue::Valid(x), Some(base)) = (
                n.value,
                crate::ocpp::sanitize::parse_unit(&n.unit).map(|(u, _)| u.base),
            ) {
                out.insert("value".to_owned(), Value::String(decimal(x)));
                match unit_symbol_16(base) {
                    Some(symbol) => out.insert("unit".to_owned(), Value::String(symbol.into())),
                    None => out.remove("unit"),
                };
            }
        }
        Version::V201 => {
            let uom = raw.get("unitOfMeasure").and_then(Value::as_object);
            let unit = uom.and_then(|u| u.get("unit")).and_then(Value::as_str);
            let multiplier = uom
                .and_then(|u| u.get("multiplier"))
                .and_then(|m| parse_number(m, false).ok())
                .map_or(0, |q| q.in_base_unit() as i32);
            let n = normalise_sample(&measurand, raw_value, unit, multiplier, false);
            if let SampleValue::Valid(x) = n.value {
                if let Some(number) = Number::from_f64(x) {
                    out.insert("value".to_owned(), Value::Number(number));
                    let mut uom = Map::new();
                    if !n.unit.is_empty() {
                        uom.insert("unit".to_owned(), Value::String(n.unit.clone()));
                    }
                    uom.insert("multiplier".to_owned(), Value::from(0));
                    out.insert("unitOfMeasure".to_owned(), Value::Object(uom));
                }
            }
        }
    }
}

/// The 1.6 UnitOfMeasure spelling of a base unit; `None` where the enum has none.
fn unit_symbol_16(base: BaseUnit) -> Option<&'static str> {
    Some(match base {
        BaseUnit::Hz => "Hertz",
        BaseUnit::Vah => return None,
        BaseUnit::Varh => "varh",
        other => other.symbol(),
    })
}

/// A sample value as 1.6 text: integral values without a fraction (`14400`, not `14400.0`).
fn decimal(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conformant_payload_is_unchanged() {
        let p = json!({"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [{"value": "7200", "measurand": "Power.Active.Import", "unit": "W"}]}]});
        assert_eq!(conform(Version::V16, "MeterValues", &p), Some(p.clone()));
    }

    #[test]
    fn unit_suffixes_become_base_units_in_16() {
        let p = json!({"connectorId": "1", "transactionId": 7, "meterValue": [{
        "timestamp": "2026-01-01 00:00:00",
        "sampledValue": [
            {"value": "14.4kW", "measurand": "power.active.import"},
            {"value": "12,5 kWh", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}
        ]}]});
        let out = conform(Version::V16, "MeterValues", &p).unwrap_or_default();
        assert_eq!(
            out,
            json!({"connectorId": 1, "transactionId": 7, "meterValue": [{
            "timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [
                {"value": "14400", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "12500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            ]}]})
        );
    }

    #[test]
    fn unit_suffixes_become_base_units_in_201() {
        let p = json!({"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [{"value": "14.4kW", "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "kW"}}]}]});
        let out = conform(Version::V201, "MeterValues", &p).unwrap_or_default();
        assert_eq!(
            out["meterValue"][0]["sampledValue"][0],
            json!({"value": 14400.0, "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "W", "multiplier": 0}})
        );
    }

    #[test]
    fn unknown_fields_are_dropped_and_enum_cases_fixed() {
        let p = json!({"connectorId": 1, "errorCode": "noerror", "status": "charging",
            "vendorGadget": 3});
        assert_eq!(
            conform(Version::V16, "StatusNotification", &p),
            Some(json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging"}))
        );
    }

    #[test]
    fn overlong_text_is_never_cut() {
        let long = "T".repeat(21);
        assert_eq!(
            conform(Version::V16, "Authorize", &json!({"idTag": long})),
            None
        );
        let p = json!({"connectorId": 1, "errorCode": "NoError", "status": "Available",
            "info": "x".repeat(51)});
        assert_eq!(
            conform(Version::V16, "StatusNotification", &p),
            Some(json!({"connectorId": 1, "errorCode": "NoError", "status": "Available"}))
        );
    }

    #[test]
    fn what_cannot_be_made_conformant_is_none() {
        assert_eq!(
            conform(Version::V16, "StartTransaction", &json!({"idTag": "A"})),
            None
        );
        assert_eq!(conform(Version::V16, "NoSuchAction", &json!({})), None);
        let bad = json!({"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
            "sampledValue": [{"value": "n/a", "measurand": "Power.Active.Import"}]}]});
        // 1.6 sample values are text: an unreadable one is passed on as written.
        assert_eq!(
            conform(Version::V16, "MeterValues", &bad),
            Some(bad.clone())
        );
    }
}
