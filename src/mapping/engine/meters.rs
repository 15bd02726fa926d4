//! Energy meter points (CONTRACT §3 "Meter points", §7 "Modbus") and the grid meter's
//! non-charger load for site power management (CONTRACT §7 "Site power management").
//!
//! A failed poll keeps every value and marks it IV, with the communicating point 0 (always
//! good quality); no successful poll for three intervals marks the values NT. A value is
//! never invented: a measurand the meter has no register for stays IV.

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::{Engine, Output};
use crate::asdu::Quality;
use crate::mapping::layout::meter;
use crate::mapping::meter::{MeterEvent, MeterReading};
use crate::mapping::telemetry::{MeterReport, Telemetry};
use crate::station::{PointUpdate, PointValue};

/// Polls without success before the values are marked not topical.
const STALE_AFTER_POLLS: i32 = 3;
/// A change of the non-charger load below this does not re-allocate shares.
const LOAD_CHANGE_KW: f64 = 0.5;

#[derive(Clone, Debug, PartialEq)]
pub struct MeterSettings {
    pub name: String,
    pub ioa_base: u32,
    pub poll_interval: Duration,
    /// Its power is the load at the grid connection point.
    pub grid_meter: bool,
}

#[derive(Clone, Debug)]
pub(super) struct MeterState {
    settings: MeterSettings,
    /// The last good values.
    last: MeterReading,
    valid: bool,
    /// The current failure was already published (points IV, not communicating).
    failure_shown: bool,
    stale: bool,
    /// Start-up, then the last successful poll.
    heard: Option<DateTime<Utc>>,
}

impl MeterState {
    pub(super) fn new(settings: MeterSettings) -> MeterState {
        MeterState {
            settings,
            last: MeterReading::default(),
            valid: false,
            failure_shown: false,
            stale: false,
            heard: None,
        }
    }

    fn ioa(&self, offset: u32) -> u32 {
        self.settings.ioa_base + offset
    }

    /// The value points with what each holds now.
    fn values(&self) -> [(u32, Option<PointValue>); 4] {
        let float = |v: Option<f64>| v.map(|v| PointValue::Float(v as f32));
        [
            (meter::POWER, float(self.last.power_w.map(|w| w / 1000.0))),
            (
                meter::ENERGY,
                self.last
                    .energy_wh
                    .filter(|wh| *wh >= 0.0)
                    .map(|wh| PointValue::Counter(wh.round() as u64)),
            ),
            (meter::CURRENT, float(self.last.current_a)),
            (meter::VOLTAGE, float(self.last.voltage_v)),
        ]
    }

    fn report(&self, now: DateTime<Utc>) -> Output {
        Output::Telemetry(Telemetry::Meter(MeterReport {
            name: self.settings.name.clone(),
            power_kw: self.last.power_w.map(|w| w / 1000.0),
            energy_wh: self.last.energy_wh,
            current_a: self.last.current_a,
            voltage_v: self.last.voltage_v,
            valid: self.valid,
            ts: now,
        }))
    }

    fn communicating(&self, now: DateTime<Utc>, yes: bool) -> Output {
        Output::Point(PointUpdate {
            ioa: self.ioa(meter::COMMUNICATING),
            value: Some(PointValue::Single(yes)),
            quality: Quality::GOOD,
            time: now,
        })
    }

    /// Every value point with `quality`; a value never read stays IV.
    fn values_with(&self, time: DateTime<Utc>, quality: Quality, with_values: bool) -> Vec<Output> {
        self.values()
            .into_iter()
            .map(|(offset, value)| {
                let quality = Quality {
                    invalid: quality.invalid || value.is_none(),
                    ..quality
                };
                Output::Point(PointUpdate {
                    ioa: self.ioa(offset),
                    value: if with_values { value } else { None },
                    quality,
                    time,
                })
            })
            .collect()
    }

