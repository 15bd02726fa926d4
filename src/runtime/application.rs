//! The application task: feeds what the station hands over (SCADA commands, clock
//! synchronisation, reset) and what chargers report into the pure mapping engine, applies
//! its point updates and command outcomes to the station, and routes its charger commands.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::health::Heartbeat;
use crate::mapping::charger::ChargerEvent;
use crate::mapping::engine::Persist;
use crate::mapping::meter::MeterEvent;
use crate::mapping::telemetry::Telemetry;
use crate::mapping::{Engine, Input, Output};
use crate::net::HEARTBEAT_PERIOD;
use crate::observe::{Directory, Metrics};
use crate::ocpp::server::Router;
use crate::station::{CommandOutcome, StationHandle, ToApplication};

use super::persistence::Persistence;

/// An IEC 101 master that polled within this window counts as present (CONTRACT §7 failsafe);
/// the failsafe timer runs from the first tick without it.
const POLL_WINDOW: Duration = Duration::from_secs(2);

pub struct Application {
    pub engine: Engine,
    pub station: StationHandle,
    pub router: Router,
    pub persistence: Persistence,
    pub telemetry: TelemetryOut,
    pub heartbeat: Heartbeat,
    /// Test hook (`OCPP809_TEST_STALL=application:SECONDS`): the loop stops turning after
    /// this long, as a deadlocked task would, so the watchdog test can see the pings stop.
    pub stall_after: Option<Duration>,
    pub metrics: Arc<Metrics>,
    /// Learns the blocks of chargers not in the configuration, for the status page.
    pub directory: Arc<Directory>,
}

/// Hands reports to the MQTT mirror without ever waiting for it: when its queue is full
/// the report is dropped and counted in the metrics (the mirror's own buffer covers broker
/// outages).
pub struct TelemetryOut {
    sender: Option<mpsc::Sender<Telemetry>>,
}

impl TelemetryOut {
    pub fn new(sender: Option<mpsc::Sender<Telemetry>>) -> TelemetryOut {
        TelemetryOut { sender }
    }

    fn publish(&self, report: Telemetry, metrics: &Metrics) {
        let Some(sender) = &self.sender else {
            return;
        };
        if sender.try_send(report).is_err() {
            let dropped = metrics.telemetry_dropped();
            if dropped.is_power_of_two() {
                warn!(dropped, "telemetry queue full: reports dropped");
            }
        }
    }
}

impl Application {
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<ToApplication>,
        mut charger_events: mpsc::Receiver<ChargerEvent>,
        mut meter_events: mpsc::Receiver<MeterEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Drives the failsafe timer, share rotation and demand re-allocation.
        let mut tick = tokio::time::interval(HEARTBEAT_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stall_at = self.stall_after.map(|after| Instant::now() + after);
        loop {
            self.heartbeat.beat();
            if stall_at.is_some_and(|at| Instant::now() >= at) {
                warn!("test hook OCPP809_TEST_STALL: the application task stops turning");
                std::future::pending::<()>().await;
            }
            tokio::select! {
                _ = tick.tick() => {
                    let scada_present = self
                        .station
                        .with(|s| s.scada_present(Instant::now(), POLL_WINDOW));
                    self.feed(Input::Tick { scada_present });
                    self.persistence.flush().await;
                }
                request = requests.recv() => match request {
                    Some(request) => self.scada(request),
                    None => break,
                },
                event = charger_events.recv() => match event {
                    Some(event) => self.feed(Input::Charger(event)),
                    None => break,
                },
                // Closed when no meter is configured: the other branches go on.
                Some(event) = meter_events.recv() => self.feed(Input::Meter(event)),
                _ = shutdown.changed() => break,
            }
        }
        // CONTRACT §1: state is persisted on shutdown.
        self.persistence.flush().await;
    }

    fn scada(&mut self, request: ToApplication) {
        match request {
            ToApplication::Command(command) => self.feed(Input::Scada(command)),
            ToApplication::ClockSync { session, time } => match time {
                Some(time) => {
                    let skew_ms = (time - Utc::now()).num_milliseconds();
                    info!(session, %time, skew_ms, "clock synchronisation from SCADA");
                }
                None => warn!(session, "clock synchronisation with an invalid time"),
            },
            ToApplication::ResetProcess { session } => {
                info!(
                    session,
                    "reset of process requested by SCADA: queued data of that master discarded"
                );
            }
        }
    }

    /// Runs the engine on `input` and carries out its outputs; a charger command that
    /// cannot be delivered is answered at once so the SCADA command is confirmed.
    pub fn feed(&mut self, input: Input) {
        self.observe_input(&input);
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            let outputs = self.engine.handle(Utc::now(), input);
            let mut station_outputs = Vec::with_capacity(outputs.len());
            for output in outputs {
                match output {
                    Output::Persist(change) => {
                        if let Persist::IoaBlock { charger, ioa_base } = &change {
                            self.directory.add_charger(charger, *ioa_base);
                        }
                        self.persistence.record(change)
                    }
                    Output::Telemetry(report) => self.telemetry.publish(report, &self.metrics),
                    Output::CommandDone { ref outcome, .. } => {
                        let positive = matches!(outcome, CommandOutcome::Accepted);
                        self.metrics.command(positive);
                        station_outputs.push(output);
                    }
                    Output::Charger(request) => {
                        let (charger, id) = (request.charger.clone(), request.id);
                        if let Err(result) = self.router.send(request) {
                            inputs.push(Input::Charger(ChargerEvent::CommandFinished {
                                charger,
                                request: id,
                                result,
                            }));
                        }
                    }
                    other => station_outputs.push(other),
                }
            }
            apply(&self.station, station_outputs);
        }
    }
}

impl Application {
    /// Counts meter polls and sanitizer coercions for the metrics endpoint.
    fn observe_input(&self, input: &Input) {
        match input {
            Input::Meter(MeterEvent::Reading { meter, .. }) => {
                self.metrics.meter_poll(*meter, true)
            }
            Input::Meter(MeterEvent::Failed { meter, .. }) => {
                self.metrics.meter_poll(*meter, false)
            }
            Input::Charger(ChargerEvent::Coerced { kind, .. }) => self.metrics.coercion(*kind),
            _ => {}
        }
    }
}

/// Applies engine outputs to the station in one locked step, so that a master that sees a
/// command confirmed finds the point change it caused already queued behind it.
pub fn apply(station: &StationHandle, outputs: Vec<Output>) {
    station.with(|station| {
        for output in outputs {
            match output {
                Output::Point(update) => {
                    if let Err(error) = station.update(&update) {
                        warn!(%error, "point update refused by the process image");
                    }
                }
                Output::CommandDone { id, outcome } => {
                    if let CommandOutcome::Rejected(reason) = &outcome {
                        info!(command = id, %reason, "command refused");
                    }
                    station.complete_command(id, &outcome);
                }
                Output::NewPoints { specs, announce } => {
                    let announce_at = announce.then(Utc::now);
                    if let Err(error) = station.add_points(specs, announce_at) {
                        warn!(%error, "points of a new charger refused by the process image");
                    }
                }
                Output::Charger(_) | Output::Persist(_) | Output::Telemetry(_) => {}
            }
        }
    });
}
