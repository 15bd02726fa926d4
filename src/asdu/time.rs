//! Binary time tags: CP56Time2a (IEC 60870-5-101 §7.2.6.18) and CP24Time2a (§7.2.6.19).
//!
//! Decoding carries field values as received, even out-of-range ones such as minute 61,
//! because a station must be able to log and answer a bad clock sync rather than fail to
//! parse it; [`Cp56Time2a::to_datetime`] is where range is judged. Reserved bits are
//! rejected instead, as they have no field to be carried in and decode followed by encode
//! must reproduce the input.

use super::error::{DecodeError, EncodeError};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

const IV: u8 = 0x80;
const SU: u8 = 0x80;
/// Minute octet bit 6 ("substituted" in lib60870-C).
const SB: u8 = 0x40;
const MS_PER_DAY: i64 = 86_400_000;

/// Seven-octet binary time (§7.2.6.18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cp56Time2a {
    /// Milliseconds within the minute, seconds included (0..=59999).
    pub millis: u16,
    pub minute: u8,
    pub hour: u8,
    /// Day of month, 1..=31.
    pub day: u8,
    /// Day of week, 1 = Monday ..= 7 = Sunday; 0 = not used.
    pub weekday: u8,
    /// 1..=12.
    pub month: u8,
    /// Year of the century, 0..=99.
    pub year: u8,
    /// IV: the time is not valid (e.g. the clock was never synchronised).
    pub invalid: bool,
    /// SU: summer time.
    pub summer: bool,
    /// Bit 6 of the minute octet: reserved in IEC 60870-5-101 Ed. 2, used by lib60870-C and
    /// others as "substituted" time. Carried so that masters setting it are understood.
    pub substituted: bool,
}

impl Cp56Time2a {
    pub(crate) const LEN: usize = 7;

    /// SU and IV clear, weekday in ISO numbering, year of the century.
    pub fn from_datetime(t: DateTime<Utc>) -> Cp56Time2a {
        // chrono reports a leap second as nanosecond >= 1e9; CP56 has no room for it.
        let millis = (t.second() * 1000 + t.nanosecond() / 1_000_000).min(59_999);
        Cp56Time2a {
            millis: u16::try_from(millis).unwrap_or(59_999),
            minute: narrow(t.minute()),
            hour: narrow(t.hour()),
            day: narrow(t.day()),
            weekday: narrow(t.weekday().number_from_monday()),
            month: narrow(t.month()),
            year: narrow(t.year().rem_euclid(100).unsigned_abs()),
            invalid: false,
            summer: false,
            substituted: false,
        }
    }

    /// The instant in 2000..=2099 these fields name, ignoring IV, SU and the weekday;
    /// `None` if any field is out of range or the date does not exist.
    pub fn to_datetime(&self) -> Option<DateTime<Utc>> {
        if self.year > 99 || self.millis > 59_999 {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(
            2000 + i32::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )?;
        let time = date.and_hms_milli_opt(
            u32::from(self.hour),
            u32::from(self.minute),
            u32::from(self.millis / 1000),
            u32::from(self.millis % 1000),
        )?;
        Some(time.and_utc())
    }

    /// Like [`Cp56Time2a::from_datetime`] for milliseconds since 1970-01-01 UTC; total over
    /// `i64`, since the year is only kept modulo 100 anyway.
    pub fn from_unix_millis(ms: i64) -> Cp56Time2a {
        let days = ms.div_euclid(MS_PER_DAY);
        let of_day = ms.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let minute_of_day = of_day / 60_000;
        Cp56Time2a {
            millis: u16::try_from(of_day % 60_000).unwrap_or(59_999),
            minute: narrow(minute_of_day % 60),
            hour: narrow(minute_of_day / 60),
            day: narrow(day),
            // 1970-01-01 was a Thursday (ISO 4).
            weekday: narrow((days + 3).rem_euclid(7) + 1),
            month: narrow(month),
            year: narrow(year.rem_euclid(100)),
            invalid: false,
            summer: false,
            substituted: false,
        }
    }

    /// Appends the seven octets. Fields wider than their bit field are masked here (this
    /// cannot fail); [`Asdu::encode`](super::Asdu::encode) rejects them beforehand.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.millis.to_le_bytes());
        out.push(
            (self.minute & 0x3F)
                | if self.invalid { IV } else { 0 }
                | if self.substituted { SB } else { 0 },
        );
        out.push((self.hour & 0x1F) | if self.summer { SU } else { 0 });
        out.push((self.day & 0x1F) | (self.weekday & 0x07) << 5);
        out.push(self.month & 0x0F);
        out.push(self.year & 0x7F);
    }

