//! What the engine reports for mirroring to telemetry consumers (the MQTT mirror, CONTRACT §5):
//! state snapshots (site, charger, meter) to be kept as retained messages, and a stream of
//! samples, charger events and SCADA command outcomes.
//!
//! The field names are those of the CONTRACT §5 JSON payloads, so a consumer serialises a
//! report as it is; timestamps are RFC 3339 UTC with `Z`, and a value that is unknown is
//! `null` (never 0).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use super::charger::{ChargerId, ConnectorId};

fn rfc3339<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Something for telemetry consumers.
#[derive(Clone, Debug, PartialEq)]
pub enum Telemetry {
    /// `{prefix}/{station}/site`, retained.
    Site(SiteReport),
    /// `{prefix}/{station}/chargers/{id}/state`, retained.
    Charger(ChargerReport),
    /// `{prefix}/{station}/meters/{name}`, retained.
    Meter(MeterReport),
    /// `{prefix}/{station}/chargers/{id}/meter`: one per sampled value.
    Sample(SampleReport),
    /// `{prefix}/{station}/chargers/{id}/events`.
    Event(EventReport),
    /// `{prefix}/{station}/commands`.
    Command(CommandReport),
}

impl Telemetry {
    /// Snapshots replace each other; a consumer may keep only the newest per topic.
    pub fn is_state(&self) -> bool {
        matches!(
            self,
            Telemetry::Site(_) | Telemetry::Charger(_) | Telemetry::Meter(_)
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteReport {
    pub power_kw: Option<f64>,
    pub energy_wh: Option<f64>,
    /// `None` when no site limit is in force.
    pub limit_kw: Option<f64>,
    pub failsafe: bool,
    pub chargers_online: u32,
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectorReport {
    /// OCPP status name as the charger reported it last (`None` before the first report).
    pub status: Option<String>,
    pub power_kw: Option<f64>,
    pub energy_wh: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChargerReport {
    #[serde(skip)]
    pub charger: ChargerId,
    pub online: bool,
    pub power_kw: Option<f64>,
    pub energy_wh: Option<f64>,
    /// `None` when no limit is in force.
    pub limit_kw: Option<f64>,
    /// Keyed by connector number as text ("1", "2", ...).
    pub connectors: BTreeMap<String, ConnectorReport>,
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeterReport {
    #[serde(skip)]
    pub name: String,
    pub power_kw: Option<f64>,
    pub energy_wh: Option<f64>,
    pub current_a: Option<f64>,
    pub voltage_v: Option<f64>,
    /// False after a failed poll: the values are the last good ones.
    pub valid: bool,
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleReport {
    #[serde(skip)]
    pub charger: ChargerId,
    pub connector: ConnectorId,
    /// The sample's timestamp (the charger's, else the receive time).
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
    pub measurand: String,
    /// Normalised to `unit`; `None` when the value could not be read.
    pub value: Option<f64>,
    pub unit: String,
    pub valid: bool,
}

/// A charger event: `{"type": ..., "ts": ..., ...details}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventReport {
    #[serde(skip)]
    pub charger: ChargerId,
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
    #[serde(flatten)]
    pub event: ChargerNotice,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChargerNotice {
    Connected,
    Disconnected,
    Booted {
        vendor: String,
        model: String,
    },
    Status {
        connector: ConnectorId,
        status: String,
        error_code: Option<String>,
    },
    TransactionStarted {
        connector: ConnectorId,
        transaction_id: String,
        id_tag: Option<String>,
    },
    TransactionEnded {
        connector: Option<ConnectorId>,
        transaction_id: String,
        meter_stop_wh: Option<f64>,
        reason: Option<String>,
    },
    Alarm {
        connector: Option<ConnectorId>,
        name: String,
        active: bool,
    },
    /// The sanitizer accepted a non-conforming input by coercing it.
    Coercion {
        kind: String,
        detail: String,
    },
    /// A limit above `max_kw` was clamped (CONTRACT §3).
    LimitClamped {
        requested_kw: f64,
        applied_kw: f64,
    },
}

/// A SCADA command and its outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandReport {
    #[serde(serialize_with = "rfc3339")]
    pub ts: DateTime<Utc>,
    pub ioa: u32,
    /// IEC type identification as received, e.g. 50 for C_SE_NC_1.
    pub type_id: u8,
    /// Setpoint value or command state (1/0); `None` for a read.
    pub value: Option<f64>,
    /// The charger the command went to; `None` for site commands.
    pub charger: Option<ChargerId>,
    pub positive: bool,
    /// Why a command was refused (P/N set), if it was.
    pub reason: Option<String>,
}
