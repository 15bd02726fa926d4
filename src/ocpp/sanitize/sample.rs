//! One sampled value of a meter value, read into the version-neutral [`SampledValue`]
//! (OCPP 1.6 §7.45 SampledValue, 2.0.1 Part 2 §2.48 SampledValueType): measurand (default
//! Energy.Active.Import.Register), phase, reading context (default Sample.Periodic), and the
//! value normalised by [`normalise_sample`].
//!
//! A well-formed value that makes no sense (a unit that does not fit the measurand, an unknown
//! 2.0.1 unit, a value out of range) is an Invalid sample in both modes: strict mode refuses
//! what does not conform to the schema or to 1.6's "decimal" text, not what the meter says.

use serde_json::Value;

use super::number::expected_unit;
use super::reader::{error, join, Sanitizer};
use super::{clip, match_enum, normalise_sample, parse_measurand, Coercion};
use crate::mapping::charger::{CoercionKind, Measurand, SampleContext, SampleValue, SampledValue};
use crate::ocpp::{CallError, ErrorCode};

/// ReadingContext values of both versions.
pub const CONTEXTS: &[&str] = &[
    "Interruption.Begin",
    "Interruption.End",
    "Other",
    "Sample.Clock",
    "Sample.Periodic",
    "Transaction.Begin",
    "Transaction.End",
    "Trigger",
];

/// Phase values of both versions.
pub const PHASES: &[&str] = &[
    "L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1",
];

/// Maps a ReadingContext name onto the model.
pub fn context_of(name: &str) -> SampleContext {
    match name {
        "Sample.Periodic" | "Sample.Clock" => SampleContext::Periodic,
        "Transaction.Begin" => SampleContext::TransactionBegin,
        "Transaction.End" => SampleContext::TransactionEnd,
        "Trigger" => SampleContext::Trigger,
        _ => SampleContext::Other,
    }
}

/// The fields of one sampled value as found in the payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct SampleFields<'v> {
    pub value: Option<&'v Value>,
    pub measurand: Option<&'v Value>,
    pub phase: Option<&'v Value>,
    pub context: Option<&'v Value>,
    /// 1.6 `unit`, 2.0.1 `unitOfMeasure.unit`.
    pub unit: Option<&'v Value>,
    /// 2.0.1 `unitOfMeasure.multiplier`.
    pub multiplier: Option<&'v Value>,
    /// True for 1.6, where the value is text by definition.
    pub text_expected: bool,
}

