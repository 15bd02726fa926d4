//! ASDU codec shared by IEC 60870-5-101 and IEC 60870-5-104.
//!
//! Implements the application service data unit of IEC 60870-5-101 §7 (as adopted by
//! IEC 60870-5-104 §8): the data unit identifier (type id, variable structure qualifier,
//! cause of transmission, common address), information object addresses and the information
//! elements of §7.2.6 for the process, command and system types this station serves.
//! Field sizes (COT 1/2, CA 1/2, IOA 1/2/3) are parameters so one codec serves both links.
//!
//! This module is a leaf: it knows nothing of chargers, links or sockets.
//!
//! API contract (other modules rely on it):
//! - [`AsduParams`] holds the field sizes; [`AsduParams::IEC104`] = COT 2, CA 2, IOA 3.
//! - [`Asdu::decode`]`(bytes, params) -> Result<Asdu, DecodeError>` and
//!   [`Asdu::encode`]`(&self, params, &mut Vec<u8>) -> Result<(), EncodeError>`.
//! - [`Header::decode`] reads only the data unit identifier, so a station can answer
//!   "unknown type" (COT 44) for a type it cannot parse; [`mirror`] copies a raw ASDU with a new
//!   cause and the P/N bit set, as lib60870 and most RTUs do for negative confirmations.

mod cause;
mod elements;
mod error;
mod header;
mod object;
mod quality;
mod time;
mod type_id;

pub use cause::{Cause, Cot};
pub use elements::{
    BinaryCounterReading, Dco, DoublePointValue, Freeze, Qcc, Qoi, Qos, Rco, Sco, StepCommandState,
};
pub use error::{DecodeError, EncodeError};
pub use header::{mirror, AsduParams, Header};
pub use object::{Asdu, InformationObject, Value};
pub use quality::Quality;
pub use time::{Cp24Time2a, Cp56Time2a};
pub use type_id::TypeId;