    fn reading(
        &mut self,
        now: DateTime<Utc>,
        time: DateTime<Utc>,
        reading: MeterReading,
    ) -> Vec<Output> {
        if self.failure_shown {
            info!(meter = %self.settings.name, "meter communicating again");
        }
        self.last = MeterReading {
            power_w: reading.power_w.or(self.last.power_w),
            energy_wh: reading.energy_wh.or(self.last.energy_wh),
            current_a: reading.current_a.or(self.last.current_a),
            voltage_v: reading.voltage_v.or(self.last.voltage_v),
        };
        self.valid = true;
        self.failure_shown = false;
        self.stale = false;
        self.heard = Some(now);
        let mut out = self.values_with(time, Quality::GOOD, true);
        out.push(self.communicating(now, true));
        out.push(self.report(time));
        out
    }

    fn failed(&mut self, now: DateTime<Utc>, error: &str) -> Vec<Output> {
        if self.failure_shown {
            return Vec::new();
        }
        if self.valid {
            warn!(meter = %self.settings.name, %error, "meter poll failed: its points are invalid until it answers");
        } else {
            warn!(meter = %self.settings.name, %error, "meter does not answer");
        }
        self.valid = false;
        self.failure_shown = true;
        let quality = Quality {
            invalid: true,
            not_topical: self.stale,
            ..Quality::GOOD
        };
        let mut out = self.values_with(now, quality, false);
        out.push(self.communicating(now, false));
        out.push(self.report(now));
        out
    }

    fn tick(&mut self, now: DateTime<Utc>) -> Vec<Output> {
        let heard = *self.heard.get_or_insert(now);
        if self.stale || now - heard < self.settings.poll_interval * STALE_AFTER_POLLS {
            return Vec::new();
        }
        self.stale = true;
        let quality = Quality {
            invalid: !self.valid,
            not_topical: true,
            ..Quality::GOOD
        };
        let mut out = self.values_with(now, quality, false);
        if !self.failure_shown {
            // Silence for three intervals is a communication failure too.
            self.valid = false;
            self.failure_shown = true;
            out.push(self.communicating(now, false));
            out.push(self.report(now));
        }
        out
    }
}

impl Engine {
    /// Points of every meter at start-up: values IV until read, not communicating.
    pub(super) fn initial_meter_points(&self, now: DateTime<Utc>) -> Vec<Output> {
        self.meters
            .iter()
            .map(|m| m.communicating(now, false))
            .collect()
    }

    pub(super) fn meter_event(&mut self, now: DateTime<Utc>, event: MeterEvent) -> Vec<Output> {
        let index = event.meter();
        let load_before = self.non_charger_load_kw();
        let Some(state) = self.meters.get_mut(index) else {
            warn!(meter = index, "reading of an unknown meter ignored");
            return Vec::new();
        };
        let out = match event {
            MeterEvent::Reading { time, reading, .. } => state.reading(now, time, reading),
            MeterEvent::Failed { error, .. } => state.failed(now, &error),
        };
        self.grid_load_changed(load_before);
        out
    }

    pub(super) fn meters_tick(&mut self, now: DateTime<Utc>) -> Vec<Output> {
        let load_before = self.non_charger_load_kw();
        let out: Vec<Output> = self.meters.iter_mut().flat_map(|m| m.tick(now)).collect();
        self.grid_load_changed(load_before);
        out
    }

    /// The load at the grid connection point that is not a charger (grid power − the sum
    /// of charger power), from a grid meter with a valid reading; never negative.
    pub(super) fn non_charger_load_kw(&self) -> Option<f64> {
        let grid = self
            .meters
            .iter()
            .find(|m| m.settings.grid_meter && m.valid)?;
        let grid_kw = grid.last.power_w? / 1000.0;
        let chargers_kw: f64 = self
            .chargers
            .iter()
            .filter(|c| c.online)
            .filter_map(|c| c.total_power_kw())
            .sum();
        Some((grid_kw - chargers_kw).max(0.0))
    }

