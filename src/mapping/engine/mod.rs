//! The mapping engine state machine: `handle(now, input) -> outputs`.
//!
//! This slice serves the site block and the configured chargers' blocks: it gives the
//! points their initial state (CONTRACT §3: the online point 0 with good quality, every
//! other point IV until it has a value), tracks chargers' connections, and decides SCADA
//! commands — the site limit with its select-before-operate rule, and charger commands,
//! which become [`ChargerRequest`]s whose answers decide the activation confirmation.

mod allocation;
mod commands;
mod meters;
mod monitoring;
mod persistence;
mod reports;
mod site_power;
mod site_totals;
mod status;
mod unknown;

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use super::charger::{ChargerEvent, ChargerRequest, RequestId};
use super::layout::{charger, site, ChargerBlock};
use super::meter::MeterEvent;
use super::telemetry::Telemetry;
use crate::asdu::Quality;
use crate::station::{CommandAction, CommandOutcome, CommandRequest, PointUpdate, PointValue};
pub use commands::{PROFILE_ID, STACK_LEVEL};
pub use meters::MeterSettings;
pub use persistence::{Persist, RestoredState};
pub use unknown::UnknownPolicy;

/// A command from SCADA, as decoded by the station (link-neutral).
pub type ScadaCommand = CommandRequest;

