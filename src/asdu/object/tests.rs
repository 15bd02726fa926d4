//! Unit tests of whole-ASDU decoding and encoding (IEC 60870-5-101 §7.1, §7.2.2 SQ rules).

use super::*;
use crate::asdu::{Cause, Qoi, Quality, Sco};

const P101: AsduParams = AsduParams {
    cot_size: 1,
    ca_size: 1,
    ioa_size: 2,
};

fn obj(address: u32, value: Value) -> InformationObject {
    InformationObject {
        address,
        value,
        time: None,
    }
}

fn float(value: f32) -> Value {
    Value::ShortFloat {
        value,
        quality: Quality::GOOD,
    }
}

fn encode(asdu: &Asdu, params: AsduParams) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    asdu.encode(params, &mut out).map(|()| out)
}

#[test]
fn general_interrogation_activation_decodes_from_the_classic_vector() {
    let bytes = [0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14];
    let asdu = Asdu::decode(&bytes, AsduParams::IEC104).unwrap();
    let mut expected = Asdu::new(TypeId::C_IC_NA_1, Cot::new(Cause::ACTIVATION), 1);
    expected
        .objects
        .push(obj(0, Value::Interrogation(Qoi::STATION)));
    assert_eq!(asdu, expected);
    assert_eq!(encode(&asdu, AsduParams::IEC104), Ok(bytes.to_vec()));
    assert_eq!(asdu.encoded_len(AsduParams::IEC104), bytes.len());
}

#[test]
fn single_point_with_time_encodes_as_in_the_standard() {
    let time = Cp56Time2a::from_unix_millis(0); // 1970-01-01 00:00:00.000, a Thursday
    let mut asdu = Asdu::new(TypeId::M_SP_TB_1, Cot::new(Cause::SPONTANEOUS), 0x0102);
    asdu.objects.push(InformationObject {
        address: 0x030201,
        value: Value::SinglePoint {
            on: true,
            quality: Quality::GOOD,
        },
        time: Some(time),
    });
    let expected = [
        30, 0x01, 0x03, 0x00, 0x02, 0x01, // header
        0x01, 0x02, 0x03, 0x01, // IOA, SIQ
        0x00, 0x00, 0x00, 0x00, 0x81, 0x01, 70, // CP56
    ];
    assert_eq!(encode(&asdu, AsduParams::IEC104), Ok(expected.to_vec()));
    assert_eq!(Asdu::decode(&expected, AsduParams::IEC104), Ok(asdu));
}

#[test]
fn sequence_of_measurements_sends_only_the_first_address() {
    let mut asdu = Asdu::new(TypeId::M_ME_NC_1, Cot::new(Cause::PERIODIC), 1);
    asdu.sequence = true;
    asdu.objects = vec![
        obj(100, float(1.0)),
        obj(101, float(2.0)),
        obj(102, float(-2.0)),
    ];
    let bytes = encode(&asdu, AsduParams::IEC104).unwrap();
    assert_eq!(bytes.len(), 6 + 3 + 3 * 5);
    assert_eq!(&bytes[..9], &[13, 0x83, 1, 0, 1, 0, 100, 0, 0]);
    assert_eq!(Asdu::decode(&bytes, AsduParams::IEC104), Ok(asdu));
}

#[test]
fn sequence_encode_requires_consecutive_addresses() {
    let mut asdu = Asdu::new(TypeId::M_ME_NC_1, Cot::new(Cause::PERIODIC), 1);
    asdu.sequence = true;
    asdu.objects = vec![obj(100, float(1.0)), obj(102, float(2.0))];
    assert_eq!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::NotConsecutive {
            expected: 101,
            found: 102
        })
    );
}

#[test]
fn sequence_running_past_the_address_range_is_rejected_on_decode() {
    let bytes = [1, 0x82, 3, 1, 0xFF, 0xFF, 0x00, 0x00];
    assert!(matches!(
        Asdu::decode(&bytes, P101),
        Err(DecodeError::InvalidField(_))
    ));
}

#[test]
fn length_must_match_the_announced_objects_exactly() {
    let gi = [0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14];
    assert_eq!(
        Asdu::decode(&gi[..9], AsduParams::IEC104),
        Err(DecodeError::Truncated {
            needed: 10,
            available: 9
        })
    );
    let mut long = gi.to_vec();
    long.extend_from_slice(&[0, 0]);
    assert_eq!(
        Asdu::decode(&long, AsduParams::IEC104),
        Err(DecodeError::TrailingBytes(2))
    );
}

#[test]
fn unknown_type_and_empty_vsq_are_reported_as_such() {
    assert_eq!(
        Asdu::decode(&[2, 1, 3, 0, 1, 0, 1, 0, 0, 0], AsduParams::IEC104),
        Err(DecodeError::UnknownType(2))
    );
    assert_eq!(
        Asdu::decode(&[100, 0, 6, 0, 1, 0], AsduParams::IEC104),
        Err(DecodeError::NoObjects)
    );
    assert_eq!(
        Asdu::decode(&[100, 0x80, 6, 0, 1, 0], AsduParams::IEC104),
        Err(DecodeError::NoObjects)
    );
}