    fn grid_load_changed(&mut self, before: Option<f64>) {
        let after = self.non_charger_load_kw();
        let moved = match (before, after) {
            (Some(a), Some(b)) => (a - b).abs() > LOAD_CHANGE_KW,
            (None, None) => false,
            _ => true,
        };
        if moved {
            self.demand_changed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::charger::Measurand;
    use crate::mapping::charger::{
        ChargerCommand, ChargerEvent, MeterSample, SampleContext, SampleValue, SampledValue,
    };
    use crate::mapping::engine::{ChargerSettings, EngineConfig, Input};
    use crate::mapping::layout::ChargerBlock;

    fn engine(grid_meter: bool, site_limit_kw: Option<f64>) -> Engine {
        Engine::new(EngineConfig {
            site_ioa_base: 1,
            site_limit_kw,
            large_change_kw: 50.0,
            failsafe_limit_kw: None,
            scada_loss_timeout: None,
            power_deadband_kw: 0.1,
            current_deadband_a: 0.1,
            unknown: None,
            chargers: vec![ChargerSettings {
                block: ChargerBlock {
                    id: "A".into(),
                    ioa_base: 1000,
                    connectors: 1,
                },
                max_kw: 22.0,
                phases: 3,
            }],
            telemetry: true,
            meters: vec![MeterSettings {
                name: "grid".into(),
                ioa_base: 900,
                poll_interval: Duration::seconds(1),
                grid_meter,
            }],
        })
    }

    fn reading(now: DateTime<Utc>, power_w: f64) -> Input {
        Input::Meter(MeterEvent::Reading {
            meter: 0,
            time: now,
            reading: MeterReading {
                power_w: Some(power_w),
                energy_wh: Some(1_234_567.4),
                current_a: Some(31.5),
                voltage_v: None,
            },
        })
    }

    fn failed(now: DateTime<Utc>) -> Input {
        Input::Meter(MeterEvent::Failed {
            meter: 0,
            time: now,
            error: "Modbus exception 2 (illegal data address)".into(),
        })
    }

    fn update(outputs: &[Output], ioa: u32) -> Option<PointUpdate> {
        outputs.iter().rev().find_map(|o| match o {
            Output::Point(p) if p.ioa == ioa => Some(*p),
            _ => None,
        })
    }

    #[test]
    fn a_reading_fills_the_meter_points_in_kw_wh_a() {
        let mut engine = engine(false, None);
        let now = Utc::now();
        let start = engine.handle(now, Input::Start);
        assert_eq!(
            update(&start, 904).map(|p| (p.value, p.quality)),
            Some((Some(PointValue::Single(false)), Quality::GOOD))
        );
        let out = engine.handle(now, reading(now, 43_210.0));
        assert_eq!(
            update(&out, 900).and_then(|p| p.value),
            Some(PointValue::Float(43.21))
        );
        assert_eq!(
            update(&out, 901).and_then(|p| p.value),
            Some(PointValue::Counter(1_234_567))
        );
        assert_eq!(
            update(&out, 902).and_then(|p| p.value),
            Some(PointValue::Float(31.5))
        );
        // No voltage register: stays IV, never 0.
        let voltage = update(&out, 903).expect("voltage point");
        assert_eq!(voltage.value, None);
        assert!(voltage.quality.invalid);
        assert_eq!(
            update(&out, 904).and_then(|p| p.value),
            Some(PointValue::Single(true))
        );
        assert!(out.iter().any(|o| matches!(o,
            Output::Telemetry(Telemetry::Meter(MeterReport { valid: true, power_kw: Some(kw), .. }))
                if (*kw - 43.21).abs() < 1e-9)));
    }

    #[test]
    fn a_failed_poll_keeps_the_values_with_iv_and_clears_communicating() {
        let mut engine = engine(false, None);
        let now = Utc::now();
        engine.handle(now, reading(now, 1_000.0));
        let out = engine.handle(now, failed(now));
        let power = update(&out, 900).expect("power point");
        assert_eq!(power.value, None, "the last value is kept, not replaced");
        assert!(power.quality.invalid);
        let communicating = update(&out, 904).expect("communicating point");
        assert_eq!(communicating.value, Some(PointValue::Single(false)));
        assert_eq!(communicating.quality, Quality::GOOD);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Telemetry(Telemetry::Meter(MeterReport {
                valid: false,
                power_kw: Some(_),
                ..
            }))
        )));
        // Repeated failures change nothing.
        assert!(engine.handle(now, failed(now)).is_empty());
        let back = engine.handle(now, reading(now, 2_000.0));
        assert_eq!(update(&back, 900).map(|p| p.quality), Some(Quality::GOOD));
    }

    #[test]
    fn three_intervals_without_a_reading_mark_the_values_not_topical() {
        let mut engine = engine(false, None);
        let now = Utc::now();
        engine.handle(now, reading(now, 1_000.0));
        let early = engine.handle(
            now + Duration::seconds(2),
            Input::Tick {
                scada_present: true,
            },
        );
        assert_eq!(update(&early, 900), None);
        let late = engine.handle(
            now + Duration::seconds(3),
            Input::Tick {
                scada_present: true,
            },
        );
        let power = update(&late, 900).expect("power point");
        assert!(power.quality.not_topical);
        assert!(!power.quality.invalid);
        assert_eq!(
            update(&late, 904).and_then(|p| p.value),
            Some(PointValue::Single(false))
        );
    }

    fn charging(now: DateTime<Utc>, engine: &mut Engine, kw: f64) -> Vec<Output> {
        let mut out = engine.handle(
            now,
            Input::Charger(ChargerEvent::Connected {
                charger: "A".into(),
            }),
        );
        out.extend(engine.handle(
            now,
            Input::Charger(ChargerEvent::Meter {
                charger: "A".into(),
                sample: MeterSample {
                    connector: 1,
                    timestamp: None,
                    context: SampleContext::Periodic,
                    transaction_id: None,
                    replayed: false,
                    values: vec![SampledValue {
                        measurand: Measurand::PowerActiveImport,
                        phase: None,
                        value: SampleValue::Valid(kw * 1000.0),
                        unit: "W".into(),
                    }],
                },
            }),
        ));
        out
    }

    fn limits_sent(outputs: &[Output]) -> Vec<f64> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Charger(request) => match request.command {
                    ChargerCommand::SetLimit { limit, .. } => Some(limit / 1000.0),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_grid_meter_takes_the_other_loads_out_of_the_chargers_budget() {
        let mut engine = engine(true, Some(40.0));
        let now = Utc::now();
        let first = charging(now, &mut engine, 10.0);
        assert_eq!(
            limits_sent(&first),
            vec![22.0],
            "no grid reading yet: site limit"
        );
        // 35 kW at the grid connection, 10 of them the charger: 25 kW of other load.
        let later = now + Duration::seconds(6);
        engine.handle(later, reading(later, 35_000.0));
        assert_eq!(engine.non_charger_load_kw(), Some(25.0));
        let later = engine.handle(
            later,
            Input::Tick {
                scada_present: true,
            },
        );
        assert_eq!(limits_sent(&later), vec![15.0]);
        // The meter fails: its last reading no longer counts.
        engine.handle(now, failed(now));
        assert_eq!(engine.non_charger_load_kw(), None);
    }

    #[test]
    fn a_grid_meter_is_ignored_by_the_budget_when_it_is_not_flagged() {
        let mut engine = engine(false, Some(40.0));
        let now = Utc::now();
        engine.handle(now, reading(now, 35_000.0));
        assert_eq!(engine.non_charger_load_kw(), None);
    }
}
