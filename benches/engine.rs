//! Mapping-engine throughput (events/s): `Engine::handle` for meter samples and status
//! notifications of 1,000 configured chargers, with and without a site limit (5,000 kW).
//! Run: `cargo bench --bench engine`. See BENCHMARKS.md, "End-to-end latency".

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use ocpp809::mapping::charger::{
    ChargerEvent, ConnectorStatus, Measurand, MeterSample, SampleContext, SampleValue, SampledValue,
};
use ocpp809::mapping::engine::ChargerSettings;
use ocpp809::mapping::layout::ChargerBlock;
use ocpp809::mapping::{Engine, EngineConfig, Input};

const CHARGERS: usize = 1_000;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

fn charger_id(k: usize) -> String {
    format!("CP{k:04}")
}

fn config(site_limit_kw: Option<f64>) -> EngineConfig {
    EngineConfig {
        site_ioa_base: 1,
        site_limit_kw,
        large_change_kw: 50.0,
        failsafe_limit_kw: None,
        scada_loss_timeout: None,
        power_deadband_kw: 0.1,
        current_deadband_a: 0.1,
        unknown: None,
        chargers: (0..CHARGERS)
            .map(|k| ChargerSettings {
                block: ChargerBlock {
                    id: charger_id(k),
                    ioa_base: 1_000 + 100 * k as u32,
                    connectors: 1,
                },
                max_kw: 22.0,
                phases: 3,
            })
            .collect(),
        meters: Vec::new(),
        // As with MQTT off: the figures are the mapping path alone.
        telemetry: false,
    }
}

/// An engine with every charger connected and booted, connector 1 charging.
fn engine(site_limit_kw: Option<f64>) -> Engine {
    let mut engine = Engine::new(config(site_limit_kw));
    let now = t0();
    black_box(engine.handle(now, Input::Start));
    for k in 0..CHARGERS {
        let charger = charger_id(k);
        black_box(engine.handle(
            now,
            Input::Charger(ChargerEvent::Connected {
                charger: charger.clone(),
            }),
        ));
        black_box(engine.handle(
            now,
            Input::Charger(ChargerEvent::Status {
                charger,
                connector: 1,
                status: ConnectorStatus::Charging,
                error_code: None,
                timestamp: Some(now),
            }),
        ));
    }
    engine
}

fn value(measurand: Measurand, phase: Option<&str>, value: f64, unit: &str) -> SampledValue {
    SampledValue {
        measurand,
        phase: phase.map(str::to_string),
        value: SampleValue::Valid(value),
        unit: unit.to_string(),
    }
}

/// A realistic 1.6 periodic sample: power, energy register and three phase currents, all
/// changing by more than their deadbands from one sample of a charger to the next.
fn meter(k: usize, seq: u64, now: DateTime<Utc>) -> Input {
    let step = (seq % 3) as f64;
    let power_w = 5_000.0 + 300.0 * step;
    let amps = power_w / 3.0 / 230.0;
    Input::Charger(ChargerEvent::Meter {
        charger: charger_id(k),
        sample: MeterSample {
            connector: 1,
            timestamp: Some(now),
            context: SampleContext::Periodic,
            transaction_id: Some(format!("{k}")),
            replayed: false,
            values: vec![
                value(Measurand::PowerActiveImport, None, power_w, "W"),
                value(
                    Measurand::EnergyActiveImportRegister,
                    None,
                    10_000.0 + seq as f64 * 1.5,
                    "Wh",
                ),
                value(Measurand::CurrentImport, Some("L1"), amps, "A"),
                value(Measurand::CurrentImport, Some("L2"), amps + 0.2, "A"),
                value(Measurand::CurrentImport, Some("L3"), amps + 0.4, "A"),
            ],
        },
    })
}

fn status(k: usize, seq: u64, now: DateTime<Utc>) -> Input {
    Input::Charger(ChargerEvent::Status {
        charger: charger_id(k),
        connector: 1,
        status: if seq.is_multiple_of(2) {
            ConnectorStatus::SuspendedEv
        } else {
            ConnectorStatus::Charging
        },
        error_code: None,
        timestamp: Some(now),
    })
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    for (label, site_limit_kw) in [
        ("no site limit", None),
        ("site limit 5000 kW", Some(5_000.0)),
    ] {
        let mut e = engine(site_limit_kw);
        let (mut k, mut seq, mut now) = (0usize, 0u64, t0());
        group.bench_function(format!("MeterValues, 1000 chargers, {label}"), |b| {
            b.iter(|| {
                k += 1;
                if k == CHARGERS {
                    k = 0;
                    seq += 1;
                    now += Duration::seconds(1);
                }
                black_box(e.handle(now, meter(k, seq, now)))
            })
        });

        let mut e = engine(site_limit_kw);
        let (mut k, mut seq, mut now) = (0usize, 0u64, t0());
        group.bench_function(format!("StatusNotification, 1000 chargers, {label}"), |b| {
            b.iter(|| {
                k += 1;
                if k == CHARGERS {
                    k = 0;
                    seq += 1;
                    now += Duration::seconds(1);
                }
                black_box(e.handle(now, status(k, seq, now)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
