//! IEC 60870-5-101 link layer throughput: FT1.2 encode/decode of a variable frame
//! (IEC 60870-5-1 §6.2.4.2) and the unbalanced secondary answering a class 2 poll
//! (IEC 60870-5-2 §5.1). Run: `cargo bench --bench ft12`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use ocpp809::iec101::ft12::{AddressSize, Control, Decoder, Frame};
use ocpp809::iec101::link::{Link, LinkConfig, LinkUser};

/// A 40-octet ASDU: M_ME_TF_1 with two floats and CP56Time2a (COT 1, CA 1, IOA 2).
fn asdu() -> Vec<u8> {
    let mut a = vec![0x24, 0x02, 0x03, 0x01];
    for ioa in [1001u16, 1003] {
        a.extend_from_slice(&ioa.to_le_bytes());
        a.extend_from_slice(&12.5f32.to_le_bytes());
        a.push(0x00);
        a.extend_from_slice(&[0x10, 0x27, 0x1E, 0x0A, 0x1C, 0x06, 0x19]);
    }
    while a.len() < 40 {
        a.push(0);
    }
    a
}

fn codec(c: &mut Criterion) {
    let frame = Frame::Variable {
        control: Control::secondary(8, false, false),
        address: 1,
        asdu: asdu(),
    };
    let mut bytes = Vec::new();
    frame
        .encode(AddressSize::One, &mut bytes)
        .expect("encodable");
    let mut group = c.benchmark_group("ft12");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode variable 40-octet ASDU", |b| {
        let mut out = Vec::with_capacity(300);
        b.iter(|| {
            out.clear();
            black_box(&frame)
                .encode(AddressSize::One, &mut out)
                .expect("encodable");
            black_box(out.len())
        })
    });
    group.bench_function("decode variable 40-octet ASDU", |b| {
        let mut decoder = Decoder::new(AddressSize::One);
        b.iter(|| {
            decoder.push(black_box(&bytes));
            decoder.next_frame()
        })
    });
    group.finish();
}

/// Always has one class 2 ASDU, never class 1.
struct Measurements(VecDeque<Vec<u8>>, Vec<u8>);

impl LinkUser for Measurements {
    fn class1_pending(&self) -> bool {
        false
    }
    fn next_class1(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn next_class2(&mut self) -> Option<Vec<u8>> {
        Some(self.0.pop_front().unwrap_or_else(|| self.1.clone()))
    }
    fn received(&mut self, _asdu: &[u8]) {}
}

fn class2_poll(c: &mut Criterion) {
    let now = Instant::now();
    let mut link = Link::new(LinkConfig::default(), now).expect("valid config");
    let mut user = Measurements(VecDeque::new(), asdu());
    // Reset of remote link, then alternate FCB so every poll is new (not a repetition).
    link.handle_input(now, &[0x10, 0x40, 0x01, 0x41, 0x16], &mut user);
    let polls: [[u8; 5]; 2] = [
        [0x10, 0x7B, 0x01, 0x7C, 0x16], // class 2, FCB = 1
        [0x10, 0x5B, 0x01, 0x5C, 0x16], // class 2, FCB = 0
    ];
    let mut out = Vec::with_capacity(300);
    link.poll_transmit(&mut out);
    let mut i = 0;
    c.bench_function("ft12/unbalanced class 2 poll -> user data", |b| {
        b.iter(|| {
            out.clear();
            link.handle_input(now, black_box(&polls[i & 1]), &mut user);
            link.poll_transmit(&mut out);
            while link.poll_event().is_some() {}
            i += 1;
            black_box(out.len())
        })
    });
}

criterion_group!(benches, codec, class2_poll);
criterion_main!(benches);
