//! The IEC 60870-5-101 serial line task: opens the port of one `[[iec101]]` block with
//! tokio-serial, drives the sans-IO [`Link`] against the shared station as one session, and
//! reopens the port with backoff when it fails or disappears (a USB adapter unplugged) —
//! logged, never fatal. Everything protocol-related happens in `ft12`, `link` and `station`;
//! this file only moves octets, time and wake-ups.
//!
//! Station session rules for a serial line (CONTRACT §2, §7):
//! - data transfer is active from the master's reset of remote link (unbalanced) or from the
//!   completed link set-up (balanced), and ends after [`IDLE_AFTER`] without a request from
//!   the master or on a link failure; while inactive, events wait in the station's bounded
//!   standby buffer;
//! - an unbalanced master counts as SCADA presence while it polls (`Station::note_polled`);
//!   a balanced line counts while its link is up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_serial::{
    ClearBuffer, DataBits, SerialPort, SerialPortBuilderExt, SerialStream, StopBits,
};
use tracing::{debug, info, warn};

use super::ft12::max_asdu_len;
use super::link::{Link, LinkConfig, LinkEvent, LinkUser};
use crate::asdu::AsduParams;
use crate::config::{Iec101, Iec101Mode, Parity};
use crate::health::Heartbeat;
use crate::net::{sleep_until, HEARTBEAT_PERIOD};
use crate::observe::{Gauge, GaugeGuard, Message, Metrics};
use crate::station::{DataClass, LinkProfile, SessionId, Station, StationHandle, ToApplication};

/// A line whose master sent nothing for this long stops receiving events (they wait in the
/// standby buffer, in order, for the next active link).
pub const IDLE_AFTER: Duration = Duration::from_secs(30);
/// Reopening a failed port: first delay, doubled up to the maximum.
const REOPEN_FIRST: Duration = Duration::from_millis(500);
const REOPEN_MAX: Duration = Duration::from_secs(30);
/// A write that takes longer than this means the port is gone (or flow control stuck).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one serial line until `shutdown` turns true.
pub async fn serve_line(
    block: Iec101,
    station: StationHandle,
    application: mpsc::Sender<ToApplication>,
    mut shutdown: watch::Receiver<bool>,
    heartbeat: Heartbeat,
    metrics: Arc<Metrics>,
) {
    let link_config = match LinkConfig::from_block(&block) {
        Ok(config) => config,
        Err(error) => {
            // Validation in `config` rules this out; say so rather than panic if it slips.
            warn!(device = %block.device, %error, "IEC 101 line not started");
            return;
        }
    };
    let mut delay = REOPEN_FIRST;
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match open(&block) {
            Ok(port) => {
                // Whatever the device buffered before we opened it is stale (requests nobody
                // answered): answering it now would confuse the master.
                if let Err(error) = port.clear(ClearBuffer::Input) {
                    debug!(device = %block.device, %error, "cannot discard stale input");
                }
                info!(device = %block.device, baud = block.baud, mode = ?block.mode, "IEC 101 line open");
                delay = REOPEN_FIRST;
                failures = 0;
                let line = Line {
                    block: &block,
                    station: &station,
                    application: &application,
                    heartbeat: &heartbeat,
                    metrics: &metrics,
                };
                match line.run(port, link_config, &mut shutdown).await {
                    Ok(()) => return,
                    Err(reason) => {
                        warn!(device = %block.device, %reason, "IEC 101 line lost; reopening");
                    }
                }
            }
            Err(error) => {
                failures += 1;
                // The first failure is a warning; a device that stays away is not log spam.
                if failures == 1 {
                    warn!(device = %block.device, %error, "cannot open IEC 101 serial port; retrying with backoff");
                } else {
                    debug!(device = %block.device, %error, failures, "IEC 101 serial port still unavailable");
                }
            }
        }
        let reopen_at = tokio::time::Instant::now() + delay;
        let mut alive = tokio::time::interval(HEARTBEAT_PERIOD);
        loop {
            heartbeat.beat();
            tokio::select! {
                _ = tokio::time::sleep_until(reopen_at) => break,
                _ = alive.tick() => {}
                _ = shutdown.changed() => return,
            }
        }
        delay = (delay * 2).min(REOPEN_MAX);
    }
}