    /// Reads the first seven octets of `b`; more may follow.
    pub fn decode(b: &[u8]) -> Result<Cp56Time2a, DecodeError> {
        let Some(&[ms0, ms1, min, hour, day, month, year]) = b.get(..Self::LEN) else {
            return Err(DecodeError::Truncated {
                needed: Self::LEN,
                available: b.len(),
            });
        };
        if hour & 0x60 != 0 || month & 0xF0 != 0 || year & 0x80 != 0 {
            return Err(DecodeError::InvalidField("CP56Time2a reserved bits"));
        }
        Ok(Cp56Time2a {
            millis: u16::from_le_bytes([ms0, ms1]),
            minute: min & 0x3F,
            hour: hour & 0x1F,
            day: day & 0x1F,
            weekday: day >> 5,
            month,
            year,
            invalid: min & IV != 0,
            summer: hour & SU != 0,
            substituted: min & SB != 0,
        })
    }

    /// Whether every field fits its bit field, i.e. [`Cp56Time2a::encode`] masks nothing.
    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        let fits = self.minute <= 0x3F
            && self.hour <= 0x1F
            && self.day <= 0x1F
            && self.weekday <= 0x07
            && self.month <= 0x0F
            && self.year <= 0x7F;
        fits.then_some(()).ok_or(EncodeError::InvalidField(
            "CP56Time2a field wider than its bits",
        ))
    }
}

/// Three-octet binary time (§7.2.6.19), milliseconds and minutes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cp24Time2a {
    pub millis: u16,
    pub minute: u8,
    pub invalid: bool,
    /// Minute bit 6, as in [`Cp56Time2a::substituted`].
    pub substituted: bool,
}

impl Cp24Time2a {
    pub(crate) const LEN: usize = 3;

    /// Appends the three octets; a minute above 63 is masked to its 6 bits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.millis.to_le_bytes());
        out.push(
            (self.minute & 0x3F)
                | if self.invalid { IV } else { 0 }
                | if self.substituted { SB } else { 0 },
        );
    }

    /// Reads the first three octets of `b`; more may follow.
    pub fn decode(b: &[u8]) -> Result<Cp24Time2a, DecodeError> {
        let Some(&[ms0, ms1, min]) = b.get(..Self::LEN) else {
            return Err(DecodeError::Truncated {
                needed: Self::LEN,
                available: b.len(),
            });
        };
        Ok(Cp24Time2a {
            millis: u16::from_le_bytes([ms0, ms1]),
            minute: min & 0x3F,
            invalid: min & IV != 0,
            substituted: min & SB != 0,
        })
    }
}

