//! The version-neutral charger model the mapping engine sees: what chargers report
//! ([`ChargerEvent`]) and what the engine asks of them ([`ChargerCommand`]).
//!
//! OCPP 1.6J and 2.0.1 are translated into these types by `src/ocpp/`; the engine never
//! learns which version a charger speaks. In 2.0.1 terms a connector here is an EVSE
//! (evseId); in 1.6 it is the connectorId; 0 is the charging station as a whole.

use chrono::{DateTime, Utc};

/// Charge point identity: the last path segment of the WebSocket URL.
pub type ChargerId = String;

/// Connector (1.6) or EVSE (2.0.1) number; 0 = the whole station.
pub type ConnectorId = u8;

/// Connector status, the union of both versions' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectorStatus {
    Available,
    /// 1.6 only.
    Preparing,
    /// 1.6 only.
    Charging,
    /// 1.6 only.
    SuspendedEv,
    /// 1.6 only.
    SuspendedEvse,
    /// 1.6 only.
    Finishing,
    Reserved,
    Unavailable,
    Faulted,
    /// 2.0.1 only.
    Occupied,
}

impl ConnectorStatus {
    /// CONTRACT §7: occupied = 1.6 Preparing, Charging, SuspendedEV, SuspendedEVSE,
    /// Finishing, or 2.0.1 Occupied.
    pub fn is_occupied(self) -> bool {
        matches!(
            self,
            ConnectorStatus::Preparing
                | ConnectorStatus::Charging
                | ConnectorStatus::SuspendedEv
                | ConnectorStatus::SuspendedEvse
                | ConnectorStatus::Finishing
                | ConnectorStatus::Occupied
        )
    }
}

/// The measurands the point layout uses; anything else is carried by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Measurand {
    PowerActiveImport,
    EnergyActiveImportRegister,
    CurrentImport,
    Voltage,
    Other(String),
}

