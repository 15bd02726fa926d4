//! Information elements other than quality and time (IEC 60870-5-101 §7.2.6): DPI
//! (§7.2.6.2), BCR (§7.2.6.9), SCO/DCO/RCO (§7.2.6.15–17), QOS (§7.2.6.39), QOI
//! (§7.2.6.22) and QCC (§7.2.6.23).
//!
//! Decoders reject reserved bits so that decode followed by encode reproduces the input;
//! encoders reject fields wider than their bit field instead of masking them, because a
//! masked qualifier would command something other than what the caller asked for.

use super::error::{DecodeError, EncodeError};

/// DPI of a double point (§7.2.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DoublePointValue {
    /// Intermediate state (0), e.g. a breaker travelling.
    Indeterminate = 0,
    Off = 1,
    On = 2,
    /// 3: indeterminate or faulty state.
    Faulty = 3,
}

impl DoublePointValue {
    /// The variant for the low two bits of `bits`; total, since all four codes are defined.
    pub(crate) fn from_bits(bits: u8) -> DoublePointValue {
        match bits & 0x03 {
            0 => DoublePointValue::Indeterminate,
            1 => DoublePointValue::Off,
            2 => DoublePointValue::On,
            _ => DoublePointValue::Faulty,
        }
    }
}

/// Binary counter reading (§7.2.6.9): counter plus sequence notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinaryCounterReading {
    pub value: i32,
    /// SQ, 5 bits (0..=31).
    pub sequence: u8,
    /// CY: the counter overflowed in the period.
    pub carry: bool,
    /// CA: the counter was adjusted since the last reading.
    pub adjusted: bool,
    /// IV: the reading is invalid.
    pub invalid: bool,
}

impl BinaryCounterReading {
    pub(crate) const LEN: usize = 5;

    pub(crate) fn from_octets(b: [u8; Self::LEN]) -> BinaryCounterReading {
        let [v0, v1, v2, v3, seq] = b;
        BinaryCounterReading {
            value: i32::from_le_bytes([v0, v1, v2, v3]),
            sequence: seq & 0x1F,
            carry: seq & 0x20 != 0,
            adjusted: seq & 0x40 != 0,
            invalid: seq & 0x80 != 0,
        }
    }

    pub(crate) fn to_octets(self) -> Result<[u8; Self::LEN], EncodeError> {
        if self.sequence > 0x1F {
            return Err(EncodeError::InvalidField("BCR sequence number above 31"));
        }
        let [v0, v1, v2, v3] = self.value.to_le_bytes();
        let seq = self.sequence
            | if self.carry { 0x20 } else { 0 }
            | if self.adjusted { 0x40 } else { 0 }
            | if self.invalid { 0x80 } else { 0 };
        Ok([v0, v1, v2, v3, seq])
    }
}

/// Bit 7 of SCO/DCO/RCO/QOS: select (1) or execute (0).
const SE: u8 = 0x80;

/// Places the 5-bit qualifier of command (QU) at bits 2–6 with S/E.
fn qu_and_se(qu: u8, select: bool) -> Result<u8, EncodeError> {
    if qu > 0x1F {
        return Err(EncodeError::InvalidField("command qualifier QU above 31"));
    }
    Ok((qu << 2) | if select { SE } else { 0 })
}

fn qu_of(b: u8) -> u8 {
    (b >> 2) & 0x1F
}

/// Single command (§7.2.6.15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sco {
    /// SCS: ON (true) or OFF.
    pub on: bool,
    /// QU, 5 bits: 0 no additional definition, 1 short pulse, 2 long pulse, 3 persistent.
    pub qu: u8,
    /// S/E: select rather than execute.
    pub select: bool,
}

impl Sco {
    pub(crate) fn from_octet(b: u8) -> Result<Sco, DecodeError> {
        if b & 0x02 != 0 {
            return Err(DecodeError::InvalidField("SCO reserved bit 1"));
        }
        Ok(Sco {
            on: b & 0x01 != 0,
            qu: qu_of(b),
            select: b & SE != 0,
        })
    }

    pub(crate) fn to_octet(self) -> Result<u8, EncodeError> {
        Ok(qu_and_se(self.qu, self.select)? | u8::from(self.on))
    }
}

/// Double command (§7.2.6.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dco {
    /// DCS, 2 bits: 1 OFF, 2 ON; 0 and 3 are "not permitted" but still carried so the
    /// station can answer them negatively.
    pub state: u8,
    pub qu: u8,
    pub select: bool,
}

impl Dco {
    pub(crate) fn from_octet(b: u8) -> Dco {
        Dco {
            state: b & 0x03,
            qu: qu_of(b),
            select: b & SE != 0,
        }
    }

    pub(crate) fn to_octet(self) -> Result<u8, EncodeError> {
        if self.state > 3 {
            return Err(EncodeError::InvalidField("DCO state above 3"));
        }
        Ok(qu_and_se(self.qu, self.select)? | self.state)
    }
}

/// RCS of a regulating step command (§7.2.6.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepCommandState {
    NotPermitted0 = 0,
    Lower = 1,
    Higher = 2,
    NotPermitted3 = 3,
}

/// Regulating step command (§7.2.6.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rco {
    pub state: StepCommandState,
    pub qu: u8,
    pub select: bool,
}

impl Rco {
    pub(crate) fn from_octet(b: u8) -> Rco {
        let state = match b & 0x03 {
            0 => StepCommandState::NotPermitted0,
            1 => StepCommandState::Lower,
            2 => StepCommandState::Higher,
            _ => StepCommandState::NotPermitted3,
        };
        Rco {
            state,
            qu: qu_of(b),
            select: b & SE != 0,
        }
    }

