//! OCPP 1.6 core profile messages without transactions (§4.1 Authorize, §4.2 BootNotification,
//! §4.3 DataTransfer, §4.4 DiagnosticsStatusNotification, §4.5 FirmwareStatusNotification,
//! §4.6 Heartbeat, §4.9 StatusNotification).
//!
//! Alarms (CONTRACT §7): a StatusNotification errorCode other than NoError/OtherError raises an
//! alarm named after the code on that connector; a later NoError (or OtherError) clears it. A
//! DataTransfer following the vendor alarm convention ([`vendor_alarm`]) raises or clears one.
//! Alarm state is kept per connection: after a reconnect only new errorCodes are known.

use rust_ocpp::v1_6::messages::authorize::AuthorizeResponse;
use rust_ocpp::v1_6::messages::boot_notification::BootNotificationResponse;
use rust_ocpp::v1_6::messages::data_transfer::DataTransferResponse;
use rust_ocpp::v1_6::messages::diagnostics_status_notification::DiagnosticsStatusNotificationResponse;
use rust_ocpp::v1_6::messages::firmware_status_notification::FirmwareStatusNotificationResponse;
use rust_ocpp::v1_6::messages::heart_beat::HeartbeatResponse;
use rust_ocpp::v1_6::messages::status_notification::StatusNotificationResponse;
use rust_ocpp::v1_6::types::{
    AuthorizationStatus, DataTransferStatus, IdTagInfo, RegistrationStatus,
};
use serde_json::Value;

use super::common::{response_time, to_payload, vendor_alarm};
use super::schema::{CHARGE_POINT_ERROR_CODES, CHARGE_POINT_STATUS};
use super::V16Dialect;
use crate::mapping::charger::{ChargerEvent, CoercionKind, ConnectorStatus};
use crate::ocpp::sanitize::reader::error;
use crate::ocpp::sanitize::{clip, match_enum, Coercion, Sanitizer};
use crate::ocpp::{CallContext, CallError, ErrorCode};

/// The accepted idTagInfo (local authorisation lists come later).
pub fn accepted_id_tag_info() -> IdTagInfo {
    IdTagInfo {
        expiry_date: None,
        parent_id_tag: None,
        status: AuthorizationStatus::Accepted,
    }
}

/// §4.2: every charger is accepted; the interval is `ocpp.heartbeat_interval_s`.
pub fn boot_notification(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let vendor = s.get(obj, "", "chargePointVendor", &[])?;
    let vendor = s.info_text(vendor, "chargePointVendor")?;
    let model = s.get(obj, "", "chargePointModel", &[])?;
    let model = s.info_text(model, "chargePointModel")?;
    let serial = s.get(obj, "", "chargePointSerialNumber", &[])?;
    let serial = s.info_text(serial, "chargePointSerialNumber")?;
    let box_serial = s.get(obj, "", "chargeBoxSerialNumber", &[])?;
    let box_serial = s.info_text(box_serial, "chargeBoxSerialNumber")?;
    let firmware = s.get(obj, "", "firmwareVersion", &[])?;
    let firmware = s.info_text(firmware, "firmwareVersion")?;
    out.push(ChargerEvent::Booted {
        charger: ctx.charger.clone(),
        vendor: vendor.unwrap_or_default(),
        model: model.unwrap_or_default(),
        serial: serial.or(box_serial),
        firmware,
    });
    to_payload(&BootNotificationResponse {
        current_time: response_time(ctx.now),
        interval: ctx.heartbeat_interval_s,
        status: RegistrationStatus::Accepted,
    })
}

/// §4.6.
pub fn heartbeat(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
) -> Result<Value, CallError> {
    // Some chargers send `null` or `[]`: the payload carries nothing we need.
    if !payload.is_object() && !s.lenient() {
        s.root(payload)?;
    }
    to_payload(&HeartbeatResponse {
        current_time: response_time(ctx.now),
    })
}

/// §4.1: every idTag is accepted.
pub fn authorize(s: &mut Sanitizer, payload: &Value) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let id_tag = s.require(obj, "", "idTag", &["idtag"]);
    if let Err(e) = id_tag {
        if !s.lenient() {
            return Err(e);
        }
    }
    to_payload(&AuthorizeResponse {
        id_tag_info: accepted_id_tag_info(),
    })
}

/// §4.4 / §4.5: acknowledged; the status is only logged.
pub fn status_report(s: &mut Sanitizer, action: &str, payload: &Value) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let status = s.get(obj, "", "status", &[])?;
    let status = s.info_text(status, "status")?;
    tracing::debug!(action, status = ?status, "status report");
    if action == "DiagnosticsStatusNotification" {
        to_payload(&DiagnosticsStatusNotificationResponse {})
    } else {
        to_payload(&FirmwareStatusNotificationResponse {})
    }
}

/// §4.3: the vendor alarm convention is Accepted; nothing else is known (UnknownVendorId).
pub fn data_transfer(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let vendor = s.require(obj, "", "vendorId", &[]);
    let vendor = match vendor {
        Ok(v) => s.info_text(Some(v), "vendorId")?,
        Err(e) if !s.lenient() => return Err(e),
        Err(_) => None,
    };
    let message_id = s.get(obj, "", "messageId", &[])?;
    let message_id = s.info_text(message_id, "messageId")?;
    let data = s.get(obj, "", "data", &[])?;
    let status = match vendor_alarm(message_id.as_deref(), data) {
        Some(alarm) => {
            out.push(ChargerEvent::Alarm {
                charger: ctx.charger.clone(),
                connector: alarm.connector,
                name: alarm.name,
                active: alarm.active,
                timestamp: None,
            });
            DataTransferStatus::Accepted
        }
        None => {
            tracing::debug!(vendor = ?vendor, message_id = ?message_id, "DataTransfer from unknown vendor");
            DataTransferStatus::UnknownVendorId
        }
    };
    to_payload(&DataTransferResponse { status, data: None })
}

