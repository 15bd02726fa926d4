//! OCPP-J load generator: N WebSocket chargers sending MeterValues (see BENCHMARKS.md,
//! "OCPP ingest", and `bench/ocpp.sh`).
//!
//! Every charger connects to `{url}/LG{i}` with subprotocol `ocpp1.6` or `ocpp2.0.1`, sends
//! BootNotification, waits until all chargers are up (or `--connect-timeout` has passed), then
//! sends MeterValues for `--seconds`, one outstanding CALL at a time (OCPP-J), at `--rate` per
//! charger per second (0: the next CALL as soon as the previous one is answered). Connections
//! are opened `--concurrency` at a time. Prints one JSON object on stdout.
//!
//! ```text
//! cargo run --release --example ocpp_loadgen -- --url ws://127.0.0.1:9000/ocpp \
//!     --chargers 100 --rate 0 --seconds 10 --version 1.6
//! ```

#[path = "common/mod.rs"]
mod common;

use common::Ws;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Time allowed for one CALL to be answered before it counts as a timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "OCPP-J MeterValues load generator")]
struct Args {
    /// Base URL; charger i connects to {url}/LG{i}.
    #[arg(long)]
    url: String,
    /// Number of chargers (WebSocket sessions).
    #[arg(long, default_value_t = 100)]
    chargers: usize,
    /// MeterValues per second per charger; 0 = as fast as possible (one outstanding CALL).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Length of the MeterValues phase, seconds (after all sessions are up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// OCPP version: 1.6 or 2.0.1.
    #[arg(long, default_value = "1.6")]
    version: String,
    /// Send non-conforming "14.4kW" string values instead of numbers.
    #[arg(long)]
    legacy: bool,
    /// Connections (handshake + BootNotification) in progress at a time.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Longest time to wait for all sessions to come up, seconds.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
    /// Written (with the number of sessions) once the connection phase is over.
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
    /// Seconds to wait after writing the ready file before MeterValues start.
    #[arg(long, default_value_t = 0.0)]
    ready_pause: f64,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Version {
    V16,
    V201,
}

#[derive(Default)]
struct Counters {
    established: AtomicU64,
    connect_errors: AtomicU64,
    boot_errors: AtomicU64,
    boot_not_accepted: AtomicU64,
    answered: AtomicU64,
    call_errors: AtomicU64,
    timeouts: AtomicU64,
    closed: AtomicU64,
    server_calls: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let version = match args.version.as_str() {
        "1.6" | "16" | "ocpp1.6" => Version::V16,
        "2.0.1" | "201" | "ocpp2.0.1" => Version::V201,
        other => anyhow::bail!("unknown --version {other} (1.6 or 2.0.1)"),
    };
    let url = args.url.trim_end_matches('/').to_string();
    let addr = socket_addr(&url)?;
    let counters = Arc::new(Counters::default());
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    // None: connection phase running; Some(start): MeterValues from `start` on.
    let (start_tx, start_rx) = watch::channel::<Option<Instant>>(None);
    let (done_tx, _) = watch::channel(false);
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let measure = Duration::from_secs_f64(args.seconds);

    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(args.chargers);
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for i in 0..args.chargers {
        let charger = Charger {
            index: i,
            chargers: args.chargers,
            url: format!("{url}/LG{i}"),
            addr: addr.clone(),
            version,
            legacy: args.legacy,
            period,
            measure,
            counters: counters.clone(),
        };
        let gate = gate.clone();
        let start = start_rx.clone();
        let up = up_tx.clone();
        let done = done_tx.subscribe();
        tasks.push(tokio::spawn(charger.run(gate, up, start, done)));
    }
    drop(up_tx);

