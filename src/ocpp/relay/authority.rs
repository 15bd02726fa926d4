//! Power authority over relayed upstream commands (issue 10: "SCADA/site limits are applied
//! by ocpp809 as a profile the upstream cannot override"): every CALL the upstream CSMS sends
//! to a charger passes through [`inspect_downstream_call`] before it reaches the charger.
//!
//! The policy itself (clipping SetChargingProfile to the grid limit, protecting ocpp809's own
//! profile from ClearChargingProfile, telling the upstream) lives in [`clip`], pure; this
//! module is the seam between it and the relay: the data the policy gets ([`Authority`],
//! kept in step with the limits ocpp809 sends) and what the relay does ([`Decision`]).

use serde_json::Value;
use tracing::debug;

use super::clip;
use crate::mapping::charger::{ChargerCommand, LimitUnit};
use crate::mapping::engine::{PROFILE_ID, STACK_LEVEL};
use crate::ocpp::Version;

/// The limit ocpp809 itself imposed on one charger: the last
/// [`ChargerCommand::SetLimit`] sent through its session (cleared by `ClearLimit`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImposedLimit {
    /// In `unit` (W or A), as sent in the charging profile.
    pub limit: f64,
    pub unit: LimitUnit,
    pub profile_id: i32,
    pub stack_level: u32,
}

/// What the power-authority policy knows about a charger when an upstream CALL arrives.
#[derive(Clone, Debug, PartialEq)]
pub struct Authority {
    /// The OCPP version the charger (and so the upstream connection) speaks.
    pub version: Version,
    /// The charger's phases (`[[charger]] phases`, 3 for unknown chargers).
    pub phases: u8,
    /// The limit ocpp809 imposes on this charger now, if any.
    pub imposed: Option<ImposedLimit>,
}

impl Authority {
    pub fn new(version: Version, phases: u8) -> Authority {
        Authority {
            version,
            phases,
            imposed: None,
        }
    }

    /// Follows the commands ocpp809 sends to the charger (SetLimit / ClearLimit).
    pub fn observe_command(&mut self, command: &ChargerCommand) {
        match command {
            ChargerCommand::SetLimit {
                limit,
                unit,
                profile_id,
                stack_level,
            } => {
                self.imposed = Some(ImposedLimit {
                    limit: *limit,
                    unit: *unit,
                    profile_id: *profile_id,
                    stack_level: *stack_level,
                })
            }
            ChargerCommand::ClearLimit { profile_id }
                if self.imposed.is_some_and(|l| l.profile_id == *profile_id) =>
            {
                self.imposed = None;
            }
            _ => {}
        }
    }
}

/// A CALL ocpp809 sends to the upstream on its own behalf (e.g. telling it that its profile
/// was clipped); its answer is consumed by the relay.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub action: String,
    pub payload: Value,
}

/// What happens to one upstream→charger CALL.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Send this payload (possibly changed) to the charger under the upstream's MessageId;
    /// the charger's answer goes back upstream.
    Forward {
        payload: Value,
        notice: Option<Notice>,
    },
    /// Do not bother the charger: answer the upstream at once with this CALLRESULT payload.
    Answer {
        payload: Value,
        notice: Option<Notice>,
    },
}

/// Every upstream→charger CALL passes through here, in `relay::core::Relay::upstream_call`:
/// the rules of [`clip`](super::clip) applied to the limit ocpp809 imposes on the charger.
/// `action` is the CALL's action as the upstream wrote it. A clipped SetChargingProfile is
/// forwarded with a notice for the upstream (2.0.1 NotifyChargingLimit, 1.6 DataTransfer),
/// which the relay sends once the charger has accepted the profile.
pub fn inspect_downstream_call(action: &str, payload: &Value, authority: &Authority) -> Decision {
    let rules = clip::Authority {
        limit: authority.imposed.map(|l| clip::Limit {
            value: l.limit,
            unit: l.unit,
        }),
        phases: authority.phases,
        profile_id: authority.imposed.map_or(PROFILE_ID, |l| l.profile_id),
        stack_level: authority.imposed.map_or(STACK_LEVEL, |l| l.stack_level),
    };
    match clip::inspect_downstream_call(authority.version, action, payload, &rules) {
        clip::Decision::Forward(payload, clipped) => Decision::Forward {
            payload,
            notice: clipped.map(|clipped| {
                let (action, payload) =
                    clip::clipped_notice(authority.version, &clipped, clip::LimitSource::So, false);
                Notice {
                    action: action.to_owned(),
                    payload,
                }
            }),
        },
        clip::Decision::Refuse {
            result_payload,
            reason,
        } => {
            debug!(
                action,
                ?reason,
                "upstream CALL refused: it would override the grid limit"
            );
            Decision::Answer {
                payload: result_payload,
                notice: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_imposed_limit_follows_set_and_clear() {
        let mut a = Authority::new(Version::V16, 3);
        let set = ChargerCommand::SetLimit {
            limit: 11000.0,
            unit: LimitUnit::Watts,
            profile_id: 809,
            stack_level: 9,
        };
        a.observe_command(&set);
        assert_eq!(a.imposed.map(|l| l.limit), Some(11000.0));
        a.observe_command(&ChargerCommand::SetLimit {
            limit: 16.0,
            unit: LimitUnit::Amperes,
            profile_id: 809,
            stack_level: 9,
        });
        assert_eq!(
            a.imposed.map(|l| (l.limit, l.unit)),
            Some((16.0, LimitUnit::Amperes))
        );
        a.observe_command(&ChargerCommand::ClearLimit { profile_id: 1 });
        assert!(a.imposed.is_some(), "another profile's clear leaves ours");
        a.observe_command(&ChargerCommand::ClearLimit { profile_id: 809 });
        assert_eq!(a.imposed, None);
    }
}
