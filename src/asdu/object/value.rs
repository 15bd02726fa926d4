//! The value carried by one information object: the information elements of IEC 60870-5-101
//! §7.3 for each supported type identification (§7.2.1), without IOA and time tag.

use super::super::elements::{
    BinaryCounterReading, Dco, DoublePointValue, Qcc, Qoi, Qos, Rco, Sco,
};
use super::super::quality::Quality;
use super::super::time::Cp56Time2a;
use super::super::type_id::TypeId;

/// Element(s) of one information object; the comment names the types that carry it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// 1, 30 (SIQ).
    SinglePoint { on: bool, quality: Quality },
    /// 3, 31 (DIQ).
    DoublePoint {
        value: DoublePointValue,
        quality: Quality,
    },
    /// 5, 32 (VTI + QDS); `value` in -64..=63.
    StepPosition {
        value: i8,
        transient: bool,
        quality: Quality,
    },
    /// 7, 33 (BSI + QDS).
    Bitstring { bits: u32, quality: Quality },
    /// 9, 34 (NVA + QDS); the raw i16, value / 32768 in [-1, 1).
    Normalized { value: i16, quality: Quality },
    /// 11, 35 (SVA + QDS).
    Scaled { value: i16, quality: Quality },
    /// 13, 36 (IEEE 754 short float + QDS).
    ShortFloat { value: f32, quality: Quality },
    /// 15, 37 (BCR).
    IntegratedTotal(BinaryCounterReading),
    /// 45, 58 (SCO).
    SingleCommand(Sco),
    /// 46, 59 (DCO).
    DoubleCommand(Dco),
    /// 47, 60 (RCO).
    RegulatingStep(Rco),
    /// 48, 61 (NVA + QOS).
    SetpointNormalized { value: i16, qos: Qos },
    /// 49, 62 (SVA + QOS).
    SetpointScaled { value: i16, qos: Qos },
    /// 50, 63 (short float + QOS).
    SetpointFloat { value: f32, qos: Qos },
    /// 51, 64 (BSI).
    BitstringCommand { bits: u32 },
    /// 70 (COI): cause 0 power on, 1 local reset, 2 remote reset; 0..=127.
    EndOfInitialization {
        cause: u8,
        after_parameter_change: bool,
    },
    /// 100 (QOI).
    Interrogation(Qoi),
    /// 101 (QCC).
    CounterInterrogation(Qcc),
    /// 102: no element, the IOA names the object to read.
    Read,
    /// 103 (CP56Time2a as the element).
    ClockSync(Cp56Time2a),
    /// 105 (QRP): 1 general reset, 2 reset pending events with time tag.
    ResetProcess { qrp: u8 },
    /// 107 (TSC + CP56Time2a).
    TestCommand { counter: u16, time: Cp56Time2a },
}

impl Value {
    /// Whether this value may be carried by type `t` (with or without time tag).
    pub fn fits(&self, t: TypeId) -> bool {
        use TypeId::*;
        match self {
            Value::SinglePoint { .. } => matches!(t, M_SP_NA_1 | M_SP_TB_1),
            Value::DoublePoint { .. } => matches!(t, M_DP_NA_1 | M_DP_TB_1),
            Value::StepPosition { .. } => matches!(t, M_ST_NA_1 | M_ST_TB_1),
            Value::Bitstring { .. } => matches!(t, M_BO_NA_1 | M_BO_TB_1),
            Value::Normalized { .. } => matches!(t, M_ME_NA_1 | M_ME_TD_1),
            Value::Scaled { .. } => matches!(t, M_ME_NB_1 | M_ME_TE_1),
            Value::ShortFloat { .. } => matches!(t, M_ME_NC_1 | M_ME_TF_1),
            Value::IntegratedTotal(_) => matches!(t, M_IT_NA_1 | M_IT_TB_1),
            Value::SingleCommand(_) => matches!(t, C_SC_NA_1 | C_SC_TA_1),
            Value::DoubleCommand(_) => matches!(t, C_DC_NA_1 | C_DC_TA_1),
            Value::RegulatingStep(_) => matches!(t, C_RC_NA_1 | C_RC_TA_1),
            Value::SetpointNormalized { .. } => matches!(t, C_SE_NA_1 | C_SE_TA_1),
            Value::SetpointScaled { .. } => matches!(t, C_SE_NB_1 | C_SE_TB_1),
            Value::SetpointFloat { .. } => matches!(t, C_SE_NC_1 | C_SE_TC_1),
            Value::BitstringCommand { .. } => matches!(t, C_BO_NA_1 | C_BO_TA_1),
            Value::EndOfInitialization { .. } => t == M_EI_NA_1,
            Value::Interrogation(_) => t == C_IC_NA_1,
            Value::CounterInterrogation(_) => t == C_CI_NA_1,
            Value::Read => t == C_RD_NA_1,
            Value::ClockSync(_) => t == C_CS_NA_1,
            Value::ResetProcess { .. } => t == C_RP_NA_1,
            Value::TestCommand { .. } => t == C_TS_TA_1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_fits_exactly_its_type_pair() {
        let v = Value::ShortFloat {
            value: 1.0,
            quality: Quality::GOOD,
        };
        let fitting: Vec<TypeId> = TypeId::ALL.into_iter().filter(|t| v.fits(*t)).collect();
        assert_eq!(fitting, [TypeId::M_ME_NC_1, TypeId::M_ME_TF_1]);
        let fitting: Vec<TypeId> = TypeId::ALL
            .into_iter()
            .filter(|t| Value::Read.fits(*t))
            .collect();
        assert_eq!(fitting, [TypeId::C_RD_NA_1]);
    }
}
