//! One task per `[[meter]]`: connects (Modbus TCP or RTU), reads the planned registers every
//! `poll_ms` on a fixed schedule and reports each poll as a [`MeterEvent`] (CONTRACT §3 "Meter
//! points", §7 "Modbus").
//!
//! Failure handling: a refused connection, a timeout (`min(poll_ms, 3000)` ms per request),
//! a Modbus exception or a value that does not decode makes the poll fail. After a timeout or
//! transport error the connection is dropped (a late answer would otherwise be taken for the
//! next request's) and reopened with exponential backoff, 0.5 s doubling to 30 s, reset by a
//! good poll. While down the task still emits `Failed` once per poll interval, so the
//! application sees staleness without a timer of its own. An exception keeps the connection:
//! the device answered, it just refused the request.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};
use tokio_modbus::client::{Client, Context, Reader};
use tokio_modbus::slave::SlaveContext;
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::{DataBits, SerialPortBuilderExt, StopBits};
use tracing::{debug, info, warn};

use super::registers::{DecodeError, PlanError, ReadFunction, ReadPlan, ReadRequest};
use crate::config::{Meter, Parity};
use crate::health::{Health, Heartbeat};
use crate::mapping::meter::{MeterEvent, MeterIndex};

/// First reconnect delay after a failure.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Largest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Slack allowed when comparing a tick with the scheduled reconnect time.
const CONNECT_SLACK: Duration = Duration::from_millis(20);
/// Upper bound of the per-request timeout (CONTRACT §7).
pub const REQUEST_TIMEOUT_MAX: Duration = Duration::from_millis(3000);

/// Why a poll failed. Its `Display` is the `error` text of [`MeterEvent::Failed`].
#[derive(Debug, Error)]
pub enum PollError {
    #[error("meter has neither `tcp` nor `rtu` set")]
    NoTransport,
    #[error("cannot resolve {addr}: {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connect to {addr}: no answer within {timeout_ms} ms")]
    ConnectTimeout { addr: String, timeout_ms: u128 },
    #[error("open {device}: {source}")]
    SerialOpen {
        device: String,
        source: tokio_serial::Error,
    },
    #[error("not connected, next attempt in {retry_ms} ms (last error: {last})")]
    Disconnected { retry_ms: u128, last: String },
    #[error("read {count} registers at {address} (function {function:02}): no answer within {timeout_ms} ms")]
    Timeout {
        function: u8,
        address: u16,
        count: u16,
        timeout_ms: u128,
    },
    #[error("read {count} registers at {address} (function {function:02}): Modbus exception {code:02X} ({exception})")]
    Exception {
        function: u8,
        address: u16,
        count: u16,
        code: u8,
        exception: ExceptionCode,
    },
    #[error("read {count} registers at {address} (function {function:02}): {source}")]
    Transport {
        function: u8,
        address: u16,
        count: u16,
        source: tokio_modbus::Error,
    },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("register map: {0}")]
    Plan(#[from] PlanError),
}

impl PollError {
    /// Whether the connection must be dropped and reopened: the peer or the line may be in an
    /// unknown state (a late answer, half a frame), or gone.
    fn needs_reconnect(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Transport { .. })
    }
}

/// The per-request timeout for a poll interval: `min(poll_ms, 3000)` ms.
pub fn request_timeout(poll: Duration) -> Duration {
    poll.min(REQUEST_TIMEOUT_MAX)
}

/// Exponential reconnect delay.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self { next: BACKOFF_MIN }
    }
    /// The delay to wait now; doubles the following one up to [`BACKOFF_MAX`].
    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Polls one meter until `shutdown` turns true (or its sender is dropped) or the application
/// drops `events`. For RTU meters that share a serial device use [`run_bus`] instead: a
/// serial port is opened exclusively, so only one task may own it.
///
/// Every poll interval produces exactly one event: `Reading` with every configured measurand
/// or `Failed` with the reason, also while the meter is unreachable.
pub async fn run_meter(
    index: MeterIndex,
    meter: Meter,
    events: mpsc::Sender<MeterEvent>,
    shutdown: watch::Receiver<bool>,
) {
    run_bus(
        vec![(index, meter)],
        events,
        shutdown,
        Heartbeat::detached(),
    )
    .await;
}