/// Line idle time that ends a partial frame: ten character times (11 bits each), but at
/// least 50 ms since the operating system delivers octets in bursts.
fn idle_gap(baud: u32) -> Duration {
    let character = Duration::from_secs_f64(11.0 / f64::from(baud.max(1)));
    (character * 10).max(Duration::from_millis(50))
}

fn serial_parity(parity: Parity) -> tokio_serial::Parity {
    match parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    }
}

/// Opens the port 8 data bits, 1 stop bit; a parity the device refuses (pseudo-terminals
/// may) is a warning and the port is used without it (CONTRACT §2).
fn open(block: &Iec101) -> Result<SerialStream, tokio_serial::Error> {
    let builder = tokio_serial::new(&block.device, block.baud)
        .data_bits(DataBits::Eight)
        .stop_bits(StopBits::One);
    match builder
        .clone()
        .parity(serial_parity(block.parity))
        .open_native_async()
    {
        Ok(port) => Ok(port),
        Err(error) if block.parity != Parity::None => {
            let port = builder
                .parity(tokio_serial::Parity::None)
                .open_native_async()?;
            warn!(device = %block.device, %error, parity = ?block.parity, "the device refused the parity; using none");
            Ok(port)
        }
        Err(error) => Err(error),
    }
}

/// The station as the link layer sees it, for one session. Requests for the application
/// are collected and handed over once the station lock is released.
struct StationUser<'a> {
    station: &'a mut Station,
    session: SessionId,
    requests: Vec<ToApplication>,
    application_room: bool,
    metrics: &'a Metrics,
}

impl StationUser<'_> {
    /// Counts an ASDU the station hands out for the line.
    fn sent(&self, asdu: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if asdu.is_some() {
            self.metrics.count(Message::Iec101Out);
        }
        asdu
    }
}

impl LinkUser for StationUser<'_> {
    fn class1_pending(&self) -> bool {
        self.station.class1_pending(self.session)
    }

    fn next_class1(&mut self) -> Option<Vec<u8>> {
        let asdu = self
            .station
            .poll_class(self.session, DataClass::Class1, Utc::now());
        self.sent(asdu)
    }

    fn next_class2(&mut self) -> Option<Vec<u8>> {
        let asdu = self
            .station
            .poll_class(self.session, DataClass::Class2, Utc::now());
        self.sent(asdu)
    }

    fn received(&mut self, asdu: &[u8]) {
        self.metrics.count(Message::Iec101In);
        if let Some(request) = self.station.handle_asdu(self.session, Instant::now(), asdu) {
            self.requests.push(request);
        }
    }

    fn can_accept(&self) -> bool {
        self.application_room
    }
}

struct Line<'a> {
    block: &'a Iec101,
    station: &'a StationHandle,
    application: &'a mpsc::Sender<ToApplication>,
    heartbeat: &'a Heartbeat,
    metrics: &'a Arc<Metrics>,
}

