//! Load and soak test of ocpp809 (see BENCHMARKS.md, "Soak" and "Scale", `bench/soak.sh`,
//! `bench/scale.sh` and `tests/interop/test_soak.py`).
//!
//! Simulates N chargers `{url}/{prefix}{k}` (which the daemon's configuration must list as
//! `[[charger]]` blocks with `ioa_base = --ioa-base + --ioa-stride · k` and one connector) of
//! mixed vintages: the first `--share-16` of them speak OCPP 1.6 (StartTransaction,
//! MeterValues with legacy string values `"12.3kW"` and `"1234,5"` Wh, StopTransaction), the
//! rest OCPP 2.0.1 (TransactionEvent Started / Updated / Ended with meterValue). Each runs
//! back-to-back transactions of `--meter-values` samples `--interval` seconds apart (0: as
//! fast as the daemon answers), `--transactions` in total spread over the chargers; each
//! charger's energy register rises by at least 1 Wh per sample, across transactions.
//!
//! Meanwhile a raw IEC 104 master (STARTDT, S-frames, TESTFR answered, built on
//! `ocpp809::iec104::apci` and `ocpp809::asdu`) sends a power setpoint (C_SE_NC_1, offset 90,
//! small change so no select) to a random charger every `--setpoint-every` seconds and checks
//! its ACTCON, and times every spontaneous charger total energy counter (offset 2) against the
//! moment the charger sent that register (latency charger → IEC 104 frame). An MQTT
//! subscriber follows `{mqtt-prefix}/chargers/+/meter`. The daemon's VmRSS and CPU time are
//! sampled from `/proc/{pid}` every `--rss-every` seconds.
//!
//! At the end: counter interrogation; every charger's total energy counter must equal the last
//! register it sent (rounded to Wh), and so must the last MQTT energy sample and the retained
//! `chargers/{id}/state` `energy_wh`. Prints one JSON object on stdout and exits with status 1
//! on any lost energy, daemon crash (PID gone), failed setpoint, session error or RSS growth
//! after warm-up beyond `--rss-growth-max-kb`.
//!
//! ```text
//! cargo run --release --example soak -- --url ws://127.0.0.1:9000/ocpp \
//!     --iec104 127.0.0.1:2404 --mqtt 127.0.0.1:1883 --mqtt-prefix ocpp809/soak \
//!     --chargers 200 --transactions 20000 --meter-values 5 --interval 0 --pid 1234
//! ```

#[path = "common/mod.rs"]
mod common;

use common::Ws;

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use ocpp809::asdu::{
    Asdu, AsduParams, Cause, Cot, Freeze, InformationObject, Qcc, Qos, TypeId, Value as IoValue,
};
use ocpp809::iec104::apci::{self, Apdu, UFunction, SEQ_MODULUS};

/// Offsets in a charger block (CONTRACT §3).
const TOTAL_ENERGY: u32 = 2;
const POWER_SETPOINT: u32 = 90;
const ENERGY_MEASURAND: &str = "Energy.Active.Import.Register";

#[derive(Parser, Debug, Clone)]
#[command(about = "ocpp809 load and soak test")]
struct Args {
    /// OCPP base URL; charger k connects to {url}/{prefix}{k}.
    #[arg(long)]
    url: String,
    /// IEC 104 address of the same daemon.
    #[arg(long)]
    iec104: SocketAddr,
    /// MQTT broker HOST:PORT the daemon publishes to (omit to skip the MQTT check).
    #[arg(long)]
    mqtt: Option<String>,
    /// Topic prefix of the station: `{[mqtt] topic_prefix}/{[station] name}`.
    #[arg(long, default_value = "ocpp809/ocpp809")]
    mqtt_prefix: String,
    #[arg(long, default_value_t = 100)]
    chargers: usize,
    #[arg(long, default_value = "SOAK")]
    prefix: String,
    #[arg(long, default_value_t = 1000)]
    ioa_base: u32,
    #[arg(long, default_value_t = 100)]
    ioa_stride: u32,
    #[arg(long, default_value_t = 1)]
    common_address: u16,
    /// Share of the chargers speaking OCPP 1.6 (the rest speak 2.0.1).
    #[arg(long, default_value_t = 0.5)]
    share_16: f64,
    /// Transactions in total, spread evenly over the chargers.
    #[arg(long, default_value_t = 1000)]
    transactions: u64,
    /// Meter values per transaction.
    #[arg(long, default_value_t = 5)]
    meter_values: u32,
    /// Seconds between meter values (0: next one as soon as the previous is answered).
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Seconds between power setpoints from the master (0: none).
    #[arg(long, default_value_t = 2.0)]
    setpoint_every: f64,
    /// IEC 104 w: I-frames received before the master sends an S-frame.
    #[arg(long, default_value_t = 8)]
    w: u16,
    /// PID of the daemon: RSS and CPU sampling, crash detection.
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 2.0)]
    rss_every: f64,
    /// Seconds after all sessions are up before the RSS reference sample.
    #[arg(long, default_value_t = 10.0)]
    rss_warmup: f64,
    /// Largest allowed RSS growth after warm-up, kB.
    #[arg(long, default_value_t = 32768)]
    rss_growth_max_kb: u64,
    /// Connections (handshake + BootNotification) in progress at a time.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Longest time to wait for all sessions to come up, seconds.
    #[arg(long, default_value_t = 60.0)]
    connect_timeout: f64,
    /// Longest time to wait for MQTT and IEC 104 to catch up at the end, seconds.
    #[arg(long, default_value_t = 60.0)]
    drain_timeout: f64,
    /// Tokio worker threads of the chargers (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the pseudo-random energy steps and setpoint targets.
    #[arg(long, default_value_t = 809)]
    seed: u64,
}

