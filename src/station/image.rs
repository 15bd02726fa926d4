//! The process image: the last known value, quality and time of every information object,
//! keyed by information object address, and its encoding into information objects
//! (IEC 60870-5-101 §7.2.6) for spontaneous transmission, interrogation and read.
//!
//! Every link (each 104 connection, each 101 line) serves this one image under its own
//! common address, so the key is the IOA alone.
//!
//! Integrated totals follow §7.2.6.9 (BCR): the 31-bit reading is the running total modulo
//! 2^31, CY tells that it wrapped since the last freeze, the sequence number counts counter
//! interrogations with freeze.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::point::{MonitorKind, PointKind, PointSpec, PointUpdate, PointValue};
use crate::asdu::{BinaryCounterReading, Cp56Time2a, InformationObject, Quality, Value};

const COUNTER_MODULUS: u64 = 1 << 31;

/// State of one point.
#[derive(Clone, Debug)]
pub struct Entry {
    pub spec: PointSpec,
    pub value: Option<PointValue>,
    pub quality: Quality,
    pub time: Option<DateTime<Utc>>,
    /// For counters: the total at the last freeze, answered by a freezing counter interrogation.
    pub frozen: Option<u64>,
}

impl Entry {
    fn new(spec: PointSpec) -> Entry {
        Entry {
            spec,
            value: None,
            // A point that has never had a value is invalid (CONTRACT §3).
            quality: Quality {
                invalid: true,
                ..Quality::GOOD
            },
            time: None,
            frozen: None,
        }
    }

    pub fn monitor_kind(&self) -> Option<MonitorKind> {
        match self.spec.kind {
            PointKind::Monitor(kind) => Some(kind),
            PointKind::Command(_) => None,
        }
    }
}

/// Result of applying an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateEffect {
    /// Value or quality changed: transmit spontaneously.
    Changed,
    /// Nothing a master could see changed (only the time moved on).
    Unchanged,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("no information object at IOA {0}")]
    UnknownIoa(u32),
    #[error("IOA {ioa} is a {expected:?} point, the update carries a {got:?} value")]
    KindMismatch {
        ioa: u32,
        expected: PointKind,
        got: MonitorKind,
    },
    #[error("IOA {0} is already defined")]
    Duplicate(u32),
}

/// All points, in IOA order (the order interrogation answers use).
#[derive(Debug, Default)]
pub struct ProcessImage {
    entries: BTreeMap<u32, Entry>,
    /// Counter interrogations with freeze so far, modulo 32 (the BCR sequence number).
    counter_sequence: u8,
    /// The command types some point accepts.
    command_types: std::collections::BTreeSet<crate::asdu::TypeId>,
}

impl ProcessImage {
    pub fn new() -> ProcessImage {
        ProcessImage::default()
    }

    pub fn insert(&mut self, spec: PointSpec) -> Result<(), ImageError> {
        if self.entries.contains_key(&spec.ioa) {
            return Err(ImageError::Duplicate(spec.ioa));
        }
        if let PointKind::Command(type_id) = spec.kind {
            self.command_types.insert(type_id);
        }
        self.entries.insert(spec.ioa, Entry::new(spec));
        Ok(())
    }

    /// Whether any command point accepts `type_id` (untagged).
    pub fn serves_command(&self, type_id: crate::asdu::TypeId) -> bool {
        self.command_types.contains(&type_id)
    }

