//! Site totals (CONTRACT §3 site offsets 0 and 1): the active power of the online chargers
//! and the energy of all chargers, kept as running sums so an event costs the same with
//! ten chargers or ten thousand.

use chrono::{DateTime, Utc};

use super::{point, ChargerState, Engine, Output};
use crate::mapping::layout::{charger, site};
use crate::station::PointValue;

/// What one charger adds to the site totals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Contribution {
    power_kw: f64,
    energy_wh: u64,
}

#[derive(Clone, Debug, Default)]
pub(super) struct SiteTotals {
    power_kw: f64,
    energy_wh: u64,
    reported_power_kw: Option<f64>,
    reported_energy_wh: Option<u64>,
}

impl ChargerState {
    fn contribution(&self) -> Contribution {
        let energy_wh = match self.monitor_value(charger::ENERGY) {
            Some(PointValue::Counter(wh)) => wh,
            _ => 0,
        };
        Contribution {
            power_kw: if self.online {
                self.total_power_kw().unwrap_or(0.0)
            } else {
                0.0
            },
            energy_wh,
        }
    }
}

impl SiteTotals {
    /// Power (kW) and energy (Wh) as last reported; `None` before the first report.
    pub(super) fn values(&self) -> (Option<f64>, Option<f64>) {
        (
            self.reported_power_kw,
            self.reported_energy_wh.map(|wh| wh as f64),
        )
    }
}

impl Engine {
    /// Re-counts charger `index` in the site totals and reports what moved.
    pub(super) fn update_site_totals(&mut self, now: DateTime<Utc>, index: usize) -> Vec<Output> {
        let state = &mut self.chargers[index];
        let new = state.contribution();
        let old = std::mem::replace(&mut state.site_contribution, new);
        let totals = &mut self.site_totals;
        totals.power_kw += new.power_kw - old.power_kw;
        totals.energy_wh = totals.energy_wh.saturating_sub(old.energy_wh) + new.energy_wh;
        let base = self.config.site_ioa_base;
        let mut out = Vec::new();
        // Rounding drift of the running sum stays far below the deadband.
        let power = totals.power_kw.max(0.0);
        let moved = totals
            .reported_power_kw
            .is_none_or(|last| (power - last).abs() >= self.config.power_deadband_kw);
        if moved && (totals.reported_power_kw.is_some() || power > 0.0) {
            totals.reported_power_kw = Some(power);
            out.push(point(
                now,
                base + site::POWER,
                PointValue::Float(power as f32),
            ));
        }
        if totals.reported_energy_wh != Some(totals.energy_wh) && totals.energy_wh > 0 {
            totals.reported_energy_wh = Some(totals.energy_wh);
            out.push(point(
                now,
                base + site::ENERGY,
                PointValue::Counter(totals.energy_wh),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::charger::{
        ChargerEvent, Measurand, MeterSample, SampleContext, SampleValue, SampledValue,
    };
    use crate::mapping::engine::{ChargerSettings, EngineConfig, Input};
    use crate::mapping::layout::ChargerBlock;

    fn engine() -> Engine {
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
            failsafe_limit_kw: None,
            scada_loss_timeout: None,
            power_deadband_kw: 0.1,
            current_deadband_a: 0.1,
            unknown: None,
            chargers: vec![charger("A", 1000), charger("B", 1100)],
            meters: Vec::new(),
            telemetry: true,
        })
    }

    fn sample(id: &str, kw: f64, wh: f64) -> Input {
        let value = |measurand, v, unit: &str| SampledValue {
            measurand,
            phase: None,
            value: SampleValue::Valid(v),
            unit: unit.into(),
        };
        Input::Charger(ChargerEvent::Meter {
            charger: id.into(),
            sample: MeterSample {
                connector: 1,
                timestamp: None,
                context: SampleContext::Periodic,
                transaction_id: None,
                replayed: false,
                values: vec![
                    value(Measurand::PowerActiveImport, kw * 1000.0, "W"),
                    value(Measurand::EnergyActiveImportRegister, wh, "Wh"),
                ],
            },
        })
    }

    fn site_value(outputs: &[Output], ioa: u32) -> Option<PointValue> {
        outputs.iter().rev().find_map(|o| match o {
            Output::Point(p) if p.ioa == ioa => p.value,
            _ => None,
        })
    }

    #[test]
    fn site_totals_add_up_the_chargers_and_drop_the_power_of_a_lost_one() {
        let mut engine = engine();
        let now = Utc::now();
        for id in ["A", "B"] {
            engine.handle(
                now,
                Input::Charger(ChargerEvent::Connected { charger: id.into() }),
            );
        }
        engine.handle(now, sample("A", 7.0, 1_000.0));
        let out = engine.handle(now, sample("B", 11.0, 2_500.0));
        assert_eq!(site_value(&out, 1), Some(PointValue::Float(18.0)));
        assert_eq!(site_value(&out, 2), Some(PointValue::Counter(3_500)));
        let lost = engine.handle(
            now,
            Input::Charger(ChargerEvent::Disconnected {
                charger: "B".into(),
            }),
        );
        assert_eq!(site_value(&lost, 1), Some(PointValue::Float(7.0)));
        assert_eq!(
            site_value(&lost, 2),
            None,
            "energy counters keep counting offline chargers"
        );
    }
}
