//! Liveness of the daemon's long-lived tasks, for the systemd watchdog (CONTRACT §6: "the
//! watchdog is fed only while every internal task is healthy").
//!
//! Each task registers a [`Heartbeat`] with the period at which its loop turns at the latest
//! and beats from inside that loop. A task that has not beaten for three periods (and at
//! least [`MIN_GRACE`]) is stuck — a deadlock, an endless await, a blocked thread — and the
//! watchdog stops pinging systemd, which restarts the daemon. No tokio here: atomics and a
//! monotonic clock only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A task is stuck after this long without a beat, whatever its period.
pub const MIN_GRACE: Duration = Duration::from_secs(5);
/// Periods without a beat before a task counts as stuck.
const MISSED_PERIODS: u32 = 3;

struct Task {
    name: String,
    period: Duration,
    /// Milliseconds since the registry's epoch at the last beat.
    last: Arc<AtomicU64>,
}

/// The registry of heartbeats. Cloning shares it.
#[derive(Clone)]
pub struct Health {
    epoch: Instant,
    tasks: Arc<Mutex<Vec<Task>>>,
}

impl Default for Health {
    fn default() -> Health {
        Health::new(Instant::now())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Health {
    pub fn new(epoch: Instant) -> Health {
        Health {
            epoch,
            tasks: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a task whose loop turns at least every `period`; it counts as alive now.
    pub fn register(&self, name: impl Into<String>, period: Duration) -> Heartbeat {
        let last = Arc::new(AtomicU64::new(self.millis(Instant::now())));
        lock(&self.tasks).push(Task {
            name: name.into(),
            period,
            last: last.clone(),
        });
        Heartbeat {
            epoch: self.epoch,
            last,
        }
    }

    /// Names of the tasks that missed their beats at `now`, with how long they are silent.
    pub fn stuck(&self, now: Instant) -> Vec<(String, Duration)> {
        let now_ms = self.millis(now);
        lock(&self.tasks)
            .iter()
            .filter_map(|task| {
                let silent =
                    Duration::from_millis(now_ms.saturating_sub(task.last.load(Ordering::Relaxed)));
                let allowed = (task.period * MISSED_PERIODS).max(MIN_GRACE);
                (silent > allowed).then(|| (task.name.clone(), silent))
            })
            .collect()
    }

    pub fn tasks(&self) -> usize {
        lock(&self.tasks).len()
    }
}

/// A task's side of the registry.
#[derive(Clone)]
pub struct Heartbeat {
    epoch: Instant,
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// The task's loop turned.
    pub fn beat(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// A heartbeat nobody watches (tests, tools).
    pub fn detached() -> Heartbeat {
        Health::default().register("detached", Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_stuck_after_three_periods_but_never_before_the_grace() {
        let epoch = Instant::now();
        let health = Health::new(epoch);
        let fast = health.register("fast", Duration::from_secs(1));
        let slow = health.register("slow", Duration::from_secs(10));
        fast.beat();
        slow.beat();
        let soon = Instant::now() + Duration::from_secs(4);
        assert!(health.stuck(soon).is_empty(), "within the 5 s grace");
        let later = Instant::now() + Duration::from_secs(6);
        let stuck: Vec<String> = health.stuck(later).into_iter().map(|(n, _)| n).collect();
        assert_eq!(stuck, vec!["fast".to_string()]);
        let much_later = Instant::now() + Duration::from_secs(31);
        assert_eq!(health.stuck(much_later).len(), 2);
        assert_eq!(health.tasks(), 2);
    }

    #[test]
    fn a_beat_makes_a_task_alive_again() {
        let health = Health::new(Instant::now() - Duration::from_secs(60));
        let beat = health.register("loop", Duration::from_secs(1));
        beat.beat();
        assert!(health.stuck(Instant::now()).is_empty());
    }
}