impl Line<'_> {
    fn profile(&self, link: &LinkConfig) -> LinkProfile {
        let block = self.block;
        LinkProfile {
            params: AsduParams {
                cot_size: block.cot_size,
                ca_size: block.ca_size,
                ioa_size: block.ioa_size,
            },
            common_address: block.common_address,
            max_asdu_len: max_asdu_len(link.address_size),
            name: format!("101 {}", block.device),
        }
    }

    /// Runs the link on an open port: `Ok` on shutdown, `Err` with the reason when the port
    /// failed.
    async fn run(
        &self,
        mut port: SerialStream,
        config: LinkConfig,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let profile = self.profile(&config);
        let name = profile.name.clone();
        let (session, wake) = self.station.open_session(profile);
        let mut link = match Link::new(config, Instant::now()) {
            Ok(link) => link,
            Err(error) => {
                self.station.close_session(session, Vec::new());
                return Err(error.to_string());
            }
        };
        let result = self
            .drive(&mut port, &mut link, session, &wake, shutdown)
            .await;
        self.station.close_session(session, Vec::new());
        info!(line = %name, "IEC 101 session closed");
        result
    }

    async fn drive(
        &self,
        port: &mut SerialStream,
        link: &mut Link,
        session: SessionId,
        wake: &tokio::sync::Notify,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let unbalanced = self.block.mode == Iec101Mode::Unbalanced;
        let mut input = vec![0u8; 512];
        let mut output = Vec::with_capacity(512);
        // Whether this line's data transfer is active; it counts in the metrics gauge too.
        let mut active = self.metrics.hold(Gauge::Iec101LinesActive, false);
        let mut heard: Option<Instant> = None;
        let mut last_input: Option<Instant> = None;
        let gap = idle_gap(self.block.baud);
        let mut idle_check = tokio::time::interval(HEARTBEAT_PERIOD);
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.heartbeat.beat();
            self.step(link, session, |link, user| link.poll(Instant::now(), user));
            link.poll_transmit(&mut output);
            if !output.is_empty() {
                match tokio::time::timeout(WRITE_TIMEOUT, port.write_all(&output)).await {
                    Ok(Ok(())) => output.clear(),
                    Ok(Err(error)) => return Err(format!("write failed: {error}")),
                    Err(_) => return Err("write blocked".into()),
                }
            }
            while let Some(event) = link.poll_event() {
                let now = Instant::now();
                match event {
                    LinkEvent::MasterActive | LinkEvent::Polled => {
                        heard = Some(now);
                        if unbalanced {
                            self.station.with(|s| s.note_polled(session, now));
                        }
                        if !active.is_on() && (event == LinkEvent::MasterActive || unbalanced) {
                            debug!(device = %self.block.device, "IEC 101 master active");
                            self.set_active(&mut active, session, true);
                        }
                    }
                    LinkEvent::LinkFailed => {
                        if active.is_on() {
                            warn!(device = %self.block.device, "IEC 101 link failed: master does not answer");
                            self.set_active(&mut active, session, false);
                        }
                    }
                }
            }
            let deadline = link.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                read = port.read(&mut input) => match read {
                    Ok(0) => return Err("the device closed".into()),
                    Ok(n) => {
                        let now = Instant::now();
                        // FT1.2 frames are sent without gaps: a pause inside one means the
                        // rest is lost, and what follows is a new frame (IEC 60870-5-1 §6.2.4.2).
                        if last_input.is_some_and(|at| now - at > gap) {
                            link.clear_partial_frame();
                        }
                        last_input = Some(now);
                        let data = &input[..n];
                        self.step(link, session, |link, user| link.handle_input(now, data, user));
                    }
                    Err(error) => return Err(format!("read failed: {error}")),
                },
                _ = sleep_until(deadline) => {}
                // Balanced: new data to send; unbalanced: it waits for the next poll.
                _ = wake.notified() => {}
                _ = idle_check.tick() => {
                    let silent = heard.is_none_or(|at| at.elapsed() >= IDLE_AFTER);
                    if active.is_on() && silent && unbalanced {
                        info!(device = %self.block.device, "IEC 101 master silent: events kept for the next master");
                        self.set_active(&mut active, session, false);
                    }
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    /// Starts or stops data transfer of this line's station session, and its gauge with it.
    fn set_active(&self, active: &mut GaugeGuard, session: SessionId, on: bool) {
        active.set(on);
        self.station.with(|s| s.set_active(session, on));
    }

    /// Runs `f` with the link and the station locked, then hands requests to the
    /// application.
    fn step(
        &self,
        link: &mut Link,
        session: SessionId,
        f: impl FnOnce(&mut Link, &mut StationUser<'_>),
    ) {
        let application_room = self.application.capacity() > 0;
        let requests = self.station.with(|station| {
            let mut user = StationUser {
                station,
                session,
                requests: Vec::new(),
                application_room,
                metrics: self.metrics,
            };
            f(link, &mut user);
            user.requests
        });
        for request in requests {
            self.station
                .hand_to_application(self.application, request, &self.block.device);
        }
    }
}
