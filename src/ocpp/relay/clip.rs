//! Power authority over upstream smart charging: every CALL the upstream CSMS sends a charger
//! through the relay passes [`inspect_downstream_call`] first, so SCADA's limit stays in force
//! (OCPP 1.6 §3.13 "Smart Charging", §5.5 ClearChargingProfile, §5.16 SetChargingProfile;
//! OCPP 2.0.1 K01 SetChargingProfile, K10 ClearChargingProfile, K12 NotifyChargingLimit, K13
//! ClearedChargingLimit). Pure: JSON in, decisions and JSON out, no IO, no clock.
//!
//! ocpp809's own limit is a station-wide maximum profile (1.6 ChargePointMaxProfile on
//! connectorId 0, 2.0.1 ChargingStationMaxProfile on evseId 0) with a reserved profile id and
//! stack level ([`Authority`]). The rules, fail closed:
//!
//! - SetChargingProfile that uses our profile id (it would replace ours), 2.0.1 purpose
//!   ChargingStationExternalConstraints (reserved for external actors, K01: the CSMS cannot set
//!   it), or a station maximum on our stack level or above (1.6 §5.16: the same id, or the
//!   same stack level and purpose, replaces ours; in both versions a higher stack level takes
//!   precedence within a purpose, 1.6 §3.13.2, 2.0.1 K01) is refused with
//!   Rejected, whether or not a limit is in force: SCADA may impose one at any moment and its
//!   slot must be free. Any other profile is forwarded with every period limit above the
//!   authority limit lowered to it, recorded as [`Clipped`].
//! - ClearChargingProfile of our id is refused with Unknown: the upstream has no profile with
//!   that id, and ours is not its to clear. Criteria without an id that would also match ours
//!   (purpose absent or station maximum, stack level absent or ours, connector/EVSE absent or
//!   0) are refused with Unknown while a limit is in force. They cannot be rewritten to spare
//!   ours in one request (OCPP has no "all but" criterion), and Accepted would claim a clear
//!   that did not happen; the upstream clears its own profiles by id or by naming a Tx purpose.
//!   Without a limit ours is not on the charger and the clear is forwarded.
//! - The TxProfile a 1.6 RemoteStartTransaction / 2.0.1 RequestStartTransaction may carry is
//!   checked and clipped the same way (its id could replace ours); a refusal answers Rejected.
//! - A call whose fields this module reads (ids, stack level, purpose, connector/EVSE; rate
//!   units, period limits and numberPhases while a limit is in force) are missing or of the
//!   wrong type is refused (Rejected; Unknown for a clear): a profile it cannot read is one it
//!   cannot clip, and a lenient charger might still apply it. Every other action is forwarded
//!   as is.
//!
//! Units follow the specifications' ChargingRateUnitType: W is the total power, A the current
//! per phase. An authority limit is converted into a schedule's unit at 230 V × n phases
//! ([`kw_from_amps`], [`amps_from_kw`]), n being the period's numberPhases (3 when absent, as
//! both versions assume) but never more than the charger's phases: the phases the charger can
//! really use. Clipped limits are rounded down to the 1.6 schema's 0.1 step, never up.
//!
//! Upstream is told with [`clipped_notice`]: 2.0.1 NotifyChargingLimit carrying the authority
//! limit (the clip details in `customData`), 1.6 a DataTransfer (vendorId `org.ocpp809`,
//! messageId `ChargingLimitClipped`) since 1.6 has no such message. [`limit_notice`] reports a
//! change of the authority limit itself.

use serde_json::{json, Map, Value};

use crate::mapping::charger::{amps_from_kw, kw_from_amps, LimitUnit};
use crate::ocpp::Version;

/// vendorId of ocpp809's DataTransfer messages and 2.0.1 customData.
pub const VENDOR_ID: &str = "org.ocpp809";
/// 1.6 DataTransfer messageId of [`clipped_notice`].
pub const CLIPPED_MESSAGE_ID: &str = "ChargingLimitClipped";
/// 1.6 DataTransfer messageId of [`limit_notice`].
pub const LIMIT_MESSAGE_ID: &str = "ChargingLimitChanged";
/// numberPhases both versions assume when a period does not give it.
const DEFAULT_PHASES: u8 = 3;