#[test]
fn object_count_must_be_between_1_and_127() {
    let mut asdu = Asdu::new(TypeId::C_RD_NA_1, Cot::new(Cause::REQUEST), 1);
    assert_eq!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::NoObjects)
    );
    asdu.objects = (0..127).map(|a| obj(a, Value::Read)).collect();
    assert!(encode(&asdu, AsduParams::IEC104).is_ok());
    asdu.objects.push(obj(127, Value::Read));
    assert_eq!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::TooManyObjects(128))
    );
}

#[test]
fn addresses_must_fit_their_configured_sizes() {
    let mut asdu = Asdu::new(TypeId::C_RD_NA_1, Cot::new(Cause::REQUEST), 256);
    asdu.objects.push(obj(1, Value::Read));
    assert_eq!(
        encode(&asdu, P101),
        Err(EncodeError::CommonAddressOutOfRange {
            address: 256,
            max: 255
        })
    );
    asdu.common_address = 255;
    asdu.objects[0].address = 0x1_0000;
    assert_eq!(
        encode(&asdu, P101),
        Err(EncodeError::AddressOutOfRange {
            address: 0x1_0000,
            max: 0xFFFF
        })
    );
    asdu.objects[0].address = 0xFFFF;
    assert_eq!(encode(&asdu, P101), Ok(vec![102, 1, 5, 255, 0xFF, 0xFF]));
}

#[test]
fn value_and_time_tag_must_match_the_type() {
    let mut asdu = Asdu::new(TypeId::M_ME_TF_1, Cot::new(Cause::SPONTANEOUS), 1);
    asdu.objects.push(obj(1, float(1.0)));
    assert_eq!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::TimeTag {
            type_id: TypeId::M_ME_TF_1,
            address: 1
        })
    );
    asdu.type_id = TypeId::M_ME_NC_1;
    asdu.objects[0].time = Some(Cp56Time2a::from_unix_millis(0));
    assert!(matches!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::TimeTag { .. })
    ));
    asdu.type_id = TypeId::M_ME_NB_1;
    assert_eq!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::TypeMismatch {
            type_id: TypeId::M_ME_NB_1,
            address: 1
        })
    );
}

#[test]
fn a_failed_encode_leaves_the_buffer_as_it_was() {
    let mut asdu = Asdu::new(TypeId::C_SC_NA_1, Cot::new(Cause::ACTIVATION), 1);
    asdu.objects.push(obj(
        1,
        Value::SingleCommand(Sco {
            on: true,
            qu: 40,
            select: false,
        }),
    ));
    let mut out = vec![0x68, 0x0E];
    assert_eq!(
        asdu.encode(AsduParams::IEC104, &mut out),
        Err(EncodeError::InvalidField("command qualifier QU above 31"))
    );
    assert_eq!(out, [0x68, 0x0E]);
    asdu.objects[0].value = Value::SingleCommand(Sco {
        on: true,
        qu: 0,
        select: false,
    });
    asdu.encode(AsduParams::IEC104, &mut out).unwrap();
    assert_eq!(out, [0x68, 0x0E, 45, 1, 6, 0, 1, 0, 1, 0, 0, 1]);
}

#[test]
fn one_octet_cot_drops_the_originator() {
    let mut asdu = Asdu::new(TypeId::C_RD_NA_1, Cot::new(Cause::REQUEST), 1);
    asdu.cot.originator = 9;
    asdu.objects.push(obj(7, Value::Read));
    let bytes = encode(&asdu, P101).unwrap();
    assert_eq!(bytes, [102, 1, 5, 1, 7, 0]);
    asdu.cot.originator = 0;
    assert_eq!(Asdu::decode(&bytes, P101), Ok(asdu));
}

#[test]
fn cause_wider_than_six_bits_and_bad_params_are_refused() {
    let mut asdu = Asdu::new(TypeId::C_RD_NA_1, Cot::new(Cause(64)), 1);
    asdu.objects.push(obj(7, Value::Read));
    assert!(matches!(
        encode(&asdu, AsduParams::IEC104),
        Err(EncodeError::InvalidField(_))
    ));
    asdu.cot.cause = Cause::REQUEST;
    let bad = AsduParams {
        ioa_size: 4,
        ..AsduParams::IEC104
    };
    assert!(matches!(
        encode(&asdu, bad),
        Err(EncodeError::InvalidParams { .. })
    ));
    assert_eq!(
        Asdu::decode(&[102, 1, 5, 0, 1, 0, 7, 0, 0, 0], bad),
        Err(DecodeError::InvalidParams)
    );
}

#[test]
fn single_point_overflow_is_not_representable_and_dropped() {
    let mut asdu = Asdu::new(TypeId::M_SP_NA_1, Cot::new(Cause::SPONTANEOUS), 1);
    let quality = Quality {
        overflow: true,
        ..Quality::GOOD
    };
    asdu.objects
        .push(obj(1, Value::SinglePoint { on: false, quality }));
    assert_eq!(encode(&asdu, P101), Ok(vec![1, 1, 3, 1, 1, 0, 0x00]));
}
