//! CSMS→charger CALL tracking, sans-IO (OCPP-J 1.6 §4.1.1 "Synchronicity"; OCPP 2.0.1
//! Part 4 §4.1.1 "Synchronicity"): a sender must not send a second CALL before the first one
//! is answered (CALLRESULT / CALLERROR) or has timed out. One CALL is outstanding per
//! charger, the others wait in a bounded FIFO behind it.
//!
//! Time is an argument ([`Instant`]); nothing here reads a clock or does I/O.
//!
//! MessageIds are a per-tracker prefix (random-ish, from the std hasher's random keys) and a
//! counter: unique per connection, at most 36 characters as both specs require, and unlikely
//! to collide with the ids of an earlier connection of the same charger.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::framing;
use crate::mapping::charger::RequestId;

/// The queue behind the outstanding CALL is full; the command was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("CALL queue full ({capacity} waiting)")]
pub struct QueueFull {
    pub capacity: usize,
}

/// The charger's answer to a CALL.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// CALLRESULT payload.
    Result(Value),
    /// CALLERROR code (as sent) and description.
    Error { code: String, description: String },
}

#[derive(Debug)]
struct Queued {
    request: RequestId,
    action: &'static str,
    payload: Value,
}

#[derive(Debug)]
struct Outstanding {
    message_id: String,
    request: RequestId,
    action: &'static str,
    deadline: Instant,
}

/// One charger connection's CSMS→charger CALLs: at most one outstanding, a bounded FIFO
/// behind it.
#[derive(Debug)]
pub struct CallTracker {
    timeout: Duration,
    capacity: usize,
    queue: VecDeque<Queued>,
    outstanding: Option<Outstanding>,
    prefix: String,
    counter: u64,
}

impl CallTracker {
    /// `queue_capacity` is the number of CALLs that may wait behind the outstanding one
    /// (0: only one CALL at a time, none waiting).
    pub fn new(timeout: Duration, queue_capacity: usize) -> CallTracker {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(queue_capacity);
        let prefix = format!("{:06x}", hasher.finish() & 0xff_ffff);
        CallTracker {
            timeout,
            capacity: queue_capacity,
            queue: VecDeque::new(),
            outstanding: None,
            prefix,
            counter: 0,
        }
    }

    /// Queues a CALL. Refused when `queue_capacity` CALLs already wait behind the one in
    /// flight (or behind the one that will be sent next, when none is in flight).
    pub fn enqueue(
        &mut self,
        request: RequestId,
        action: &'static str,
        payload: Value,
    ) -> Result<(), QueueFull> {
        // After this enqueue, one CALL is (or is about to be) in flight and the rest wait.
        let waiting = self.queue.len() + usize::from(self.outstanding.is_some());
        if waiting > self.capacity {
            return Err(QueueFull {
                capacity: self.capacity,
            });
        }
        self.queue.push_back(Queued {
            request,
            action,
            payload,
        });
        Ok(())
    }

    /// The next CALL text to send now, if none is outstanding and one is queued. It becomes
    /// the outstanding CALL, due to be answered by `now + timeout`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<String> {
        if self.outstanding.is_some() {
            return None;
        }
        let next = self.queue.pop_front()?;
        self.counter = self.counter.wrapping_add(1);
        let message_id = format!("{}-{}", self.prefix, self.counter);
        let text = framing::call(&message_id, next.action, &next.payload);
        self.outstanding = Some(Outstanding {
            message_id,
            request: next.request,
            action: next.action,
            deadline: now.checked_add(self.timeout).unwrap_or(now),
        });
        Some(text)
    }

    /// A CALLRESULT/CALLERROR from the charger: the request it answers, if `id` is the
    /// outstanding CALL's MessageId (the CALL is then no longer outstanding). Other ids
    /// (late answers to timed-out CALLs, answers to nothing) return `None`.
    pub fn handle_response(
        &mut self,
        id: &str,
        response: Response,
    ) -> Option<(RequestId, &'static str, Response)> {
        if self.outstanding.as_ref()?.message_id != id {
            return None;
        }
        let done = self.outstanding.take()?;
        Some((done.request, done.action, response))
    }

    /// The outstanding CALL, if its deadline has passed at `now` (it is then dropped).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<RequestId> {
        if now < self.outstanding.as_ref()?.deadline {
            return None;
        }
        self.outstanding.take().map(|o| o.request)
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.outstanding.as_ref().map(|o| o.deadline)
    }

    /// The MessageId of the outstanding CALL.
    pub fn outstanding_id(&self) -> Option<&str> {
        self.outstanding.as_ref().map(|o| o.message_id.as_str())
    }

    /// CALLs waiting behind the outstanding one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is outstanding or queued.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_none() && self.queue.is_empty()
    }

    /// On disconnect: every request not yet answered, the outstanding one first, then the
    /// queue in order. The tracker is empty afterwards.
    pub fn drain(&mut self) -> Vec<RequestId> {
        let mut out = Vec::with_capacity(self.queue.len() + 1);
        out.extend(self.outstanding.take().map(|o| o.request));
        out.extend(self.queue.drain(..).map(|q| q.request));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocpp::framing::{parse, Frame};
    use crate::ocpp::Version;
    use serde_json::json;

    fn id_of(text: &str) -> String {
        match parse(text, Version::V201) {
            Ok(Frame::Call { id, .. }) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids_are_unique_and_short() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(1), 10);
        let mut seen = std::collections::HashSet::new();
        for r in 0..100 {
            t.enqueue(r, "Reset", json!({})).unwrap();
            let id = id_of(&t.poll_transmit(now).unwrap());
            assert!(id.len() <= 36);
            assert!(seen.insert(id.clone()));
            assert_eq!(
                t.handle_response(&id, Response::Result(json!({})))
                    .map(|r| r.0),
                Some(r)
            );
        }
    }

    #[test]
    fn capacity_zero_allows_one_in_flight() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(1), 0);
        t.enqueue(1, "Reset", json!({})).unwrap();
        assert_eq!(
            t.enqueue(2, "Reset", json!({})),
            Err(QueueFull { capacity: 0 })
        );
        assert!(t.poll_transmit(now).is_some());
        assert!(t.enqueue(3, "Reset", json!({})).is_err());
    }

    #[test]
    fn deadline_is_inclusive() {
        let now = Instant::now();
        let mut t = CallTracker::new(Duration::from_secs(5), 1);
        t.enqueue(9, "Reset", json!({})).unwrap();
        t.poll_transmit(now).unwrap();
        assert_eq!(t.poll_timeout(), Some(now + Duration::from_secs(5)));
        assert_eq!(t.handle_timeout(now + Duration::from_millis(4999)), None);
        assert_eq!(t.handle_timeout(now + Duration::from_secs(5)), Some(9));
        assert_eq!(t.poll_timeout(), None);
        assert!(t.is_idle());
    }
}