/// Reads one sampled value. `Ok(None)`: lenient mode dropped it because it cannot be
/// attributed (its measurand is not even text); the drop is counted.
pub fn read_sampled_value(
    s: &mut Sanitizer,
    path: &str,
    f: SampleFields<'_>,
) -> Result<Option<(SampledValue, Option<SampleContext>)>, CallError> {
    let Some(raw) = f.value else {
        return Err(error(
            ErrorCode::OccurrenceConstraintViolation,
            &join(path, "value"),
            "required field missing",
        ));
    };

    let measurand = match f.measurand {
        None => Measurand::EnergyActiveImportRegister,
        Some(Value::String(text)) => {
            let (m, coercion) = parse_measurand(text);
            if let Some(c) = coercion {
                s.coerce(&join(path, "measurand"), c)?;
            }
            m
        }
        Some(other) => {
            let what = format!("measurand {} is not text", clip(&other.to_string(), 40));
            if !s.lenient() {
                return Err(error(
                    ErrorCode::TypeConstraintViolation,
                    &join(path, "measurand"),
                    what,
                ));
            }
            s.coerce(
                &join(path, "measurand"),
                Coercion::new(
                    CoercionKind::UnparseableValue,
                    format!("{what}; sample dropped"),
                ),
            )?;
            return Ok(None);
        }
    };

    let phase = match f.phase {
        None => None,
        Some(v) => {
            let text = match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            match match_enum(&text, PHASES) {
                Some((p, true)) => Some(p.to_string()),
                Some((p, false)) => {
                    s.coerce(
                        &join(path, "phase"),
                        Coercion::new(
                            CoercionKind::EnumCase,
                            format!("phase \"{}\" taken as \"{p}\"", clip(&text, 20)),
                        ),
                    )?;
                    Some(p.to_string())
                }
                None => {
                    // Not a total: keep the charger's name rather than pretend it is one.
                    s.coerce(
                        &join(path, "phase"),
                        Coercion::new(
                            CoercionKind::UnparseableValue,
                            format!("unknown phase \"{}\" kept by name", clip(&text, 20)),
                        ),
                    )?;
                    Some(clip(&text, 20))
                }
            }
        }
    };

    let context = s
        .soft_enumeration(f.context, &join(path, "context"), CONTEXTS)?
        .map(context_of);

    let unit_text = f.unit.map(|u| match u {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    });

    let value_path = join(path, "value");
    let multiplier = match f.multiplier {
        None => Ok(0),
        Some(m) => s
            .int(m, &join(path, "unitOfMeasure.multiplier"))
            .and_then(|m| {
                i32::try_from(m).map_err(|_| {
                    error(
                        ErrorCode::PropertyConstraintViolation,
                        path,
                        "multiplier out of range",
                    )
                })
            }),
    };
    let multiplier = match multiplier {
        Ok(m) => m,
        Err(e) if s.lenient() || f.multiplier.is_some_and(Value::is_number) => {
            // The scale is unknown (or absurd), so is the value.
            let raw_text = clip(&raw.to_string(), 100);
            s.report_invalid(Coercion::new(
                CoercionKind::UnparseableValue,
                e.description.clone(),
            ));
            let sample = SampledValue {
                unit: expected_unit(&measurand)
                    .map(|u| u.symbol().to_string())
                    .or(unit_text)
                    .unwrap_or_default(),
                measurand,
                phase,
                value: SampleValue::Invalid {
                    raw: raw_text,
                    reason: e.description,
                },
            };
            return Ok(Some((sample, context)));
        }
        Err(e) => return Err(e),
    };

    if !s.lenient() && f.text_expected {
        match raw {
            Value::String(t) if super::is_plain_decimal(t) => {}
            Value::String(t) => {
                return Err(error(
                    ErrorCode::PropertyConstraintViolation,
                    &value_path,
                    format!("\"{}\" is not a decimal number", clip(t, 40)),
                ))
            }
            _ => {
                return Err(error(
                    ErrorCode::TypeConstraintViolation,
                    &value_path,
                    "expected text",
                ))
            }
        }
    }

    let n = normalise_sample(
        &measurand,
        raw,
        unit_text.as_deref(),
        multiplier,
        f.text_expected,
    );
    for c in n.coercions {
        if c.kind == CoercionKind::UnparseableValue {
            // Marked invalid, not coerced: reported in strict mode too.
            s.report_invalid(c);
        } else {
            s.coerce(&value_path, c)?;
        }
    }
    Ok(Some((
        SampledValue {
            measurand,
            phase,
            value: n.value,
            unit: n.unit,
        },
        context,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::Mode;
    use serde_json::json;

    fn read(
        mode: Mode,
        f: SampleFields<'_>,
    ) -> (Result<Option<SampledValue>, CallError>, Vec<CoercionKind>) {
        let mut s = Sanitizer::new(mode);
        let r = read_sampled_value(&mut s, "sv", f).map(|o| o.map(|(v, _)| v));
        (r, s.coercions().iter().map(|c| c.kind).collect())
    }

    #[test]
    fn a_legacy_kw_value_is_read_in_lenient_mode_and_refused_in_strict() {
        let v = json!("14.4kW");
        let m = json!("Power.Active.Import");
        let f = SampleFields {
            value: Some(&v),
            measurand: Some(&m),
            text_expected: true,
            ..Default::default()
        };
        let (r, kinds) = read(Mode::Lenient, f);
        assert_eq!(
            r,
            Ok(Some(SampledValue {
                measurand: Measurand::PowerActiveImport,
                phase: None,
                value: SampleValue::Valid(14400.0),
                unit: "W".into()
            }))
        );
        assert_eq!(kinds, vec![CoercionKind::UnitSuffix]);
        let (r, _) = read(Mode::Strict, f);
        assert_eq!(
            r.err().map(|e| e.code),
            Some(ErrorCode::PropertyConstraintViolation)
        );
    }

    #[test]
    fn defaults_are_the_energy_register_in_wh() {
        let v = json!("1234");
        let f = SampleFields {
            value: Some(&v),
            text_expected: true,
            ..Default::default()
        };
        let (r, kinds) = read(Mode::Strict, f);
        assert_eq!(
            r,
            Ok(Some(SampledValue {
                measurand: Measurand::EnergyActiveImportRegister,
                phase: None,
                value: SampleValue::Valid(1234.0),
                unit: "Wh".into()
            }))
        );
        assert!(kinds.is_empty());
    }

    #[test]
    fn phases_are_fixed_or_kept_by_name() {
        let v = json!(16);
        let m = json!("Current.Import");
        for (phase, want, kind) in [
            (json!("L1"), "L1", None),
            (json!("l2-n"), "L2-N", Some(CoercionKind::EnumCase)),
            (
                json!("Phase3"),
                "Phase3",
                Some(CoercionKind::UnparseableValue),
            ),
        ] {
            let f = SampleFields {
                value: Some(&v),
                measurand: Some(&m),
                phase: Some(&phase),
                ..Default::default()
            };
            let (r, kinds) = read(Mode::Lenient, f);
            assert_eq!(
                r.ok().flatten().and_then(|v| v.phase),
                Some(want.to_string())
            );
            assert_eq!(kinds.first().copied(), kind);
        }
    }

    #[test]
    fn an_unreadable_multiplier_makes_the_value_invalid() {
        let v = json!(14.4);
        let mult = json!("lots");
        let f = SampleFields {
            value: Some(&v),
            multiplier: Some(&mult),
            ..Default::default()
        };
        let (r, kinds) = read(Mode::Lenient, f);
        assert!(matches!(
            r.ok().flatten().map(|v| v.value),
            Some(SampleValue::Invalid { .. })
        ));
        assert_eq!(kinds, vec![CoercionKind::UnparseableValue]);
    }
}
