//! The relay's power authority (src/ocpp/relay/clip.rs): upstream SetChargingProfile,
//! ClearChargingProfile and remote starts against ocpp809's limit, for OCPP 1.6 and 2.0.1.
//! Every payload it produces — forwarded calls, local answers, notices — is validated against
//! the official OCPP JSON schemas (tests/ocpp_schemas).

mod ocpp_schemas;

use ocpp809::mapping::charger::LimitUnit::{self, Amperes, Watts};
use ocpp809::ocpp::relay::clip::{
    clipped_notice, inspect_downstream_call, limit_notice, Authority, Clipped, ClippedPeriod,
    Decision, Limit, LimitSource, Refusal, CLIPPED_MESSAGE_ID, LIMIT_MESSAGE_ID, VENDOR_ID,
};
use ocpp809::ocpp::Version::{self, V16, V201};
use ocpp_schemas::{assert_schema_valid, schema_errors};
use proptest::prelude::*;
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------ harness

const OUR_ID: i32 = 809;
const OUR_STACK: u32 = 5;

fn authority(limit: Option<(f64, LimitUnit)>, phases: u8) -> Authority {
    Authority {
        limit: limit.map(|(value, unit)| Limit { value, unit }),
        phases,
        profile_id: OUR_ID,
        stack_level: OUR_STACK,
    }
}

fn unit_name(unit: LimitUnit) -> &'static str {
    match unit {
        Watts => "W",
        Amperes => "A",
    }
}

/// A period: startPeriod, limit, numberPhases.
type Period = (i64, f64, Option<i64>);

fn periods_json(periods: &[Period]) -> Value {
    Value::Array(
        periods
            .iter()
            .map(|(start, limit, phases)| {
                let mut p = json!({ "startPeriod": start, "limit": limit });
                if let Some(n) = phases {
                    p["numberPhases"] = json!(n);
                }
                p
            })
            .collect(),
    )
}

/// A schedule: 2.0.1 id, unit, periods.
type Schedule<'a> = (i64, LimitUnit, &'a [Period]);

/// The profile object (1.6 csChargingProfiles / 2.0.1 chargingProfile).
fn profile(
    version: Version,
    id: i64,
    stack: i64,
    purpose: &str,
    schedules: &[Schedule<'_>],
) -> Value {
    let schedule = |(sid, unit, periods): &Schedule<'_>| {
        let mut s = json!({
            "chargingRateUnit": unit_name(*unit),
            "chargingSchedulePeriod": periods_json(periods),
        });
        if version == V201 {
            s["id"] = json!(sid);
        }
        s
    };
    let mut p = json!({
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
    });
    match version {
        V16 => {
            p["chargingProfileId"] = json!(id);
            p["chargingSchedule"] = schedule(&schedules[0]);
        }
        V201 => {
            p["id"] = json!(id);
            p["chargingSchedule"] = Value::Array(schedules.iter().map(schedule).collect());
        }
    }
    if purpose == "TxProfile" && version == V16 {
        p["transactionId"] = json!(7);
    }
    if purpose == "TxProfile" && version == V201 {
        p["transactionId"] = json!("tx-7");
    }
    p
}

fn set_profile(version: Version, connector: i64, profile: Value) -> Value {
    match version {
        V16 => json!({ "connectorId": connector, "csChargingProfiles": profile }),
        V201 => json!({ "evseId": connector, "chargingProfile": profile }),
    }
}

fn max_purpose(version: Version) -> &'static str {
    match version {
        V16 => "ChargePointMaxProfile",
        V201 => "ChargingStationMaxProfile",
    }
}

/// Inspects a call and checks every payload the decision carries against the schemas:
/// a forwarded request (when the input was schema-valid) and a local answer always.
fn inspect(version: Version, action: &str, payload: &Value, authority: &Authority) -> Decision {
    let decision = inspect_downstream_call(version, action, payload, authority);
    match &decision {
        Decision::Forward(forwarded, _) => {
            let input_valid = schema_errors(version, action, false, payload)
                .is_none_or(|errors| errors.is_empty());
            if input_valid {
                assert_schema_valid(version, action, false, forwarded);
            }
        }
        Decision::Refuse { result_payload, .. } => {
            assert_schema_valid(version, action, true, result_payload);
        }
    }
    decision
}

