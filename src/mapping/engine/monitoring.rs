//! The monitoring direction of CONTRACT §3 for meter samples: connector and charger power
//! (kW), active import energy (Wh counters) and current (A, highest phase), with the
//! quality rules of MAPPING.md — an unparseable sample sets IV and keeps the last good
//! value, never 0; the next good sample clears it — deadbands against 1 Hz meter spam, and
//! power derived from energy register deltas when a charger reports no power.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::persistence::counter_key;
use super::{ChargerState, Output, Persist};
use crate::asdu::Quality;
use crate::mapping::charger::{Measurand, MeterSample, SampleValue};
use crate::mapping::layout::charger;
use crate::station::{PointUpdate, PointValue};

/// Changes smaller than these are not reported (CONTRACT §3 deadbands, configurable).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Deadbands {
    pub power_kw: f64,
    pub current_a: f64,
}
/// A charger's sample time is used when it lies within the last 24 h and at most 60 s ahead.
const MAX_SAMPLE_AGE_H: i64 = 24;
const MAX_SAMPLE_LEAD_S: i64 = 60;

/// What was last reported on one point, to apply deadbands and restore quality.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Reported {
    value: Option<PointValue>,
    invalid: bool,
}

/// Per connector (0 = the station's own meter) state of the meter mapping.
#[derive(Clone, Debug, Default)]
struct ConnectorMeter {
    power_kw: Option<f64>,
    power_invalid: bool,
    energy_wh: Option<u64>,
    energy_invalid: bool,
    /// Last energy register sample, for deriving power when none is reported.
    last_register: Option<(DateTime<Utc>, f64)>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Monitor {
    connectors: HashMap<u8, ConnectorMeter>,
    reported: HashMap<u32, Reported>,
}

/// The time tag for a sample (CONTRACT §3 "Time tags").
pub(super) fn sample_time(sample: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match sample {
        Some(t)
            if t >= now - Duration::hours(MAX_SAMPLE_AGE_H)
                && t <= now + Duration::seconds(MAX_SAMPLE_LEAD_S) =>
        {
            t
        }
        _ => now,
    }
}

impl ChargerState {
    /// Reports `value` (or IV with the last value when `None`) on `offset`, unless it is
    /// within the deadband of what was last reported with the same quality.
    pub(super) fn report(
        &mut self,
        out: &mut Vec<Output>,
        offset: u32,
        value: Option<PointValue>,
        deadband: f64,
        time: DateTime<Utc>,
    ) {
        let last = self
            .monitor
            .reported
            .get(&offset)
            .copied()
            .unwrap_or_default();
        let invalid = value.is_none();
        if invalid == last.invalid {
            match (value, last.value) {
                (None, _) => return,
                (Some(PointValue::Float(new)), Some(PointValue::Float(old)))
                    if f64::from((new - old).abs()) < deadband =>
                {
                    return
                }
                (Some(new), Some(old)) if new == old => return,
                _ => {}
            }
        }
        let recorded = Reported {
            value: value.or(last.value),
            invalid,
        };
        self.monitor.reported.insert(offset, recorded);
        if let Some(PointValue::Counter(wh)) = value {
            out.push(Output::Persist(Persist::Counter {
                key: counter_key(&self.settings.block.id, offset),
                wh,
            }));
        }
        out.push(Output::Point(PointUpdate {
            ioa: self.settings.block.ioa_base + offset,
            value,
            quality: Quality {
                invalid,
                ..Quality::GOOD
            },
            time,
        }));
    }

    /// Takes back persisted counters of this charger; returns (offset, Wh) to serve.
    pub(super) fn restore_counters(
        &mut self,
        id: &str,
        counters: &std::collections::BTreeMap<String, u64>,
    ) -> Vec<(u32, u64)> {
        let mut restored = Vec::new();
        let connectors = self.settings.block.connectors.min(charger::MAX_CONNECTORS);
        let offsets = std::iter::once((0, charger::ENERGY))
            .chain((1..=connectors).map(|n| (n, charger::connector(n, charger::CONNECTOR_ENERGY))));
        for (connector, offset) in offsets {
            let Some(wh) = counters.get(&counter_key(id, offset)).copied() else {
                continue;
            };
            if connector > 0 {
                self.monitor
                    .connectors
                    .entry(connector)
                    .or_default()
                    .energy_wh = Some(wh);
            }
            self.monitor.reported.insert(
                offset,
                Reported {
                    value: Some(PointValue::Counter(wh)),
                    invalid: false,
                },
            );
            restored.push((offset, wh));
        }
        restored
    }

