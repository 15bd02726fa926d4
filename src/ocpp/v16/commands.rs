//! OCPP 1.6 central system → charge point commands (§5.3 ChangeAvailability, §5.4
//! ChangeConfiguration, §5.5 ClearChargingProfile, §5.6 DataTransfer, §5.7
//! GetCompositeSchedule, §5.8 GetConfiguration, §5.11 RemoteStartTransaction, §5.12
//! RemoteStopTransaction, §5.14 Reset, §5.16 SetChargingProfile, §5.17 TriggerMessage, §5.18
//! UnlockConnector), as CONTRACT §3/§7 use them.
//!
//! Payloads are built as JSON (tests validate each against the official schemas). A power or
//! current limit is a ChargePointMaxProfile on connector 0, kind Absolute, one period at
//! startPeriod 0, limit rounded to 0.1 (the schema's multipleOf). The schedule carries a
//! `startSchedule` one minute in the past: OCPP requires one for Absolute profiles and
//! conforming charge points reject a profile without it; the minute absorbs clock skew.
//!
//! Results are read leniently (status in any case); CONTRACT §7 positives: ChangeAvailability
//! Accepted/Scheduled, ClearChargingProfile Accepted/Unknown, ChangeConfiguration
//! Accepted/RebootRequired.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::common::limit_in_force;
use crate::mapping::charger::{ChargerCommand, CommandResult, LimitUnit};
use crate::ocpp::sanitize::{match_enum, parse_number, parse_timestamp};

/// 1.6 MessageTrigger values.
const MESSAGE_TRIGGERS: &[&str] = &[
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
];

/// The wire name of a limit unit.
pub fn rate_unit(unit: LimitUnit) -> &'static str {
    match unit {
        LimitUnit::Watts => "W",
        LimitUnit::Amperes => "A",
    }
}

/// A limit rounded to the schema's 0.1 step. A non-finite limit becomes `null`, which a charge
/// point refuses — never a 0 W limit by accident.
pub fn limit_value(limit: f64) -> Value {
    let rounded = (limit * 10.0).round() / 10.0;
    if rounded.is_finite() {
        json!(rounded)
    } else {
        Value::Null
    }
}

