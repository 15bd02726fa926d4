//! ocpp809: an IEC 60870-5-104/101 controlled station in front of an OCPP central system.
//!
//! Layers, leaf first: [`asdu`] (IEC 60870-5-101 §7 application data units) →
//! [`station`] (process image, interrogation, commands) → link layers [`iec104`]
//! (IEC 60870-5-104 APCI over TCP) and [`iec101`] (IEC 60870-5-101 FT1.2 over a serial
//! line). [`mapping`] owns the point layout and the pure mapping engine; [`modbus`] polls
//! the energy meters; [`mqtt`] mirrors telemetry to a broker; [`config`] reads the TOML
//! configuration; [`runtime`] wires the tasks.

pub mod asdu;
pub mod config;
pub mod health;
pub mod iec101;
pub mod iec104;
pub mod mapping;
pub mod modbus;
pub mod mqtt;
pub mod net;
pub mod observe;
pub mod ocpp;
pub mod password;
pub mod runtime;
pub mod spool;
pub mod station;
pub mod store;
pub mod tls;
