//! The OCPP 2.0.1 dialect (OCPP 2.0.1 Part 2 "Specification": use cases B01 boot, B04
//! heartbeat, C01 authorize, E transactions, G01 status, J01 meter values, N07 NotifyEvent,
//! B07 NotifyReport, A04 security events, L01 firmware, N01 logs, P01 DataTransfer, and the
//! CSMS-initiated K01/K10/K08, G03, B11, F06, F01/F03, B06, B05, F05 messages; Part 3 schemas).
//!
//! In this product's model an EVSE is a connector (CONTRACT §2): the events' connector is the
//! evseId; 0 is the station.
//!
//! - [`core`]: BootNotification, Heartbeat, StatusNotification, Authorize, NotifyEvent (alarms),
//!   NotifyReport, SecurityEventNotification, Firmware/LogStatusNotification, DataTransfer.
//! - [`transactions`]: MeterValues, TransactionEvent.
//! - [`commands`]: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule, …
//! - [`schema`]: the strict-mode structure of each request.

pub mod commands;
pub mod core;
pub mod schema;
pub mod transactions;

use serde_json::Value;

use crate::mapping::charger::{ChargerCommand, CommandResult};
use crate::ocpp::sanitize::reader::error;
use crate::ocpp::sanitize::schema::Ty;
use crate::ocpp::v16::common::{self, TransactionConnectors};
use crate::ocpp::v16::{prepare, ActionSet};
use crate::ocpp::{CallContext, CallError, Dialect, ErrorCode, Version};

/// Charging station → CSMS actions this dialect answers.
pub const ACTIONS: &[&str] = &[
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "NotifyEvent",
    "NotifyReport",
    "SecurityEventNotification",
    "StatusNotification",
    "TransactionEvent",
];

/// Charging station → CSMS actions of 2.0.1 this CSMS knows but does not support (answered
/// NotSupported rather than NotImplemented).
const KNOWN_UNSUPPORTED: &[&str] = &[
    "ClearedChargingLimit",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "NotifyMonitoringReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SignCertificate",
];

/// One OCPP 2.0.1 connection's message layer.
#[derive(Debug, Default)]
pub struct V201Dialect {
    /// EVSE of each transaction seen on this connection (TransactionEvent carries `evse` only
    /// in its first message for an EVSE).
    transactions: TransactionConnectors,
}

impl V201Dialect {
    pub fn new() -> V201Dialect {
        V201Dialect::default()
    }
}

pub(crate) fn schema_of(action: &str) -> Option<&'static Ty> {
    Some(match action {
        "Authorize" => &schema::AUTHORIZE,
        "BootNotification" => &schema::BOOT_NOTIFICATION,
        "DataTransfer" => &schema::DATA_TRANSFER,
        "FirmwareStatusNotification" => &schema::FIRMWARE_STATUS_NOTIFICATION,
        "Heartbeat" => &schema::HEARTBEAT,
        "LogStatusNotification" => &schema::LOG_STATUS_NOTIFICATION,
        "MeterValues" => &schema::METER_VALUES,
        "NotifyEvent" => &schema::NOTIFY_EVENT,
        "NotifyReport" => &schema::NOTIFY_REPORT,
        "SecurityEventNotification" => &schema::SECURITY_EVENT_NOTIFICATION,
        "StatusNotification" => &schema::STATUS_NOTIFICATION,
        "TransactionEvent" => &schema::TRANSACTION_EVENT,
        _ => return None,
    })
}

impl Dialect for V201Dialect {
    fn version(&self) -> Version {
        Version::V201
    }

    fn handle_call(
        &mut self,
        ctx: &mut CallContext<'_>,
        action: &str,
        payload: &Value,
    ) -> Result<Value, CallError> {
        let set = ActionSet {
            version: Version::V201,
            actions: ACTIONS,
            known_unsupported: KNOWN_UNSUPPORTED,
            schema_of,
        };
        let (mut s, action) = prepare(ctx.mode, action, payload, &set)?;
        let mut events = Vec::new();
        let out = &mut events;
        let result = match action {
            "Authorize" => core::authorize(&mut s, payload),
            "BootNotification" => core::boot_notification(&mut s, ctx, payload, out),
            "DataTransfer" => core::data_transfer(&mut s, ctx, payload, out),
            "FirmwareStatusNotification"
            | "LogStatusNotification"
            | "NotifyReport"
            | "SecurityEventNotification" => core::acknowledge(&mut s, action, payload),
            "Heartbeat" => core::heartbeat(&mut s, ctx, payload),
            "MeterValues" => transactions::meter_values(&mut s, ctx, payload, out),
            "NotifyEvent" => core::notify_event(&mut s, ctx, payload, out),
            "StatusNotification" => core::status_notification(&mut s, ctx, payload, out),
            "TransactionEvent" => self.transaction_event(&mut s, ctx, payload, out),
            _ => Err(error(ErrorCode::NotImplemented, "", "unknown action")),
        };
        common::run(ctx, s, result, events)
    }

    fn encode_command(&self, command: &ChargerCommand) -> (&'static str, Value) {
        commands::encode(command)
    }

    fn decode_result(&self, command: &ChargerCommand, payload: &Value) -> CommandResult {
        commands::decode(command, payload, chrono::Utc::now())
    }
}