/// The startSchedule of a new Absolute limit profile.
pub fn schedule_start(now: DateTime<Utc>) -> String {
    (now - Duration::seconds(60)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Maps a trigger name onto 1.6 (case fixed; 2.0.1's LogStatusNotification is 1.6's
/// DiagnosticsStatusNotification). Unknown names are sent as they are: the charge point
/// answers with a CALLERROR, which reaches the engine as a failed command.
pub fn trigger_name(message: &str) -> String {
    versioned_trigger(
        message,
        MESSAGE_TRIGGERS,
        ("LogStatusNotification", "DiagnosticsStatusNotification"),
    )
}

/// A TriggerMessage name in one version's spelling: `renamed` maps the other version's
/// name of the same message; other names are case-fixed against `triggers` or kept.
pub fn versioned_trigger(
    message: &str,
    triggers: &[&'static str],
    renamed: (&str, &str),
) -> String {
    if message.eq_ignore_ascii_case(renamed.0) {
        return renamed.1.to_string();
    }
    match match_enum(message, triggers) {
        Some((name, _)) => name.to_string(),
        None => message.to_string(),
    }
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
                "connectorId": 0,
                "csChargingProfiles": {
                    "chargingProfileId": profile_id,
                    "stackLevel": stack_level,
                    "chargingProfilePurpose": "ChargePointMaxProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": {
                        "startSchedule": schedule_start(now),
                        "chargingRateUnit": rate_unit(*unit),
                        "chargingSchedulePeriod": [
                            {"startPeriod": 0, "limit": limit_value(*limit)}
                        ]
                    }
                }
            }),
        ),
        ChargerCommand::ClearLimit { profile_id } => {
            ("ClearChargingProfile", json!({ "id": profile_id }))
        }
        ChargerCommand::GetCompositeSchedule {
            connector,
            duration_s,
            unit,
        } => (
            "GetCompositeSchedule",
            json!({
                "connectorId": connector,
                "duration": duration_s,
                "chargingRateUnit": rate_unit(*unit),
            }),
        ),
        ChargerCommand::ChangeAvailability { operative } => (
            "ChangeAvailability",
            json!({
                "connectorId": 0,
                "type": if *operative { "Operative" } else { "Inoperative" },
            }),
        ),
        ChargerCommand::Reset { hard } => (
            "Reset",
            json!({ "type": if *hard { "Hard" } else { "Soft" } }),
        ),
        ChargerCommand::TriggerMessage { message, connector } => {
            let mut p = Map::new();
            p.insert("requestedMessage".into(), json!(trigger_name(message)));
            if let Some(c) = connector {
                p.insert("connectorId".into(), json!(c));
            }
            ("TriggerMessage", Value::Object(p))
        }
        ChargerCommand::RemoteStart { connector, id_tag } => {
            let mut p = Map::new();
            // connectorId 0 is not a connector for a transaction: let the charger choose.
            if let Some(c) = connector.filter(|c| *c > 0) {
                p.insert("connectorId".into(), json!(c));
            }
            p.insert("idTag".into(), json!(id_tag));
            ("RemoteStartTransaction", Value::Object(p))
        }
        ChargerCommand::RemoteStop { transaction_id } => (
            "RemoteStopTransaction",
            // 1.6 transaction ids are integers; an id that is not one cannot be running on a
            // 1.6 charger, and -1 makes the charger answer Rejected.
            json!({ "transactionId": transaction_id.trim().parse::<i32>().unwrap_or(-1) }),
        ),
        ChargerCommand::GetSettings { keys } => {
            let mut p = Map::new();
            if !keys.is_empty() {
                p.insert("key".into(), json!(keys));
            }
            ("GetConfiguration", Value::Object(p))
        }
        ChargerCommand::SetSetting { key, value } => {
            ("ChangeConfiguration", json!({ "key": key, "value": value }))
        }
        ChargerCommand::UnlockConnector { connector } => {
            ("UnlockConnector", json!({ "connectorId": connector }))
        }
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

/// The `status` of a result, if it has one.
pub fn status_of(payload: &Value) -> Option<&str> {
    payload.get("status").and_then(Value::as_str)
}

/// Accepted when the status is one of `positive` (any case), else Rejected with the status.
pub fn by_status(payload: &Value, positive: &[&str]) -> CommandResult {
    match status_of(payload) {
        Some(s) if positive.iter().any(|p| p.eq_ignore_ascii_case(s)) => CommandResult::Accepted,
        Some(s) => CommandResult::Rejected(s.to_string()),
        None => CommandResult::Rejected("answer without status".to_string()),
    }
}

fn unit_of(v: Option<&Value>, requested: LimitUnit) -> LimitUnit {
    match v.and_then(Value::as_str) {
        Some(u) if u.eq_ignore_ascii_case("A") => LimitUnit::Amperes,
        Some(u) if u.eq_ignore_ascii_case("W") => LimitUnit::Watts,
        _ => requested,
    }
}

/// Reads schedule periods `[{startPeriod, limit}]`; unreadable periods are skipped.
pub fn periods_of(v: Option<&Value>) -> Vec<(i64, f64)> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|p| {
            let start = parse_number(p.get("startPeriod")?, false).ok()?;
            let limit = parse_number(p.get("limit")?, false).ok()?;
            if start.unit.is_some() || limit.unit.is_some() || start.number.fract() != 0.0 {
                return None;
            }
            Some((start.number as i64, limit.number))
        })
        .collect()
}

/// Seconds from `start` (if given and readable) to `now`.
pub fn elapsed_since(start: Option<&Value>, now: DateTime<Utc>) -> i64 {
    start
        .and_then(|v| parse_timestamp(v).ok())
        .map_or(0, |(t, _)| (now - t).num_seconds())
}

