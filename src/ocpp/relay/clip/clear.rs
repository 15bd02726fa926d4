//! Guarding ocpp809's profile against an upstream ClearChargingProfile (OCPP 1.6 §5.5,
//! OCPP 2.0.1 K10): a clear of its id, or criteria that would match it while it is on the
//! charger, is answered Unknown without reaching the charger.

use serde_json::{Map, Value};

use super::answer::refusal_payload;
use super::fields::{object, opt_int, opt_purpose, Purpose, Read};
use super::{Authority, Decision, Refusal};
use crate::ocpp::Version;

pub(super) fn clear_profile(version: Version, payload: &Value, authority: &Authority) -> Decision {
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

fn refuse_clear(version: Version, reason: Refusal, authority: &Authority) -> Decision {
    Decision::Refuse {
        result_payload: refusal_payload(version, "Unknown", &reason, authority),
        reason,
    }
}
