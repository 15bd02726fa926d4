//! Cause of transmission (IEC 60870-5-101 §7.2.3): the 6-bit cause, the P/N and T bits,
//! and the originator address that only a 2-octet COT carries.

/// Cause of transmission, the low 6 bits of the first COT octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cause(pub u8);

impl Cause {
    pub const PERIODIC: Cause = Cause(1);
    pub const BACKGROUND: Cause = Cause(2);
    pub const SPONTANEOUS: Cause = Cause(3);
    pub const INITIALIZED: Cause = Cause(4);
    pub const REQUEST: Cause = Cause(5);
    pub const ACTIVATION: Cause = Cause(6);
    pub const ACTIVATION_CON: Cause = Cause(7);
    pub const DEACTIVATION: Cause = Cause(8);
    pub const DEACTIVATION_CON: Cause = Cause(9);
    pub const ACTIVATION_TERMINATION: Cause = Cause(10);
    pub const RETURN_REMOTE: Cause = Cause(11);
    pub const RETURN_LOCAL: Cause = Cause(12);
    pub const FILE: Cause = Cause(13);
    pub const INTERROGATED_BY_STATION: Cause = Cause(20);
    pub const COUNTER_INTERROGATION: Cause = Cause(37);
    pub const UNKNOWN_TYPE: Cause = Cause(44);
    pub const UNKNOWN_CAUSE: Cause = Cause(45);
    pub const UNKNOWN_CA: Cause = Cause(46);
    pub const UNKNOWN_IOA: Cause = Cause(47);

    /// Cause 20 + `group` for an answer to a group interrogation (groups 1..=16).
    ///
    /// A group outside 1..=16 yields [`Cause::INTERROGATED_BY_STATION`]: answering as part of
    /// the station interrogation is the only cause a master will accept for such a point,
    /// and a constructor that panics would be a crash path in the station.
    pub fn interrogated_by_group(group: u8) -> Cause {
        match group {
            1..=16 => Cause(20 + group),
            _ => Cause::INTERROGATED_BY_STATION,
        }
    }

    /// Cause 37 + `group` for an answer to a counter group interrogation (groups 1..=4).
    ///
    /// A group outside 1..=4 yields the general [`Cause::COUNTER_INTERROGATION`], for the
    /// same reason as [`Cause::interrogated_by_group`].
    pub fn counter_group(group: u8) -> Cause {
        match group {
            1..=4 => Cause(37 + group),
            _ => Cause::COUNTER_INTERROGATION,
        }
    }

    /// Upper-case mnemonic for logs, e.g. `"ACTIVATION_CON"`; `"RESERVED"` for the numbers
    /// the standard leaves unassigned and `"NOT_USED"` for 0.
    pub fn name(self) -> &'static str {
        const GROUPS: [&str; 16] = [
            "INTERROGATED_BY_GROUP_1",
            "INTERROGATED_BY_GROUP_2",
            "INTERROGATED_BY_GROUP_3",
            "INTERROGATED_BY_GROUP_4",
            "INTERROGATED_BY_GROUP_5",
            "INTERROGATED_BY_GROUP_6",
            "INTERROGATED_BY_GROUP_7",
            "INTERROGATED_BY_GROUP_8",
            "INTERROGATED_BY_GROUP_9",
            "INTERROGATED_BY_GROUP_10",
            "INTERROGATED_BY_GROUP_11",
            "INTERROGATED_BY_GROUP_12",
            "INTERROGATED_BY_GROUP_13",
            "INTERROGATED_BY_GROUP_14",
            "INTERROGATED_BY_GROUP_15",
            "INTERROGATED_BY_GROUP_16",
        ];
        const COUNTER_GROUPS: [&str; 4] = [
            "COUNTER_GROUP_1",
            "COUNTER_GROUP_2",
            "COUNTER_GROUP_3",
            "COUNTER_GROUP_4",
        ];
        match self.0 {
            0 => "NOT_USED",
            1 => "PERIODIC",
            2 => "BACKGROUND",
            3 => "SPONTANEOUS",
            4 => "INITIALIZED",
            5 => "REQUEST",
            6 => "ACTIVATION",
            7 => "ACTIVATION_CON",
            8 => "DEACTIVATION",
            9 => "DEACTIVATION_CON",
            10 => "ACTIVATION_TERMINATION",
            11 => "RETURN_REMOTE",
            12 => "RETURN_LOCAL",
            13 => "FILE",
            20 => "INTERROGATED_BY_STATION",
            21..=36 => GROUPS
                .get(usize::from(self.0 - 21))
                .copied()
                .unwrap_or("RESERVED"),
            37 => "COUNTER_INTERROGATION",
            38..=41 => COUNTER_GROUPS
                .get(usize::from(self.0 - 38))
                .copied()
                .unwrap_or("RESERVED"),
            44 => "UNKNOWN_TYPE",
            45 => "UNKNOWN_CAUSE",
            46 => "UNKNOWN_CA",
            47 => "UNKNOWN_IOA",
            _ => "RESERVED",
        }
    }
}

