//! Site power management and the failsafe limit (CONTRACT §7): the site limit (or, while
//! SCADA is lost, the failsafe limit) is shared among online chargers by [`allocate`]; each
//! charger's profile is the lower of its own SCADA limit and its share, re-sent only when it
//! moves by more than the hysteresis. A site command is confirmed when every charger has
//! accepted its new share.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::allocation::{allocate, Claim};
use super::commands::{share_command, Pending, Purpose};
use super::{point, Engine, Output};
use crate::mapping::layout::site;
use crate::station::{CommandOutcome, PointValue};

/// Minimum current of a charging connector (IEC 61851: 6 A).
const MIN_CONNECTOR_AMPS: f64 = 6.0;
/// Profiles are re-sent only for changes above max(this, 5 %).
const HYSTERESIS_KW: f64 = 0.5;
const HYSTERESIS_RATIO: f64 = 0.05;
/// Paused chargers take turns this often.
const ROTATION_PERIOD_MIN: i64 = 15;
/// Demand-driven re-allocation happens at most this often.
const DEMAND_PERIOD_S: i64 = 5;

/// Site state of the engine.
#[derive(Clone, Debug, Default)]
pub(super) struct SiteState {
    failsafe: bool,
    /// Start-up, then the last time SCADA was present.
    scada_seen: Option<DateTime<Utc>>,
    rotation: usize,
    rotation_at: Option<DateTime<Utc>>,
    demand_changed: bool,
    allocated_at: Option<DateTime<Utc>>,
    /// Site commands waiting for their chargers: id → (answers outstanding, failure).
    groups: HashMap<u64, (usize, Option<String>)>,
}

impl SiteState {
    pub(super) fn failsafe(&self) -> bool {
        self.failsafe
    }
}

fn moved(old: Option<f64>, new: Option<f64>) -> bool {
    match (old, new) {
        (Some(old), Some(new)) => (new - old).abs() > HYSTERESIS_KW.max(old * HYSTERESIS_RATIO),
        (None, None) => false,
        _ => true,
    }
}

impl Engine {
    /// The chargers' budget: the failsafe limit while SCADA is lost, else the site limit;
    /// with a grid meter, less the load that is not a charger.
    pub(super) fn budget_kw(&self) -> Option<f64> {
        let limit = if self.site.failsafe {
            self.config.failsafe_limit_kw
        } else {
            self.site_limit_kw
        }?;
        Some(match self.non_charger_load_kw() {
            Some(load) => (limit - load).max(0.0),
            None => limit,
        })
    }

    /// Recomputes every online charger's share and sends the profiles that moved. With
    /// `group`, the requests count towards that site command's confirmation, which is
    /// returned at once when nothing needs sending.
    pub(super) fn reallocate(&mut self, now: DateTime<Utc>, group: Option<u64>) -> Vec<Output> {
        self.site.allocated_at = Some(now);
        self.site.demand_changed = false;
        let budget = self.budget_kw();
        let online: Vec<usize> = (0..self.chargers.len())
            .filter(|&i| self.chargers[i].online)
            .collect();
        let shares: Vec<Option<f64>> = match budget {
            Some(budget) => {
                let claims: Vec<Claim> = online
                    .iter()
                    .map(|&i| {
                        let c = &self.chargers[i];
                        Claim {
                            cap_kw: c.own_limit_kw.unwrap_or(c.settings.max_kw),
                            connector_min_kw: MIN_CONNECTOR_AMPS
                                * super::commands::VOLTS
                                * f64::from(c.settings.phases)
                                / 1000.0,
                            charging: c.charging_connectors(),
                            power_kw: c.total_power_kw(),
                        }
                    })
                    .collect();
                allocate(budget, &claims, self.site.rotation)
                    .into_iter()
                    .map(Some)
                    .collect()
            }
            None => vec![None; online.len()],
        };
        let mut out = Vec::new();
        let mut sent = 0;
        for (&index, share) in online.iter().zip(shares) {
            let state = &mut self.chargers[index];
            state.share_kw = share;
            // The profile: the lower of the own limit and the share; with neither, none.
            let target = match (state.own_limit_kw, share) {
                (Some(own), Some(share)) => Some(own.min(share)),
                (None, Some(share)) => Some(share),
                (own, None) => own,
            };
            if !moved(state.sent_kw, target) {
                continue;
            }
            state.sent_kw = target;
            let request = self.request(
                index,
                share_command(target),
                Pending {
                    scada_command: None,
                    group,
                    charger: index,
                    purpose: Purpose::Share { kw: target },
                },
            );
            out.push(Output::Charger(request));
            sent += 1;
        }
        if let Some(group) = group {
            if sent == 0 {
                out.push(Output::CommandDone {
                    id: group,
                    outcome: CommandOutcome::Accepted,
                });
            } else {
                self.site.groups.insert(group, (sent, None));
            }
        }
        out
    }

