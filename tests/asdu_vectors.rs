//! Hand-written octet vectors for every supported type identification (IEC 60870-5-101 §7.3,
//! as used by IEC 60870-5-104), each checked in both directions: decoding the octets gives
//! the expected structure, and encoding the structure gives the octets back.
//!
//! The octets are written from the layouts in the standard, not produced by the codec, so a
//! field in the wrong place or order fails here even if decode and encode agree with each
//! other.

use chrono::{TimeZone, Utc};
use ocpp809::asdu::{
    mirror, Asdu, AsduParams, BinaryCounterReading, Cause, Cot, Cp56Time2a, Dco, DecodeError,
    DoublePointValue, Freeze, Header, InformationObject, Qcc, Qoi, Qos, Quality, Rco, Sco,
    StepCommandState, TypeId, Value,
};

const IEC104: AsduParams = AsduParams::IEC104;
/// The usual IEC 60870-5-101 sizes: COT 1, CA 1, IOA 2.
const IEC101: AsduParams = AsduParams {
    cot_size: 1,
    ca_size: 1,
    ioa_size: 2,
};

/// 2024-02-29 13:45:12.345, Thursday.
const T1_OCTETS: [u8; 7] = [0x39, 0x30, 0x2D, 0x0D, 0x9D, 0x02, 0x18];
const T1: Cp56Time2a = Cp56Time2a {
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
};
/// 2023-07-15 08:05:00.000, Saturday, with IV and SU set.
const T2_OCTETS: [u8; 7] = [0x00, 0x00, 0x85, 0x88, 0xCF, 0x07, 0x17];
const T2: Cp56Time2a = Cp56Time2a {
    millis: 0,
    minute: 5,
    hour: 8,
    day: 15,
    weekday: 6,
    month: 7,
    year: 23,
    invalid: true,
    summer: true,
    substituted: false,
};

const GOOD: Quality = Quality::GOOD;
const BL: Quality = Quality {
    blocked: true,
    ..GOOD
};
const SB: Quality = Quality {
    substituted: true,
    ..GOOD
};
const NT: Quality = Quality {
    not_topical: true,
    ..GOOD
};
const IV: Quality = Quality {
    invalid: true,
    ..GOOD
};
const OV: Quality = Quality {
    overflow: true,
    ..GOOD
};

fn cot(cause: Cause) -> Cot {
    Cot::new(cause)
}

fn obj(address: u32, value: Value) -> InformationObject {
    InformationObject {
        address,
        value,
        time: None,
    }
}

fn timed(address: u32, value: Value, time: Cp56Time2a) -> InformationObject {
    InformationObject {
        address,
        value,
        time: Some(time),
    }
}

fn asdu(type_id: TypeId, cot: Cot, ca: u16, objects: Vec<InformationObject>) -> Asdu {
    Asdu {
        type_id,
        sequence: false,
        cot,
        common_address: ca,
        objects,
    }
}

