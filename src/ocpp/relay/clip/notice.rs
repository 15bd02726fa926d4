//! Telling the upstream CSMS about the authority limit: OCPP 2.0.1 K12 NotifyChargingLimit
//! (with what was clipped in customData) and K13 ClearedChargingLimit; OCPP 1.6 has neither,
//! so it gets a DataTransfer (§5.6) with vendorId [`VENDOR_ID`] and a JSON text as data.

use serde_json::{json, Map, Value};

use super::fields::names;
use super::profile::cap_in;
use super::{Clipped, Limit};
use crate::ocpp::v16::commands::rate_unit;
use crate::ocpp::Version;

/// vendorId of ocpp809's DataTransfer messages and 2.0.1 customData.
pub const VENDOR_ID: &str = "org.ocpp809";
/// 1.6 DataTransfer messageId of [`clipped_notice`].
pub const CLIPPED_MESSAGE_ID: &str = "ChargingLimitClipped";
/// 1.6 DataTransfer messageId of [`limit_notice`].
pub const LIMIT_MESSAGE_ID: &str = "ChargingLimitChanged";

/// Who imposed the limit, as 2.0.1 ChargingLimitSourceEnumType names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// Energy Management System: the site's own power management.
    Ems,
    /// System Operator: the grid operator (DSO/TSO) through SCADA.
    So,
}

impl LimitSource {
    pub fn wire_name(self) -> &'static str {
        match self {
            LimitSource::Ems => "EMS",
            LimitSource::So => "SO",
        }
    }
}

/// The CALL that tells the upstream a profile was clipped: action and payload.
pub fn clipped_notice(
    version: Version,
    clipped: &Clipped,
    source: LimitSource,
    grid_critical: bool,
) -> (&'static str, Value) {
    let report = clip_report(version, clipped);
    match version {
        Version::V201 => {
            let mut custom = Map::new();
            custom.insert("vendorId".into(), json!(VENDOR_ID));
            custom.insert("clipped".into(), report);
            let mut payload = notify_charging_limit(&clipped.authority, source, grid_critical);
            payload.insert("customData".into(), Value::Object(custom));
            ("NotifyChargingLimit", Value::Object(payload))
        }
        Version::V16 => {
            let mut data = Map::new();
            data.insert("chargingLimitSource".into(), json!(source.wire_name()));
            data.insert("isGridCritical".into(), json!(grid_critical));
            data.insert("limit".into(), limit_json(&clipped.authority));
            if let Value::Object(report) = report {
                data.extend(report);
            }
            data_transfer(CLIPPED_MESSAGE_ID, &Value::Object(data))
        }
    }
}

/// The CALL that tells the upstream the authority limit changed (`None`: lifted).
/// 2.0.1: NotifyChargingLimit, or ClearedChargingLimit when lifted; 1.6: DataTransfer
/// `ChargingLimitChanged` with `{"chargingLimitSource", "isGridCritical", "limit"}`.
pub fn limit_notice(
    version: Version,
    limit: Option<&Limit>,
    source: LimitSource,
    grid_critical: bool,
) -> (&'static str, Value) {
    match (version, limit) {
        (Version::V201, Some(limit)) => (
            "NotifyChargingLimit",
            Value::Object(notify_charging_limit(limit, source, grid_critical)),
        ),
        (Version::V201, None) => (
            "ClearedChargingLimit",
            json!({ "chargingLimitSource": source.wire_name() }),
        ),
        (Version::V16, limit) => data_transfer(
            LIMIT_MESSAGE_ID,
            &json!({
                "chargingLimitSource": source.wire_name(),
                "isGridCritical": grid_critical,
                "limit": limit.map_or(Value::Null, limit_json),
            }),
        ),
    }
}

fn limit_json(limit: &Limit) -> Value {
    json!({ "value": cap_in(*limit, limit.unit, 1), "unit": rate_unit(limit.unit) })
}

fn charging_limit(source: LimitSource, grid_critical: bool) -> Value {
    json!({ "chargingLimitSource": source.wire_name(), "isGridCritical": grid_critical })
}

/// The authority limit as a 2.0.1 ChargingScheduleType.
fn authority_schedule(limit: &Limit) -> Value {
    json!({
        "id": 1,
        "chargingRateUnit": rate_unit(limit.unit),
        "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": cap_in(*limit, limit.unit, 1) }],
    })
}

/// NotifyChargingLimitRequest for `limit`. The schedule id is 1: the message carries one.
fn notify_charging_limit(
    limit: &Limit,
    source: LimitSource,
    grid_critical: bool,
) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert(
        "chargingLimit".into(),
        charging_limit(source, grid_critical),
    );
    payload.insert(
        "chargingSchedule".into(),
        json!([authority_schedule(limit)]),
    );
    payload
}

/// What was clipped, in the version's field names (the 1.6 DataTransfer data and the 2.0.1
/// customData share it).
fn clip_report(version: Version, clipped: &Clipped) -> Value {
    let n = names(version);
    let periods: Vec<Value> = clipped
        .periods
        .iter()
        .map(|p| {
            let mut period = Map::new();
            if let Some(id) = p.schedule_id {
                period.insert("scheduleId".into(), json!(id));
            }
            period.insert("startPeriod".into(), json!(p.start_period));
            period.insert("unit".into(), json!(rate_unit(p.unit)));
            period.insert("requested".into(), json!(p.requested));
            period.insert("applied".into(), json!(p.applied));
            Value::Object(period)
        })
        .collect();
    let mut report = Map::new();
    report.insert("chargingProfileId".into(), json!(clipped.profile_id));
    report.insert("chargingProfilePurpose".into(), json!(clipped.purpose));
    if let Some(connector) = clipped.connector {
        report.insert(n.connector.into(), json!(connector));
    }
    report.insert("periods".into(), Value::Array(periods));
    Value::Object(report)
}

fn data_transfer(message_id: &str, data: &Value) -> (&'static str, Value) {
    (
        "DataTransfer",
        json!({ "vendorId": VENDOR_ID, "messageId": message_id, "data": data.to_string() }),
    )
}
