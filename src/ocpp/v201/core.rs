//! OCPP 2.0.1 messages without transactions: BootNotification (B01), Heartbeat (B04),
//! StatusNotification (G01), Authorize (C01), NotifyEvent (N07), NotifyReport (B07),
//! SecurityEventNotification (A04), FirmwareStatusNotification (L01), LogStatusNotification
//! (N01), DataTransfer (P01).
//!
//! Alarms (CONTRACT §7): a NotifyEvent item whose variable is Problem, Overload, OverCurrent,
//! Tripped or Fault raises an alarm on its component's EVSE with actualValue "true" and clears
//! it with "false" or `cleared: true`. The DataTransfer vendor alarm convention of 1.6 applies
//! too.

use rust_ocpp::v2_0_1::datatypes::id_token_info_type::IdTokenInfoType;
use rust_ocpp::v2_0_1::enumerations::authorization_status_enum_type::AuthorizationStatusEnumType;
use rust_ocpp::v2_0_1::enumerations::data_transfer_status_enum_type::DataTransferStatusEnumType;
use rust_ocpp::v2_0_1::enumerations::registration_status_enum_type::RegistrationStatusEnumType;
use rust_ocpp::v2_0_1::messages::authorize::AuthorizeResponse;
use rust_ocpp::v2_0_1::messages::boot_notification::BootNotificationResponse;
use rust_ocpp::v2_0_1::messages::datatransfer::DataTransferResponse;
use rust_ocpp::v2_0_1::messages::firmware_status_notification::FirmwareStatusNotificationResponse;
use rust_ocpp::v2_0_1::messages::heartbeat::HeartbeatResponse;
use rust_ocpp::v2_0_1::messages::log_status_notification::LogStatusNotificationResponse;
use rust_ocpp::v2_0_1::messages::notify_event::NotifyEventResponse;
use rust_ocpp::v2_0_1::messages::notify_report::NotifyReportResponse;
use rust_ocpp::v2_0_1::messages::security_event_notification::SecurityEventNotificationResponse;
use rust_ocpp::v2_0_1::messages::status_notification::StatusNotificationResponse;
use serde_json::Value;

use super::schema::CONNECTOR_STATUS;
use crate::mapping::charger::{ChargerEvent, CoercionKind, ConnectorStatus};
use crate::ocpp::sanitize::reader::{error, join};
use crate::ocpp::sanitize::{match_enum, Coercion, Sanitizer};
use crate::ocpp::v16::common::{response_time, to_payload, vendor_alarm};
use crate::ocpp::v16::core::connector_status as connector_status_16;
use crate::ocpp::v16::schema::CHARGE_POINT_STATUS;
use crate::ocpp::{CallContext, CallError, ErrorCode};

/// NotifyEvent variables that are alarms (CONTRACT §7).
pub const ALARM_VARIABLES: &[&str] = &["Problem", "Overload", "OverCurrent", "Tripped", "Fault"];

/// The accepted idTokenInfo (local authorisation lists come later).
pub fn accepted_id_token_info() -> IdTokenInfoType {
    IdTokenInfoType {
        status: AuthorizationStatusEnumType::Accepted,
        cache_expiry_date_time: None,
        charging_priority: None,
        language1: None,
        evse_id: None,
        language2: None,
        group_id_token: None,
        personal_message: None,
    }
}