fn seq(mut a: Asdu) -> Asdu {
    a.sequence = true;
    a
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Decoding `bytes` gives `expected`, and encoding `expected` gives `bytes`.
#[track_caller]
fn check(bytes: &[u8], params: AsduParams, expected: &Asdu) {
    assert_eq!(Asdu::decode(bytes, params).as_ref(), Ok(expected), "decode");
    let mut out = Vec::new();
    expected.encode(params, &mut out).expect("encode");
    assert_eq!(out, bytes, "encode");
    assert_eq!(expected.encoded_len(params), bytes.len(), "encoded_len");
}

fn sp(on: bool, quality: Quality) -> Value {
    Value::SinglePoint { on, quality }
}

fn dp(value: DoublePointValue, quality: Quality) -> Value {
    Value::DoublePoint { value, quality }
}

#[test]
fn time_constants_name_the_dates_they_claim() {
    let t1 = Utc.with_ymd_and_hms(2024, 2, 29, 13, 45, 12).unwrap()
        + chrono::Duration::milliseconds(345);
    assert_eq!(Cp56Time2a::from_datetime(t1), T1);
    assert_eq!(T1.to_datetime(), Some(t1));
    let t2 = Utc.with_ymd_and_hms(2023, 7, 15, 8, 5, 0).unwrap();
    assert_eq!(
        Cp56Time2a {
            invalid: true,
            summer: true,
            substituted: false,
            ..Cp56Time2a::from_datetime(t2)
        },
        T2
    );
    assert_eq!(Cp56Time2a::decode(&T1_OCTETS), Ok(T1));
    assert_eq!(Cp56Time2a::decode(&T2_OCTETS), Ok(T2));
}

#[test]
fn m_sp_na_1_single_points_with_each_quality_bit() {
    let bytes = [
        0x01, 0x02, 0x03, 0x00, 0x01, 0x00, 0xE9, 0x03, 0x00, 0x01, 0xEA, 0x03, 0x00, 0x80,
    ];
    let expected = asdu(
        TypeId::M_SP_NA_1,
        cot(Cause::SPONTANEOUS),
        1,
        vec![obj(1001, sp(true, GOOD)), obj(1002, sp(false, IV))],
    );
    check(&bytes, IEC104, &expected);

    // SQ = 1, answering a station interrogation: BL, SB, NT, IV in turn.
    let bytes = [
        0x01, 0x84, 0x14, 0x00, 0x01, 0x00, 0x0A, 0x00, 0x00, 0x11, 0x21, 0x40, 0x80,
    ];
    let expected = seq(asdu(
        TypeId::M_SP_NA_1,
        cot(Cause::INTERROGATED_BY_STATION),
        1,
        vec![
            obj(10, sp(true, BL)),
            obj(11, sp(true, SB)),
            obj(12, sp(false, NT)),
            obj(13, sp(false, IV)),
        ],
    ));
    check(&bytes, IEC104, &expected);
}

#[test]
fn m_dp_na_1_every_double_point_state_on_101() {
    let bytes = [
        0x03, 0x04, 0x03, 0x05, // type, VSQ, COT, CA
        0x10, 0x00, 0x00, // IOA 16, indeterminate
        0x11, 0x00, 0x01, // off
        0x12, 0x00, 0x02, // on
        0x13, 0x00, 0xF3, // faulty, IV NT SB BL
    ];
    let all = Quality {
        invalid: true,
        not_topical: true,
        substituted: true,
        blocked: true,
        overflow: false,
    };
    let expected = asdu(
        TypeId::M_DP_NA_1,
        cot(Cause::SPONTANEOUS),
        5,
        vec![
            obj(16, dp(DoublePointValue::Indeterminate, GOOD)),
            obj(17, dp(DoublePointValue::Off, GOOD)),
            obj(18, dp(DoublePointValue::On, GOOD)),
            obj(19, dp(DoublePointValue::Faulty, all)),
        ],
    );
    check(&bytes, IEC101, &expected);
}

#[test]
fn m_st_na_1_negative_transient_step_position_with_overflow() {
    let bytes = [
        0x05, 0x01, 0x03, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00, 0xC1, 0x01,
    ];
    let value = Value::StepPosition {
        value: -63,
        transient: true,
        quality: OV,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_ST_NA_1,
            cot(Cause::SPONTANEOUS),
            1,
            vec![obj(32, value)],
        ),
    );
}

#[test]
fn m_bo_na_1_bitstring_to_the_broadcast_address() {
    let bytes = [
        0x07, 0x01, 0x05, 0x00, 0xFF, 0xFF, 0x21, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00,
    ];
    let value = Value::Bitstring {
        bits: 0x1234_5678,
        quality: GOOD,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_BO_NA_1,
            cot(Cause::REQUEST),
            0xFFFF,
            vec![obj(33, value)],
        ),
    );
}

#[test]
fn m_me_na_1_periodic_normalized_value_blocked() {
    let bytes = [
        0x09, 0x01, 0x01, 0x00, 0x01, 0x00, 0x30, 0x00, 0x00, 0x00, 0xC0, 0x10,
    ];
    let value = Value::Normalized {
        value: -16384,
        quality: BL,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_ME_NA_1,
            cot(Cause::PERIODIC),
            1,
            vec![obj(48, value)],
        ),
    );
}

#[test]
fn m_me_nb_1_background_scaled_value_substituted() {
    let bytes = [
        0x0B, 0x01, 0x02, 0x00, 0x01, 0x00, 0x31, 0x00, 0x00, 0x39, 0x30, 0x20,
    ];
    let value = Value::Scaled {
        value: 12345,
        quality: SB,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_ME_NB_1,
            cot(Cause::BACKGROUND),
            1,
            vec![obj(49, value)],
        ),
    );
}

