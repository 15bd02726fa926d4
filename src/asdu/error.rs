//! Error types of the ASDU codec (IEC 60870-5-101 §7).
//!
//! Decoding never panics: every malformed octet string maps to a [`DecodeError`] so a
//! station can answer it (or drop it) instead of crashing on hostile input. Encoding checks
//! every field against the width the standard gives it, because silently masking a value
//! would put a different value on the wire than the caller asked for.

use super::type_id::TypeId;
use thiserror::Error;

/// Why an octet string is not a valid ASDU for the given parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer octets than the header, VSQ count and type identification require.
    #[error("ASDU truncated: {needed} octets needed, {available} available")]
    Truncated { needed: usize, available: usize },
    /// The type identification is not one this codec implements (answer with COT 44).
    #[error("unknown type identification {0}")]
    UnknownType(u8),
    /// The VSQ announces zero information objects, which §7.2.2 does not allow.
    #[error("variable structure qualifier announces no information objects")]
    NoObjects,
    /// Octets left over after the announced objects; a length mismatch means the peer and
    /// this station disagree on the field sizes, so guessing would misread every object.
    #[error("{0} trailing octets after the last information object")]
    TrailingBytes(usize),
    /// A field holds a value the standard reserves (e.g. a RES bit set).
    #[error("invalid field: {0}")]
    InvalidField(&'static str),
    /// The [`AsduParams`](super::AsduParams) themselves are outside COT 1|2, CA 1|2, IOA 1|2|3.
    #[error("invalid ASDU parameters (COT 1|2, CA 1|2, IOA 1|2|3 octets)")]
    InvalidParams,
}

/// Why an [`Asdu`](super::Asdu) cannot be put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// Field sizes outside COT 1|2, CA 1|2, IOA 1|2|3 octets.
    #[error("invalid ASDU parameters: COT {cot_size}, CA {ca_size}, IOA {ioa_size} octets")]
    InvalidParams {
        cot_size: u8,
        ca_size: u8,
        ioa_size: u8,
    },
    /// An ASDU must carry at least one information object.
    #[error("ASDU has no information objects")]
    NoObjects,
    /// The VSQ count has 7 bits.
    #[error("{0} information objects exceed the VSQ maximum of 127")]
    TooManyObjects(usize),
    /// With SQ = 1 only the first address is sent, so the others must follow it.
    #[error("SQ = 1 needs consecutive addresses: expected {expected}, found {found}")]
    NotConsecutive { expected: u32, found: u32 },
    /// The address does not fit the configured IOA size.
    #[error("information object address {address} exceeds the maximum {max}")]
    AddressOutOfRange { address: u32, max: u32 },
    /// The common address does not fit the configured CA size.
    #[error("common address {address} exceeds the maximum {max}")]
    CommonAddressOutOfRange { address: u16, max: u16 },
    /// The object's value cannot be carried by the ASDU's type identification.
    #[error("value of object {address} does not fit type {type_id:?}")]
    TypeMismatch { type_id: TypeId, address: u32 },
    /// A time tag is missing on a time-tagged type, or present on one without.
    #[error("object {address} of type {type_id:?} has a missing or superfluous time tag")]
    TimeTag { type_id: TypeId, address: u32 },
    /// A field exceeds the bit width the standard gives it.
    #[error("field out of range: {0}")]
    InvalidField(&'static str),
}
