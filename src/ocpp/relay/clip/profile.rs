//! Checking and clipping an upstream charging profile (OCPP 1.6 §5.16 SetChargingProfile and
//! the TxProfile of §5.11 RemoteStartTransaction; OCPP 2.0.1 K01 SetChargingProfile and F01
//! RequestStartTransaction): refused when it would replace or override ocpp809's profile,
//! otherwise every period limit above the authority limit is lowered to it.

use serde_json::{json, Map, Value};

use super::answer::refusal_payload;
use super::fields::{int, names, opt_int, opt_purpose, Purpose, Read};
use super::{Authority, Clipped, ClippedPeriod, Decision, Limit, Refusal};
use crate::mapping::charger::{amps_from_kw, kw_from_amps, LimitUnit};
use crate::ocpp::Version;

/// numberPhases both versions assume when a period does not give it.
const DEFAULT_PHASES: u8 = 3;

pub(super) fn set_profile(version: Version, payload: &Value, authority: &Authority) -> Decision {
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
pub(super) fn start_with_profile(
    version: Version,
    payload: &Value,
    authority: &Authority,
) -> Decision {
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
pub(super) fn cap_in(limit: Limit, unit: LimitUnit, phases: u8) -> f64 {
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