/// A limit in the unit it was given in: W total power, or A per phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub value: f64,
    pub unit: LimitUnit,
}

/// What ocpp809 imposes on one charger: its limit (if any) and the profile that carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct Authority {
    /// The limit in force, or about to be: it must already include a SetLimit queued ahead of
    /// the call being inspected. `None`: ocpp809's profile is not on the charger. A value that
    /// is not a finite number ≥ 0 is taken as 0.
    pub limit: Option<Limit>,
    /// The charger's phases (`[[charger]] phases`); 0 is taken as 1.
    pub phases: u8,
    /// chargingProfileId (1.6) / id (2.0.1) of ocpp809's station maximum profile.
    pub profile_id: i32,
    /// stackLevel of ocpp809's station maximum profile.
    pub stack_level: u32,
}

/// What to do with one upstream → charger CALL.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Send this payload to the charger (the original, or clipped when the second field says
    /// so). After the charger's Accepted, tell the upstream with [`clipped_notice`].
    Forward(Value, Option<Clipped>),
    /// Do not send it: answer the upstream with this CALLRESULT payload (schema-valid for the
    /// action's response in that version).
    Refuse {
        result_payload: Value,
        reason: Refusal,
    },
}

/// Why a call was refused (for the log and metrics; the upstream sees the result payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The profile uses ocpp809's profile id.
    ReservedProfileId,
    /// 2.0.1 ChargingStationExternalConstraints, which the CSMS cannot set.
    ReservedPurpose,
    /// A station maximum on ocpp809's stack level or above.
    OverridesAuthority,
    /// The clear would remove ocpp809's profile.
    ClearsAuthority,
    /// A field this module must read is missing or malformed (which one).
    Unreadable(String),
}

/// The limits lowered in one forwarded SetChargingProfile.
#[derive(Clone, Debug, PartialEq)]
pub struct Clipped {
    /// chargingProfileId (1.6) / id (2.0.1) of the upstream's profile.
    pub profile_id: i64,
    /// chargingProfilePurpose as sent.
    pub purpose: String,
    /// connectorId (1.6) / evseId (2.0.1) of the request; `None` when a remote start leaves
    /// the choice to the charger.
    pub connector: Option<i64>,
    /// The authority limit the periods were clipped to.
    pub authority: Limit,
    pub periods: Vec<ClippedPeriod>,
}

/// One schedule period whose limit was lowered.
#[derive(Clone, Debug, PartialEq)]
pub struct ClippedPeriod {
    /// 2.0.1 chargingSchedule id; `None` in 1.6 (one schedule per profile).
    pub schedule_id: Option<i64>,
    pub start_period: i64,
    /// The schedule's chargingRateUnit.
    pub unit: LimitUnit,
    pub requested: f64,
    pub applied: f64,
}

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

/// Decides what happens to an upstream → charger CALL (see the module doc for the rules).
/// Never panics, whatever the payload.
pub fn inspect_downstream_call(
    version: Version,
    action: &str,
    payload: &Value,
    authority: &Authority,
) -> Decision {
    match action {
        "SetChargingProfile" => set_profile(version, payload, authority),
        "ClearChargingProfile" => clear_profile(version, payload, authority),
        "RemoteStartTransaction" | "RequestStartTransaction" => {
            start_with_profile(version, payload, authority)
        }
        _ => Decision::Forward(payload.clone(), None),
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

// ---------------------------------------------------------------------------- the rules

/// Charging profile purposes, both versions' names folded together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// 1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile.
    StationMax,
    TxDefault,
    Tx,
    /// 2.0.1 only.
    ExternalConstraints,
}

/// The field names that differ between the versions.
struct Names {
    connector: &'static str,
    profile: &'static str,
    profile_id: &'static str,
}

fn names(version: Version) -> Names {
    match version {
        Version::V16 => Names {
            connector: "connectorId",
            profile: "csChargingProfiles",
            profile_id: "chargingProfileId",
        },
        Version::V201 => Names {
            connector: "evseId",
            profile: "chargingProfile",
            profile_id: "id",
        },
    }
}

fn purpose(version: Version, name: &str) -> Option<Purpose> {
    match (version, name) {
        (Version::V16, "ChargePointMaxProfile") => Some(Purpose::StationMax),
        (Version::V201, "ChargingStationMaxProfile") => Some(Purpose::StationMax),
        (Version::V201, "ChargingStationExternalConstraints") => Some(Purpose::ExternalConstraints),
        (_, "TxDefaultProfile") => Some(Purpose::TxDefault),
        (_, "TxProfile") => Some(Purpose::Tx),
        _ => None,
    }
}

type Read<T> = Result<T, String>;

/// An optional integer field: absent is `None`, anything but a JSON integer is unreadable.
fn opt_int(object: &Map<String, Value>, key: &str) -> Read<Option<i64>> {
    match object.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{key} is not an integer")),
    }
}

