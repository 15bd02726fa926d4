//! IEC 60870-5-101 link layer over a serial line: the FT1.2 frame codec (IEC 60870-5-1
//! §6.2.4.2, [`ft12`]) and the unbalanced and balanced link transmission procedures of
//! IEC 60870-5-2 §5 as profiled by IEC 60870-5-101 §6 ([`link`]), for a controlled station.
//!
//! Both are sans-IO: no serial port, no clock, no tokio. A driver feeds received octets and
//! `Instant`s and writes out what the link queues.

pub mod ft12;
pub mod line;
pub mod link;