/// The whole cause-of-transmission field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cot {
    pub cause: Cause,
    /// P/N bit: a negative confirmation.
    pub negative: bool,
    /// T bit: generated under test conditions, not to be acted upon.
    pub test: bool,
    /// Originator address; only on the wire with a 2-octet COT, so it is 0 after decoding a
    /// 1-octet COT and ignored when encoding one.
    pub originator: u8,
}

impl Cot {
    /// Positive, not test, originator 0.
    pub fn new(cause: Cause) -> Cot {
        Cot {
            cause,
            negative: false,
            test: false,
            originator: 0,
        }
    }

    /// The first COT octet; a cause beyond 6 bits would spill into P/N and T.
    pub(crate) fn first_octet(&self) -> Option<u8> {
        let flags = if self.negative { 0x40 } else { 0 } | if self.test { 0x80 } else { 0 };
        (self.cause.0 <= 0x3F).then_some(self.cause.0 | flags)
    }

    pub(crate) fn from_octets(first: u8, originator: u8) -> Cot {
        Cot {
            cause: Cause(first & 0x3F),
            negative: first & 0x40 != 0,
            test: first & 0x80 != 0,
            originator,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_causes_count_up_from_the_station_cause() {
        assert_eq!(Cause::interrogated_by_group(1), Cause(21));
        assert_eq!(Cause::interrogated_by_group(16), Cause(36));
        assert_eq!(Cause::counter_group(1), Cause(38));
        assert_eq!(Cause::counter_group(4), Cause(41));
    }

    #[test]
    fn out_of_range_groups_fall_back_to_the_general_cause() {
        assert_eq!(
            Cause::interrogated_by_group(0),
            Cause::INTERROGATED_BY_STATION
        );
        assert_eq!(
            Cause::interrogated_by_group(17),
            Cause::INTERROGATED_BY_STATION
        );
        assert_eq!(Cause::counter_group(5), Cause::COUNTER_INTERROGATION);
        assert_eq!(Cause::counter_group(0), Cause::COUNTER_INTERROGATION);
    }

    #[test]
    fn every_cause_number_has_a_name() {
        assert_eq!(Cause::ACTIVATION_CON.name(), "ACTIVATION_CON");
        assert_eq!(Cause(21).name(), "INTERROGATED_BY_GROUP_1");
        assert_eq!(Cause(36).name(), "INTERROGATED_BY_GROUP_16");
        assert_eq!(Cause(41).name(), "COUNTER_GROUP_4");
        assert_eq!(Cause(14).name(), "RESERVED");
        for v in 0..=255u8 {
            assert!(!Cause(v).name().is_empty());
        }
    }

    #[test]
    fn cot_bits_sit_above_the_cause() {
        let cot = Cot {
            cause: Cause::ACTIVATION_CON,
            negative: true,
            test: true,
            originator: 9,
        };
        assert_eq!(cot.first_octet(), Some(0xC7));
        assert_eq!(Cot::from_octets(0xC7, 9), cot);
        assert_eq!(Cot::new(Cause(64)).first_octet(), None);
    }
}
