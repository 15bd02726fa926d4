//! Pure register handling, no I/O: decoding the 16-bit words of one `[[meter.register]]` into
//! a value in W, Wh, A or V (CONTRACT §2, §7 "Modbus"), and planning the read requests for a
//! meter (Modbus Application Protocol v1.1b3 §6.3/§6.4: at most 125 registers per read).

use thiserror::Error;

use crate::config::{Measurand, MeterRegister, RegisterType, Unit, WordOrder};
use crate::mapping::meter::MeterReading;

/// The largest quantity of registers one read request may ask for (MODBUS Application
/// Protocol v1.1b3 §6.3 and §6.4: 1 to 125).
pub const MAX_REGISTERS_PER_READ: u16 = 125;

/// Two registers of the same function are read in one request when at most this many unused
/// registers lie between them. Reading a few unused registers costs 2 octets each; a second
/// request costs a whole round trip (on RTU at 9600 baud, about 20 ms plus the turnaround).
pub const MAX_GAP: u16 = 8;

/// Why the words read for a register do not give a value. The poll counts as failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    #[error("{measurand}: f32 at register {address} is not a finite number ({raw})")]
    NotFinite {
        measurand: &'static str,
        address: u16,
        raw: f32,
    },
    #[error("{measurand}: value at register {address} is not finite after scaling")]
    ScaledNotFinite {
        measurand: &'static str,
        address: u16,
    },
    #[error("{ty} needs {need} registers, got {got}")]
    WordCount {
        ty: &'static str,
        need: usize,
        got: usize,
    },
    #[error("response to read of {count} registers at {address} has {got} registers")]
    ShortResponse {
        address: u16,
        count: u16,
        got: usize,
    },
    #[error("{got} responses for {want} planned requests")]
    ResponseCount { want: usize, got: usize },
}

/// A `[[meter.register]]` that cannot be planned (the config validator normally refuses it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("{measurand}: function {function} is not a register read (3 or 4)")]
    Function {
        measurand: &'static str,
        function: u8,
    },
    #[error("{measurand}: registers {address}..{address}+{words} run past address 65535")]
    AddressRange {
        measurand: &'static str,
        address: u16,
        words: u16,
    },
    #[error("no registers configured")]
    Empty,
}

/// The two Modbus read functions a meter register can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadFunction {
    /// 0x03 Read Holding Registers.
    Holding,
    /// 0x04 Read Input Registers.
    Input,
}

impl ReadFunction {
    /// From the configuration's `function` key.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            3 => Some(Self::Holding),
            4 => Some(Self::Input),
            _ => None,
        }
    }

    /// The Modbus function code.
    pub fn code(self) -> u8 {
        match self {
            Self::Holding => 3,
            Self::Input => 4,
        }
    }
}

/// One read request of a [`ReadPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    pub function: ReadFunction,
    /// 0-based address of the first register.
    pub address: u16,
    /// Number of registers, 1..=125.
    pub count: u16,
}

/// Where a register's words are found in the responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    request: usize,
    offset: usize,
}

/// The read requests that cover every register of a meter, and how to slice the answers back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    registers: Vec<MeterRegister>,
    requests: Vec<ReadRequest>,
    /// One per register, same order as `registers`.
    slots: Vec<Slot>,
}

impl ReadPlan {
    /// Groups `registers` into as few requests as possible: same function, contiguous or
    /// separated by at most [`MAX_GAP`] unused registers, at most
    /// [`MAX_REGISTERS_PER_READ`] registers per request.
    pub fn new(registers: &[MeterRegister]) -> Result<Self, PlanError> {
        if registers.is_empty() {
            return Err(PlanError::Empty);
        }
        // (function, first, end exclusive, register index)
        let mut spans = Vec::with_capacity(registers.len());
        for (i, reg) in registers.iter().enumerate() {
            let function = ReadFunction::from_code(reg.function).ok_or(PlanError::Function {
                measurand: reg.measurand.as_str(),
                function: reg.function,
            })?;
            let words = reg.r#type.words();
            let end = u32::from(reg.address) + u32::from(words);
            if end > 0x1_0000 {
                return Err(PlanError::AddressRange {
                    measurand: reg.measurand.as_str(),
                    address: reg.address,
                    words,
                });
            }
            spans.push((function, u32::from(reg.address), end, i));
        }
        spans.sort_by_key(|&(f, start, end, _)| (f, start, end));

        let mut requests: Vec<ReadRequest> = Vec::new();
        let mut slots = vec![
            Slot {
                request: 0,
                offset: 0
            };
            registers.len()
        ];
        // The open request: (function, start, end exclusive).
        let mut open: Option<(ReadFunction, u32, u32)> = None;
        for (function, start, end, index) in spans {
            let joined = match open {
                Some((f, o_start, o_end))
                    if f == function
                        && start <= o_end + u32::from(MAX_GAP)
                        && end.max(o_end) - o_start <= u32::from(MAX_REGISTERS_PER_READ) =>
                {
                    open = Some((f, o_start, end.max(o_end)));
                    Some(o_start)
                }
                _ => None,
            };
            let o_start = match joined {
                Some(s) => s,
                None => {
                    if let Some(o) = open.take() {
                        requests.push(to_request(o));
                    }
                    open = Some((function, start, end));
                    start
                }
            };
            slots[index] = Slot {
                request: requests.len(),
                offset: (start - o_start) as usize,
            };
        }
        if let Some(o) = open {
            requests.push(to_request(o));
        }
        Ok(Self {
            registers: registers.to_vec(),
            requests,
            slots,
        })
    }