/// Polls every configured meter (`meters[i]` reports as meter index `i`) until shutdown: one
/// task per [`buses`] group. Returns when every task has ended.
pub async fn run_meters(
    meters: Vec<Meter>,
    events: mpsc::Sender<MeterEvent>,
    shutdown: watch::Receiver<bool>,
    health: Health,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for bus in buses(&meters) {
        let heartbeat = health.register(bus_name(&bus), longest_cycle(&bus));
        tasks.spawn(run_bus(bus, events.clone(), shutdown.clone(), heartbeat));
    }
    drop(events);
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            warn!(error = %e, "meter poller task ended abnormally");
        }
    }
}

fn bus_name(bus: &[(MeterIndex, Meter)]) -> String {
    let names: Vec<&str> = bus.iter().map(|(_, m)| m.name.as_str()).collect();
    format!("Modbus meters {}", names.join(", "))
}

/// The longest a bus loop can take to turn: the longest poll interval, plus every request
/// of every meter on the bus timing out once (a silent RS-485 bus).
fn longest_cycle(bus: &[(MeterIndex, Meter)]) -> Duration {
    let interval = bus
        .iter()
        .map(|(_, m)| Duration::from_millis(m.poll_ms))
        .max()
        .unwrap_or_default();
    let requests: Duration = bus
        .iter()
        .map(|(_, m)| {
            request_timeout(Duration::from_millis(m.poll_ms))
                * u32::try_from(m.register.len()).unwrap_or(u32::MAX)
        })
        .sum();
    interval + requests
}

/// Groups the configured meters by connection: each TCP meter alone, RTU meters by serial
/// device (they share the RS-485 bus and its port). Run each group with [`run_bus`].
pub fn buses(meters: &[Meter]) -> Vec<Vec<(MeterIndex, Meter)>> {
    let mut groups: Vec<Vec<(MeterIndex, Meter)>> = Vec::new();
    for (i, m) in meters.iter().enumerate() {
        let shared = m.rtu.as_ref().and_then(|dev| {
            groups
                .iter_mut()
                .find(|g| g.first().and_then(|(_, f)| f.rtu.as_ref()) == Some(dev))
        });
        match shared {
            Some(group) => group.push((i, m.clone())),
            None => groups.push(vec![(i, m.clone())]),
        }
    }
    groups
}

/// Polls meters that share one connection (an RS-485 bus behind one serial port, or a single
/// TCP meter), each on its own fixed schedule, one request at a time. The link settings
/// (`tcp` / `rtu`, `baud`, `parity`) are taken from the first meter.
pub async fn run_bus(
    meters: Vec<(MeterIndex, Meter)>,
    events: mpsc::Sender<MeterEvent>,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
) {
    let Some((_, first)) = meters.first() else {
        return;
    };
    let mut link = Link::new(first);
    let start = Instant::now();
    let mut states: Vec<MeterState> = meters
        .into_iter()
        .map(|(index, meter)| MeterState::new(index, meter, start))
        .collect();
    info!(link = %link.name, meters = states.len(), "meter poller started");

    'run: loop {
        heartbeat.beat();
        if *shutdown.borrow() {
            break;
        }
        // The meter due first. Fixed schedule per meter: slots at start + n × poll_ms. A poll
        // that overruns its slot (a timeout can take a whole interval, and meters on one bus
        // wait for each other) skips the missed slots rather than firing them late in a
        // burst (tokio's `MissedTickBehavior::Skip`): the phase stays, no drift accumulates,
        // and a struggling device does not get back-to-back requests.
        let next = earliest(&states);
        let due = states[next].due;
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break 'run;
                }
                continue 'run;
            }
            _ = tokio::time::sleep_until(due) => {}
        }
        let state = &mut states[next];
        state.due = next_slot(state.due, state.poll, Instant::now());
        // A poll can take up to a request timeout per request; shutdown must not wait for it.
        let event = tokio::select! {
            biased;
            changed = shutdown.changed() => Err(changed.is_err() || *shutdown.borrow()),
            event = state.poll_once(&mut link) => Ok(event),
        };
        let event = match event {
            Ok(event) => event,
            Err(true) => break,
            Err(false) => {
                // The poll was cancelled half way: the connection may have an answer in
                // flight, so start afresh.
                link.ctx = None;
                continue;
            }
        };
        // `try_send`, not `send`: every event is a complete snapshot of the meter and a new
        // one follows within one poll interval, so dropping one when the application queue is
        // full loses nothing that the next one does not restore. Awaiting `send` would hold
        // the poll schedule hostage to the consumer (the skipped slots then show up as
        // jitter and stale timestamps), and a consumer stuck for good would freeze every
        // meter's poll loop with it.
        match events.try_send(event) {
            Ok(()) => {
                if state.dropped > 0 {
                    warn!(meter = %state.meter.name, dropped = state.dropped, "application queue accepted meter events again");
                    state.dropped = 0;
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if state.dropped == 0 {
                    warn!(meter = %state.meter.name, "application queue full; dropping meter events until it drains");
                }
                state.dropped += 1;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(link = %link.name, "application gone; meter poller stops");
                break;
            }
        }
    }
    if let Some(mut ctx) = link.ctx.take() {
        let _ = timeout(Duration::from_millis(100), ctx.disconnect()).await;
    }
    info!(link = %link.name, "meter poller stopped");
}