/// A value normalised to its SI base unit: W, Wh, A or V.
#[derive(Clone, Debug, PartialEq)]
pub enum SampleValue {
    Valid(f64),
    /// The sanitizer could not make sense of it: the raw text and why. Never 0.
    Invalid {
        raw: String,
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct SampledValue {
    pub measurand: Measurand,
    /// "L1", "L2", "L3", "N", "L1-N", …; `None` = total.
    pub phase: Option<String>,
    pub value: SampleValue,
    /// The unit the value is now in ("W", "Wh", "A", "V"), or the charger's for `Other`.
    pub unit: String,
}

/// Why a meter sample was taken (OCPP ReadingContext).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleContext {
    Periodic,
    TransactionBegin,
    TransactionEnd,
    Trigger,
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MeterSample {
    pub connector: ConnectorId,
    /// The charger's timestamp of the sample (UTC), if it sent one that parsed.
    pub timestamp: Option<DateTime<Utc>>,
    pub context: SampleContext,
    pub transaction_id: Option<String>,
    /// Sent from the charger's offline queue (1.6 StopTransaction transactionData, 2.0.1
    /// TransactionEvent offline = true): updates counters, is not current power.
    pub replayed: bool,
    pub values: Vec<SampledValue>,
}

/// A non-conforming input the sanitizer accepted by coercing it (counted per charger and
/// kind, first occurrence logged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoercionKind {
    NumberAsString,
    UnitSuffix,
    UnitSuffixOverridesField,
    DecimalComma,
    EnumCase,
    TimestampWithoutZone,
    LegacyFieldName,
    UnparseableValue,
    BinaryFrame,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChargerEvent {
    /// WebSocket session up (before BootNotification).
    Connected {
        charger: ChargerId,
    },
    Booted {
        charger: ChargerId,
        vendor: String,
        model: String,
        serial: Option<String>,
        firmware: Option<String>,
    },
    Status {
        charger: ChargerId,
        connector: ConnectorId,
        status: ConnectorStatus,
        /// 1.6 errorCode (other than NoError) or vendor error text.
        error_code: Option<String>,
        timestamp: Option<DateTime<Utc>>,
    },
    Meter {
        charger: ChargerId,
        sample: MeterSample,
    },
    TransactionStarted {
        charger: ChargerId,
        connector: ConnectorId,
        transaction_id: String,
        id_tag: Option<String>,
        meter_start_wh: Option<f64>,
        timestamp: Option<DateTime<Utc>>,
    },
    TransactionUpdated {
        charger: ChargerId,
        connector: ConnectorId,
        transaction_id: String,
        timestamp: Option<DateTime<Utc>>,
    },
    TransactionEnded {
        charger: ChargerId,
        connector: Option<ConnectorId>,
        transaction_id: String,
        meter_stop_wh: Option<f64>,
        reason: Option<String>,
        timestamp: Option<DateTime<Utc>>,
    },
    /// An alarm raised or cleared (2.0.1 NotifyEvent; 1.6 errorCode / DataTransfer).
    Alarm {
        charger: ChargerId,
        connector: Option<ConnectorId>,
        /// Variable name (Problem, Overload, …) or 1.6 errorCode.
        name: String,
        active: bool,
        timestamp: Option<DateTime<Utc>>,
    },
    Coerced {
        charger: ChargerId,
        kind: CoercionKind,
        detail: String,
    },
    /// The answer to a [`ChargerRequest`].
    CommandFinished {
        charger: ChargerId,
        request: RequestId,
        result: CommandResult,
    },
    Disconnected {
        charger: ChargerId,
    },
}

impl ChargerEvent {
    /// The charger the event is about.
    pub fn charger(&self) -> &ChargerId {
        match self {
            ChargerEvent::Connected { charger }
            | ChargerEvent::Booted { charger, .. }
            | ChargerEvent::Status { charger, .. }
            | ChargerEvent::Meter { charger, .. }
            | ChargerEvent::TransactionStarted { charger, .. }
            | ChargerEvent::TransactionUpdated { charger, .. }
            | ChargerEvent::TransactionEnded { charger, .. }
            | ChargerEvent::Alarm { charger, .. }
            | ChargerEvent::Coerced { charger, .. }
            | ChargerEvent::CommandFinished { charger, .. }
            | ChargerEvent::Disconnected { charger } => charger,
        }
    }
}

/// Identifies a command from the engine to a charger across the asynchronous round trip.
pub type RequestId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitUnit {
    Watts,
    Amperes,
}

/// Line voltage of every A ↔ W conversion (CONTRACT §2 `phases`: "A ↔ kW conversions use
/// 230 V × phases").
pub const VOLTS: f64 = 230.0;

/// The power, in kW, of a per-phase current on `phases` phases at [`VOLTS`].
pub fn kw_from_amps(amps: f64, phases: u8) -> f64 {
    amps * VOLTS * f64::from(phases) / 1000.0
}

/// The per-phase current, in A, of a power of `kw` spread over `phases` phases at [`VOLTS`].
pub fn amps_from_kw(kw: f64, phases: u8) -> f64 {
    kw * 1000.0 / (VOLTS * f64::from(phases))
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChargerCommand {
    /// 1.6 ChargePointMaxProfile on connector 0 / 2.0.1 ChargingStationMaxProfile on EVSE 0,
    /// kind Absolute, one period at startPeriod 0.
    SetLimit {
        limit: f64,
        unit: LimitUnit,
        profile_id: i32,
        stack_level: u32,
    },
    ClearLimit {
        profile_id: i32,
    },
    GetCompositeSchedule {
        connector: ConnectorId,
        duration_s: u32,
        unit: LimitUnit,
    },
    /// Whole station (1.6 connectorId 0; 2.0.1 without evse).
    ChangeAvailability {
        operative: bool,
    },
    Reset {
        hard: bool,
    },
    TriggerMessage {
        message: String,
        connector: Option<ConnectorId>,
    },
    RemoteStart {
        connector: Option<ConnectorId>,
        id_tag: String,
    },
    RemoteStop {
        transaction_id: String,
    },
    /// 1.6 GetConfiguration / 2.0.1 GetVariables (component.variable as "Component.Variable").
    GetSettings {
        keys: Vec<String>,
    },
    /// 1.6 ChangeConfiguration / 2.0.1 SetVariables.
    SetSetting {
        key: String,
        value: String,
    },
    UnlockConnector {
        connector: ConnectorId,
    },
    DataTransfer {
        vendor_id: String,
        message_id: Option<String>,
        data: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChargerRequest {
    pub id: RequestId,
    pub charger: ChargerId,
    pub command: ChargerCommand,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CommandResult {
    /// Accepted (and 2.0.1/1.6 equivalents the contract counts as positive, e.g. Scheduled,
    /// 1.6 ClearChargingProfile Unknown).
    Accepted,
    /// Rejected, NotSupported, … with the status text.
    Rejected(String),
    /// GetCompositeSchedule: the limit of the period in force now, in the requested unit.
    Schedule {
        limit: Option<f64>,
        unit: LimitUnit,
    },
    /// GetSettings: key → value (None when unknown to the charger).
    Settings(Vec<(String, Option<String>)>),
    /// DataTransfer answer.
    Data {
        status: String,
        data: Option<String>,
    },
    CallError {
        code: String,
        description: String,
    },
    Timeout,
    Offline,
}

impl CommandResult {
    pub fn is_positive(&self) -> bool {
        matches!(
            self,
            CommandResult::Accepted | CommandResult::Schedule { .. } | CommandResult::Settings(_)
        ) || matches!(self, CommandResult::Data { status, .. } if status == "Accepted")
    }
}
