//! Type identification (IEC 60870-5-101 §7.2.1) of the types this station serves.
//!
//! Only the CP56Time2a variants of time-tagged types are listed: IEC 60870-5-104 §8 forbids
//! the CP24 types, and ocpp809 uses the same CP56 types on 101 so one process image serves
//! both links.

/// Type identification, first octet of the data unit identifier.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TypeId {
    M_SP_NA_1 = 1,
    M_DP_NA_1 = 3,
    M_ST_NA_1 = 5,
    M_BO_NA_1 = 7,
    M_ME_NA_1 = 9,
    M_ME_NB_1 = 11,
    M_ME_NC_1 = 13,
    M_IT_NA_1 = 15,
    M_SP_TB_1 = 30,
    M_DP_TB_1 = 31,
    M_ST_TB_1 = 32,
    M_BO_TB_1 = 33,
    M_ME_TD_1 = 34,
    M_ME_TE_1 = 35,
    M_ME_TF_1 = 36,
    M_IT_TB_1 = 37,
    C_SC_NA_1 = 45,
    C_DC_NA_1 = 46,
    C_RC_NA_1 = 47,
    C_SE_NA_1 = 48,
    C_SE_NB_1 = 49,
    C_SE_NC_1 = 50,
    C_BO_NA_1 = 51,
    C_SC_TA_1 = 58,
    C_DC_TA_1 = 59,
    C_RC_TA_1 = 60,
    C_SE_TA_1 = 61,
    C_SE_TB_1 = 62,
    C_SE_TC_1 = 63,
    C_BO_TA_1 = 64,
    M_EI_NA_1 = 70,
    C_IC_NA_1 = 100,
    C_CI_NA_1 = 101,
    C_RD_NA_1 = 102,
    C_CS_NA_1 = 103,
    C_RP_NA_1 = 105,
    C_TS_TA_1 = 107,
}

/// Octets of a CP56Time2a time tag (§7.2.6.18).
const CP56_LEN: usize = 7;

impl TypeId {
    /// Every supported type, in ascending order of its number.
    pub const ALL: [TypeId; 37] = [
        TypeId::M_SP_NA_1,
        TypeId::M_DP_NA_1,
        TypeId::M_ST_NA_1,
        TypeId::M_BO_NA_1,
        TypeId::M_ME_NA_1,
        TypeId::M_ME_NB_1,
        TypeId::M_ME_NC_1,
        TypeId::M_IT_NA_1,
        TypeId::M_SP_TB_1,
        TypeId::M_DP_TB_1,
        TypeId::M_ST_TB_1,
        TypeId::M_BO_TB_1,
        TypeId::M_ME_TD_1,
        TypeId::M_ME_TE_1,
        TypeId::M_ME_TF_1,
        TypeId::M_IT_TB_1,
        TypeId::C_SC_NA_1,
        TypeId::C_DC_NA_1,
        TypeId::C_RC_NA_1,
        TypeId::C_SE_NA_1,
        TypeId::C_SE_NB_1,
        TypeId::C_SE_NC_1,
        TypeId::C_BO_NA_1,
        TypeId::C_SC_TA_1,
        TypeId::C_DC_TA_1,
        TypeId::C_RC_TA_1,
        TypeId::C_SE_TA_1,
        TypeId::C_SE_TB_1,
        TypeId::C_SE_TC_1,
        TypeId::C_BO_TA_1,
        TypeId::M_EI_NA_1,
        TypeId::C_IC_NA_1,
        TypeId::C_CI_NA_1,
        TypeId::C_RD_NA_1,
        TypeId::C_CS_NA_1,
        TypeId::C_RP_NA_1,
        TypeId::C_TS_TA_1,
    ];

    /// The type with number `v`, or `None` for one this codec does not implement.
    pub fn from_u8(v: u8) -> Option<TypeId> {
        use TypeId::*;
        Some(match v {
            1 => M_SP_NA_1,
            3 => M_DP_NA_1,
            5 => M_ST_NA_1,
            7 => M_BO_NA_1,
            9 => M_ME_NA_1,
            11 => M_ME_NB_1,
            13 => M_ME_NC_1,
            15 => M_IT_NA_1,
            30 => M_SP_TB_1,
            31 => M_DP_TB_1,
            32 => M_ST_TB_1,
            33 => M_BO_TB_1,
            34 => M_ME_TD_1,
            35 => M_ME_TE_1,
            36 => M_ME_TF_1,
            37 => M_IT_TB_1,
            45 => C_SC_NA_1,
            46 => C_DC_NA_1,
            47 => C_RC_NA_1,
            48 => C_SE_NA_1,
            49 => C_SE_NB_1,
            50 => C_SE_NC_1,
            51 => C_BO_NA_1,
            58 => C_SC_TA_1,
            59 => C_DC_TA_1,
            60 => C_RC_TA_1,
            61 => C_SE_TA_1,
            62 => C_SE_TB_1,
            63 => C_SE_TC_1,
            64 => C_BO_TA_1,
            70 => M_EI_NA_1,
            100 => C_IC_NA_1,
            101 => C_CI_NA_1,
            102 => C_RD_NA_1,
            103 => C_CS_NA_1,
            105 => C_RP_NA_1,
            107 => C_TS_TA_1,
            _ => return None,
        })
    }