/// Index of the meter due first (`states` is never empty here).
fn earliest(states: &[MeterState]) -> usize {
    states
        .iter()
        .enumerate()
        .min_by_key(|(_, s)| s.due)
        .map_or(0, |(i, _)| i)
}

/// The first slot after `now` on the grid `due + n × poll` (n ≥ 1).
fn next_slot(due: Instant, poll: Duration, now: Instant) -> Instant {
    let mut next = due + poll;
    if next <= now {
        let behind = (now - next).as_nanos() / poll.as_nanos().max(1);
        // Far behind (a suspended machine, an absurd poll_ms): restart the grid from now.
        next = u32::try_from(behind + 1)
            .ok()
            .and_then(|n| poll.checked_mul(n))
            .and_then(|d| next.checked_add(d))
            .unwrap_or(now + poll);
    }
    next
}

/// One meter's schedule, register plan and failure bookkeeping.
struct MeterState {
    index: MeterIndex,
    meter: Meter,
    plan: Result<ReadPlan, PlanError>,
    poll: Duration,
    timeout: Duration,
    due: Instant,
    /// Consecutive failed polls (0 = communicating).
    failures: u64,
    /// Events dropped because the application queue was full.
    dropped: u64,
}

impl MeterState {
    fn new(index: MeterIndex, meter: Meter, start: Instant) -> Self {
        let poll = Duration::from_millis(meter.poll_ms.max(1));
        let plan = ReadPlan::new(&meter.register);
        if let Err(e) = &plan {
            // The config validator refuses such maps; if one slips through, the meter is
            // reported as failing rather than taking the daemon down.
            warn!(meter = %meter.name, error = %e, "meter register map cannot be read; meter stays invalid");
        }
        Self {
            index,
            meter,
            plan,
            poll,
            timeout: request_timeout(poll),
            due: start,
            failures: 0,
            dropped: 0,
        }
    }

    /// One poll cycle: (re)connect if needed and allowed, read, decode.
    async fn poll_once(&mut self, link: &mut Link) -> MeterEvent {
        let result = self.poll_inner(link).await;
        let time = Utc::now();
        match result {
            Ok(reading) => {
                if self.failures > 0 {
                    info!(meter = %self.meter.name, failed_polls = self.failures, "meter communicating again");
                }
                self.failures = 0;
                link.backoff.reset();
                MeterEvent::Reading {
                    meter: self.index,
                    time,
                    reading,
                }
            }
            Err(e) => {
                let error = e.to_string();
                if self.failures == 0 {
                    warn!(meter = %self.meter.name, %error, "meter poll failed");
                } else {
                    debug!(meter = %self.meter.name, %error, failed_polls = self.failures + 1, "meter poll failed");
                }
                self.failures += 1;
                MeterEvent::Failed {
                    meter: self.index,
                    time,
                    error,
                }
            }
        }
    }

    async fn poll_inner(
        &mut self,
        link: &mut Link,
    ) -> Result<crate::mapping::meter::MeterReading, PollError> {
        let plan = self.plan.as_ref().map_err(|e| PollError::Plan(e.clone()))?;
        let ctx = link.connected(self.timeout).await?;
        ctx.set_slave(Slave(self.meter.unit_id));
        let mut responses = Vec::with_capacity(plan.requests().len());
        for req in plan.requests() {
            match read(ctx, req, self.timeout).await {
                Ok(words) => responses.push(words),
                Err(e) => {
                    if e.needs_reconnect() {
                        link.lost(&e);
                    }
                    return Err(e);
                }
            }
        }
        Ok(plan.decode(&responses)?)
    }
}