#[test]
fn m_me_nc_1_three_floats_in_sequence() {
    let bytes = cat(&[
        &[0x0D, 0x83, 0x14, 0x00, 0x01, 0x00, 0x64, 0x00, 0x00],
        &[0x00, 0x00, 0x80, 0x3F, 0x00],
        &[0x00, 0x00, 0x20, 0x41, 0x40],
        &[0x00, 0x00, 0xC8, 0xC2, 0x80],
    ]);
    let f = |value, quality| Value::ShortFloat { value, quality };
    let expected = seq(asdu(
        TypeId::M_ME_NC_1,
        cot(Cause::INTERROGATED_BY_STATION),
        1,
        vec![
            obj(100, f(1.0, GOOD)),
            obj(101, f(10.0, NT)),
            obj(102, f(-100.0, IV)),
        ],
    ));
    check(&bytes, IEC104, &expected);
}

#[test]
fn m_it_na_1_counter_with_carry_adjusted_invalid_and_sequence() {
    let bytes = [
        0x0F, 0x01, 0x25, 0x00, 0x01, 0x00, 0x40, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x00, 0xE3,
    ];
    let bcr = BinaryCounterReading {
        value: 10,
        sequence: 3,
        carry: true,
        adjusted: true,
        invalid: true,
    };
    let expected = asdu(
        TypeId::M_IT_NA_1,
        cot(Cause::COUNTER_INTERROGATION),
        1,
        vec![obj(64, Value::IntegratedTotal(bcr))],
    );
    check(&bytes, IEC104, &expected);

    // Counter group 2 on 101, negative reading, sequence number 31.
    let bytes = [
        0x0F, 0x01, 0x27, 0x01, 0x41, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F,
    ];
    let bcr = BinaryCounterReading {
        value: -1,
        sequence: 31,
        carry: false,
        adjusted: false,
        invalid: false,
    };
    let expected = asdu(
        TypeId::M_IT_NA_1,
        cot(Cause::counter_group(2)),
        1,
        vec![obj(65, Value::IntegratedTotal(bcr))],
    );
    check(&bytes, IEC101, &expected);
}

#[test]
fn m_sp_tb_1_single_point_with_time() {
    let bytes = cat(&[
        &[0x1E, 0x01, 0x03, 0x00, 0x01, 0x00, 0xE9, 0x03, 0x00, 0x01],
        &T1_OCTETS,
    ]);
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_SP_TB_1,
            cot(Cause::SPONTANEOUS),
            1,
            vec![timed(1001, sp(true, GOOD), T1)],
        ),
    );
}

#[test]
fn m_dp_tb_1_double_point_with_invalid_summer_time() {
    let bytes = cat(&[
        &[0x1F, 0x01, 0x03, 0x00, 0x01, 0x00, 0xEA, 0x03, 0x00, 0x02],
        &T2_OCTETS,
    ]);
    let expected = asdu(
        TypeId::M_DP_TB_1,
        cot(Cause::SPONTANEOUS),
        1,
        vec![timed(1002, dp(DoublePointValue::On, GOOD), T2)],
    );
    check(&bytes, IEC104, &expected);
}