fn int(object: &Map<String, Value>, key: &str) -> Read<i64> {
    opt_int(object, key)?.ok_or_else(|| format!("{key} is missing"))
}

fn object<'a>(v: Option<&'a Value>, what: &str) -> Read<&'a Map<String, Value>> {
    v.and_then(Value::as_object)
        .ok_or_else(|| format!("{what} is not an object"))
}

fn opt_purpose(version: Version, object: &Map<String, Value>) -> Read<Option<Purpose>> {
    match object.get("chargingProfilePurpose") {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|name| purpose(version, name))
            .map(Some)
            .ok_or_else(|| format!("chargingProfilePurpose {v} is not a {version:?} purpose")),
    }
}

fn set_profile(version: Version, payload: &Value, authority: &Authority) -> Decision {
    let n = names(version);
    let mut payload = payload.clone();
    let checked = payload
        .as_object_mut()
        .ok_or_else(|| Refusal::Unreadable("the payload is not an object".into()))
        .and_then(|request| {
            let connector = int(request, n.connector).map_err(Refusal::Unreadable)?;
            let profile = request
                .get_mut(n.profile)
                .and_then(Value::as_object_mut)
                .ok_or_else(|| Refusal::Unreadable(format!("{} is not an object", n.profile)))?;
            check_profile(version, profile, Some(connector), authority)
        });
    decide(version, payload, checked, authority)
}

/// 1.6 RemoteStartTransaction and 2.0.1 RequestStartTransaction may carry a TxProfile (1.6
/// §5.11, 2.0.1 F01): the same checks as SetChargingProfile, or the id it carries could
/// replace ours.
fn start_with_profile(version: Version, payload: &Value, authority: &Authority) -> Decision {
    let n = names(version);
    let mut payload = payload.clone();
    let checked = match payload.as_object_mut() {
        None => Err(Refusal::Unreadable("the payload is not an object".into())),
        Some(request) => match opt_int(request, n.connector) {
            Err(why) => Err(Refusal::Unreadable(why)),
            Ok(connector) => match request.get_mut("chargingProfile") {
                None => Ok(None),
                Some(Value::Object(profile)) => {
                    check_profile(version, profile, connector, authority)
                }
                Some(_) => Err(Refusal::Unreadable(
                    "chargingProfile is not an object".into(),
                )),
            },
        },
    };
    decide(version, payload, checked, authority)
}

fn decide(
    version: Version,
    payload: Value,
    checked: Result<Option<Clipped>, Refusal>,
    authority: &Authority,
) -> Decision {
    match checked {
        Ok(clipped) => Decision::Forward(payload, clipped),
        Err(reason) => Decision::Refuse {
            result_payload: refusal_payload(version, "Rejected", &reason, authority),
            reason,
        },
    }
}

