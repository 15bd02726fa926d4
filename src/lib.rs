//! ocpp809: an IEC 60870-5-104/101 controlled station in front of an OCPP central system.
//!
//! Layers, leaf first: [`asdu`] (IEC 60870-5-101 §7 application data units) →
//! [`station`] (process image, interrogation, commands) → link layer [`iec104`]
//! (IEC 60870-5-104 APCI over TCP). [`mapping`] owns the point layout and the pure
//! mapping engine; [`modbus`] polls the energy meters; [`config`] reads the TOML configuration; [`runtime`] wires the tasks.

pub mod asdu;
pub mod config;
pub mod iec104;
pub mod mapping;
pub mod modbus;
pub mod net;
pub mod ocpp;
pub mod runtime;
pub mod station;
pub mod store;
