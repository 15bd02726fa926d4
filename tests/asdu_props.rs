//! Property tests of the ASDU codec (IEC 60870-5-101 §7): no input makes decoding panic, and
//! decoding is lossless, i.e. every octet string that decodes re-encodes to itself and every
//! encodable ASDU decodes back to itself.

use ocpp809::asdu::{
    mirror, Asdu, AsduParams, BinaryCounterReading, Cause, Cot, Cp56Time2a, Dco, DoublePointValue,
    Freeze, Header, InformationObject, Qcc, Qoi, Qos, Quality, Rco, Sco, StepCommandState, TypeId,
    Value,
};
use proptest::prelude::*;

/// Every size combination the codec accepts.
fn all_params() -> Vec<AsduParams> {
    let mut v = Vec::new();
    for cot in 1..=2 {
        for ca in 1..=2 {
            for ioa in 1..=3 {
                v.extend(AsduParams::new(cot, ca, ioa));
            }
        }
    }
    v
}

fn params() -> impl Strategy<Value = AsduParams> {
    prop::sample::select(all_params())
}

fn type_id() -> impl Strategy<Value = TypeId> {
    prop::sample::select(TypeId::ALL.to_vec())
}

/// Re-encodes `bytes` if it decodes, asserting the result is identical.
fn assert_lossless(bytes: &[u8], params: AsduParams) -> Result<(), TestCaseError> {
    if let Ok(asdu) = Asdu::decode(bytes, params) {
        let mut out = Vec::new();
        let encoded = asdu.encode(params, &mut out);
        prop_assert_eq!(encoded, Ok(()), "{:?}", asdu);
        prop_assert_eq!(&out[..], bytes);
        prop_assert_eq!(asdu.encoded_len(params), bytes.len());
    }
    Ok(())
}

/// A header for `t` followed by exactly as many random octets as the VSQ announces, so
/// decoding gets past the length checks and exercises the element codecs.
fn well_sized_asdu() -> impl Strategy<Value = (AsduParams, Vec<u8>)> {
    (params(), type_id(), any::<bool>(), 1usize..=12)
        .prop_flat_map(|(p, t, sq, n)| {
            let ioa = usize::from(p.ioa_size);
            let body = if sq {
                ioa + n * t.element_len()
            } else {
                n * (ioa + t.element_len())
            };
            let cot_ca = usize::from(p.cot_size + p.ca_size);
            (
                Just((p, t, sq, n)),
                prop::collection::vec(any::<u8>(), cot_ca),
                prop::collection::vec(any::<u8>(), body),
            )
        })
        .prop_map(|((p, t, sq, n), cot_ca, body)| {
            let mut bytes = vec![
                t as u8,
                u8::try_from(n).unwrap_or(1) | if sq { 0x80 } else { 0 },
            ];
            bytes.extend(cot_ca);
            bytes.extend(body);
            (p, bytes)
        })
}

fn quality(with_overflow: bool) -> impl Strategy<Value = Quality> {
    (any::<[bool; 5]>()).prop_map(move |[iv, nt, sb, bl, ov]| Quality {
        invalid: iv,
        not_topical: nt,
        substituted: sb,
        blocked: bl,
        overflow: ov && with_overflow,
    })
}

fn cp56() -> impl Strategy<Value = Cp56Time2a> {
    (
        any::<u16>(),
        0u8..64,
        0u8..32,
        0u8..32,
        0u8..8,
        0u8..16,
        0u8..128,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(millis, minute, hour, day, weekday, month, year, invalid, summer)| Cp56Time2a {
                millis,
                minute,
                hour,
                day,
                weekday,
                month,
                year,
                invalid,
                summer,
                substituted: false,
            },
        )
}

fn float() -> impl Strategy<Value = f32> {
    any::<u32>().prop_map(f32::from_bits)
}

fn qos() -> impl Strategy<Value = Qos> {
    (0u8..128, any::<bool>()).prop_map(|(ql, select)| Qos { ql, select })
}