    /// One share of site command `group` was answered.
    pub(super) fn share_answered(&mut self, group: u64, outcome: &CommandOutcome) -> Vec<Output> {
        let Some((left, failure)) = self.site.groups.get_mut(&group) else {
            return Vec::new();
        };
        *left = left.saturating_sub(1);
        if let CommandOutcome::Rejected(reason) = outcome {
            failure.get_or_insert_with(|| reason.clone());
        }
        if *left > 0 {
            return Vec::new();
        }
        let failure = failure.take();
        self.site.groups.remove(&group);
        let outcome = match failure {
            None => CommandOutcome::Accepted,
            Some(reason) => {
                CommandOutcome::Rejected(format!("a charger refused its share: {reason}"))
            }
        };
        vec![Output::CommandDone { id: group, outcome }]
    }

    /// Periodic input: SCADA presence drives the failsafe; rotation and demand changes
    /// re-allocate.
    pub(super) fn tick(&mut self, now: DateTime<Utc>, scada_present: bool) -> Vec<Output> {
        let mut out = Vec::new();
        let seen = *self.site.scada_seen.get_or_insert(now);
        let base = self.config.site_ioa_base;
        if scada_present {
            self.site.scada_seen = Some(now);
            if self.site.failsafe {
                self.site.failsafe = false;
                self.touch_site();
                info!("SCADA is back: failsafe limit lifted");
                out.push(point(now, base + site::FAILSAFE, PointValue::Single(false)));
                out.push(point(
                    now,
                    base + site::LIMIT,
                    PointValue::Float(self.site_limit_kw.unwrap_or(0.0) as f32),
                ));
                out.extend(self.reallocate(now, None));
                return out;
            }
        } else if let (Some(timeout), Some(limit)) = (
            self.config.scada_loss_timeout,
            self.config.failsafe_limit_kw,
        ) {
            if !self.site.failsafe && now - seen >= timeout {
                self.site.failsafe = true;
                self.touch_site();
                warn!(limit_kw = limit, "no SCADA master: failsafe limit applied");
                out.push(point(now, base + site::FAILSAFE, PointValue::Single(true)));
                out.push(point(
                    now,
                    base + site::LIMIT,
                    PointValue::Float(limit as f32),
                ));
                out.extend(self.reallocate(now, None));
                return out;
            }
        }
        let rotation_due = self
            .site
            .rotation_at
            .is_none_or(|at| now - at >= Duration::minutes(ROTATION_PERIOD_MIN));
        if rotation_due {
            self.site.rotation_at = Some(now);
            self.site.rotation = self.site.rotation.wrapping_add(1);
        }
        let demand_due = self.site.demand_changed
            && self
                .site
                .allocated_at
                .is_none_or(|at| now - at >= Duration::seconds(DEMAND_PERIOD_S));
        if self.budget_kw().is_some() && (rotation_due || demand_due) {
            out.extend(self.reallocate(now, None));
        }
        out
    }

