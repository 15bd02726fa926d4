//! Load source for the IEC 60870-5-104 throughput benchmark (`bench/iec104.sh`).
//!
//! Serves a station of N monitored points with the real server (`iec104::server::serve`)
//! and changes them round-robin as fast as the station drains them: single points
//! (`--kind single`: events, one object per ASDU, never coalesced) or short floats
//! (`--kind float`: measurements, packed several to an ASDU). The producer stops while the
//! transmit queues hold `--high-water` objects or more, so it measures the server and the
//! master, not queue overflow; drops are reported anyway.
//!
//! ```text
//! cargo run --release --example iec104_source -- --listen 127.0.0.1:2404 --kind single
//! ```
//!
//! Runs until `--seconds` elapse or Ctrl-C / SIGTERM, then prints one JSON line on stdout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use ocpp809::asdu::Quality;
use ocpp809::iec104::link::LinkConfig;
use ocpp809::iec104::server::{serve, ServerSettings};
use ocpp809::station::{
    MonitorKind, PointSpec, PointUpdate, PointValue, Station, StationConfig, StationHandle,
};

/// Updates applied per lock of the station.
const BATCH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Single,
    Float,
}

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    points: u32,
    kind: Kind,
    k: u16,
    w: u16,
    seconds: Option<f64>,
    high_water: Option<usize>,
}

fn usage() -> &'static str {
    "usage: iec104_source --listen ADDR:PORT [--points N] [--kind single|float] [--k K] \
     [--w W] [--seconds S] [--high-water N]"
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        listen: "127.0.0.1:2404".parse()?,
        points: 1000,
        kind: Kind::Single,
        k: 12,
        w: 8,
        seconds: None,
        high_water: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{}", usage());
            std::process::exit(0);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{}", usage()))?;
        match flag.as_str() {
            "--listen" => args.listen = value.parse().context("--listen")?,
            "--points" => args.points = value.parse().context("--points")?,
            "--kind" => {
                args.kind = match value.as_str() {
                    "single" => Kind::Single,
                    "float" => Kind::Float,
                    other => bail!("--kind {other}: expected single or float"),
                }
            }
            "--k" => args.k = value.parse().context("--k")?,
            "--w" => args.w = value.parse().context("--w")?,
            "--seconds" => args.seconds = Some(value.parse().context("--seconds")?),
            "--high-water" => args.high_water = Some(value.parse().context("--high-water")?),
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if args.points == 0 {
        bail!("--points must be at least 1");
    }
    Ok(args)
}

/// What the producer did, reported at the end.
#[derive(Debug, Default)]
struct Produced {
    updates: u64,
    /// Back-offs because the queues were at the high-water mark.
    throttled: u64,
}

/// Runs on its own thread so that it can back off for less than tokio's 1 ms timer tick:
/// with floats the coalescing queue holds at most `points` objects, which the link drains
/// in well under a millisecond.
fn produce(
    station: StationHandle,
    kind: Kind,
    points: u32,
    high_water: usize,
    stop: Arc<AtomicBool>,
) -> Produced {
    let mut produced = Produced::default();
    let mut ioa = 0u32;
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let made = station.with(|s| {
            // Before a master starts data transfer the events would pile up in the standby
            // buffer; wait for one instead.
            if !s.any_active() {
                return None;
            }
            let room = high_water.saturating_sub(s.queued()).min(BATCH);
            let time = Utc::now();
            for _ in 0..room {
                ioa = ioa % points + 1;
                if ioa == 1 {
                    round += 1;
                }
                let value = match kind {
                    // Alternates on every round, so each update is a change.
                    Kind::Single => PointValue::Single(round % 2 == 1),
                    Kind::Float => {
                        PointValue::Float((round * u64::from(points) + u64::from(ioa)) as f32)
                    }
                };
                let update = PointUpdate {
                    ioa,
                    value: Some(value),
                    quality: Quality::GOOD,
                    time,
                };
                s.update(&update).expect("every IOA was added at start-up");
            }
            Some(room)
        });
        match made {
            None => std::thread::sleep(Duration::from_millis(1)),
            Some(0) => {
                // Queues at the high-water mark: let the link tasks drain them.
                produced.throttled += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            Some(n) => produced.updates += n as u64,
        }
    }
    produced
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let monitor = match args.kind {
        Kind::Single => MonitorKind::Single,
        Kind::Float => MonitorKind::Float,
    };
    let config = StationConfig::default();
    // Events: well below the event queue bound, so nothing is dropped. Measurements are
    // coalesced per point: stay below the point count so that every update is delivered.
    let high_water = args.high_water.unwrap_or(match args.kind {
        Kind::Single => (config.event_capacity / 2).max(1),
        Kind::Float => (args.points as usize / 2).max(1),
    });
    let mut station = Station::new(config);
    station
        .add_points(
            (1..=args.points).map(|ioa| PointSpec::monitor(ioa, monitor)),
            None,
        )
        .context("adding points")?;
    let station = StationHandle::new(station);

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let settings = ServerSettings {
        allowed_masters: Vec::new(),
        max_masters: 4,
        link: LinkConfig {
            k: args.k,
            w: args.w,
            ..LinkConfig::default()
        },
        common_address: 1,
        metrics: Default::default(),
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (app_tx, mut app_rx) = mpsc::channel(64);
    let drain = tokio::spawn(async move { while app_rx.recv().await.is_some() {} });
    let server = tokio::spawn(serve(
        listener,
        settings,
        station.clone(),
        app_tx,
        shutdown_rx,
        ocpp809::health::Heartbeat::detached(),
    ));
    eprintln!(
        "iec104_source: listening on {} ({} {:?} points, k={} w={}, high water {high_water})",
        args.listen, args.points, args.kind, args.k, args.w
    );
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (station, stop) = (station.clone(), stop.clone());
        let (kind, points) = (args.kind, args.points);
        std::thread::spawn(move || produce(station, kind, points, high_water, stop))
    };

    match args.seconds {
        Some(seconds) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
                _ = stop_signal() => {}
            }
        }
        None => stop_signal().await,
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = shutdown_tx.send(true);
    stop.store(true, Ordering::Relaxed);
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("producer thread panicked"))?;
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    drain.abort();
    let (stats, queued) = station.with(|s| (s.stats(), s.queued()));
    println!(
        "{{\"kind\":\"{}\",\"points\":{},\"updates\":{},\"updates_per_s\":{:.0},\"events_dropped\":{},\"queued_at_end\":{},\"throttled\":{},\"seconds\":{:.3}}}",
        match args.kind {
            Kind::Single => "single",
            Kind::Float => "float",
        },
        args.points,
        produced.updates,
        produced.updates as f64 / elapsed,
        stats.events_dropped,
        queued,
        produced.throttled,
        elapsed
    );
    Ok(())
}
