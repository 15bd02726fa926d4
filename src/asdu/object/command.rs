//! Elements of the process commands in control direction (IEC 60870-5-101 §7.3.2): SCO,
//! DCO, RCO (§7.2.6.15–17), set-points with QOS (§7.2.6.39) and the 32-bit bitstring.

use super::super::elements::{Dco, Qos, Rco, Sco};
use super::super::error::{DecodeError, EncodeError};
use super::super::type_id::TypeId;
use super::value::Value;
use super::Reader;

/// Decodes the element of command type `t` (time tag excluded); `None` if `t` is not one.
pub(super) fn decode(t: TypeId, r: &mut Reader<'_>) -> Result<Option<Value>, DecodeError> {
    use TypeId::*;
    let value = match t.without_time() {
        C_SC_NA_1 => Value::SingleCommand(Sco::from_octet(r.u8()?)?),
        C_DC_NA_1 => Value::DoubleCommand(Dco::from_octet(r.u8()?)),
        C_RC_NA_1 => Value::RegulatingStep(Rco::from_octet(r.u8()?)),
        C_SE_NA_1 => Value::SetpointNormalized {
            value: r.i16()?,
            qos: Qos::from_octet(r.u8()?),
        },
        C_SE_NB_1 => Value::SetpointScaled {
            value: r.i16()?,
            qos: Qos::from_octet(r.u8()?),
        },
        C_SE_NC_1 => Value::SetpointFloat {
            value: r.f32()?,
            qos: Qos::from_octet(r.u8()?),
        },
        C_BO_NA_1 => Value::BitstringCommand { bits: r.u32()? },
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// Encodes a command value's element; `Ok(false)` if `v` is not a command value.
pub(super) fn encode(v: &Value, out: &mut Vec<u8>) -> Result<bool, EncodeError> {
    match *v {
        Value::SingleCommand(sco) => out.push(sco.to_octet()?),
        Value::DoubleCommand(dco) => out.push(dco.to_octet()?),
        Value::RegulatingStep(rco) => out.push(rco.to_octet()?),
        Value::SetpointNormalized { value, qos } | Value::SetpointScaled { value, qos } => {
            let qos = qos.to_octet()?;
            out.extend_from_slice(&value.to_le_bytes());
            out.push(qos);
        }
        Value::SetpointFloat { value, qos } => {
            let qos = qos.to_octet()?;
            // to_bits keeps NaN payloads, so a decoded NaN re-encodes to the same octets.
            out.extend_from_slice(&value.to_bits().to_le_bytes());
            out.push(qos);
        }
        Value::BitstringCommand { bits } => out.extend_from_slice(&bits.to_le_bytes()),
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setpoint_float_is_little_endian_ieee_754_then_qos() {
        let mut r = Reader::new(&[0x00, 0x00, 0x80, 0x3F, 0x81]);
        let v = decode(TypeId::C_SE_TC_1, &mut r);
        let expected = Value::SetpointFloat {
            value: 1.0,
            qos: Qos {
                ql: 1,
                select: true,
            },
        };
        assert_eq!(v, Ok(Some(expected)));
        let mut out = Vec::new();
        assert_eq!(encode(&expected, &mut out), Ok(true));
        assert_eq!(out, [0x00, 0x00, 0x80, 0x3F, 0x81]);
    }

    #[test]
    fn a_bad_qualifier_writes_nothing() {
        let mut out = Vec::new();
        let v = Value::SetpointScaled {
            value: 7,
            qos: Qos {
                ql: 200,
                select: false,
            },
        };
        assert!(encode(&v, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn single_command_reserved_bit_fails_to_decode() {
        let mut r = Reader::new(&[0x03]);
        assert!(decode(TypeId::C_SC_NA_1, &mut r).is_err());
    }
}
