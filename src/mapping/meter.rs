//! The transport-neutral meter model the mapping engine sees: readings of the energy meters
//! configured as `[[meter]]` (CONTRACT §2, §3 "Meter points", §7 "Modbus").
//!
//! `src/modbus/` polls the meters and translates register contents into [`MeterEvent`]s;
//! the engine turns them into the meter points and, for the grid meter, into the site load
//! used by site power management.

use chrono::{DateTime, Utc};

/// Index of the meter in the configuration's `[[meter]]` list.
pub type MeterIndex = usize;

/// One complete poll, every value normalised to W, Wh, A or V. A measurand the meter has
/// no register for is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeterReading {
    pub power_w: Option<f64>,
    pub energy_wh: Option<f64>,
    pub current_a: Option<f64>,
    pub voltage_v: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MeterEvent {
    /// Every configured register was read and decoded.
    Reading {
        meter: MeterIndex,
        time: DateTime<Utc>,
        reading: MeterReading,
    },
    /// The poll failed: a Modbus exception, a timeout, a refused connection or a value
    /// that does not decode. The meter's points keep their last values with IV.
    Failed {
        meter: MeterIndex,
        time: DateTime<Utc>,
        error: String,
    },
}

impl MeterEvent {
    pub fn meter(&self) -> MeterIndex {
        match self {
            MeterEvent::Reading { meter, .. } | MeterEvent::Failed { meter, .. } => *meter,
        }
    }
}
