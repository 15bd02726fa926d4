//! SCADA commands to chargers (CONTRACT §3 "Semantics", §7): power and current limits,
//! availability, reset, clear limit, and the read-through of the limit in force. Each
//! becomes a [`ChargerRequest`]; the charger's answer decides the activation confirmation.

use chrono::{DateTime, Utc};
use tracing::info;

use super::{point, ChargerState, Engine, Output, Persist, ScadaCommand};
use crate::mapping::charger::{
    ChargerCommand, ChargerRequest, CommandResult, LimitUnit, RequestId,
};
use crate::mapping::layout::charger;
// Re-exported for the other engine parts, which convert the same way.
pub(super) use crate::mapping::charger::{amps_from_kw, kw_from_amps, VOLTS};
use crate::station::{CommandAction, CommandOutcome, PointValue};

/// The profile ocpp809 owns on every charger, so a new limit replaces the previous one.
pub const PROFILE_ID: i32 = 809;
pub const STACK_LEVEL: u32 = 0;
/// CONTRACT §3: current setpoints convert at 230 V × 3 phases for the large-change test.
const SBO_PHASES: f64 = 3.0;
/// GetCompositeSchedule horizon (CONTRACT §7).
const SCHEDULE_DURATION_S: u32 = 3600;

/// What a request to a charger was for.
#[derive(Clone, Debug)]
pub(super) struct Pending {
    /// The SCADA command this request answers, if any.
    pub(super) scada_command: Option<u64>,
    /// The site command whose shares this request carries, if any.
    pub(super) group: Option<u64>,
    pub(super) charger: usize,
    pub(super) purpose: Purpose,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Purpose {
    /// A SCADA limit: `own` is what SCADA asked (clamped), `kw` what was sent (the lower of
    /// `own` and the site share).
    Limit {
        kw: f64,
        own: f64,
    },
    ClearLimit,
    ReadLimit,
    /// A site share (`None`: the site profile is lifted).
    Share {
        kw: Option<f64>,
    },
    Other,
}

impl Engine {
    /// Builds the request for a SCADA command to charger `index`, or the reason to refuse.
    pub(super) fn charger_command(
        &mut self,
        _now: DateTime<Utc>,
        index: usize,
        command: &ScadaCommand,
    ) -> Result<ChargerRequest, String> {
        let large_change_kw = self.config.large_change_kw;
        let state = &self.chargers[index];
        let id = state.settings.block.id.clone();
        if !state.online {
            return Err(format!("charger {id} is offline"));
        }
        let offset = command.ioa - state.settings.block.ioa_base;
        let (charger_command, purpose) = match (offset, command.action) {
            (charger::POWER_SETPOINT, CommandAction::SetpointFloat(kw)) => {
                let kw = f64::from(kw);
                let own = checked_limit(state, kw, kw, command.selected, large_change_kw)?;
                let kw = state.share_kw.map_or(own, |share| own.min(share));
                (set_watts(kw), Purpose::Limit { kw, own })
            }
            (charger::CURRENT_SETPOINT, CommandAction::SetpointScaled(amps)) => {
                let amps = f64::from(amps);
                let phases = state.settings.phases;
                let sbo_kw = amps * VOLTS * SBO_PHASES / 1000.0;
                let kw = kw_from_amps(amps, phases);
                let allowed_kw =
                    checked_limit(state, kw, sbo_kw, command.selected, large_change_kw)?;
                // Clamped to the max_kw equivalent, in amperes.
                let amps = if allowed_kw < kw {
                    amps_from_kw(allowed_kw, phases)
                } else {
                    amps
                };
                let own = kw_from_amps(amps, phases);
                match state.share_kw.filter(|share| *share < own) {
                    // The site share is lower: it is what the charger gets, in watts.
                    Some(share) => (set_watts(share), Purpose::Limit { kw: share, own }),
                    None => (
                        ChargerCommand::SetLimit {
                            limit: amps,
                            unit: LimitUnit::Amperes,
                            profile_id: PROFILE_ID,
                            stack_level: STACK_LEVEL,
                        },
                        Purpose::Limit { kw: own, own },
                    ),
                }
            }
            (charger::AVAILABILITY, CommandAction::Single(on)) => (
                ChargerCommand::ChangeAvailability { operative: on },
                Purpose::Other,
            ),
            (charger::RESET, CommandAction::Single(true)) => {
                (ChargerCommand::Reset { hard: false }, Purpose::Other)
            }
            (charger::CLEAR_LIMIT, CommandAction::Single(true)) => (
                ChargerCommand::ClearLimit {
                    profile_id: PROFILE_ID,
                },
                Purpose::ClearLimit,
            ),
            (charger::LIMIT, CommandAction::Read) => (
                ChargerCommand::GetCompositeSchedule {
                    connector: 0,
                    duration_s: SCHEDULE_DURATION_S,
                    unit: LimitUnit::Watts,
                },
                Purpose::ReadLimit,
            ),
            (charger::RESET | charger::CLEAR_LIMIT, CommandAction::Single(false)) => {
                return Err("only ON has an effect on this command".into())
            }
            _ => return Err(format!("IOA {} does not take this command", command.ioa)),
        };
        Ok(self.request(
            index,
            charger_command,
            Pending {
                scada_command: Some(command.id),
                group: None,
                charger: index,
                purpose,
            },
        ))
    }