/// B01: every station is accepted; the interval is `ocpp.heartbeat_interval_s`. Lenient mode
/// also reads 1.6 field names (`chargePointVendor`, …) at the top level.
pub fn boot_notification(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let (vendor, model, serial, firmware) = match s.get(obj, "", "chargingStation", &[])? {
        Some(station) => {
            let st = s.object(station, "chargingStation")?;
            let p = "chargingStation";
            let vendor = s.get(st, p, "vendorName", &[])?;
            let vendor = s.info_text(vendor, &join(p, "vendorName"))?;
            let model = s.get(st, p, "model", &[])?;
            let model = s.info_text(model, &join(p, "model"))?;
            let serial = s.get(st, p, "serialNumber", &[])?;
            let serial = s.info_text(serial, &join(p, "serialNumber"))?;
            let firmware = s.get(st, p, "firmwareVersion", &[])?;
            let firmware = s.info_text(firmware, &join(p, "firmwareVersion"))?;
            (vendor, model, serial, firmware)
        }
        None if s.lenient() && obj.contains_key("chargePointVendor") => {
            s.coerce(
                "",
                Coercion::new(
                    CoercionKind::LegacyFieldName,
                    "OCPP 1.6 BootNotification fields on a 2.0.1 connection",
                ),
            )?;
            let vendor = s.info_text(obj.get("chargePointVendor"), "chargePointVendor")?;
            let model = s.info_text(obj.get("chargePointModel"), "chargePointModel")?;
            let serial = s.info_text(
                obj.get("chargePointSerialNumber"),
                "chargePointSerialNumber",
            )?;
            let firmware = s.info_text(obj.get("firmwareVersion"), "firmwareVersion")?;
            (vendor, model, serial, firmware)
        }
        None => {
            return Err(error(
                ErrorCode::OccurrenceConstraintViolation,
                "chargingStation",
                "required field missing",
            ))
        }
    };
    out.push(ChargerEvent::Booted {
        charger: ctx.charger.clone(),
        vendor: vendor.unwrap_or_default(),
        model: model.unwrap_or_default(),
        serial,
        firmware,
    });
    to_payload(&BootNotificationResponse {
        current_time: response_time(ctx.now),
        interval: u16::try_from(ctx.heartbeat_interval_s).unwrap_or(u16::MAX),
        status: RegistrationStatusEnumType::Accepted,
        status_info: None,
    })
}

/// B04.
pub fn heartbeat(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
) -> Result<Value, CallError> {
    if !payload.is_object() && !s.lenient() {
        s.root(payload)?;
    }
    to_payload(&HeartbeatResponse {
        current_time: response_time(ctx.now),
    })
}

/// C01: every idToken is accepted.
pub fn authorize(s: &mut Sanitizer, payload: &Value) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    if let Err(e) = s.require(obj, "", "idToken", &[]) {
        if !s.lenient() {
            return Err(e);
        }
    }
    to_payload(&AuthorizeResponse {
        certificate_status: None,
        id_token_info: accepted_id_token_info(),
    })
}

/// Maps a 2.0.1 ConnectorStatusEnumType onto the model.
pub fn connector_status(name: &str) -> Option<ConnectorStatus> {
    Some(match name {
        "Available" => ConnectorStatus::Available,
        "Occupied" => ConnectorStatus::Occupied,
        "Reserved" => ConnectorStatus::Reserved,
        "Unavailable" => ConnectorStatus::Unavailable,
        "Faulted" => ConnectorStatus::Faulted,
        _ => return None,
    })
}