    // Connection phase: until every charger reported (up or failed) or the timeout.
    common::await_reports(
        &mut up_rx,
        args.chargers,
        Duration::from_secs_f64(args.connect_timeout),
    )
    .await;
    let connect_s = connect_started.elapsed().as_secs_f64();
    let established = counters.established.load(Ordering::Relaxed);
    eprintln!("ocpp_loadgen: {established} sessions up in {connect_s:.2} s");
    if let Some(path) = &args.ready_file {
        std::fs::write(path, format!("{established}\n"))?;
    }
    if args.ready_pause > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(args.ready_pause)).await;
    }
    let start = Instant::now();
    start_tx.send_replace(Some(start));
    tokio::time::sleep(measure).await;
    let elapsed = start.elapsed().as_secs_f64();
    let answered = counters.answered.load(Ordering::Relaxed);
    // Let the last CALLs finish (they are not counted), then close.
    done_tx.send_replace(true);
    let mut latencies: Vec<u32> = Vec::new();
    let collect = async {
        for task in tasks {
            if let Ok(mut l) = task.await {
                latencies.append(&mut l);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(15), collect).await;
    latencies.sort_unstable();
    let pct = |p: f64| -> Value {
        if latencies.is_empty() {
            return Value::Null;
        }
        let idx = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        json!((f64::from(latencies[idx]) / 1000.0 * 1000.0).round() / 1000.0)
    };
    let c = &counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let report = json!({
        "url": url,
        "version": args.version,
        "legacy": args.legacy,
        "chargers": args.chargers,
        "rate_per_charger": args.rate,
        "sessions_established": established,
        "connect_s": (connect_s * 1000.0).round() / 1000.0,
        "measure_s": (elapsed * 1000.0).round() / 1000.0,
        "calls_answered": answered,
        "calls_per_s": (answered as f64 / elapsed).round(),
        "latency_samples": latencies.len(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "errors": {
            "connect": load(&c.connect_errors),
            "boot": load(&c.boot_errors),
            "boot_not_accepted": load(&c.boot_not_accepted),
            "call_error": load(&c.call_errors),
            "timeout": load(&c.timeouts),
            "closed": load(&c.closed),
        },
        "server_calls": load(&c.server_calls),
    });
    println!("{report}");
    Ok(())
}

/// `host:port` of a ws:// URL.
fn socket_addr(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow::anyhow!("only ws:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    })
}

struct Charger {
    index: usize,
    chargers: usize,
    url: String,
    addr: String,
    version: Version,
    legacy: bool,
    period: Option<Duration>,
    measure: Duration,
    counters: Arc<Counters>,
}

enum CallOutcome {
    Result(Value),
    Error,
}

impl Charger {
    /// Returns the latencies (µs) of the MeterValues answered within the measurement.
    async fn run(
        self,
        gate: Arc<Semaphore>,
        up: tokio::sync::mpsc::UnboundedSender<()>,
        mut start: watch::Receiver<Option<Instant>>,
        done: watch::Receiver<bool>,
    ) -> Vec<u32> {
        let permit = gate.acquire().await;
        let ws = self.connect().await;
        drop(permit);
        let _ = up.send(());
        let Some(mut ws) = ws else {
            return Vec::new();
        };
        let Ok(start) = start.wait_for(Option::is_some).await.map(|s| s.unwrap()) else {
            return Vec::new();
        };
        let latencies = self.meter_values(&mut ws, start, done).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        latencies
    }

    async fn connect(&self) -> Option<Ws> {
        let c = &self.counters;
        let protocol = match self.version {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
        };
        let mut ws = common::connect_charger(
            &self.addr,
            &self.url,
            protocol,
            Duration::from_secs(15),
            &c.connect_errors,
            "ocpp_loadgen",
        )
        .await?;
        let boot = match self.version {
            Version::V16 => json!({"chargePointVendor": "LG", "chargePointModel": "loadgen"}),
            Version::V201 => json!({
                "reason": "PowerUp",
                "chargingStation": {"model": "loadgen", "vendorName": "LG"}
            }),
        };
        match self.call(&mut ws, "boot", "BootNotification", boot).await {
            Some(CallOutcome::Result(payload)) => {
                if payload.get("status").is_some_and(|s| s != "Accepted") {
                    c.boot_not_accepted.fetch_add(1, Ordering::Relaxed);
                }
                c.established.fetch_add(1, Ordering::Relaxed);
                Some(ws)
            }
            _ => {
                c.boot_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    async fn meter_values(
        &self,
        ws: &mut Ws,
        start: Instant,
        done: watch::Receiver<bool>,
    ) -> Vec<u32> {
        let c = &self.counters;
        let end = start + self.measure;
        let mut latencies = Vec::new();
        let mut ticker = self.period.map(|period| {
            // Spread the chargers evenly over one period.
            let offset = period.mul_f64(self.index as f64 / self.chargers.max(1) as f64);
            let mut t = tokio::time::interval_at((start + offset).into(), period);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut seq: u64 = 0;
        let mut energy_wh: u64 = 1_000 + self.index as u64;
        loop {
            if let Some(ticker) = ticker.as_mut() {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = idle(ws) => { c.closed.fetch_add(1, Ordering::Relaxed); return latencies; }
                }
            }
            if *done.borrow() || Instant::now() >= end {
                return latencies;
            }
            seq += 1;
            energy_wh += 5;
            let payload = self.meter_payload(energy_wh);
            let id = format!("m{seq}");
            let sent = Instant::now();
            match self.call(ws, &id, "MeterValues", payload).await {
                Some(CallOutcome::Result(_)) => {
                    if Instant::now() <= end {
                        c.answered.fetch_add(1, Ordering::Relaxed);
                        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                }
                Some(CallOutcome::Error) => {
                    c.call_errors.fetch_add(1, Ordering::Relaxed);
                }
                None => return latencies,
            }
        }
    }

    fn meter_payload(&self, energy_wh: u64) -> Value {
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match (self.version, self.legacy) {
            (Version::V16, false) => json!({
                "connectorId": 1,
                "meterValue": [{"timestamp": timestamp, "sampledValue": [
                    {"value": "14400", "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": energy_wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ]}]
            }),
            (Version::V16, true) => json!({
                "connectorId": 1,
                "meterValue": [{"timestamp": timestamp, "sampledValue": [
                    {"value": "14.4kW", "measurand": "Power.Active.Import", "unit": "kW"},
                    {"value": energy_wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ]}]
            }),
            (Version::V201, false) => json!({
                "evseId": 1,
                "meterValue": [{"timestamp": timestamp, "sampledValue": [
                    {"value": 14400.0, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                    {"value": energy_wh as f64, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}
                ]}]
            }),
            (Version::V201, true) => json!({
                "evseId": 1,
                "meterValue": [{"timestamp": timestamp, "sampledValue": [
                    {"value": "14.4kW", "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
                    {"value": energy_wh as f64, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}
                ]}]
            }),
        }
    }

    /// Sends one CALL and reads until its answer; answers CALLs from the server on the way.
    /// `None`: the connection is gone or the answer timed out (counted).
    async fn call(
        &self,
        ws: &mut Ws,
        id: &str,
        action: &str,
        payload: Value,
    ) -> Option<CallOutcome> {
        let c = &self.counters;
        let frame = json!([2, id, action, payload]).to_string();
        if ws.send(Message::text(frame)).await.is_err() {
            c.closed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            let message = match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => {
                    c.timeouts.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Ok(None | Some(Err(_))) => {
                    c.closed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Ok(Some(Ok(m))) => m,
            };
            let Message::Text(text) = message else {
                if message.is_close() {
                    c.closed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                continue;
            };
            let Ok(Value::Array(mut frame)) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            let kind = frame.first().and_then(Value::as_u64);
            let same_id = frame.get(1).and_then(Value::as_str) == Some(id);
            match kind {
                Some(3) if same_id => {
                    return Some(CallOutcome::Result(frame.get_mut(2).map(Value::take)?));
                }
                Some(4) if same_id => return Some(CallOutcome::Error),
                Some(2) if !self.answer_server_call(ws, &frame).await => return None,
                _ => {}
            }
        }
    }

    /// Answers a CALL from the server with CALLERROR NotImplemented; false if the send failed.
    async fn answer_server_call(&self, ws: &mut Ws, frame: &[Value]) -> bool {
        self.counters.server_calls.fetch_add(1, Ordering::Relaxed);
        let id = frame.get(1).cloned().unwrap_or(Value::Null);
        let reply = json!([4, id, "NotImplemented", "load generator", {}]).to_string();
        if ws.send(Message::text(reply)).await.is_err() {
            self.counters.closed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// Reads while waiting for the next tick (pings are answered by tungstenite on the next write;
/// CALLs from the server are not expected while idle and are dropped); ends when the
/// connection does.
async fn idle(ws: &mut Ws) {
    while let Some(Ok(message)) = ws.next().await {
        if message.is_close() {
            break;
        }
    }
}
