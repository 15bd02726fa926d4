//! Per-charger message-rate limit (issue "input limits"): a token bucket over the
//! charger→CSMS WebSocket messages, sans-IO. OCPP-J lets a charger send one CALL at a time
//! (OCPP 1.6 §4.1.1, 2.0.1 Part 4 §4.1.1), but nothing stops a broken or hostile one from
//! flooding answers, heartbeats or garbage frames. Over the limit the connection task stops
//! *reading* until a token is due: TCP flow control then slows the sender and nothing is
//! dropped, while the other chargers keep their share of the daemon.

use std::time::{Duration, Instant};

/// A token bucket: `rate` messages per second sustained, bursts up to `burst`.
#[derive(Clone, Debug)]
pub struct MessageRate {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
    /// Whether the previous message found the bucket empty (one log line per episode).
    limited: bool,
}

/// What [`MessageRate::take`] decided about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateVerdict {
    /// Within the limit: go on reading.
    Within,
    /// Over the limit: read nothing more until `resume`. `first` is true when this
    /// starts an episode (log it), false while the charger keeps pushing.
    Pause { resume: Instant, first: bool },
}

impl MessageRate {
    /// `rate` per second (> 0) with room for a burst of `burst` messages (≥ 1).
    pub fn new(rate: f64, burst: f64, now: Instant) -> MessageRate {
        let burst = burst.max(1.0);
        MessageRate {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            updated: now,
            limited: false,
        }
    }

    /// The burst allowed for a sustained `rate`: five seconds' worth, at least 20 messages,
    /// so a charger that flushes its offline backlog at reconnect is slowed, not starved.
    pub fn default_burst(rate: f64) -> f64 {
        (rate * 5.0).max(20.0)
    }

    /// Counts one received message.
    pub fn take(&mut self, now: Instant) -> RateVerdict {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            self.limited = false;
            return RateVerdict::Within;
        }
        // The message was read already (it is processed); the debt is paid by waiting.
        let wait = Duration::from_secs_f64(-self.tokens / self.rate);
        let first = !self.limited;
        self.limited = true;
        RateVerdict::Pause {
            resume: now + wait,
            first,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sender_waits_for_each_token() {
        let t0 = Instant::now();
        let mut rate = MessageRate::new(10.0, 3.0, t0);
        for _ in 0..3 {
            assert_eq!(rate.take(t0), RateVerdict::Within);
        }
        match rate.take(t0) {
            RateVerdict::Pause { resume, first } => {
                assert!(first);
                assert_eq!(resume - t0, Duration::from_millis(100));
            }
            other => panic!("expected a pause, got {other:?}"),
        }
        // Still pushing after the pause: the episode goes on (not logged again).
        let t1 = t0 + Duration::from_millis(100);
        match rate.take(t1) {
            RateVerdict::Pause { resume, first } => {
                assert!(!first);
                assert_eq!(resume - t1, Duration::from_millis(100));
            }
            other => panic!("expected a pause, got {other:?}"),
        }
        // After a quiet second the bucket is full again and a new episode would log.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(rate.take(t2), RateVerdict::Within);
        }
        assert!(matches!(
            rate.take(t2),
            RateVerdict::Pause { first: true, .. }
        ));
    }

    #[test]
    fn sustained_rate_is_the_configured_one() {
        let t0 = Instant::now();
        let mut rate = MessageRate::new(50.0, 1.0, t0);
        let mut now = t0;
        let mut read = 0u32;
        // Read whenever allowed for 10 simulated seconds.
        while now < t0 + Duration::from_secs(10) {
            read += 1;
            if let RateVerdict::Pause { resume, .. } = rate.take(now) {
                now = resume;
            }
        }
        assert!((499..=502).contains(&read), "read {read} in 10 s at 50/s");
    }

    #[test]
    fn default_burst_is_five_seconds_with_a_floor() {
        assert_eq!(MessageRate::default_burst(50.0), 250.0);
        assert_eq!(MessageRate::default_burst(1.0), 20.0);
    }
}
