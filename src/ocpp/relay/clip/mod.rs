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
//! ([`crate::mapping::charger::kw_from_amps`] and its inverse), n being the period's
//! numberPhases (3 when absent, as both versions assume) but never more than the charger's
//! phases: the phases the charger can really use. Clipped limits are rounded down to the 1.6 schema's 0.1 step, never up.
//!
//! Upstream is told with [`clipped_notice`]: 2.0.1 NotifyChargingLimit carrying the authority
//! limit (the clip details in `customData`), 1.6 a DataTransfer (vendorId `org.ocpp809`,
//! messageId `ChargingLimitClipped`) since 1.6 has no such message. [`limit_notice`] reports a
//! change of the authority limit itself.

mod answer;
mod clear;
mod fields;
mod notice;
mod profile;

pub use notice::{
    clipped_notice, limit_notice, LimitSource, CLIPPED_MESSAGE_ID, LIMIT_MESSAGE_ID, VENDOR_ID,
};

use serde_json::Value;

use crate::mapping::charger::LimitUnit;
use crate::ocpp::Version;

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

/// Decides what happens to an upstream → charger CALL (see the module doc for the rules).
/// Never panics, whatever the payload.
pub fn inspect_downstream_call(
    version: Version,
    action: &str,
    payload: &Value,
    authority: &Authority,
) -> Decision {
    match action {
        "SetChargingProfile" => profile::set_profile(version, payload, authority),
        "ClearChargingProfile" => clear::clear_profile(version, payload, authority),
        "RemoteStartTransaction" | "RequestStartTransaction" => {
            profile::start_with_profile(version, payload, authority)
        }
        _ => Decision::Forward(payload.clone(), None),
    }
}
