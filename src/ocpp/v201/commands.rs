//! OCPP 2.0.1 CSMS → charging station commands as CONTRACT §3/§7 use them: SetChargingProfile
//! (K01), ClearChargingProfile (K10), GetCompositeSchedule (K08), ChangeAvailability (G03),
//! Reset (B11), TriggerMessage (F06), RequestStart/StopTransaction (F01/F03), GetVariables
//! (B06), SetVariables (B05), UnlockConnector (F05), DataTransfer (P02).
//!
//! A limit is a ChargingStationMaxProfile on EVSE 0, kind Absolute, one schedule (id 1) with one
//! period at startPeriod 0. `startSchedule` is set one minute in the past: K01.FR.40 has
//! stations reject Absolute profiles without it.
//!
//! Settings are named "Component.Variable" (split at the first dot). A few OCPP 1.6
//! configuration keys without a dot are translated to their 2.0.1 device model variables
//! ([`LEGACY_KEYS`]); any other dot-less key is looked for on the ChargingStation component.
//! GetVariables needs at least one variable, so an empty key list asks for those of
//! [`LEGACY_KEYS`].

use std::sync::atomic::{AtomicI32, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::mapping::charger::{ChargerCommand, CommandResult, LimitUnit};
use crate::ocpp::sanitize::parse_number;
use crate::ocpp::v16::commands::{
    by_status, elapsed_since, limit_value, periods_of, rate_unit, schedule_start, status_of,
    versioned_trigger,
};
use crate::ocpp::v16::common::limit_in_force;

/// 2.0.1 MessageTriggerEnumType values.
const MESSAGE_TRIGGERS: &[&str] = &[
    "BootNotification",
    "LogStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "SignChargingStationCertificate",
    "SignV2GCertificate",
    "StatusNotification",
    "TransactionEvent",
    "SignCombinedCertificate",
    "PublishFirmwareStatusNotification",
];

/// OCPP 1.6 configuration keys and the 2.0.1 component and variable that hold them.
pub const LEGACY_KEYS: &[(&str, &str, &str)] = &[
    ("HeartbeatInterval", "OCPPCommCtrlr", "HeartbeatInterval"),
    (
        "WebSocketPingInterval",
        "OCPPCommCtrlr",
        "WebSocketPingInterval",
    ),
    (
        "MeterValueSampleInterval",
        "SampledDataCtrlr",
        "TxUpdatedInterval",
    ),
    (
        "MeterValuesSampledData",
        "SampledDataCtrlr",
        "TxUpdatedMeasurands",
    ),
    ("ClockAlignedDataInterval", "AlignedDataCtrlr", "Interval"),
    ("ConnectionTimeOut", "TxCtrlr", "EVConnectionTimeOut"),
];

/// remoteStartId of RequestStartTransaction: unique per process run.
static REMOTE_START_ID: AtomicI32 = AtomicI32::new(1);

/// Splits a setting key into component and variable names.
pub fn split_key(key: &str) -> (String, String) {
    if let Some((component, variable)) = key.split_once('.') {
        return (component.to_string(), variable.to_string());
    }
    match LEGACY_KEYS
        .iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
    {
        Some((_, component, variable)) => (component.to_string(), variable.to_string()),
        None => ("ChargingStation".to_string(), key.to_string()),
    }
}

fn component_variable(key: &str) -> (Value, Value) {
    let (component, variable) = split_key(key);
    (json!({ "name": component }), json!({ "name": variable }))
}

/// The keys a GetSettings asks for (the default set when empty).
fn requested_keys(keys: &[String]) -> Vec<String> {
    if keys.is_empty() {
        LEGACY_KEYS
            .iter()
            .map(|(_, c, v)| format!("{c}.{v}"))
            .collect()
    } else {
        keys.to_vec()
    }
}

/// Maps a trigger name onto 2.0.1 (case fixed; 1.6's DiagnosticsStatusNotification is
/// LogStatusNotification). Unknown names are sent as they are and refused by the station.
pub fn trigger_name(message: &str) -> String {
    versioned_trigger(
        message,
        MESSAGE_TRIGGERS,
        ("DiagnosticsStatusNotification", "LogStatusNotification"),
    )
}

/// The CALL for a command: action and payload.
pub fn encode(command: &ChargerCommand) -> (&'static str, Value) {
    encode_at(command, Utc::now())
}

/// [`encode`] with an explicit clock (startSchedule of limit profiles).
pub fn encode_at(command: &ChargerCommand, now: DateTime<Utc>) -> (&'static str, Value) {
    match command {
        ChargerCommand::SetLimit {
            limit,
            unit,
            profile_id,
            stack_level,
        } => (
            "SetChargingProfile",
            json!({
                "evseId": 0,
                "chargingProfile": {
                    "id": profile_id,
                    "stackLevel": stack_level,
                    "chargingProfilePurpose": "ChargingStationMaxProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": [{
                        "id": 1,
                        "startSchedule": schedule_start(now),
                        "chargingRateUnit": rate_unit(*unit),
                        "chargingSchedulePeriod": [
                            {"startPeriod": 0, "limit": limit_value(*limit)}
                        ]
                    }]
                }
            }),
        ),
        ChargerCommand::ClearLimit { profile_id } => (
            "ClearChargingProfile",
            json!({ "chargingProfileId": profile_id }),
        ),
        ChargerCommand::GetCompositeSchedule {
            connector,
            duration_s,
            unit,
        } => (
            "GetCompositeSchedule",
            json!({
                "duration": duration_s,
                "chargingRateUnit": rate_unit(*unit),
                "evseId": connector,
            }),
        ),
        ChargerCommand::ChangeAvailability { operative } => (
            "ChangeAvailability",
            json!({
                "operationalStatus": if *operative { "Operative" } else { "Inoperative" },
            }),
        ),
        ChargerCommand::Reset { hard } => (
            "Reset",
            json!({ "type": if *hard { "Immediate" } else { "OnIdle" } }),
        ),
        ChargerCommand::TriggerMessage { message, connector } => {
            let mut p = Map::new();
            p.insert("requestedMessage".into(), json!(trigger_name(message)));
            if let Some(c) = connector.filter(|c| *c > 0) {
                p.insert("evse".into(), json!({ "id": c }));
            }
            ("TriggerMessage", Value::Object(p))
        }
        ChargerCommand::RemoteStart { connector, id_tag } => {
            let mut p = Map::new();
            if let Some(c) = connector.filter(|c| *c > 0) {
                p.insert("evseId".into(), json!(c));
            }
            p.insert(
                "remoteStartId".into(),
                json!(REMOTE_START_ID.fetch_add(1, Ordering::Relaxed)),
            );
            p.insert(
                "idToken".into(),
                json!({ "idToken": id_tag, "type": "Central" }),
            );
            ("RequestStartTransaction", Value::Object(p))
        }
        ChargerCommand::RemoteStop { transaction_id } => (
            "RequestStopTransaction",
            json!({ "transactionId": transaction_id }),
        ),
        ChargerCommand::GetSettings { keys } => {
            let data: Vec<Value> = requested_keys(keys)
                .iter()
                .map(|k| {
                    let (component, variable) = component_variable(k);
                    json!({ "component": component, "variable": variable })
                })
                .collect();
            ("GetVariables", json!({ "getVariableData": data }))
        }
        ChargerCommand::SetSetting { key, value } => {
            let (component, variable) = component_variable(key);
            (
                "SetVariables",
                json!({
                    "setVariableData": [{
                        "attributeValue": value,
                        "component": component,
                        "variable": variable,
                    }]
                }),
            )
        }
        ChargerCommand::UnlockConnector { connector } => (
            "UnlockConnector",
            json!({ "evseId": connector, "connectorId": 1 }),
        ),
        ChargerCommand::DataTransfer {
            vendor_id,
            message_id,
            data,
        } => {
            let mut p = Map::new();
            p.insert("vendorId".into(), json!(vendor_id));
            if let Some(m) = message_id {
                p.insert("messageId".into(), json!(m));
            }
            if let Some(d) = data {
                p.insert("data".into(), json!(d));
            }
            ("DataTransfer", Value::Object(p))
        }
    }
}

fn unit_of(v: Option<&Value>, requested: LimitUnit) -> LimitUnit {
    match v.and_then(Value::as_str) {
        Some(u) if u.eq_ignore_ascii_case("A") => LimitUnit::Amperes,
        Some(u) if u.eq_ignore_ascii_case("W") => LimitUnit::Watts,
        _ => requested,
    }
}

/// The name of a `component` / `variable` object in a result.
fn name_of(v: &Value, field: &str) -> Option<String> {
    v.get(field)?.get("name")?.as_str().map(str::to_string)
}

/// Interprets the station's CALLRESULT for `command`; `now` places the composite schedule's
/// period in force.
pub fn decode(command: &ChargerCommand, payload: &Value, now: DateTime<Utc>) -> CommandResult {
    if !payload.is_object() {
        return CommandResult::Rejected("malformed answer".to_string());
    }
    match command {
        ChargerCommand::SetLimit { .. }
        | ChargerCommand::TriggerMessage { .. }
        | ChargerCommand::RemoteStart { .. }
        | ChargerCommand::RemoteStop { .. } => by_status(payload, &["Accepted"]),
        // Unknown = "no profile matched": nothing to clear, positive as in 1.6 (CONTRACT §7).
        ChargerCommand::ClearLimit { .. } => by_status(payload, &["Accepted", "Unknown"]),
        ChargerCommand::ChangeAvailability { .. } | ChargerCommand::Reset { .. } => {
            by_status(payload, &["Accepted", "Scheduled"])
        }
        ChargerCommand::UnlockConnector { .. } => by_status(payload, &["Unlocked"]),
        ChargerCommand::GetCompositeSchedule { unit, .. } => {
            match by_status(payload, &["Accepted"]) {
                CommandResult::Accepted => {}
                other => return other,
            }
            let Some(schedule) = payload.get("schedule") else {
                return CommandResult::Schedule {
                    limit: None,
                    unit: *unit,
                };
            };
            let duration = schedule
                .get("duration")
                .and_then(|d| parse_number(d, false).ok())
                .map(|d| d.number as i64);
            CommandResult::Schedule {
                limit: limit_in_force(
                    &periods_of(schedule.get("chargingSchedulePeriod")),
                    elapsed_since(schedule.get("scheduleStart"), now),
                    duration,
                ),
                unit: unit_of(schedule.get("chargingRateUnit"), *unit),
            }
        }
        ChargerCommand::GetSettings { keys } => {
            let results: Vec<&Value> = match payload.get("getVariableResult") {
                Some(Value::Array(items)) => items.iter().collect(),
                _ => Vec::new(),
            };
            let settings = requested_keys(keys)
                .into_iter()
                .map(|key| {
                    let (component, variable) = split_key(&key);
                    let value = results
                        .iter()
                        .find(|r| {
                            name_of(r, "component").as_deref() == Some(component.as_str())
                                && name_of(r, "variable").as_deref() == Some(variable.as_str())
                        })
                        .filter(|r| {
                            r.get("attributeStatus").and_then(Value::as_str) == Some("Accepted")
                        })
                        .and_then(|r| r.get("attributeValue"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    (key, value)
                })
                .collect();
            CommandResult::Settings(settings)
        }
        ChargerCommand::SetSetting { .. } => {
            let status = payload
                .get("setVariableResult")
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("attributeStatus"))
                .and_then(Value::as_str);
            match status {
                Some(s) if s.eq_ignore_ascii_case("Accepted") => CommandResult::Accepted,
                Some(s) if s.eq_ignore_ascii_case("RebootRequired") => CommandResult::Accepted,
                Some(s) => CommandResult::Rejected(s.to_string()),
                None => CommandResult::Rejected("answer without attributeStatus".to_string()),
            }
        }
        ChargerCommand::DataTransfer { .. } => CommandResult::Data {
            status: status_of(payload).unwrap_or("").to_string(),
            data: match payload.get("data") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn a_current_limit_is_a_station_max_profile_in_amperes() {
        let (action, payload) = encode_at(
            &ChargerCommand::SetLimit {
                limit: 16.0,
                unit: LimitUnit::Amperes,
                profile_id: 809,
                stack_level: 0,
            },
            noon(),
        );
        assert_eq!(action, "SetChargingProfile");
        assert_eq!(
            payload,
            json!({
                "evseId": 0,
                "chargingProfile": {
                    "id": 809,
                    "stackLevel": 0,
                    "chargingProfilePurpose": "ChargingStationMaxProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": [{
                        "id": 1,
                        "startSchedule": "2024-01-01T11:59:00Z",
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]
                    }]
                }
            })
        );
    }

    #[test]
    fn keys_split_into_component_and_variable() {
        assert_eq!(
            split_key("OCPPCommCtrlr.HeartbeatInterval"),
            ("OCPPCommCtrlr".into(), "HeartbeatInterval".into())
        );
        assert_eq!(
            split_key("heartbeatinterval"),
            ("OCPPCommCtrlr".into(), "HeartbeatInterval".into())
        );
        assert_eq!(split_key("Foo"), ("ChargingStation".into(), "Foo".into()));
        assert_eq!(split_key("A.B.C"), ("A".into(), "B.C".into()));
    }

    #[test]
    fn settings_come_back_under_the_requested_keys() {
        let cmd = ChargerCommand::GetSettings {
            keys: vec!["HeartbeatInterval".into(), "X.Y".into()],
        };
        let answer = json!({"getVariableResult": [
            {"attributeStatus": "Accepted", "attributeValue": "300",
             "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {"attributeStatus": "UnknownComponent",
             "component": {"name": "X"}, "variable": {"name": "Y"}}
        ]});
        assert_eq!(
            decode(&cmd, &answer, noon()),
            CommandResult::Settings(vec![
                ("HeartbeatInterval".into(), Some("300".into())),
                ("X.Y".into(), None)
            ])
        );
    }

    #[test]
    fn the_composite_schedule_gives_the_period_in_force() {
        let cmd = ChargerCommand::GetCompositeSchedule {
            connector: 0,
            duration_s: 3600,
            unit: LimitUnit::Watts,
        };
        let answer = json!({"status": "Accepted", "schedule": {
            "evseId": 0, "duration": 3600, "scheduleStart": "2024-01-01T11:50:00Z",
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 22000.0},
                                       {"startPeriod": 300, "limit": 11000.0}]
        }});
        assert_eq!(
            decode(&cmd, &answer, noon()),
            CommandResult::Schedule {
                limit: Some(11000.0),
                unit: LimitUnit::Watts
            }
        );
        assert_eq!(
            decode(&cmd, &json!({"status": "Rejected"}), noon()),
            CommandResult::Rejected("Rejected".into())
        );
    }
}
