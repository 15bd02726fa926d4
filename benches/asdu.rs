//! ASDU encode/decode throughput (IEC 60870-5-101 §7 codec) and the station's spontaneous
//! path (update → encoded ASDU). Run: `cargo bench --bench asdu`.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use ocpp809::asdu::{
    Asdu, AsduParams, Cause, Cot, Cp56Time2a, InformationObject, Quality, TypeId, Value,
};
use ocpp809::station::{
    LinkProfile, MonitorKind, PointSpec, PointUpdate, PointValue, Station, StationConfig,
};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

fn float_asdu(objects: u32) -> Asdu {
    let mut asdu = Asdu::new(TypeId::M_ME_TF_1, Cot::new(Cause::SPONTANEOUS), 1);
    for ioa in 0..objects {
        asdu.objects.push(InformationObject {
            address: 1000 + ioa,
            value: Value::ShortFloat {
                value: ioa as f32 * 0.5,
                quality: Quality::GOOD,
            },
            time: Some(Cp56Time2a::from_datetime(t0())),
        });
    }
    asdu
}

fn codec(c: &mut Criterion) {
    let params = AsduParams::IEC104;
    let mut group = c.benchmark_group("asdu");
    for objects in [1u32, 20] {
        let asdu = float_asdu(objects);
        let mut bytes = Vec::new();
        asdu.encode(params, &mut bytes).expect("encodable");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("encode M_ME_TF_1 x{objects}"), |b| {
            let mut out = Vec::with_capacity(256);
            b.iter(|| {
                out.clear();
                black_box(&asdu)
                    .encode(params, &mut out)
                    .expect("encodable");
                black_box(out.len())
            })
        });
        group.bench_function(format!("decode M_ME_TF_1 x{objects}"), |b| {
            b.iter(|| Asdu::decode(black_box(&bytes), params).expect("decodable"))
        });
    }
    group.finish();
}

fn spontaneous(c: &mut Criterion) {
    let mut station = Station::new(StationConfig::default());
    station
        .add_points(
            (1..=1000).map(|ioa| PointSpec::monitor(ioa, MonitorKind::Single)),
            None,
        )
        .expect("distinct IOAs");
    let session = station.open_session(LinkProfile {
        params: AsduParams::IEC104,
        common_address: 1,
        max_asdu_len: 249,
        name: "bench".into(),
    });
    station.set_active(session, true);
    while station.poll_asdu(session, t0()).is_some() {}
    let mut on = false;
    let mut ioa = 0u32;
    let mut group = c.benchmark_group("station");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single-point event: update → encoded ASDU", |b| {
        b.iter(|| {
            ioa = ioa % 1000 + 1;
            if ioa == 1 {
                on = !on;
            }
            station
                .update(&PointUpdate {
                    ioa,
                    value: Some(PointValue::Single(on)),
                    quality: Quality::GOOD,
                    time: t0(),
                })
                .expect("known point");
            black_box(station.poll_asdu(session, t0()))
        })
    });
    group.finish();
}

criterion_group!(benches, codec, spontaneous);
criterion_main!(benches);
