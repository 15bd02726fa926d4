//! The OCPP 1.6J dialect (OCPP 1.6 edition 2 §4 "Operations initiated by Charge Point",
//! §5 "Operations initiated by Central System", JSON schemas of OCPP-J 1.6).
//!
//! Charger → CSMS CALLs are read with the [`Sanitizer`] (lenient or strict, CONTRACT §4) into
//! the version-neutral [`ChargerEvent`]s; CSMS → charger commands are encoded from
//! [`ChargerCommand`] and their results decoded into [`CommandResult`] (CONTRACT §3, §7).
//!
//! - [`core`]: BootNotification, Heartbeat, StatusNotification (errorCode alarms), Authorize,
//!   DataTransfer (vendor alarm convention), Diagnostics/FirmwareStatusNotification.
//! - [`transactions`]: MeterValues, StartTransaction, StopTransaction (transactionData).
//! - [`commands`]: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule, …
//! - [`schema`]: the strict-mode structure of each request.
//! - [`common`]: pieces shared with the 2.0.1 dialect.
//!
//! [`ChargerCommand`]: crate::mapping::charger::ChargerCommand
//! [`CommandResult`]: crate::mapping::charger::CommandResult

pub mod commands;
pub mod common;
pub mod core;
pub mod schema;
pub mod transactions;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::mapping::charger::{ChargerCommand, CoercionKind, CommandResult, ConnectorId};
use crate::ocpp::sanitize::reader::error;
use crate::ocpp::sanitize::schema::{check, Ty};
use crate::ocpp::sanitize::{match_enum, Coercion, Sanitizer};
use crate::ocpp::{CallContext, CallError, Dialect, ErrorCode, Mode, Version};
use common::TransactionConnectors;

/// Charge point → central system actions this dialect answers.
pub const ACTIONS: &[&str] = &[
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
];

/// Charge point → central system actions of the 1.6 security extension that this CSMS knows
/// but does not support (answered NotSupported rather than NotImplemented).
const KNOWN_UNSUPPORTED: &[&str] = &[
    "LogStatusNotification",
    "SecurityEventNotification",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
];

/// One OCPP 1.6J connection's message layer.
#[derive(Debug, Default)]
pub struct V16Dialect {
    /// The errorCode alarm active per connector (raised by a StatusNotification errorCode
    /// other than NoError/OtherError, cleared by a later NoError/OtherError).
    alarms: BTreeMap<ConnectorId, String>,
    /// Connector of each transaction started on this connection.
    transactions: TransactionConnectors,
}

impl V16Dialect {
    pub fn new() -> V16Dialect {
        V16Dialect::default()
    }
}

/// The actions a version's central system handles.
pub(crate) struct ActionSet {
    pub version: Version,
    pub actions: &'static [&'static str],
    pub known_unsupported: &'static [&'static str],
    pub schema_of: fn(&str) -> Option<&'static Ty>,
}

/// The common start of handling a CALL: resolve the action (case-tolerant when lenient) and,
/// in strict mode, check the payload against the action's schema.
pub(crate) fn prepare(
    mode: Mode,
    action: &str,
    payload: &Value,
    set: &ActionSet,
) -> Result<(Sanitizer, &'static str), CallError> {
    let mut s = Sanitizer::new(mode);
    let action = resolve_action(&mut s, action, set.actions, set.known_unsupported)?;
    if mode == Mode::Strict {
        if let Some(ty) = (set.schema_of)(action) {
            check(payload, ty, set.version)?;
        }
    }
    Ok((s, action))
}

/// Resolves the action name; lenient mode accepts it in another case.
pub(crate) fn resolve_action(
    s: &mut Sanitizer,
    action: &str,
    actions: &[&'static str],
    known_unsupported: &[&str],
) -> Result<&'static str, CallError> {
    match match_enum(action, actions) {
        Some((name, true)) => Ok(name),
        Some((name, false)) if s.lenient() && action.eq_ignore_ascii_case(name) => {
            s.coerce(
                "",
                Coercion::new(
                    CoercionKind::EnumCase,
                    format!(
                        "action \"{}\" taken as \"{name}\"",
                        crate::ocpp::sanitize::clip(action, 40)
                    ),
                ),
            )?;
            Ok(name)
        }
        _ if known_unsupported.contains(&action) => Err(error(
            ErrorCode::NotSupported,
            "",
            format!("{action} is not supported by this central system"),
        )),
        _ => Err(error(
            ErrorCode::NotImplemented,
            "",
            format!(
                "unknown action \"{}\"",
                crate::ocpp::sanitize::clip(action, 40)
            ),
        )),
    }
}

pub(crate) fn schema_of(action: &str) -> Option<&'static Ty> {
    Some(match action {
        "Authorize" => &schema::AUTHORIZE,
        "BootNotification" => &schema::BOOT_NOTIFICATION,
        "DataTransfer" => &schema::DATA_TRANSFER,
        "DiagnosticsStatusNotification" => &schema::DIAGNOSTICS_STATUS_NOTIFICATION,
        "FirmwareStatusNotification" => &schema::FIRMWARE_STATUS_NOTIFICATION,
        "Heartbeat" => &schema::HEARTBEAT,
        "MeterValues" => &schema::METER_VALUES,
        "StartTransaction" => &schema::START_TRANSACTION,
        "StatusNotification" => &schema::STATUS_NOTIFICATION,
        "StopTransaction" => &schema::STOP_TRANSACTION,
        _ => return None,
    })
}

impl Dialect for V16Dialect {
    fn version(&self) -> Version {
        Version::V16
    }

    fn handle_call(
        &mut self,
        ctx: &mut CallContext<'_>,
        action: &str,
        payload: &Value,
    ) -> Result<Value, CallError> {
        let set = ActionSet {
            version: Version::V16,
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
            "DiagnosticsStatusNotification" | "FirmwareStatusNotification" => {
                core::status_report(&mut s, action, payload)
            }
            "Heartbeat" => core::heartbeat(&mut s, ctx, payload),
            "MeterValues" => transactions::meter_values(&mut s, ctx, payload, out),
            "StartTransaction" => self.start_transaction(&mut s, ctx, payload, out),
            "StatusNotification" => self.status_notification(&mut s, ctx, payload, out),
            "StopTransaction" => self.stop_transaction(&mut s, ctx, payload, out),
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