/// The connection of a bus: a TCP stream or a serial port, with its reconnect backoff.
struct Link {
    name: String,
    tcp: Option<String>,
    rtu: Option<String>,
    baud: u32,
    parity: Parity,
    ctx: Option<Context>,
    backoff: Backoff,
    /// No connection attempt before this instant.
    next_connect: Instant,
    /// Text of the error that took the connection down, for `Disconnected`.
    last_error: Option<String>,
    parity_warned: bool,
}

impl Link {
    fn new(meter: &Meter) -> Self {
        let name = match (&meter.tcp, &meter.rtu) {
            (Some(addr), _) => format!("tcp {addr}"),
            (None, Some(dev)) => format!("rtu {dev} {} baud", meter.baud),
            (None, None) => format!("meter {} without transport", meter.name),
        };
        Self {
            name,
            tcp: meter.tcp.clone(),
            rtu: meter.rtu.clone(),
            baud: meter.baud,
            parity: meter.parity,
            ctx: None,
            backoff: Backoff::new(),
            next_connect: Instant::now(),
            last_error: None,
            parity_warned: false,
        }
    }

    /// The open connection, opening it when none is open and the backoff allows.
    async fn connected(&mut self, limit: Duration) -> Result<&mut Context, PollError> {
        if self.ctx.is_none() {
            // A slot that lands a hair before the retry time counts as on time, or a backoff
            // equal to the poll interval would always skip one more interval.
            let now = Instant::now() + CONNECT_SLACK;
            if now < self.next_connect {
                return Err(PollError::Disconnected {
                    retry_ms: (self.next_connect - now).as_millis(),
                    last: self.last_error.clone().unwrap_or_default(),
                });
            }
            match self.connect(limit).await {
                Ok(ctx) => {
                    debug!(link = %self.name, "meter link connected");
                    self.ctx = Some(ctx);
                }
                Err(e) => {
                    self.lost(&e);
                    return Err(e);
                }
            }
        }
        self.ctx.as_mut().ok_or(PollError::NoTransport)
    }

    /// Forgets the connection. It is reopened after the backoff delay, except after a mere
    /// timeout on a serial bus: there the port is fine and only one device is silent, so
    /// the port is reopened (to drop a late answer) at once and the other devices on the
    /// bus are not held back by the silent one's backoff.
    fn lost(&mut self, cause: &PollError) {
        if self.ctx.take().is_some() {
            debug!(link = %self.name, error = %cause, "meter link closed");
        }
        self.last_error = Some(cause.to_string());
        if self.rtu.is_some() && matches!(cause, PollError::Timeout { .. }) {
            self.next_connect = Instant::now();
            return;
        }
        let delay = self.backoff.step();
        self.next_connect = Instant::now() + delay;
        info!(link = %self.name, error = %cause, retry_ms = delay.as_millis() as u64, "meter link down; reconnecting with backoff");
    }

    async fn connect(&mut self, limit: Duration) -> Result<Context, PollError> {
        // The unit id is set per request (`set_slave`); meters on one bus differ in it.
        let slave = Slave(1);
        if let Some(addr) = self.tcp.clone() {
            let stream = timeout(limit, connect_tcp(&addr)).await.map_err(|_| {
                PollError::ConnectTimeout {
                    addr: addr.clone(),
                    timeout_ms: limit.as_millis(),
                }
            })??;
            // Meters answer small requests; do not let Nagle hold our request back.
            let _ = stream.set_nodelay(true);
            Ok(tokio_modbus::client::tcp::attach_slave(stream, slave))
        } else if let Some(device) = self.rtu.clone() {
            let port = self.open_serial(&device)?;
            Ok(tokio_modbus::client::rtu::attach_slave(port, slave))
        } else {
            Err(PollError::NoTransport)
        }
    }

    /// Opens the serial line with 8 data bits, 1 stop bit and the configured parity. A parity
    /// the device refuses (a pseudo-terminal, some USB adapters) is a warning: the port is
    /// opened without it (CONTRACT §2).
    fn open_serial(&mut self, device: &str) -> Result<tokio_serial::SerialStream, PollError> {
        let builder = |parity| {
            tokio_serial::new(device, self.baud)
                .data_bits(DataBits::Eight)
                .stop_bits(StopBits::One)
                .parity(parity)
        };
        let parity = match self.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        };
        match builder(parity).open_native_async() {
            Ok(port) => Ok(port),
            Err(e) if parity != tokio_serial::Parity::None && is_setting_refused(&e) => {
                if !self.parity_warned {
                    warn!(link = %self.name, parity = ?self.parity, error = %e,
                        "serial device refuses the parity; opening it without parity");
                    self.parity_warned = true;
                }
                builder(tokio_serial::Parity::None)
                    .open_native_async()
                    .map_err(|source| PollError::SerialOpen {
                        device: device.to_string(),
                        source,
                    })
            }
            Err(source) => Err(PollError::SerialOpen {
                device: device.to_string(),
                source,
            }),
        }
    }
}