fn period_limits(version: Version, payload: &Value) -> Vec<f64> {
    let schedules = match version {
        V16 => vec![&payload["csChargingProfiles"]["chargingSchedule"]],
        V201 => payload["chargingProfile"]["chargingSchedule"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
    };
    schedules
        .iter()
        .flat_map(|s| {
            s["chargingSchedulePeriod"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["limit"].as_f64())
        .collect()
}

// ------------------------------------------------------------------------------------ clipping

struct ClipCase {
    name: &'static str,
    authority: Authority,
    purpose: &'static str,
    /// Schedules; 1.6 uses the first only.
    schedules: &'static [Schedule<'static>],
    /// The period limits forwarded, in order (1.6: the first schedule's).
    expected: &'static [f64],
    /// (scheduleId in 2.0.1, startPeriod, unit, requested, applied) of every clipped period.
    clipped: &'static [(i64, i64, LimitUnit, f64, f64)],
}

fn clip_cases(version: Version) -> Vec<ClipCase> {
    let tx_default = "TxDefaultProfile";
    let mut cases = vec![
        ClipCase {
            name: "a W profile above a W limit is lowered to it",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Watts, &[(0, 22000.0, None)])],
            expected: &[11000.0],
            clipped: &[(1, 0, Watts, 22000.0, 11000.0)],
        },
        ClipCase {
            name: "a W profile below a W limit passes unchanged",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Watts, &[(0, 7000.0, None)])],
            expected: &[7000.0],
            clipped: &[],
        },
        ClipCase {
            name: "a W limit caps an A profile per phase, 3 phases assumed (11000 / 690 = 15.94)",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Amperes, &[(0, 32.0, None)])],
            expected: &[15.9],
            clipped: &[(1, 0, Amperes, 32.0, 15.9)],
        },
        ClipCase {
            name: "on one phase the same W limit allows 47.8 A, so 32 A passes",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Amperes, &[(0, 32.0, Some(1))])],
            expected: &[32.0],
            clipped: &[],
        },
        ClipCase {
            name: "two phases: 11000 / 460 = 23.9 A",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Amperes, &[(0, 32.0, Some(2))])],
            expected: &[23.9],
            clipped: &[(1, 0, Amperes, 32.0, 23.9)],
        },
        ClipCase {
            name: "a single-phase charger cannot use the 3 phases a period allows",
            authority: authority(Some((11000.0, Watts)), 1),
            purpose: tx_default,
            schedules: &[(1, Amperes, &[(0, 32.0, Some(3))])],
            expected: &[32.0],
            clipped: &[],
        },
        ClipCase {
            name: "an A limit caps a W profile at 16 A × 230 V × 3",
            authority: authority(Some((16.0, Amperes)), 3),
            purpose: tx_default,
            schedules: &[(1, Watts, &[(0, 22000.0, None)])],
            expected: &[11040.0],
            clipped: &[(1, 0, Watts, 22000.0, 11040.0)],
        },
        ClipCase {
            name: "an A limit caps a single-phase W period at 16 A × 230 V",
            authority: authority(Some((16.0, Amperes)), 3),
            purpose: tx_default,
            schedules: &[(1, Watts, &[(0, 22000.0, Some(1))])],
            expected: &[3680.0],
            clipped: &[(1, 0, Watts, 22000.0, 3680.0)],
        },
        ClipCase {
            name: "an A limit caps an A profile directly (both per phase)",
            authority: authority(Some((16.0, Amperes)), 3),
            purpose: "TxProfile",
            schedules: &[(1, Amperes, &[(0, 32.0, Some(1))])],
            expected: &[16.0],
            clipped: &[(1, 0, Amperes, 32.0, 16.0)],
        },
        ClipCase {
            name: "only the periods above the limit of a multi-period schedule are lowered",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: "TxProfile",
            schedules: &[(
                1,
                Watts,
                &[
                    (0, 22000.0, None),
                    (3600, 5000.0, None),
                    (7200, 11000.1, None),
                ],
            )],
            expected: &[11000.0, 5000.0, 11000.0],
            clipped: &[
                (1, 0, Watts, 22000.0, 11000.0),
                (1, 7200, Watts, 11000.1, 11000.0),
            ],
        },
        ClipCase {
            name: "a station maximum below our stack level is clipped and forwarded",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: if version == V16 {
                "ChargePointMaxProfile"
            } else {
                "ChargingStationMaxProfile"
            },
            schedules: &[(1, Watts, &[(0, 50000.0, None)])],
            expected: &[11000.0],
            clipped: &[(1, 0, Watts, 50000.0, 11000.0)],
        },
        ClipCase {
            name: "a limit of 0 W clips everything to 0",
            authority: authority(Some((0.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Amperes, &[(0, 6.0, None)])],
            expected: &[0.0],
            clipped: &[(1, 0, Amperes, 6.0, 0.0)],
        },
        ClipCase {
            name: "a limit that is not a number is taken as 0",
            authority: authority(Some((f64::NAN, Watts)), 3),
            purpose: tx_default,
            schedules: &[(1, Watts, &[(0, 6000.0, None)])],
            expected: &[0.0],
            clipped: &[(1, 0, Watts, 6000.0, 0.0)],
        },
        ClipCase {
            name: "without an authority limit nothing is clipped",
            authority: authority(None, 3),
            purpose: tx_default,
            schedules: &[(1, Watts, &[(0, 50000.0, None)])],
            expected: &[50000.0],
            clipped: &[],
        },
    ];
    if version == V201 {
        cases.push(ClipCase {
            name: "every schedule of a 2.0.1 profile is clipped in its own unit",
            authority: authority(Some((11000.0, Watts)), 3),
            purpose: tx_default,
            schedules: &[
                (1, Watts, &[(0, 22000.0, None), (600, 4000.0, None)]),
                (2, Amperes, &[(0, 32.0, None)]),
                (3, Amperes, &[(0, 10.0, Some(1))]),
            ],
            expected: &[11000.0, 4000.0, 15.9, 10.0],
            clipped: &[(1, 0, Watts, 22000.0, 11000.0), (2, 0, Amperes, 32.0, 15.9)],
        });
    }
    cases
}