/// Checks one charging profile against the authority and clips its schedules in place.
fn check_profile(
    version: Version,
    profile: &mut Map<String, Value>,
    connector: Option<i64>,
    authority: &Authority,
) -> Result<Option<Clipped>, Refusal> {
    let unreadable = Refusal::Unreadable;
    let profile_id = int(profile, names(version).profile_id).map_err(unreadable)?;
    let stack_level = int(profile, "stackLevel").map_err(unreadable)?;
    let purpose = opt_purpose(version, profile)
        .map_err(unreadable)?
        .ok_or_else(|| unreadable("chargingProfilePurpose is missing".into()))?;

    if profile_id == i64::from(authority.profile_id) {
        return Err(Refusal::ReservedProfileId);
    }
    if purpose == Purpose::ExternalConstraints {
        return Err(Refusal::ReservedPurpose);
    }
    if purpose == Purpose::StationMax && stack_level >= i64::from(authority.stack_level) {
        return Err(Refusal::OverridesAuthority);
    }
    let Some(limit) = authority.limit.map(sane) else {
        return Ok(None);
    };

    let purpose_name = profile
        .get("chargingProfilePurpose")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let phases = authority.phases.max(1);
    let mut periods = Vec::new();
    match (version, profile.get_mut("chargingSchedule")) {
        (Version::V16, Some(schedule @ Value::Object(_))) => {
            clip_schedule(schedule, None, limit, phases, &mut periods).map_err(unreadable)?
        }
        (Version::V201, Some(Value::Array(schedules))) if !schedules.is_empty() => {
            for schedule in schedules {
                let id = schedule
                    .as_object()
                    .ok_or_else(|| "a chargingSchedule is not an object".to_string())
                    .and_then(|s| int(s, "id"))
                    .map_err(unreadable)?;
                clip_schedule(schedule, Some(id), limit, phases, &mut periods)
                    .map_err(unreadable)?;
            }
        }
        _ => return Err(unreadable("chargingSchedule is malformed".into())),
    }
    Ok((!periods.is_empty()).then_some(Clipped {
        profile_id,
        purpose: purpose_name,
        connector,
        authority: limit,
        periods,
    }))
}

/// Lowers the period limits of one schedule above `limit`, recording each.
fn clip_schedule(
    schedule: &mut Value,
    schedule_id: Option<i64>,
    limit: Limit,
    phases: u8,
    clipped: &mut Vec<ClippedPeriod>,
) -> Read<()> {
    let unit = match schedule.get("chargingRateUnit").and_then(Value::as_str) {
        Some("W") => LimitUnit::Watts,
        Some("A") => LimitUnit::Amperes,
        _ => return Err("chargingRateUnit is not W or A".into()),
    };
    let Some(Value::Array(periods)) = schedule.get_mut("chargingSchedulePeriod") else {
        return Err("chargingSchedulePeriod is not an array".into());
    };
    if periods.is_empty() {
        return Err("chargingSchedulePeriod is empty".into());
    }
    for period in periods {
        let fields = period
            .as_object_mut()
            .ok_or_else(|| "a chargingSchedulePeriod is not an object".to_string())?;
        let start_period = int(fields, "startPeriod")?;
        let requested = fields
            .get("limit")
            .and_then(Value::as_f64)
            .filter(|l| l.is_finite())
            .ok_or_else(|| "a period limit is not a number".to_string())?;
        let period_phases = match opt_int(fields, "numberPhases")? {
            Some(n @ 1..=3) => n as u8,
            Some(n) => return Err(format!("numberPhases {n} is not 1, 2 or 3")),
            None => DEFAULT_PHASES,
        };
        let cap = cap_in(limit, unit, period_phases.min(phases));
        if requested > cap {
            fields.insert("limit".into(), json!(cap));
            clipped.push(ClippedPeriod {
                schedule_id,
                start_period,
                unit,
                requested,
                applied: cap,
            });
        }
    }
    Ok(())
}

/// A limit that is not a finite number ≥ 0 is taken as 0 (fail closed).
fn sane(limit: Limit) -> Limit {
    Limit {
        value: if limit.value.is_finite() {
            limit.value.max(0.0)
        } else {
            0.0
        },
        unit: limit.unit,
    }
}

/// The authority limit in `unit` for a period on `phases` phases, rounded down to 0.1.
fn cap_in(limit: Limit, unit: LimitUnit, phases: u8) -> f64 {
    let value = sane(limit).value;
    let converted = match (limit.unit, unit) {
        (LimitUnit::Watts, LimitUnit::Watts) | (LimitUnit::Amperes, LimitUnit::Amperes) => value,
        (LimitUnit::Amperes, LimitUnit::Watts) => kw_from_amps(value, phases) * 1000.0,
        (LimitUnit::Watts, LimitUnit::Amperes) => amps_from_kw(value / 1000.0, phases),
    };
    floor_tenth(converted)
}

/// Rounds down to the 0.1 step; the tolerance keeps 16.0 computed as 15.999… at 16.0.
fn floor_tenth(x: f64) -> f64 {
    let floored = (x * 10.0 + 1e-6).floor() / 10.0;
    if floored > 0.0 {
        floored
    } else {
        0.0
    }
}

