//! The application task: feeds what the station hands over (SCADA commands, clock
//! synchronisation, reset) into the pure mapping engine and applies its outputs.

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::mapping::{Engine, Input, Output};
use crate::station::{CommandOutcome, StationHandle, ToApplication};

pub async fn run(
    mut engine: Engine,
    station: StationHandle,
    mut requests: mpsc::Receiver<ToApplication>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => handle(&mut engine, &station, request),
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
}

fn handle(engine: &mut Engine, station: &StationHandle, request: ToApplication) {
    match request {
        ToApplication::Command(command) => {
            let outputs = engine.handle(Utc::now(), Input::Scada(command));
            apply(station, outputs);
        }
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
            }
        }
    });
}
