//! Cost of checking a charger password (OCPP security profile 1, src/ocpp/credentials):
//! hashing with argon2id (what `ocpp809 charger set-password` does), a full argon2id
//! verification (first connection, wrong password) and the cached verification of a
//! reconnecting charger. Run: `cargo bench --bench credentials`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

use ocpp809::ocpp::credentials::{Credential, Credentials, Verification};
use ocpp809::password;

const PASSWORD: &str = "bench-password-0123";

fn argon2(c: &mut Criterion) {
    let phc = password::hash(PASSWORD).expect("hash");
    let mut group = c.benchmark_group("credentials");
    group.sample_size(20);
    group.bench_function("argon2id_hash", |b| {
        b.iter(|| password::hash(black_box(PASSWORD)))
    });
    group.bench_function("argon2id_verify", |b| {
        b.iter(|| password::verify(black_box(&phc), PASSWORD.as_bytes()))
    });
    group.finish();
}

fn cached(c: &mut Criterion) {
    let phc = password::hash(PASSWORD).expect("hash");
    let credential = Credential::Hash(phc);
    let credentials = Credentials::default();
    // 1,000 chargers verified once: a reconnect storm after an outage hits this cache.
    // `cargo test --all-targets` runs benches once without `--bench`: 10 keep it quick.
    let fleet = if std::env::args().any(|a| a == "--bench") {
        1000
    } else {
        10
    };
    let chargers: Vec<String> = (0..fleet).map(|i| format!("CP{i:04}")).collect();
    let started = Instant::now();
    for charger in &chargers {
        let verdict = credentials.verify(charger, &credential, PASSWORD.as_bytes());
        assert_eq!(verdict, Verification::Accepted);
    }
    eprintln!(
        "first connection of {fleet} chargers (argon2id each, one thread): {:?}",
        started.elapsed()
    );
    let mut group = c.benchmark_group("credentials");
    group.bench_function("cached_verify", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % chargers.len();
            credentials.verify(black_box(&chargers[i]), &credential, PASSWORD.as_bytes())
        })
    });
    group.finish();
}

criterion_group!(benches, argon2, cached);
criterion_main!(benches);