    /// The requests to send, in order.
    pub fn requests(&self) -> &[ReadRequest] {
        &self.requests
    }

    /// Decodes the answers to [`Self::requests`] (same order) into a reading with every
    /// configured measurand.
    pub fn decode(&self, responses: &[Vec<u16>]) -> Result<MeterReading, DecodeError> {
        if responses.len() != self.requests.len() {
            return Err(DecodeError::ResponseCount {
                want: self.requests.len(),
                got: responses.len(),
            });
        }
        for (req, words) in self.requests.iter().zip(responses) {
            if words.len() < usize::from(req.count) {
                return Err(DecodeError::ShortResponse {
                    address: req.address,
                    count: req.count,
                    got: words.len(),
                });
            }
        }
        let mut reading = MeterReading::default();
        for (reg, slot) in self.registers.iter().zip(&self.slots) {
            let n = usize::from(reg.r#type.words());
            let words = responses
                .get(slot.request)
                .and_then(|w| w.get(slot.offset..slot.offset + n))
                .ok_or(DecodeError::WordCount {
                    ty: reg.r#type.as_str(),
                    need: n,
                    got: 0,
                })?;
            let value = decode_register(reg, words)?;
            let field = match reg.measurand {
                Measurand::PowerActiveImport => &mut reading.power_w,
                Measurand::EnergyActiveImportRegister => &mut reading.energy_wh,
                Measurand::CurrentImport => &mut reading.current_a,
                Measurand::Voltage => &mut reading.voltage_v,
            };
            *field = Some(value);
        }
        Ok(reading)
    }
}

fn to_request((function, start, end): (ReadFunction, u32, u32)) -> ReadRequest {
    // start < 0x10000 and end - start <= 125 by construction.
    ReadRequest {
        function,
        address: start as u16,
        count: (end - start) as u16,
    }
}

/// The raw value of `words` as `ty`, before scaling. `order` says which word comes first.
pub fn decode_raw(ty: RegisterType, order: WordOrder, words: &[u16]) -> Result<f64, DecodeError> {
    let need = usize::from(ty.words());
    if words.len() != need {
        return Err(DecodeError::WordCount {
            ty: ty.as_str(),
            need,
            got: words.len(),
        });
    }
    // Combine high word first, whatever the order on the wire.
    let combined = words.iter().enumerate().fold(0u64, |acc, (i, _)| {
        let w = match order {
            WordOrder::Big => words[i],
            WordOrder::Little => words[need - 1 - i],
        };
        (acc << 16) | u64::from(w)
    });
    Ok(match ty {
        RegisterType::U16 => combined as u16 as f64,
        RegisterType::I16 => combined as u16 as i16 as f64,
        RegisterType::U32 => combined as u32 as f64,
        RegisterType::I32 => combined as u32 as i32 as f64,
        RegisterType::F32 => f64::from(f32::from_bits(combined as u32)),
        RegisterType::U64 => combined as f64,
    })
}

/// The value of `reg` from its `words`, scaled and normalised to W, Wh, A or V. Energy given
/// in kWh is rounded to whole Wh (CONTRACT §7). NaN or infinity is an error, never a 0.
pub fn decode_register(reg: &MeterRegister, words: &[u16]) -> Result<f64, DecodeError> {
    let raw = decode_raw(reg.r#type, reg.word_order, words)?;
    if !raw.is_finite() {
        return Err(DecodeError::NotFinite {
            measurand: reg.measurand.as_str(),
            address: reg.address,
            raw: raw as f32,
        });
    }
    let mut value = raw * reg.scale * reg.unit.base_factor();
    if reg.unit == Unit::KWh {
        value = value.round();
    }
    if !value.is_finite() {
        return Err(DecodeError::ScaledNotFinite {
            measurand: reg.measurand.as_str(),
            address: reg.address,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(
        measurand: Measurand,
        function: u8,
        address: u16,
        ty: RegisterType,
        unit: Unit,
    ) -> MeterRegister {
        MeterRegister {
            measurand,
            function,
            address,
            r#type: ty,
            word_order: WordOrder::Big,
            scale: 1.0,
            unit,
        }
    }

    #[test]
    fn f32_230_5_big_word_order_is_high_word_first() {
        let v = decode_raw(RegisterType::F32, WordOrder::Big, &[0x4366, 0x8000]);
        assert_eq!(v, Ok(230.5));
    }

    #[test]
    fn little_word_order_swaps_the_words() {
        let v = decode_raw(RegisterType::F32, WordOrder::Little, &[0x8000, 0x4366]);
        assert_eq!(v, Ok(230.5));
        let v = decode_raw(RegisterType::U32, WordOrder::Little, &[0x5678, 0x1234]);
        assert_eq!(v, Ok(f64::from(0x1234_5678u32)));
        let v = decode_raw(RegisterType::U32, WordOrder::Big, &[0x1234, 0x5678]);
        assert_eq!(v, Ok(f64::from(0x1234_5678u32)));
    }

    #[test]
    fn u64_energy_in_both_word_orders() {
        let big = [0x0000, 0x0001, 0x0002, 0x0003];
        let expect = (1u64 << 32 | 2 << 16 | 3) as f64;
        assert_eq!(
            decode_raw(RegisterType::U64, WordOrder::Big, &big),
            Ok(expect)
        );
        let little = [0x0003, 0x0002, 0x0001, 0x0000];
        assert_eq!(
            decode_raw(RegisterType::U64, WordOrder::Little, &little),
            Ok(expect)
        );
    }

    #[test]
    fn signed_types_are_twos_complement() {
        assert_eq!(
            decode_raw(RegisterType::I16, WordOrder::Big, &[0xFFFE]),
            Ok(-2.0)
        );
        assert_eq!(
            decode_raw(RegisterType::U16, WordOrder::Big, &[0xFFFE]),
            Ok(65534.0)
        );
        assert_eq!(
            decode_raw(RegisterType::I32, WordOrder::Big, &[0xFFFF, 0xFF38]),
            Ok(-200.0)
        );
        assert_eq!(
            decode_raw(RegisterType::I32, WordOrder::Little, &[0xFF38, 0xFFFF]),
            Ok(-200.0)
        );
    }

    #[test]
    fn wrong_word_count_is_an_error() {
        assert!(matches!(
            decode_raw(RegisterType::F32, WordOrder::Big, &[0x4366]),
            Err(DecodeError::WordCount {
                need: 2,
                got: 1,
                ..
            })
        ));
    }

    #[test]
    fn nan_and_infinity_are_errors_not_zero() {
        let r = reg(
            Measurand::PowerActiveImport,
            4,
            52,
            RegisterType::F32,
            Unit::W,
        );
        for words in [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]] {
            assert!(matches!(
                decode_register(&r, &words),
                Err(DecodeError::NotFinite { address: 52, .. })
            ));
        }
    }

    #[test]
    fn kw_scales_to_w_and_kwh_rounds_to_whole_wh() {
        let mut r = reg(
            Measurand::PowerActiveImport,
            4,
            0,
            RegisterType::I16,
            Unit::KW,
        );
        r.scale = 0.01;
        assert!((decode_register(&r, &[0xFF9C]).unwrap() - -1000.0).abs() < 1e-9);
        // 1234.5678 kWh as f32 → 1234567.8 Wh → 1234568 Wh.
        let mut e = reg(
            Measurand::EnergyActiveImportRegister,
            4,
            0x48,
            RegisterType::F32,
            Unit::KWh,
        );
        let bits = 1234.5678f32.to_bits();
        let words = [(bits >> 16) as u16, bits as u16];
        assert_eq!(decode_register(&e, &words), Ok(1_234_568.0));
        e.unit = Unit::Wh;
        e.scale = 10.0;
        e.r#type = RegisterType::U32;
        assert_eq!(decode_register(&e, &[0x0001, 0x0000]), Ok(655_360.0));
    }

    fn sdm630() -> Vec<MeterRegister> {
        vec![
            reg(Measurand::Voltage, 4, 0x0000, RegisterType::F32, Unit::V),
            reg(
                Measurand::CurrentImport,
                4,
                0x0006,
                RegisterType::F32,
                Unit::A,
            ),
            reg(
                Measurand::PowerActiveImport,
                4,
                0x0034,
                RegisterType::F32,
                Unit::W,
            ),
            reg(
                Measurand::EnergyActiveImportRegister,
                4,
                0x0048,
                RegisterType::F32,
                Unit::KWh,
            ),
        ]
    }

    #[test]
    fn planner_joins_small_gaps_and_splits_large_ones() {
        let plan = ReadPlan::new(&sdm630()).unwrap();
        // 0..2 and 6..8 (gap 4) join; 0x34 is 44 registers after 8: new request; 0x48 is
        // 18 after 0x36: new request.
        assert_eq!(
            plan.requests(),
            &[
                ReadRequest {
                    function: ReadFunction::Input,
                    address: 0,
                    count: 8
                },
                ReadRequest {
                    function: ReadFunction::Input,
                    address: 0x34,
                    count: 2
                },
                ReadRequest {
                    function: ReadFunction::Input,
                    address: 0x48,
                    count: 2
                },
            ]
        );
    }

    #[test]
    fn planner_keeps_functions_apart_and_respects_125() {
        let regs = vec![
            reg(Measurand::Voltage, 3, 10, RegisterType::U16, Unit::V),
            reg(Measurand::CurrentImport, 4, 10, RegisterType::U16, Unit::A),
        ];
        let plan = ReadPlan::new(&regs).unwrap();
        assert_eq!(plan.requests().len(), 2, "{:?}", plan.requests());
        assert_eq!(plan.requests()[0].function, ReadFunction::Holding);

        // A chain of u16 registers 7 apart from 10 to 130, then a u64: ending at 135 it
        // still fits one request of 125 registers, ending at 136 it does not.
        let mut chain: Vec<MeterRegister> = (0..16)
            .map(|k| {
                reg(
                    Measurand::Voltage,
                    4,
                    10 + 8 * k,
                    RegisterType::U16,
                    Unit::V,
                )
            })
            .collect();
        chain.push(reg(
            Measurand::EnergyActiveImportRegister,
            4,
            131,
            RegisterType::U64,
            Unit::Wh,
        ));
        let plan = ReadPlan::new(&chain).unwrap();
        assert_eq!(
            plan.requests(),
            &[ReadRequest {
                function: ReadFunction::Input,
                address: 10,
                count: 125
            }]
        );
        if let Some(last) = chain.last_mut() {
            last.address = 132;
        }
        let plan = ReadPlan::new(&chain).unwrap();
        assert_eq!(plan.requests().len(), 2, "{:?}", plan.requests());
        assert!(plan
            .requests()
            .iter()
            .all(|r| r.count <= MAX_REGISTERS_PER_READ));
    }

    #[test]
    fn planner_slices_words_back_per_register() {
        let regs = sdm630();
        let plan = ReadPlan::new(&regs).unwrap();
        let mut first = vec![0u16; 8];
        first[0..2].copy_from_slice(&[0x4366, 0x8000]); // 230.5 V
        first[6..8].copy_from_slice(&[0x4120, 0x0000]); // 10 A
        let power = vec![0x4561, 0xC000]; // 3612 W
        let energy = vec![0x3F80, 0x0000]; // 1 kWh
        let reading = plan.decode(&[first, power, energy]).unwrap();
        assert_eq!(
            reading,
            MeterReading {
                power_w: Some(3612.0),
                energy_wh: Some(1000.0),
                current_a: Some(10.0),
                voltage_v: Some(230.5),
            }
        );
    }

    #[test]
    fn short_or_missing_responses_are_errors() {
        let plan = ReadPlan::new(&sdm630()).unwrap();
        assert!(matches!(
            plan.decode(&[vec![0; 8], vec![0; 2]]),
            Err(DecodeError::ResponseCount { want: 3, got: 2 })
        ));
        assert!(matches!(
            plan.decode(&[vec![0; 7], vec![0; 2], vec![0; 2]]),
            Err(DecodeError::ShortResponse { .. })
        ));
    }

    #[test]
    fn planner_refuses_bad_function_and_address_overflow() {
        let mut r = reg(Measurand::Voltage, 1, 0, RegisterType::U16, Unit::V);
        assert!(matches!(
            ReadPlan::new(std::slice::from_ref(&r)),
            Err(PlanError::Function { function: 1, .. })
        ));
        r.function = 4;
        r.address = 0xFFFF;
        r.r#type = RegisterType::F32;
        assert!(matches!(
            ReadPlan::new(&[r]),
            Err(PlanError::AddressRange { .. })
        ));
        assert_eq!(ReadPlan::new(&[]), Err(PlanError::Empty));
    }
}