/// Interprets the charge point's CALLRESULT for `command`; `now` places the composite
/// schedule's period in force.
pub fn decode(command: &ChargerCommand, payload: &Value, now: DateTime<Utc>) -> CommandResult {
    if !payload.is_object() {
        return CommandResult::Rejected("malformed answer".to_string());
    }
    match command {
        ChargerCommand::SetLimit { .. }
        | ChargerCommand::Reset { .. }
        | ChargerCommand::TriggerMessage { .. }
        | ChargerCommand::RemoteStart { .. }
        | ChargerCommand::RemoteStop { .. } => by_status(payload, &["Accepted"]),
        ChargerCommand::ClearLimit { .. } => by_status(payload, &["Accepted", "Unknown"]),
        ChargerCommand::ChangeAvailability { .. } => by_status(payload, &["Accepted", "Scheduled"]),
        ChargerCommand::SetSetting { .. } => by_status(payload, &["Accepted", "RebootRequired"]),
        ChargerCommand::UnlockConnector { .. } => by_status(payload, &["Unlocked"]),
        ChargerCommand::GetCompositeSchedule { unit, .. } => {
            match by_status(payload, &["Accepted"]) {
                CommandResult::Accepted => {}
                other => return other,
            }
            let Some(schedule) = payload.get("chargingSchedule") else {
                return CommandResult::Schedule {
                    limit: None,
                    unit: *unit,
                };
            };
            let start = payload
                .get("scheduleStart")
                .or_else(|| schedule.get("startSchedule"));
            let duration = schedule
                .get("duration")
                .and_then(|d| parse_number(d, false).ok())
                .map(|d| d.number as i64);
            CommandResult::Schedule {
                limit: limit_in_force(
                    &periods_of(schedule.get("chargingSchedulePeriod")),
                    elapsed_since(start, now),
                    duration,
                ),
                unit: unit_of(schedule.get("chargingRateUnit"), *unit),
            }
        }
        ChargerCommand::GetSettings { keys } => {
            let mut known: Vec<(String, Option<String>)> = Vec::new();
            if let Some(Value::Array(items)) = payload.get("configurationKey") {
                for item in items {
                    if let Some(key) = item.get("key").and_then(Value::as_str) {
                        let value = item
                            .get("value")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        known.push((key.to_string(), value));
                    }
                }
            }
            if keys.is_empty() {
                return CommandResult::Settings(known);
            }
            CommandResult::Settings(
                keys.iter()
                    .map(|k| {
                        let value = known
                            .iter()
                            .find(|(key, _)| key == k)
                            .or_else(|| known.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)))
                            .and_then(|(_, v)| v.clone());
                        (k.clone(), value)
                    })
                    .collect(),
            )
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

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn a_power_limit_is_a_charge_point_max_profile() {
        let (action, payload) = encode_at(
            &ChargerCommand::SetLimit {
                limit: 14400.04,
                unit: LimitUnit::Watts,
                profile_id: 809,
                stack_level: 0,
            },
            at(12, 0, 0),
        );
        assert_eq!(action, "SetChargingProfile");
        assert_eq!(
            payload,
            json!({
                "connectorId": 0,
                "csChargingProfiles": {
                    "chargingProfileId": 809,
                    "stackLevel": 0,
                    "chargingProfilePurpose": "ChargePointMaxProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": {
                        "startSchedule": "2024-01-01T11:59:00Z",
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 14400.0}]
                    }
                }
            })
        );
        let (_, p) = encode_at(
            &ChargerCommand::SetLimit {
                limit: f64::NAN,
                unit: LimitUnit::Amperes,
                profile_id: 809,
                stack_level: 0,
            },
            at(12, 0, 0),
        );
        assert_eq!(
            p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
            Value::Null
        );
    }

    #[test]
    fn results_are_mapped_per_contract() {
        let clear = ChargerCommand::ClearLimit { profile_id: 809 };
        assert_eq!(
            decode(&clear, &json!({"status": "Unknown"}), at(0, 0, 0)),
            CommandResult::Accepted
        );
        let avail = ChargerCommand::ChangeAvailability { operative: false };
        assert_eq!(
            decode(&avail, &json!({"status": "Scheduled"}), at(0, 0, 0)),
            CommandResult::Accepted
        );
        assert_eq!(
            decode(&avail, &json!({"status": "Rejected"}), at(0, 0, 0)),
            CommandResult::Rejected("Rejected".into())
        );
        assert_eq!(
            decode(&avail, &json!({"status": "accepted"}), at(0, 0, 0)),
            CommandResult::Accepted
        );
        assert_eq!(
            decode(&avail, &json!([]), at(0, 0, 0)),
            CommandResult::Rejected("malformed answer".into())
        );
    }

    #[test]
    fn the_composite_schedule_gives_the_period_in_force() {
        let cmd = ChargerCommand::GetCompositeSchedule {
            connector: 0,
            duration_s: 3600,
            unit: LimitUnit::Watts,
        };
        let answer = json!({
            "status": "Accepted",
            "connectorId": 0,
            "scheduleStart": "2024-01-01T12:00:00Z",
            "chargingSchedule": {
                "duration": 3600,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 32.0},
                    {"startPeriod": 600, "limit": 16.0}
                ]
            }
        });
        assert_eq!(
            decode(&cmd, &answer, at(12, 5, 0)),
            CommandResult::Schedule {
                limit: Some(32.0),
                unit: LimitUnit::Amperes
            }
        );
        assert_eq!(
            decode(&cmd, &answer, at(12, 10, 0)),
            CommandResult::Schedule {
                limit: Some(16.0),
                unit: LimitUnit::Amperes
            }
        );
        assert_eq!(
            decode(&cmd, &json!({"status": "Rejected"}), at(12, 0, 0)),
            CommandResult::Rejected("Rejected".into())
        );
    }

    #[test]
    fn settings_follow_the_requested_keys() {
        let cmd = ChargerCommand::GetSettings {
            keys: vec!["HeartbeatInterval".into(), "Nope".into()],
        };
        let answer = json!({
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": false, "value": "300"}],
            "unknownKey": ["Nope"]
        });
        assert_eq!(
            decode(&cmd, &answer, at(0, 0, 0)),
            CommandResult::Settings(vec![
                ("HeartbeatInterval".into(), Some("300".into())),
                ("Nope".into(), None)
            ])
        );
    }
}