/// Any value type `t` can carry, with every field within its bit width.
fn value_for(t: TypeId) -> BoxedStrategy<Value> {
    use TypeId::*;
    match t.without_time() {
        M_SP_NA_1 => (any::<bool>(), quality(false))
            .prop_map(|(on, quality)| Value::SinglePoint { on, quality })
            .boxed(),
        M_DP_NA_1 => (0u8..4, quality(false))
            .prop_map(|(d, quality)| Value::DoublePoint {
                value: [
                    DoublePointValue::Indeterminate,
                    DoublePointValue::Off,
                    DoublePointValue::On,
                    DoublePointValue::Faulty,
                ][usize::from(d)],
                quality,
            })
            .boxed(),
        M_ST_NA_1 => (-64i8..=63, any::<bool>(), quality(true))
            .prop_map(|(value, transient, quality)| Value::StepPosition {
                value,
                transient,
                quality,
            })
            .boxed(),
        M_BO_NA_1 => (any::<u32>(), quality(true))
            .prop_map(|(bits, quality)| Value::Bitstring { bits, quality })
            .boxed(),
        M_ME_NA_1 => (any::<i16>(), quality(true))
            .prop_map(|(value, quality)| Value::Normalized { value, quality })
            .boxed(),
        M_ME_NB_1 => (any::<i16>(), quality(true))
            .prop_map(|(value, quality)| Value::Scaled { value, quality })
            .boxed(),
        M_ME_NC_1 => (float(), quality(true))
            .prop_map(|(value, quality)| Value::ShortFloat { value, quality })
            .boxed(),
        M_IT_NA_1 => (any::<i32>(), 0u8..32, any::<[bool; 3]>())
            .prop_map(|(value, sequence, [carry, adjusted, invalid])| {
                Value::IntegratedTotal(BinaryCounterReading {
                    value,
                    sequence,
                    carry,
                    adjusted,
                    invalid,
                })
            })
            .boxed(),
        C_SC_NA_1 => (any::<bool>(), 0u8..32, any::<bool>())
            .prop_map(|(on, qu, select)| Value::SingleCommand(Sco { on, qu, select }))
            .boxed(),
        C_DC_NA_1 => (0u8..4, 0u8..32, any::<bool>())
            .prop_map(|(state, qu, select)| Value::DoubleCommand(Dco { state, qu, select }))
            .boxed(),
        C_RC_NA_1 => (0usize..4, 0u8..32, any::<bool>())
            .prop_map(|(s, qu, select)| {
                let state = [
                    StepCommandState::NotPermitted0,
                    StepCommandState::Lower,
                    StepCommandState::Higher,
                    StepCommandState::NotPermitted3,
                ][s];
                Value::RegulatingStep(Rco { state, qu, select })
            })
            .boxed(),
        C_SE_NA_1 => (any::<i16>(), qos())
            .prop_map(|(value, qos)| Value::SetpointNormalized { value, qos })
            .boxed(),
        C_SE_NB_1 => (any::<i16>(), qos())
            .prop_map(|(value, qos)| Value::SetpointScaled { value, qos })
            .boxed(),
        C_SE_NC_1 => (float(), qos())
            .prop_map(|(value, qos)| Value::SetpointFloat { value, qos })
            .boxed(),
        C_BO_NA_1 => any::<u32>()
            .prop_map(|bits| Value::BitstringCommand { bits })
            .boxed(),
        M_EI_NA_1 => (0u8..128, any::<bool>())
            .prop_map(
                |(cause, after_parameter_change)| Value::EndOfInitialization {
                    cause,
                    after_parameter_change,
                },
            )
            .boxed(),
        C_IC_NA_1 => any::<u8>()
            .prop_map(|q| Value::Interrogation(Qoi(q)))
            .boxed(),
        C_CI_NA_1 => (0u8..64, 0usize..4)
            .prop_map(|(request, f)| {
                let freeze = [
                    Freeze::Read,
                    Freeze::Freeze,
                    Freeze::FreezeAndReset,
                    Freeze::Reset,
                ][f];
                Value::CounterInterrogation(Qcc { request, freeze })
            })
            .boxed(),
        C_RD_NA_1 => Just(Value::Read).boxed(),
        C_CS_NA_1 => cp56().prop_map(Value::ClockSync).boxed(),
        C_RP_NA_1 => any::<u8>()
            .prop_map(|qrp| Value::ResetProcess { qrp })
            .boxed(),
        C_TS_TA_1 => (any::<u16>(), cp56())
            .prop_map(|(counter, time)| Value::TestCommand { counter, time })
            .boxed(),
        _ => unreachable!("without_time() yields only the types above"),
    }
}

