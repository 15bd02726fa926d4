//! Numbers and units of meter samples (OCPP 1.6 §7.45 SampledValue / §7.47 UnitOfMeasure,
//! 2.0.1 Part 2 §2.48 SampledValueType / §2.56 UnitOfMeasureType and Appendix 2.1
//! "Standardized Units of Measurements").
//!
//! Legacy chargers write `"14.4kW"`, `"14400 W"`, `"14,4"`, `" 7.2 "`, `"1.5e3"`. This module
//! reads them, applies unit prefixes (k, M) and returns the value in the base unit the
//! measurand calls for (W, Wh, A, V, …). Anything it cannot read with certainty — `"n/a"`, `""`,
//! `"14.4.4kW"`, NaN, infinity, an unknown unit, a unit that does not fit the measurand — is an
//! error that callers turn into [`SampleValue::Invalid`]. It is never 0.

use serde_json::Value;

use super::{clip, Coercion};
use crate::mapping::charger::{CoercionKind, Measurand, SampleValue};

/// A unit without its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaseUnit {
    W,
    Wh,
    Va,
    Vah,
    Var,
    Varh,
    A,
    V,
    Hz,
    Celsius,
    Fahrenheit,
    Kelvin,
    Percent,
}

impl BaseUnit {
    /// The spelling used on the wire and in the normalised sample.
    pub fn symbol(self) -> &'static str {
        match self {
            BaseUnit::W => "W",
            BaseUnit::Wh => "Wh",
            BaseUnit::Va => "VA",
            BaseUnit::Vah => "VAh",
            BaseUnit::Var => "var",
            BaseUnit::Varh => "varh",
            BaseUnit::A => "A",
            BaseUnit::V => "V",
            BaseUnit::Hz => "Hz",
            BaseUnit::Celsius => "Celsius",
            BaseUnit::Fahrenheit => "Fahrenheit",
            BaseUnit::Kelvin => "K",
            BaseUnit::Percent => "Percent",
        }
    }
}

/// A unit as written: its base unit and the factor of its prefix (`kWh` = Wh × 1000).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    pub base: BaseUnit,
    pub factor: f64,
}

impl Unit {
    const fn new(base: BaseUnit, factor: f64) -> Unit {
        Unit { base, factor }
    }

    /// True when both spell the same quantity (same base, same factor).
    pub fn same_as(&self, other: &Unit) -> bool {
        self.base == other.base && approx_eq(self.factor, other.factor)
    }
}

fn approx_eq(a: f64, b: f64) -> bool {
    (a - b).abs() <= f64::EPSILON * 16.0 * a.abs().max(b.abs())
}

/// Spellings accepted exactly. The OCPP 1.6 UnitOfMeasure enum (including its "Celcius"
/// typo), the 2.0.1 standardized units, and common variants seen in the field.
const UNITS: &[(&str, Unit)] = &[
    ("W", Unit::new(BaseUnit::W, 1.0)),
    ("kW", Unit::new(BaseUnit::W, 1e3)),
    ("MW", Unit::new(BaseUnit::W, 1e6)),
    ("Wh", Unit::new(BaseUnit::Wh, 1.0)),
    ("kWh", Unit::new(BaseUnit::Wh, 1e3)),
    ("MWh", Unit::new(BaseUnit::Wh, 1e6)),
    ("VA", Unit::new(BaseUnit::Va, 1.0)),
    ("kVA", Unit::new(BaseUnit::Va, 1e3)),
    ("MVA", Unit::new(BaseUnit::Va, 1e6)),
    ("VAh", Unit::new(BaseUnit::Vah, 1.0)),
    ("kVAh", Unit::new(BaseUnit::Vah, 1e3)),
    ("MVAh", Unit::new(BaseUnit::Vah, 1e6)),
    ("var", Unit::new(BaseUnit::Var, 1.0)),
    ("kvar", Unit::new(BaseUnit::Var, 1e3)),
    ("Mvar", Unit::new(BaseUnit::Var, 1e6)),
    ("VAr", Unit::new(BaseUnit::Var, 1.0)),
    ("kVAr", Unit::new(BaseUnit::Var, 1e3)),
    ("varh", Unit::new(BaseUnit::Varh, 1.0)),
    ("kvarh", Unit::new(BaseUnit::Varh, 1e3)),
    ("Mvarh", Unit::new(BaseUnit::Varh, 1e6)),
    ("VArh", Unit::new(BaseUnit::Varh, 1.0)),
    ("kVArh", Unit::new(BaseUnit::Varh, 1e3)),
    ("A", Unit::new(BaseUnit::A, 1.0)),
    ("kA", Unit::new(BaseUnit::A, 1e3)),
    ("V", Unit::new(BaseUnit::V, 1.0)),
    ("kV", Unit::new(BaseUnit::V, 1e3)),
    ("Hz", Unit::new(BaseUnit::Hz, 1.0)),
    ("Hertz", Unit::new(BaseUnit::Hz, 1.0)),
    ("Celsius", Unit::new(BaseUnit::Celsius, 1.0)),
    ("Celcius", Unit::new(BaseUnit::Celsius, 1.0)),
    ("°C", Unit::new(BaseUnit::Celsius, 1.0)),
    ("degC", Unit::new(BaseUnit::Celsius, 1.0)),
    ("Fahrenheit", Unit::new(BaseUnit::Fahrenheit, 1.0)),
    ("°F", Unit::new(BaseUnit::Fahrenheit, 1.0)),
    ("K", Unit::new(BaseUnit::Kelvin, 1.0)),
    ("Percent", Unit::new(BaseUnit::Percent, 1.0)),
    ("%", Unit::new(BaseUnit::Percent, 1.0)),
];

