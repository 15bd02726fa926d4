//! A cloneable handle that lets the link tasks and the application task share the one
//! sans-IO [`Station`](super::Station).
//!
//! The station sits behind a mutex held only for the duration of a synchronous call; after
//! every call the handle wakes the link tasks that got something to send. This is the only
//! part of the station that knows about tasks, and it uses nothing but tokio's
//! synchronisation primitives — no I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use tracing::warn;

use super::{CommandOutcome, LinkProfile, SessionId, Station, ToApplication};

#[derive(Clone)]
pub struct StationHandle {
    inner: Arc<Inner>,
}

struct Inner {
    station: Mutex<Station>,
    wakers: Mutex<HashMap<SessionId, Arc<Notify>>>,
}

/// Recovers the data of a poisoned mutex: a panic elsewhere must not take the station down
/// with it, and the station's invariants hold between calls.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StationHandle {
    pub fn new(station: Station) -> StationHandle {
        StationHandle {
            inner: Arc::new(Inner {
                station: Mutex::new(station),
                wakers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Runs `f` on the station, then wakes the sessions it gave work to.
    pub fn with<R>(&self, f: impl FnOnce(&mut Station) -> R) -> R {
        let (result, wakeups) = {
            let mut station = lock(&self.inner.station);
            let result = f(&mut station);
            (result, station.take_wakeups())
        };
        if !wakeups.is_empty() {
            let wakers = lock(&self.inner.wakers);
            for id in wakeups {
                if let Some(notify) = wakers.get(&id) {
                    notify.notify_one();
                }
            }
        }
        result
    }

    /// Opens a session; the returned `Notify` fires when it has something to send.
    pub fn open_session(&self, profile: LinkProfile) -> (SessionId, Arc<Notify>) {
        let notify = Arc::new(Notify::new());
        let id = self.with(|station| station.open_session(profile));
        lock(&self.inner.wakers).insert(id, notify.clone());
        (id, notify)
    }

    pub fn close_session(&self, id: SessionId, unacknowledged: Vec<Vec<u8>>) {
        lock(&self.inner.wakers).remove(&id);
        self.with(|station| station.close_session(id, unacknowledged));
    }

    /// Hands a request from link `link` to the application without waiting: when the
    /// application is saturated a command is refused (negative confirmation) rather than
    /// queued without bound.
    pub fn hand_to_application(
        &self,
        application: &mpsc::Sender<ToApplication>,
        request: ToApplication,
        link: &str,
    ) {
        if let Err(error) = application.try_send(request) {
            let request = match error {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            };
            if let ToApplication::Command(command) = request {
                warn!(%link, ioa = command.ioa, "command refused: application busy");
                self.with(|s| {
                    s.complete_command(
                        command.id,
                        &CommandOutcome::Rejected("application busy".into()),
                    )
                });
            }
        }
    }
}
