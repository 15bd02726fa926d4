//! Transmit queues with priorities, one per link session, plus the standby buffer that keeps
//! events while no master has data transfer active.
//!
//! IEC 60870-5-101 §7.2 leaves transmission order to the station; SCADA operators expect
//! that a breaker trip is never stuck behind a flood of analogue updates (lib60870-C issues
//! #82, #121). So:
//!
//! 1. *responses* — confirmations and terminations of the master's own requests;
//! 2. *events* — status changes, alarms, end of initialisation: bounded FIFO, never
//!    coalesced; when full the oldest is dropped and counted;
//! 3. *measurements* — analogue values and counters: coalesced per IOA to the newest value,
//!    so the queue is bounded by the number of points and never carries stale values.
//!
//! Interrogation answers are generated lazily by the station between lanes 2 and 3.

use std::collections::{HashMap, VecDeque};

use crate::asdu::{Asdu, Cause, InformationObject, TypeId};

/// An ASDU waiting for transmission. The common address is filled in per session.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    Asdu(Asdu),
    /// A received ASDU echoed back with a changed cause (e.g. unknown type, COT 44), for
    /// types the codec cannot rebuild.
    Raw(Vec<u8>),
}

/// Bounded FIFO that drops its oldest entry when full and counts what it dropped.
#[derive(Debug)]
pub struct BoundedFifo<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> BoundedFifo<T> {
    pub fn new(capacity: usize) -> BoundedFifo<T> {
        BoundedFifo {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Appends; returns true when the oldest entry had to go to make room.
    pub fn push(&mut self, item: T) -> bool {
        let overflow = self.items.len() >= self.capacity;
        if overflow {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
        overflow
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..)
    }

    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }
}

/// A spontaneous object with the type it is sent as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spontaneous {
    pub type_id: TypeId,
    /// Spontaneous (3) for changes, initialised (4) for end of initialisation.
    pub cause: Cause,
    pub object: InformationObject,
}

/// Measurements coalesced per IOA: a newer value replaces the queued one in place, so a
/// point keeps its position and the queue never holds more than one entry per point.
#[derive(Debug, Default)]
pub struct CoalescingQueue {
    order: VecDeque<u32>,
    latest: HashMap<u32, Spontaneous>,
    coalesced: u64,
}

impl CoalescingQueue {
    pub fn push(&mut self, item: Spontaneous) {
        let ioa = item.object.address;
        if self.latest.insert(ioa, item).is_some() {
            self.coalesced += 1;
        } else {
            self.order.push_back(ioa);
        }
    }

    pub fn pop(&mut self) -> Option<Spontaneous> {
        while let Some(ioa) = self.order.pop_front() {
            if let Some(item) = self.latest.remove(&ioa) {
                return Some(item);
            }
        }
        None
    }

    /// Next queued item of `type_id`, if it is at the head (to pack several objects of one
    /// type into one ASDU without reordering).
    pub fn pop_if_type(&mut self, type_id: TypeId) -> Option<Spontaneous> {
        let ioa = *self.order.front()?;
        if self.latest.get(&ioa)?.type_id != type_id {
            return None;
        }
        self.pop()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    pub fn clear(&mut self) {
        self.order.clear();
        self.latest.clear();
    }
}

/// The per-session queues.
#[derive(Debug)]
pub struct TxQueue {
    pub responses: VecDeque<Outgoing>,
    pub events: BoundedFifo<Spontaneous>,
    pub measurements: CoalescingQueue,
}

impl TxQueue {
    pub fn new(event_capacity: usize) -> TxQueue {
        TxQueue {
            responses: VecDeque::new(),
            events: BoundedFifo::new(event_capacity),
            measurements: CoalescingQueue::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.responses.is_empty() && self.events.is_empty() && self.measurements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asdu::{Quality, Value};

    fn measurement(ioa: u32, value: f32) -> Spontaneous {
        Spontaneous {
            type_id: TypeId::M_ME_TF_1,
            cause: Cause::SPONTANEOUS,
            object: InformationObject {
                address: ioa,
                value: Value::ShortFloat {
                    value,
                    quality: Quality::GOOD,
                },
                time: None,
            },
        }
    }

    #[test]
    fn a_full_fifo_drops_the_oldest_and_counts_it() {
        let mut fifo = BoundedFifo::new(2);
        assert!(!fifo.push(1));
        assert!(!fifo.push(2));
        assert!(fifo.push(3));
        assert_eq!(fifo.dropped(), 1);
        assert_eq!(fifo.drain().collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn measurements_of_one_point_coalesce_to_the_newest_in_place() {
        let mut queue = CoalescingQueue::default();
        queue.push(measurement(1, 1.0));
        queue.push(measurement(2, 2.0));
        queue.push(measurement(1, 3.0));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.coalesced(), 1);
        assert_eq!(queue.pop(), Some(measurement(1, 3.0)));
        assert_eq!(queue.pop(), Some(measurement(2, 2.0)));
        assert_eq!(queue.pop(), None);
    }

    #[test]
    fn pop_if_type_does_not_reorder() {
        let mut queue = CoalescingQueue::default();
        let mut counter = measurement(5, 0.0);
        counter.type_id = TypeId::M_IT_TB_1;
        queue.push(counter);
        queue.push(measurement(6, 1.0));
        assert_eq!(queue.pop_if_type(TypeId::M_ME_TF_1), None);
        assert_eq!(queue.pop_if_type(TypeId::M_IT_TB_1), Some(counter));
        assert_eq!(
            queue.pop_if_type(TypeId::M_ME_TF_1),
            Some(measurement(6, 1.0))
        );
    }
}
