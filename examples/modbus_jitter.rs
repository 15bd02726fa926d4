//! Poll-schedule jitter of the Modbus meter poller (`ocpp809::modbus::run_meter`).
//!
//! Starts an in-process Modbus TCP server (tokio-modbus `tcp-server`) on 127.0.0.1 and N
//! meters polled every P ms, each with the Eastron SDM630 map of docs/meters.md (4 f32
//! registers read in 3 requests). The server notes when each meter's first request of a
//! cycle arrives (meters are told apart by unit id); the consumer notes when each Reading
//! arrives. Reported:
//! - start jitter: |cycle start − (second cycle start + n × P)|, n the nearest slot (the
//!   first cycle also connects, so it is left out of both figures);
//! - cycle duration: Reading received − cycle start (3 round trips, decode, channel);
//!
//! All meters start together, so their ticks coincide: the worst case for contention.
//! - polls failed, and slots skipped (a slot with no cycle start).
//!
//! `cargo run --release --example modbus_jitter -- [METERS] [POLL_MS] [SECONDS]`
//! (defaults 32 1000 30). Runtime: tokio multi-thread, 2 workers.

use std::collections::HashMap;
use std::future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use ocpp809::config::{Measurand, Meter, MeterRegister, Parity, RegisterType, Unit, WordOrder};
use ocpp809::mapping::meter::MeterEvent;
use ocpp809::modbus::run_meter;

/// Cycle starts per unit id, as seen by the server.
type Starts = Arc<Mutex<HashMap<u8, Vec<Instant>>>>;

struct Sdm630 {
    starts: Starts,
}

impl Service for Sdm630 {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let now = Instant::now();
        match req.request {
            Request::ReadInputRegisters(addr, cnt) => {
                if addr == 0 {
                    if let Ok(mut starts) = self.starts.lock() {
                        starts.entry(req.slave).or_default().push(now);
                    }
                }
                // 230.5 in every f32 slot; the values do not matter here.
                let words = (0..cnt)
                    .map(|i| if i % 2 == 0 { 0x4366 } else { 0x8000 })
                    .collect();
                future::ready(Ok(Response::ReadInputRegisters(words)))
            }
            _ => future::ready(Err(ExceptionCode::IllegalFunction)),
        }
    }
}

fn sdm630_map() -> Vec<MeterRegister> {
    let r = |measurand, address, unit| MeterRegister {
        measurand,
        function: 4,
        address,
        r#type: RegisterType::F32,
        word_order: WordOrder::Big,
        scale: 1.0,
        unit,
    };
    vec![
        r(Measurand::Voltage, 0x0000, Unit::V),
        r(Measurand::CurrentImport, 0x0006, Unit::A),
        r(Measurand::PowerActiveImport, 0x0034, Unit::W),
        r(Measurand::EnergyActiveImportRegister, 0x0048, Unit::KWh),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| {
        args.get(i)
            .and_then(|a| a.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let meters = arg(0, 32).clamp(1, 247) as usize;
    let poll_ms = arg(1, 1000).max(100);
    let seconds = arg(2, 30).max(1);

    let starts: Starts = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let server = Server::new(listener);
    let server_starts = starts.clone();
    tokio::spawn(async move {
        let new_service = |_peer| {
            Ok(Some(Sdm630 {
                starts: server_starts.clone(),
            }))
        };
        let on_connected =
            |stream, peer| async move { accept_tcp_connection(stream, peer, &new_service) };
        if let Err(e) = server
            .serve(&on_connected, |e| eprintln!("server: {e}"))
            .await
        {
            eprintln!("server stopped: {e}");
        }
    });

    let (tx, mut rx) = mpsc::channel(1024);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..meters {
        let meter = Meter {
            name: format!("m{i}"),
            tcp: Some(addr.to_string()),
            rtu: None,
            baud: 9600,
            parity: Parity::None,
            unit_id: (i + 1) as u8,
            poll_ms,
            ioa_base: 900,
            grid_meter: false,
            register: sdm630_map(),
        };
        tasks.push(tokio::spawn(run_meter(
            i,
            meter,
            tx.clone(),
            shutdown.clone(),
        )));
    }
    drop(tx);

    let end = Instant::now() + Duration::from_secs(seconds);
    let mut readings: HashMap<usize, Vec<Instant>> = HashMap::new();
    let mut failed = 0usize;
    while let Ok(Some(ev)) = tokio::time::timeout_at(end.into(), rx.recv()).await {
        match ev {
            MeterEvent::Reading { meter, .. } => {
                readings.entry(meter).or_default().push(Instant::now())
            }
            MeterEvent::Failed { error, .. } => {
                if failed == 0 {
                    eprintln!("first failure: {error}");
                }
                failed += 1;
            }
        }
    }
    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }

    let period = Duration::from_millis(poll_ms);
    let starts = starts.lock().map(|s| s.clone()).unwrap_or_default();
    let mut jitter = Vec::new();
    let mut cycle = Vec::new();
    let mut skipped = 0u64;
    for i in 0..meters {
        let Some(s) = starts.get(&((i + 1) as u8)) else {
            continue;
        };
        // The first cycle also connects; the schedule's phase is taken from the second.
        let Some(&first) = s.get(1) else { continue };
        let mut last_slot = 0u64;
        for &t in &s[1..] {
            let since = t - first;
            let slot = (since.as_secs_f64() / period.as_secs_f64()).round() as u64;
            if slot > last_slot + 1 {
                skipped += slot - last_slot - 1;
            }
            last_slot = slot;
            let due = first + period * slot as u32;
            jitter.push(if t >= due { t - due } else { due - t });
        }
        if let Some(r) = readings.get(&i) {
            for (st, rd) in s.iter().zip(r).skip(1) {
                cycle.push(rd.saturating_duration_since(*st));
            }
        }
    }
    jitter.sort();
    cycle.sort();
    let polls: usize = readings.values().map(Vec::len).sum();
    println!(
        "modbus_jitter: {meters} meters × SDM630 map (3 requests/cycle), poll {poll_ms} ms, {seconds} s, loopback, 2 tokio workers"
    );
    println!("readings {polls}, failed {failed}, skipped slots {skipped}");
    println!("| metric | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, v) in [("start jitter", &jitter), ("cycle duration", &cycle)] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(v.last().copied().unwrap_or_default())
        );
    }
    Ok(())
}