/// Maps a 1.6 ChargePointStatus onto the model.
pub fn connector_status(name: &str) -> Option<ConnectorStatus> {
    Some(match name {
        "Available" => ConnectorStatus::Available,
        "Preparing" => ConnectorStatus::Preparing,
        "Charging" => ConnectorStatus::Charging,
        "SuspendedEVSE" => ConnectorStatus::SuspendedEvse,
        "SuspendedEV" => ConnectorStatus::SuspendedEv,
        "Finishing" => ConnectorStatus::Finishing,
        "Reserved" => ConnectorStatus::Reserved,
        "Unavailable" => ConnectorStatus::Unavailable,
        "Faulted" => ConnectorStatus::Faulted,
        _ => return None,
    })
}

/// Whether an errorCode is an alarm (CONTRACT §7: other than NoError/OtherError).
pub fn is_alarm_code(code: &str) -> bool {
    code != "NoError" && code != "OtherError"
}

impl V16Dialect {
    /// §4.9: a Status event; errorCode alarms raised and cleared per connector.
    pub(crate) fn status_notification(
        &mut self,
        s: &mut Sanitizer,
        ctx: &mut CallContext<'_>,
        payload: &Value,
        out: &mut Vec<ChargerEvent>,
    ) -> Result<Value, CallError> {
        let obj = s.root(payload)?;
        let connector = s.require(obj, "", "connectorId", &[])?;
        let connector = s.connector(connector, "connectorId")?;

        let status_value = s.require(obj, "", "status", &[])?;
        let status = match s.enumeration(status_value, "status", CHARGE_POINT_STATUS) {
            Ok(name) => connector_status(name),
            // OCPP 1.5 reported a plugged-in connector as "Occupied".
            Err(_)
                if s.lenient()
                    && status_value
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("Occupied")) =>
            {
                s.coerce(
                    "status",
                    Coercion::new(
                        CoercionKind::LegacyFieldName,
                        "OCPP 1.5 status \"Occupied\"",
                    ),
                )?;
                Some(ConnectorStatus::Occupied)
            }
            Err(e) => return Err(e),
        }
        .ok_or_else(|| error(ErrorCode::PropertyConstraintViolation, "status", "unknown"))?;

        let error_code = match s.get(obj, "", "errorCode", &[])? {
            None if s.lenient() => "NoError".to_string(),
            None => {
                return Err(error(
                    ErrorCode::OccurrenceConstraintViolation,
                    "errorCode",
                    "required field missing",
                ))
            }
            Some(v) => self.error_code(s, v)?,
        };
        let timestamp = s.get(obj, "", "timestamp", &[])?;
        let timestamp = s.timestamp(timestamp, "timestamp")?;

        out.push(ChargerEvent::Status {
            charger: ctx.charger.clone(),
            connector,
            status,
            error_code: (error_code != "NoError").then(|| error_code.clone()),
            timestamp,
        });

        let alarm = |name: String, active: bool| ChargerEvent::Alarm {
            charger: ctx.charger.clone(),
            connector: Some(connector),
            name,
            active,
            timestamp,
        };
        if is_alarm_code(&error_code) {
            if let Some(previous) = self.alarms.insert(connector, error_code.clone()) {
                if previous != error_code {
                    out.push(alarm(previous, false));
                }
            }
            out.push(alarm(error_code, true));
        } else if let Some(previous) = self.alarms.remove(&connector) {
            out.push(alarm(previous, false));
        }
        to_payload(&StatusNotificationResponse {})
    }

    /// Reads an errorCode: case fixed, 1.5's Mode3Error renamed, unknown codes kept by name.
    fn error_code(&mut self, s: &mut Sanitizer, v: &Value) -> Result<String, CallError> {
        let text = s.text(v, "errorCode")?;
        match match_enum(text, CHARGE_POINT_ERROR_CODES) {
            Some((code, true)) => Ok(code.to_string()),
            Some((code, false)) => {
                s.coerce(
                    "errorCode",
                    Coercion::new(
                        CoercionKind::EnumCase,
                        format!("errorCode \"{}\" taken as \"{code}\"", clip(text, 40)),
                    ),
                )?;
                Ok(code.to_string())
            }
            None if text.eq_ignore_ascii_case("Mode3Error") => {
                s.coerce(
                    "errorCode",
                    Coercion::new(
                        CoercionKind::LegacyFieldName,
                        "OCPP 1.5 errorCode \"Mode3Error\" taken as \"EVCommunicationError\"",
                    ),
                )?;
                Ok("EVCommunicationError".to_string())
            }
            None if !text.trim().is_empty() => {
                s.coerce(
                    "errorCode",
                    Coercion::new(
                        CoercionKind::UnparseableValue,
                        format!("unknown errorCode \"{}\" kept by name", clip(text, 40)),
                    ),
                )?;
                Ok(clip(text.trim(), 50))
            }
            None => Err(error(
                ErrorCode::PropertyConstraintViolation,
                "errorCode",
                "empty errorCode",
            )),
        }
    }
}
