//! One link session's view of the station: its transmit queues, interrogations in
//! progress, select-before-operate state and how its ASDUs are addressed and sized.

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::command::Selection;
use super::image::ProcessImage;
use super::interrogation::{Interrogation, PackLimits};
use super::queue::{Outgoing, Spontaneous, TxQueue};
use super::LinkProfile;
use crate::asdu::{Asdu, Cot, EncodeError, TypeId};

pub(super) struct Session {
    pub profile: LinkProfile,
    pub active: bool,
    /// When data transfer was last started, to find the newest in a redundancy group.
    pub activation_order: u64,
    pub queue: TxQueue,
    pub interrogations: VecDeque<Interrogation>,
    pub selection: Option<Selection>,
    /// When a polled link (IEC 101) last heard its master; `None` for IEC 104 sessions.
    pub polled_at: Option<Instant>,
}

impl Session {
    pub fn new(profile: LinkProfile, event_capacity: usize) -> Session {
        Session {
            profile,
            active: false,
            activation_order: 0,
            queue: TxQueue::new(event_capacity),
            interrogations: VecDeque::new(),
            selection: None,
            polled_at: None,
        }
    }

    fn broadcast_address(&self) -> u16 {
        if self.profile.params.ca_size == 1 {
            0xFF
        } else {
            0xFFFF
        }
    }

    /// Whether a request addressed to `ca` is for this station. The broadcast address is
    /// accepted for the station-wide system commands only (§7.2.4).
    pub fn addresses_me(&self, ca: u16, type_id: TypeId) -> bool {
        ca == self.profile.common_address
            || (ca == self.broadcast_address()
                && matches!(
                    type_id,
                    TypeId::C_IC_NA_1 | TypeId::C_CI_NA_1 | TypeId::C_CS_NA_1 | TypeId::C_RP_NA_1
                ))
    }

    fn limits(&self) -> PackLimits {
        PackLimits {
            max_asdu_len: self.profile.max_asdu_len,
            header_len: self.profile.params.header_len(),
            ioa_size: usize::from(self.profile.params.ioa_size),
        }
    }

    /// The next thing to send, by lane priority.
    pub fn next_outgoing(
        &mut self,
        image: &ProcessImage,
        with_time: bool,
        now: DateTime<Utc>,
    ) -> Option<Outgoing> {
        self.next_class1(image, with_time, now)
            .or_else(|| self.next_class2())
    }

    /// Whether class 1 data (IEC 60870-5-101 §7.2.2.2: responses, events, interrogation
    /// answers) waits; a 101 line signals it with ACD.
    pub fn class1_pending(&self) -> bool {
        !self.queue.responses.is_empty()
            || (self.active && (!self.queue.events.is_empty() || !self.interrogations.is_empty()))
    }

    /// Class 1: responses, then events, then interrogation answers.
    pub fn next_class1(
        &mut self,
        image: &ProcessImage,
        with_time: bool,
        now: DateTime<Utc>,
    ) -> Option<Outgoing> {
        if let Some(response) = self.queue.responses.pop_front() {
            return Some(response);
        }
        if !self.active {
            return None;
        }
        if let Some(event) = self.queue.events.pop() {
            return Some(Outgoing::Asdu(single(event)));
        }
        let limits = self.limits();
        while let Some(interrogation) = self.interrogations.front_mut() {
            match interrogation.next_asdu(image, with_time, limits, now) {
                Some(asdu) => return Some(Outgoing::Asdu(asdu)),
                None => {
                    self.interrogations.pop_front();
                }
            }
        }
        None
    }

    /// Class 2: coalesced measurements, packed into one ASDU per run of one type.
    pub fn next_class2(&mut self) -> Option<Outgoing> {
        if !self.active {
            return None;
        }
        let limits = self.limits();
        let first = self.queue.measurements.pop()?;
        let mut asdu = single(first);
        let object_len = limits.ioa_size + first.type_id.element_len();
        let mut len = limits.header_len + object_len;
        while len + object_len <= limits.max_asdu_len && asdu.objects.len() < 127 {
            match self.queue.measurements.pop_if_type(first.type_id) {
                Some(next) => {
                    asdu.objects.push(next.object);
                    len += object_len;
                }
                None => break,
            }
        }
        Some(Outgoing::Asdu(asdu))
    }

    /// Encodes with this session's parameters; station-generated ASDUs get its common address.
    pub fn encode(&self, outgoing: Outgoing) -> Result<Vec<u8>, EncodeError> {
        match outgoing {
            Outgoing::Raw(bytes) => Ok(bytes),
            Outgoing::Asdu(mut asdu) => {
                if asdu.common_address == 0 {
                    asdu.common_address = self.profile.common_address;
                }
                let mut out = Vec::with_capacity(asdu.encoded_len(self.profile.params));
                asdu.encode(self.profile.params, &mut out)?;
                Ok(out)
            }
        }
    }
}

fn single(item: Spontaneous) -> Asdu {
    let mut asdu = Asdu::new(item.type_id, Cot::new(item.cause), 0);
    asdu.objects.push(item.object);
    asdu
}