    pub fn get(&self, ioa: u32) -> Option<&Entry> {
        self.entries.get(&ioa)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries from `start` (inclusive) on, in IOA order.
    pub fn range_from(&self, start: u32) -> impl Iterator<Item = &Entry> {
        self.entries.range(start..).map(|(_, entry)| entry)
    }

    pub fn apply(&mut self, update: &PointUpdate) -> Result<UpdateEffect, ImageError> {
        let entry = self
            .entries
            .get_mut(&update.ioa)
            .ok_or(ImageError::UnknownIoa(update.ioa))?;
        let expected = entry.spec.kind;
        if let Some(value) = update.value {
            if expected != PointKind::Monitor(value.kind()) {
                return Err(ImageError::KindMismatch {
                    ioa: update.ioa,
                    expected,
                    got: value.kind(),
                });
            }
        } else if entry.monitor_kind().is_none() {
            return Err(ImageError::UnknownIoa(update.ioa));
        }
        let changed =
            update.value.is_some_and(|v| Some(v) != entry.value) || update.quality != entry.quality;
        if let Some(value) = update.value {
            entry.value = Some(value);
        }
        entry.quality = update.quality;
        entry.time = Some(update.time);
        Ok(if changed {
            UpdateEffect::Changed
        } else {
            UpdateEffect::Unchanged
        })
    }

    pub fn counter_sequence(&self) -> u8 {
        self.counter_sequence
    }

    /// Freeze every counter (optionally only those of `group`): the frozen value is what a
    /// freezing counter interrogation reports. Readings are never reset by SCADA.
    pub fn freeze_counters(&mut self, group: Option<u8>) {
        self.counter_sequence = (self.counter_sequence + 1) % 32;
        for entry in self.entries.values_mut() {
            if entry.monitor_kind() != Some(MonitorKind::Counter) {
                continue;
            }
            if group.is_some() && entry.spec.group != group {
                continue;
            }
            if let Some(PointValue::Counter(total)) = entry.value {
                entry.frozen = Some(total);
            }
        }
    }

    /// The information object for `entry`, with a CP56 time tag when `with_time`.
    /// `frozen` selects the frozen counter reading instead of the running one.
    pub fn object(
        &self,
        entry: &Entry,
        with_time: bool,
        frozen: bool,
        now: DateTime<Utc>,
    ) -> Option<InformationObject> {
        let kind = entry.monitor_kind()?;
        let quality = entry.quality;
        let value = match (kind, entry.value) {
            (MonitorKind::Counter, value) => {
                let total = match value {
                    Some(PointValue::Counter(total)) => total,
                    _ => 0,
                };
                let reported = if frozen {
                    entry.frozen.unwrap_or(total)
                } else {
                    total
                };
                // CY: the reading wrapped since the total that was last frozen.
                let carry = entry
                    .frozen
                    .is_some_and(|f| f / COUNTER_MODULUS != reported / COUNTER_MODULUS);
                Value::IntegratedTotal(BinaryCounterReading {
                    value: (reported % COUNTER_MODULUS) as i32,
                    sequence: self.counter_sequence,
                    carry,
                    adjusted: false,
                    invalid: quality.invalid || entry.value.is_none(),
                })
            }
            (_, value) => encode_value(kind, value, quality),
        };
        let time = with_time.then(|| Cp56Time2a::from_datetime(entry.time.unwrap_or(now)));
        Some(InformationObject {
            address: entry.spec.ioa,
            value,
            time,
        })
    }
}

/// Encodes a non-counter value; a point without a value yet is sent as zero with IV set,
/// which is how IEC 60870-5 says "no valid value" (never a made-up good reading).
fn encode_value(kind: MonitorKind, value: Option<PointValue>, quality: Quality) -> Value {
    let quality = if value.is_none() {
        Quality {
            invalid: true,
            ..quality
        }
    } else {
        quality
    };
    match (kind, value) {
        (MonitorKind::Single, Some(PointValue::Single(on))) => Value::SinglePoint { on, quality },
        (MonitorKind::Single, _) => Value::SinglePoint { on: false, quality },
        (MonitorKind::Double, Some(PointValue::Double(value))) => {
            Value::DoublePoint { value, quality }
        }
        (MonitorKind::Double, _) => Value::DoublePoint {
            value: crate::asdu::DoublePointValue::Indeterminate,
            quality,
        },
        (MonitorKind::StepPosition, Some(PointValue::StepPosition { value, transient })) => {
            Value::StepPosition {
                value,
                transient,
                quality,
            }
        }
        (MonitorKind::StepPosition, _) => Value::StepPosition {
            value: 0,
            transient: false,
            quality,
        },
        (MonitorKind::Bitstring, Some(PointValue::Bitstring(bits))) => {
            Value::Bitstring { bits, quality }
        }
        (MonitorKind::Bitstring, _) => Value::Bitstring { bits: 0, quality },
        (MonitorKind::Normalized, Some(PointValue::Normalized(v))) => {
            let (value, overflow) = normalized_raw(v);
            Value::Normalized {
                value,
                quality: Quality {
                    overflow: quality.overflow || overflow,
                    ..quality
                },
            }
        }
        (MonitorKind::Normalized, _) => Value::Normalized { value: 0, quality },
        (MonitorKind::Scaled, Some(PointValue::Scaled(value))) => Value::Scaled { value, quality },
        (MonitorKind::Scaled, _) => Value::Scaled { value: 0, quality },
        (MonitorKind::Float, Some(PointValue::Float(value))) => {
            Value::ShortFloat { value, quality }
        }
        (MonitorKind::Float, _) => Value::ShortFloat {
            value: 0.0,
            quality,
        },
        (MonitorKind::Counter, _) => Value::IntegratedTotal(BinaryCounterReading {
            value: 0,
            sequence: 0,
            carry: false,
            adjusted: false,
            invalid: true,
        }),
    }
}

/// NVA: −1.0 ..< 1.0 as i16 / 32768; values outside the range saturate and set OV.
fn normalized_raw(v: f32) -> (i16, bool) {
    let scaled = (v * 32768.0).round();
    if scaled.is_nan() {
        (0, true)
    } else if scaled > i16::MAX as f32 {
        (i16::MAX, true)
    } else if scaled < i16::MIN as f32 {
        (i16::MIN, true)
    } else {
        (scaled as i16, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_point_without_a_value_is_served_invalid() {
        let mut image = ProcessImage::new();
        image
            .insert(PointSpec::monitor(7, MonitorKind::Float))
            .unwrap();
        let entry = image.get(7).unwrap();
        let object = image.object(entry, true, false, t0()).unwrap();
        match object.value {
            Value::ShortFloat { quality, .. } => assert!(quality.invalid),
            other => panic!("unexpected {other:?}"),
        }
        assert!(object.time.is_some());
    }

    #[test]
    fn a_quality_only_update_keeps_the_last_value() {
        let mut image = ProcessImage::new();
        image
            .insert(PointSpec::monitor(7, MonitorKind::Float))
            .unwrap();
        let good = PointUpdate {
            ioa: 7,
            value: Some(PointValue::Float(14.4)),
            quality: Quality::GOOD,
            time: t0(),
        };
        assert_eq!(image.apply(&good), Ok(UpdateEffect::Changed));
        assert_eq!(image.apply(&good), Ok(UpdateEffect::Unchanged));
        let stale = PointUpdate {
            value: None,
            quality: Quality {
                not_topical: true,
                ..Quality::GOOD
            },
            ..good
        };
        assert_eq!(image.apply(&stale), Ok(UpdateEffect::Changed));
        let entry = image.get(7).unwrap();
        assert_eq!(entry.value, Some(PointValue::Float(14.4)));
        assert!(entry.quality.not_topical);
    }

    #[test]
    fn an_update_of_the_wrong_kind_is_refused() {
        let mut image = ProcessImage::new();
        image
            .insert(PointSpec::monitor(7, MonitorKind::Single))
            .unwrap();
        let update = PointUpdate {
            ioa: 7,
            value: Some(PointValue::Float(1.0)),
            quality: Quality::GOOD,
            time: t0(),
        };
        assert!(matches!(
            image.apply(&update),
            Err(ImageError::KindMismatch { ioa: 7, .. })
        ));
        assert_eq!(
            image.apply(&PointUpdate { ioa: 8, ..update }),
            Err(ImageError::UnknownIoa(8))
        );
    }

    #[test]
    fn counters_wrap_modulo_two_to_the_31_with_the_carry_bit() {
        let mut image = ProcessImage::new();
        image
            .insert(PointSpec::monitor(2, MonitorKind::Counter))
            .unwrap();
        let update = |total| PointUpdate {
            ioa: 2,
            value: Some(PointValue::Counter(total)),
            quality: Quality::GOOD,
            time: t0(),
        };
        image.apply(&update(COUNTER_MODULUS - 10)).unwrap();
        image.freeze_counters(None);
        assert_eq!(image.counter_sequence(), 1);
        image.apply(&update(COUNTER_MODULUS + 5)).unwrap();
        let entry = image.get(2).unwrap();
        let running = image.object(entry, false, false, t0()).unwrap();
        assert_eq!(
            running.value,
            Value::IntegratedTotal(BinaryCounterReading {
                value: 5,
                sequence: 1,
                carry: true,
                adjusted: false,
                invalid: false
            })
        );
        let frozen = image.object(entry, false, true, t0()).unwrap();
        assert_eq!(
            frozen.value,
            Value::IntegratedTotal(BinaryCounterReading {
                value: (COUNTER_MODULUS - 10) as i32,
                sequence: 1,
                carry: false,
                adjusted: false,
                invalid: false
            })
        );
    }

    #[test]
    fn normalized_values_saturate_with_overflow() {
        assert_eq!(normalized_raw(0.5), (16384, false));
        assert_eq!(normalized_raw(2.0), (i16::MAX, true));
        assert_eq!(normalized_raw(-1.0), (i16::MIN, false));
        assert_eq!(normalized_raw(f32::NAN), (0, true));
    }
}