/// Narrows a value the caller has already bounded to a CP56 field; the fallback is never
/// taken but keeps the conversion free of panics.
fn narrow<T: TryInto<u8>>(v: T) -> u8 {
    v.try_into().unwrap_or(u8::MAX)
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`); exact for every day an `i64` millisecond count can reach.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Cp56Time2a {
        // 2024-02-29 13:45:12.345, a Thursday.
        Cp56Time2a {
            millis: 12_345,
            minute: 45,
            hour: 13,
            day: 29,
            weekday: 4,
            month: 2,
            year: 24,
            invalid: false,
            summer: false,
            substituted: false,
        }
    }

    #[test]
    fn cp56_encodes_as_in_the_standard() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        assert_eq!(out, [0x39, 0x30, 45, 13, 0x80 | 29, 2, 24]);
        assert_eq!(Cp56Time2a::decode(&out), Ok(sample()));
    }

    #[test]
    fn cp56_invalid_and_summer_flags_are_bit_7_of_minute_and_hour() {
        let t = Cp56Time2a {
            invalid: true,
            summer: true,
            substituted: false,
            ..sample()
        };
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(out[2], 0x80 | 45);
        assert_eq!(out[3], 0x80 | 13);
        assert_eq!(Cp56Time2a::decode(&out), Ok(t));
    }

    #[test]
    fn cp56_minute_bit_6_is_the_substituted_flag_of_lib60870() {
        let b = [0x39, 0x30, 0x40 | 45, 13, 0x9D, 2, 24];
        let t = Cp56Time2a::decode(&b).unwrap();
        assert!(t.substituted);
        assert_eq!(t.minute, 45);
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(out, b);
    }

    #[test]
    fn cp56_reserved_bits_are_rejected() {
        for (i, bit) in [(3, 0x20), (3, 0x40), (5, 0x10), (5, 0x80), (6, 0x80)] {
            let mut b = [0x39, 0x30, 45, 13, 0x9D, 2, 24];
            b[i] |= bit;
            assert!(
                matches!(Cp56Time2a::decode(&b), Err(DecodeError::InvalidField(_))),
                "octet {i} bit {bit:#x}"
            );
        }
    }

    #[test]
    fn cp56_out_of_range_fields_decode_but_do_not_convert() {
        let b = [0x00, 0x00, 61, 0, 1, 1, 0];
        let t = Cp56Time2a::decode(&b).unwrap();
        assert_eq!(t.minute, 61);
        assert_eq!(t.to_datetime(), None);
        assert_eq!(
            Cp56Time2a {
                month: 13,
                ..sample()
            }
            .to_datetime(),
            None
        );
        assert_eq!(
            Cp56Time2a {
                day: 30,
                ..sample()
            }
            .to_datetime(),
            None
        );
        assert_eq!(
            Cp56Time2a {
                millis: 60_000,
                ..sample()
            }
            .to_datetime(),
            None
        );
        assert_eq!(
            Cp56Time2a {
                year: 100,
                ..sample()
            }
            .to_datetime(),
            None
        );
    }

    #[test]
    fn cp56_short_input_is_truncated_not_a_panic() {
        assert_eq!(
            Cp56Time2a::decode(&[1, 2, 3]),
            Err(DecodeError::Truncated {
                needed: 7,
                available: 3
            })
        );
    }

    #[test]
    fn cp56_converts_to_and_from_chrono() {
        let dt = Utc.with_ymd_and_hms(2024, 2, 29, 13, 45, 12).unwrap()
            + chrono::Duration::milliseconds(345);
        assert_eq!(Cp56Time2a::from_datetime(dt), sample());
        assert_eq!(sample().to_datetime(), Some(dt));
        assert_eq!(
            Cp56Time2a::from_unix_millis(dt.timestamp_millis()),
            sample()
        );
    }

    #[test]
    fn unix_millis_before_1970_use_the_proleptic_calendar() {
        let dt = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap();
        let t = Cp56Time2a::from_unix_millis(dt.timestamp_millis());
        assert_eq!(t, Cp56Time2a::from_datetime(dt));
        assert_eq!((t.year, t.month, t.day, t.weekday), (69, 12, 31, 3));
    }

    #[test]
    fn unix_millis_at_the_extremes_do_not_panic() {
        for ms in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX] {
            let t = Cp56Time2a::from_unix_millis(ms);
            assert!(t.check().is_ok());
        }
    }

    #[test]
    fn cp56_fields_wider_than_their_bits_fail_the_check() {
        assert!(sample().check().is_ok());
        assert!(Cp56Time2a {
            minute: 64,
            ..sample()
        }
        .check()
        .is_err());
        assert!(Cp56Time2a {
            month: 16,
            ..sample()
        }
        .check()
        .is_err());
        assert!(Cp56Time2a {
            weekday: 8,
            ..sample()
        }
        .check()
        .is_err());
        assert!(Cp56Time2a {
            year: 128,
            ..sample()
        }
        .check()
        .is_err());
    }

    #[test]
    fn cp24_encodes_milliseconds_and_minute() {
        let t = Cp24Time2a {
            millis: 59_999,
            minute: 59,
            invalid: true,
            substituted: false,
        };
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(out, [0x5F, 0xEA, 0x80 | 59]);
        assert_eq!(Cp24Time2a::decode(&out), Ok(t));
        assert!(Cp24Time2a::decode(&[0, 0, 0x40]).is_ok_and(|t| t.substituted));
        assert!(Cp24Time2a::decode(&[0, 0]).is_err());
    }
}