/// Reads a unit spelling. Returns the unit and whether its case had to be fixed (`"kwh"`,
/// `"KW"`). A lower-case `m` prefix is refused: `"mW"` is milliwatt, `"MW"` megawatt, and
/// guessing between them is how a charger ends up a million times off.
pub fn parse_unit(text: &str) -> Option<(Unit, bool)> {
    let text = text.trim();
    if let Some((_, unit)) = UNITS.iter().find(|(name, _)| *name == text) {
        return Some((*unit, false));
    }
    if text.starts_with('m') && text.len() > 1 {
        return None;
    }
    let mut found = UNITS
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, unit)| *unit);
    let first = found.next()?;
    if found.all(|u| u.same_as(&first)) {
        Some((first, true))
    } else {
        None
    }
}

/// A number as read: the figure as written and the unit suffix, if the text carried one.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    /// The number as written (`14.4` for `"14.4kW"`).
    pub number: f64,
    /// The unit suffix written after the number.
    pub unit: Option<Unit>,
    /// Coercions needed to read it (text instead of a number, decimal comma, unit suffix).
    pub coercions: Vec<Coercion>,
}

impl Quantity {
    /// The value in the base unit of its suffix (`"14.4kW"` → 14400).
    pub fn in_base_unit(&self) -> f64 {
        self.number * self.unit.map_or(1.0, |u| u.factor)
    }
}

/// True when `text` is a plain decimal number as OCPP 1.6 expects in a sampled value
/// (`-?digits[.digits][e[+-]digits]`, nothing around it). Strict mode accepts only these.
pub fn is_plain_decimal(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Splits `"14.4 kW"` into the numeric part `"14.4"` and the rest `"kW"`. The numeric part is
/// a sign, digits with `.` or `,`, and an exponent only when digits follow the `e`.
fn split_number(text: &str) -> (&str, &str) {
    let b = text.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b',') {
        i += 1;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    (&text[..i], text[i..].trim_start())
}

/// Reads a number written as text: blanks around it, decimal comma and unit suffix allowed
/// (each reported), nothing else. Errors carry the reason.
pub fn parse_number_text(s: &str) -> Result<Quantity, String> {
    let mut coercions = Vec::new();
    let quoted = clip(s, 40);
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err("empty value".to_string());
    }
    let (num, rest) = split_number(trimmed);
    if !num.bytes().any(|c| c.is_ascii_digit()) {
        return Err(format!("\"{quoted}\" is not a number"));
    }
    let dots = num.matches('.').count();
    let commas = num.matches(',').count();
    let normalised = match (dots, commas) {
        (0 | 1, 0) => num.to_string(),
        (0, 1) => {
            coercions.push(Coercion::new(
                CoercionKind::DecimalComma,
                format!("decimal comma in \"{quoted}\""),
            ));
            num.replace(',', ".")
        }
        _ => return Err(format!("malformed number \"{}\"", clip(num, 40))),
    };
    let number: f64 = normalised
        .parse()
        .map_err(|_| format!("malformed number \"{}\"", clip(num, 40)))?;
    if !number.is_finite() {
        return Err(format!("number \"{quoted}\" out of range"));
    }
    let unit = if rest.is_empty() {
        None
    } else {
        let (unit, _case_fixed) = parse_unit(rest)
            .ok_or_else(|| format!("unknown unit \"{}\" in \"{quoted}\"", clip(rest, 20)))?;
        coercions.push(Coercion::new(
            CoercionKind::UnitSuffix,
            format!("unit suffix in \"{quoted}\""),
        ));
        Some(unit)
    };
    // "1e308MW" is a finite number in a unit whose base-unit value is not.
    if unit.is_some_and(|u| !(number * u.factor).is_finite()) {
        return Err(format!("number \"{quoted}\" out of range"));
    }
    Ok(Quantity {
        number,
        unit,
        coercions,
    })
}