    /// The mnemonic the standard uses, e.g. `"M_ME_TF_1"`.
    pub fn name(self) -> &'static str {
        use TypeId::*;
        match self {
            M_SP_NA_1 => "M_SP_NA_1",
            M_DP_NA_1 => "M_DP_NA_1",
            M_ST_NA_1 => "M_ST_NA_1",
            M_BO_NA_1 => "M_BO_NA_1",
            M_ME_NA_1 => "M_ME_NA_1",
            M_ME_NB_1 => "M_ME_NB_1",
            M_ME_NC_1 => "M_ME_NC_1",
            M_IT_NA_1 => "M_IT_NA_1",
            M_SP_TB_1 => "M_SP_TB_1",
            M_DP_TB_1 => "M_DP_TB_1",
            M_ST_TB_1 => "M_ST_TB_1",
            M_BO_TB_1 => "M_BO_TB_1",
            M_ME_TD_1 => "M_ME_TD_1",
            M_ME_TE_1 => "M_ME_TE_1",
            M_ME_TF_1 => "M_ME_TF_1",
            M_IT_TB_1 => "M_IT_TB_1",
            C_SC_NA_1 => "C_SC_NA_1",
            C_DC_NA_1 => "C_DC_NA_1",
            C_RC_NA_1 => "C_RC_NA_1",
            C_SE_NA_1 => "C_SE_NA_1",
            C_SE_NB_1 => "C_SE_NB_1",
            C_SE_NC_1 => "C_SE_NC_1",
            C_BO_NA_1 => "C_BO_NA_1",
            C_SC_TA_1 => "C_SC_TA_1",
            C_DC_TA_1 => "C_DC_TA_1",
            C_RC_TA_1 => "C_RC_TA_1",
            C_SE_TA_1 => "C_SE_TA_1",
            C_SE_TB_1 => "C_SE_TB_1",
            C_SE_TC_1 => "C_SE_TC_1",
            C_BO_TA_1 => "C_BO_TA_1",
            M_EI_NA_1 => "M_EI_NA_1",
            C_IC_NA_1 => "C_IC_NA_1",
            C_CI_NA_1 => "C_CI_NA_1",
            C_RD_NA_1 => "C_RD_NA_1",
            C_CS_NA_1 => "C_CS_NA_1",
            C_RP_NA_1 => "C_RP_NA_1",
            C_TS_TA_1 => "C_TS_TA_1",
        }
    }

    /// Whether each object carries a CP56Time2a after its element. C_CS_NA_1 and C_TS_TA_1
    /// are excluded: their time is the element itself, not a tag added to one.
    pub fn has_time(self) -> bool {
        matches!(self as u8, 30..=37 | 58..=64)
    }

    /// The CP56 time-tagged variant of a process or command type; identity otherwise.
    pub fn with_time(self) -> TypeId {
        use TypeId::*;
        match self {
            M_SP_NA_1 => M_SP_TB_1,
            M_DP_NA_1 => M_DP_TB_1,
            M_ST_NA_1 => M_ST_TB_1,
            M_BO_NA_1 => M_BO_TB_1,
            M_ME_NA_1 => M_ME_TD_1,
            M_ME_NB_1 => M_ME_TE_1,
            M_ME_NC_1 => M_ME_TF_1,
            M_IT_NA_1 => M_IT_TB_1,
            C_SC_NA_1 => C_SC_TA_1,
            C_DC_NA_1 => C_DC_TA_1,
            C_RC_NA_1 => C_RC_TA_1,
            C_SE_NA_1 => C_SE_TA_1,
            C_SE_NB_1 => C_SE_TB_1,
            C_SE_NC_1 => C_SE_TC_1,
            C_BO_NA_1 => C_BO_TA_1,
            other => other,
        }
    }

    /// The untagged variant of a time-tagged type; identity otherwise.
    pub fn without_time(self) -> TypeId {
        use TypeId::*;
        match self {
            M_SP_TB_1 => M_SP_NA_1,
            M_DP_TB_1 => M_DP_NA_1,
            M_ST_TB_1 => M_ST_NA_1,
            M_BO_TB_1 => M_BO_NA_1,
            M_ME_TD_1 => M_ME_NA_1,
            M_ME_TE_1 => M_ME_NB_1,
            M_ME_TF_1 => M_ME_NC_1,
            M_IT_TB_1 => M_IT_NA_1,
            C_SC_TA_1 => C_SC_NA_1,
            C_DC_TA_1 => C_DC_NA_1,
            C_RC_TA_1 => C_RC_NA_1,
            C_SE_TA_1 => C_SE_NA_1,
            C_SE_TB_1 => C_SE_NB_1,
            C_SE_TC_1 => C_SE_NC_1,
            C_BO_TA_1 => C_BO_NA_1,
            other => other,
        }
    }

    /// Process commands (control direction), with or without time tag.
    pub fn is_command(self) -> bool {
        matches!(self as u8, 45..=51 | 58..=64)
    }

    /// Process information (monitor direction), with or without time tag.
    pub fn is_monitor(self) -> bool {
        matches!(self as u8, 1..=15 | 30..=37)
    }

    /// Octets of one object after its IOA: the element(s) plus the time tag, if any.
    pub fn element_len(self) -> usize {
        use TypeId::*;
        let element = match self {
            M_SP_NA_1 | M_SP_TB_1 | M_DP_NA_1 | M_DP_TB_1 => 1, // SIQ / DIQ
            M_ST_NA_1 | M_ST_TB_1 => 2,                         // VTI + QDS
            M_BO_NA_1 | M_BO_TB_1 => 5,                         // BSI + QDS
            M_ME_NA_1 | M_ME_TD_1 | M_ME_NB_1 | M_ME_TE_1 => 3, // NVA / SVA + QDS
            M_ME_NC_1 | M_ME_TF_1 => 5,                         // R32 + QDS
            M_IT_NA_1 | M_IT_TB_1 => 5,                         // BCR
            C_SC_NA_1 | C_SC_TA_1 | C_DC_NA_1 | C_DC_TA_1 => 1, // SCO / DCO
            C_RC_NA_1 | C_RC_TA_1 => 1,                         // RCO
            C_SE_NA_1 | C_SE_TA_1 | C_SE_NB_1 | C_SE_TB_1 => 3, // NVA / SVA + QOS
            C_SE_NC_1 | C_SE_TC_1 => 5,                         // R32 + QOS
            C_BO_NA_1 | C_BO_TA_1 => 4,                         // BSI
            M_EI_NA_1 | C_IC_NA_1 | C_CI_NA_1 | C_RP_NA_1 => 1, // COI / QOI / QCC / QRP
            C_RD_NA_1 => 0,                                     // the IOA is the request
            C_CS_NA_1 => CP56_LEN,                              // the time is the element
            C_TS_TA_1 => 2 + CP56_LEN,                          // TSC + CP56
        };
        if self.has_time() {
            element + CP56_LEN
        } else {
            element
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_number() {
        for t in TypeId::ALL {
            assert_eq!(TypeId::from_u8(t as u8), Some(t));
        }
        let known = (0..=255u8)
            .filter(|v| TypeId::from_u8(*v).is_some())
            .count();
        assert_eq!(known, TypeId::ALL.len());
    }

    #[test]
    fn unlisted_numbers_are_unknown() {
        for v in [
            0u8, 2, 4, 16, 29, 38, 40, 44, 52, 57, 65, 104, 106, 108, 127, 255,
        ] {
            assert_eq!(TypeId::from_u8(v), None, "{v}");
        }
    }

    #[test]
    fn names_match_the_variant_mnemonics() {
        for t in TypeId::ALL {
            assert_eq!(t.name(), format!("{t:?}"));
        }
    }

    #[test]
    fn time_variants_pair_up_both_ways() {
        assert_eq!(TypeId::M_SP_NA_1.with_time(), TypeId::M_SP_TB_1);
        assert_eq!(TypeId::C_SE_NC_1.with_time(), TypeId::C_SE_TC_1);
        assert_eq!(TypeId::C_IC_NA_1.with_time(), TypeId::C_IC_NA_1);
        for t in TypeId::ALL {
            assert_eq!(t.with_time().without_time(), t.without_time());
            assert!(t.with_time().has_time() || t.with_time() == t);
            assert!(!t.without_time().has_time());
            if t.has_time() {
                assert_eq!(t.without_time().with_time(), t);
                assert_eq!(t.element_len(), t.without_time().element_len() + CP56_LEN);
            }
        }
    }

    #[test]
    fn clock_sync_and_test_command_carry_their_time_as_the_element() {
        assert!(!TypeId::C_CS_NA_1.has_time());
        assert!(!TypeId::C_TS_TA_1.has_time());
        assert_eq!(TypeId::C_CS_NA_1.element_len(), 7);
        assert_eq!(TypeId::C_TS_TA_1.element_len(), 9);
    }

    #[test]
    fn element_lengths_follow_the_octet_layouts() {
        assert_eq!(TypeId::M_ME_TF_1.element_len(), 12);
        assert_eq!(TypeId::C_RD_NA_1.element_len(), 0);
        assert_eq!(TypeId::M_BO_TB_1.element_len(), 12);
        assert_eq!(TypeId::C_BO_TA_1.element_len(), 11);
        assert_eq!(TypeId::M_IT_TB_1.element_len(), 12);
    }

    #[test]
    fn directions_partition_the_process_types() {
        for t in TypeId::ALL {
            assert!(!(t.is_command() && t.is_monitor()));
        }
        assert!(TypeId::M_IT_TB_1.is_monitor());
        assert!(TypeId::C_BO_TA_1.is_command());
        assert!(!TypeId::C_IC_NA_1.is_command());
        assert!(!TypeId::M_EI_NA_1.is_monitor());
    }
}
