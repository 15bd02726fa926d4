//! The systemd side of the daemon (sd_notify(3), systemd.service(5) `Type=notify`,
//! `WatchdogSec=`): READY=1 once every listener is bound, WATCHDOG=1 only while every task
//! registered in [`Health`] keeps beating, STATUS= with a one-line summary, STOPPING=1 on
//! shutdown. Without `NOTIFY_SOCKET` (not started by systemd) nothing is sent, but a stuck
//! task is still logged.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::health::Health;

/// How often health is checked (and STATUS= refreshed) when systemd asks for no watchdog.
const CHECK_EVERY: Duration = Duration::from_secs(2);

fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        debug!(%error, "sd_notify failed");
    }
}

/// The watchdog timeout systemd asks for (sd_watchdog_enabled(3)): `WATCHDOG_USEC`, for this
/// process when `WATCHDOG_PID` names it or is absent. (The sd-notify crate insists on the
/// PID; systemd's own library does not.)
fn watchdog_usec() -> Option<u64> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    match std::env::var("WATCHDOG_PID") {
        Ok(pid) if pid.parse::<u32>().ok() != Some(std::process::id()) => None,
        _ => (usec > 0).then_some(usec),
    }
}

/// READY=1: the listeners are bound and the tasks started.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Pings the watchdog while every task beats; ends with STOPPING=1 on shutdown.
pub async fn run(
    health: Health,
    status: impl Fn() -> String + Send,
    mut shutdown: watch::Receiver<bool>,
) {
    let usec = watchdog_usec();
    let watchdog = usec.is_some();
    let usec = usec.unwrap_or(0);
    // Three pings per watchdog interval: one may be late without a restart.
    let period = if watchdog && usec > 0 {
        (Duration::from_micros(usec) / 3).min(CHECK_EVERY)
    } else {
        CHECK_EVERY
    };
    if watchdog {
        info!(
            timeout_ms = usec / 1000,
            tasks = health.tasks(),
            "systemd watchdog enabled"
        );
    }
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_stuck = false;
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        let stuck = health.stuck(Instant::now());
        if stuck.is_empty() {
            if watchdog {
                notify(&[NotifyState::Watchdog]);
            }
            if was_stuck {
                warn!("every task is running again: watchdog pings resumed");
            }
        } else if !was_stuck {
            let tasks: Vec<String> = stuck
                .iter()
                .map(|(name, silent)| format!("{name} (silent {} s)", silent.as_secs()))
                .collect();
            error!(tasks = %tasks.join(", "), "task stuck: watchdog pings withheld, systemd will restart the daemon");
        }
        was_stuck = !stuck.is_empty();
        let line = status();
        if line != last_status {
            notify(&[NotifyState::Status(&line)]);
            last_status = line;
        }
    }
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