    pub(crate) fn to_octet(self) -> Result<u8, EncodeError> {
        Ok(qu_and_se(self.qu, self.select)? | self.state as u8)
    }
}

/// Qualifier of set-point command (§7.2.6.39).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qos {
    /// QL, 7 bits (0 default).
    pub ql: u8,
    pub select: bool,
}

impl Qos {
    pub(crate) fn from_octet(b: u8) -> Qos {
        Qos {
            ql: b & 0x7F,
            select: b & SE != 0,
        }
    }

    pub(crate) fn to_octet(self) -> Result<u8, EncodeError> {
        if self.ql > 0x7F {
            return Err(EncodeError::InvalidField("QOS qualifier QL above 127"));
        }
        Ok(self.ql | if self.select { SE } else { 0 })
    }
}

/// Qualifier of interrogation (§7.2.6.22); every octet value is carried so that an
/// unsupported qualifier can be answered negatively rather than failing to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qoi(pub u8);

impl Qoi {
    /// Station (global) interrogation.
    pub const STATION: Qoi = Qoi(20);

    /// The interrogation group 1..=16 for qualifiers 21..=36, `None` otherwise.
    pub fn group(self) -> Option<u8> {
        matches!(self.0, 21..=36).then(|| self.0 - 20)
    }
}

/// FRZ of the counter interrogation qualifier (§7.2.6.23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freeze {
    /// Read without freeze or reset.
    Read = 0,
    Freeze = 1,
    FreezeAndReset = 2,
    Reset = 3,
}

/// Qualifier of counter interrogation command (§7.2.6.23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qcc {
    /// RQT, 6 bits: 1..=4 counter groups, 5 general counter interrogation.
    pub request: u8,
    pub freeze: Freeze,
}

impl Qcc {
    pub(crate) fn from_octet(b: u8) -> Qcc {
        let freeze = match b >> 6 {
            0 => Freeze::Read,
            1 => Freeze::Freeze,
            2 => Freeze::FreezeAndReset,
            _ => Freeze::Reset,
        };
        Qcc {
            request: b & 0x3F,
            freeze,
        }
    }

    pub(crate) fn to_octet(self) -> Result<u8, EncodeError> {
        if self.request > 0x3F {
            return Err(EncodeError::InvalidField("QCC request RQT above 63"));
        }
        Ok(self.request | (self.freeze as u8) << 6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_reading_is_little_endian_with_flags_in_the_fifth_octet() {
        let bcr = BinaryCounterReading {
            value: -2,
            sequence: 31,
            carry: true,
            adjusted: true,
            invalid: true,
        };
        assert_eq!(bcr.to_octets(), Ok([0xFE, 0xFF, 0xFF, 0xFF, 0xFF]));
        assert_eq!(
            BinaryCounterReading::from_octets([0xFE, 0xFF, 0xFF, 0xFF, 0xFF]),
            bcr
        );
        let too_long = BinaryCounterReading {
            sequence: 32,
            ..bcr
        };
        assert!(too_long.to_octets().is_err());
    }

    #[test]
    fn single_command_select_long_pulse_on_is_0x89() {
        let sco = Sco {
            on: true,
            qu: 2,
            select: true,
        };
        assert_eq!(sco.to_octet(), Ok(0x89));
        assert_eq!(Sco::from_octet(0x89), Ok(sco));
        assert!(Sco::from_octet(0x02).is_err());
        assert!(Sco { qu: 32, ..sco }.to_octet().is_err());
    }

    #[test]
    fn double_and_step_commands_put_their_state_in_bits_0_and_1() {
        let dco = Dco {
            state: 2,
            qu: 1,
            select: false,
        };
        assert_eq!(dco.to_octet(), Ok(0x06));
        assert_eq!(Dco::from_octet(0x06), dco);
        assert!(Dco { state: 4, ..dco }.to_octet().is_err());
        let rco = Rco {
            state: StepCommandState::Lower,
            qu: 0,
            select: true,
        };
        assert_eq!(rco.to_octet(), Ok(0x81));
        assert_eq!(Rco::from_octet(0x81), rco);
    }

    #[test]
    fn setpoint_qualifier_keeps_seven_bits_and_select() {
        assert_eq!(
            Qos::from_octet(0xFF),
            Qos {
                ql: 127,
                select: true
            }
        );
        assert!(Qos {
            ql: 128,
            select: false
        }
        .to_octet()
        .is_err());
    }

    #[test]
    fn interrogation_groups_are_21_to_36() {
        assert_eq!(Qoi::STATION.group(), None);
        assert_eq!(Qoi(21).group(), Some(1));
        assert_eq!(Qoi(36).group(), Some(16));
        assert_eq!(Qoi(37).group(), None);
    }

    #[test]
    fn counter_qualifier_puts_freeze_in_the_top_two_bits() {
        for (f, octet) in [
            (Freeze::Read, 0x05),
            (Freeze::Freeze, 0x45),
            (Freeze::FreezeAndReset, 0x85),
            (Freeze::Reset, 0xC5),
        ] {
            let qcc = Qcc {
                request: 5,
                freeze: f,
            };
            assert_eq!(qcc.to_octet(), Ok(octet));
            assert_eq!(Qcc::from_octet(octet), qcc);
        }
        assert!(Qcc {
            request: 64,
            freeze: Freeze::Read
        }
        .to_octet()
        .is_err());
    }

    #[test]
    fn double_point_codes_are_all_defined() {
        assert_eq!(
            DoublePointValue::from_bits(0),
            DoublePointValue::Indeterminate
        );
        assert_eq!(DoublePointValue::from_bits(3), DoublePointValue::Faulty);
    }
}
