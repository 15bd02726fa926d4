//! Reading the OCPP smart-charging fields the power authority decides on, strictly: a field of
//! the wrong JSON type is an error (the caller refuses the call), never a guess. Field names
//! per version: OCPP 1.6 SetChargingProfile.req / ClearChargingProfile.req (§5.16, §5.5),
//! OCPP 2.0.1 SetChargingProfileRequest / ClearChargingProfileRequest (K01, K10).

use serde_json::{Map, Value};

use crate::ocpp::Version;

/// Charging profile purposes, both versions' names folded together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// 1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile.
    StationMax,
    TxDefault,
    Tx,
    /// 2.0.1 only.
    ExternalConstraints,
}

/// The field names that differ between the versions.
pub(super) struct Names {
    pub(super) connector: &'static str,
    pub(super) profile: &'static str,
    pub(super) profile_id: &'static str,
}

pub(super) fn names(version: Version) -> Names {
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

pub(super) fn purpose(version: Version, name: &str) -> Option<Purpose> {
    match (version, name) {
        (Version::V16, "ChargePointMaxProfile") => Some(Purpose::StationMax),
        (Version::V201, "ChargingStationMaxProfile") => Some(Purpose::StationMax),
        (Version::V201, "ChargingStationExternalConstraints") => Some(Purpose::ExternalConstraints),
        (_, "TxDefaultProfile") => Some(Purpose::TxDefault),
        (_, "TxProfile") => Some(Purpose::Tx),
        _ => None,
    }
}

pub(super) type Read<T> = Result<T, String>;

/// An optional integer field: absent is `None`, anything but a JSON integer is unreadable.
pub(super) fn opt_int(object: &Map<String, Value>, key: &str) -> Read<Option<i64>> {
    match object.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{key} is not an integer")),
    }
}

pub(super) fn int(object: &Map<String, Value>, key: &str) -> Read<i64> {
    opt_int(object, key)?.ok_or_else(|| format!("{key} is missing"))
}

pub(super) fn object<'a>(v: Option<&'a Value>, what: &str) -> Read<&'a Map<String, Value>> {
    v.and_then(Value::as_object)
        .ok_or_else(|| format!("{what} is not an object"))
}

pub(super) fn opt_purpose(version: Version, object: &Map<String, Value>) -> Read<Option<Purpose>> {
    match object.get("chargingProfilePurpose") {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|name| purpose(version, name))
            .map(Some)
            .ok_or_else(|| format!("chargingProfilePurpose {v} is not a {version:?} purpose")),
    }
}
