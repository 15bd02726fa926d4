//! Data unit identifier (IEC 60870-5-101 §7.1, §7.2.1–§7.2.4): type identification, variable
//! structure qualifier, cause of transmission and common address, with the field sizes that
//! differ between 101 and 104 (§7.1 "system parameters") as [`AsduParams`].
//!
//! The header is decoded on its own so a station can answer an ASDU whose type or objects it
//! cannot parse (COT 44–47) by [`mirror`]ing it back.

use super::cause::{Cause, Cot};
use super::error::{DecodeError, EncodeError};
use super::type_id::TypeId;

/// Field sizes of the data unit identifier and the IOA, fixed per link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsduParams {
    pub cot_size: u8,
    pub ca_size: u8,
    pub ioa_size: u8,
}

impl AsduParams {
    /// IEC 60870-5-104 §9: COT 2, CA 2, IOA 3 octets.
    pub const IEC104: AsduParams = AsduParams {
        cot_size: 2,
        ca_size: 2,
        ioa_size: 3,
    };

    /// COT 1|2, CA 1|2, IOA 1|2|3 octets, the sizes §7.1 allows.
    pub fn new(cot_size: u8, ca_size: u8, ioa_size: u8) -> Result<AsduParams, EncodeError> {
        let p = AsduParams {
            cot_size,
            ca_size,
            ioa_size,
        };
        if p.is_valid() {
            Ok(p)
        } else {
            Err(EncodeError::InvalidParams {
                cot_size,
                ca_size,
                ioa_size,
            })
        }
    }

    /// Octets before the first IOA.
    pub fn header_len(&self) -> usize {
        2 + usize::from(self.cot_size) + usize::from(self.ca_size)
    }

    /// Largest address the IOA field can hold.
    pub fn max_ioa(&self) -> u32 {
        match self.ioa_size {
            0 => 0,
            1 => 0xFF,
            2 => 0xFFFF,
            3 => 0xFF_FFFF,
            _ => u32::MAX,
        }
    }

    /// Largest common address the CA field can hold.
    pub(crate) fn max_ca(&self) -> u16 {
        if self.ca_size == 1 {
            0xFF
        } else {
            0xFFFF
        }
    }

    /// The fields are `pub`, so every entry point re-checks them rather than trusting `new`.
    pub(crate) fn is_valid(&self) -> bool {
        matches!(self.cot_size, 1 | 2)
            && matches!(self.ca_size, 1 | 2)
            && matches!(self.ioa_size, 1..=3)
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        AsduParams::new(self.cot_size, self.ca_size, self.ioa_size).map(|_| ())
    }
}

/// The data unit identifier as received, with the type identification left raw so an
/// unknown type can still be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub type_id: u8,
    /// SQ: the objects share one address, counting up from it.
    pub sequence: bool,
    /// Number of objects (7 bits).
    pub count: u8,
    pub cot: Cot,
    pub common_address: u16,
}

impl Header {
    /// Reads the data unit identifier at the start of `bytes`; the objects are not looked
    /// at, and a count of 0 is carried (it is [`Asdu::decode`](super::Asdu::decode) that
    /// rejects it), so this succeeds on anything long enough to answer.
    pub fn decode(bytes: &[u8], params: AsduParams) -> Result<Header, DecodeError> {
        if !params.is_valid() {
            return Err(DecodeError::InvalidParams);
        }
        let available = bytes.len();
        let needed = params.header_len();
        let Some(head) = bytes.get(..needed) else {
            return Err(DecodeError::Truncated { needed, available });
        };
        let [type_id, vsq, rest @ ..] = head else {
            return Err(DecodeError::Truncated { needed, available });
        };
        let Some((cot, ca)) = rest.split_at_checked(usize::from(params.cot_size)) else {
            return Err(DecodeError::InvalidParams);
        };
        let cot = match cot {
            [first] => Cot::from_octets(*first, 0),
            [first, originator] => Cot::from_octets(*first, *originator),
            _ => return Err(DecodeError::InvalidParams),
        };
        let common_address = match ca {
            [lo] => u16::from(*lo),
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => return Err(DecodeError::InvalidParams),
        };
        Ok(Header {
            type_id: *type_id,
            sequence: vsq & 0x80 != 0,
            count: vsq & 0x7F,
            cot,
            common_address,
        })
    }

    /// The type identification, if this codec implements it.
    pub fn type_id(&self) -> Option<TypeId> {
        TypeId::from_u8(self.type_id)
    }
}