#[test]
fn m_st_tb_1_step_position_with_time() {
    let bytes = cat(&[
        &[
            0x20, 0x01, 0x03, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00, 0x3F, 0x00,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::StepPosition {
        value: 63,
        transient: false,
        quality: GOOD,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_ST_TB_1,
            cot(Cause::SPONTANEOUS),
            1,
            vec![timed(32, value, T1)],
        ),
    );
}

#[test]
fn m_bo_tb_1_bitstring_with_time() {
    let bytes = cat(&[
        &[
            0x21, 0x01, 0x03, 0x00, 0x01, 0x00, 0x21, 0x00, 0x00, 0x01, 0x00, 0x00, 0x80, 0x00,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::Bitstring {
        bits: 0x8000_0001,
        quality: GOOD,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_BO_TB_1,
            cot(Cause::SPONTANEOUS),
            1,
            vec![timed(33, value, T1)],
        ),
    );
}

#[test]
fn m_me_td_1_normalized_with_time() {
    let bytes = cat(&[
        &[
            0x22, 0x01, 0x03, 0x00, 0x01, 0x00, 0x30, 0x00, 0x00, 0xFF, 0x7F, 0x00,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::Normalized {
        value: 32767,
        quality: GOOD,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_ME_TD_1,
            cot(Cause::SPONTANEOUS),
            1,
            vec![timed(48, value, T1)],
        ),
    );
}

#[test]
fn m_me_te_1_scaled_with_time_and_overflow() {
    let bytes = cat(&[
        &[
            0x23, 0x01, 0x03, 0x00, 0x01, 0x00, 0x31, 0x00, 0x00, 0x00, 0x80, 0x01,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::Scaled {
        value: -32768,
        quality: OV,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_ME_TE_1,
            cot(Cause::SPONTANEOUS),
            1,
            vec![timed(49, value, T1)],
        ),
    );
}

#[test]
fn m_me_tf_1_float_with_time_on_101() {
    let bytes = cat(&[
        &[
            0x24, 0x01, 0x03, 0x07, 0x32, 0x00, 0x00, 0x80, 0x66, 0x43, 0x00,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::ShortFloat {
        value: 230.5,
        quality: GOOD,
    };
    check(
        &bytes,
        IEC101,
        &asdu(
            TypeId::M_ME_TF_1,
            cot(Cause::SPONTANEOUS),
            7,
            vec![timed(50, value, T1)],
        ),
    );
}

#[test]
fn m_it_tb_1_counter_with_time() {
    let bytes = cat(&[
        &[
            0x25, 0x01, 0x03, 0x00, 0x01, 0x00, 0x40, 0x00, 0x00, 0x10, 0x27, 0x00, 0x00, 0x05,
        ],
        &T1_OCTETS,
    ]);
    let bcr = BinaryCounterReading {
        value: 10_000,
        sequence: 5,
        carry: false,
        adjusted: false,
        invalid: false,
    };
    let expected = asdu(
        TypeId::M_IT_TB_1,
        cot(Cause::SPONTANEOUS),
        1,
        vec![timed(64, Value::IntegratedTotal(bcr), T1)],
    );
    check(&bytes, IEC104, &expected);
}

#[test]
fn c_sc_na_1_select_then_execute() {
    let bytes = [0x2D, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x60, 0x00, 0x81];
    let sco = Sco {
        on: true,
        qu: 0,
        select: true,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SC_NA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0x6000, Value::SingleCommand(sco))],
        ),
    );

    // 101: execute ON with persistent output (QU 3).
    let bytes = [0x2D, 0x01, 0x06, 0x01, 0x01, 0x60, 0x0D];
    let sco = Sco {
        on: true,
        qu: 3,
        select: false,
    };
    check(
        &bytes,
        IEC101,
        &asdu(
            TypeId::C_SC_NA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0x6001, Value::SingleCommand(sco))],
        ),
    );
}

#[test]
fn c_dc_na_1_confirmation_of_a_select() {
    let bytes = [0x2E, 0x01, 0x07, 0x00, 0x01, 0x00, 0x01, 0x60, 0x00, 0x86];
    let dco = Dco {
        state: 2,
        qu: 1,
        select: true,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_DC_NA_1,
            cot(Cause::ACTIVATION_CON),
            1,
            vec![obj(0x6001, Value::DoubleCommand(dco))],
        ),
    );
}

#[test]
fn c_rc_na_1_termination_of_a_lower_step() {
    let bytes = [0x2F, 0x01, 0x0A, 0x00, 0x01, 0x00, 0x02, 0x60, 0x00, 0x09];
    let rco = Rco {
        state: StepCommandState::Lower,
        qu: 2,
        select: false,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_RC_NA_1,
            cot(Cause::ACTIVATION_TERMINATION),
            1,
            vec![obj(0x6002, Value::RegulatingStep(rco))],
        ),
    );
}

#[test]
fn c_se_na_1_normalized_setpoint_select() {
    let bytes = [
        0x30, 0x01, 0x06, 0x00, 0x01, 0x00, 0x03, 0x60, 0x00, 0x00, 0x40, 0x80,
    ];
    let value = Value::SetpointNormalized {
        value: 16384,
        qos: Qos {
            ql: 0,
            select: true,
        },
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SE_NA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0x6003, value)],
        ),
    );
}

#[test]
fn c_se_nb_1_scaled_setpoint_execute() {
    let bytes = [
        0x31, 0x01, 0x06, 0x00, 0x01, 0x00, 0x04, 0x60, 0x00, 0x9C, 0xFF, 0x01,
    ];
    let value = Value::SetpointScaled {
        value: -100,
        qos: Qos {
            ql: 1,
            select: false,
        },
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SE_NB_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0x6004, value)],
        ),
    );
}