    /// The last value reported on `offset`, valid or not.
    pub(super) fn monitor_value(&self, offset: u32) -> Option<PointValue> {
        self.monitor.reported.get(&offset).and_then(|r| r.value)
    }

    /// The charger's power now, kW, when known and valid.
    pub(super) fn total_power_kw(&self) -> Option<f64> {
        match self.monitor.reported.get(&charger::POWER) {
            Some(Reported {
                value: Some(PointValue::Float(kw)),
                invalid: false,
            }) => Some(f64::from(*kw)),
            _ => None,
        }
    }

    /// After a reconnection: the last values are topical again (NT cleared), IV kept.
    pub(super) fn restore_quality(&self, now: DateTime<Utc>) -> Vec<Output> {
        self.monitor
            .reported
            .iter()
            .filter(|(_, r)| r.value.is_some())
            .map(|(offset, r)| {
                Output::Point(PointUpdate {
                    ioa: self.settings.block.ioa_base + offset,
                    value: None,
                    quality: Quality {
                        invalid: r.invalid,
                        ..Quality::GOOD
                    },
                    time: now,
                })
            })
            .collect()
    }

    pub(super) fn meter_sample(
        &mut self,
        now: DateTime<Utc>,
        sample: &MeterSample,
        deadbands: Deadbands,
    ) -> Vec<Output> {
        let connector = sample.connector;
        if connector > self.settings.block.connectors.min(charger::MAX_CONNECTORS) {
            return Vec::new();
        }
        let time = sample_time(sample.timestamp, now);
        let mut out = Vec::new();
        let mut power: Option<SampleValue> = None;
        let mut energy: Option<SampleValue> = None;
        let mut current: Option<Result<f64, ()>> = None;
        for value in &sample.values {
            match (&value.measurand, value.phase.as_deref()) {
                (Measurand::PowerActiveImport, None) => power = Some(value.value.clone()),
                (Measurand::EnergyActiveImportRegister, None) => energy = Some(value.value.clone()),
                (Measurand::CurrentImport, _) => {
                    current = Some(match (&value.value, current) {
                        (SampleValue::Invalid { .. }, _) | (_, Some(Err(()))) => Err(()),
                        (SampleValue::Valid(a), Some(Ok(b))) => Ok(a.max(b)),
                        (SampleValue::Valid(a), None) => Ok(*a),
                    })
                }
                _ => {}
            }
        }
        let meter = self.monitor.connectors.entry(connector).or_default();
        // Energy first: it may be needed to derive power.
        let mut derived_power = None;
        match &energy {
            Some(SampleValue::Valid(wh)) if *wh >= 0.0 && wh.is_finite() => {
                if power.is_none() && !sample.replayed {
                    if let Some((t0, wh0)) = meter.last_register {
                        let hours = (time - t0).num_milliseconds() as f64 / 3_600_000.0;
                        // A register that went back (reset, swapped meter) or a sample that
                        // is not newer gives no power.
                        if hours > 0.0 && *wh >= wh0 {
                            derived_power = Some((wh - wh0) / hours / 1000.0);
                        }
                    }
                }
                if !matches!(meter.last_register, Some((t0, _)) if time <= t0) {
                    meter.last_register = Some((time, *wh));
                }
                meter.energy_wh = Some(wh.round() as u64);
                meter.energy_invalid = false;
            }
            Some(_) => meter.energy_invalid = true,
            None => {}
        }
        // Samples replayed from an offline queue update counters, not the current power.
        if !sample.replayed {
            match (&power, derived_power) {
                (Some(SampleValue::Valid(w)), _) if w.is_finite() => {
                    meter.power_kw = Some(w / 1000.0);
                    meter.power_invalid = false;
                }
                (Some(_), _) => meter.power_invalid = true,
                (None, Some(kw)) => {
                    meter.power_kw = Some(kw);
                    meter.power_invalid = false;
                }
                (None, None) => {}
            }
        }
        let snapshot = meter.clone();
        if connector > 0 {
            if !sample.replayed && (power.is_some() || derived_power.is_some()) {
                let value = (!snapshot.power_invalid)
                    .then_some(snapshot.power_kw)
                    .flatten()
                    .map(|kw| PointValue::Float(kw as f32));
                let offset = charger::connector(connector, charger::CONNECTOR_POWER);
                self.report(&mut out, offset, value, deadbands.power_kw, time);
            }
            if energy.is_some() {
                let value = (!snapshot.energy_invalid)
                    .then_some(snapshot.energy_wh)
                    .flatten()
                    .map(PointValue::Counter);
                let offset = charger::connector(connector, charger::CONNECTOR_ENERGY);
                self.report(&mut out, offset, value, 0.0, time);
            }
            if let Some(amps) = current {
                let value = amps.ok().map(|a| PointValue::Float(a as f32));
                let offset = charger::connector(connector, charger::CONNECTOR_CURRENT);
                self.report(&mut out, offset, value, deadbands.current_a, time);
            }
        }
        self.report_totals(&mut out, time, deadbands.power_kw);
        out
    }