/// [`normalise_sample`] of a value written as text (OCPP 1.6 sampled values).
pub fn normalise_text(
    measurand: &Measurand,
    text: &str,
    unit_field: Option<&str>,
    multiplier: i32,
) -> Normalised {
    normalise_sample(
        measurand,
        &Value::String(text.to_string()),
        unit_field,
        multiplier,
        true,
    )
}

/// Reads a number from a JSON value: a JSON number, or text with optional surrounding blanks,
/// decimal comma and unit suffix. `text_expected` says whether the message defines the field as
/// text (OCPP 1.6 sampled values); otherwise text is a [`CoercionKind::NumberAsString`].
///
/// Errors carry the reason; callers must treat the value as unknown, never as 0.
pub fn parse_number(v: &Value, text_expected: bool) -> Result<Quantity, String> {
    let mut coercions = Vec::new();
    match v {
        Value::Number(n) => {
            let x = n
                .as_f64()
                .ok_or_else(|| format!("number {} out of range", clip(&n.to_string(), 40)))?;
            if !x.is_finite() {
                return Err(format!("number {} out of range", clip(&n.to_string(), 40)));
            }
            if text_expected {
                coercions.push(Coercion::new(
                    CoercionKind::NumberAsString,
                    format!("JSON number {x} where text is defined"),
                ));
            }
            Ok(Quantity {
                number: x,
                unit: None,
                coercions,
            })
        }
        Value::String(s) => {
            if !text_expected {
                coercions.push(Coercion::new(
                    CoercionKind::NumberAsString,
                    format!("number written as text \"{}\"", clip(s, 40)),
                ));
            }
            let mut q = parse_number_text(s)?;
            coercions.append(&mut q.coercions);
            q.coercions = coercions;
            Ok(q)
        }
        Value::Null => Err("null value".to_string()),
        Value::Bool(b) => Err(format!("boolean {b} is not a number")),
        Value::Array(_) | Value::Object(_) => Err("structured value is not a number".to_string()),
    }
}

/// The canonical measurand name (OCPP 1.6 §7.31 Measurand / 2.0.1 MeasurandEnumType).
pub fn measurand_name(m: &Measurand) -> &str {
    match m {
        Measurand::PowerActiveImport => "Power.Active.Import",
        Measurand::EnergyActiveImportRegister => "Energy.Active.Import.Register",
        Measurand::CurrentImport => "Current.Import",
        Measurand::Voltage => "Voltage",
        Measurand::Other(name) => name,
    }
}

/// The base unit a measurand is reported in, `None` when any unit (or none) is acceptable.
pub fn expected_unit(m: &Measurand) -> Option<BaseUnit> {
    let name = measurand_name(m);
    let family = |prefix: &str| name.starts_with(prefix);
    if family("Energy.Active.") {
        Some(BaseUnit::Wh)
    } else if family("Energy.Reactive.") {
        Some(BaseUnit::Varh)
    } else if family("Energy.Apparent.") {
        Some(BaseUnit::Vah)
    } else if name == "Power.Factor" {
        None
    } else if family("Power.Reactive.") {
        Some(BaseUnit::Var)
    } else if family("Power.") {
        Some(BaseUnit::W)
    } else if family("Current.") {
        Some(BaseUnit::A)
    } else if name == "Voltage" {
        Some(BaseUnit::V)
    } else if name == "Frequency" {
        Some(BaseUnit::Hz)
    } else if name == "SoC" {
        Some(BaseUnit::Percent)
    } else {
        None
    }
}

