//! Quality descriptors (IEC 60870-5-101 §7.2.6.1 SIQ, §7.2.6.2 DIQ, §7.2.6.3 QDS).
//!
//! One [`Quality`] serves all three because the IV/NT/SB/BL bits sit at the same place in
//! each; only QDS has the overflow bit. The reserved bits are rejected on decode so that
//! every ASDU that decodes re-encodes to the same octets.

use super::error::DecodeError;

/// Quality flags of a process value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quality {
    /// IV: the value is not reliable.
    pub invalid: bool,
    /// NT: the last update is older than expected.
    pub not_topical: bool,
    /// SB: set by an operator or automatic source, not acquired.
    pub substituted: bool,
    /// BL: transmission of the value is blocked.
    pub blocked: bool,
    /// OV: the value exceeds its range. Only QDS carries it: SIQ/DIQ have no OV bit, so it
    /// is dropped when a single or double point is encoded.
    pub overflow: bool,
}

const BL: u8 = 0x10;
const SB: u8 = 0x20;
const NT: u8 = 0x40;
const IV: u8 = 0x80;
const OV: u8 = 0x01;

impl Quality {
    pub const GOOD: Quality = Quality {
        invalid: false,
        not_topical: false,
        substituted: false,
        blocked: false,
        overflow: false,
    };

    /// No flag set.
    pub fn is_good(&self) -> bool {
        *self == Quality::GOOD
    }

    /// Bits 4–7, shared by SIQ, DIQ and QDS.
    pub(crate) fn upper_bits(&self) -> u8 {
        (if self.blocked { BL } else { 0 })
            | (if self.substituted { SB } else { 0 })
            | (if self.not_topical { NT } else { 0 })
            | (if self.invalid { IV } else { 0 })
    }

    fn from_upper_bits(b: u8) -> Quality {
        Quality {
            invalid: b & IV != 0,
            not_topical: b & NT != 0,
            substituted: b & SB != 0,
            blocked: b & BL != 0,
            overflow: false,
        }
    }

    /// QDS octet (§7.2.6.3).
    pub(crate) fn to_qds(self) -> u8 {
        self.upper_bits() | if self.overflow { OV } else { 0 }
    }

    pub(crate) fn from_qds(b: u8) -> Result<Quality, DecodeError> {
        if b & 0x0E != 0 {
            return Err(DecodeError::InvalidField("QDS reserved bits 1-3"));
        }
        Ok(Quality {
            overflow: b & OV != 0,
            ..Quality::from_upper_bits(b)
        })
    }

    /// SIQ octet (§7.2.6.1).
    pub(crate) fn to_siq(self, on: bool) -> u8 {
        self.upper_bits() | u8::from(on)
    }

    pub(crate) fn from_siq(b: u8) -> Result<(bool, Quality), DecodeError> {
        if b & 0x0E != 0 {
            return Err(DecodeError::InvalidField("SIQ reserved bits 1-3"));
        }
        Ok((b & 0x01 != 0, Quality::from_upper_bits(b)))
    }

    /// DIQ octet (§7.2.6.2) with the 2-bit DPI already extracted by the caller.
    pub(crate) fn from_diq(b: u8) -> Result<(u8, Quality), DecodeError> {
        if b & 0x0C != 0 {
            return Err(DecodeError::InvalidField("DIQ reserved bits 2-3"));
        }
        Ok((b & 0x03, Quality::from_upper_bits(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_quality_flag_has_its_own_bit() {
        let one = |f: fn(&mut Quality)| {
            let mut q = Quality::GOOD;
            f(&mut q);
            q.to_qds()
        };
        assert_eq!(one(|q| q.overflow = true), 0x01);
        assert_eq!(one(|q| q.blocked = true), 0x10);
        assert_eq!(one(|q| q.substituted = true), 0x20);
        assert_eq!(one(|q| q.not_topical = true), 0x40);
        assert_eq!(one(|q| q.invalid = true), 0x80);
    }

    #[test]
    fn single_point_octet_has_no_overflow_bit() {
        let q = Quality {
            overflow: true,
            invalid: true,
            ..Quality::GOOD
        };
        assert_eq!(q.to_siq(true), 0x81);
        assert_eq!(
            Quality::from_siq(0x81),
            Ok((
                true,
                Quality {
                    overflow: false,
                    ..q
                }
            ))
        );
    }

    #[test]
    fn reserved_bits_are_rejected() {
        assert!(Quality::from_qds(0x02).is_err());
        assert!(Quality::from_siq(0x08).is_err());
        assert!(Quality::from_diq(0x04).is_err());
        assert_eq!(Quality::from_diq(0xF3).map(|(d, _)| d), Ok(3));
    }

    #[test]
    fn default_quality_is_good() {
        assert!(Quality::default().is_good());
        assert!(!Quality {
            overflow: true,
            ..Quality::GOOD
        }
        .is_good());
    }
}