    /// Charger totals: the station meter (connector 0) when it reports, else the sum of
    /// the connectors; IV when any part is invalid.
    fn report_totals(&mut self, out: &mut Vec<Output>, time: DateTime<Utc>, deadband_kw: f64) {
        let station = self.monitor.connectors.get(&0).cloned().unwrap_or_default();
        let parts: Vec<ConnectorMeter> = self
            .monitor
            .connectors
            .iter()
            .filter(|(n, _)| **n > 0)
            .map(|(_, m)| m.clone())
            .collect();
        let power = if station.power_kw.is_some() || station.power_invalid {
            (!station.power_invalid)
                .then_some(station.power_kw)
                .flatten()
        } else if parts.iter().any(|m| m.power_invalid) {
            None
        } else if parts.iter().any(|m| m.power_kw.is_some()) {
            Some(parts.iter().filter_map(|m| m.power_kw).sum())
        } else {
            return self.report_energy_total(out, &station, &parts, time);
        };
        self.report(
            out,
            charger::POWER,
            power.map(|kw: f64| PointValue::Float(kw as f32)),
            deadband_kw,
            time,
        );
        self.report_energy_total(out, &station, &parts, time);
    }

    fn report_energy_total(
        &mut self,
        out: &mut Vec<Output>,
        station: &ConnectorMeter,
        parts: &[ConnectorMeter],
        time: DateTime<Utc>,
    ) {
        let energy = if station.energy_wh.is_some() || station.energy_invalid {
            (!station.energy_invalid)
                .then_some(station.energy_wh)
                .flatten()
        } else if parts.iter().any(|m| m.energy_invalid) {
            None
        } else if parts.iter().any(|m| m.energy_wh.is_some()) {
            Some(parts.iter().filter_map(|m| m.energy_wh).sum())
        } else {
            return;
        };
        self.report(
            out,
            charger::ENERGY,
            energy.map(PointValue::Counter),
            0.0,
            time,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{connected_engine, points_of};
    use super::*;
    use crate::mapping::charger::{ChargerEvent, SampleContext, SampledValue};
    use crate::mapping::engine::Input;

    fn value(measurand: Measurand, value: SampleValue, unit: &str) -> SampledValue {
        SampledValue {
            measurand,
            phase: None,
            value,
            unit: unit.into(),
        }
    }

    fn sample(connector: u8, at: DateTime<Utc>, values: Vec<SampledValue>) -> Input {
        Input::Charger(ChargerEvent::Meter {
            charger: "CP001".into(),
            sample: MeterSample {
                connector,
                timestamp: Some(at),
                context: SampleContext::Periodic,
                transaction_id: None,
                replayed: false,
                values,
            },
        })
    }

    fn power(w: f64) -> SampledValue {
        value(Measurand::PowerActiveImport, SampleValue::Valid(w), "W")
    }

    fn garbage(measurand: Measurand) -> SampledValue {
        value(
            measurand,
            SampleValue::Invalid {
                raw: "n/a".into(),
                reason: "not a number".into(),
            },
            "W",
        )
    }

    fn energy(wh: f64) -> SampledValue {
        value(
            Measurand::EnergyActiveImportRegister,
            SampleValue::Valid(wh),
            "Wh",
        )
    }

    #[test]
    fn power_reaches_the_connector_and_the_total_in_kw() {
        let (mut engine, now) = connected_engine();
        let out = engine.handle(now, sample(1, now, vec![power(14_400.0)]));
        let points = points_of(&out);
        assert_eq!(
            points[&1013],
            (Some(PointValue::Float(14.4)), Quality::GOOD)
        );
        assert_eq!(
            points[&1001],
            (Some(PointValue::Float(14.4)), Quality::GOOD)
        );
    }

    #[test]
    fn an_unparseable_sample_sets_iv_and_never_reports_zero() {
        let (mut engine, now) = connected_engine();
        engine.handle(now, sample(1, now, vec![power(14_400.0)]));
        let out = engine.handle(
            now,
            sample(1, now, vec![garbage(Measurand::PowerActiveImport)]),
        );
        let points = points_of(&out);
        let invalid = Quality {
            invalid: true,
            ..Quality::GOOD
        };
        assert_eq!(
            points[&1013],
            (None, invalid),
            "no value: the last good one stays"
        );
        assert_eq!(points[&1001], (None, invalid));
        let out = engine.handle(now, sample(1, now, vec![power(7_400.0)]));
        assert_eq!(
            points_of(&out)[&1013],
            (Some(PointValue::Float(7.4)), Quality::GOOD)
        );
    }

    #[test]
    fn changes_inside_the_deadband_are_not_reported() {
        let (mut engine, now) = connected_engine();
        engine.handle(now, sample(1, now, vec![power(10_000.0)]));
        let out = engine.handle(now, sample(1, now, vec![power(10_050.0)]));
        assert!(!points_of(&out).contains_key(&1013));
        let out = engine.handle(now, sample(1, now, vec![power(10_200.0)]));
        assert!(points_of(&out).contains_key(&1013));
    }

    #[test]
    fn energy_registers_become_counters_and_power_is_derived_from_their_deltas() {
        let (mut engine, now) = connected_engine();
        let t0 = now - Duration::seconds(60);
        engine.handle(now, sample(1, t0, vec![energy(10_000.0)]));
        // 183 Wh in 60 s = 10.98 kW.
        let out = engine.handle(now, sample(1, now, vec![energy(10_183.0)]));
        let points = points_of(&out);
        assert_eq!(points[&1014].0, Some(PointValue::Counter(10_183)));
        assert_eq!(points[&1002].0, Some(PointValue::Counter(10_183)));
        match points[&1013].0 {
            Some(PointValue::Float(kw)) => assert!((kw - 10.98).abs() < 0.01, "{kw}"),
            other => panic!("expected derived power, got {other:?}"),
        }
    }

    #[test]
    fn a_register_reset_or_an_older_sample_derives_no_power() {
        let (mut engine, now) = connected_engine();
        engine.handle(
            now,
            sample(1, now - Duration::seconds(60), vec![energy(10_000.0)]),
        );
        let reset = engine.handle(now, sample(1, now, vec![energy(5.0)]));
        assert!(!points_of(&reset).contains_key(&1013));
        let older = engine.handle(
            now,
            sample(1, now - Duration::seconds(120), vec![energy(9_000.0)]),
        );
        assert!(!points_of(&older).contains_key(&1013));
    }

    #[test]
    fn replayed_samples_update_counters_but_not_power() {
        let (mut engine, now) = connected_engine();
        let Input::Charger(ChargerEvent::Meter {
            charger,
            mut sample,
        }) = sample(1, now, vec![power(11_000.0), energy(500.0)])
        else {
            unreachable!()
        };
        sample.replayed = true;
        let out = engine.handle(now, Input::Charger(ChargerEvent::Meter { charger, sample }));
        let points = points_of(&out);
        assert_eq!(points[&1014].0, Some(PointValue::Counter(500)));
        assert!(!points.contains_key(&1013));
    }

    #[test]
    fn the_highest_phase_current_is_reported() {
        let (mut engine, now) = connected_engine();
        let phase = |p: &str, a: f64| SampledValue {
            measurand: Measurand::CurrentImport,
            phase: Some(p.into()),
            value: SampleValue::Valid(a),
            unit: "A".into(),
        };
        let out = engine.handle(
            now,
            sample(
                2,
                now,
                vec![phase("L1", 15.0), phase("L2", 16.5), phase("L3", 14.0)],
            ),
        );
        assert_eq!(points_of(&out)[&1025].0, Some(PointValue::Float(16.5)));
    }

    #[test]
    fn a_sample_time_outside_the_plausible_window_is_replaced_by_the_receive_time() {
        let now = Utc::now();
        assert_eq!(sample_time(Some(now - Duration::hours(25)), now), now);
        assert_eq!(sample_time(Some(now + Duration::seconds(61)), now), now);
        let recent = now - Duration::minutes(5);
        assert_eq!(sample_time(Some(recent), now), recent);
        assert_eq!(sample_time(None, now), now);
    }
}
