//! Telemetry the engine reports for the MQTT mirror (CONTRACT §5): one report per sampled
//! value and per charger event as they happen, and state snapshots of the chargers and the
//! site that changed, at most once per tick — a charger sending meter values every second
//! costs one retained message per second, not one per point.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::commands::kw_from_amps;
use super::monitoring::sample_time;
use super::{ChargerState, Engine, Output, ScadaCommand};
use crate::mapping::charger::{ChargerEvent, ConnectorStatus, Measurand, SampleValue};
use crate::mapping::layout::charger;
use crate::mapping::telemetry::{
    ChargerNotice, ChargerReport, CommandReport, ConnectorReport, EventReport, SampleReport,
    SiteReport, Telemetry,
};
use crate::station::{CommandAction, CommandOutcome, PointValue};

/// OCPP's spelling of a status (1.6 and 2.0.1 share these names).
pub fn status_name(status: ConnectorStatus) -> &'static str {
    match status {
        ConnectorStatus::Available => "Available",
        ConnectorStatus::Preparing => "Preparing",
        ConnectorStatus::Charging => "Charging",
        ConnectorStatus::SuspendedEv => "SuspendedEV",
        ConnectorStatus::SuspendedEvse => "SuspendedEVSE",
        ConnectorStatus::Finishing => "Finishing",
        ConnectorStatus::Reserved => "Reserved",
        ConnectorStatus::Unavailable => "Unavailable",
        ConnectorStatus::Faulted => "Faulted",
        ConnectorStatus::Occupied => "Occupied",
    }
}

fn measurand_name(measurand: &Measurand) -> &str {
    match measurand {
        Measurand::PowerActiveImport => "Power.Active.Import",
        Measurand::EnergyActiveImportRegister => "Energy.Active.Import.Register",
        Measurand::CurrentImport => "Current.Import",
        Measurand::Voltage => "Voltage",
        Measurand::Other(name) => name,
    }
}

fn float(value: Option<PointValue>) -> Option<f64> {
    match value? {
        PointValue::Float(v) => Some(f64::from(v)),
        PointValue::Counter(v) => Some(v as f64),
        _ => None,
    }
}

