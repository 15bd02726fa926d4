//! The OCPP local-controller relay: chargers connect to ocpp809, which relays their
//! conversation to an upstream CSMS while SCADA (IEC 60870-5-104/101) keeps power authority.
//!
//! [`clip`] is the pure power-authority check every upstream → charger CALL passes through.

pub mod clip;