#[test]
fn c_se_nc_1_float_setpoint() {
    let bytes = [
        0x32, 0x01, 0x06, 0x00, 0x01, 0x00, 0x05, 0x60, 0x00, 0x00, 0x00, 0x5C, 0x42, 0x00,
    ];
    let value = Value::SetpointFloat {
        value: 55.0,
        qos: Qos {
            ql: 0,
            select: false,
        },
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SE_NC_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0x6005, value)],
        ),
    );
}

#[test]
fn c_bo_na_1_bitstring_command() {
    let bytes = [
        0x33, 0x01, 0x06, 0x00, 0x01, 0x00, 0x06, 0x60, 0x00, 0xEF, 0xBE, 0xAD, 0xDE,
    ];
    let value = Value::BitstringCommand { bits: 0xDEAD_BEEF };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_BO_NA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0x6006, value)],
        ),
    );
}

#[test]
fn c_sc_ta_1_single_command_with_time() {
    let bytes = cat(&[
        &[0x3A, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x60, 0x00, 0x01],
        &T1_OCTETS,
    ]);
    let sco = Sco {
        on: true,
        qu: 0,
        select: false,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SC_TA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![timed(0x6000, Value::SingleCommand(sco), T1)],
        ),
    );
}

#[test]
fn c_dc_ta_1_deactivation_with_time() {
    let bytes = cat(&[
        &[0x3B, 0x01, 0x08, 0x00, 0x01, 0x00, 0x01, 0x60, 0x00, 0x01],
        &T1_OCTETS,
    ]);
    let dco = Dco {
        state: 1,
        qu: 0,
        select: false,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_DC_TA_1,
            cot(Cause::DEACTIVATION),
            1,
            vec![timed(0x6001, Value::DoubleCommand(dco), T1)],
        ),
    );
}

#[test]
fn c_rc_ta_1_higher_step_select_with_invalid_time() {
    let bytes = cat(&[
        &[0x3C, 0x01, 0x06, 0x00, 0x01, 0x00, 0x02, 0x60, 0x00, 0x82],
        &T2_OCTETS,
    ]);
    let rco = Rco {
        state: StepCommandState::Higher,
        qu: 0,
        select: true,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_RC_TA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![timed(0x6002, Value::RegulatingStep(rco), T2)],
        ),
    );
}

