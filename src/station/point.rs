//! Point vocabulary of the process image: what kind of information object lives at an
//! address, its value and quality (IEC 60870-5-101 §7.2.6: SIQ, DIQ, QDS, BCR, …).
//!
//! These types are protocol-neutral enough for the mapping engine to produce and for both
//! link layers (104 and 101) to serve; the encoding into ASDUs happens in [`super::image`].

use crate::asdu::{DoublePointValue, Quality, TypeId};
use chrono::{DateTime, Utc};

/// The monitoring type family of a point; the ASDU type (with or without CP56 time tag)
/// is chosen per transmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonitorKind {
    Single,
    Double,
    StepPosition,
    Bitstring,
    Normalized,
    Scaled,
    Float,
    /// Integrated total (energy counter); served by counter interrogation, not by GI.
    Counter,
}

impl MonitorKind {
    /// The untagged type (1, 3, …, 15).
    pub fn type_plain(self) -> TypeId {
        match self {
            MonitorKind::Single => TypeId::M_SP_NA_1,
            MonitorKind::Double => TypeId::M_DP_NA_1,
            MonitorKind::StepPosition => TypeId::M_ST_NA_1,
            MonitorKind::Bitstring => TypeId::M_BO_NA_1,
            MonitorKind::Normalized => TypeId::M_ME_NA_1,
            MonitorKind::Scaled => TypeId::M_ME_NB_1,
            MonitorKind::Float => TypeId::M_ME_NC_1,
            MonitorKind::Counter => TypeId::M_IT_NA_1,
        }
    }

    /// The CP56-tagged type (30–37), used for every spontaneous transmission.
    pub fn type_with_time(self) -> TypeId {
        self.type_plain().with_time()
    }

    /// Status-like information is an *event*: it is never coalesced or dropped in favour of
    /// a newer value, and it overtakes queued measurements.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            MonitorKind::Single
                | MonitorKind::Double
                | MonitorKind::StepPosition
                | MonitorKind::Bitstring
        )
    }
}

/// What a point is: monitored information or a command object the master may operate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PointKind {
    Monitor(MonitorKind),
    /// A command object; the type is the untagged command type (45–51). The time-tagged
    /// variant (58–64) is accepted for it as well.
    Command(TypeId),
}

/// Static description of one information object.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSpec {
    pub ioa: u32,
    pub kind: PointKind,
    /// A read (C_RD_NA_1) of this point is first handed to the application, which refreshes
    /// the value (e.g. asks a charger) before the station answers.
    pub read_through: bool,
    /// Interrogation group 1–16 (GI) or 1–4 (counters) this point belongs to, if any.
    pub group: Option<u8>,
}

impl PointSpec {
    pub fn monitor(ioa: u32, kind: MonitorKind) -> PointSpec {
        PointSpec {
            ioa,
            kind: PointKind::Monitor(kind),
            read_through: false,
            group: None,
        }
    }

    pub fn command(ioa: u32, type_id: TypeId) -> PointSpec {
        PointSpec {
            ioa,
            kind: PointKind::Command(type_id.without_time()),
            read_through: false,
            group: None,
        }
    }
}

/// A monitored value as the application knows it (before IEC encoding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointValue {
    Single(bool),
    Double(DoublePointValue),
    StepPosition {
        value: i8,
        transient: bool,
    },
    Bitstring(u32),
    /// Normalised value in −1.0 ..< 1.0.
    Normalized(f32),
    Scaled(i16),
    Float(f32),
    /// Running total, e.g. Wh since commissioning; encoded modulo 2^31 with the carry bit.
    Counter(u64),
}

impl PointValue {
    pub fn kind(&self) -> MonitorKind {
        match self {
            PointValue::Single(_) => MonitorKind::Single,
            PointValue::Double(_) => MonitorKind::Double,
            PointValue::StepPosition { .. } => MonitorKind::StepPosition,
            PointValue::Bitstring(_) => MonitorKind::Bitstring,
            PointValue::Normalized(_) => MonitorKind::Normalized,
            PointValue::Scaled(_) => MonitorKind::Scaled,
            PointValue::Float(_) => MonitorKind::Float,
            PointValue::Counter(_) => MonitorKind::Counter,
        }
    }
}

/// A change the application makes to the process image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointUpdate {
    pub ioa: u32,
    /// `None` keeps the last value and changes only the quality (e.g. NT while a charger is
    /// offline, IV for an unparseable sample): a value is never invented.
    pub value: Option<PointValue>,
    pub quality: Quality,
    /// Time of the observation (CP56Time2a of the spontaneous ASDU).
    pub time: DateTime<Utc>,
}
