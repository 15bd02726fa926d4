//! Station and counter interrogation (IEC 60870-5-101 §7.4.5 / §7.4.6, IEC 60870-5-104
//! §7.2.6.22 QOI and §7.2.6.23 QCC), answered from the process image.
//!
//! The answer is produced lazily, a few objects at a time, whenever the link has room:
//! each object carries the image's value at the moment it is sent. A spontaneous change
//! that overtakes the cursor is therefore never followed by an older interrogated value,
//! and a large image never sits in memory twice.

use crate::asdu::{Asdu, Cause, Cot, InformationObject, TypeId};

use super::image::ProcessImage;
use super::point::MonitorKind;
use chrono::{DateTime, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterrogationKind {
    /// C_IC_NA_1: every monitored point but integrated totals (those are not transmitted
    /// with COT 20–36, §7.2.3).
    General { group: Option<u8> },
    /// C_CI_NA_1: integrated totals; `frozen` answers the values frozen by this request.
    Counter { group: Option<u8>, frozen: bool },
}

/// An interrogation in progress on one session.
#[derive(Clone, Debug)]
pub struct Interrogation {
    pub kind: InterrogationKind,
    /// The activation as received, mirrored as activation termination at the end.
    pub activation: Asdu,
    next_ioa: u32,
    finished: bool,
}

/// Sizes that bound one answer ASDU.
#[derive(Clone, Copy, Debug)]
pub struct PackLimits {
    pub max_asdu_len: usize,
    pub header_len: usize,
    pub ioa_size: usize,
}

impl Interrogation {
    pub fn new(kind: InterrogationKind, activation: Asdu) -> Interrogation {
        Interrogation {
            kind,
            activation,
            next_ioa: 0,
            finished: false,
        }
    }

    pub fn cause(&self) -> Cause {
        match self.kind {
            InterrogationKind::General { group: None } => Cause::INTERROGATED_BY_STATION,
            InterrogationKind::General { group: Some(g) } => Cause::interrogated_by_group(g),
            InterrogationKind::Counter { group: None, .. } => Cause::COUNTER_INTERROGATION,
            InterrogationKind::Counter { group: Some(g), .. } => Cause::counter_group(g),
        }
    }

    fn selects(&self, kind: MonitorKind, group: Option<u8>) -> bool {
        match self.kind {
            InterrogationKind::General { group: wanted } => {
                kind != MonitorKind::Counter && (wanted.is_none() || wanted == group)
            }
            InterrogationKind::Counter { group: wanted, .. } => {
                kind == MonitorKind::Counter && (wanted.is_none() || wanted == group)
            }
        }
    }

    /// Next answer ASDU (without common address, filled in by the session), then the
    /// activation termination, then `None`.
    pub fn next_asdu(
        &mut self,
        image: &ProcessImage,
        with_time: bool,
        limits: PackLimits,
        now: DateTime<Utc>,
    ) -> Option<Asdu> {
        if self.finished {
            return None;
        }
        let frozen = matches!(self.kind, InterrogationKind::Counter { frozen: true, .. });
        let mut batch: Option<(TypeId, Vec<InformationObject>, usize)> = None;
        let mut resume_at = None;
        for entry in image.range_from(self.next_ioa) {
            let Some(kind) = entry.monitor_kind() else {
                continue;
            };
            if !self.selects(kind, entry.spec.group) {
                continue;
            }
            let type_id = if with_time {
                kind.type_with_time()
            } else {
                kind.type_plain()
            };
            let object_len = limits.ioa_size + type_id.element_len();
            match &mut batch {
                None => {
                    if let Some(object) = image.object(entry, with_time, frozen, now) {
                        batch = Some((type_id, vec![object], limits.header_len + object_len));
                    }
                }
                Some((batch_type, objects, len)) => {
                    if *batch_type != type_id
                        || *len + object_len > limits.max_asdu_len
                        || objects.len() >= 127
                    {
                        resume_at = Some(entry.spec.ioa);
                        break;
                    }
                    if let Some(object) = image.object(entry, with_time, frozen, now) {
                        objects.push(object);
                        *len += object_len;
                    }
                }
            }
        }
        match batch {
            Some((type_id, objects, _)) => {
                // Past the last IOA the next call finds nothing and terminates.
                self.next_ioa = resume_at.unwrap_or(u32::MAX);
                let mut asdu = Asdu::new(type_id, Cot::new(self.cause()), 0);
                asdu.objects = objects;
                Some(asdu)
            }
            None => {
                self.finished = true;
                let mut termination = self.activation.clone();
                termination.cot = Cot {
                    cause: Cause::ACTIVATION_TERMINATION,
                    negative: false,
                    ..termination.cot
                };
                Some(termination)
            }
        }
    }
}