/// A meter sample value after normalisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalised {
    pub value: SampleValue,
    /// The unit `value` is in: the measurand's base unit ("W", "Wh", "A", "V", …), or the
    /// charger's spelling for measurands without a known unit.
    pub unit: String,
    pub coercions: Vec<Coercion>,
}

/// Normalises one sampled value to the base unit of its measurand.
///
/// - `raw`: the `value` field (text in 1.6, a number in 2.0.1);
/// - `unit_field`: the `unit` (1.6) or `unitOfMeasure.unit` (2.0.1) field, if present;
/// - `multiplier`: 2.0.1 `unitOfMeasure.multiplier` (power of ten), 0 for 1.6;
/// - `text_expected`: true for 1.6, where the value is text by definition.
///
/// Without any unit the measurand's base unit is assumed (1.6 §7.45: "Default = Wh if the
/// (default) measurand is an Energy type"). A suffix in the value wins over a contradicting
/// unit field (counted as [`CoercionKind::UnitSuffixOverridesField`]). A value that cannot be
/// read, or whose unit does not fit the measurand, is [`SampleValue::Invalid`], with an
/// [`CoercionKind::UnparseableValue`] coercion.
pub fn normalise_sample(
    measurand: &Measurand,
    raw: &Value,
    unit_field: Option<&str>,
    multiplier: i32,
    text_expected: bool,
) -> Normalised {
    let name = measurand_name(measurand).to_string();
    let expected = expected_unit(measurand);
    let mut coercions = Vec::new();
    let raw_text = match raw {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let fallback_unit = || {
        expected
            .map(|u| u.symbol().to_string())
            .or_else(|| unit_field.map(str::to_string))
            .unwrap_or_default()
    };
    let invalid = |reason: String, mut coercions: Vec<Coercion>| {
        coercions.push(Coercion::new(
            CoercionKind::UnparseableValue,
            format!("{name} value \"{}\": {reason}", clip(&raw_text, 40)),
        ));
        Normalised {
            value: SampleValue::Invalid {
                raw: clip(&raw_text, 100),
                reason,
            },
            unit: fallback_unit(),
            coercions,
        }
    };

    let quantity = match parse_number(raw, text_expected) {
        Ok(q) => q,
        Err(reason) => return invalid(reason, coercions),
    };
    coercions.extend(quantity.coercions.iter().cloned());

    if !(-30..=30).contains(&multiplier) {
        return invalid(format!("multiplier {multiplier} out of range"), coercions);
    }
    let scale = 10f64.powi(multiplier);

    // The unit field: known spelling (case fixed if needed), or text we do not know.
    let field: Option<Result<Unit, &str>> = unit_field.map(|text| match parse_unit(text) {
        Some((unit, case_fixed)) => {
            if case_fixed {
                coercions.push(Coercion::new(
                    CoercionKind::EnumCase,
                    format!("unit \"{}\" in the wrong case", clip(text, 20)),
                ));
            }
            Ok(Unit::new(unit.base, unit.factor * scale))
        }
        None => Err(text),
    });

    let unit = match (quantity.unit, field) {
        (Some(suffix), field) => {
            let contradicts = match field {
                Some(Ok(f)) => !f.same_as(&suffix),
                Some(Err(_)) => true,
                None => multiplier != 0,
            };
            if contradicts {
                let stated = unit_field.unwrap_or("(none)");
                coercions.push(Coercion::new(
                    CoercionKind::UnitSuffixOverridesField,
                    format!(
                        "{name}: suffix in \"{}\" wins over unit field \"{}\" (multiplier {multiplier})",
                        clip(&raw_text, 40),
                        clip(stated, 20)
                    ),
                ));
            }
            suffix
        }
        (None, Some(Ok(f))) => f,
        (None, Some(Err(text))) => {
            if expected.is_none() {
                // A measurand we do not interpret, in a unit we do not know: pass it on.
                let value = quantity.number * scale;
                if !value.is_finite() {
                    return invalid("value out of range".to_string(), coercions);
                }
                return Normalised {
                    value: SampleValue::Valid(value),
                    unit: text.to_string(),
                    coercions,
                };
            }
            return invalid(format!("unknown unit \"{}\"", clip(text, 20)), coercions);
        }
        (None, None) => match expected {
            Some(base) => Unit::new(base, scale),
            None => {
                let value = quantity.number * scale;
                if !value.is_finite() {
                    return invalid("value out of range".to_string(), coercions);
                }
                return Normalised {
                    value: SampleValue::Valid(value),
                    unit: String::new(),
                    coercions,
                };
            }
        },
    };

    if let Some(base) = expected {
        if unit.base != base {
            return invalid(
                format!(
                    "unit {} does not fit {name} (expects {})",
                    unit.base.symbol(),
                    base.symbol()
                ),
                coercions,
            );
        }
    }
    let value = quantity.number * unit.factor;
    if !value.is_finite() {
        return invalid("value out of range".to_string(), coercions);
    }
    Normalised {
        value: SampleValue::Valid(value),
        unit: unit.base.symbol().to_string(),
        coercions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(c: &[Coercion]) -> Vec<CoercionKind> {
        c.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn units_are_read_with_prefixes_and_case_fixes() {
        use BaseUnit::*;
        type Want = Option<(BaseUnit, f64, bool)>;
        let rows: &[(&str, Want)] = &[
            ("W", Some((W, 1.0, false))),
            ("kW", Some((W, 1e3, false))),
            ("MW", Some((W, 1e6, false))),
            ("kw", Some((W, 1e3, true))),
            ("KW", Some((W, 1e3, true))),
            ("Wh", Some((Wh, 1.0, false))),
            ("kWh", Some((Wh, 1e3, false))),
            ("KWH", Some((Wh, 1e3, true))),
            ("MWh", Some((Wh, 1e6, false))),
            ("VA", Some((Va, 1.0, false))),
            ("kVA", Some((Va, 1e3, false))),
            ("var", Some((Var, 1.0, false))),
            ("kvar", Some((Var, 1e3, false))),
            ("kvarh", Some((Varh, 1e3, false))),
            ("A", Some((A, 1.0, false))),
            ("a", Some((A, 1.0, true))),
            ("V", Some((V, 1.0, false))),
            ("%", Some((Percent, 1.0, false))),
            ("Percent", Some((Percent, 1.0, false))),
            ("Celsius", Some((Celsius, 1.0, false))),
            ("Celcius", Some((Celsius, 1.0, false))),
            ("K", Some((Kelvin, 1.0, false))),
            ("Hertz", Some((Hz, 1.0, false))),
            (" kW ", Some((W, 1e3, false))),
            ("mW", None),
            ("mwh", None),
            ("kWhh", None),
            ("", None),
            ("watts", None),
            (".4kW", None),
        ];
        for (text, want) in rows {
            let got = parse_unit(text).map(|(u, fixed)| (u.base, u.factor, fixed));
            assert_eq!(got, *want, "unit {text:?}");
        }
    }

    #[test]
    fn plain_decimals_are_told_apart_from_decorated_numbers() {
        for ok in ["0", "14400", "-3.5", "1.5e3", "1E-2", "007"] {
            assert!(is_plain_decimal(ok), "{ok}");
        }
        for bad in [
            "", " 1", "1 ", "+1", "1.", ".5", "14,4", "14.4kW", "1e", "NaN", "inf", "--1",
        ] {
            assert!(!is_plain_decimal(bad), "{bad}");
        }
    }

    /// (input, text_expected) → Ok((number, suffix factor or None, coercion kinds)) or Err.
    #[test]
    fn numbers_are_read_from_text_with_units_and_commas() {
        use CoercionKind::*;
        type Row = (Value, bool, Option<(f64, Option<f64>, Vec<CoercionKind>)>);
        let rows: Vec<Row> = vec![
            (json!(14400), false, Some((14400.0, None, vec![]))),
            (json!(7.2), false, Some((7.2, None, vec![]))),
            (
                json!("14.4kW"),
                false,
                Some((14.4, Some(1e3), vec![NumberAsString, UnitSuffix])),
            ),
            (
                json!("14.4kW"),
                true,
                Some((14.4, Some(1e3), vec![UnitSuffix])),
            ),
            (
                json!("14400 W"),
                true,
                Some((14400.0, Some(1.0), vec![UnitSuffix])),
            ),
            (json!("14,4"), true, Some((14.4, None, vec![DecimalComma]))),
            (
                json!("14,4 kW"),
                true,
                Some((14.4, Some(1e3), vec![DecimalComma, UnitSuffix])),
            ),
            (json!(" 7.2 "), true, Some((7.2, None, vec![]))),
            (json!("1.5e3"), true, Some((1500.0, None, vec![]))),
            (json!("-2.5"), true, Some((-2.5, None, vec![]))),
            (json!("+2.5"), true, Some((2.5, None, vec![]))),
            (json!("22e"), true, None),
            (json!("5 e"), true, None),
            (json!("n/a"), true, None),
            (json!(""), true, None),
            (json!("   "), true, None),
            (json!("14.4.4kW"), true, None),
            (json!("1,234.5"), true, None),
            (json!("1,2,3"), true, None),
            (json!("NaN"), true, None),
            (json!("inf"), true, None),
            (json!("-Infinity"), true, None),
            (json!("1e999"), true, None),
            (json!("garbage"), true, None),
            (json!("12 apples"), true, None),
            (json!("1 234"), true, None),
            (json!("."), true, None),
            (json!("-"), true, None),
            (json!(null), true, None),
            (json!(true), true, None),
            (json!([1]), true, None),
            (json!({"v": 1}), true, None),
        ];
        for (input, text_expected, want) in rows {
            let got = parse_number(&input, text_expected)
                .ok()
                .map(|q| (q.number, q.unit.map(|u| u.factor), kinds(&q.coercions)));
            assert_eq!(got, want, "input {input} (text expected: {text_expected})");
        }
    }

    #[test]
    fn a_huge_json_number_is_refused_not_infinite() {
        let v: Value = serde_json::from_str("1e400").unwrap_or(Value::Null);
        assert!(parse_number(&v, false).is_err());
    }

    /// Found by the `ocpp_sanitize` fuzz target (2026-11-30): a finite number whose unit
    /// suffix takes it past f64 (1e308 × 1e6) was read as a Quantity worth infinity.
    #[test]
    fn a_suffix_that_overflows_is_refused_not_infinite() {
        let text = std::str::from_utf8(&[
            0x09, 0x09, 0x09, 0x09, 0x09, 0x09, 0x31, 0x65, 0x33, 0x30, 0x38, 0x4D, 0x57,
        ])
        .unwrap_or_default();
        assert_eq!(text, "\t\t\t\t\t\t1e308MW");
        assert_eq!(
            parse_number_text(text),
            Err("number \"\t\t\t\t\t\t1e308MW\" out of range".to_string())
        );
        assert!(parse_number_text("-1.7e308kWh").is_err());
        assert!(parse_number_text("1e302MW").is_ok_and(|q| q.in_base_unit().is_finite()));
        let n = sample(Measurand::PowerActiveImport, json!("1e308MW"), None, 0);
        assert!(matches!(n.value, SampleValue::Invalid { .. }), "{n:?}");
    }

    fn sample(m: Measurand, raw: Value, unit: Option<&str>, mult: i32) -> Normalised {
        normalise_sample(&m, &raw, unit, mult, true)
    }

    #[test]
    fn samples_are_normalised_to_the_base_unit_of_their_measurand() {
        use CoercionKind::*;
        use Measurand::*;
        type Row = (
            Measurand,
            Value,
            Option<&'static str>,
            i32,
            f64,
            &'static str,
            Vec<CoercionKind>,
        );
        let rows: Vec<Row> = vec![
            // MAPPING.md cases.
            (
                PowerActiveImport,
                json!("14.4kW"),
                None,
                0,
                14400.0,
                "W",
                vec![UnitSuffix],
            ),
            (
                PowerActiveImport,
                json!("14400 W"),
                None,
                0,
                14400.0,
                "W",
                vec![UnitSuffix],
            ),
            (
                PowerActiveImport,
                json!("14,4 kW"),
                None,
                0,
                14400.0,
                "W",
                vec![DecimalComma, UnitSuffix],
            ),
            (
                PowerActiveImport,
                json!("14,4"),
                Some("kW"),
                0,
                14400.0,
                "W",
                vec![DecimalComma],
            ),
            (
                PowerActiveImport,
                json!("14.4"),
                Some("kW"),
                0,
                14400.0,
                "W",
                vec![],
            ),
            (
                PowerActiveImport,
                json!("14400"),
                Some("W"),
                0,
                14400.0,
                "W",
                vec![],
            ),
            (
                PowerActiveImport,
                json!("14400"),
                None,
                0,
                14400.0,
                "W",
                vec![],
            ),
            (
                PowerActiveImport,
                json!(" 7.2 "),
                Some("kW"),
                0,
                7200.0,
                "W",
                vec![],
            ),
            (
                PowerActiveImport,
                json!("1.5e3"),
                Some("W"),
                0,
                1500.0,
                "W",
                vec![],
            ),
            (
                PowerActiveImport,
                json!("0.0144"),
                Some("MW"),
                0,
                14400.0,
                "W",
                vec![],
            ),
            // The suffix wins over a contradicting unit field, and is counted.
            (
                PowerActiveImport,
                json!("14.4kW"),
                Some("W"),
                0,
                14400.0,
                "W",
                vec![UnitSuffix, UnitSuffixOverridesField],
            ),
            (
                PowerActiveImport,
                json!("14400W"),
                Some("kW"),
                0,
                14400.0,
                "W",
                vec![UnitSuffix, UnitSuffixOverridesField],
            ),
            (
                PowerActiveImport,
                json!("14.4kW"),
                Some("kW"),
                0,
                14400.0,
                "W",
                vec![UnitSuffix],
            ),
            (
                PowerActiveImport,
                json!("14.4kW"),
                Some("A"),
                0,
                14400.0,
                "W",
                vec![UnitSuffix, UnitSuffixOverridesField],
            ),
            (
                PowerActiveImport,
                json!("14.4kW"),
                Some("parsecs"),
                0,
                14400.0,
                "W",
                vec![UnitSuffix, UnitSuffixOverridesField],
            ),
            (
                PowerActiveImport,
                json!("14.4kW"),
                Some("W"),
                3,
                14400.0,
                "W",
                vec![UnitSuffix],
            ),
            // Unit field in the wrong case.
            (
                PowerActiveImport,
                json!("14.4"),
                Some("kw"),
                0,
                14400.0,
                "W",
                vec![EnumCase],
            ),
            // Energy: kWh → Wh, default Wh.
            (
                EnergyActiveImportRegister,
                json!("1234.5"),
                None,
                0,
                1234.5,
                "Wh",
                vec![],
            ),
            (
                EnergyActiveImportRegister,
                json!("1.2345"),
                Some("kWh"),
                0,
                1234.5,
                "Wh",
                vec![],
            ),
            (
                EnergyActiveImportRegister,
                json!("12.5kWh"),
                None,
                0,
                12500.0,
                "Wh",
                vec![UnitSuffix],
            ),
            (
                EnergyActiveImportRegister,
                json!("12.5 KWH"),
                Some("Wh"),
                0,
                12500.0,
                "Wh",
                vec![UnitSuffix, UnitSuffixOverridesField],
            ),
            // Current and voltage.
            (
                CurrentImport,
                json!("16 A"),
                None,
                0,
                16.0,
                "A",
                vec![UnitSuffix],
            ),
            (
                CurrentImport,
                json!("15,8"),
                Some("A"),
                0,
                15.8,
                "A",
                vec![DecimalComma],
            ),
            (
                Voltage,
                json!("230V"),
                None,
                0,
                230.0,
                "V",
                vec![UnitSuffix],
            ),
            (Voltage, json!("0.4"), Some("kV"), 0, 400.0, "V", vec![]),
            // Others: their own base unit.
            (
                Other("SoC".into()),
                json!("80%"),
                None,
                0,
                80.0,
                "Percent",
                vec![UnitSuffix],
            ),
            (
                Other("SoC".into()),
                json!("80"),
                Some("Percent"),
                0,
                80.0,
                "Percent",
                vec![],
            ),
            (
                Other("Temperature".into()),
                json!("35.5"),
                Some("Celsius"),
                0,
                35.5,
                "Celsius",
                vec![],
            ),
            (
                Other("Temperature".into()),
                json!("35.5"),
                Some("Celcius"),
                0,
                35.5,
                "Celsius",
                vec![],
            ),
            (
                Other("Power.Offered".into()),
                json!("11kW"),
                None,
                0,
                11000.0,
                "W",
                vec![UnitSuffix],
            ),
            (
                Other("Energy.Reactive.Import.Register".into()),
                json!("2"),
                Some("kvarh"),
                0,
                2000.0,
                "varh",
                vec![],
            ),
            (
                Other("Power.Factor".into()),
                json!("0.98"),
                None,
                0,
                0.98,
                "",
                vec![],
            ),
            (
                Other("Vendor.Thing".into()),
                json!("3"),
                Some("bananas"),
                0,
                3.0,
                "bananas",
                vec![],
            ),
        ];
        for (m, raw, unit, mult, want, want_unit, want_kinds) in rows {
            let got = sample(m.clone(), raw.clone(), unit, mult);
            assert_eq!(got.value, SampleValue::Valid(want), "{m:?} {raw} {unit:?}");
            assert_eq!(got.unit, want_unit, "{m:?} {raw} {unit:?}");
            assert_eq!(kinds(&got.coercions), want_kinds, "{m:?} {raw} {unit:?}");
        }
    }

    #[test]
    fn two_point_zero_one_numbers_use_the_multiplier() {
        let m = Measurand::PowerActiveImport;
        let got = normalise_sample(&m, &json!(14.4), Some("W"), 3, false);
        assert_eq!(got.value, SampleValue::Valid(14400.0));
        assert!(got.coercions.is_empty());
        let got = normalise_sample(&m, &json!(1.44), None, 4, false);
        assert_eq!(got.value, SampleValue::Valid(14400.0));
        let got = normalise_sample(&m, &json!("14.4kW"), Some("W"), 0, false);
        assert_eq!(got.value, SampleValue::Valid(14400.0));
        assert_eq!(
            kinds(&got.coercions),
            vec![
                CoercionKind::NumberAsString,
                CoercionKind::UnitSuffix,
                CoercionKind::UnitSuffixOverridesField
            ]
        );
    }

    /// What cannot be understood is Invalid with the raw text and a reason — never 0.
    #[test]
    fn garbage_is_invalid_never_zero() {
        use Measurand::*;
        let rows: Vec<(Measurand, Value, Option<&str>, i32)> = vec![
            (PowerActiveImport, json!("garbage"), None, 0),
            (PowerActiveImport, json!("n/a"), Some("W"), 0),
            (PowerActiveImport, json!(""), None, 0),
            (PowerActiveImport, json!("14.4.4kW"), None, 0),
            (PowerActiveImport, json!("NaN"), None, 0),
            (PowerActiveImport, json!("inf"), None, 0),
            (PowerActiveImport, json!("16A"), None, 0),
            (PowerActiveImport, json!("16"), Some("A"), 0),
            (PowerActiveImport, json!("14.4"), Some("kWhh"), 0),
            (PowerActiveImport, json!("14.4"), Some("mW"), 0),
            (PowerActiveImport, json!(null), None, 0),
            (PowerActiveImport, json!({"value": 1}), None, 0),
            (PowerActiveImport, json!("1e308"), Some("MW"), 0),
            (PowerActiveImport, json!("1"), Some("W"), 400),
            (EnergyActiveImportRegister, json!("5kW"), None, 0),
            (EnergyActiveImportRegister, json!("12 apples"), None, 0),
            (CurrentImport, json!("230 V"), None, 0),
            (Voltage, json!("--"), None, 0),
            (Other("SoC".into()), json!("80"), Some("V"), 0),
        ];
        for (m, raw, unit, mult) in rows {
            let got = sample(m.clone(), raw.clone(), unit, mult);
            match &got.value {
                SampleValue::Invalid { reason, .. } => assert!(!reason.is_empty()),
                SampleValue::Valid(v) => panic!("{m:?} {raw} {unit:?} gave Valid({v})"),
            }
            assert_eq!(
                got.coercions.last().map(|c| c.kind),
                Some(CoercionKind::UnparseableValue),
                "{m:?} {raw}"
            );
        }
        let got = sample(Measurand::PowerActiveImport, json!("n/a"), Some("W"), 0);
        assert_eq!(
            got.value,
            SampleValue::Invalid {
                raw: "n/a".into(),
                reason: "\"n/a\" is not a number".into()
            }
        );
        assert_eq!(got.unit, "W");
    }
}