#[test]
fn upstream_profiles_are_forwarded_clipped_to_the_authority_limit() {
    for version in [V16, V201] {
        for case in clip_cases(version) {
            let what = format!("{version:?}: {}", case.name);
            let payload = set_profile(
                version,
                1,
                profile(version, 12, 1, case.purpose, case.schedules),
            );
            let decision = inspect(version, "SetChargingProfile", &payload, &case.authority);
            let Decision::Forward(forwarded, clipped) = decision else {
                panic!("{what}: refused: {decision:?}");
            };
            assert_eq!(period_limits(version, &forwarded), case.expected, "{what}");
            let expected: Vec<ClippedPeriod> = case
                .clipped
                .iter()
                .filter(|(sid, ..)| version == V201 || *sid == 1)
                .map(|&(sid, start, unit, requested, applied)| ClippedPeriod {
                    schedule_id: (version == V201).then_some(sid),
                    start_period: start,
                    unit,
                    requested,
                    applied,
                })
                .collect();
            match clipped {
                None => assert!(expected.is_empty(), "{what}: nothing recorded"),
                Some(c) => {
                    assert_eq!(c.periods, expected, "{what}");
                    assert_eq!(c.profile_id, 12, "{what}");
                    assert_eq!(c.purpose, case.purpose, "{what}");
                    assert_eq!(c.connector, Some(1), "{what}");
                    let expected_limit = case.authority.limit.map(|l| Limit {
                        value: if l.value.is_nan() { 0.0 } else { l.value },
                        unit: l.unit,
                    });
                    assert_eq!(Some(c.authority), expected_limit, "{what}");
                }
            }
            // Nothing but the clipped limits changed.
            let (mut got, mut sent) = (forwarded.clone(), payload.clone());
            strip(&mut got, "limit");
            strip(&mut sent, "limit");
            assert_eq!(got, sent, "{what}: only limits change");
        }
    }
}

/// Sets the value at a JSON pointer, adding the last key to its object when missing.
fn set_at(v: &mut Value, path: &str, new: Value) {
    if let Some(slot) = v.pointer_mut(path) {
        *slot = new;
        return;
    }
    let (parent, key) = path.rsplit_once('/').unwrap_or(("", path));
    match v.pointer_mut(parent).and_then(Value::as_object_mut) {
        Some(map) => {
            map.insert(key.to_string(), new);
        }
        None => panic!("no {parent}"),
    }
}

/// Removes every `key` from nested objects.
fn strip(v: &mut Value, key: &str) {
    match v {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|x| strip(x, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|x| strip(x, key)),
        _ => {}
    }
}

// ------------------------------------------------------------------------------------ refusals

