//! End-to-end latency of ocpp809: MeterValues sent by a charger → I-frame carrying the new
//! value received by an IEC 60870-5-104 master (see BENCHMARKS.md, "End-to-end latency", and
//! `bench/e2e.sh`).
//!
//! Opens a raw IEC 104 master connection (STARTDT act, S-frame every `--w` I-frames, TESTFR
//! answered), then N OCPP 1.6 chargers `{url}/{prefix}{k}` (which the daemon's configuration
//! must list as `[[charger]]` blocks with `ioa_base = --ioa-base + --ioa-stride · k`). After
//! BootNotification every charger sends MeterValues once a second (spread evenly over the
//! second) for connector 1 with a power that steps by 300 W per message through 20 values
//! (5.0, 5.3, … 10.7 kW, beyond the 0.1 kW deadband), so (IOA of connector 1 power, value)
//! identifies the send. The master decodes every short float and matches it to the send time.
//! Sends in the `--seconds` window after `--warmup` are counted; a send without its I-frame
//! within `--grace` seconds after the window is unmatched. Prints one JSON object on stdout.
//!
//! ```text
//! cargo run --release --example e2e_latency -- --url ws://127.0.0.1:9000/ocpp \
//!     --iec104 127.0.0.1:2404 --chargers 1000 --warmup 5 --seconds 20
//! ```

#[path = "common/mod.rs"]
mod common;

use common::Ws;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use ocpp809::asdu::{Asdu, AsduParams, Value as IoValue};
use ocpp809::iec104::apci::{self, Apdu, UFunction, SEQ_MODULUS};

/// Offset of connector 1's active power in a charger block (layout: connector n at 10·n).
const CONNECTOR1_POWER: u32 = 13;
/// Power steps per charger before a value repeats (20 s at 1/s).
const STEPS: u64 = 20;
const BASE_W: u64 = 5_000;
const STEP_W: u64 = 300;

#[derive(Parser, Debug)]
#[command(about = "MeterValues → IEC 104 I-frame latency")]
struct Args {
    /// OCPP base URL; charger k connects to {url}/{prefix}{k}.
    #[arg(long)]
    url: String,
    /// IEC 104 address of the same daemon.
    #[arg(long)]
    iec104: SocketAddr,
    #[arg(long, default_value_t = 1000)]
    chargers: usize,
    #[arg(long, default_value = "E2E")]
    prefix: String,
    #[arg(long, default_value_t = 1000)]
    ioa_base: u32,
    #[arg(long, default_value_t = 100)]
    ioa_stride: u32,
    /// MeterValues per charger per second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of MeterValues before the measurement window.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Length of the measurement window, seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Seconds after the window to wait for the last I-frames.
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// IEC 104 w: I-frames received before the master sends an S-frame.
    #[arg(long, default_value_t = 8)]
    w: u16,
    /// Connections (handshake + BootNotification) in progress at a time.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Longest time to wait for all sessions to come up, seconds.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
    /// Tokio worker threads of the chargers (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// (IOA, power in W) → when the MeterValues carrying it was sent.
type Sent = Arc<Mutex<HashMap<(u32, u64), Instant>>>;

#[derive(Default)]
struct Counters {
    established: AtomicU64,
    connect_errors: AtomicU64,
    sent_in_window: AtomicU64,
    overwritten: AtomicU64,
    call_errors: AtomicU64,
    closed: AtomicU64,
}

struct Window {
    begin: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.begin && t < self.end
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let url = args.url.trim_end_matches('/').to_string();
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .context("only ws://HOST:PORT/... URLs are supported")?
        .to_string();
    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    let counters = Arc::new(Counters::default());

    // The master first, so that no update is missed.
    let window: Arc<Mutex<Option<Window>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let master = {
        let (sent, window, stop) = (sent.clone(), window.clone(), stop.clone());
        let (addr, w) = (args.iec104, args.w);
        std::thread::spawn(move || master(addr, w, &sent, &window, &stop))
    };

    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (start_tx, start_rx) = watch::channel::<Option<Instant>>(None);
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let connect_started = Instant::now();
    let run_for = Duration::from_secs_f64(args.warmup + args.seconds);
    let mut tasks = Vec::with_capacity(args.chargers);
    for k in 0..args.chargers {
        let charger = Charger {
            index: k,
            chargers: args.chargers,
            url: format!("{url}/{}{k}", args.prefix),
            addr: addr.clone(),
            ioa: args.ioa_base + args.ioa_stride * k as u32 + CONNECTOR1_POWER,
            period,
            run_for,
            sent: sent.clone(),
            window: window.clone(),
            counters: counters.clone(),
        };
        let (gate, up, start) = (gate.clone(), up_tx.clone(), start_rx.clone());
        tasks.push(tokio::spawn(charger.run(gate, up, start)));
    }
    drop(up_tx);
    common::await_reports(
        &mut up_rx,
        args.chargers,
        Duration::from_secs_f64(args.connect_timeout),
    )
    .await;
    let connect_s = connect_started.elapsed().as_secs_f64();
    let established = counters.established.load(Ordering::Relaxed);
    eprintln!("e2e_latency: {established} sessions up in {connect_s:.2} s");
    if master.is_finished() {
        return match master.join() {
            Ok(Err(e)) => Err(e.context("IEC 104 master")),
            _ => bail!("IEC 104 master ended early"),
        };
    }
    // Let the updates of the connections and boots drain before MeterValues start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    let begin = start + Duration::from_secs_f64(args.warmup);
    let end = begin + Duration::from_secs_f64(args.seconds);
    *window.lock().expect("lock") = Some(Window { begin, end });
    start_tx.send_replace(Some(start));
    tokio::time::sleep_until((end + Duration::from_secs_f64(args.grace)).into()).await;
    stop.store(true, Ordering::Relaxed);
    let stats = master
        .join()
        .map_err(|_| anyhow::anyhow!("IEC 104 master panicked"))??;
    for task in tasks {
        task.abort();
    }

