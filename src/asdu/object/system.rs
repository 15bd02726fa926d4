//! Elements of the system information types (IEC 60870-5-101 §7.3.3, §7.3.4): COI
//! (§7.2.6.21), QOI (§7.2.6.22), QCC (§7.2.6.23), QRP (§7.2.6.27), the clock sync time
//! and the test command's TSC + CP56Time2a (§7.2.6.18, as used by IEC 60870-5-104 type 107).

use super::super::elements::{Qcc, Qoi};
use super::super::error::{DecodeError, EncodeError};
use super::super::type_id::TypeId;
use super::value::Value;
use super::Reader;

/// Decodes the element of system type `t`; `None` if `t` is not one.
pub(super) fn decode(t: TypeId, r: &mut Reader<'_>) -> Result<Option<Value>, DecodeError> {
    use TypeId::*;
    let value = match t {
        M_EI_NA_1 => {
            let coi = r.u8()?;
            Value::EndOfInitialization {
                cause: coi & 0x7F,
                after_parameter_change: coi & 0x80 != 0,
            }
        }
        C_IC_NA_1 => Value::Interrogation(Qoi(r.u8()?)),
        C_CI_NA_1 => Value::CounterInterrogation(Qcc::from_octet(r.u8()?)),
        C_RD_NA_1 => Value::Read,
        C_CS_NA_1 => Value::ClockSync(r.cp56()?),
        C_RP_NA_1 => Value::ResetProcess { qrp: r.u8()? },
        C_TS_TA_1 => Value::TestCommand {
            counter: r.u16()?,
            time: r.cp56()?,
        },
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// Encodes a system value's element; `Ok(false)` if `v` is not a system value.
pub(super) fn encode(v: &Value, out: &mut Vec<u8>) -> Result<bool, EncodeError> {
    match *v {
        Value::EndOfInitialization {
            cause,
            after_parameter_change,
        } => {
            if cause > 0x7F {
                return Err(EncodeError::InvalidField("COI cause above 127"));
            }
            out.push(cause | if after_parameter_change { 0x80 } else { 0 });
        }
        Value::Interrogation(qoi) => out.push(qoi.0),
        Value::CounterInterrogation(qcc) => out.push(qcc.to_octet()?),
        Value::Read => {}
        Value::ClockSync(time) => {
            time.check()?;
            time.encode(out);
        }
        Value::ResetProcess { qrp } => out.push(qrp),
        Value::TestCommand { counter, time } => {
            time.check()?;
            out.extend_from_slice(&counter.to_le_bytes());
            time.encode(out);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asdu::Cp56Time2a;

    #[test]
    fn read_command_has_no_element() {
        let mut r = Reader::new(&[]);
        assert_eq!(decode(TypeId::C_RD_NA_1, &mut r), Ok(Some(Value::Read)));
        let mut out = Vec::new();
        assert_eq!(encode(&Value::Read, &mut out), Ok(true));
        assert!(out.is_empty());
    }

    #[test]
    fn end_of_initialization_keeps_the_parameter_change_bit() {
        let mut r = Reader::new(&[0x82]);
        let v = Value::EndOfInitialization {
            cause: 2,
            after_parameter_change: true,
        };
        assert_eq!(decode(TypeId::M_EI_NA_1, &mut r), Ok(Some(v)));
        let bad = Value::EndOfInitialization {
            cause: 128,
            after_parameter_change: false,
        };
        assert!(encode(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn test_command_counter_precedes_the_time() {
        let b = [0x34, 0x12, 0, 0, 0, 0, 1, 1, 0];
        let mut r = Reader::new(&b);
        let time = Cp56Time2a::decode(&b[2..]).unwrap();
        let v = Value::TestCommand {
            counter: 0x1234,
            time,
        };
        assert_eq!(decode(TypeId::C_TS_TA_1, &mut r), Ok(Some(v)));
        let mut out = Vec::new();
        assert_eq!(encode(&v, &mut out), Ok(true));
        assert_eq!(out, b);
    }

    #[test]
    fn clock_sync_with_an_overwide_field_is_refused() {
        let time = Cp56Time2a::from_unix_millis(0);
        let bad = Value::ClockSync(Cp56Time2a { hour: 32, ..time });
        let mut out = Vec::new();
        assert!(encode(&bad, &mut out).is_err());
        assert!(out.is_empty());
    }
}