#[test]
fn c_se_ta_1_normalized_setpoint_with_time() {
    let bytes = cat(&[
        &[
            0x3D, 0x01, 0x06, 0x00, 0x01, 0x00, 0x03, 0x60, 0x00, 0x00, 0xE0, 0x7F,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::SetpointNormalized {
        value: -8192,
        qos: Qos {
            ql: 127,
            select: false,
        },
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SE_TA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![timed(0x6003, value, T1)],
        ),
    );
}

#[test]
fn c_se_tb_1_scaled_setpoint_with_time() {
    let bytes = cat(&[
        &[
            0x3E, 0x01, 0x06, 0x00, 0x01, 0x00, 0x04, 0x60, 0x00, 0xE8, 0x03, 0x80,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::SetpointScaled {
        value: 1000,
        qos: Qos {
            ql: 0,
            select: true,
        },
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SE_TB_1,
            cot(Cause::ACTIVATION),
            1,
            vec![timed(0x6004, value, T1)],
        ),
    );
}

#[test]
fn c_se_tc_1_float_setpoint_with_time() {
    let bytes = cat(&[
        &[
            0x3F, 0x01, 0x06, 0x00, 0x01, 0x00, 0x05, 0x60, 0x00, 0x00, 0x00, 0x80, 0xBF, 0x00,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::SetpointFloat {
        value: -1.0,
        qos: Qos {
            ql: 0,
            select: false,
        },
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_SE_TC_1,
            cot(Cause::ACTIVATION),
            1,
            vec![timed(0x6005, value, T1)],
        ),
    );
}

#[test]
fn c_bo_ta_1_bitstring_command_with_time() {
    let bytes = cat(&[
        &[
            0x40, 0x01, 0x06, 0x00, 0x01, 0x00, 0x06, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::BitstringCommand { bits: 0 };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_BO_TA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![timed(0x6006, value, T1)],
        ),
    );
}

#[test]
fn m_ei_na_1_end_of_initialization() {
    let bytes = [0x46, 0x01, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x81];
    let value = Value::EndOfInitialization {
        cause: 1,
        after_parameter_change: true,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_EI_NA_1,
            cot(Cause::INITIALIZED),
            1,
            vec![obj(0, value)],
        ),
    );

    let bytes = [0x46, 0x01, 0x04, 0x01, 0x00, 0x00, 0x00];
    let value = Value::EndOfInitialization {
        cause: 0,
        after_parameter_change: false,
    };
    check(
        &bytes,
        IEC101,
        &asdu(
            TypeId::M_EI_NA_1,
            cot(Cause::INITIALIZED),
            1,
            vec![obj(0, value)],
        ),
    );
}

#[test]
fn c_ic_na_1_general_interrogation_classic_vector() {
    let bytes = [0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14];
    let expected = asdu(
        TypeId::C_IC_NA_1,
        cot(Cause::ACTIVATION),
        1,
        vec![obj(0, Value::Interrogation(Qoi::STATION))],
    );
    check(&bytes, IEC104, &expected);
}

#[test]
fn c_ic_na_1_group_interrogation_on_101() {
    let bytes = [0x64, 0x01, 0x06, 0x01, 0x00, 0x00, 0x17];
    let expected = asdu(
        TypeId::C_IC_NA_1,
        cot(Cause::ACTIVATION),
        1,
        vec![obj(0, Value::Interrogation(Qoi(23)))],
    );
    check(&bytes, IEC101, &expected);
    assert_eq!(Qoi(23).group(), Some(3));
}

#[test]
fn c_ic_na_1_negative_test_confirmation_with_originator() {
    let bytes = [0x64, 0x01, 0xC7, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14];
    let cot = Cot {
        cause: Cause::ACTIVATION_CON,
        negative: true,
        test: true,
        originator: 3,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_IC_NA_1,
            cot,
            1,
            vec![obj(0, Value::Interrogation(Qoi::STATION))],
        ),
    );
}

#[test]
fn c_ci_na_1_counter_interrogation_with_each_freeze() {
    for (octet, request, freeze) in [
        (0x05, 5, Freeze::Read),
        (0x45, 5, Freeze::Freeze),
        (0x81, 1, Freeze::FreezeAndReset),
        (0xC2, 2, Freeze::Reset),
    ] {
        let bytes = [0x65, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, octet];
        let value = Value::CounterInterrogation(Qcc { request, freeze });
        check(
            &bytes,
            IEC104,
            &asdu(
                TypeId::C_CI_NA_1,
                cot(Cause::ACTIVATION),
                1,
                vec![obj(0, value)],
            ),
        );
    }
}

#[test]
fn c_rd_na_1_read_has_only_the_address() {
    let bytes = [0x66, 0x01, 0x05, 0x00, 0x01, 0x00, 0xE9, 0x03, 0x00];
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_RD_NA_1,
            cot(Cause::REQUEST),
            1,
            vec![obj(1001, Value::Read)],
        ),
    );
    let bytes = [0x66, 0x01, 0x05, 0x01, 0xE9, 0x03];
    check(
        &bytes,
        IEC101,
        &asdu(
            TypeId::C_RD_NA_1,
            cot(Cause::REQUEST),
            1,
            vec![obj(1001, Value::Read)],
        ),
    );
}

#[test]
fn c_cs_na_1_clock_sync_carries_the_time_as_its_element() {
    let bytes = cat(&[
        &[0x67, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
        &T1_OCTETS,
    ]);
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_CS_NA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0, Value::ClockSync(T1))],
        ),
    );
    let bytes = cat(&[&[0x67, 0x01, 0x07, 0x01, 0x00, 0x00], &T2_OCTETS]);
    check(
        &bytes,
        IEC101,
        &asdu(
            TypeId::C_CS_NA_1,
            cot(Cause::ACTIVATION_CON),
            1,
            vec![obj(0, Value::ClockSync(T2))],
        ),
    );
}

#[test]
fn c_rp_na_1_general_reset_of_process() {
    let bytes = [0x69, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01];
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_RP_NA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0, Value::ResetProcess { qrp: 1 })],
        ),
    );
}