    let unmatched_in_window = {
        let sent = sent.lock().expect("lock");
        sent.values().filter(|t| t >= &&begin && t < &&end).count() as u64
    };
    let mut latencies = stats.latencies_us;
    latencies.sort_unstable();
    let pct = |p: f64| common::percentile_ms(&latencies, p);
    let mean = if latencies.is_empty() {
        Value::Null
    } else {
        let sum: u64 = latencies.iter().map(|l| u64::from(*l)).sum();
        json!((sum as f64 / latencies.len() as f64 / 10.0).round() / 100.0)
    };
    let c = &counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let report = json!({
        "chargers": args.chargers,
        "rate_per_charger": args.rate,
        "sessions_established": established,
        "connect_s": (connect_s * 100.0).round() / 100.0,
        "warmup_s": args.warmup,
        "window_s": args.seconds,
        "w": args.w,
        "sent_in_window": load(&c.sent_in_window),
        "matched": latencies.len(),
        "unmatched": unmatched_in_window + load(&c.overwritten),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": pct(1.0),
        "mean_ms": mean,
        "iframes": stats.iframes,
        "objects": stats.objects,
        "float_objects_unmatched": stats.float_unmatched,
        "errors": {
            "connect": load(&c.connect_errors),
            "call_error": load(&c.call_errors),
            "closed": load(&c.closed),
        },
    });
    println!("{report}");
    Ok(())
}

struct MasterStats {
    latencies_us: Vec<u32>,
    iframes: u64,
    objects: u64,
    /// Short floats in the window that match no send (charger totals, site, currents …).
    float_unmatched: u64,
}

fn send_apdu(stream: &mut std::net::TcpStream, apdu: &Apdu) -> Result<()> {
    let mut out = Vec::with_capacity(6);
    apdu.encode(&mut out)?;
    stream.write_all(&out).context("writing")
}

/// The IEC 104 master: runs until `stop`, matching short floats to sends.
fn master(
    addr: SocketAddr,
    w: u16,
    sent: &Sent,
    window: &Mutex<Option<Window>>,
    stop: &AtomicBool,
) -> Result<MasterStats> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    send_apdu(&mut stream, &Apdu::U(UFunction::StartDtAct))?;
    let mut stats = MasterStats {
        latencies_us: Vec::new(),
        iframes: 0,
        objects: 0,
        float_unmatched: 0,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::with_capacity(128 * 1024);
    let (mut next_recv, mut unacked) = (0u16, 0u16);
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => bail!("connection closed by the station"),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if unacked > 0 {
                    send_apdu(
                        &mut stream,
                        &Apdu::S {
                            recv_seq: next_recv,
                        },
                    )?;
                    unacked = 0;
                }
                continue;
            }
            Err(e) => return Err(e).context("reading"),
        };
        let now = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        let mut used = 0;
        while let Some((apdu, len)) = apci::decode(&pending[used..]).context("APCI")? {
            used += len;
            match apdu {
                Apdu::I { send_seq, asdu, .. } => {
                    if send_seq != next_recv {
                        bail!("I-frame N(S)={send_seq}, expected {next_recv}");
                    }
                    next_recv = (next_recv + 1) % SEQ_MODULUS;
                    stats.iframes += 1;
                    let asdu = Asdu::decode(&asdu, AsduParams::IEC104).context("ASDU")?;
                    stats.objects += asdu.objects.len() as u64;
                    let in_window =
                        matches!(&*window.lock().expect("lock"), Some(w) if now >= w.begin);
                    let mut sent = sent.lock().expect("lock");
                    for object in &asdu.objects {
                        let IoValue::ShortFloat { value, .. } = object.value else {
                            continue;
                        };
                        let watts = (f64::from(value) * 1000.0).round();
                        let key = (object.address, watts.max(0.0) as u64);
                        match sent.remove(&key) {
                            Some(t) => {
                                let us = now.duration_since(t).as_micros();
                                if matches!(&*window.lock().expect("lock"), Some(w) if w.contains(t))
                                {
                                    stats.latencies_us.push(us.min(u128::from(u32::MAX)) as u32);
                                }
                            }
                            None if in_window => stats.float_unmatched += 1,
                            None => {}
                        }
                    }
                    drop(sent);
                    unacked += 1;
                    if unacked >= w {
                        send_apdu(
                            &mut stream,
                            &Apdu::S {
                                recv_seq: next_recv,
                            },
                        )?;
                        unacked = 0;
                    }
                }
                Apdu::U(UFunction::TestFrAct) => {
                    send_apdu(&mut stream, &Apdu::U(UFunction::TestFrCon))?
                }
                Apdu::U(_) | Apdu::S { .. } => {}
            }
        }
        pending.drain(..used);
    }
    Ok(stats)
}