/// An ASDU that `encode` must accept for `params`.
fn encodable_asdu() -> impl Strategy<Value = (AsduParams, Asdu)> {
    (params(), type_id(), any::<bool>(), 1usize..=20)
        .prop_flat_map(|(p, t, sq, n)| {
            let max_ioa = p.max_ioa();
            let max_ca: u16 = if p.ca_size == 1 { 0xFF } else { 0xFFFF };
            let base = 0..=max_ioa - (n as u32 - 1);
            let object = (value_for(t), cp56(), 0..=max_ioa);
            (
                Just((p, t, sq)),
                (0u8..64, any::<bool>(), any::<bool>(), any::<u8>()),
                0..=max_ca,
                base,
                prop::collection::vec(object, n),
            )
        })
        .prop_map(
            |((p, t, sq), (cause, negative, test, originator), ca, base, objs)| {
                let objects = objs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (value, time, address))| InformationObject {
                        address: if sq { base + i as u32 } else { address },
                        value,
                        time: t.has_time().then_some(time),
                    })
                    .collect();
                let originator = if p.cot_size == 2 { originator } else { 0 };
                let cot = Cot {
                    cause: Cause(cause),
                    negative,
                    test,
                    originator,
                };
                (
                    p,
                    Asdu {
                        type_id: t,
                        sequence: sq,
                        cot,
                        common_address: ca,
                        objects,
                    },
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_octets_never_panic_and_decode_losslessly(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        for p in all_params() {
            let _ = Header::decode(&bytes, p);
            let _ = mirror(&bytes, p, Cause::UNKNOWN_TYPE, true);
            assert_lossless(&bytes, p)?;
        }
    }

    #[test]
    fn well_sized_asdus_decode_losslessly((p, bytes) in well_sized_asdu()) {
        let _ = Header::decode(&bytes, p);
        assert_lossless(&bytes, p)?;
        // A truncated or padded copy never decodes.
        prop_assert!(Asdu::decode(&bytes[..bytes.len() - 1], p).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        prop_assert!(Asdu::decode(&padded, p).is_err());
    }

    #[test]
    fn every_encodable_asdu_decodes_back_to_itself((p, asdu) in encodable_asdu()) {
        let mut bytes = Vec::new();
        prop_assert_eq!(asdu.encode(p, &mut bytes), Ok(()));
        prop_assert_eq!(bytes.len(), asdu.encoded_len(p));
        let decoded = Asdu::decode(&bytes, p);
        prop_assert!(decoded.is_ok(), "{:?}", decoded);
        let decoded = decoded.unwrap_or_else(|_| asdu.clone());
        // Floats may be NaN, which is never equal to itself: compare the octets instead.
        let mut again = Vec::new();
        prop_assert_eq!(decoded.encode(p, &mut again), Ok(()));
        prop_assert_eq!(&again, &bytes);
        let has_nan = asdu.objects.iter().any(|o| matches!(
            o.value,
            Value::ShortFloat { value, .. } | Value::SetpointFloat { value, .. } if value.is_nan()
        ));
        if !has_nan {
            prop_assert_eq!(decoded, asdu);
        }
    }

    #[test]
    fn mirror_changes_only_the_first_cot_octet(
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        p in params(),
        cause in 0u8..64,
        negative in any::<bool>(),
    ) {
        match mirror(&bytes, p, Cause(cause), negative) {
            None => prop_assert!(bytes.len() < p.header_len()),
            Some(m) => {
                prop_assert_eq!(m.len(), bytes.len());
                prop_assert_eq!(&m[..2], &bytes[..2]);
                prop_assert_eq!(&m[3..], &bytes[3..]);
                let h = Header::decode(&m, p).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(h.cot.cause, Cause(cause));
                prop_assert_eq!(h.cot.negative, negative);
                prop_assert_eq!(h.cot.test, bytes[2] & 0x80 != 0);
            }
        }
    }

    #[test]
    fn cp56_from_unix_millis_agrees_with_chrono(ms in -8_000_000_000_000i64..8_000_000_000_000) {
        let dt = chrono::DateTime::from_timestamp_millis(ms).expect("in chrono's range");
        prop_assert_eq!(Cp56Time2a::from_unix_millis(ms), Cp56Time2a::from_datetime(dt));
    }

    #[test]
    fn cp56_converts_back_to_the_same_instant_this_century(
        ms in 946_684_800_000i64..4_102_444_800_000,
    ) {
        let t = Cp56Time2a::from_unix_millis(ms);
        prop_assert_eq!(t.to_datetime().map(|d| d.timestamp_millis()), Some(ms));
    }
}