#[test]
fn c_ts_ta_1_test_command_with_counter_and_time() {
    let bytes = cat(&[
        &[
            0x6B, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x34, 0x12,
        ],
        &T1_OCTETS,
    ]);
    let value = Value::TestCommand {
        counter: 0x1234,
        time: T1,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::C_TS_TA_1,
            cot(Cause::ACTIVATION),
            1,
            vec![obj(0, value)],
        ),
    );
}

#[test]
fn every_type_has_a_vector_in_this_file() {
    // Keeps the list above honest when a type is added to TypeId.
    let source = include_str!("asdu_vectors.rs");
    for t in TypeId::ALL {
        let name = format!("fn {}_", t.name().to_lowercase());
        assert!(source.contains(&name), "no vector test for {}", t.name());
    }
}

#[test]
fn monitor_sequence_in_101_with_originator_free_cot() {
    // 101 SQ = 1: one 2-octet IOA, then the elements back to back.
    let bytes = [
        0x0B, 0x82, 0x14, 0x02, 0xFE, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x80, 0x80,
    ];
    let sc = |value, quality| Value::Scaled { value, quality };
    let expected = seq(asdu(
        TypeId::M_ME_NB_1,
        cot(Cause::INTERROGATED_BY_STATION),
        2,
        vec![obj(0xFFFE, sc(-1, OV)), obj(0xFFFF, sc(-32768, IV))],
    ));
    check(&bytes, IEC101, &expected);
}

#[test]
fn originator_address_survives_on_a_monitor_asdu() {
    let bytes = [0x01, 0x01, 0x83, 0x2A, 0x34, 0x12, 0x01, 0x00, 0x00, 0x00];
    let cot = Cot {
        cause: Cause::SPONTANEOUS,
        negative: false,
        test: true,
        originator: 42,
    };
    check(
        &bytes,
        IEC104,
        &asdu(
            TypeId::M_SP_NA_1,
            cot,
            0x1234,
            vec![obj(1, sp(false, GOOD))],
        ),
    );
}

#[test]
fn float_nan_round_trips_bit_exactly() {
    for nan in [
        [0x01, 0x00, 0xC0, 0x7F],
        [0xFF, 0xFF, 0xFF, 0xFF],
        [0x01, 0x00, 0x80, 0x7F],
    ] {
        let bytes = cat(&[
            &[0x0D, 0x01, 0x03, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00],
            &nan,
            &[0x00],
        ]);
        let a = Asdu::decode(&bytes, IEC104).unwrap();
        let mut out = Vec::new();
        a.encode(IEC104, &mut out).unwrap();
        assert_eq!(out, bytes);
    }
}

#[test]
fn round_trip_of_a_built_spontaneous_report() {
    let mut a = Asdu::new(TypeId::M_ME_TF_1, cot(Cause::SPONTANEOUS), 7);
    for i in 0..5u16 {
        a.objects.push(timed(
            2000 + u32::from(i),
            Value::ShortFloat {
                value: f32::from(i) * 1.5,
                quality: GOOD,
            },
            Cp56Time2a::from_unix_millis(1_700_000_000_000 + i64::from(i)),
        ));
    }
    for params in [IEC104, IEC101] {
        let mut out = Vec::new();
        a.encode(params, &mut out).unwrap();
        assert_eq!(out.len(), a.encoded_len(params));
        assert_eq!(Asdu::decode(&out, params), Ok(a.clone()));
    }
}

#[test]
fn unknown_type_is_answered_by_mirroring_the_header() {
    let raw = [0x88, 0x01, 0x06, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0xAB];
    assert_eq!(
        Asdu::decode(&raw, IEC104),
        Err(DecodeError::UnknownType(0x88))
    );
    let h = Header::decode(&raw, IEC104).unwrap();
    assert_eq!(h.type_id, 0x88);
    assert_eq!(h.cot.originator, 5);
    let answer = mirror(&raw, IEC104, Cause::UNKNOWN_TYPE, true).unwrap();
    assert_eq!(
        answer,
        [0x88, 0x01, 0x6C, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0xAB]
    );
}

#[test]
fn negative_confirmation_of_a_command_is_a_mirror() {
    let raw = [0x2D, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x60, 0x00, 0x81];
    let answer = mirror(&raw, IEC104, Cause::ACTIVATION_CON, true).unwrap();
    let a = Asdu::decode(&answer, IEC104).unwrap();
    assert_eq!(a.cot.cause, Cause::ACTIVATION_CON);
    assert!(a.cot.negative);
    assert_eq!(&answer[3..], &raw[3..]);
}