/// Copy of a raw ASDU with the COT cause replaced and P/N set as given (used to answer
/// unknown type/COT/CA/IOA and negative confirmations). The T bit, the originator address
/// and everything after the COT are kept, because the master matches the answer against
/// what it sent. Returns `None` if `raw` is shorter than the header (or `params` are
/// invalid).
pub fn mirror(raw: &[u8], params: AsduParams, cause: Cause, negative: bool) -> Option<Vec<u8>> {
    if !params.is_valid() || raw.len() < params.header_len() {
        return None;
    }
    let mut out = raw.to_vec();
    let first = out.get_mut(2)?;
    *first = (*first & 0x80) | if negative { 0x40 } else { 0 } | (cause.0 & 0x3F);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P101: AsduParams = AsduParams {
        cot_size: 1,
        ca_size: 1,
        ioa_size: 2,
    };

    #[test]
    fn params_accept_only_the_sizes_the_standard_allows() {
        assert_eq!(AsduParams::new(2, 2, 3), Ok(AsduParams::IEC104));
        assert!(AsduParams::new(0, 2, 3).is_err());
        assert!(AsduParams::new(3, 2, 3).is_err());
        assert!(AsduParams::new(2, 0, 3).is_err());
        assert!(AsduParams::new(2, 2, 0).is_err());
        assert!(AsduParams::new(2, 2, 4).is_err());
        assert_eq!(AsduParams::IEC104.header_len(), 6);
        assert_eq!(P101.header_len(), 4);
        assert_eq!(AsduParams::IEC104.max_ioa(), 0xFF_FFFF);
        assert_eq!(P101.max_ioa(), 0xFFFF);
        assert_eq!(AsduParams::new(1, 1, 1).map(|p| p.max_ioa()), Ok(255));
    }

    #[test]
    fn header_of_a_general_interrogation_is_read_field_by_field() {
        let h = Header::decode(
            &[0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0, 0, 0, 0x14],
            AsduParams::IEC104,
        )
        .unwrap();
        assert_eq!(h.type_id(), Some(TypeId::C_IC_NA_1));
        assert_eq!(h.count, 1);
        assert!(!h.sequence);
        assert_eq!(h.cot, Cot::new(Cause::ACTIVATION));
        assert_eq!(h.common_address, 1);
    }

    #[test]
    fn header_keeps_unknown_types_and_the_originator() {
        let h = Header::decode(&[200, 0x85, 0xC6, 7, 0x34, 0x12], AsduParams::IEC104).unwrap();
        assert_eq!(h.type_id, 200);
        assert_eq!(h.type_id(), None);
        assert!(h.sequence);
        assert_eq!(h.count, 5);
        assert!(h.cot.negative && h.cot.test);
        assert_eq!(h.cot.originator, 7);
        assert_eq!(h.common_address, 0x1234);
    }

    #[test]
    fn one_octet_cot_and_ca_have_no_originator_and_no_high_octet() {
        let h = Header::decode(&[1, 1, 3, 0xFE], P101).unwrap();
        assert_eq!(h.cot, Cot::new(Cause::SPONTANEOUS));
        assert_eq!(h.common_address, 0xFE);
    }

    #[test]
    fn short_header_is_truncated() {
        assert_eq!(
            Header::decode(&[1, 1, 3, 0, 1], AsduParams::IEC104),
            Err(DecodeError::Truncated {
                needed: 6,
                available: 5
            })
        );
        let bad = AsduParams {
            cot_size: 9,
            ..P101
        };
        assert_eq!(
            Header::decode(&[0; 32], bad),
            Err(DecodeError::InvalidParams)
        );
    }

    #[test]
    fn mirror_replaces_the_cause_and_keeps_test_bit_and_originator() {
        let raw = [200, 1, 0x86, 5, 1, 0, 0xAA, 0xBB];
        let m = mirror(&raw, AsduParams::IEC104, Cause::UNKNOWN_TYPE, true).unwrap();
        assert_eq!(m, [200, 1, 0x80 | 0x40 | 44, 5, 1, 0, 0xAA, 0xBB]);
        let m = mirror(&m, AsduParams::IEC104, Cause::ACTIVATION_CON, false).unwrap();
        assert_eq!(m, [200, 1, 0x80 | 7, 5, 1, 0, 0xAA, 0xBB]);
    }

    #[test]
    fn mirror_of_something_shorter_than_a_header_is_none() {
        assert_eq!(mirror(&[1, 1, 6], P101, Cause::UNKNOWN_CAUSE, true), None);
        assert_eq!(
            mirror(&[1, 1, 6, 0], P101, Cause::UNKNOWN_CAUSE, true),
            Some(vec![1, 1, 0x6D, 0])
        );
    }
}
