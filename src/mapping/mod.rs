//! The mapping engine: charger and meter state on one side, IEC 60870-5 points and SCADA
//! commands on the other (CONTRACT §3 and §7, `shared/MAPPING.md`).
//!
//! Pure and deterministic: inputs and time in, point updates and command outcomes out; no
//! tokio, no I/O. It owns the point layout and imports nothing from the protocol drivers;
//! they depend on it.

pub mod charger;
pub mod engine;
pub mod layout;
pub mod meter;
pub mod telemetry;

pub use engine::{Engine, EngineConfig, Input, Output, Persist, RestoredState};
pub use layout::{Direction, PointDef, PointList};