#[test]
fn profiles_that_would_replace_or_override_ours_are_rejected() {
    // (what, profile id, stack level, purpose, expected refusal), with and without a limit.
    for version in [V16, V201] {
        let max = max_purpose(version);
        let mut cases: Vec<(&str, i64, i64, &str, Option<Refusal>)> = vec![
            (
                "our id",
                809,
                0,
                "TxDefaultProfile",
                Some(Refusal::ReservedProfileId),
            ),
            (
                "our id as a max profile",
                809,
                1,
                max,
                Some(Refusal::ReservedProfileId),
            ),
            (
                "max on our stack level",
                12,
                5,
                max,
                Some(Refusal::OverridesAuthority),
            ),
            (
                "max above our stack level",
                12,
                6,
                max,
                Some(Refusal::OverridesAuthority),
            ),
            ("max below our stack level", 12, 4, max, None),
            (
                "tx default above our stack level",
                12,
                9,
                "TxDefaultProfile",
                None,
            ),
            ("tx profile above our stack level", 12, 9, "TxProfile", None),
        ];
        if version == V201 {
            cases.push((
                "external constraints",
                12,
                0,
                "ChargingStationExternalConstraints",
                Some(Refusal::ReservedPurpose),
            ));
        }
        for limit in [Some((11000.0, Watts)), None] {
            let auth = authority(limit, 3);
            for (what, id, stack, purpose, refusal) in &cases {
                let what = format!("{version:?} {what} (limit {limit:?})");
                let payload = set_profile(
                    version,
                    0,
                    profile(
                        version,
                        *id,
                        *stack,
                        purpose,
                        &[(1, Watts, &[(0, 7000.0, None)])],
                    ),
                );
                let decision = inspect(version, "SetChargingProfile", &payload, &auth);
                match (refusal, decision) {
                    (None, Decision::Forward(forwarded, None)) => {
                        assert_eq!(forwarded, payload, "{what}")
                    }
                    (
                        Some(expected),
                        Decision::Refuse {
                            result_payload,
                            reason,
                        },
                    ) => {
                        assert_eq!(&reason, expected, "{what}");
                        assert_eq!(result_payload["status"], "Rejected", "{what}");
                        if version == V201 {
                            assert!(
                                result_payload["statusInfo"]["additionalInfo"]
                                    .as_str()
                                    .is_some_and(|s| s.contains("power authority")),
                                "{what}: {result_payload}"
                            );
                        }
                    }
                    (expected, got) => panic!("{what}: expected {expected:?}, got {got:?}"),
                }
            }
        }
    }
}

#[test]
fn a_1_6_profile_with_a_2_0_1_purpose_is_refused_as_unreadable() {
    let payload = set_profile(
        V16,
        0,
        profile(
            V16,
            12,
            0,
            "ChargingStationExternalConstraints",
            &[(1, Watts, &[(0, 7000.0, None)])],
        ),
    );
    let decision = inspect(
        V16,
        "SetChargingProfile",
        &payload,
        &authority(Some((11000.0, Watts)), 3),
    );
    assert!(
        matches!(
            decision,
            Decision::Refuse {
                reason: Refusal::Unreadable(_),
                ..
            }
        ),
        "{decision:?}"
    );
}

#[test]
fn a_remote_start_profile_is_checked_and_clipped_like_a_set() {
    let auth = authority(Some((16.0, Amperes)), 3);
    for (version, action) in [
        (V16, "RemoteStartTransaction"),
        (V201, "RequestStartTransaction"),
    ] {
        let tx = |id: i64, limit: f64| {
            let mut p = profile(
                version,
                id,
                0,
                "TxProfile",
                &[(1, Amperes, &[(0, limit, None)])],
            );
            if let Some(map) = p.as_object_mut() {
                map.remove("transactionId");
            }
            p
        };
        let start = |profile: Option<Value>| {
            let mut p = match version {
                V16 => json!({ "connectorId": 1, "idTag": "TAG1" }),
                V201 => json!({
                    "evseId": 1,
                    "remoteStartId": 3,
                    "idToken": { "idToken": "TAG1", "type": "Central" }
                }),
            };
            if let Some(profile) = profile {
                p["chargingProfile"] = profile;
            }
            p
        };
        // Without a profile: forwarded as is.
        let plain = start(None);
        assert_eq!(
            inspect(version, action, &plain, &auth),
            Decision::Forward(plain.clone(), None)
        );
        // Above the limit: clipped.
        let Decision::Forward(forwarded, Some(clipped)) =
            inspect(version, action, &start(Some(tx(12, 32.0))), &auth)
        else {
            panic!("{version:?}: not clipped");
        };
        assert_eq!(forwarded["chargingProfile"], tx(12, 16.0));
        assert_eq!(clipped.connector, Some(1));
        // Our id: refused with the start's own Rejected.
        let decision = inspect(version, action, &start(Some(tx(809, 6.0))), &auth);
        let Decision::Refuse {
            result_payload,
            reason,
        } = decision
        else {
            panic!("{version:?}: our id forwarded");
        };
        assert_eq!(reason, Refusal::ReservedProfileId);
        assert_eq!(result_payload["status"], "Rejected");
    }
}