fn main() {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let code = match builder
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(args)))
    {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("soak: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

/// xorshift64*: deterministic steps without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct Counters {
    established: AtomicU64,
    connect_errors: AtomicU64,
    call_errors: AtomicU64,
    closed: AtomicU64,
    timeouts: AtomicU64,
    transactions: AtomicU64,
    messages: AtomicU64,
    meter_values: AtomicU64,
    server_calls: AtomicU64,
    finished: AtomicU64,
}

/// Per charger-total-energy IOA: registers sent (Wh) and when, oldest first.
type Pending = Arc<Mutex<HashMap<u32, VecDeque<(u64, Instant)>>>>;

/// What every charger reports at the end.
struct Shared {
    args: Args,
    counters: Counters,
    pending: Pending,
    /// Last register sent per charger, Wh rounded (u64::MAX: none yet).
    last_wh: Vec<AtomicU64>,
    online: Vec<AtomicBool>,
    /// Set once the measurement of latencies may start (all sessions up).
    measuring: AtomicBool,
}

impl Shared {
    fn total_ioa(&self, k: usize) -> u32 {
        self.args.ioa_base + self.args.ioa_stride * k as u32 + TOTAL_ENERGY
    }
}

async fn run(args: Args) -> Result<bool> {
    let url = args.url.trim_end_matches('/').to_string();
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .context("only ws://HOST:PORT/... URLs are supported")?
        .to_string();
    if args.chargers == 0 {
        bail!("--chargers must be at least 1");
    }
    let shared = Arc::new(Shared {
        args: args.clone(),
        counters: Counters::default(),
        pending: Arc::new(Mutex::new(HashMap::new())),
        last_wh: (0..args.chargers)
            .map(|_| AtomicU64::new(u64::MAX))
            .collect(),
        online: (0..args.chargers).map(|_| AtomicBool::new(false)).collect(),
        measuring: AtomicBool::new(false),
    });
    let started = Instant::now();

    // Daemon sampling first: the baseline RSS is taken before any session exists.
    let sampler = args.pid.map(|pid| Sampler::start(pid, args.rss_every));
    let baseline_rss = args.pid.and_then(rss_kb);

    // MQTT subscriber before the chargers, so no sample is missed.
    let mqtt = match &args.mqtt {
        Some(broker) => Some(MqttFollower::start(broker, &args.mqtt_prefix).await?),
        None => None,
    };

    // The master.
    let finish = Arc::new(AtomicBool::new(false));
    let master = {
        let (shared, finish) = (shared.clone(), finish.clone());
        std::thread::spawn(move || master(&shared, &finish))
    };

    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let (start_tx, start_rx) = watch::channel(false);
    let (release_tx, release_rx) = watch::channel(false);
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let n16 = ((args.chargers as f64) * args.share_16.clamp(0.0, 1.0)).round() as usize;
    let per = args.transactions / args.chargers as u64;
    let extra = args.transactions % args.chargers as u64;
    let mut seeds = Rng::new(args.seed);
    let mut tasks = Vec::with_capacity(args.chargers);
    for k in 0..args.chargers {
        let charger = Charger {
            index: k,
            id: format!("{}{k}", args.prefix),
            url: format!("{url}/{}{k}", args.prefix),
            addr: addr.clone(),
            v16: k < n16,
            transactions: per + u64::from((k as u64) < extra),
            // Distinct registers per charger, far from 2^31 Wh.
            energy_tenths: 10_000_000 + 1_000_000 * (k as u64 % 1000),
            rng: Rng::new(seeds.next()),
            shared: shared.clone(),
        };
        let (gate, up, done) = (gate.clone(), up_tx.clone(), done_tx.clone());
        let (start, release) = (start_rx.clone(), release_rx.clone());
        tasks.push(tokio::spawn(charger.run(gate, up, done, start, release)));
    }
    drop(up_tx);
    drop(done_tx);
    let connect_started = Instant::now();
    common::await_reports(
        &mut up_rx,
        args.chargers,
        Duration::from_secs_f64(args.connect_timeout),
    )
    .await;
    let connect_s = connect_started.elapsed().as_secs_f64();
    let established = shared.counters.established.load(Ordering::Relaxed);
    eprintln!(
        "soak: {established} of {} sessions up in {connect_s:.2} s",
        args.chargers
    );
    if master.is_finished() {
        return match master.join() {
            Ok(Err(e)) => Err(e.context("IEC 104 master")),
            _ => Err(anyhow!("IEC 104 master ended early")),
        };
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sessions_up_rss = args.pid.and_then(rss_kb);
    let sessions_up_at = Instant::now();
    let cpu_start = args.pid.and_then(cpu_ticks);
    if let Some(s) = &sampler {
        s.set_reference_after(sessions_up_at + Duration::from_secs_f64(args.rss_warmup));
    }
    shared.measuring.store(true, Ordering::Relaxed);
    start_tx.send_replace(true);

    // Progress until every charger has run its transactions.
    let mut done = 0;
    let mut last_progress = Instant::now();
    while done < args.chargers {
        match tokio::time::timeout(Duration::from_secs(1), done_rx.recv()).await {
            Ok(Some(())) => done += 1,
            Ok(None) => break,
            Err(_) => {}
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let c = &shared.counters;
            let rss = sampler.as_ref().and_then(|s| s.last());
            eprintln!(
                "soak: {:.0} s, {} transactions, {} messages, {done}/{} chargers done, daemon RSS {} kB",
                sessions_up_at.elapsed().as_secs_f64(),
                c.transactions.load(Ordering::Relaxed),
                c.messages.load(Ordering::Relaxed),
                args.chargers,
                rss.map_or("?".into(), |r| r.to_string()),
            );
            if sampler.as_ref().is_some_and(|s| s.crashed()) {
                eprintln!("soak: daemon PID gone");
                break;
            }
        }
    }
    let load_s = sessions_up_at.elapsed().as_secs_f64();
    let cpu_end = args.pid.and_then(cpu_ticks);

    // Let IEC 104 and MQTT catch up, then interrogate.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    let expected: Vec<Option<u64>> = shared
        .last_wh
        .iter()
        .map(|a| Some(a.load(Ordering::Relaxed)).filter(|v| *v != u64::MAX))
        .collect();
    if let Some(m) = &mqtt {
        while Instant::now() < drain_deadline && !m.caught_up(&shared, &expected) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    finish.store(true, Ordering::Relaxed);
    let stats = tokio::task::spawn_blocking(move || master.join())
        .await?
        .map_err(|_| anyhow!("IEC 104 master panicked"))?
        .context("IEC 104 master")?;
    // Charger snapshots are published at the engine's next tick: read until they match.
    let mut mqtt_state = None;
    if let Some(broker) = &args.mqtt {
        loop {
            let states =
                read_retained_states(broker, &args.mqtt_prefix, &args.prefix, args.chargers)
                    .await?;
            let all = expected.iter().enumerate().all(|(k, want)| {
                want.is_none() || states.get(&format!("{}{k}", args.prefix)) == want.as_ref()
            });
            mqtt_state = Some(states);
            if all || Instant::now() >= drain_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    release_tx.send_replace(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let end_rss = args.pid.and_then(rss_kb);
    let rss = sampler.map(Sampler::stop);

    // ------------------------------------------------------------------ verdict
    let mut failures: Vec<String> = Vec::new();
    let mut examples: Vec<Value> = Vec::new();
    let (mut sum_reported, mut sum_ci, mut sum_mqtt_meter, mut sum_mqtt_state) =
        (0u64, 0u64, 0u64, 0u64);
    let (mut ci_bad, mut meter_bad, mut state_bad, mut spont_bad) = (0u64, 0u64, 0u64, 0u64);
    let mqtt_last = mqtt.as_ref().map(|m| m.last.lock().expect("lock").clone());
    for (k, want) in expected.iter().enumerate() {
        let Some(want) = *want else {
            continue;
        };
        let id = format!("{}{k}", args.prefix);
        sum_reported += want;
        let ioa = shared.total_ioa(k);
        let ci = stats.ci.get(&ioa).copied();
        sum_ci += ci.unwrap_or(0);
        if ci != Some(want) {
            ci_bad += 1;
            if examples.len() < 10 {
                examples.push(json!({"charger": id, "sent_wh": want, "scada_ci_wh": ci}));
            }
        }
        if stats.spontaneous.get(&ioa).copied() != Some(want) {
            spont_bad += 1;
        }
        if let Some(last) = &mqtt_last {
            let got = last.get(&id).copied();
            sum_mqtt_meter += got.unwrap_or(0);
            if got != Some(want) {
                meter_bad += 1;
                if examples.len() < 10 {
                    examples.push(json!({"charger": id, "sent_wh": want, "mqtt_meter_wh": got}));
                }
            }
        }
        if let Some(states) = &mqtt_state {
            let got = states.get(&id).copied();
            sum_mqtt_state += got.unwrap_or(0);
            if got != Some(want) {
                state_bad += 1;
                if examples.len() < 10 {
                    examples.push(json!({"charger": id, "sent_wh": want, "mqtt_state_wh": got}));
                }
            }
        }
    }
    let c = &shared.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    if established < args.chargers as u64 {
        failures.push(format!("{established} of {} sessions up", args.chargers));
    }
    if ci_bad > 0 {
        failures.push(format!(
            "{ci_bad} chargers: SCADA counter ≠ last register sent"
        ));
    }
    if meter_bad > 0 {
        failures.push(format!(
            "{meter_bad} chargers: MQTT meter energy ≠ last register sent"
        ));
    }
    if state_bad > 0 {
        failures.push(format!(
            "{state_bad} chargers: MQTT state energy_wh ≠ last register sent"
        ));
    }
    if !stats.ci_terminated {
        failures.push("counter interrogation not terminated".into());
    }
    for (name, value) in [
        ("connect errors", load(&c.connect_errors)),
        ("CALLERRORs", load(&c.call_errors)),
        ("sessions closed", load(&c.closed)),
        ("call timeouts", load(&c.timeouts)),
        ("negative setpoint confirmations", stats.setpoints_negative),
        ("setpoints without confirmation", stats.setpoints_unanswered),
    ] {
        if value > 0 {
            failures.push(format!("{value} {name}"));
        }
    }
    let planned = args.transactions;
    if load(&c.transactions) != planned {
        failures.push(format!(
            "{} of {planned} transactions run",
            load(&c.transactions)
        ));
    }
    let mut daemon = json!(null);
    if let Some(pid) = args.pid {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            failures.push(format!("daemon PID {pid} gone (crash)"));
        }
        let hz = 100.0; // USER_HZ on Linux
        let cpu_s = match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => Some((b - a) as f64 / hz),
            _ => None,
        };
        let rss = rss.unwrap_or_default();
        if let Some(growth) = rss.growth_kb() {
            if growth > args.rss_growth_max_kb as i64 {
                failures.push(format!(
                    "daemon RSS grew {growth} kB after warm-up (bound {} kB)",
                    args.rss_growth_max_kb
                ));
            }
        }
        let per_session = match (baseline_rss, sessions_up_rss) {
            (Some(a), Some(b)) if established > 0 => {
                Some(((b as f64 - a as f64) / established as f64 * 100.0).round() / 100.0)
            }
            _ => None,
        };
        daemon = json!({
            "pid": pid,
            "alive": alive,
            "cpu_s": cpu_s,
            "cpu_percent_of_one_core": cpu_s.map(|s| (s / load_s * 1000.0).round() / 10.0),
            "rss_kb": {
                "before_sessions": baseline_rss,
                "sessions_up": sessions_up_rss,
                "min": rss.min(),
                "max": rss.max(),
                "reference_after_warmup": rss.reference,
                "max_after_warmup": rss.max_after_reference(),
                "growth_after_warmup": rss.growth_kb(),
                "growth_bound": args.rss_growth_max_kb,
                "end": end_rss,
                "samples": rss.samples.len(),
            },
            "rss_per_session_kb": per_session,
        });
    }
    let mut latencies = stats.latencies_us;
    latencies.sort_unstable();
    let pct = |p: f64| common::percentile_ms(&latencies, p);
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let report = json!({
        "ok": failures.is_empty(),
        "failures": failures,
        "chargers": args.chargers,
        "chargers_16": n16,
        "chargers_201": args.chargers - n16,
        "sessions_established": established,
        "connect_s": round2(connect_s),
        "transactions_planned": planned,
        "transactions": load(&c.transactions),
        "meter_values_per_transaction": args.meter_values,
        "interval_s": args.interval,
        "meter_samples": load(&c.meter_values),
        "ocpp_calls": load(&c.messages),
        "load_s": round2(load_s),
        "transactions_per_s": round2(load(&c.transactions) as f64 / load_s),
        "ocpp_calls_per_s": round2(load(&c.messages) as f64 / load_s),
        "total_s": round2(started.elapsed().as_secs_f64()),
        "energy": {
            "chargers_checked": expected.iter().flatten().count(),
            "sum_reported_wh": sum_reported,
            "sum_scada_ci_wh": sum_ci,
            "sum_mqtt_meter_wh": mqtt_last.as_ref().map(|_| sum_mqtt_meter),
            "sum_mqtt_state_wh": mqtt_state.as_ref().map(|_| sum_mqtt_state),
            "mismatch_scada_ci": ci_bad,
            "mismatch_mqtt_meter": mqtt_last.as_ref().map(|_| meter_bad),
            "mismatch_mqtt_state": mqtt_state.as_ref().map(|_| state_bad),
            "mismatch_scada_last_spontaneous": spont_bad,
            "examples": examples,
        },
        "setpoints": {
            "sent": stats.setpoints_sent,
            "confirmed": stats.setpoints_confirmed,
            "negative": stats.setpoints_negative,
            "unanswered": stats.setpoints_unanswered,
            "terminated": stats.setpoints_terminated,
        },
        "latency_charger_to_iec104_ms": {
            "what": "register sent by the charger → spontaneous M_IT_TB_1 of the charger total read by the master",
            "matched": latencies.len(),
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "p999": pct(0.999),
            "max": pct(1.0),
        },
        "iec104": {
            "iframes": stats.iframes,
            "objects": stats.objects,
            "spontaneous_counters": stats.spontaneous_counters,
        },
        "mqtt": mqtt.as_ref().map(|m| json!({
            "meter_messages": m.messages.load(Ordering::Relaxed),
            "energy_messages": m.energy_messages.load(Ordering::Relaxed),
            "bad_payloads": m.bad.load(Ordering::Relaxed),
            "retained_states": mqtt_state.as_ref().map(HashMap::len),
        })),
        "daemon": daemon,
        "errors": {
            "connect": load(&c.connect_errors),
            "call_error": load(&c.call_errors),
            "closed": load(&c.closed),
            "timeout": load(&c.timeouts),
        },
        "server_calls_answered": load(&c.server_calls),
    });
    println!("{report}");
    Ok(report["ok"] == json!(true))
}

// ---------------------------------------------------------------------------- daemon

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ") ".
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[derive(Default, Clone)]
struct RssSeries {
    samples: Vec<(f64, u64)>,
    reference: Option<u64>,
    reference_index: Option<usize>,
}

impl RssSeries {
    fn min(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.1).min()
    }
    fn max(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.1).max()
    }
    fn max_after_reference(&self) -> Option<u64> {
        let i = self.reference_index?;
        self.samples[i..].iter().map(|s| s.1).max()
    }
    fn growth_kb(&self) -> Option<i64> {
        Some(self.max_after_reference()? as i64 - self.reference? as i64)
    }
}

struct Sampler {
    series: Arc<Mutex<RssSeries>>,
    reference_after: Arc<Mutex<Option<Instant>>>,
    gone: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32, every: f64) -> Sampler {
        let series = Arc::new(Mutex::new(RssSeries::default()));
        let reference_after: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let gone = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (series, reference_after) = (series.clone(), reference_after.clone());
            let (gone, stop) = (gone.clone(), stop.clone());
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let every = Duration::from_secs_f64(every.max(0.1));
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if Instant::now() >= next {
                        next += every;
                        match rss_kb(pid) {
                            Some(kb) => {
                                let mut s = series.lock().expect("lock");
                                s.samples.push((t0.elapsed().as_secs_f64(), kb));
                                let due = reference_after
                                    .lock()
                                    .expect("lock")
                                    .is_some_and(|t| Instant::now() >= t);
                                if due && s.reference.is_none() {
                                    s.reference = Some(kb);
                                    s.reference_index = Some(s.samples.len() - 1);
                                }
                            }
                            None => gone.store(true, Ordering::Relaxed),
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Sampler {
            series,
            reference_after,
            gone,
            stop,
            thread,
        }
    }
    fn set_reference_after(&self, t: Instant) {
        *self.reference_after.lock().expect("lock") = Some(t);
    }
    fn last(&self) -> Option<u64> {
        self.series
            .lock()
            .expect("lock")
            .samples
            .last()
            .map(|s| s.1)
    }
    fn crashed(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }
    fn stop(self) -> RssSeries {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let s = self.series.lock().expect("lock").clone();
        s
    }
}

// ------------------------------------------------------------------------------ MQTT

fn host_port(broker: &str) -> Result<(String, u16)> {
    let broker = broker.trim_start_matches("mqtt://");
    let (host, port) = broker
        .rsplit_once(':')
        .with_context(|| format!("MQTT broker {broker:?} is not HOST:PORT"))?;
    Ok((host.to_string(), port.parse().context("MQTT port")?))
}

struct MqttFollower {
    /// Charger id → last energy register (Wh, rounded) seen on `chargers/{id}/meter`.
    last: Arc<Mutex<HashMap<String, u64>>>,
    messages: Arc<AtomicU64>,
    energy_messages: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    _task: tokio::task::JoinHandle<()>,
}

impl MqttFollower {
    async fn start(broker: &str, prefix: &str) -> Result<MqttFollower> {
        let filter = format!("{prefix}/chargers/+/meter");
        let (client, mut eventloop) = mqtt_subscribe(broker, "soak", &filter, 1000).await?;
        // Wait for SUBACK so nothing published after start() is missed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, eventloop.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("MQTT broker {broker}: {e}"),
                Err(_) => bail!("MQTT broker {broker}: no SUBACK within 10 s"),
            }
        }
        let last: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let messages = Arc::new(AtomicU64::new(0));
        let energy_messages = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let task = {
            let (last, messages, energy, bad) = (
                last.clone(),
                messages.clone(),
                energy_messages.clone(),
                bad.clone(),
            );
            let prefix = format!("{prefix}/chargers/");
            tokio::spawn(async move {
                let _client = client; // keeps the connection's request channel open
                loop {
                    match eventloop.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            messages.fetch_add(1, Ordering::Relaxed);
                            let Some(id) = p
                                .topic
                                .strip_prefix(&prefix)
                                .and_then(|t| t.strip_suffix("/meter"))
                            else {
                                continue;
                            };
                            let Ok(v) = serde_json::from_slice::<Value>(&p.payload) else {
                                bad.fetch_add(1, Ordering::Relaxed);
                                continue;
                            };
                            if v.get("measurand").and_then(Value::as_str) != Some(ENERGY_MEASURAND)
                            {
                                continue;
                            }
                            energy.fetch_add(1, Ordering::Relaxed);
                            match v.get("value").and_then(Value::as_f64) {
                                Some(wh) if v.get("valid") == Some(&Value::Bool(true)) => {
                                    last.lock()
                                        .expect("lock")
                                        .insert(id.to_string(), wh.round() as u64);
                                }
                                _ => {
                                    bad.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("soak: MQTT subscriber: {e}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            })
        };
        Ok(MqttFollower {
            last,
            messages,
            energy_messages,
            bad,
            _task: task,
        })
    }

    fn caught_up(&self, shared: &Shared, expected: &[Option<u64>]) -> bool {
        let last = self.last.lock().expect("lock");
        expected.iter().enumerate().all(|(k, want)| match want {
            Some(want) => last.get(&format!("{}{k}", shared.args.prefix)) == Some(want),
            None => true,
        })
    }
}

/// An MQTT client (id `{name}-{pid}`, clean session, 1 MiB packets) that has asked to
/// subscribe to `filter` at QoS 1; `capacity` requests may queue towards its event loop.
async fn mqtt_subscribe(
    broker: &str,
    name: &str,
    filter: &str,
    capacity: usize,
) -> Result<(rumqttc::AsyncClient, rumqttc::EventLoop)> {
    let (host, port) = host_port(broker)?;
    let mut options =
        rumqttc::MqttOptions::new(format!("{name}-{}", std::process::id()), host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, eventloop) = rumqttc::AsyncClient::new(options, capacity);
    client
        .subscribe(filter, rumqttc::QoS::AtLeastOnce)
        .await
        .context("MQTT subscribe")?;
    Ok((client, eventloop))
}

/// Reads the retained `chargers/{id}/state` of every charger: id → energy_wh.
async fn read_retained_states(
    broker: &str,
    prefix: &str,
    id_prefix: &str,
    chargers: usize,
) -> Result<HashMap<String, u64>> {
    let filter = format!("{prefix}/chargers/+/state");
    let (client, mut eventloop) = mqtt_subscribe(broker, "soak-state", &filter, 100).await?;
    let topic_prefix = format!("{prefix}/chargers/");
    let mut states = HashMap::new();
    // Retained messages come right after SUBACK; stop when all are in or 2 s pass quietly.
    let mut quiet_until = Instant::now() + Duration::from_secs(10);
    while states.len() < chargers {
        let remaining = quiet_until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, eventloop.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                quiet_until = Instant::now() + Duration::from_secs(2);
                let Some(id) = p
                    .topic
                    .strip_prefix(&topic_prefix)
                    .and_then(|t| t.strip_suffix("/state"))
                else {
                    continue;
                };
                if !id.starts_with(id_prefix) {
                    continue;
                }
                let energy = serde_json::from_slice::<Value>(&p.payload)
                    .ok()
                    .and_then(|v| v.get("energy_wh").and_then(Value::as_f64));
                if let Some(wh) = energy {
                    states.insert(id.to_string(), wh.round() as u64);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("MQTT broker {broker}: {e}"),
            Err(_) => break,
        }
    }
    let _ = client.disconnect().await;
    Ok(states)
}

// ---------------------------------------------------------------------------- master

#[derive(Default)]
struct MasterStats {
    latencies_us: Vec<u32>,
    iframes: u64,
    objects: u64,
    spontaneous_counters: u64,
    /// Charger total IOA → last spontaneous counter value.
    spontaneous: HashMap<u32, u64>,
    /// Charger total IOA → counter interrogation value.
    ci: HashMap<u32, u64>,
    ci_terminated: bool,
    setpoints_sent: u64,
    setpoints_confirmed: u64,
    setpoints_negative: u64,
    setpoints_unanswered: u64,
    setpoints_terminated: u64,
}

struct Link {
    stream: std::net::TcpStream,
    next_send: u16,
    next_recv: u16,
    unacked: u16,
}

impl Link {
    fn send(&mut self, apdu: &Apdu) -> Result<()> {
        let mut out = Vec::with_capacity(64);
        apdu.encode(&mut out)?;
        self.stream
            .write_all(&out)
            .context("writing to the station")
    }

    fn send_asdu(&mut self, asdu: &Asdu) -> Result<()> {
        let mut bytes = Vec::with_capacity(32);
        asdu.encode(AsduParams::IEC104, &mut bytes)?;
        let apdu = Apdu::I {
            send_seq: self.next_send,
            recv_seq: self.next_recv,
            asdu: bytes,
        };
        self.next_send = (self.next_send + 1) % SEQ_MODULUS;
        self.unacked = 0;
        self.send(&apdu)
    }

    fn ack(&mut self) -> Result<()> {
        if self.unacked > 0 {
            self.unacked = 0;
            let recv_seq = self.next_recv;
            self.send(&Apdu::S { recv_seq })?;
        }
        Ok(())
    }
}

/// The IEC 104 master: setpoints while the load runs, latency matching, then a counter
/// interrogation once `finish` is set.
fn master(shared: &Shared, finish: &AtomicBool) -> Result<MasterStats> {
    let args = &shared.args;
    let stream = std::net::TcpStream::connect_timeout(&args.iec104, Duration::from_secs(5))
        .with_context(|| format!("connecting to {}", args.iec104))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut link = Link {
        stream,
        next_send: 0,
        next_recv: 0,
        unacked: 0,
    };
    link.send(&Apdu::U(UFunction::StartDtAct))?;
    let mut stats = MasterStats::default();
    let total_to_charger: HashMap<u32, usize> = (0..args.chargers)
        .map(|k| (shared.total_ioa(k), k))
        .collect();
    let mut rng = Rng::new(args.seed ^ 0x5e7_9017);
    let mut started = false;
    let setpoint_every =
        (args.setpoint_every > 0.0).then(|| Duration::from_secs_f64(args.setpoint_every));
    let mut next_setpoint = Instant::now() + Duration::from_secs(1);
    // Setpoint IOA → (value, sent).
    let mut open_setpoints: HashMap<u32, (f32, Instant)> = HashMap::new();
    let mut finishing: Option<Instant> = None;
    let mut ci_sent: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::with_capacity(128 * 1024);
    loop {
        let now = Instant::now();
        // ---- commands
        if started && finishing.is_none() {
            if let Some(every) = setpoint_every {
                if now >= next_setpoint && shared.measuring.load(Ordering::Relaxed) {
                    next_setpoint = now + every;
                    let k = rng.below(args.chargers as u64) as usize;
                    let ioa = args.ioa_base + args.ioa_stride * k as u32 + POWER_SETPOINT;
                    if shared.online[k].load(Ordering::Relaxed)
                        && !open_setpoints.contains_key(&ioa)
                    {
                        // 11.0 … 15.0 kW: a small change from max_kw 22 or any earlier limit.
                        let kw = 11.0 + rng.below(41) as f32 / 10.0;
                        let mut asdu = Asdu::new(
                            TypeId::C_SE_NC_1,
                            Cot::new(Cause::ACTIVATION),
                            args.common_address,
                        );
                        asdu.objects.push(InformationObject {
                            address: ioa,
                            value: IoValue::SetpointFloat {
                                value: kw,
                                qos: Qos {
                                    ql: 0,
                                    select: false,
                                },
                            },
                            time: None,
                        });
                        link.send_asdu(&asdu)?;
                        open_setpoints.insert(ioa, (kw, now));
                        stats.setpoints_sent += 1;
                    }
                }
            }
            if finish.load(Ordering::Relaxed) {
                finishing = Some(now);
            }
        }
        open_setpoints.retain(|_, (_, t)| {
            let late = now.duration_since(*t) > Duration::from_secs(35);
            if late {
                stats.setpoints_unanswered += 1;
            }
            !late
        });
        if let Some(since) = finishing {
            if ci_sent.is_none()
                && (open_setpoints.is_empty()
                    || now.duration_since(since) > Duration::from_secs(40))
            {
                let mut asdu = Asdu::new(
                    TypeId::C_CI_NA_1,
                    Cot::new(Cause::ACTIVATION),
                    args.common_address,
                );
                asdu.objects.push(InformationObject {
                    address: 0,
                    value: IoValue::CounterInterrogation(Qcc {
                        request: 5,
                        freeze: Freeze::Read,
                    }),
                    time: None,
                });
                link.send_asdu(&asdu)?;
                ci_sent = Some(now);
            }
            if stats.ci_terminated {
                break;
            }
            if ci_sent.is_some_and(|t| now.duration_since(t) > Duration::from_secs(60)) {
                eprintln!("soak: counter interrogation not terminated within 60 s");
                break;
            }
        }

        // ---- receive
        let n = match link.stream.read(&mut buf) {
            Ok(0) => bail!("connection closed by the station"),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                link.ack()?;
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
                    if send_seq != link.next_recv {
                        bail!("I-frame N(S)={send_seq}, expected {}", link.next_recv);
                    }
                    link.next_recv = (link.next_recv + 1) % SEQ_MODULUS;
                    stats.iframes += 1;
                    let asdu = Asdu::decode(&asdu, AsduParams::IEC104).context("ASDU")?;
                    stats.objects += asdu.objects.len() as u64;
                    on_asdu(
                        shared,
                        &asdu,
                        now,
                        &total_to_charger,
                        &mut open_setpoints,
                        &mut stats,
                    );
                    link.unacked += 1;
                    if link.unacked >= args.w {
                        link.ack()?;
                    }
                }
                Apdu::U(UFunction::TestFrAct) => link.send(&Apdu::U(UFunction::TestFrCon))?,
                Apdu::U(UFunction::StartDtCon) => started = true,
                Apdu::U(_) | Apdu::S { .. } => {}
            }
        }
        pending.drain(..used);
    }
    stats.setpoints_unanswered += open_setpoints.len() as u64;
    link.ack()?;
    Ok(stats)
}

fn on_asdu(
    shared: &Shared,
    asdu: &Asdu,
    now: Instant,
    total_to_charger: &HashMap<u32, usize>,
    open_setpoints: &mut HashMap<u32, (f32, Instant)>,
    stats: &mut MasterStats,
) {
    let cause = asdu.cot.cause;
    match asdu.type_id {
        TypeId::C_SE_NC_1 => {
            for object in &asdu.objects {
                if cause == Cause::ACTIVATION_CON {
                    if open_setpoints.remove(&object.address).is_some() {
                        if asdu.cot.negative {
                            stats.setpoints_negative += 1;
                            eprintln!("soak: negative ACTCON for setpoint IOA {}", object.address);
                        } else {
                            stats.setpoints_confirmed += 1;
                        }
                    }
                } else if cause == Cause::ACTIVATION_TERMINATION {
                    stats.setpoints_terminated += 1;
                }
            }
        }
        TypeId::C_CI_NA_1 if cause == Cause::ACTIVATION_TERMINATION => stats.ci_terminated = true,
        TypeId::C_CI_NA_1 if asdu.cot.negative => {
            eprintln!("soak: counter interrogation refused: {:?}", asdu.cot);
        }
        TypeId::M_IT_TB_1 | TypeId::M_IT_NA_1 => {
            for object in &asdu.objects {
                let IoValue::IntegratedTotal(bcr) = object.value else {
                    continue;
                };
                if !total_to_charger.contains_key(&object.address) || bcr.invalid {
                    continue;
                }
                let value = u64::from(bcr.value as u32);
                if cause == Cause::COUNTER_INTERROGATION {
                    stats.ci.insert(object.address, value);
                } else if cause == Cause::SPONTANEOUS {
                    stats.spontaneous_counters += 1;
                    stats.spontaneous.insert(object.address, value);
                    let mut pending = shared.pending.lock().expect("lock");
                    if let Some(queue) = pending.get_mut(&object.address) {
                        // Registers up to this one have arrived (or were coalesced).
                        while let Some(&(wh, t)) = queue.front() {
                            if wh > value {
                                break;
                            }
                            queue.pop_front();
                            if wh == value {
                                let us = now.duration_since(t).as_micros();
                                stats.latencies_us.push(us.min(u128::from(u32::MAX)) as u32);
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

// --------------------------------------------------------------------------- chargers

enum CallFail {
    Closed,
    Timeout,
}

struct Charger {
    index: usize,
    id: String,
    url: String,
    addr: String,
    v16: bool,
    transactions: u64,
    /// Energy register in tenths of Wh.
    energy_tenths: u64,
    rng: Rng,
    shared: Arc<Shared>,
}

fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Charger {
    async fn run(
        mut self,
        gate: Arc<Semaphore>,
        up: tokio::sync::mpsc::UnboundedSender<()>,
        done: tokio::sync::mpsc::UnboundedSender<()>,
        mut start: watch::Receiver<bool>,
        mut release: watch::Receiver<bool>,
    ) {
        let permit = gate.acquire().await;
        let ws = self.connect().await;
        drop(permit);
        let _ = up.send(());
        let Some(mut ws) = ws else {
            let _ = done.send(());
            return;
        };
        self.shared.online[self.index].store(true, Ordering::Relaxed);
        if start.wait_for(|s| *s).await.is_err() {
            return;
        }
        let ok = self.transactions(&mut ws).await;
        let _ = done.send(());
        self.shared
            .counters
            .finished
            .fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.shared.online[self.index].store(false, Ordering::Relaxed);
            return;
        }
        // Stay connected (answering the daemon's CALLs) until the master is done.
        loop {
            tokio::select! {
                changed = release.changed() => {
                    if changed.is_err() || *release.borrow() {
                        break;
                    }
                }
                message = ws.next() => {
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            if !self.answer_server_call(&mut ws, text.as_str()).await {
                                self.shared.counters.closed.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => {
                            self.shared.counters.closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        }
        self.shared.online[self.index].store(false, Ordering::Relaxed);
        let _ = ws.close(None).await;
    }

    async fn connect(&mut self) -> Option<Ws> {
        let protocol = if self.v16 { "ocpp1.6" } else { "ocpp2.0.1" };
        let c = &self.shared.counters;
        let mut ws = common::connect_charger(
            &self.addr,
            &self.url,
            protocol,
            Duration::from_secs(30),
            &c.connect_errors,
            "soak",
        )
        .await?;
        let (boot, status) = if self.v16 {
            (
                json!({"chargePointVendor": "Soak", "chargePointModel": "soak16"}),
                json!({"connectorId": 1, "status": "Available", "errorCode": "NoError"}),
            )
        } else {
            (
                json!({"reason": "PowerUp", "chargingStation": {"vendorName": "Soak", "model": "soak201"}}),
                json!({"timestamp": now_ts(), "connectorStatus": "Available", "evseId": 1, "connectorId": 1}),
            )
        };
        for (action, payload) in [("BootNotification", boot), ("StatusNotification", status)] {
            if self.call(&mut ws, action, payload).await.is_none() {
                c.connect_errors.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        c.established.fetch_add(1, Ordering::Relaxed);
        Some(ws)
    }

    /// Advances the register by 1.0 … 30.9 Wh, so every rounded value is new.
    fn step(&mut self) -> u64 {
        self.energy_tenths += 10 + self.rng.below(300);
        self.energy_tenths
    }

    /// Records a register about to be sent (Wh rounded half up, as the daemon rounds).
    fn note_register(&self, tenths: u64) {
        let wh = (tenths + 5) / 10;
        let before = self.shared.last_wh[self.index].swap(wh, Ordering::Relaxed);
        // A repeated register (2.0.1 Ended / next Started) changes nothing at the station.
        if before != wh && self.shared.measuring.load(Ordering::Relaxed) {
            let ioa = self.shared.total_ioa(self.index);
            self.shared
                .pending
                .lock()
                .expect("lock")
                .entry(ioa)
                .or_default()
                .push_back((wh, Instant::now()));
        }
    }

    async fn transactions(&mut self, ws: &mut Ws) -> bool {
        let interval = Duration::from_secs_f64(self.shared.args.interval.max(0.0));
        let mut next = tokio::time::Instant::now();
        // Spread the chargers' first samples over one interval.
        if !interval.is_zero() {
            next += interval.mul_f64(self.index as f64 / self.shared.args.chargers as f64);
        }
        for t in 0..self.transactions {
            let ok = if self.v16 {
                self.transaction_16(ws, t, interval, &mut next).await
            } else {
                self.transaction_201(ws, t, interval, &mut next).await
            };
            if !ok {
                return false;
            }
            self.shared
                .counters
                .transactions
                .fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    async fn pace(interval: Duration, next: &mut tokio::time::Instant) {
        if interval.is_zero() {
            return;
        }
        tokio::time::sleep_until(*next).await;
        *next += interval;
        let now = tokio::time::Instant::now();
        if *next < now {
            *next = now;
        }
    }

    fn power_w(&mut self) -> u64 {
        // 3.7 … 22.0 kW in 0.1 kW steps.
        37 + self.rng.below(184)
    }

    async fn transaction_16(
        &mut self,
        ws: &mut Ws,
        t: u64,
        interval: Duration,
        next: &mut tokio::time::Instant,
    ) -> bool {
        let start_wh = self.energy_tenths.div_ceil(10);
        let start = json!({"connectorId": 1, "idTag": format!("TAG{}", t % 100), "meterStart": start_wh, "timestamp": now_ts()});
        let Some(answer) = self.call(ws, "StartTransaction", start).await else {
            return false;
        };
        let Some(tx_id) = answer.get("transactionId").and_then(Value::as_i64) else {
            eprintln!(
                "soak: {}: StartTransaction answer without transactionId: {answer}",
                self.id
            );
            self.shared
                .counters
                .call_errors
                .fetch_add(1, Ordering::Relaxed);
            return false;
        };
        for _ in 0..self.shared.args.meter_values {
            Self::pace(interval, next).await;
            let tenths = self.step();
            let power = self.power_w();
            // Legacy forms the sanitizer accepts: "12.3kW" without a unit field, and a
            // decimal comma for the register.
            let payload = json!({
                "connectorId": 1,
                "transactionId": tx_id,
                "meterValue": [{"timestamp": now_ts(), "sampledValue": [
                    {"value": format!("{}.{}kW", power / 10, power % 10), "measurand": "Power.Active.Import"},
                    {"value": format!("{},{}", tenths / 10, tenths % 10), "measurand": ENERGY_MEASURAND, "unit": "Wh"}
                ]}]
            });
            self.note_register(tenths);
            if self.call(ws, "MeterValues", payload).await.is_none() {
                return false;
            }
            self.shared
                .counters
                .meter_values
                .fetch_add(1, Ordering::Relaxed);
        }
        let stop = json!({
            "transactionId": tx_id,
            "meterStop": self.energy_tenths.div_ceil(10),
            "timestamp": now_ts(),
            "reason": "Local",
            "idTag": format!("TAG{}", t % 100),
        });
        self.call(ws, "StopTransaction", stop).await.is_some()
    }

    async fn transaction_201(
        &mut self,
        ws: &mut Ws,
        t: u64,
        interval: Duration,
        next: &mut tokio::time::Instant,
    ) -> bool {
        let tx_id = format!("{}-{t}", self.id);
        let register = |tenths: u64, context: &str| {
            json!({"value": tenths as f64 / 10.0, "measurand": ENERGY_MEASURAND,
                   "context": context, "unitOfMeasure": {"unit": "Wh"}})
        };
        let tenths = self.energy_tenths;
        let started = json!({
            "eventType": "Started", "timestamp": now_ts(), "triggerReason": "Authorized", "seqNo": 0,
            "transactionInfo": {"transactionId": tx_id, "chargingState": "EVConnected"},
            "idToken": {"idToken": format!("TAG{}", t % 100), "type": "ISO14443"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": now_ts(), "sampledValue": [register(tenths, "Transaction.Begin")]}],
        });
        self.note_register(tenths);
        if self.call(ws, "TransactionEvent", started).await.is_none() {
            return false;
        }
        let mut seq = 1;
        for _ in 0..self.shared.args.meter_values {
            Self::pace(interval, next).await;
            let tenths = self.step();
            let power = self.power_w();
            let updated = json!({
                "eventType": "Updated", "timestamp": now_ts(), "triggerReason": "MeterValuePeriodic",
                "seqNo": seq,
                "transactionInfo": {"transactionId": tx_id, "chargingState": "Charging"},
                "meterValue": [{"timestamp": now_ts(), "sampledValue": [
                    {"value": power as f64 * 100.0, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                    register(tenths, "Sample.Periodic"),
                ]}],
            });
            seq += 1;
            self.note_register(tenths);
            if self.call(ws, "TransactionEvent", updated).await.is_none() {
                return false;
            }
            self.shared
                .counters
                .meter_values
                .fetch_add(1, Ordering::Relaxed);
        }
        let tenths = self.energy_tenths;
        let ended = json!({
            "eventType": "Ended", "timestamp": now_ts(), "triggerReason": "StopAuthorized", "seqNo": seq,
            "transactionInfo": {"transactionId": tx_id, "stoppedReason": "Local"},
            "meterValue": [{"timestamp": now_ts(), "sampledValue": [register(tenths, "Transaction.End")]}],
        });
        self.note_register(tenths);
        self.call(ws, "TransactionEvent", ended).await.is_some()
    }

    /// Sends a CALL and reads until its answer, answering the daemon's CALLs meanwhile.
    /// `None` when the session failed (counted).
    async fn call(&self, ws: &mut Ws, action: &str, payload: Value) -> Option<Value> {
        let c = &self.shared.counters;
        let id = format!("{}", c.messages.fetch_add(1, Ordering::Relaxed));
        let frame = json!([2, id, action, payload]).to_string();
        match self.send_and_wait(ws, frame, &id).await {
            Ok(v) => Some(v),
            Err(CallFail::Closed) => {
                if c.closed.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("soak: {}: session closed during {action}", self.id);
                }
                None
            }
            Err(CallFail::Timeout) => {
                if c.timeouts.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("soak: {}: no answer to {action} within 30 s", self.id);
                }
                None
            }
        }
    }

    async fn send_and_wait(&self, ws: &mut Ws, frame: String, id: &str) -> Result<Value, CallFail> {
        if ws.send(Message::text(frame)).await.is_err() {
            return Err(CallFail::Closed);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let message = match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(_) => return Err(CallFail::Closed),
                Err(_) => return Err(CallFail::Timeout),
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => return Err(CallFail::Closed),
                _ => continue,
            };
            let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            let same_id = frame.get(1).and_then(Value::as_str) == Some(id);
            match frame.first().and_then(Value::as_u64) {
                Some(3) if same_id => return Ok(frame.get(2).cloned().unwrap_or(Value::Null)),
                Some(4) if same_id => {
                    let c = &self.shared.counters;
                    if c.call_errors.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("soak: {}: CALLERROR {text}", self.id);
                    }
                    return Ok(Value::Null);
                }
                Some(2) => {
                    let answered = self.answer_server_call(ws, text.as_str()).await;
                    if !answered {
                        return Err(CallFail::Closed);
                    }
                }
                _ => {}
            }
        }
    }

    /// Answers a CALL from the daemon: limits, availability and resets are accepted.
    async fn answer_server_call(&self, ws: &mut Ws, text: &str) -> bool {
        let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(text) else {
            return true;
        };
        if frame.first().and_then(Value::as_u64) != Some(2) {
            return true;
        }
        self.shared
            .counters
            .server_calls
            .fetch_add(1, Ordering::Relaxed);
        let id = frame.get(1).cloned().unwrap_or(Value::Null);
        let reply = match frame.get(2).and_then(Value::as_str) {
            Some(
                "SetChargingProfile" | "ClearChargingProfile" | "ChangeAvailability" | "Reset",
            ) => json!([3, id, {"status": "Accepted"}]),
            _ => json!([4, id, "NotImplemented", "soak", {}]),
        };
        ws.send(Message::text(reply.to_string())).await.is_ok()
    }
}
