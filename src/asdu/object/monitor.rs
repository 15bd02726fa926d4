//! Elements of the process information types in monitor direction (IEC 60870-5-101
//! §7.3.1): SIQ, DIQ, VTI, BSI, NVA, SVA, short float with QDS (§7.2.6.1–§7.2.6.8) and BCR
//! (§7.2.6.9).

use super::super::elements::{BinaryCounterReading, DoublePointValue};
use super::super::error::{DecodeError, EncodeError};
use super::super::quality::Quality;
use super::super::type_id::TypeId;
use super::value::Value;
use super::Reader;

/// Decodes the element of monitor type `t` (time tag excluded); `None` if `t` is not one.
pub(super) fn decode(t: TypeId, r: &mut Reader<'_>) -> Result<Option<Value>, DecodeError> {
    use TypeId::*;
    let value = match t.without_time() {
        M_SP_NA_1 => {
            let (on, quality) = Quality::from_siq(r.u8()?)?;
            Value::SinglePoint { on, quality }
        }
        M_DP_NA_1 => {
            let (dpi, quality) = Quality::from_diq(r.u8()?)?;
            let value = DoublePointValue::from_bits(dpi);
            Value::DoublePoint { value, quality }
        }
        M_ST_NA_1 => {
            let vti = r.u8()?;
            Value::StepPosition {
                // Shifting the 7-bit field into the sign bit and back sign-extends it.
                value: ((vti << 1) as i8) >> 1,
                transient: vti & 0x80 != 0,
                quality: Quality::from_qds(r.u8()?)?,
            }
        }
        M_BO_NA_1 => Value::Bitstring {
            bits: r.u32()?,
            quality: Quality::from_qds(r.u8()?)?,
        },
        M_ME_NA_1 => Value::Normalized {
            value: r.i16()?,
            quality: Quality::from_qds(r.u8()?)?,
        },
        M_ME_NB_1 => Value::Scaled {
            value: r.i16()?,
            quality: Quality::from_qds(r.u8()?)?,
        },
        M_ME_NC_1 => Value::ShortFloat {
            value: r.f32()?,
            quality: Quality::from_qds(r.u8()?)?,
        },
        M_IT_NA_1 => Value::IntegratedTotal(BinaryCounterReading::from_octets(r.array()?)),
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// Encodes a monitor value's element; `Ok(false)` if `v` is not a monitor value.
pub(super) fn encode(v: &Value, out: &mut Vec<u8>) -> Result<bool, EncodeError> {
    match *v {
        // SIQ/DIQ have no OV bit: overflow is not representable and is dropped.
        Value::SinglePoint { on, quality } => out.push(quality.to_siq(on)),
        Value::DoublePoint { value, quality } => out.push(quality.upper_bits() | value as u8),
        Value::StepPosition {
            value,
            transient,
            quality,
        } => {
            if !(-64..=63).contains(&value) {
                return Err(EncodeError::InvalidField("VTI value outside -64..=63"));
            }
            out.push((value as u8 & 0x7F) | if transient { 0x80 } else { 0 });
            out.push(quality.to_qds());
        }
        Value::Bitstring { bits, quality } => {
            out.extend_from_slice(&bits.to_le_bytes());
            out.push(quality.to_qds());
        }
        Value::Normalized { value, quality } | Value::Scaled { value, quality } => {
            out.extend_from_slice(&value.to_le_bytes());
            out.push(quality.to_qds());
        }
        Value::ShortFloat { value, quality } => {
            // to_bits keeps NaN payloads, so a decoded NaN re-encodes to the same octets.
            out.extend_from_slice(&value.to_bits().to_le_bytes());
            out.push(quality.to_qds());
        }
        Value::IntegratedTotal(bcr) => out.extend_from_slice(&bcr.to_octets()?),
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(t: TypeId, b: &[u8]) -> Result<Value, DecodeError> {
        let mut r = Reader::new(b);
        decode(t, &mut r).map(|v| v.unwrap())
    }

    fn enc(v: Value) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        encode(&v, &mut out).map(|_| out)
    }

    #[test]
    fn step_position_sign_extends_its_seven_bits() {
        let q = Quality::GOOD;
        assert_eq!(
            dec(TypeId::M_ST_NA_1, &[0x40, 0]),
            Ok(Value::StepPosition {
                value: -64,
                transient: false,
                quality: q
            })
        );
        assert_eq!(
            dec(TypeId::M_ST_NA_1, &[0xFF, 0]),
            Ok(Value::StepPosition {
                value: -1,
                transient: true,
                quality: q
            })
        );
        assert_eq!(
            dec(TypeId::M_ST_NA_1, &[0x3F, 0]),
            Ok(Value::StepPosition {
                value: 63,
                transient: false,
                quality: q
            })
        );
        assert_eq!(
            enc(Value::StepPosition {
                value: -1,
                transient: true,
                quality: q
            }),
            Ok(vec![0xFF, 0])
        );
        assert!(enc(Value::StepPosition {
            value: 64,
            transient: false,
            quality: q
        })
        .is_err());
        assert!(enc(Value::StepPosition {
            value: -65,
            transient: false,
            quality: q
        })
        .is_err());
    }

    #[test]
    fn float_nan_payload_survives_a_round_trip() {
        let b = [0x01, 0x00, 0xC0, 0x7F, 0x00];
        let v = dec(TypeId::M_ME_NC_1, &b).unwrap();
        assert_eq!(enc(v), Ok(b.to_vec()));
    }

    #[test]
    fn double_point_with_every_quality_flag() {
        let v = dec(TypeId::M_DP_NA_1, &[0xF2]).unwrap();
        let q = Quality {
            invalid: true,
            not_topical: true,
            substituted: true,
            blocked: true,
            overflow: false,
        };
        assert_eq!(
            v,
            Value::DoublePoint {
                value: DoublePointValue::On,
                quality: q
            }
        );
        assert_eq!(enc(v), Ok(vec![0xF2]));
    }

    #[test]
    fn non_monitor_types_and_values_are_declined() {
        let mut r = Reader::new(&[0]);
        assert_eq!(decode(TypeId::C_SC_NA_1, &mut r), Ok(None));
        assert_eq!(encode(&Value::Read, &mut Vec::new()), Ok(false));
    }
}
