//! The ASDU as a whole (IEC 60870-5-101 §7.1): data unit identifier plus information
//! objects (IOA §7.2.5, elements §7.2.6, time tag §7.2.6.18), with SQ = 0 and SQ = 1
//! addressing (§7.2.2). Element codecs live in `monitor`, `command` and `system`.
//!
//! Decoding is strict (exact length, reserved bits clear) so that every ASDU that decodes
//! re-encodes to the same octets: a station that echoes a command in its confirmation must
//! not alter it.

mod command;
mod monitor;
mod system;
mod value;

pub use value::Value;

use super::cause::Cot;
use super::error::{DecodeError, EncodeError};
use super::header::{AsduParams, Header};
use super::time::Cp56Time2a;
use super::type_id::TypeId;

/// Largest VSQ count (7 bits).
const MAX_OBJECTS: usize = 0x7F;

/// One information object: address, element(s) and, for time-tagged types, the time tag.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InformationObject {
    pub address: u32,
    pub value: Value,
    /// `Some` iff the ASDU's type [`has_time`](TypeId::has_time).
    pub time: Option<Cp56Time2a>,
}

/// A decoded application service data unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Asdu {
    pub type_id: TypeId,
    /// SQ: objects at consecutive addresses, only the first of which is sent.
    pub sequence: bool,
    pub cot: Cot,
    pub common_address: u16,
    pub objects: Vec<InformationObject>,
}

impl Asdu {
    /// No objects yet, SQ = 0.
    pub fn new(type_id: TypeId, cot: Cot, common_address: u16) -> Asdu {
        Asdu {
            type_id,
            sequence: false,
            cot,
            common_address,
            objects: Vec::new(),
        }
    }

    /// Decodes exactly one ASDU; trailing octets are an error because they mean the peer
    /// uses other field sizes, which would misplace every field after the header.
    pub fn decode(bytes: &[u8], params: AsduParams) -> Result<Asdu, DecodeError> {
        let header = Header::decode(bytes, params)?;
        let type_id = header
            .type_id()
            .ok_or(DecodeError::UnknownType(header.type_id))?;
        if header.count == 0 {
            return Err(DecodeError::NoObjects);
        }
        let count = usize::from(header.count);
        let needed = body_len(type_id, header.sequence, count, params) + params.header_len();
        let available = bytes.len();
        if available < needed {
            return Err(DecodeError::Truncated { needed, available });
        }
        if available > needed {
            return Err(DecodeError::TrailingBytes(available - needed));
        }
        let mut r = Reader::new(bytes.get(params.header_len()..).unwrap_or_default());
        let mut objects = Vec::with_capacity(count);
        let mut next_address = 0;
        for i in 0..count {
            let address = if header.sequence && i > 0 {
                next_address
            } else {
                r.ioa(params.ioa_size)?
            };
            if address > params.max_ioa() {
                // Only reachable with SQ = 1: the run of addresses leaves the IOA field's
                // range, so this ASDU could not be encoded again.
                return Err(DecodeError::InvalidField(
                    "SQ = 1 addresses exceed the IOA size",
                ));
            }
            next_address = address + 1;
            let value = decode_element(type_id, &mut r)?;
            let time = if type_id.has_time() {
                Some(r.cp56()?)
            } else {
                None
            };
            objects.push(InformationObject {
                address,
                value,
                time,
            });
        }
        Ok(Asdu {
            type_id,
            sequence: header.sequence,
            cot: header.cot,
            common_address: header.common_address,
            objects,
        })
    }