#[derive(Clone, Debug, PartialEq)]
pub struct ChargerSettings {
    pub block: ChargerBlock,
    pub max_kw: f64,
    pub phases: u8,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub site_ioa_base: u32,
    /// Configured site limit; `None` = no site limit.
    pub site_limit_kw: Option<f64>,
    /// A power-limit change larger than this needs select-before-operate.
    pub large_change_kw: f64,
    /// Site total applied while SCADA is lost; `None` = no failsafe.
    pub failsafe_limit_kw: Option<f64>,
    /// How long without an active SCADA master before the failsafe applies.
    pub scada_loss_timeout: Option<chrono::Duration>,
    /// Spontaneous reporting deadbands (CONTRACT §3 "Deadbands").
    pub power_deadband_kw: f64,
    pub current_deadband_a: f64,
    /// `None`: chargers not in the configuration get no points.
    pub unknown: Option<UnknownPolicy>,
    pub chargers: Vec<ChargerSettings>,
    /// Index = `MeterEvent` meter index.
    pub meters: Vec<MeterSettings>,
    /// Produce `Output::Telemetry` (someone consumes it, e.g. the MQTT mirror); without a
    /// consumer the per-sample and per-event reports are not built at all.
    pub telemetry: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The daemon started: publish the initial point states.
    Start,
    Scada(ScadaCommand),
    Charger(ChargerEvent),
    Meter(MeterEvent),
    /// Periodic (about 1 s): whether a SCADA master has data transfer active.
    Tick {
        scada_present: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Point(PointUpdate),
    CommandDone {
        id: u64,
        outcome: CommandOutcome,
    },
    /// A command for a charger; its answer comes back as `ChargerEvent::CommandFinished`.
    Charger(ChargerRequest),
    /// Something to make durable (within 1 s).
    Persist(Persist),
    /// Points of a charger that got its block now; `announce`: send them spontaneously.
    NewPoints {
        specs: Vec<crate::station::PointSpec>,
        announce: bool,
    },
    /// For the MQTT mirror.
    Telemetry(Telemetry),
}

struct ChargerState {
    settings: ChargerSettings,
    online: bool,
    /// The last limit the charger accepted or reported, kW; `None` = none in force.
    limit_kw: Option<f64>,
    /// The limit SCADA set for this charger (accepted), kW.
    own_limit_kw: Option<f64>,
    /// Its share of the site budget, when a site or failsafe limit is in force.
    share_kw: Option<f64>,
    /// The profile last sent (`None`: none sent, or cleared).
    sent_kw: Option<f64>,
    monitor: monitoring::Monitor,
    status: status::StatusState,
    site_contribution: site_totals::Contribution,
}

impl ChargerState {
    fn new(settings: ChargerSettings) -> ChargerState {
        ChargerState {
            settings,
            online: false,
            limit_kw: None,
            own_limit_kw: None,
            share_kw: None,
            sent_kw: None,
            monitor: monitoring::Monitor::default(),
            status: status::StatusState::default(),
            site_contribution: site_totals::Contribution::default(),
        }
    }
}

pub struct Engine {
    config: EngineConfig,
    site_limit_kw: Option<f64>,
    chargers: Vec<ChargerState>,
    /// Charger id → index in `chargers` (events arrive by id, thousands per second).
    by_id: HashMap<String, usize>,
    pending: HashMap<RequestId, commands::Pending>,
    next_request: RequestId,
    site: site_power::SiteState,
    site_totals: site_totals::SiteTotals,
    meters: Vec<meters::MeterState>,
    dirty: reports::Dirty,
    commands_in_flight: reports::CommandsInFlight,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let chargers: Vec<ChargerState> = config
            .chargers
            .iter()
            .cloned()
            .map(ChargerState::new)
            .collect();
        let by_id = chargers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.settings.block.id.clone(), i))
            .collect();
        let meters = config
            .meters
            .iter()
            .cloned()
            .map(meters::MeterState::new)
            .collect();
        Engine {
            meters,
            dirty: reports::Dirty::default(),
            commands_in_flight: reports::CommandsInFlight::default(),
            site_limit_kw: config.site_limit_kw.filter(|kw| *kw > 0.0),
            config,
            chargers,
            by_id,
            pending: HashMap::new(),
            next_request: 1,
            site: site_power::SiteState::default(),
            site_totals: site_totals::SiteTotals::default(),
        }
    }

    pub fn site_limit_kw(&self) -> Option<f64> {
        self.site_limit_kw
    }

    pub fn handle(&mut self, now: DateTime<Utc>, input: Input) -> Vec<Output> {
        let mut out = match input {
            Input::Start => {
                let mut out = self.initial_points(now);
                out.extend(self.initial_meter_points(now));
                // The snapshots go out with the first tick, once every task is running.
                self.touch_all();
                out
            }
            Input::Scada(command) => {
                if self.config.telemetry {
                    self.commands_in_flight.record(&command);
                }
                self.scada_command(now, command)
            }
            Input::Charger(event) => self.charger_event(now, event),
            Input::Meter(event) => self.meter_event(now, event),
            Input::Tick { scada_present } => {
                let mut out = self.meters_tick(now);
                out.extend(self.tick(now, scada_present));
                out.extend(self.snapshots(now));
                out
            }
        };
        self.report_commands(now, &mut out);
        out
    }

    /// Connection state, meter samples, status, alarms and transactions of configured
    /// chargers (CONTRACT §3 monitoring rows).
    fn charger_event(&mut self, now: DateTime<Utc>, event: ChargerEvent) -> Vec<Output> {
        if let ChargerEvent::CommandFinished {
            request, result, ..
        } = &event
        {
            return self.command_finished(now, *request, result);
        }
        let Some(index) = self.by_id.get(event.charger()).copied() else {
            return match &event {
                ChargerEvent::Booted { charger, .. } => {
                    let mut out = self.adopt(now, charger);
                    if let Some(index) = self.by_id.get(charger).copied() {
                        out.extend(self.event_reports(now, index, &event));
                        self.touch(index);
                    }
                    out
                }
                _ => Vec::new(),
            };
        };
        let mut out = self.event_reports(now, index, &event);
        self.touch(index);
        out.extend(self.known_charger_event(now, index, &event));
        out
    }

    fn known_charger_event(
        &mut self,
        now: DateTime<Utc>,
        index: usize,
        event: &ChargerEvent,
    ) -> Vec<Output> {
        let state = &mut self.chargers[index];
        match event {
            ChargerEvent::Connected { .. } => self.connection(now, index, true),
            ChargerEvent::Disconnected { .. } => self.connection(now, index, false),
            ChargerEvent::Meter { sample, .. } => {
                let deadbands = monitoring::Deadbands {
                    power_kw: self.config.power_deadband_kw,
                    current_a: self.config.current_deadband_a,
                };
                let mut out = state.meter_sample(now, sample, deadbands);
                self.demand_changed();
                out.extend(self.update_site_totals(now, index));
                out
            }
            ChargerEvent::Status {
                connector,
                status,
                error_code,
                timestamp,
                ..
            } => {
                let charging = state.charging_connectors();
                let mut out =
                    state.status(now, *connector, *status, error_code.as_deref(), *timestamp);
                if state.charging_connectors() != charging && self.budget_in_force() {
                    out.extend(self.reallocate(now, None));
                }
                out
            }
            ChargerEvent::Alarm {
                connector,
                name,
                active,
                timestamp,
                ..
            } => state.alarm(now, *connector, name, *active, *timestamp),
            ChargerEvent::TransactionStarted {
                connector,
                transaction_id,
                ..
            } => {
                let mut out = state.transaction(now, transaction_id, Some(*connector), true);
                if self.budget_in_force() {
                    out.extend(self.reallocate(now, None));
                }
                out
            }
            ChargerEvent::TransactionEnded {
                connector,
                transaction_id,
                ..
            } => state.transaction(now, transaction_id, *connector, false),
            _ => Vec::new(),
        }
    }

    /// The WebSocket session of charger `index` came up or went down.
    fn connection(&mut self, now: DateTime<Utc>, index: usize, online: bool) -> Vec<Output> {
        let state = &mut self.chargers[index];
        if state.online == online {
            return Vec::new();
        }
        state.online = online;
        let mut out = vec![point(
            now,
            state.settings.block.ioa_base + charger::ONLINE,
            PointValue::Single(online),
        )];
        if online {
            out.extend(state.restore_quality(now));
        } else {
            // Offline: every other point keeps its last value, marked not topical.
            let base = state.settings.block.ioa_base;
            for ioa in monitor_ioas_except_online(&state.settings.block) {
                out.push(Output::Point(PointUpdate {
                    ioa: base + ioa,
                    value: None,
                    quality: Quality {
                        not_topical: true,
                        ..Quality::GOOD
                    },
                    time: now,
                }));
            }
        }
        let count = self.chargers.iter().filter(|c| c.online).count();
        out.push(point(
            now,
            self.config.site_ioa_base + site::CHARGERS_ONLINE,
            PointValue::Float(count as f32),
        ));
        if online {
            // A profile sent before the connection was lost is re-sent (CONTRACT §7).
            self.chargers[index].sent_kw = None;
        }
        if self.budget_in_force() || online {
            out.extend(self.reallocate(now, None));
        }
        out.extend(self.update_site_totals(now, index));
        out
    }

    fn budget_in_force(&self) -> bool {
        self.budget_kw().is_some()
    }

    fn initial_points(&self, now: DateTime<Utc>) -> Vec<Output> {
        let site_base = self.config.site_ioa_base;
        let mut out = vec![
            point(
                now,
                site_base + site::LIMIT,
                PointValue::Float(self.site_limit_kw.unwrap_or(0.0) as f32),
            ),
            point(now, site_base + site::FAILSAFE, PointValue::Single(false)),
            point(
                now,
                site_base + site::CHARGERS_ONLINE,
                PointValue::Float(0.0),
            ),
        ];
        for charger in &self.chargers {
            out.push(point(
                now,
                charger.settings.block.ioa_base + charger::ONLINE,
                PointValue::Single(charger.online),
            ));
        }
        out
    }

    fn scada_command(&mut self, now: DateTime<Utc>, command: ScadaCommand) -> Vec<Output> {
        let site_setpoint = self.config.site_ioa_base + site::LIMIT_SETPOINT;
        self.touch_site();
        let (outcome, mut updates) = if command.ioa == site_setpoint {
            match self.site_limit(now, &command) {
                Ok(mut updates) => {
                    updates.extend(self.reallocate(now, Some(command.id)));
                    return updates;
                }
                Err(reason) => (CommandOutcome::Rejected(reason), Vec::new()),
            }
        } else if let Some(index) = self.charger_of(command.ioa) {
            let clamped = self.clamp_report(now, index, &command);
            match self.charger_command(now, index, &command) {
                Ok(request) => {
                    let mut out = vec![Output::Charger(request)];
                    out.extend(clamped);
                    return out;
                }
                Err(reason) => (CommandOutcome::Rejected(reason), Vec::new()),
            }
        } else {
            (
                CommandOutcome::Rejected(format!("no command object at IOA {}", command.ioa)),
                Vec::new(),
            )
        };
        updates.push(Output::CommandDone {
            id: command.id,
            outcome,
        });
        updates
    }

    /// Applies a site setpoint; the confirmation follows when every charger accepted its
    /// share (see `site`).
    fn site_limit(
        &mut self,
        now: DateTime<Utc>,
        command: &ScadaCommand,
    ) -> Result<Vec<Output>, String> {
        let CommandAction::SetpointFloat(kw) = command.action else {
            return Err("site limit takes a short-float setpoint".into());
        };
        let kw = f64::from(kw);
        if !kw.is_finite() {
            return Err("site limit is not a finite number".into());
        }
        let base = self.config.site_ioa_base;
        if kw <= 0.0 {
            // A site setpoint ≤ 0 lifts the site limit (CONTRACT §7).
            self.site_limit_kw = None;
        } else if !command.selected && self.is_large_change(self.site_limit_kw, kw) {
            return Err(format!(
                "a change to {kw} kW exceeds large_change_kw = {} and needs select-before-operate",
                self.config.large_change_kw
            ));
        } else {
            self.site_limit_kw = Some(kw);
        }
        let persist = Output::Persist(Persist::SiteLimit(self.site_limit_kw));
        if self.site.failsafe() {
            // The failsafe limit stays in force until SCADA is back; the new limit follows.
            return Ok(vec![persist]);
        }
        let shown = self.site_limit_kw.unwrap_or(0.0) as f32;
        Ok(vec![
            point(now, base + site::LIMIT, PointValue::Float(shown)),
            persist,
        ])
    }

    /// |new − limit in force| > large_change_kw, where no limit in force counts as
    /// unlimited (so any first limit is large).
    fn is_large_change(&self, in_force: Option<f64>, new_kw: f64) -> bool {
        match in_force {
            Some(current) => (new_kw - current).abs() > self.config.large_change_kw,
            None => true,
        }
    }

    fn charger_of(&self, ioa: u32) -> Option<usize> {
        self.chargers.iter().position(|c| {
            let base = c.settings.block.ioa_base;
            (base..base + charger::BLOCK_SIZE).contains(&ioa)
        })
    }
}