    /// Registers a request to charger `index` and returns it.
    pub(super) fn request(
        &mut self,
        index: usize,
        command: ChargerCommand,
        pending: Pending,
    ) -> ChargerRequest {
        let request = ChargerRequest {
            id: self.next_request,
            charger: self.chargers[index].settings.block.id.clone(),
            command,
        };
        self.next_request += 1;
        self.pending.insert(request.id, pending);
        request
    }

    /// A charger answered (or could not): confirm the SCADA command and update points.
    pub(super) fn command_finished(
        &mut self,
        now: DateTime<Utc>,
        request: RequestId,
        result: &CommandResult,
    ) -> Vec<Output> {
        let Some(pending) = self.pending.remove(&request) else {
            return Vec::new();
        };
        self.touch(pending.charger);
        let state = &mut self.chargers[pending.charger];
        let limit_ioa = state.settings.block.ioa_base + charger::LIMIT;
        let max_kw = state.settings.max_kw;
        let mut out = Vec::new();
        let mut reallocate = false;
        let outcome = match (pending.purpose, result) {
            (Purpose::Limit { kw, own }, CommandResult::Accepted) => {
                state.own_limit_kw = Some(own);
                out.push(Output::Persist(Persist::ChargerLimit {
                    charger: state.settings.block.id.clone(),
                    kw: Some(own),
                }));
                state.limit_kw = Some(kw);
                state.sent_kw = Some(kw);
                out.push(point(now, limit_ioa, PointValue::Float(kw as f32)));
                CommandOutcome::Accepted
            }
            (Purpose::Share { kw }, CommandResult::Accepted) => {
                state.limit_kw = kw;
                let shown = kw.unwrap_or(state.own_limit_kw.unwrap_or(max_kw));
                out.push(point(now, limit_ioa, PointValue::Float(shown as f32)));
                CommandOutcome::Accepted
            }
            (Purpose::ClearLimit, CommandResult::Accepted) => {
                state.own_limit_kw = None;
                out.push(Output::Persist(Persist::ChargerLimit {
                    charger: state.settings.block.id.clone(),
                    kw: None,
                }));
                state.limit_kw = None;
                state.sent_kw = None;
                out.push(point(now, limit_ioa, PointValue::Float(max_kw as f32)));
                // A site share may still apply.
                reallocate = true;
                CommandOutcome::Accepted
            }
            (Purpose::ReadLimit, CommandResult::Schedule { limit, unit }) => {
                let kw = limit.map(|l| match unit {
                    LimitUnit::Watts => l / 1000.0,
                    LimitUnit::Amperes => kw_from_amps(l, state.settings.phases),
                });
                // No period in force: the charger's own maximum applies.
                let kw = kw.unwrap_or(max_kw);
                state.limit_kw = Some(kw);
                out.push(point(now, limit_ioa, PointValue::Float(kw as f32)));
                CommandOutcome::Accepted
            }
            (Purpose::Other, CommandResult::Accepted) => CommandOutcome::Accepted,
            (Purpose::Share { .. }, result) => {
                // Try again at the next allocation.
                state.sent_kw = None;
                CommandOutcome::Rejected(describe(result))
            }
            (_, result) => CommandOutcome::Rejected(describe(result)),
        };
        if let Some(id) = pending.scada_command {
            out.push(Output::CommandDone {
                id,
                outcome: outcome.clone(),
            });
        }
        if let Some(group) = pending.group {
            out.extend(self.share_answered(group, &outcome));
        }
        if reallocate {
            out.extend(self.reallocate(now, None));
        }
        out
    }
}

fn set_watts(kw: f64) -> ChargerCommand {
    ChargerCommand::SetLimit {
        limit: kw * 1000.0,
        unit: LimitUnit::Watts,
        profile_id: PROFILE_ID,
        stack_level: STACK_LEVEL,
    }
}

pub(super) fn share_command(kw: Option<f64>) -> ChargerCommand {
    match kw {
        Some(kw) => set_watts(kw),
        None => ChargerCommand::ClearLimit {
            profile_id: PROFILE_ID,
        },
    }
}

/// Applies the limit rules shared by power and current setpoints: a value ≤ 0 is refused,
/// a large change needs a select, a value above `max_kw` is clamped (and logged). Returns
/// the kW to apply.
fn checked_limit(
    state: &ChargerState,
    kw: f64,
    sbo_kw: f64,
    selected: bool,
    large_change_kw: f64,
) -> Result<f64, String> {
    if !kw.is_finite() || kw <= 0.0 {
        return Err(format!("a limit of {kw} kW is not positive"));
    }
    let in_force = state
        .own_limit_kw
        .or(state.limit_kw)
        .unwrap_or(state.settings.max_kw);
    if !selected && (sbo_kw - in_force).abs() > large_change_kw {
        return Err(format!(
            "a change from {in_force} kW to {sbo_kw} kW exceeds large_change_kw = {large_change_kw} and needs select-before-operate"
        ));
    }
    let max_kw = state.settings.max_kw;
    if kw > max_kw {
        info!(charger = %state.settings.block.id, requested_kw = kw, max_kw, "limit clamped to max_kw");
        return Ok(max_kw);
    }
    Ok(kw)
}

fn describe(result: &CommandResult) -> String {
    match result {
        CommandResult::Rejected(status) => format!("charger answered {status}"),
        CommandResult::CallError { code, description } => {
            format!("charger answered CALLERROR {code}: {description}")
        }
        CommandResult::Timeout => "charger did not answer in time".into(),
        CommandResult::Offline => "charger offline".into(),
        other => format!("unexpected answer {other:?}"),
    }
}
