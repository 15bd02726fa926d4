//! IEC 60870-5-104 link layer: APCI framing (§5), the connection state machine with
//! k/w and the t1–t3 timers (§5.2–5.3), and the TCP server that drives it.

pub mod apci;
pub mod link;
pub mod server;
