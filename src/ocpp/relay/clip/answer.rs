//! The local answers to refused calls: the version's response payload (1.6 `{"status"}`,
//! 2.0.1 with a StatusInfoType whose reasonCode comes from the specification's list and whose
//! additionalInfo says why in words).

use serde_json::{json, Value};

use super::{Authority, Refusal};
use crate::ocpp::Version;

/// The result payload of a refusal; 2.0.1 explains it in statusInfo with a reasonCode of the
/// specification's list.
pub(super) fn refusal_payload(
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