    /// Appends the encoded ASDU to `out`. On error `out` is left as it was, so a caller
    /// building an APDU in place need not clean up. The 249-octet ASDU limit of 104 is the
    /// link's to enforce (see [`Asdu::encoded_len`]), as 101 links have other limits.
    pub fn encode(&self, params: AsduParams, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_into(params, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Octets [`Asdu::encode`] would append (whether or not it would succeed).
    pub fn encoded_len(&self, params: AsduParams) -> usize {
        params.header_len() + body_len(self.type_id, self.sequence, self.objects.len(), params)
    }

    fn encode_into(&self, params: AsduParams, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        params.check()?;
        let count = self.objects.len();
        if count == 0 {
            return Err(EncodeError::NoObjects);
        }
        let vsq_count = u8::try_from(count)
            .ok()
            .filter(|c| usize::from(*c) <= MAX_OBJECTS)
            .ok_or(EncodeError::TooManyObjects(count))?;
        if self.common_address > params.max_ca() {
            return Err(EncodeError::CommonAddressOutOfRange {
                address: self.common_address,
                max: params.max_ca(),
            });
        }
        let cot = self
            .cot
            .first_octet()
            .ok_or(EncodeError::InvalidField("cause of transmission above 63"))?;

        out.reserve(self.encoded_len(params));
        out.push(self.type_id as u8);
        out.push(vsq_count | if self.sequence { 0x80 } else { 0 });
        out.push(cot);
        if params.cot_size == 2 {
            out.push(self.cot.originator);
        }
        let [ca_lo, ca_hi] = self.common_address.to_le_bytes();
        out.push(ca_lo);
        if params.ca_size == 2 {
            out.push(ca_hi);
        }

        let first = self.objects.first().map_or(0, |o| o.address);
        for (i, obj) in self.objects.iter().enumerate() {
            if obj.address > params.max_ioa() {
                return Err(EncodeError::AddressOutOfRange {
                    address: obj.address,
                    max: params.max_ioa(),
                });
            }
            if self.sequence {
                // i <= 126 and first <= 0xFF_FFFF, so this cannot overflow.
                let expected = first.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
                if obj.address != expected {
                    return Err(EncodeError::NotConsecutive {
                        expected,
                        found: obj.address,
                    });
                }
            }
            if !obj.value.fits(self.type_id) {
                return Err(EncodeError::TypeMismatch {
                    type_id: self.type_id,
                    address: obj.address,
                });
            }
            if obj.time.is_some() != self.type_id.has_time() {
                return Err(EncodeError::TimeTag {
                    type_id: self.type_id,
                    address: obj.address,
                });
            }
            if !self.sequence || i == 0 {
                let ioa = obj.address.to_le_bytes();
                out.extend(ioa.iter().take(usize::from(params.ioa_size)));
            }
            encode_element(&obj.value, out)?;
            if let Some(time) = obj.time {
                time.check()?;
                time.encode(out);
            }
        }
        Ok(())
    }
}

/// Octets after the header for `count` objects of type `t`.
fn body_len(t: TypeId, sequence: bool, count: usize, params: AsduParams) -> usize {
    let ioa = usize::from(params.ioa_size);
    let element = t.element_len();
    if sequence {
        // One IOA for the whole run, and none at all for an empty one.
        if count == 0 {
            0
        } else {
            ioa + count * element
        }
    } else {
        count * (ioa + element)
    }
}

fn decode_element(t: TypeId, r: &mut Reader<'_>) -> Result<Value, DecodeError> {
    if let Some(v) = monitor::decode(t, r)? {
        return Ok(v);
    }
    if let Some(v) = command::decode(t, r)? {
        return Ok(v);
    }
    system::decode(t, r)?.ok_or(DecodeError::UnknownType(t as u8))
}

fn encode_element(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if monitor::encode(v, out)? || command::encode(v, out)? || system::encode(v, out)? {
        Ok(())
    } else {
        Err(EncodeError::InvalidField("value without an element codec"))
    }
}

/// Cursor over the object part of an ASDU; every read is bounds-checked so no input can
/// make decoding panic.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(DecodeError::Truncated {
                needed: N,
                available: self.rest.len(),
            });
        };
        self.rest = tail;
        Ok(*head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|[b]| b)
    }

    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    pub(super) fn i16(&mut self) -> Result<i16, DecodeError> {
        self.array().map(i16::from_le_bytes)
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(super) fn f32(&mut self) -> Result<f32, DecodeError> {
        self.u32().map(f32::from_bits)
    }

    pub(super) fn cp56(&mut self) -> Result<Cp56Time2a, DecodeError> {
        Cp56Time2a::decode(&self.array::<{ Cp56Time2a::LEN }>()?)
    }

    /// Little-endian address of 1–3 octets.
    fn ioa(&mut self, size: u8) -> Result<u32, DecodeError> {
        let [b0, b1, b2] = match size {
            1 => [self.u8()?, 0, 0],
            2 => {
                let [b0, b1] = self.array()?;
                [b0, b1, 0]
            }
            3 => self.array()?,
            _ => return Err(DecodeError::InvalidParams),
        };
        Ok(u32::from_le_bytes([b0, b1, b2, 0]))
    }
}

#[cfg(test)]
mod tests;
