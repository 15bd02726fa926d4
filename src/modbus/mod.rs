//! Modbus energy-meter poller: reads the `[[meter]]` blocks' registers (CONTRACT §2
//! `[[meter]]` / `[[meter.register]]`) and reports each poll to the application as a
//! [`MeterEvent`](crate::mapping::meter::MeterEvent), which the mapping engine turns into the
//! meter points (CONTRACT §3 "Meter points") and, for the grid meter, the site load.
//!
//! Protocol: MODBUS Application Protocol Specification v1.1b3, functions 0x03 Read Holding
//! Registers (§6.3) and 0x04 Read Input Registers (§6.4), at most 125 registers per request;
//! transported per "MODBUS Messaging on TCP/IP Implementation Guide v1.0b" (MBAP header,
//! Modbus TCP) or "MODBUS over Serial Line v1.02" (RTU framing, 8 data bits, 1 stop bit) through
//! the `tokio-modbus` client.
//!
//! - [`registers`] is pure: decoding the words of one register (u16/i16/u32/i32/f32/u64, either
//!   word order) into W, Wh, A or V, and planning the fewest read requests for a meter.
//! - [`poller`] owns the I/O: one task per connection — a TCP meter, or an RS-485 bus whose
//!   RTU meters share a serial port ([`run_meters`] groups them with [`buses`]; [`run_bus`],
//!   [`run_meter`]) — with a fixed poll schedule per meter, request timeout
//!   `min(poll_ms, 3000)` ms and reconnect with backoff (CONTRACT §7 "Modbus").

pub mod poller;
pub mod registers;

pub use poller::{buses, run_bus, run_meter, run_meters, PollError};
pub use registers::{DecodeError, PlanError, ReadFunction, ReadPlan, ReadRequest};