// ------------------------------------------------------------------------------------ clear

#[test]
fn clears_that_would_remove_our_profile_are_answered_unknown() {
    // (what, 1.6 request, 2.0.1 request, refused with a limit, refused without one)
    let cases: Vec<(&str, Value, Value, bool, bool)> = vec![
        (
            "our id",
            json!({"id": 809}),
            json!({"chargingProfileId": 809}),
            true,
            true,
        ),
        (
            "our id with other criteria",
            json!({"id": 809, "connectorId": 1}),
            json!({"chargingProfileId": 809, "chargingProfileCriteria": {"evseId": 1}}),
            true,
            true,
        ),
        (
            "another id",
            json!({"id": 12}),
            json!({"chargingProfileId": 12}),
            false,
            false,
        ),
        (
            "another id on EVSE 0 (the id decides)",
            json!({"id": 12, "connectorId": 0}),
            json!({"chargingProfileId": 12, "chargingProfileCriteria": {"evseId": 0}}),
            false,
            false,
        ),
        ("everything", json!({}), json!({}), true, false),
        (
            "everything on the station",
            json!({"connectorId": 0}),
            json!({"chargingProfileCriteria": {"evseId": 0}}),
            true,
            false,
        ),
        (
            "everything on connector 1",
            json!({"connectorId": 1}),
            json!({"chargingProfileCriteria": {"evseId": 1}}),
            false,
            false,
        ),
        (
            "all station maxima",
            json!({"chargingProfilePurpose": "ChargePointMaxProfile"}),
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "ChargingStationMaxProfile"}}),
            true,
            false,
        ),
        (
            "station maxima on our stack level",
            json!({"chargingProfilePurpose": "ChargePointMaxProfile", "stackLevel": 5}),
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "ChargingStationMaxProfile", "stackLevel": 5}}),
            true,
            false,
        ),
        (
            "station maxima on another stack level",
            json!({"chargingProfilePurpose": "ChargePointMaxProfile", "stackLevel": 2}),
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "ChargingStationMaxProfile", "stackLevel": 2}}),
            false,
            false,
        ),
        (
            "our stack level, any purpose, station",
            json!({"stackLevel": 5, "connectorId": 0}),
            json!({"chargingProfileCriteria": {"stackLevel": 5, "evseId": 0}}),
            true,
            false,
        ),
        (
            "all Tx profiles",
            json!({"chargingProfilePurpose": "TxProfile"}),
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "TxProfile"}}),
            false,
            false,
        ),
        (
            "all Tx default profiles on the station",
            json!({"chargingProfilePurpose": "TxDefaultProfile", "connectorId": 0}),
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "TxDefaultProfile", "evseId": 0}}),
            false,
            false,
        ),
    ];
    for (what, v16, v201, refused_with_limit, refused_without) in cases {
        for (version, payload) in [(V16, v16), (V201, v201)] {
            for (limit, refused) in [
                (Some((11000.0, Watts)), refused_with_limit),
                (None, refused_without),
            ] {
                let what = format!("{version:?} {what} (limit {limit:?})");
                assert_schema_valid(version, "ClearChargingProfile", false, &payload);
                let decision = inspect(
                    version,
                    "ClearChargingProfile",
                    &payload,
                    &authority(limit, 3),
                );
                match decision {
                    Decision::Refuse {
                        result_payload,
                        reason,
                    } if refused => {
                        assert_eq!(reason, Refusal::ClearsAuthority, "{what}");
                        assert_eq!(result_payload["status"], "Unknown", "{what}");
                    }
                    Decision::Forward(forwarded, None) if !refused => {
                        assert_eq!(forwarded, payload, "{what}")
                    }
                    other => panic!("{what}: refused expected {refused}, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_2_0_1_clear_of_external_constraints_is_not_ours_to_guard() {
    let payload = json!({"chargingProfileCriteria": {
        "chargingProfilePurpose": "ChargingStationExternalConstraints"
    }});
    assert_eq!(
        inspect(
            V201,
            "ClearChargingProfile",
            &payload,
            &authority(Some((11000.0, Watts)), 3)
        ),
        Decision::Forward(payload.clone(), None)
    );
}

// ------------------------------------------------------------------------------------ malformed

#[test]
fn malformed_calls_are_refused_never_forwarded_unread() {
    let good16 = set_profile(
        V16,
        1,
        profile(
            V16,
            12,
            0,
            "TxDefaultProfile",
            &[(1, Watts, &[(0, 22000.0, None)])],
        ),
    );
    let good201 = set_profile(
        V201,
        1,
        profile(
            V201,
            12,
            0,
            "TxDefaultProfile",
            &[(1, Watts, &[(0, 22000.0, None)])],
        ),
    );
    // (version, path to change, new value): each makes the SetChargingProfile unreadable.
    let edits: Vec<(Version, &str, Value)> = vec![
        (V16, "", json!(null)),
        (V16, "", json!([])),
        (V16, "", json!("SetChargingProfile")),
        (V16, "/connectorId", json!("1")),
        (V16, "/csChargingProfiles", json!([])),
        (V16, "/csChargingProfiles/chargingProfileId", json!("809")),
        (V16, "/csChargingProfiles/chargingProfileId", json!(809.5)),
        (V16, "/csChargingProfiles/stackLevel", json!(null)),
        (
            V16,
            "/csChargingProfiles/chargingProfilePurpose",
            json!("txdefaultprofile"),
        ),
        (V16, "/csChargingProfiles/chargingProfilePurpose", json!(3)),
        (V16, "/csChargingProfiles/chargingSchedule", json!([])),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingRateUnit",
            json!("kW"),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod",
            json!([]),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod",
            json!({}),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0",
            json!(22000),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/limit",
            json!("22000"),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/limit",
            json!(null),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/startPeriod",
            json!("0"),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/numberPhases",
            json!(4),
        ),
        (
            V16,
            "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/numberPhases",
            json!(0),
        ),
        (V201, "/evseId", json!(null)),
        (V201, "/chargingProfile", json!("x")),
        (V201, "/chargingProfile/id", json!("12")),
        (
            V201,
            "/chargingProfile/chargingProfilePurpose",
            json!("ChargePointMaxProfile"),
        ),
        (V201, "/chargingProfile/chargingSchedule", json!([])),
        (V201, "/chargingProfile/chargingSchedule", json!({})),
        (V201, "/chargingProfile/chargingSchedule/0", json!(1)),
        (V201, "/chargingProfile/chargingSchedule/0/id", json!("1")),
        (
            V201,
            "/chargingProfile/chargingSchedule/0/chargingRateUnit",
            json!("w"),
        ),
        (
            V201,
            "/chargingProfile/chargingSchedule/0/chargingSchedulePeriod/0/limit",
            json!(true),
        ),
    ];
    let auth = authority(Some((11000.0, Watts)), 3);
    for (version, path, value) in edits {
        let mut payload = if version == V16 {
            good16.clone()
        } else {
            good201.clone()
        };
        set_at(&mut payload, path, value.clone());
        let decision = inspect(version, "SetChargingProfile", &payload, &auth);
        assert!(
            matches!(
                &decision,
                Decision::Refuse { reason: Refusal::Unreadable(_), result_payload }
                    if result_payload["status"] == "Rejected"
            ),
            "{version:?} {path} = {value}: {decision:?}"
        );
    }
    // Missing fields.
    for (version, good, path) in [
        (V16, &good16, "/connectorId"),
        (V16, &good16, "/csChargingProfiles"),
        (V16, &good16, "/csChargingProfiles/stackLevel"),
        (V16, &good16, "/csChargingProfiles/chargingProfilePurpose"),
        (V16, &good16, "/csChargingProfiles/chargingSchedule"),
        (V201, &good201, "/chargingProfile/id"),
        (V201, &good201, "/chargingProfile/chargingSchedule/0/id"),
        (
            V201,
            &good201,
            "/chargingProfile/chargingSchedule/0/chargingSchedulePeriod/0/limit",
        ),
    ] {
        let mut payload = good.clone();
        let (parent, key) = path.rsplit_once('/').unwrap_or(("", path));
        if let Some(map) = payload.pointer_mut(parent).and_then(Value::as_object_mut) {
            map.remove(key);
        }
        assert!(
            matches!(
                inspect(version, "SetChargingProfile", &payload, &auth),
                Decision::Refuse {
                    reason: Refusal::Unreadable(_),
                    ..
                }
            ),
            "{version:?} without {path}"
        );
    }
    // Clears.
    for (version, payload) in [
        (V16, json!(null)),
        (V16, json!({"id": "809"})),
        (V16, json!({"connectorId": "0"})),
        (
            V16,
            json!({"chargingProfilePurpose": "ChargingStationMaxProfile"}),
        ),
        (V16, json!({"stackLevel": 1.5})),
        (V201, json!([])),
        (V201, json!({"chargingProfileId": null})),
        (V201, json!({"chargingProfileCriteria": 0})),
        (V201, json!({"chargingProfileCriteria": {"evseId": "0"}})),
    ] {
        let decision = inspect(version, "ClearChargingProfile", &payload, &auth);
        assert!(
            matches!(
                &decision,
                Decision::Refuse { reason: Refusal::Unreadable(_), result_payload }
                    if result_payload["status"] == "Unknown"
            ),
            "{version:?} {payload}: {decision:?}"
        );
    }
}

#[test]
fn without_a_limit_the_schedule_is_not_read() {
    let mut payload = set_profile(
        V16,
        1,
        profile(
            V16,
            12,
            0,
            "TxDefaultProfile",
            &[(1, Watts, &[(0, 22000.0, None)])],
        ),
    );
    payload["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"] = json!("kW");
    assert_eq!(
        inspect_downstream_call(V16, "SetChargingProfile", &payload, &authority(None, 3)),
        Decision::Forward(payload.clone(), None)
    );
}

#[test]
fn other_actions_pass_untouched() {
    let auth = authority(Some((11000.0, Watts)), 3);
    for (version, action, payload) in [
        (V16, "Reset", json!({"type": "Soft"})),
        (
            V16,
            "GetCompositeSchedule",
            json!({"connectorId": 0, "duration": 60}),
        ),
        (V16, "DataTransfer", json!({"vendorId": "x", "data": "y"})),
        (
            V201,
            "GetChargingProfiles",
            json!({"requestId": 1, "chargingProfile": {}}),
        ),
        (V201, "SetVariables", json!(null)),
        (V201, "Whatever", json!([1, 2])),
    ] {
        assert_eq!(
            inspect_downstream_call(version, action, &payload, &auth),
            Decision::Forward(payload.clone(), None),
            "{version:?} {action}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary JSON, and real profiles with arbitrary values spliced in, never panic.
    #[test]
    fn never_panics(
        payload in arb_json(),
        splice in arb_json(),
        at in 0usize..16,
        limit in proptest::option::of((-1e9f64..1e9, prop_oneof![Just(Watts), Just(Amperes)])),
        phases in 0u8..5,
        stack in 0u32..10,
    ) {
        let auth = Authority {
            limit: limit.map(|(value, unit)| Limit { value, unit }),
            phases,
            profile_id: OUR_ID,
            stack_level: stack,
        };
        for version in [V16, V201] {
            let mut real = set_profile(
                version,
                1,
                profile(version, 12, 0, "TxProfile", &[(1, Watts, &[(0, 22000.0, None)])]),
            );
            splice_at(&mut real, at, splice.clone());
            for action in ["SetChargingProfile", "ClearChargingProfile", "RemoteStartTransaction",
                           "RequestStartTransaction", "Reset"] {
                for p in [&payload, &real] {
                    if let Decision::Forward(_, Some(clipped)) =
                        inspect_downstream_call(version, action, p, &auth)
                    {
                        let (_, notice) = clipped_notice(version, &clipped, LimitSource::So, true);
                        prop_assert!(notice.is_object());
                    }
                }
            }
        }
    }
}

/// Replaces the `at`-th value (depth-first) of `v` with `new`.
fn splice_at(v: &mut Value, at: usize, new: Value) {
    fn walk(v: &mut Value, remaining: &mut usize, new: &mut Option<Value>) {
        if *remaining == 0 {
            if let Some(n) = new.take() {
                *v = n;
            }
            return;
        }
        *remaining -= 1;
        match v {
            Value::Object(map) => map.values_mut().for_each(|x| walk(x, remaining, new)),
            Value::Array(items) => items.iter_mut().for_each(|x| walk(x, remaining, new)),
            _ => {}
        }
    }
    walk(v, &mut { at }, &mut Some(new));
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("W".to_string()),
            Just("A".to_string()),
            Just("TxProfile".to_string()),
            Just("ChargePointMaxProfile".to_string()),
            Just("ChargingStationMaxProfile".to_string()),
            ".{0,8}".prop_map(String::from),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let keys = prop_oneof![
            Just("connectorId".to_string()),
            Just("evseId".to_string()),
            Just("id".to_string()),
            Just("chargingProfileId".to_string()),
            Just("stackLevel".to_string()),
            Just("chargingProfilePurpose".to_string()),
            Just("csChargingProfiles".to_string()),
            Just("chargingProfile".to_string()),
            Just("chargingProfileCriteria".to_string()),
            Just("chargingSchedule".to_string()),
            Just("chargingRateUnit".to_string()),
            Just("chargingSchedulePeriod".to_string()),
            Just("limit".to_string()),
            Just("numberPhases".to_string()),
            Just("startPeriod".to_string()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ------------------------------------------------------------------------------------ notices

fn sample_clip(version: Version, unit: LimitUnit) -> Clipped {
    Clipped {
        profile_id: 12,
        purpose: "TxProfile".into(),
        connector: Some(1),
        authority: Limit {
            value: 11000.0,
            unit,
        },
        periods: vec![ClippedPeriod {
            schedule_id: (version == V201).then_some(1),
            start_period: 0,
            unit: Watts,
            requested: 22000.0,
            applied: 11000.0,
        }],
    }
}

#[test]
fn a_2_0_1_clip_is_reported_as_notify_charging_limit() {
    let (action, payload) = clipped_notice(V201, &sample_clip(V201, Watts), LimitSource::So, true);
    assert_eq!(action, "NotifyChargingLimit");
    assert_schema_valid(V201, action, false, &payload);
    assert_eq!(
        payload,
        json!({
            "chargingLimit": {"chargingLimitSource": "SO", "isGridCritical": true},
            "chargingSchedule": [{
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]
            }],
            "customData": {
                "vendorId": VENDOR_ID,
                "clipped": {
                    "chargingProfileId": 12,
                    "chargingProfilePurpose": "TxProfile",
                    "evseId": 1,
                    "periods": [{
                        "scheduleId": 1, "startPeriod": 0, "unit": "W",
                        "requested": 22000.0, "applied": 11000.0
                    }]
                }
            }
        })
    );
}

#[test]
fn a_1_6_clip_is_reported_as_a_data_transfer() {
    let (action, payload) =
        clipped_notice(V16, &sample_clip(V16, Amperes), LimitSource::Ems, false);
    assert_eq!(action, "DataTransfer");
    assert_schema_valid(V16, action, false, &payload);
    assert_eq!(payload["vendorId"], VENDOR_ID);
    assert_eq!(payload["messageId"], CLIPPED_MESSAGE_ID);
    let data: Value = payload["data"]
        .as_str()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    assert_eq!(
        data,
        json!({
            "chargingLimitSource": "EMS",
            "isGridCritical": false,
            "limit": {"value": 11000.0, "unit": "A"},
            "chargingProfileId": 12,
            "chargingProfilePurpose": "TxProfile",
            "connectorId": 1,
            "periods": [{"startPeriod": 0, "unit": "W", "requested": 22000.0, "applied": 11000.0}]
        })
    );
}

#[test]
fn a_clip_found_by_inspection_makes_a_valid_notice() {
    for version in [V16, V201] {
        let payload = set_profile(
            version,
            2,
            profile(
                version,
                12,
                0,
                "TxDefaultProfile",
                &[(4, Amperes, &[(0, 32.0, Some(1))])],
            ),
        );
        let Decision::Forward(_, Some(clipped)) = inspect(
            version,
            "SetChargingProfile",
            &payload,
            &authority(Some((10.0, Amperes)), 3),
        ) else {
            panic!("{version:?}: not clipped");
        };
        for source in [LimitSource::So, LimitSource::Ems] {
            let (action, notice) = clipped_notice(version, &clipped, source, false);
            assert_schema_valid(version, action, false, &notice);
        }
    }
}

#[test]
fn a_change_of_the_authority_limit_is_reported() {
    let limit = Limit {
        value: 7360.04,
        unit: Watts,
    };
    let (action, payload) = limit_notice(V201, Some(&limit), LimitSource::So, false);
    assert_eq!(action, "NotifyChargingLimit");
    assert_schema_valid(V201, action, false, &payload);
    assert_eq!(
        payload["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"],
        json!(7360.0)
    );
    let (action, payload) = limit_notice(V201, None, LimitSource::Ems, false);
    assert_eq!(action, "ClearedChargingLimit");
    assert_schema_valid(V201, action, false, &payload);
    assert_eq!(payload, json!({"chargingLimitSource": "EMS"}));
    for (limit, expected) in [
        (Some(&limit), json!({"value": 7360.0, "unit": "W"})),
        (None, Value::Null),
    ] {
        let (action, payload) = limit_notice(V16, limit, LimitSource::So, true);
        assert_eq!(action, "DataTransfer");
        assert_schema_valid(V16, action, false, &payload);
        assert_eq!(payload["messageId"], LIMIT_MESSAGE_ID);
        let data: Value = payload["data"]
            .as_str()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        assert_eq!(
            data,
            json!({"chargingLimitSource": "SO", "isGridCritical": true, "limit": expected})
        );
    }
}