/// G01: a Status event for the EVSE (the model's connector). Lenient mode reads a 1.6-style
/// `status` field and 1.6 status values.
pub fn status_notification(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let evse = s.require(obj, "", "evseId", &[])?;
    let evse = s.connector(evse, "evseId")?;
    let value = s.require(obj, "", "connectorStatus", &["status"])?;
    let status = match s.enumeration(value, "connectorStatus", CONNECTOR_STATUS) {
        Ok(name) => connector_status(name),
        Err(e) if s.lenient() => {
            let legacy = value
                .as_str()
                .and_then(|t| match_enum(t, CHARGE_POINT_STATUS))
                .and_then(|(name, _)| connector_status_16(name));
            match legacy {
                Some(status) => {
                    s.coerce(
                        "connectorStatus",
                        Coercion::new(
                            CoercionKind::LegacyFieldName,
                            format!("OCPP 1.6 status {value} on a 2.0.1 connection"),
                        ),
                    )?;
                    Some(status)
                }
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    }
    .ok_or_else(|| {
        error(
            ErrorCode::PropertyConstraintViolation,
            "connectorStatus",
            "unknown",
        )
    })?;
    let timestamp = s.get(obj, "", "timestamp", &[])?;
    let timestamp = s.timestamp(timestamp, "timestamp")?;
    out.push(ChargerEvent::Status {
        charger: ctx.charger.clone(),
        connector: evse,
        status,
        error_code: None,
        timestamp,
    });
    to_payload(&StatusNotificationResponse {})
}

/// N07: alarm variables raise and clear alarms; everything else is only acknowledged.
pub fn notify_event(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    let data = s.require(obj, "", "eventData", &[])?;
    for (i, item) in s.list(data, "eventData")?.into_iter().enumerate() {
        let path = format!("eventData[{i}]");
        let read = alarm_of(s, ctx, &path, item);
        if let Some(Some(event)) = s.soft(read, &path)? {
            out.push(event);
        }
    }
    to_payload(&NotifyEventResponse {})
}

/// The alarm event of one NotifyEvent item, if it is one.
fn alarm_of(
    s: &mut Sanitizer,
    ctx: &CallContext<'_>,
    path: &str,
    item: &Value,
) -> Result<Option<ChargerEvent>, CallError> {
    let obj = s.object(item, path)?;
    let variable = s.require(obj, path, "variable", &[])?;
    let variable_path = join(path, "variable");
    let variable = s.object(variable, &variable_path)?;
    let name = s.require(variable, &variable_path, "name", &[])?;
    let name = s.text(name, &join(&variable_path, "name"))?;
    let Some((name, _)) = match_enum(name, ALARM_VARIABLES) else {
        return Ok(None);
    };
    let cleared = match s.get(obj, path, "cleared", &[])? {
        Some(v) => s.boolean(v, &join(path, "cleared"))?,
        None => false,
    };
    let actual = match s.get(obj, path, "actualValue", &[])? {
        Some(v) => Some(s.text(v, &join(path, "actualValue"))?.trim()),
        None => None,
    };
    let active = if cleared {
        false
    } else {
        match actual {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            _ => return Ok(None),
        }
    };
    let connector = match s.get(obj, path, "component", &[])? {
        None => None,
        Some(component) => {
            let component_path = join(path, "component");
            let component = s.object(component, &component_path)?;
            match s.get(component, &component_path, "evse", &[])? {
                None => None,
                Some(evse) => {
                    let evse_path = join(&component_path, "evse");
                    let evse = s.object(evse, &evse_path)?;
                    let id = s.require(evse, &evse_path, "id", &[])?;
                    Some(s.connector(id, &join(&evse_path, "id"))?)
                }
            }
        }
    };
    let timestamp = s.get(obj, path, "timestamp", &[])?;
    let timestamp = s.timestamp(timestamp, &join(path, "timestamp"))?;
    Ok(Some(ChargerEvent::Alarm {
        charger: ctx.charger.clone(),
        connector,
        name: name.to_string(),
        active,
        timestamp,
    }))
}

/// B07, A04, L01, N01: acknowledged (the content is only logged).
pub fn acknowledge(s: &mut Sanitizer, action: &str, payload: &Value) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    match action {
        "SecurityEventNotification" => {
            let kind = s.get(obj, "", "type", &[])?;
            let kind = s.info_text(kind, "type")?;
            tracing::info!(kind = ?kind, "security event");
            to_payload(&SecurityEventNotificationResponse {})
        }
        "NotifyReport" => to_payload(&NotifyReportResponse {}),
        "LogStatusNotification" => to_payload(&LogStatusNotificationResponse {}),
        _ => to_payload(&FirmwareStatusNotificationResponse {}),
    }
}

/// P01: the vendor alarm convention is Accepted; nothing else is known (UnknownVendorId).
pub fn data_transfer(
    s: &mut Sanitizer,
    ctx: &mut CallContext<'_>,
    payload: &Value,
    out: &mut Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let obj = s.root(payload)?;
    if let Err(e) = s.require(obj, "", "vendorId", &[]) {
        if !s.lenient() {
            return Err(e);
        }
    }
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
            DataTransferStatusEnumType::Accepted
        }
        None => DataTransferStatusEnumType::UnknownVendorId,
    };
    to_payload(&DataTransferResponse {
        status,
        data: None,
        status_info: None,
    })
}