fn clear_profile(version: Version, payload: &Value, authority: &Authority) -> Decision {
    match clears_authority(version, payload, authority) {
        Ok(false) => Decision::Forward(payload.clone(), None),
        Ok(true) => refuse_clear(version, Refusal::ClearsAuthority, authority),
        Err(why) => refuse_clear(version, Refusal::Unreadable(why), authority),
    }
}

/// Whether the clear could remove ocpp809's profile.
fn clears_authority(version: Version, payload: &Value, authority: &Authority) -> Read<bool> {
    let request = object(Some(payload), "the payload")?;
    let none = Map::new();
    let (id, criteria, connector) = match version {
        Version::V16 => (opt_int(request, "id")?, request, "connectorId"),
        Version::V201 => {
            let criteria = match request.get("chargingProfileCriteria") {
                None => &none,
                Some(c) => object(Some(c), "chargingProfileCriteria")?,
            };
            (opt_int(request, "chargingProfileId")?, criteria, "evseId")
        }
    };
    let purpose = opt_purpose(version, criteria)?;
    let stack_level = opt_int(criteria, "stackLevel")?;
    let connector = opt_int(criteria, connector)?;
    if let Some(id) = id {
        return Ok(id == i64::from(authority.profile_id));
    }
    Ok(authority.limit.is_some()
        && purpose.is_none_or(|p| p == Purpose::StationMax)
        && stack_level.is_none_or(|s| s == i64::from(authority.stack_level))
        && connector.is_none_or(|c| c == 0))
}

// ---------------------------------------------------------------------------- payloads

fn refuse_clear(version: Version, reason: Refusal, authority: &Authority) -> Decision {
    Decision::Refuse {
        result_payload: refusal_payload(version, "Unknown", &reason, authority),
        reason,
    }
}

/// The result payload of a refusal; 2.0.1 explains it in statusInfo with a reasonCode of the
/// specification's list.
fn refusal_payload(
    version: Version,
    status: &str,
    reason: &Refusal,
    authority: &Authority,
) -> Value {
    let (code, info) = match reason {
        Refusal::ReservedProfileId => (
            "DuplicateProfile",
            format!(
                "charging profile id {} is reserved for the site power authority",
                authority.profile_id
            ),
        ),
        Refusal::ReservedPurpose => (
            "InvalidProfile",
            "ChargingStationExternalConstraints is reserved for the site power authority".into(),
        ),
        Refusal::OverridesAuthority => (
            "InvalidStackLevel",
            format!(
                "station maximum profiles must use a stack level below {} (site power authority)",
                authority.stack_level
            ),
        ),
        Refusal::ClearsAuthority => (
            "InvalidValue",
            "the site power authority's profile cannot be cleared: clear by id, or name a Tx \
             purpose, another stack level or an EVSE"
                .into(),
        ),
        Refusal::Unreadable(why) => (
            "InvalidValue",
            format!("not understood by the site power authority: {why}"),
        ),
    };
    status_payload(version, status, code, &info)
}

/// `{"status"}`, with a 2.0.1 statusInfo (reasonCode ≤ 20, additionalInfo ≤ 512 characters).
fn status_payload(version: Version, status: &str, code: &str, info: &str) -> Value {
    match version {
        Version::V16 => json!({ "status": status }),
        Version::V201 => json!({
            "status": status,
            "statusInfo": {
                "reasonCode": code,
                "additionalInfo": info.chars().take(512).collect::<String>(),
            }
        }),
    }
}

fn unit_name(unit: LimitUnit) -> &'static str {
    match unit {
        LimitUnit::Watts => "W",
        LimitUnit::Amperes => "A",
    }
}

fn limit_json(limit: &Limit) -> Value {
    json!({ "value": cap_in(*limit, limit.unit, 1), "unit": unit_name(limit.unit) })
}

fn charging_limit(source: LimitSource, grid_critical: bool) -> Value {
    json!({ "chargingLimitSource": source.wire_name(), "isGridCritical": grid_critical })
}

/// The authority limit as a 2.0.1 ChargingScheduleType.
fn authority_schedule(limit: &Limit) -> Value {
    json!({
        "id": 1,
        "chargingRateUnit": unit_name(limit.unit),
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
            period.insert("unit".into(), json!(unit_name(p.unit)));
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