    /// A charger's demand may have changed (meter sample): re-allocate at the next tick.
    pub(super) fn demand_changed(&mut self) {
        self.site.demand_changed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asdu::TypeId;
    use crate::mapping::charger::{ChargerCommand, ChargerEvent, ChargerRequest, CommandResult};
    use crate::mapping::engine::{ChargerSettings, EngineConfig, Input};
    use crate::mapping::layout::ChargerBlock;
    use crate::station::{CommandAction, CommandRequest};

    fn two_chargers() -> Engine {
        let charger = |id: &str, base| ChargerSettings {
            block: ChargerBlock {
                id: id.into(),
                ioa_base: base,
                connectors: 1,
            },
            max_kw: 22.0,
            phases: 3,
        };
        Engine::new(EngineConfig {
            site_ioa_base: 1,
            site_limit_kw: None,
            large_change_kw: 50.0,
            failsafe_limit_kw: Some(10.0),
            scada_loss_timeout: Some(Duration::seconds(30)),
            power_deadband_kw: 0.1,
            current_deadband_a: 0.1,
            unknown: None,
            chargers: vec![charger("A", 1000), charger("B", 1100)],
            meters: Vec::new(),
            telemetry: true,
        })
    }

    fn connect(engine: &mut Engine, now: DateTime<Utc>, id: &str) -> Vec<Output> {
        engine.handle(
            now,
            Input::Charger(ChargerEvent::Connected { charger: id.into() }),
        )
    }

    fn requests(outputs: &[Output]) -> Vec<ChargerRequest> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Charger(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn watts(request: &ChargerRequest) -> Option<f64> {
        match request.command {
            ChargerCommand::SetLimit { limit, .. } => Some(limit),
            _ => None,
        }
    }

    fn done(outputs: &[Output]) -> Vec<(u64, CommandOutcome)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::CommandDone { id, outcome } => Some((*id, outcome.clone())),
                _ => None,
            })
            .collect()
    }

    fn accept(engine: &mut Engine, now: DateTime<Utc>, request: &ChargerRequest) -> Vec<Output> {
        engine.handle(
            now,
            Input::Charger(ChargerEvent::CommandFinished {
                charger: request.charger.clone(),
                request: request.id,
                result: CommandResult::Accepted,
            }),
        )
    }

    fn site_setpoint(kw: f32) -> Input {
        Input::Scada(CommandRequest {
            id: 77,
            session: 1,
            ioa: 11,
            type_id: TypeId::C_SE_NC_1,
            action: CommandAction::SetpointFloat(kw),
            selected: true,
        })
    }

    #[test]
    fn the_site_limit_is_split_and_confirmed_when_every_charger_accepted() {
        let mut engine = two_chargers();
        let now = Utc::now();
        connect(&mut engine, now, "A");
        connect(&mut engine, now, "B");
        let out = engine.handle(now, site_setpoint(20.0));
        let sent = requests(&out);
        assert_eq!(
            sent.iter().map(watts).collect::<Vec<_>>(),
            vec![Some(10_000.0), Some(10_000.0)]
        );
        assert!(
            done(&out).is_empty(),
            "no confirmation before the chargers answer"
        );
        assert!(done(&accept(&mut engine, now, &sent[0])).is_empty());
        assert_eq!(
            done(&accept(&mut engine, now, &sent[1])),
            vec![(77, CommandOutcome::Accepted)]
        );
    }

    #[test]
    fn a_refused_share_gives_a_negative_confirmation() {
        let mut engine = two_chargers();
        let now = Utc::now();
        connect(&mut engine, now, "A");
        let out = engine.handle(now, site_setpoint(20.0));
        let sent = requests(&out);
        let refused = engine.handle(
            now,
            Input::Charger(ChargerEvent::CommandFinished {
                charger: "A".into(),
                request: sent[0].id,
                result: CommandResult::Timeout,
            }),
        );
        assert!(matches!(
            done(&refused)[..],
            [(77, CommandOutcome::Rejected(_))]
        ));
    }

    #[test]
    fn a_charger_joining_gets_its_share_and_the_others_are_reduced() {
        let mut engine = two_chargers();
        let now = Utc::now();
        connect(&mut engine, now, "A");
        for request in requests(&engine.handle(now, site_setpoint(20.0))) {
            accept(&mut engine, now, &request);
        }
        let joined = requests(&connect(&mut engine, now, "B"));
        let mut by_charger: Vec<(String, Option<f64>)> = joined
            .iter()
            .map(|r| (r.charger.clone(), watts(r)))
            .collect();
        by_charger.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            by_charger,
            vec![("A".into(), Some(10_000.0)), ("B".into(), Some(10_000.0))]
        );
    }

    #[test]
    fn failsafe_applies_after_the_timeout_and_lifts_when_scada_returns() {
        let mut engine = two_chargers();
        let start = Utc::now();
        engine.handle(start, Input::Start);
        engine.handle(
            start,
            Input::Tick {
                scada_present: false,
            },
        );
        connect(&mut engine, start, "A");
        let early = engine.handle(
            start + Duration::seconds(29),
            Input::Tick {
                scada_present: false,
            },
        );
        assert!(requests(&early).is_empty());
        let lost = engine.handle(
            start + Duration::seconds(31),
            Input::Tick {
                scada_present: false,
            },
        );
        assert!(lost.contains(&point(
            start + Duration::seconds(31),
            4,
            PointValue::Single(true)
        )));
        let sent = requests(&lost);
        assert_eq!(
            sent.iter().map(watts).collect::<Vec<_>>(),
            vec![Some(10_000.0)]
        );
        let back = engine.handle(
            start + Duration::seconds(40),
            Input::Tick {
                scada_present: true,
            },
        );
        assert!(back.contains(&point(
            start + Duration::seconds(40),
            4,
            PointValue::Single(false)
        )));
        let lifted = requests(&back);
        assert_eq!(lifted.len(), 1);
        assert_eq!(
            lifted[0].command,
            ChargerCommand::ClearLimit { profile_id: 809 }
        );
    }

    #[test]
    fn small_demand_changes_do_not_resend_profiles() {
        assert!(!moved(Some(10.0), Some(10.3)));
        assert!(moved(Some(10.0), Some(10.6)));
        assert!(!moved(Some(100.0), Some(104.0)));
        assert!(moved(None, Some(1.0)));
        assert!(!moved(None, None));
    }
}