/// Whether an open error is about a setting rather than the device being absent or busy.
fn is_setting_refused(e: &tokio_serial::Error) -> bool {
    use tokio_serial::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::Unknown => true,
        ErrorKind::NoDevice => false,
        ErrorKind::Io(kind) => !matches!(
            kind,
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
        ),
    }
}

/// Resolves `host:port` and connects to the first address that accepts.
async fn connect_tcp(addr: &str) -> Result<TcpStream, PollError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| PollError::Resolve {
            addr: addr.to_string(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(PollError::Connect {
        addr: addr.to_string(),
        source: last,
    })
}

/// One read request with its timeout.
async fn read(
    ctx: &mut Context,
    req: &ReadRequest,
    limit: Duration,
) -> Result<Vec<u16>, PollError> {
    let function = req.function.code();
    let call = async {
        match req.function {
            ReadFunction::Holding => ctx.read_holding_registers(req.address, req.count).await,
            ReadFunction::Input => ctx.read_input_registers(req.address, req.count).await,
        }
    };
    match timeout(limit, call).await {
        Err(_) => Err(PollError::Timeout {
            function,
            address: req.address,
            count: req.count,
            timeout_ms: limit.as_millis(),
        }),
        Ok(Err(source)) => Err(PollError::Transport {
            function,
            address: req.address,
            count: req.count,
            source,
        }),
        Ok(Ok(Err(exception))) => Err(PollError::Exception {
            function,
            address: req.address,
            count: req.count,
            code: u8::from(exception),
            exception,
        }),
        Ok(Ok(Ok(words))) => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets() {
        let mut b = Backoff::new();
        let steps: Vec<u64> = (0..9).map(|_| b.step().as_millis() as u64).collect();
        assert_eq!(
            steps,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.step(), BACKOFF_MIN);
    }

    #[test]
    fn next_slot_keeps_the_phase_and_skips_missed_slots() {
        let t0 = Instant::now();
        let p = Duration::from_millis(1000);
        // On time: the next slot.
        assert_eq!(next_slot(t0, p, t0 + Duration::from_millis(3)), t0 + p);
        // 2.5 intervals late: slots 1 and 2 are skipped, slot 3 keeps the phase.
        assert_eq!(
            next_slot(t0, p, t0 + Duration::from_millis(2500)),
            t0 + 3 * p
        );
        // Exactly on a slot boundary: that slot is already past.
        assert_eq!(next_slot(t0, p, t0 + 2 * p), t0 + 3 * p);
    }

    fn meter(name: &str, tcp: Option<&str>, rtu: Option<&str>) -> Meter {
        Meter {
            name: name.into(),
            tcp: tcp.map(Into::into),
            rtu: rtu.map(Into::into),
            baud: 9600,
            parity: Parity::None,
            unit_id: 1,
            poll_ms: 1000,
            ioa_base: 900,
            grid_meter: false,
            register: Vec::new(),
        }
    }

    #[test]
    fn rtu_meters_on_one_device_share_a_bus_tcp_meters_do_not() {
        let meters = [
            meter("a", None, Some("/dev/ttyUSB0")),
            meter("b", Some("10.0.0.1:502"), None),
            meter("c", None, Some("/dev/ttyUSB1")),
            meter("d", None, Some("/dev/ttyUSB0")),
            meter("e", Some("10.0.0.1:502"), None),
        ];
        let groups: Vec<Vec<usize>> = buses(&meters)
            .iter()
            .map(|g| g.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(groups, vec![vec![0, 3], vec![1], vec![2], vec![4]]);
    }

    #[test]
    fn request_timeout_is_poll_capped_at_three_seconds() {
        assert_eq!(
            request_timeout(Duration::from_millis(1000)),
            Duration::from_millis(1000)
        );
        assert_eq!(
            request_timeout(Duration::from_millis(10_000)),
            Duration::from_millis(3000)
        );
    }
}
