//! A bound on argon2 verifications running at once. Each holds 19 MiB and a core for tens
//! of milliseconds; without a bound, a burst of handshakes with wrong passwords (each
//! charger id / address pair may try five times a minute) would take the memory of a small
//! gateway. Callers block, so this is used only off the async workers (`block_in_place`).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

/// A verification slot, given back on drop.
pub struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut running = self.0.lock();
        *running = running.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl Gate {
    pub fn new(limit: usize) -> Self {
        Gate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// One slot per core, at most four (76 MiB).
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits up to `patience` for a slot; `None` when none came free.
    pub fn enter(&self, patience: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now() + patience;
        let mut running = self.lock();
        while *running >= self.limit {
            let left = deadline.checked_duration_since(Instant::now())?;
            running = self
                .freed
                .wait_timeout(running, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        *running += 1;
        Some(Permit(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let gate = Gate::new(2);
        let a = gate.enter(Duration::ZERO);
        let b = gate.enter(Duration::ZERO);
        assert!(a.is_some() && b.is_some());
        assert!(gate.enter(Duration::from_millis(20)).is_none());
        drop(a);
        assert!(gate.enter(Duration::ZERO).is_some());
    }

    #[test]
    fn a_waiter_gets_the_slot_freed_by_another_thread() {
        let gate = Gate::new(1);
        let held = gate.enter(Duration::ZERO);
        assert!(held.is_some());
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                drop(held);
            });
            assert!(gate.enter(Duration::from_secs(5)).is_some());
        });
    }
}
