//! Brute-force protection of HTTP Basic authentication (OCPP security profile 1, OCPP 2.0.1
//! Security whitepaper / Part 2 A00): after [`MAX_FAILURES`] failed attempts for one charge
//! point id from one address within [`WINDOW`], further attempts for that id from that
//! address are refused with 429 until the window has passed. Keyed by (address, id), so an
//! attacker guessing one charger's password does not lock out other chargers behind the
//! same NAT address, nor the charger itself from its own address. Bounded: at most
//! [`MAX_ENTRIES`] keys are tracked. Sans-IO: the caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Failures {
    first: Instant,
    count: u32,
}

#[derive(Debug, Default)]
pub struct AuthThrottle {
    failures: Mutex<HashMap<(IpAddr, String), Failures>>,
}

/// What a failed attempt led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; more attempts are allowed.
    Counted,
    /// This failure reached the limit: the key is blocked for the rest of the window.
    NowBlocked,
}

impl AuthThrottle {
    fn lock(&self) -> MutexGuard<'_, HashMap<(IpAddr, String), Failures>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether attempts for `charger` from `ip` are refused at `now`.
    pub fn blocked(&self, ip: IpAddr, charger: &str, now: Instant) -> bool {
        self.lock()
            .get(&(ip, charger.to_string()))
            .is_some_and(|f| f.count >= MAX_FAILURES && now.duration_since(f.first) < WINDOW)
    }

    pub fn failed(&self, ip: IpAddr, charger: &str, now: Instant) -> Verdict {
        let mut failures = self.lock();
        if failures.len() >= MAX_ENTRIES {
            failures.retain(|_, f| now.duration_since(f.first) < WINDOW);
            if failures.len() >= MAX_ENTRIES {
                // Still full of live entries: forget the oldest rather than grow.
                if let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, f)| f.first)
                    .map(|(k, _)| k.clone())
                {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures
            .entry((ip, charger.to_string()))
            .or_insert(Failures {
                first: now,
                count: 0,
            });
        if now.duration_since(entry.first) >= WINDOW {
            *entry = Failures {
                first: now,
                count: 0,
            };
        }
        entry.count += 1;
        if entry.count == MAX_FAILURES {
            Verdict::NowBlocked
        } else {
            Verdict::Counted
        }
    }

    /// A successful authentication clears the key's failures.
    pub fn succeeded(&self, ip: IpAddr, charger: &str) {
        self.lock().remove(&(ip, charger.to_string()));
    }

    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn the_fifth_failure_blocks_that_id_from_that_address_for_the_window() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(throttle.failed(A, "CP001", t0), Verdict::Counted);
            assert!(!throttle.blocked(A, "CP001", t0));
        }
        assert_eq!(throttle.failed(A, "CP001", t0), Verdict::NowBlocked);
        assert!(throttle.blocked(A, "CP001", t0 + Duration::from_secs(59)));
        assert!(
            !throttle.blocked(B, "CP001", t0),
            "other addresses are not affected"
        );
        assert!(
            !throttle.blocked(A, "CP002", t0),
            "other chargers are not affected"
        );
        assert!(
            !throttle.blocked(A, "CP001", t0 + WINDOW),
            "the block ends with the window"
        );
    }

    #[test]
    fn a_success_clears_the_count_and_old_failures_expire() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(A, "CP001", t0);
        }
        throttle.succeeded(A, "CP001");
        assert_eq!(throttle.failed(A, "CP001", t0), Verdict::Counted);
        let later = t0 + WINDOW;
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(throttle.failed(A, "CP001", later), Verdict::Counted);
        }
    }

    #[test]
    fn the_table_stays_bounded() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            throttle.failed(A, &format!("CP{i}"), t0);
        }
        assert!(throttle.tracked() <= MAX_ENTRIES);
    }
}