struct Charger {
    index: usize,
    chargers: usize,
    url: String,
    addr: String,
    /// IOA of connector 1's active power.
    ioa: u32,
    period: Duration,
    run_for: Duration,
    sent: Sent,
    window: Arc<Mutex<Option<Window>>>,
    counters: Arc<Counters>,
}

impl Charger {
    async fn run(
        self,
        gate: Arc<Semaphore>,
        up: tokio::sync::mpsc::UnboundedSender<()>,
        mut start: watch::Receiver<Option<Instant>>,
    ) {
        let permit = gate.acquire().await;
        let ws = self.connect().await;
        drop(permit);
        let _ = up.send(());
        let Some(mut ws) = ws else {
            return;
        };
        let Ok(start) = start.wait_for(Option::is_some).await.map(|s| s.unwrap()) else {
            return;
        };
        self.meter_values(&mut ws, start).await;
    }

    async fn connect(&self) -> Option<Ws> {
        let mut ws = common::connect_charger(
            &self.addr,
            &self.url,
            "ocpp1.6",
            Duration::from_secs(15),
            &self.counters.connect_errors,
            "e2e_latency",
        )
        .await?;
        let boot = json!({"chargePointVendor": "E2E", "chargePointModel": "e2e_latency"});
        if !self.call(&mut ws, "boot", "BootNotification", boot).await {
            self.counters.connect_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let status = json!({"connectorId": 1, "status": "Charging", "errorCode": "NoError"});
        if !self.call(&mut ws, "st", "StatusNotification", status).await {
            self.counters.connect_errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.counters.established.fetch_add(1, Ordering::Relaxed);
        Some(ws)
    }

    async fn meter_values(&self, ws: &mut Ws, start: Instant) {
        let offset = self
            .period
            .mul_f64(self.index as f64 / self.chargers.max(1) as f64);
        let mut ticker = tokio::time::interval_at((start + offset).into(), self.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = start + self.run_for;
        let mut seq: u64 = 0;
        let mut energy_wh: u64 = 10_000;
        loop {
            ticker.tick().await;
            if Instant::now() >= end {
                return;
            }
            seq += 1;
            energy_wh += 3;
            let power_w = BASE_W + STEP_W * (seq % STEPS);
            let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let payload = json!({
                "connectorId": 1,
                "meterValue": [{"timestamp": timestamp, "sampledValue": [
                    {"value": power_w.to_string(), "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": energy_wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ]}]
            });
            let frame = json!([2, format!("m{seq}"), "MeterValues", payload]).to_string();
            let now = Instant::now();
            if matches!(&*self.window.lock().expect("lock"), Some(w) if w.contains(now)) {
                self.counters.sent_in_window.fetch_add(1, Ordering::Relaxed);
            }
            let previous = self
                .sent
                .lock()
                .expect("lock")
                .insert((self.ioa, power_w), now);
            if let Some(t) = previous {
                if matches!(&*self.window.lock().expect("lock"), Some(w) if w.contains(t)) {
                    self.counters.overwritten.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !self.send_and_wait(ws, frame, &format!("m{seq}")).await {
                return;
            }
        }
    }

    async fn call(&self, ws: &mut Ws, id: &str, action: &str, payload: Value) -> bool {
        let frame = json!([2, id, action, payload]).to_string();
        self.send_and_wait(ws, frame, id).await
    }

    /// Sends a CALL and reads until its answer (CALLs from the server get CALLERROR).
    async fn send_and_wait(&self, ws: &mut Ws, frame: String, id: &str) -> bool {
        let c = &self.counters;
        if ws.send(Message::text(frame)).await.is_err() {
            c.closed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        loop {
            let message = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(m))) => m,
                _ => {
                    c.closed.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            };
            let Message::Text(text) = message else {
                if message.is_close() {
                    c.closed.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                continue;
            };
            let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            let same_id = frame.get(1).and_then(Value::as_str) == Some(id);
            match frame.first().and_then(Value::as_u64) {
                Some(3) if same_id => return true,
                Some(4) if same_id => {
                    c.call_errors.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Some(2) => {
                    let reply = json!([
                        4,
                        frame.get(1).cloned().unwrap_or(Value::Null),
                        "NotImplemented",
                        "e2e_latency",
                        {}
                    ])
                    .to_string();
                    if ws.send(Message::text(reply)).await.is_err() {
                        c.closed.fetch_add(1, Ordering::Relaxed);
                        return false;
                    }
                }
                _ => {}
            }
        }
    }
}