/// Offsets of a charger's monitored points other than the online point.
fn monitor_ioas_except_online(block: &ChargerBlock) -> Vec<u32> {
    let mut offsets = vec![
        charger::POWER,
        charger::ENERGY,
        charger::LIMIT,
        charger::FAULTED,
        charger::ALARM,
    ];
    for n in 1..=block.connectors.min(charger::MAX_CONNECTORS) {
        for offset in [
            charger::CONNECTOR_AVAILABLE,
            charger::CONNECTOR_OCCUPIED,
            charger::CONNECTOR_FAULTED,
            charger::CONNECTOR_POWER,
            charger::CONNECTOR_ENERGY,
            charger::CONNECTOR_CURRENT,
        ] {
            offsets.push(charger::connector(n, offset));
        }
    }
    offsets
}

fn point(now: DateTime<Utc>, ioa: u32, value: PointValue) -> Output {
    Output::Point(PointUpdate {
        ioa,
        value: Some(value),
        quality: Quality::GOOD,
        time: now,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::asdu::TypeId;
    use crate::mapping::charger::{ChargerCommand, CommandResult, LimitUnit};
    use crate::mapping::telemetry::{ChargerNotice, EventReport};

    fn engine() -> Engine {
        Engine::new(EngineConfig {
            site_ioa_base: 1,
            site_limit_kw: None,
            large_change_kw: 50.0,
            failsafe_limit_kw: Some(10.0),
            scada_loss_timeout: Some(chrono::Duration::seconds(30)),
            power_deadband_kw: 0.1,
            current_deadband_a: 0.1,
            unknown: Some(UnknownPolicy {
                auto_ioa_base: 1000,
                max_kw: 11.0,
                connectors: 1,
                used: vec![1..12, 900..905],
            }),
            chargers: vec![ChargerSettings {
                block: ChargerBlock {
                    id: "CP001".into(),
                    ioa_base: 1000,
                    connectors: 2,
                },
                max_kw: 22.0,
                phases: 3,
            }],
            meters: Vec::new(),
            telemetry: true,
        })
    }

    fn setpoint(ioa: u32, kw: f32, selected: bool) -> Input {
        Input::Scada(CommandRequest {
            id: 7,
            session: 1,
            ioa,
            type_id: TypeId::C_SE_NC_1,
            action: CommandAction::SetpointFloat(kw),
            selected,
        })
    }

    fn outcome(outputs: &[Output]) -> &CommandOutcome {
        outputs
            .iter()
            .find_map(|o| match o {
                Output::CommandDone { outcome, .. } => Some(outcome),
                _ => None,
            })
            .expect("every command gets an outcome")
    }

    #[test]
    fn the_first_site_limit_needs_select_before_operate() {
        let mut engine = engine();
        let now = Utc::now();
        let direct = engine.handle(now, setpoint(11, 100.0, false));
        assert!(matches!(outcome(&direct), CommandOutcome::Rejected(_)));
        let selected = engine.handle(now, setpoint(11, 100.0, true));
        assert_eq!(outcome(&selected), &CommandOutcome::Accepted);
        assert!(selected.contains(&point(now, 3, PointValue::Float(100.0))));
        assert_eq!(engine.site_limit_kw(), Some(100.0));
    }

    #[test]
    fn a_small_site_limit_change_may_be_executed_directly() {
        let mut engine = engine();
        let now = Utc::now();
        engine.handle(now, setpoint(11, 100.0, true));
        assert_eq!(
            outcome(&engine.handle(now, setpoint(11, 150.0, false))),
            &CommandOutcome::Accepted
        );
        assert!(matches!(
            outcome(&engine.handle(now, setpoint(11, 250.0, false))),
            CommandOutcome::Rejected(_)
        ));
    }

    #[test]
    fn a_site_setpoint_of_zero_lifts_the_limit() {
        let mut engine = engine();
        let now = Utc::now();
        engine.handle(now, setpoint(11, 100.0, true));
        let lifted = engine.handle(now, setpoint(11, 0.0, false));
        assert_eq!(outcome(&lifted), &CommandOutcome::Accepted);
        assert!(lifted.contains(&point(now, 3, PointValue::Float(0.0))));
        assert_eq!(engine.site_limit_kw(), None);
    }

    #[test]
    fn commands_to_an_offline_charger_are_refused() {
        let mut engine = engine();
        let outputs = engine.handle(Utc::now(), setpoint(1090, 11.0, true));
        assert_eq!(
            outcome(&outputs),
            &CommandOutcome::Rejected("charger CP001 is offline".into())
        );
    }

    #[test]
    fn a_connected_charger_is_online_and_counted_and_goes_not_topical_when_lost() {
        let mut engine = engine();
        let now = Utc::now();
        let connected = engine.handle(
            now,
            Input::Charger(ChargerEvent::Connected {
                charger: "CP001".into(),
            }),
        );
        assert!(connected.contains(&point(now, 1000, PointValue::Single(true))));
        assert!(connected.contains(&point(now, 5, PointValue::Float(1.0))));
        let lost = engine.handle(
            now,
            Input::Charger(ChargerEvent::Disconnected {
                charger: "CP001".into(),
            }),
        );
        assert!(lost.contains(&point(now, 1000, PointValue::Single(false))));
        assert!(lost.contains(&point(now, 5, PointValue::Float(0.0))));
        let power_nt = Output::Point(PointUpdate {
            ioa: 1001,
            value: None,
            quality: Quality {
                not_topical: true,
                ..Quality::GOOD
            },
            time: now,
        });
        assert!(lost.contains(&power_nt));
    }

    /// An engine with CP001 (two connectors, 22 kW) connected.
    pub(in crate::mapping::engine) fn connected_engine() -> (Engine, DateTime<Utc>) {
        (online_engine(50.0), Utc::now())
    }

    /// Point updates by IOA (the last one wins).
    pub(in crate::mapping::engine) fn points_of(
        outputs: &[Output],
    ) -> std::collections::HashMap<u32, (Option<PointValue>, Quality)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Point(p) => Some((p.ioa, (p.value, p.quality))),
                _ => None,
            })
            .collect()
    }

    fn online_engine(large_change_kw: f64) -> Engine {
        let mut engine = engine();
        engine.config.large_change_kw = large_change_kw;
        engine.handle(
            Utc::now(),
            Input::Charger(ChargerEvent::Connected {
                charger: "CP001".into(),
            }),
        );
        engine
    }

    fn command(ioa: u32, action: CommandAction, selected: bool) -> Input {
        Input::Scada(CommandRequest {
            id: 42,
            session: 1,
            ioa,
            type_id: TypeId::C_SE_NC_1,
            action,
            selected,
        })
    }

    fn request_of(outputs: &[Output]) -> ChargerRequest {
        let outputs: Vec<&Output> = outputs
            .iter()
            .filter(|o| !matches!(o, Output::Telemetry(_)))
            .collect();
        match outputs[..] {
            [Output::Charger(request)] => request.clone(),
            ref other => panic!("expected one charger request, got {other:?}"),
        }
    }

    fn finish(engine: &mut Engine, request: &ChargerRequest, result: CommandResult) -> Vec<Output> {
        engine.handle(
            Utc::now(),
            Input::Charger(ChargerEvent::CommandFinished {
                charger: "CP001".into(),
                request: request.id,
                result,
            }),
        )
    }

    fn limit_point(outputs: &[Output]) -> Option<f32> {
        outputs.iter().find_map(|o| match o {
            Output::Point(PointUpdate {
                ioa: 1003,
                value: Some(PointValue::Float(kw)),
                ..
            }) => Some(*kw),
            _ => None,
        })
    }

    #[test]
    fn a_power_setpoint_becomes_the_809_profile_and_waits_for_the_answer() {
        let mut engine = online_engine(50.0);
        let outputs = engine.handle(
            Utc::now(),
            command(1090, CommandAction::SetpointFloat(11.0), false),
        );
        let request = request_of(&outputs);
        assert_eq!(
            request.command,
            ChargerCommand::SetLimit {
                limit: 11_000.0,
                unit: LimitUnit::Watts,
                profile_id: 809,
                stack_level: 0
            }
        );
        let done = finish(&mut engine, &request, CommandResult::Accepted);
        assert_eq!(outcome(&done), &CommandOutcome::Accepted);
        assert_eq!(limit_point(&done), Some(11.0));
    }

    #[test]
    fn a_limit_above_max_kw_is_clamped_and_reported() {
        let mut engine = online_engine(50.0);
        let outputs = engine.handle(
            Utc::now(),
            command(1090, CommandAction::SetpointFloat(30.0), false),
        );
        assert!(matches!(
            request_of(&outputs).command,
            ChargerCommand::SetLimit { limit, .. } if limit == 22_000.0
        ));
        assert!(outputs.iter().any(|o| matches!(o,
            Output::Telemetry(Telemetry::Event(EventReport {
                event: ChargerNotice::LimitClamped { requested_kw, applied_kw }, ..
            })) if *requested_kw == 30.0 && *applied_kw == 22.0)));
    }

    #[test]
    fn limits_that_are_not_positive_or_too_large_without_select_are_refused() {
        let mut engine = online_engine(5.0);
        for (kw, selected) in [(0.0, true), (-3.0, true), (10.0, false)] {
            let outputs = engine.handle(
                Utc::now(),
                command(1090, CommandAction::SetpointFloat(kw), selected),
            );
            assert!(
                matches!(outcome(&outputs), CommandOutcome::Rejected(_)),
                "{kw} kW selected={selected}"
            );
        }
        let selected = engine.handle(
            Utc::now(),
            command(1090, CommandAction::SetpointFloat(10.0), true),
        );
        assert!(matches!(
            request_of(&selected).command,
            ChargerCommand::SetLimit { .. }
        ));
    }

    #[test]
    fn a_current_limit_is_sent_in_amperes_and_shown_in_kw() {
        let mut engine = online_engine(50.0);
        let outputs = engine.handle(
            Utc::now(),
            command(1091, CommandAction::SetpointScaled(16), false),
        );
        let request = request_of(&outputs);
        assert!(matches!(
            request.command,
            ChargerCommand::SetLimit { limit, unit: LimitUnit::Amperes, profile_id: 809, .. } if limit == 16.0
        ));
        let done = finish(&mut engine, &request, CommandResult::Accepted);
        assert_eq!(limit_point(&done), Some(11.04));
    }

    #[test]
    fn reading_the_limit_asks_for_the_composite_schedule() {
        let mut engine = online_engine(50.0);
        let outputs = engine.handle(Utc::now(), command(1003, CommandAction::Read, false));
        let request = request_of(&outputs);
        assert!(matches!(
            request.command,
            ChargerCommand::GetCompositeSchedule {
                connector: 0,
                duration_s: 3600,
                unit: LimitUnit::Watts
            }
        ));
        let done = finish(
            &mut engine,
            &request,
            CommandResult::Schedule {
                limit: Some(7_000.0),
                unit: LimitUnit::Watts,
            },
        );
        assert_eq!(outcome(&done), &CommandOutcome::Accepted);
        assert_eq!(limit_point(&done), Some(7.0));
    }

    #[test]
    fn a_timeout_or_rejection_is_a_negative_confirmation() {
        let mut engine = online_engine(50.0);
        for result in [
            CommandResult::Timeout,
            CommandResult::Rejected("Rejected".into()),
            CommandResult::Offline,
        ] {
            let outputs = engine.handle(
                Utc::now(),
                command(1092, CommandAction::Single(true), false),
            );
            let request = request_of(&outputs);
            assert_eq!(
                request.command,
                ChargerCommand::ChangeAvailability { operative: true }
            );
            let done = finish(&mut engine, &request, result);
            assert!(matches!(outcome(&done), CommandOutcome::Rejected(_)));
        }
    }

    #[test]
    fn clearing_the_limit_shows_max_kw() {
        let mut engine = online_engine(50.0);
        let outputs = engine.handle(
            Utc::now(),
            command(1094, CommandAction::Single(true), false),
        );
        let request = request_of(&outputs);
        assert_eq!(
            request.command,
            ChargerCommand::ClearLimit { profile_id: 809 }
        );
        let done = finish(&mut engine, &request, CommandResult::Accepted);
        assert_eq!(limit_point(&done), Some(22.0));
    }

    #[test]
    fn start_puts_online_points_at_zero_with_good_quality() {
        let mut engine = engine();
        let now = Utc::now();
        let outputs = engine.handle(now, Input::Start);
        assert!(outputs.contains(&point(now, 1000, PointValue::Single(false))));
        assert!(outputs.contains(&point(now, 4, PointValue::Single(false))));
    }
}
