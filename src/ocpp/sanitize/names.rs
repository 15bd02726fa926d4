//! Names: enum values in the wrong case (`"charging"`, `"suspendedEV"`) and OCPP 1.5-era or
//! mis-cased field names (`values` for `meterValue`, `idtag` for `idTag`) — CONTRACT §4.

use serde_json::{Map, Value};

use super::{clip, Coercion};
use crate::mapping::charger::{CoercionKind, Measurand};

/// Compares enum spellings the way legacy firmwares get them wrong: case, `_`, `-` and blanks.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Finds `text` among `allowed`: exactly (second element `true`), or unambiguously when case
/// and separators are ignored (`false`).
pub fn match_enum(text: &str, allowed: &[&'static str]) -> Option<(&'static str, bool)> {
    if let Some(exact) = allowed.iter().find(|a| **a == text) {
        return Some((exact, true));
    }
    let folded = fold(text);
    if folded.is_empty() {
        return None;
    }
    let mut found = allowed.iter().filter(|a| fold(a) == folded);
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some((first, false))
}

/// Reads an enum value: the canonical spelling, and an [`CoercionKind::EnumCase`] coercion when
/// the charger wrote it differently. Unknown values and non-text are errors.
pub fn parse_enum(
    v: &Value,
    allowed: &[&'static str],
) -> Result<(&'static str, Option<Coercion>), String> {
    let Value::String(text) = v else {
        return Err(format!("{} is not text", clip(&v.to_string(), 40)));
    };
    match match_enum(text, allowed) {
        Some((name, true)) => Ok((name, None)),
        Some((name, false)) => Ok((
            name,
            Some(Coercion::new(
                CoercionKind::EnumCase,
                format!("\"{}\" taken as \"{name}\"", clip(text, 40)),
            )),
        )),
        None => Err(format!("\"{}\" is not a known value", clip(text, 40))),
    }
}

/// Looks a field up: by its name; else by one of its `legacy` names (1.5-era); else by any of
/// these names in another case. The latter two come with a
/// [`CoercionKind::LegacyFieldName`] coercion.
pub fn find_field<'v>(
    obj: &'v Map<String, Value>,
    name: &str,
    legacy: &[&str],
) -> Option<(&'v Value, Option<Coercion>)> {
    if let Some(v) = obj.get(name) {
        return Some((v, None));
    }
    let coercion = |found: &str| {
        Some(Coercion::new(
            CoercionKind::LegacyFieldName,
            format!("field \"{}\" taken as \"{name}\"", clip(found, 40)),
        ))
    };
    for old in legacy {
        if let Some(v) = obj.get(*old) {
            return Some((v, coercion(old)));
        }
    }
    for (key, v) in obj {
        if key.eq_ignore_ascii_case(name) || legacy.iter().any(|old| key.eq_ignore_ascii_case(old))
        {
            return Some((v, coercion(key)));
        }
    }
    None
}

/// Measurand names of OCPP 1.6 and 2.0.1 together.
pub const MEASURANDS: &[&str] = &[
    "Current.Export",
    "Current.Import",
    "Current.Offered",
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Active.Net",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Energy.Reactive.Net",
    "Energy.Apparent.Net",
    "Energy.Apparent.Import",
    "Energy.Apparent.Export",
    "Frequency",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Factor",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "RPM",
    "SoC",
    "Temperature",
    "Voltage",
];

/// Reads a measurand name. Known names in the wrong case are fixed ([`CoercionKind::EnumCase`]);
/// unknown names are kept as [`Measurand::Other`] and reported as
/// [`CoercionKind::UnparseableValue`].
pub fn parse_measurand(text: &str) -> (Measurand, Option<Coercion>) {
    let (name, coercion) = match match_enum(text, MEASURANDS) {
        Some((name, true)) => (name.to_string(), None),
        Some((name, false)) => (
            name.to_string(),
            Some(Coercion::new(
                CoercionKind::EnumCase,
                format!("measurand \"{}\" taken as \"{name}\"", clip(text, 40)),
            )),
        ),
        None => (
            clip(text, 50),
            Some(Coercion::new(
                CoercionKind::UnparseableValue,
                format!("unknown measurand \"{}\" kept by name", clip(text, 40)),
            )),
        ),
    };
    let measurand = match name.as_str() {
        "Power.Active.Import" => Measurand::PowerActiveImport,
        "Energy.Active.Import.Register" => Measurand::EnergyActiveImportRegister,
        "Current.Import" => Measurand::CurrentImport,
        "Voltage" => Measurand::Voltage,
        _ => Measurand::Other(name),
    };
    (measurand, coercion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STATUS: &[&str] = &[
        "Available",
        "Preparing",
        "Charging",
        "SuspendedEVSE",
        "SuspendedEV",
        "Finishing",
        "Reserved",
        "Unavailable",
        "Faulted",
    ];

    #[test]
    fn enum_values_in_the_wrong_case_are_fixed() {
        let rows: &[(&str, Option<(&str, bool)>)] = &[
            ("Charging", Some(("Charging", true))),
            ("charging", Some(("Charging", false))),
            ("CHARGING", Some(("Charging", false))),
            ("suspendedEV", Some(("SuspendedEV", false))),
            ("SuspendedEv", Some(("SuspendedEV", false))),
            ("suspended_evse", Some(("SuspendedEVSE", false))),
            ("Suspended EVSE", Some(("SuspendedEVSE", false))),
            ("SuspendedEVSE", Some(("SuspendedEVSE", true))),
            ("Charge", None),
            ("", None),
            ("_", None),
        ];
        for (text, want) in rows {
            assert_eq!(match_enum(text, STATUS), *want, "{text}");
        }
    }

    #[test]
    fn ambiguous_folds_are_refused() {
        assert_eq!(match_enum("ab", &["A_B", "a-b"]), None);
        assert_eq!(match_enum("A_B", &["A_B", "a-b"]), Some(("A_B", true)));
    }

    #[test]
    fn parse_enum_reports_the_case_fix() {
        let (v, c) = parse_enum(&json!("charging"), STATUS).unwrap_or(("", None));
        assert_eq!(v, "Charging");
        assert_eq!(c.map(|c| c.kind), Some(CoercionKind::EnumCase));
        assert!(parse_enum(&json!("Charging"), STATUS).is_ok_and(|(_, c)| c.is_none()));
        assert!(parse_enum(&json!(3), STATUS).is_err());
        assert!(parse_enum(&json!("Broken"), STATUS).is_err());
    }

    #[test]
    fn fields_are_found_by_legacy_and_mis_cased_names() {
        let obj = json!({"idtag": "A", "values": [1], "connectorId": 1});
        let obj = obj.as_object().cloned().unwrap_or_default();
        let (v, c) = find_field(&obj, "connectorId", &[]).unwrap_or((&Value::Null, None));
        assert_eq!((v, c), (&json!(1), None));
        let (v, c) = find_field(&obj, "idTag", &[]).unwrap_or((&Value::Null, None));
        assert_eq!(v, &json!("A"));
        assert_eq!(c.map(|c| c.kind), Some(CoercionKind::LegacyFieldName));
        let (v, c) = find_field(&obj, "meterValue", &["values"]).unwrap_or((&Value::Null, None));
        assert_eq!(v, &json!([1]));
        assert_eq!(c.map(|c| c.kind), Some(CoercionKind::LegacyFieldName));
        assert!(find_field(&obj, "timestamp", &[]).is_none());
    }

    #[test]
    fn measurands_are_read_case_insensitively_and_unknown_ones_kept() {
        assert_eq!(
            parse_measurand("Power.Active.Import"),
            (Measurand::PowerActiveImport, None)
        );
        let (m, c) = parse_measurand("energy.active.import.register");
        assert_eq!(m, Measurand::EnergyActiveImportRegister);
        assert_eq!(c.map(|c| c.kind), Some(CoercionKind::EnumCase));
        let (m, c) = parse_measurand("soc");
        assert_eq!(m, Measurand::Other("SoC".into()));
        assert_eq!(c.map(|c| c.kind), Some(CoercionKind::EnumCase));
        let (m, c) = parse_measurand("Vendor.Thing");
        assert_eq!(m, Measurand::Other("Vendor.Thing".into()));
        assert_eq!(c.map(|c| c.kind), Some(CoercionKind::UnparseableValue));
    }
}
