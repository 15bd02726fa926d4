//! OCPP local-controller relay cost per message (docs/upstream.md): one charger MeterValues
//! CALL through the sans-IO relay to the upstream and the upstream's answer back to the
//! charger, with the upstream up — for a conforming 1.6 payload and a legacy `"14.4kW"` one
//! (sanitized before forwarding), and for the same legacy payload forwarded as the original;
//! and a StatusNotification answered locally while the upstream is down (no queueing).
//! Run: `cargo bench --bench relay`. See BENCHMARKS.md, "OCPP local controller".

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use ocpp809::ocpp::relay::core::{Forward, Relay, RelayConfig, UpstreamEvent};
use ocpp809::ocpp::relay::offline::OfflineAuthorization;
use ocpp809::ocpp::relay::state::{NoJournal, RelayState};
use ocpp809::ocpp::session::{Session, SessionConfig};
use ocpp809::ocpp::{v16, Mode};

fn relay(forward: Forward, up: bool) -> Relay {
    let now = Instant::now();
    let session = Session::new(
        "CP1".into(),
        Box::new(v16::V16Dialect::new()),
        SessionConfig {
            mode: Mode::Lenient,
            heartbeat_interval_s: 300,
            call_timeout: Duration::from_secs(30),
            queue_capacity: 8,
        },
        now,
    );
    let config = RelayConfig {
        forward,
        answer_timeout: Duration::from_secs(10),
        queue_capacity: 100,
        offline: OfflineAuthorization::Cache,
        local_list: Default::default(),
    };
    let mut relay = Relay::relayed(
        session,
        config,
        Box::new(NoJournal::default()),
        Vec::new(),
        RelayState::default(),
        3,
    );
    if up {
        relay.handle_upstream(now, UpstreamEvent::Up);
    }
    while relay.poll_event().is_some() {}
    relay
}

fn meter_values(id: u64, value: &str) -> String {
    format!(
        r#"[2,"m{id}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{{"value":"{value}","measurand":"Power.Active.Import","unit":"W"}},{{"value":"{value}","measurand":"Energy.Active.Import.Register","unit":"Wh"}}]}}]}}]"#
    )
}

/// One CALL from the charger, its forwarding, the upstream's answer and its delivery.
fn round_trip(relay: &mut Relay, id: u64, value: &str) {
    let now = Instant::now();
    let text = meter_values(id, value);
    relay.handle_text(now, Utc::now(), &text, &mut || 1);
    let forwarded = relay.poll_upstream();
    black_box(&forwarded);
    relay.handle_upstream(now, UpstreamEvent::Text(format!(r#"[3,"m{id}",{{}}]"#)));
    black_box(relay.poll_outgoing());
    while let Some(event) = relay.poll_event() {
        black_box(event);
    }
}

/// The measured path really is a relay round trip: the CALL reaches the upstream (with
/// "14.4kW" rewritten when sanitizing) and the upstream's answer reaches the charger.
fn check_round_trip(relay: &mut Relay, value: &str) {
    let now = Instant::now();
    relay.handle_text(now, Utc::now(), &meter_values(0, value), &mut || 1);
    let forwarded = relay.poll_upstream().unwrap_or_default();
    assert!(
        forwarded.contains(r#""m0","MeterValues""#),
        "not forwarded: {forwarded}"
    );
    assert!(
        relay.poll_outgoing().is_none(),
        "answered before the upstream did"
    );
    relay.handle_upstream(now, UpstreamEvent::Text(r#"[3,"m0",{}]"#.to_owned()));
    assert_eq!(relay.poll_outgoing().as_deref(), Some(r#"[3,"m0",{}]"#));
    while relay.poll_event().is_some() {}
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(1));
    for (name, forward, value) in [
        ("meter_values_conforming", Forward::Sanitized, "14400"),
        (
            "meter_values_legacy_sanitized",
            Forward::Sanitized,
            "14.4kW",
        ),
        ("meter_values_legacy_original", Forward::Original, "14.4kW"),
    ] {
        let mut r = relay(forward, true);
        check_round_trip(&mut r, value);
        let mut id = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                id += 1;
                round_trip(&mut r, id, value);
            })
        });
    }
    let mut r = relay(Forward::Sanitized, false);
    let mut id = 0u64;
    group.bench_function("status_notification_upstream_down", |b| {
        b.iter(|| {
            id += 1;
            let text = format!(
                r#"[2,"s{id}","StatusNotification",{{"connectorId":1,"errorCode":"NoError","status":"Charging"}}]"#
            );
            r.handle_text(Instant::now(), Utc::now(), &text, &mut || 1);
            black_box(r.poll_outgoing());
            while let Some(event) = r.poll_event() {
                black_box(event);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