impl ChargerState {
    fn state_report(&self, now: DateTime<Utc>) -> ChargerReport {
        let connectors = (1..=self.settings.block.connectors.min(charger::MAX_CONNECTORS))
            .map(|n| {
                (
                    n.to_string(),
                    ConnectorReport {
                        status: self.connector_status(n).map(|s| status_name(s).to_string()),
                        power_kw: float(
                            self.monitor_value(charger::connector(n, charger::CONNECTOR_POWER)),
                        ),
                        energy_wh: float(
                            self.monitor_value(charger::connector(n, charger::CONNECTOR_ENERGY)),
                        ),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        ChargerReport {
            charger: self.settings.block.id.clone(),
            online: self.online,
            power_kw: float(self.monitor_value(charger::POWER)),
            energy_wh: float(self.monitor_value(charger::ENERGY)),
            limit_kw: self.limit_kw,
            connectors,
            ts: now,
        }
    }
}

/// Which snapshots are due at the next tick.
#[derive(Clone, Debug, Default)]
pub(super) struct Dirty {
    chargers: std::collections::BTreeSet<usize>,
    site: bool,
}

/// SCADA commands awaiting their outcome, to report them with it (CONTRACT §5 `commands`).
#[derive(Clone, Debug, Default)]
pub(super) struct CommandsInFlight {
    commands: HashMap<u64, ScadaCommand>,
}

/// Bounds the table should outcomes ever go missing; the station bounds commands per link.
const MAX_COMMANDS_IN_FLIGHT: usize = 10_000;

impl CommandsInFlight {
    pub(super) fn record(&mut self, command: &ScadaCommand) {
        if self.commands.len() < MAX_COMMANDS_IN_FLIGHT {
            self.commands.insert(command.id, *command);
        }
    }
}

fn command_value(action: &CommandAction) -> Option<f64> {
    match *action {
        CommandAction::Single(on) | CommandAction::Double(on) => Some(if on { 1.0 } else { 0.0 }),
        CommandAction::SetpointFloat(v) => Some(f64::from(v)),
        CommandAction::SetpointScaled(v) => Some(f64::from(v)),
        CommandAction::SetpointNormalized(v) => Some(f64::from(v)),
        CommandAction::Bitstring(v) => Some(f64::from(v)),
        CommandAction::Step(_) | CommandAction::Read => None,
    }
}

impl Engine {
    /// Appends a command report for every SCADA command `out` completes.
    pub(super) fn report_commands(&mut self, now: DateTime<Utc>, out: &mut Vec<Output>) {
        if !self.config.telemetry {
            return;
        }
        let reports: Vec<Output> = out
            .iter()
            .filter_map(|o| match o {
                Output::CommandDone { id, outcome } => {
                    let command = self.commands_in_flight.commands.remove(id)?;
                    let charger = self
                        .charger_of(command.ioa)
                        .map(|i| self.chargers[i].settings.block.id.clone());
                    let reason = match outcome {
                        CommandOutcome::Rejected(reason) => Some(reason.clone()),
                        _ => None,
                    };
                    Some(Output::Telemetry(Telemetry::Command(CommandReport {
                        ts: now,
                        ioa: command.ioa,
                        type_id: command.type_id as u8,
                        value: command_value(&command.action),
                        charger,
                        positive: reason.is_none(),
                        reason,
                    })))
                }
                _ => None,
            })
            .collect();
        out.extend(reports);
    }

    /// Charger `index` (and with it the site) changed: snapshots at the next tick.
    pub(super) fn touch(&mut self, index: usize) {
        self.dirty.chargers.insert(index);
        self.dirty.site = true;
    }

    pub(super) fn touch_site(&mut self) {
        self.dirty.site = true;
    }

    pub(super) fn snapshots(&mut self, now: DateTime<Utc>) -> Vec<Output> {
        let dirty = std::mem::take(&mut self.dirty);
        if !self.config.telemetry {
            return Vec::new();
        }
        let mut out: Vec<Output> = dirty
            .chargers
            .into_iter()
            .filter_map(|i| self.chargers.get(i))
            .map(|c| Output::Telemetry(Telemetry::Charger(c.state_report(now))))
            .collect();
        if dirty.site {
            out.push(Output::Telemetry(Telemetry::Site(self.site_report(now))));
        }
        out
    }

    /// Every snapshot is due, e.g. after start-up.
    pub(super) fn touch_all(&mut self) {
        for index in 0..self.chargers.len() {
            self.touch(index);
        }
        self.touch_site();
    }

    fn site_report(&self, now: DateTime<Utc>) -> SiteReport {
        let (power_kw, energy_wh) = self.site_totals.values();
        SiteReport {
            power_kw,
            energy_wh,
            limit_kw: if self.site.failsafe() {
                self.config.failsafe_limit_kw
            } else {
                self.site_limit_kw
            },
            failsafe: self.site.failsafe(),
            chargers_online: u32::try_from(self.chargers.iter().filter(|c| c.online).count())
                .unwrap_or(u32::MAX),
            ts: now,
        }
    }

    /// The event and sample reports of a charger event of charger `index`.
    pub(super) fn event_reports(
        &self,
        now: DateTime<Utc>,
        index: usize,
        event: &ChargerEvent,
    ) -> Vec<Output> {
        if !self.config.telemetry {
            return Vec::new();
        }
        let Some(state) = self.chargers.get(index) else {
            return Vec::new();
        };
        let id = &state.settings.block.id;
        let notice = |ts: Option<DateTime<Utc>>, event: ChargerNotice| {
            Output::Telemetry(Telemetry::Event(EventReport {
                charger: id.clone(),
                ts: sample_time(ts, now),
                event,
            }))
        };
        match event {
            ChargerEvent::Meter { sample, .. } => {
                let ts = sample_time(sample.timestamp, now);
                sample
                    .values
                    .iter()
                    .map(|value| {
                        let (number, valid) = match &value.value {
                            SampleValue::Valid(v) => (Some(*v), true),
                            SampleValue::Invalid { .. } => (None, false),
                        };
                        Output::Telemetry(Telemetry::Sample(SampleReport {
                            charger: id.clone(),
                            connector: sample.connector,
                            ts,
                            measurand: measurand_name(&value.measurand).to_string(),
                            value: number,
                            unit: value.unit.clone(),
                            valid,
                        }))
                    })
                    .collect()
            }
            ChargerEvent::Connected { .. } => vec![notice(None, ChargerNotice::Connected)],
            ChargerEvent::Disconnected { .. } => vec![notice(None, ChargerNotice::Disconnected)],
            ChargerEvent::Booted { vendor, model, .. } => vec![notice(
                None,
                ChargerNotice::Booted {
                    vendor: vendor.clone(),
                    model: model.clone(),
                },
            )],
            ChargerEvent::Status {
                connector,
                status,
                error_code,
                timestamp,
                ..
            } => vec![notice(
                *timestamp,
                ChargerNotice::Status {
                    connector: *connector,
                    status: status_name(*status).to_string(),
                    error_code: error_code.clone(),
                },
            )],
            ChargerEvent::TransactionStarted {
                connector,
                transaction_id,
                id_tag,
                timestamp,
                ..
            } => vec![notice(
                *timestamp,
                ChargerNotice::TransactionStarted {
                    connector: *connector,
                    transaction_id: transaction_id.clone(),
                    id_tag: id_tag.clone(),
                },
            )],
            ChargerEvent::TransactionEnded {
                connector,
                transaction_id,
                meter_stop_wh,
                reason,
                timestamp,
                ..
            } => vec![notice(
                *timestamp,
                ChargerNotice::TransactionEnded {
                    connector: *connector,
                    transaction_id: transaction_id.clone(),
                    meter_stop_wh: *meter_stop_wh,
                    reason: reason.clone(),
                },
            )],
            ChargerEvent::Alarm {
                connector,
                name,
                active,
                timestamp,
                ..
            } => vec![notice(
                *timestamp,
                ChargerNotice::Alarm {
                    connector: *connector,
                    name: name.clone(),
                    active: *active,
                },
            )],
            ChargerEvent::Coerced { kind, detail, .. } => vec![notice(
                None,
                ChargerNotice::Coercion {
                    kind: format!("{kind:?}"),
                    detail: detail.clone(),
                },
            )],
            ChargerEvent::TransactionUpdated { .. } | ChargerEvent::CommandFinished { .. } => {
                Vec::new()
            }
        }
    }

    /// A limit setpoint above `max_kw` that will be clamped (CONTRACT §3: log and MQTT event).
    pub(super) fn clamp_report(
        &self,
        now: DateTime<Utc>,
        index: usize,
        command: &ScadaCommand,
    ) -> Option<Output> {
        if !self.config.telemetry {
            return None;
        }
        let state = self.chargers.get(index)?;
        let offset = command.ioa.checked_sub(state.settings.block.ioa_base)?;
        let requested_kw = match (offset, command.action) {
            (charger::POWER_SETPOINT, CommandAction::SetpointFloat(kw)) => f64::from(kw),
            (charger::CURRENT_SETPOINT, CommandAction::SetpointScaled(amps)) => {
                kw_from_amps(f64::from(amps), state.settings.phases)
            }
            _ => return None,
        };
        let max_kw = state.settings.max_kw;
        (requested_kw > max_kw).then(|| {
            Output::Telemetry(Telemetry::Event(EventReport {
                charger: state.settings.block.id.clone(),
                ts: now,
                event: ChargerNotice::LimitClamped {
                    requested_kw,
                    applied_kw: max_kw,
                },
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asdu::TypeId;
    use crate::mapping::charger::{MeterSample, SampleContext, SampledValue};
    use crate::mapping::engine::tests::connected_engine;
    use crate::mapping::engine::Input;
    use crate::station::CommandRequest;

    fn telemetry(outputs: &[Output]) -> Vec<&Telemetry> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Telemetry(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    fn sample(values: Vec<SampledValue>) -> Input {
        Input::Charger(ChargerEvent::Meter {
            charger: "CP001".into(),
            sample: MeterSample {
                connector: 1,
                timestamp: None,
                context: SampleContext::Periodic,
                transaction_id: None,
                replayed: false,
                values,
            },
        })
    }

    #[test]
    fn every_sampled_value_is_reported_and_the_state_follows_at_the_tick() {
        let (mut engine, now) = connected_engine();
        engine.handle(
            now,
            Input::Tick {
                scada_present: true,
            },
        );
        let out = engine.handle(
            now,
            sample(vec![
                SampledValue {
                    measurand: Measurand::PowerActiveImport,
                    phase: None,
                    value: SampleValue::Valid(14_400.0),
                    unit: "W".into(),
                },
                SampledValue {
                    measurand: Measurand::EnergyActiveImportRegister,
                    phase: None,
                    value: SampleValue::Invalid {
                        raw: "n/a".into(),
                        reason: "not a number".into(),
                    },
                    unit: "Wh".into(),
                },
            ]),
        );
        let samples: Vec<_> = telemetry(&out)
            .into_iter()
            .filter_map(|t| match t {
                Telemetry::Sample(s) => Some((s.measurand.as_str(), s.value, s.valid)),
                _ => None,
            })
            .collect();
        assert_eq!(
            samples,
            vec![
                ("Power.Active.Import", Some(14_400.0), true),
                ("Energy.Active.Import.Register", None, false)
            ]
        );
        assert!(
            !telemetry(&out).iter().any(|t| t.is_state()),
            "snapshots wait for the tick"
        );
        let tick = engine.handle(
            now,
            Input::Tick {
                scada_present: true,
            },
        );
        let state = telemetry(&tick)
            .into_iter()
            .find_map(|t| match t {
                Telemetry::Charger(c) => Some(c.clone()),
                _ => None,
            })
            .expect("a charger snapshot after the tick");
        assert!(state.online);
        assert_eq!(state.power_kw.map(|kw| (kw * 10.0).round()), Some(144.0));
        assert_eq!(state.connectors.len(), 2);
        assert!(telemetry(&tick)
            .iter()
            .any(|t| matches!(t, Telemetry::Site(_))));
        let quiet = engine.handle(
            now,
            Input::Tick {
                scada_present: true,
            },
        );
        assert!(
            telemetry(&quiet).is_empty(),
            "nothing changed, nothing sent"
        );
    }

    #[test]
    fn without_a_consumer_no_reports_are_built() {
        let (mut engine, now) = connected_engine();
        engine.config.telemetry = false;
        let out = engine.handle(
            now,
            sample(vec![SampledValue {
                measurand: Measurand::PowerActiveImport,
                phase: None,
                value: SampleValue::Valid(14_400.0),
                unit: "W".into(),
            }]),
        );
        assert!(telemetry(&out).is_empty());
        assert!(
            out.iter().any(|o| matches!(o, Output::Point(_))),
            "points still flow"
        );
        let tick = engine.handle(
            now,
            Input::Tick {
                scada_present: true,
            },
        );
        assert!(telemetry(&tick).is_empty());
    }

    #[test]
    fn a_refused_command_is_reported_with_its_reason() {
        let (mut engine, now) = connected_engine();
        let out = engine.handle(
            now,
            Input::Scada(CommandRequest {
                id: 9,
                session: 1,
                ioa: 1090,
                type_id: TypeId::C_SE_NC_1,
                action: CommandAction::SetpointFloat(-1.0),
                selected: false,
            }),
        );
        let report = telemetry(&out)
            .into_iter()
            .find_map(|t| match t {
                Telemetry::Command(c) => Some(c.clone()),
                _ => None,
            })
            .expect("a command report");
        assert_eq!(report.ioa, 1090);
        assert_eq!(report.type_id, 50);
        assert_eq!(report.value, Some(-1.0));
        assert_eq!(report.charger.as_deref(), Some("CP001"));
        assert!(!report.positive);
        assert!(report.reason.is_some());
    }
}
