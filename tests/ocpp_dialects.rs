//! OCPP message layer: the sanitizer (MAPPING.md "the field failure"), the 1.6J and 2.0.1
//! dialects (CONTRACT §3, §4, §7), and schema validation of everything ocpp809 sends.
//!
//! Schema validation reads the official JSON schemas from `$OCPP_SCHEMAS_DIR` (the `ocpp`
//! directory of the Python `ocpp` 2.1.0 package: `v16/schemas/*.json`, `v201/schemas/*.json`).
//! Without it those checks print a notice and pass.

mod ocpp_schemas;

use chrono::{DateTime, TimeZone, Utc};
use ocpp809::mapping::charger::{
    ChargerCommand, ChargerEvent, CoercionKind, CommandResult, ConnectorStatus, LimitUnit,
    Measurand, MeterSample, SampleContext, SampleValue, SampledValue,
};
use ocpp809::ocpp::sanitize::{normalise_sample, parse_number, parse_timestamp};
use ocpp809::ocpp::v16::V16Dialect;
use ocpp809::ocpp::v201::V201Dialect;
use ocpp809::ocpp::{CallContext, CallError, Dialect, ErrorCode, Mode, Version};
use ocpp_schemas::{assert_schema_valid, schema_errors};
use proptest::prelude::*;
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------ harness

const CHARGER: &str = "CP001";

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn ts() -> Option<DateTime<Utc>> {
    Some(noon())
}

/// Runs one CALL: the result and the events it produced.
fn call(
    dialect: &mut dyn Dialect,
    mode: Mode,
    action: &str,
    payload: &Value,
) -> (Result<Value, CallError>, Vec<ChargerEvent>) {
    let charger = CHARGER.to_string();
    let mut events = Vec::new();
    let mut next = 41;
    let mut next_transaction_id = || {
        next += 1;
        next
    };
    let mut ctx = CallContext {
        charger: &charger,
        now: noon(),
        mode,
        heartbeat_interval_s: 300,
        events: &mut events,
        next_transaction_id: &mut next_transaction_id,
    };
    let result = dialect.handle_call(&mut ctx, action, payload);
    (result, events)
}

fn lenient16(action: &str, payload: Value) -> (Value, Vec<ChargerEvent>) {
    let (r, events) = call(&mut V16Dialect::new(), Mode::Lenient, action, &payload);
    (r.unwrap_or_else(|e| panic!("{action}: {e:?}")), events)
}

fn lenient201(action: &str, payload: Value) -> (Value, Vec<ChargerEvent>) {
    let (r, events) = call(&mut V201Dialect::new(), Mode::Lenient, action, &payload);
    (r.unwrap_or_else(|e| panic!("{action}: {e:?}")), events)
}

fn code(r: Result<Value, CallError>) -> Option<ErrorCode> {
    r.err().map(|e| e.code)
}

fn coerced(events: &[ChargerEvent]) -> Vec<CoercionKind> {
    events
        .iter()
        .filter_map(|e| match e {
            ChargerEvent::Coerced { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

fn without_coerced(events: Vec<ChargerEvent>) -> Vec<ChargerEvent> {
    events
        .into_iter()
        .filter(|e| !matches!(e, ChargerEvent::Coerced { .. }))
        .collect()
}

fn samples(events: &[ChargerEvent]) -> Vec<MeterSample> {
    events
        .iter()
        .filter_map(|e| match e {
            ChargerEvent::Meter { sample, .. } => Some(sample.clone()),
            _ => None,
        })
        .collect()
}

fn sv(measurand: Measurand, phase: Option<&str>, value: f64, unit: &str) -> SampledValue {
    SampledValue {
        measurand,
        phase: phase.map(str::to_string),
        value: SampleValue::Valid(value),
        unit: unit.to_string(),
    }
}

// ------------------------------------------------------------------------------------ sanitizer

#[test]
fn mapping_cases_are_read_with_their_units() {
    let power = Measurand::PowerActiveImport;
    let rows: &[(Value, Option<&str>, f64)] = &[
        (json!("14.4kW"), None, 14400.0),
        (json!("14400 W"), None, 14400.0),
        (json!("14,4 kW"), None, 14400.0),
        (json!("14,4"), Some("kW"), 14400.0),
        (json!("14.4"), Some("kW"), 14400.0),
        (json!("14.4kW"), Some("W"), 14400.0),
        (json!(" 7.2 "), Some("kW"), 7200.0),
        (json!("1.5e3"), None, 1500.0),
        (json!("0.0144MW"), None, 14400.0),
    ];
    for (raw, unit, want) in rows {
        let n = normalise_sample(&power, raw, *unit, 0, true);
        assert_eq!(n.value, SampleValue::Valid(*want), "{raw} {unit:?}");
        assert_eq!(n.unit, "W");
    }
    let energy = normalise_sample(
        &Measurand::EnergyActiveImportRegister,
        &json!("12.5 kWh"),
        None,
        0,
        true,
    );
    assert_eq!(energy.value, SampleValue::Valid(12500.0));
    assert_eq!(energy.unit, "Wh");
}

#[test]
fn a_suffix_contradicting_the_unit_field_wins_and_is_counted() {
    let n = normalise_sample(
        &Measurand::PowerActiveImport,
        &json!("14.4kW"),
        Some("W"),
        0,
        true,
    );
    assert_eq!(n.value, SampleValue::Valid(14400.0));
    let kinds: Vec<_> = n.coercions.iter().map(|c| c.kind).collect();
    assert!(
        kinds.contains(&CoercionKind::UnitSuffixOverridesField),
        "{kinds:?}"
    );
}

#[test]
fn garbage_is_invalid_and_never_zero() {
    for raw in [
        json!("garbage"),
        json!("n/a"),
        json!(""),
        json!("14.4.4kW"),
        json!("NaN"),
        json!("inf"),
        json!("16 A"),
        json!(null),
    ] {
        let n = normalise_sample(&Measurand::PowerActiveImport, &raw, None, 0, true);
        assert!(
            matches!(n.value, SampleValue::Invalid { .. }),
            "{raw} gave {:?}",
            n.value
        );
    }
    assert!(parse_number(&json!("garbage"), true).is_err());
}

#[test]
fn timestamps_without_zone_are_utc() {
    let (t, c) = parse_timestamp(&json!("2024-01-01 12:00:00")).unwrap_or_default();
    assert_eq!(t, noon());
    assert_eq!(
        c.first().map(|c| c.kind),
        Some(CoercionKind::TimestampWithoutZone)
    );
    let (t, c) = parse_timestamp(&json!("2024-01-01T14:00:00+02:00")).unwrap_or_default();
    assert_eq!(t, noon());
    assert!(c.is_empty());
}

// ------------------------------------------------------------------------------------ 1.6

/// Conforming 1.6 requests: (action, payload).
fn realistic_16() -> Vec<(&'static str, Value)> {
    vec![
        (
            "BootNotification",
            json!({"chargePointVendor": "ACME", "chargePointModel": "Wallbox 22",
                   "chargePointSerialNumber": "SN-1", "firmwareVersion": "1.2.3"}),
        ),
        ("Heartbeat", json!({})),
        (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                   "timestamp": "2024-01-01T12:00:00Z"}),
        ),
        (
            "MeterValues",
            json!({"connectorId": 1, "transactionId": 42, "meterValue": [{
            "timestamp": "2024-01-01T12:00:00Z",
            "sampledValue": [
                {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                 "context": "Sample.Periodic"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                {"value": "16.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                {"value": "231", "measurand": "Voltage", "phase": "L1-N", "unit": "V"}
            ]}]}),
        ),
        (
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
                   "timestamp": "2024-01-01T12:00:00Z"}),
        ),
        (
            "StopTransaction",
            json!({"transactionId": 42, "idTag": "TAG1", "meterStop": 5000,
                   "timestamp": "2024-01-01T13:00:00Z", "reason": "EVDisconnected",
                   "transactionData": [{"timestamp": "2024-01-01T12:30:00Z",
                                        "sampledValue": [{"value": "3000", "unit": "Wh"}]}]}),
        ),
        ("Authorize", json!({"idTag": "TAG1"})),
        (
            "DataTransfer",
            json!({"vendorId": "com.acme", "messageId": "Alarm",
                   "data": "{\"name\":\"Overload\",\"active\":true,\"connectorId\":1}"}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": "com.other", "data": "hello"}),
        ),
        (
            "DiagnosticsStatusNotification",
            json!({"status": "Uploaded"}),
        ),
        ("FirmwareStatusNotification", json!({"status": "Installed"})),
    ]
}

#[test]
fn realistic_16_calls_are_answered_schema_valid_in_both_modes() {
    for mode in [Mode::Lenient, Mode::Strict] {
        for (action, payload) in realistic_16() {
            assert_schema_valid(Version::V16, action, false, &payload);
            let (r, events) = call(&mut V16Dialect::new(), mode, action, &payload);
            let response = r.unwrap_or_else(|e| panic!("{mode:?} {action}: {e:?}"));
            assert!(
                coerced(&events).is_empty(),
                "{action} needed coercions: {events:?}"
            );
            assert_schema_valid(Version::V16, action, true, &response);
        }
    }
}

#[test]
fn boot_notification_16_is_accepted_with_the_heartbeat_interval() {
    let (response, events) = lenient16("BootNotification", realistic_16()[0].1.clone());
    assert_eq!(
        response,
        json!({"currentTime": "2024-01-01T12:00:00Z", "interval": 300, "status": "Accepted"})
    );
    assert_eq!(
        events,
        vec![ChargerEvent::Booted {
            charger: CHARGER.into(),
            vendor: "ACME".into(),
            model: "Wallbox 22".into(),
            serial: Some("SN-1".into()),
            firmware: Some("1.2.3".into()),
        }]
    );
}

#[test]
fn heartbeat_16_answers_the_time() {
    let (response, events) = lenient16("Heartbeat", json!({}));
    assert_eq!(response, json!({"currentTime": "2024-01-01T12:00:00Z"}));
    assert!(events.is_empty());
}

#[test]
fn status_notification_16_raises_and_clears_error_code_alarms() {
    let mut d = V16Dialect::new();
    let status = |d: &mut V16Dialect, error: &str, status: &str| {
        let (r, events) = call(
            d,
            Mode::Lenient,
            "StatusNotification",
            &json!({"connectorId": 2, "errorCode": error, "status": status,
                    "timestamp": "2024-01-01T12:00:00Z"}),
        );
        assert_eq!(r, Ok(json!({})));
        events
    };
    let alarm = |name: &str, active: bool| ChargerEvent::Alarm {
        charger: CHARGER.into(),
        connector: Some(2),
        name: name.into(),
        active,
        timestamp: ts(),
    };
    let st = |status: ConnectorStatus, error: Option<&str>| ChargerEvent::Status {
        charger: CHARGER.into(),
        connector: 2,
        status,
        error_code: error.map(str::to_string),
        timestamp: ts(),
    };

    assert_eq!(
        status(&mut d, "OverCurrentFailure", "Faulted"),
        vec![
            st(ConnectorStatus::Faulted, Some("OverCurrentFailure")),
            alarm("OverCurrentFailure", true)
        ]
    );
    assert_eq!(
        status(&mut d, "GroundFailure", "Faulted"),
        vec![
            st(ConnectorStatus::Faulted, Some("GroundFailure")),
            alarm("OverCurrentFailure", false),
            alarm("GroundFailure", true)
        ]
    );
    assert_eq!(
        status(&mut d, "NoError", "Available"),
        vec![
            st(ConnectorStatus::Available, None),
            alarm("GroundFailure", false)
        ]
    );
    // OtherError is reported but is no alarm (CONTRACT §7).
    assert_eq!(
        status(&mut d, "OtherError", "Available"),
        vec![st(ConnectorStatus::Available, Some("OtherError"))]
    );
    assert_eq!(
        status(&mut d, "NoError", "Available"),
        vec![st(ConnectorStatus::Available, None)]
    );
}

#[test]
fn status_notification_16_lenient_fixes_case_and_15_values() {
    let (_, events) = lenient16(
        "StatusNotification",
        json!({"connectorId": "1", "errorCode": "noError", "status": "suspendedEV",
               "timestamp": "2024-01-01 12:00:00"}),
    );
    assert_eq!(
        coerced(&events),
        vec![
            CoercionKind::NumberAsString,
            CoercionKind::EnumCase,
            CoercionKind::EnumCase,
            CoercionKind::TimestampWithoutZone
        ]
    );
    assert_eq!(
        without_coerced(events),
        vec![ChargerEvent::Status {
            charger: CHARGER.into(),
            connector: 1,
            status: ConnectorStatus::SuspendedEv,
            error_code: None,
            timestamp: ts(),
        }]
    );
    let (_, events) = lenient16(
        "StatusNotification",
        json!({"connectorId": 1, "errorCode": "Mode3Error", "status": "Occupied"}),
    );
    assert_eq!(
        without_coerced(events),
        vec![
            ChargerEvent::Status {
                charger: CHARGER.into(),
                connector: 1,
                status: ConnectorStatus::Occupied,
                error_code: Some("EVCommunicationError".into()),
                timestamp: None,
            },
            ChargerEvent::Alarm {
                charger: CHARGER.into(),
                connector: Some(1),
                name: "EVCommunicationError".into(),
                active: true,
                timestamp: None,
            }
        ]
    );
}

#[test]
fn meter_values_16_are_normalised() {
    let (response, events) = lenient16("MeterValues", realistic_16()[3].1.clone());
    assert_eq!(response, json!({}));
    assert_eq!(
        events,
        vec![ChargerEvent::Meter {
            charger: CHARGER.into(),
            sample: MeterSample {
                connector: 1,
                timestamp: ts(),
                context: SampleContext::Periodic,
                transaction_id: Some("42".into()),
                replayed: false,
                values: vec![
                    sv(Measurand::EnergyActiveImportRegister, None, 1234.5, "Wh"),
                    sv(Measurand::PowerActiveImport, None, 7200.0, "W"),
                    sv(Measurand::CurrentImport, Some("L1"), 16.1, "A"),
                    sv(Measurand::Voltage, Some("L1-N"), 231.0, "V"),
                ],
            },
        }]
    );
}

/// MAPPING.md: legacy chargers sending `"value": "14.4kW"` every second.
#[test]
fn legacy_kw_meter_values_are_understood_and_counted() {
    let payload = json!({"connectorId": 1, "meterValue": [{
        "timestamp": "2024-01-01T12:00:00Z",
        "sampledValue": [{"value": "14.4kW", "measurand": "Power.Active.Import", "unit": "W"}]}]});
    let (response, events) = lenient16("MeterValues", payload.clone());
    assert_eq!(response, json!({}));
    assert_eq!(
        coerced(&events),
        vec![
            CoercionKind::UnitSuffix,
            CoercionKind::UnitSuffixOverridesField
        ]
    );
    let s = samples(&events);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].values,
        vec![sv(Measurand::PowerActiveImport, None, 14400.0, "W")]
    );

    // Strict mode refuses the same payload with the prescribed code.
    let (r, events) = call(
        &mut V16Dialect::new(),
        Mode::Strict,
        "MeterValues",
        &payload,
    );
    assert_eq!(code(r), Some(ErrorCode::PropertyConstraintViolation));
    assert!(events.is_empty());
}

#[test]
fn an_unreadable_sample_is_invalid_and_the_call_still_answered() {
    let payload = json!({"connectorId": 1, "meterValue": [{
    "timestamp": "2024-01-01T12:00:00Z",
    "sampledValue": [
        {"value": "n/a", "measurand": "Power.Active.Import"},
        {"value": "1200", "measurand": "Energy.Active.Import.Register"}
    ]}]});
    let (response, events) = lenient16("MeterValues", payload);
    assert_eq!(response, json!({}));
    assert_eq!(coerced(&events), vec![CoercionKind::UnparseableValue]);
    let s = samples(&events);
    assert_eq!(
        s[0].values,
        vec![
            SampledValue {
                measurand: Measurand::PowerActiveImport,
                phase: None,
                value: SampleValue::Invalid {
                    raw: "n/a".into(),
                    reason: "\"n/a\" is not a number".into()
                },
                unit: "W".into(),
            },
            sv(Measurand::EnergyActiveImportRegister, None, 1200.0, "Wh"),
        ]
    );
}

/// An OCPP 1.5-era MeterValues: `values` / `value`, a bare value, mis-cased names.
#[test]
fn a_15_style_meter_values_is_understood() {
    let payload = json!({"connectorId": 2, "transactionId": 7, "values": [
        {"timestamp": "2013-08-01T10:00:00", "value": [
            {"value": "2,5 kWh", "measurand": "Energy.Active.Import.Register"},
            {"value": "11", "measurand": "power.active.import", "unit": "kw"}]},
        {"timestamp": "2013-08-01T10:01:00Z", "value": "2600"}
    ]});
    let (response, events) = lenient16("MeterValues", payload);
    assert_eq!(response, json!({}));
    let kinds = coerced(&events);
    for kind in [
        CoercionKind::LegacyFieldName,
        CoercionKind::TimestampWithoutZone,
        CoercionKind::DecimalComma,
        CoercionKind::UnitSuffix,
        CoercionKind::EnumCase,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing in {kinds:?}");
    }
    let s = samples(&events);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].connector, 2);
    assert_eq!(s[0].transaction_id.as_deref(), Some("7"));
    assert_eq!(
        s[0].values,
        vec![
            sv(Measurand::EnergyActiveImportRegister, None, 2500.0, "Wh"),
            sv(Measurand::PowerActiveImport, None, 11000.0, "W"),
        ]
    );
    assert_eq!(
        s[1].values,
        vec![sv(
            Measurand::EnergyActiveImportRegister,
            None,
            2600.0,
            "Wh"
        )]
    );
}

#[test]
fn transactions_16_start_and_stop_with_replayed_data() {
    let mut d = V16Dialect::new();
    let (r, events) = call(
        &mut d,
        Mode::Lenient,
        "StartTransaction",
        &realistic_16()[4].1,
    );
    assert_eq!(
        r,
        Ok(json!({"idTagInfo": {"status": "Accepted"}, "transactionId": 42}))
    );
    assert_eq!(
        events,
        vec![ChargerEvent::TransactionStarted {
            charger: CHARGER.into(),
            connector: 1,
            transaction_id: "42".into(),
            id_tag: Some("TAG1".into()),
            meter_start_wh: Some(1000.0),
            timestamp: ts(),
        }]
    );
    let (r, events) = call(
        &mut d,
        Mode::Lenient,
        "StopTransaction",
        &realistic_16()[5].1,
    );
    assert_eq!(r, Ok(json!({"idTagInfo": {"status": "Accepted"}})));
    let half_past = Utc.with_ymd_and_hms(2024, 1, 1, 12, 30, 0).single();
    assert_eq!(
        events,
        vec![
            ChargerEvent::Meter {
                charger: CHARGER.into(),
                sample: MeterSample {
                    connector: 1,
                    timestamp: half_past,
                    context: SampleContext::Periodic,
                    transaction_id: Some("42".into()),
                    replayed: true,
                    values: vec![sv(
                        Measurand::EnergyActiveImportRegister,
                        None,
                        3000.0,
                        "Wh"
                    )],
                },
            },
            ChargerEvent::TransactionEnded {
                charger: CHARGER.into(),
                connector: Some(1),
                transaction_id: "42".into(),
                meter_stop_wh: Some(5000.0),
                reason: Some("EVDisconnected".into()),
                timestamp: Utc.with_ymd_and_hms(2024, 1, 1, 13, 0, 0).single(),
            }
        ]
    );
    // Without idTag the answer has no idTagInfo.
    let (r, _) = call(
        &mut d,
        Mode::Strict,
        "StopTransaction",
        &json!({"transactionId": 9, "meterStop": 1, "timestamp": "2024-01-01T13:00:00Z"}),
    );
    assert_eq!(r, Ok(json!({})));
}

#[test]
fn transaction_data_in_15_form_is_replayed() {
    let payload = json!({"transactionId": "42", "meterStop": "5.0 kWh", "timestamp": "2024-01-01T13:00:00Z",
        "TransactionData": [{"values": [
            {"timestamp": "2024-01-01T12:10:00Z", "value": [{"value": "2000"}]},
            {"timestamp": "2024-01-01T12:20:00Z", "value": [{"value": "2500"}]}]}]});
    let (_, events) = lenient16("StopTransaction", payload);
    let s = samples(&events);
    assert_eq!(s.len(), 2);
    assert!(s
        .iter()
        .all(|s| s.replayed && s.transaction_id.as_deref() == Some("42")));
    assert_eq!(
        events.last(),
        Some(&ChargerEvent::TransactionEnded {
            charger: CHARGER.into(),
            connector: None,
            transaction_id: "42".into(),
            meter_stop_wh: Some(5000.0),
            reason: None,
            timestamp: Utc.with_ymd_and_hms(2024, 1, 1, 13, 0, 0).single(),
        })
    );
}

#[test]
fn authorize_16_accepts_every_tag() {
    let (r, events) = lenient16("Authorize", json!({"idTag": "ANY"}));
    assert_eq!(r, json!({"idTagInfo": {"status": "Accepted"}}));
    assert!(events.is_empty());
}

#[test]
fn data_transfer_16_knows_the_alarm_convention_only() {
    let (r, events) = lenient16("DataTransfer", realistic_16()[7].1.clone());
    assert_eq!(r, json!({"status": "Accepted"}));
    assert_eq!(
        events,
        vec![ChargerEvent::Alarm {
            charger: CHARGER.into(),
            connector: Some(1),
            name: "Overload".into(),
            active: true,
            timestamp: None,
        }]
    );
    let (r, events) = lenient16("DataTransfer", realistic_16()[8].1.clone());
    assert_eq!(r, json!({"status": "UnknownVendorId"}));
    assert!(events.is_empty());
}

#[test]
fn status_reports_16_are_acknowledged() {
    assert_eq!(
        lenient16(
            "DiagnosticsStatusNotification",
            json!({"status": "Uploaded"})
        )
        .0,
        json!({})
    );
    assert_eq!(
        lenient16("FirmwareStatusNotification", json!({"status": "Installed"})).0,
        json!({})
    );
}

#[test]
fn strict_16_answers_each_violation_with_its_code() {
    use ErrorCode::*;
    let rows: Vec<(&str, Value, ErrorCode)> = vec![
        ("BootNotification", json!("garbage"), FormatViolation),
        (
            "BootNotification",
            json!({"chargePointVendor": "A"}),
            OccurrenceConstraintViolation,
        ),
        (
            "BootNotification",
            json!({"chargePointVendor": "A", "chargePointModel": 5}),
            TypeConstraintViolation,
        ),
        (
            "BootNotification",
            json!({"chargePointVendor": "A-vendor-name-that-is-too-long", "chargePointModel": "M"}),
            PropertyConstraintViolation,
        ),
        (
            "BootNotification",
            json!({"chargePointVendor": "A", "chargePointModel": "M", "extra": 1}),
            FormatViolation,
        ),
        (
            "StatusNotification",
            json!({"connectorId": "1", "errorCode": "NoError", "status": "Available"}),
            TypeConstraintViolation,
        ),
        (
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "available"}),
            PropertyConstraintViolation,
        ),
        (
            "StatusNotification",
            json!({"connectorId": 1, "status": "Available"}),
            OccurrenceConstraintViolation,
        ),
        (
            "MeterValues",
            json!({"connectorId": 1, "meterValue": []}),
            OccurrenceConstraintViolation,
        ),
        (
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-01-01T12:00:00", "sampledValue": [{"value": "1"}]}]}),
            PropertyConstraintViolation,
        ),
        (
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-01-01T12:00:00Z", "sampledValue": [{"value": 1}]}]}),
            TypeConstraintViolation,
        ),
        (
            "MeterValues",
            json!({"connectorId": 1, "meterValue": [{"timestamp": "2024-01-01T12:00:00Z", "sampledValue": [{"value": "14,4"}]}]}),
            PropertyConstraintViolation,
        ),
        (
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "T", "meterStart": "1000", "timestamp": "2024-01-01T12:00:00Z"}),
            TypeConstraintViolation,
        ),
        (
            "StopTransaction",
            json!({"meterStop": 1, "timestamp": "2024-01-01T12:00:00Z"}),
            OccurrenceConstraintViolation,
        ),
        ("Authorize", json!({}), OccurrenceConstraintViolation),
        ("Heartbeat", json!({"x": 1}), FormatViolation),
    ];
    for (action, payload, want) in rows {
        let (r, events) = call(&mut V16Dialect::new(), Mode::Strict, action, &payload);
        assert_eq!(code(r), Some(want), "{action} {payload}");
        assert!(events.is_empty());
        if let Some(errors) = schema_errors(Version::V16, action, false, &payload) {
            // Every payload strict mode refuses here is refused by the official schema too,
            // except sampled values that are text but not decimal (the schema only says text).
            let decimal_rule = payload.to_string().contains("14,4");
            assert!(
                !errors.is_empty() || decimal_rule,
                "{action} {payload} is schema-valid"
            );
        }
    }
}

#[test]
fn unknown_actions_are_not_implemented() {
    for mode in [Mode::Lenient, Mode::Strict] {
        let (r, _) = call(&mut V16Dialect::new(), mode, "FooBar", &json!({}));
        assert_eq!(code(r), Some(ErrorCode::NotImplemented));
        let (r, _) = call(&mut V201Dialect::new(), mode, "FooBar", &json!({}));
        assert_eq!(code(r), Some(ErrorCode::NotImplemented));
        let (r, _) = call(&mut V16Dialect::new(), mode, "TransactionEvent", &json!({}));
        assert_eq!(code(r), Some(ErrorCode::NotImplemented));
        let (r, _) = call(
            &mut V201Dialect::new(),
            mode,
            "ReservationStatusUpdate",
            &json!({}),
        );
        assert_eq!(code(r), Some(ErrorCode::NotSupported));
    }
    // Lenient mode reads an action name in the wrong case, strict does not.
    let (r, events) = call(
        &mut V16Dialect::new(),
        Mode::Lenient,
        "heartbeat",
        &json!({}),
    );
    assert!(r.is_ok());
    assert_eq!(coerced(&events), vec![CoercionKind::EnumCase]);
    let (r, _) = call(
        &mut V16Dialect::new(),
        Mode::Strict,
        "heartbeat",
        &json!({}),
    );
    assert_eq!(code(r), Some(ErrorCode::NotImplemented));
}

// ------------------------------------------------------------------------------------ 2.0.1

fn meter_value_201(value: Value) -> Value {
    json!({"timestamp": "2024-01-01T12:00:00Z", "sampledValue": [
        {"value": value, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
        {"value": 12.5, "measurand": "Energy.Active.Import.Register",
         "unitOfMeasure": {"unit": "Wh", "multiplier": 3}, "context": "Sample.Periodic"}]})
}

/// Conforming 2.0.1 requests: (action, payload).
fn realistic_201() -> Vec<(&'static str, Value)> {
    vec![
        (
            "BootNotification",
            json!({"chargingStation": {"model": "Wallbox 22", "vendorName": "ACME",
                   "serialNumber": "SN-2", "firmwareVersion": "2.0",
                   "modem": {"iccid": "8949", "imsi": "2620"}}, "reason": "PowerUp"}),
        ),
        ("Heartbeat", json!({})),
        (
            "StatusNotification",
            json!({"timestamp": "2024-01-01T12:00:00Z", "connectorStatus": "Occupied",
                   "evseId": 1, "connectorId": 1}),
        ),
        (
            "MeterValues",
            json!({"evseId": 1, "meterValue": [meter_value_201(json!(7200.0))]}),
        ),
        (
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2024-01-01T12:00:00Z",
                   "triggerReason": "CablePluggedIn", "seqNo": 0,
                   "transactionInfo": {"transactionId": "TX-1", "chargingState": "EVConnected"},
                   "evse": {"id": 1, "connectorId": 1},
                   "idToken": {"idToken": "TAG1", "type": "ISO14443"},
                   "meterValue": [{"timestamp": "2024-01-01T12:00:00Z", "sampledValue": [
                       {"value": 1000, "context": "Transaction.Begin"}]}]}),
        ),
        (
            "TransactionEvent",
            json!({"eventType": "Updated", "timestamp": "2024-01-01T12:05:00Z",
                   "triggerReason": "MeterValuePeriodic", "seqNo": 1,
                   "transactionInfo": {"transactionId": "TX-1", "chargingState": "Charging"},
                   "meterValue": [meter_value_201(json!(11000))]}),
        ),
        (
            "TransactionEvent",
            json!({"eventType": "Ended", "timestamp": "2024-01-01T13:00:00Z",
                   "triggerReason": "EVDeparted", "seqNo": 2, "offline": true,
                   "transactionInfo": {"transactionId": "TX-1", "stoppedReason": "EVDisconnected"},
                   "meterValue": [{"timestamp": "2024-01-01T13:00:00Z", "sampledValue": [
                       {"value": 5000, "context": "Transaction.End"}]}]}),
        ),
        (
            "Authorize",
            json!({"idToken": {"idToken": "TAG1", "type": "ISO14443"}}),
        ),
        (
            "NotifyEvent",
            json!({"generatedAt": "2024-01-01T12:00:00Z", "seqNo": 0, "eventData": [
                {"eventId": 1, "timestamp": "2024-01-01T12:00:00Z", "trigger": "Delta",
                 "actualValue": "true", "eventNotificationType": "HardWiredNotification",
                 "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Overload"}},
                {"eventId": 2, "timestamp": "2024-01-01T12:00:00Z", "trigger": "Delta",
                 "actualValue": "Available", "eventNotificationType": "HardWiredNotification",
                 "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                 "variable": {"name": "AvailabilityState"}}]}),
        ),
        (
            "NotifyReport",
            json!({"requestId": 1, "generatedAt": "2024-01-01T12:00:00Z", "seqNo": 0, "reportData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                 "variableAttribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}],
                 "variableCharacteristics": {"dataType": "integer", "supportsMonitoring": false, "unit": "s"}}]}),
        ),
        (
            "SecurityEventNotification",
            json!({"type": "StartupOfTheDevice", "timestamp": "2024-01-01T12:00:00Z"}),
        ),
        (
            "FirmwareStatusNotification",
            json!({"status": "Installed", "requestId": 3}),
        ),
        (
            "LogStatusNotification",
            json!({"status": "Uploaded", "requestId": 4}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": "com.acme", "messageId": "Alarm",
                   "data": {"name": "Tripped", "active": false, "evseId": 2},
                   "customData": {"vendorId": "com.acme", "x": 1}}),
        ),
        (
            "DataTransfer",
            json!({"vendorId": "com.other", "data": [1, 2]}),
        ),
    ]
}

#[test]
fn realistic_201_calls_are_answered_schema_valid_in_both_modes() {
    for mode in [Mode::Lenient, Mode::Strict] {
        let mut d = V201Dialect::new();
        for (action, payload) in realistic_201() {
            assert_schema_valid(Version::V201, action, false, &payload);
            let (r, events) = call(&mut d, mode, action, &payload);
            let response = r.unwrap_or_else(|e| panic!("{mode:?} {action}: {e:?}"));
            assert!(
                coerced(&events).is_empty(),
                "{action} needed coercions: {events:?}"
            );
            assert_schema_valid(Version::V201, action, true, &response);
        }
    }
}

#[test]
fn boot_notification_201_is_accepted() {
    let (response, events) = lenient201("BootNotification", realistic_201()[0].1.clone());
    assert_eq!(
        response,
        json!({"currentTime": "2024-01-01T12:00:00.000Z", "interval": 300, "status": "Accepted"})
    );
    assert_eq!(
        events,
        vec![ChargerEvent::Booted {
            charger: CHARGER.into(),
            vendor: "ACME".into(),
            model: "Wallbox 22".into(),
            serial: Some("SN-2".into()),
            firmware: Some("2.0".into()),
        }]
    );
}

#[test]
fn status_notification_201_reports_the_evse() {
    let (response, events) = lenient201("StatusNotification", realistic_201()[2].1.clone());
    assert_eq!(response, json!({}));
    assert_eq!(
        events,
        vec![ChargerEvent::Status {
            charger: CHARGER.into(),
            connector: 1,
            status: ConnectorStatus::Occupied,
            error_code: None,
            timestamp: ts(),
        }]
    );
}

#[test]
fn meter_values_201_use_unit_and_multiplier() {
    let (_, events) = lenient201("MeterValues", realistic_201()[3].1.clone());
    let s = samples(&events);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].connector, 1);
    assert_eq!(
        s[0].values,
        vec![
            sv(Measurand::PowerActiveImport, None, 7200.0, "W"),
            sv(Measurand::EnergyActiveImportRegister, None, 12500.0, "Wh"),
        ]
    );
}

#[test]
fn meter_values_201_with_text_are_sanitized_in_lenient_mode_only() {
    let payload = json!({"evseId": 1, "meterValue": [meter_value_201(json!("14,4 kW"))]});
    let (r, events) = lenient201("MeterValues", payload.clone());
    assert_eq!(r, json!({}));
    assert_eq!(
        coerced(&events),
        vec![
            CoercionKind::NumberAsString,
            CoercionKind::DecimalComma,
            CoercionKind::UnitSuffix,
            CoercionKind::UnitSuffixOverridesField
        ]
    );
    assert_eq!(
        samples(&events)[0].values[0],
        sv(Measurand::PowerActiveImport, None, 14400.0, "W")
    );
    let (r, _) = call(
        &mut V201Dialect::new(),
        Mode::Strict,
        "MeterValues",
        &payload,
    );
    assert_eq!(code(r), Some(ErrorCode::TypeConstraintViolation));

    let garbage = json!({"evseId": 1, "meterValue": [meter_value_201(json!("garbage"))]});
    let (r, events) = lenient201("MeterValues", garbage);
    assert_eq!(r, json!({}));
    assert!(matches!(
        samples(&events)[0].values[0].value,
        SampleValue::Invalid { .. }
    ));
}

#[test]
fn transaction_events_201_start_update_and_end() {
    let mut d = V201Dialect::new();
    let all = realistic_201();
    let (r, events) = call(&mut d, Mode::Lenient, "TransactionEvent", &all[4].1);
    assert_eq!(r, Ok(json!({"idTokenInfo": {"status": "Accepted"}})));
    assert_eq!(
        events,
        vec![
            ChargerEvent::TransactionStarted {
                charger: CHARGER.into(),
                connector: 1,
                transaction_id: "TX-1".into(),
                id_tag: Some("TAG1".into()),
                meter_start_wh: Some(1000.0),
                timestamp: ts(),
            },
            ChargerEvent::Meter {
                charger: CHARGER.into(),
                sample: MeterSample {
                    connector: 1,
                    timestamp: ts(),
                    context: SampleContext::TransactionBegin,
                    transaction_id: Some("TX-1".into()),
                    replayed: false,
                    values: vec![sv(
                        Measurand::EnergyActiveImportRegister,
                        None,
                        1000.0,
                        "Wh"
                    )],
                },
            }
        ]
    );

    // The update carries no evse: the connector is remembered from the start.
    let (r, events) = call(&mut d, Mode::Lenient, "TransactionEvent", &all[5].1);
    assert_eq!(r, Ok(json!({})));
    assert_eq!(events.len(), 2);
    let s = samples(&events);
    assert_eq!(s[0].connector, 1);
    assert_eq!(
        s[0].values[0],
        sv(Measurand::PowerActiveImport, None, 11000.0, "W")
    );
    assert_eq!(
        events[1],
        ChargerEvent::TransactionUpdated {
            charger: CHARGER.into(),
            connector: 1,
            transaction_id: "TX-1".into(),
            timestamp: Utc.with_ymd_and_hms(2024, 1, 1, 12, 5, 0).single(),
        }
    );

    // The end was queued offline: its meter data is replayed.
    let (_, events) = call(&mut d, Mode::Lenient, "TransactionEvent", &all[6].1);
    let s = samples(&events);
    assert!(s[0].replayed);
    assert_eq!(s[0].context, SampleContext::TransactionEnd);
    assert_eq!(
        events.last(),
        Some(&ChargerEvent::TransactionEnded {
            charger: CHARGER.into(),
            connector: Some(1),
            transaction_id: "TX-1".into(),
            meter_stop_wh: Some(5000.0),
            reason: Some("EVDisconnected".into()),
            timestamp: Utc.with_ymd_and_hms(2024, 1, 1, 13, 0, 0).single(),
        })
    );
}

#[test]
fn notify_event_201_raises_and_clears_alarms() {
    let (r, events) = lenient201("NotifyEvent", realistic_201()[8].1.clone());
    assert_eq!(r, json!({}));
    assert_eq!(
        events,
        vec![ChargerEvent::Alarm {
            charger: CHARGER.into(),
            connector: Some(1),
            name: "Overload".into(),
            active: true,
            timestamp: ts(),
        }]
    );
    let item = |variable: &str, actual: &str, cleared: Option<bool>| {
        let mut e = json!({"eventId": 1, "timestamp": "2024-01-01T12:00:00Z", "trigger": "Alerting",
            "actualValue": actual, "eventNotificationType": "PreconfiguredMonitor",
            "component": {"name": "ChargingStation"}, "variable": {"name": variable}});
        if let Some(c) = cleared {
            e["cleared"] = json!(c);
        }
        e
    };
    let payload = json!({"generatedAt": "2024-01-01T12:00:00Z", "seqNo": 1, "eventData": [
        item("Problem", "false", None),
        item("Tripped", "true", Some(true)),
        item("Fault", "True", None),
        item("OverCurrent", "12.5", None),
        item("Temperature", "true", None),
    ]});
    let (_, events) = lenient201("NotifyEvent", payload);
    let alarms: Vec<(String, bool, Option<u8>)> = events
        .iter()
        .filter_map(|e| match e {
            ChargerEvent::Alarm {
                name,
                active,
                connector,
                ..
            } => Some((name.clone(), *active, *connector)),
            _ => None,
        })
        .collect();
    assert_eq!(
        alarms,
        vec![
            ("Problem".into(), false, None),
            ("Tripped".into(), false, None),
            ("Fault".into(), true, None),
        ]
    );
}

#[test]
fn acknowledgements_201_are_empty_objects() {
    for i in [9, 10, 11, 12] {
        let (action, payload) = realistic_201()[i].clone();
        let (r, events) = lenient201(action, payload);
        assert_eq!(r, json!({}), "{action}");
        assert!(events.is_empty(), "{action}");
    }
}

#[test]
fn authorize_and_data_transfer_201() {
    let (r, _) = lenient201("Authorize", realistic_201()[7].1.clone());
    assert_eq!(r, json!({"idTokenInfo": {"status": "Accepted"}}));
    let (r, events) = lenient201("DataTransfer", realistic_201()[13].1.clone());
    assert_eq!(r, json!({"status": "Accepted"}));
    assert_eq!(
        events,
        vec![ChargerEvent::Alarm {
            charger: CHARGER.into(),
            connector: Some(2),
            name: "Tripped".into(),
            active: false,
            timestamp: None,
        }]
    );
    let (r, _) = lenient201("DataTransfer", realistic_201()[14].1.clone());
    assert_eq!(r, json!({"status": "UnknownVendorId"}));
}

#[test]
fn strict_201_answers_each_violation_with_its_code() {
    use ErrorCode::*;
    let rows: Vec<(&str, Value, ErrorCode)> = vec![
        ("BootNotification", json!([]), FormatViolation),
        (
            "BootNotification",
            json!({"reason": "PowerUp"}),
            OccurrenceConstraintViolation,
        ),
        (
            "BootNotification",
            json!({"reason": "PowerUp", "chargingStation": {"model": "M"}}),
            OccurrenceConstraintViolation,
        ),
        (
            "BootNotification",
            json!({"reason": "powerUp", "chargingStation": {"model": "M", "vendorName": "V"}}),
            PropertyConstraintViolation,
        ),
        (
            "BootNotification",
            json!({"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V", "x": 1}}),
            FormatViolation,
        ),
        (
            "BootNotification",
            json!({"reason": "PowerUp", "chargingStation": "M"}),
            TypeConstraintViolation,
        ),
        (
            "StatusNotification",
            json!({"timestamp": "2024-01-01T12:00:00Z", "connectorStatus": "Charging", "evseId": 1, "connectorId": 1}),
            PropertyConstraintViolation,
        ),
        (
            "StatusNotification",
            json!({"timestamp": "2024-01-01T12:00:00Z", "connectorStatus": "Available", "evseId": "1", "connectorId": 1}),
            TypeConstraintViolation,
        ),
        (
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2024-01-01T12:00:00Z", "triggerReason": "Authorized", "seqNo": 0}),
            OccurrenceConstraintViolation,
        ),
        (
            "TransactionEvent",
            json!({"eventType": "Started", "timestamp": "2024-01-01T12:00:00Z", "triggerReason": "Authorized", "seqNo": 0,
                   "transactionInfo": {"transactionId": "X"}, "offline": "true"}),
            TypeConstraintViolation,
        ),
        (
            "NotifyEvent",
            json!({"generatedAt": "2024-01-01T12:00:00Z", "seqNo": 0, "eventData": []}),
            OccurrenceConstraintViolation,
        ),
    ];
    for (action, payload, want) in rows {
        let (r, _) = call(&mut V201Dialect::new(), Mode::Strict, action, &payload);
        assert_eq!(code(r), Some(want), "{action} {payload}");
        if let Some(errors) = schema_errors(Version::V201, action, false, &payload) {
            assert!(!errors.is_empty(), "{action} {payload} is schema-valid");
        }
    }
}

#[test]
fn custom_data_is_allowed_everywhere_in_201() {
    let (r, _) = call(
        &mut V201Dialect::new(),
        Mode::Strict,
        "Heartbeat",
        &json!({"customData": {"vendorId": "x", "anything": [1]}}),
    );
    assert_eq!(r, Ok(json!({"currentTime": "2024-01-01T12:00:00.000Z"})));
}

#[test]
fn lenient_201_reads_16_style_fields() {
    let (_, events) = lenient201(
        "BootNotification",
        json!({"chargePointVendor": "Old", "chargePointModel": "Box"}),
    );
    assert_eq!(coerced(&events), vec![CoercionKind::LegacyFieldName]);
    assert!(matches!(&events[1], ChargerEvent::Booted { vendor, .. } if vendor == "Old"));
    let (_, events) = lenient201(
        "StatusNotification",
        json!({"evseId": 1, "connectorId": 1, "status": "Charging", "timestamp": "2024-01-01T12:00:00Z"}),
    );
    assert!(matches!(
        without_coerced(events).first(),
        Some(ChargerEvent::Status {
            status: ConnectorStatus::Charging,
            ..
        })
    ));
}

// ------------------------------------------------------------------------------------ commands

fn commands() -> Vec<ChargerCommand> {
    vec![
        ChargerCommand::SetLimit {
            limit: 14400.0,
            unit: LimitUnit::Watts,
            profile_id: 809,
            stack_level: 0,
        },
        ChargerCommand::SetLimit {
            limit: 21.4,
            unit: LimitUnit::Amperes,
            profile_id: 809,
            stack_level: 0,
        },
        ChargerCommand::SetLimit {
            limit: 7333.333333,
            unit: LimitUnit::Watts,
            profile_id: 809,
            stack_level: 2,
        },
        ChargerCommand::ClearLimit { profile_id: 809 },
        ChargerCommand::GetCompositeSchedule {
            connector: 0,
            duration_s: 3600,
            unit: LimitUnit::Watts,
        },
        ChargerCommand::GetCompositeSchedule {
            connector: 2,
            duration_s: 60,
            unit: LimitUnit::Amperes,
        },
        ChargerCommand::ChangeAvailability { operative: true },
        ChargerCommand::ChangeAvailability { operative: false },
        ChargerCommand::Reset { hard: false },
        ChargerCommand::Reset { hard: true },
        ChargerCommand::TriggerMessage {
            message: "StatusNotification".into(),
            connector: Some(1),
        },
        ChargerCommand::TriggerMessage {
            message: "MeterValues".into(),
            connector: None,
        },
        ChargerCommand::TriggerMessage {
            message: "heartbeat".into(),
            connector: Some(0),
        },
        ChargerCommand::TriggerMessage {
            message: "DiagnosticsStatusNotification".into(),
            connector: None,
        },
        ChargerCommand::RemoteStart {
            connector: Some(1),
            id_tag: "SCADA".into(),
        },
        ChargerCommand::RemoteStart {
            connector: None,
            id_tag: "SCADA".into(),
        },
        ChargerCommand::RemoteStop {
            transaction_id: "42".into(),
        },
        ChargerCommand::GetSettings { keys: vec![] },
        ChargerCommand::GetSettings {
            keys: vec![
                "HeartbeatInterval".into(),
                "OCPPCommCtrlr.HeartbeatInterval".into(),
            ],
        },
        ChargerCommand::SetSetting {
            key: "HeartbeatInterval".into(),
            value: "300".into(),
        },
        ChargerCommand::UnlockConnector { connector: 2 },
        ChargerCommand::DataTransfer {
            vendor_id: "com.acme".into(),
            message_id: Some("Ping".into()),
            data: Some("x".into()),
        },
        ChargerCommand::DataTransfer {
            vendor_id: "com.acme".into(),
            message_id: None,
            data: None,
        },
    ]
}

#[test]
fn every_command_is_schema_valid() {
    let d16 = V16Dialect::new();
    let d201 = V201Dialect::new();
    for command in commands() {
        let (action, payload) = d16.encode_command(&command);
        assert_schema_valid(Version::V16, action, false, &payload);
        let (action, payload) = d201.encode_command(&command);
        assert_schema_valid(Version::V201, action, false, &payload);
    }
}

#[test]
fn commands_map_per_contract() {
    let d16 = V16Dialect::new();
    let d201 = V201Dialect::new();
    let limit = &commands()[0];
    let (a, p) = d16.encode_command(limit);
    assert_eq!(a, "SetChargingProfile");
    assert_eq!(p["connectorId"], json!(0));
    let profile = &p["csChargingProfiles"];
    assert_eq!(profile["chargingProfileId"], json!(809));
    assert_eq!(profile["stackLevel"], json!(0));
    assert_eq!(
        profile["chargingProfilePurpose"],
        json!("ChargePointMaxProfile")
    );
    assert_eq!(profile["chargingProfileKind"], json!("Absolute"));
    assert_eq!(profile["chargingSchedule"]["chargingRateUnit"], json!("W"));
    assert_eq!(
        profile["chargingSchedule"]["chargingSchedulePeriod"],
        json!([{"startPeriod": 0, "limit": 14400.0}])
    );
    let start = profile["chargingSchedule"]["startSchedule"]
        .as_str()
        .unwrap_or("");
    assert!(parse_timestamp(&json!(start)).is_ok_and(|(t, _)| t <= Utc::now()));

    let (a, p) = d201.encode_command(limit);
    assert_eq!(a, "SetChargingProfile");
    assert_eq!(p["evseId"], json!(0));
    assert_eq!(p["chargingProfile"]["id"], json!(809));
    assert_eq!(
        p["chargingProfile"]["chargingProfilePurpose"],
        json!("ChargingStationMaxProfile")
    );
    assert_eq!(p["chargingProfile"]["chargingSchedule"][0]["id"], json!(1));

    let expect = |d: &dyn Dialect, c: &ChargerCommand, action: &str, payload: Value| {
        assert_eq!(d.encode_command(c), (action, payload), "{c:?}");
    };
    expect(
        &d16,
        &ChargerCommand::ClearLimit { profile_id: 809 },
        "ClearChargingProfile",
        json!({"id": 809}),
    );
    expect(
        &d201,
        &ChargerCommand::ClearLimit { profile_id: 809 },
        "ClearChargingProfile",
        json!({"chargingProfileId": 809}),
    );
    expect(
        &d16,
        &commands()[4],
        "GetCompositeSchedule",
        json!({"connectorId": 0, "duration": 3600, "chargingRateUnit": "W"}),
    );
    expect(
        &d201,
        &commands()[4],
        "GetCompositeSchedule",
        json!({"evseId": 0, "duration": 3600, "chargingRateUnit": "W"}),
    );
    expect(
        &d16,
        &commands()[7],
        "ChangeAvailability",
        json!({"connectorId": 0, "type": "Inoperative"}),
    );
    expect(
        &d201,
        &commands()[7],
        "ChangeAvailability",
        json!({"operationalStatus": "Inoperative"}),
    );
    expect(&d16, &commands()[8], "Reset", json!({"type": "Soft"}));
    expect(&d201, &commands()[8], "Reset", json!({"type": "OnIdle"}));
    expect(&d201, &commands()[9], "Reset", json!({"type": "Immediate"}));
    expect(
        &d16,
        &commands()[16],
        "RemoteStopTransaction",
        json!({"transactionId": 42}),
    );
    expect(
        &d201,
        &commands()[16],
        "RequestStopTransaction",
        json!({"transactionId": "42"}),
    );
    expect(
        &d16,
        &commands()[20],
        "UnlockConnector",
        json!({"connectorId": 2}),
    );
    expect(
        &d201,
        &commands()[20],
        "UnlockConnector",
        json!({"evseId": 2, "connectorId": 1}),
    );
    expect(
        &d16,
        &commands()[19],
        "ChangeConfiguration",
        json!({"key": "HeartbeatInterval", "value": "300"}),
    );
    let (a, p) = d201.encode_command(&commands()[14]);
    assert_eq!(a, "RequestStartTransaction");
    assert_eq!(p["idToken"], json!({"idToken": "SCADA", "type": "Central"}));
    assert_eq!(p["evseId"], json!(1));
    assert!(p["remoteStartId"].is_i64());
}

#[test]
fn command_results_decode_per_contract() {
    let d16 = V16Dialect::new();
    let d201 = V201Dialect::new();
    let limit = &commands()[0];
    for d in [&d16 as &dyn Dialect, &d201] {
        assert_eq!(
            d.decode_result(limit, &json!({"status": "Accepted"})),
            CommandResult::Accepted
        );
        assert_eq!(
            d.decode_result(limit, &json!({"status": "Rejected"})),
            CommandResult::Rejected("Rejected".into())
        );
        let avail = &commands()[6];
        assert_eq!(
            d.decode_result(avail, &json!({"status": "Scheduled"})),
            CommandResult::Accepted
        );
        assert!(matches!(
            d.decode_result(avail, &json!("junk")),
            CommandResult::Rejected(_)
        ));
    }
    let clear = ChargerCommand::ClearLimit { profile_id: 809 };
    assert_eq!(
        d16.decode_result(&clear, &json!({"status": "Unknown"})),
        CommandResult::Accepted
    );
    assert_eq!(
        d201.decode_result(&clear, &json!({"status": "Unknown"})),
        CommandResult::Accepted
    );
    let dt = &commands()[21];
    assert_eq!(
        d16.decode_result(dt, &json!({"status": "Accepted", "data": "pong"})),
        CommandResult::Data {
            status: "Accepted".into(),
            data: Some("pong".into())
        }
    );
    assert_eq!(
        d201.decode_result(dt, &json!({"status": "Accepted", "data": {"a": 1}})),
        CommandResult::Data {
            status: "Accepted".into(),
            data: Some("{\"a\":1}".into())
        }
    );
    // A composite schedule starting now: the first period is in force.
    let now = Utc::now().to_rfc3339();
    let cs = &commands()[4];
    assert_eq!(
        d16.decode_result(cs, &json!({"status": "Accepted", "scheduleStart": now, "chargingSchedule": {
            "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0},
                                                               {"startPeriod": 3000, "limit": 5000.0}]}})),
        CommandResult::Schedule { limit: Some(11000.0), unit: LimitUnit::Watts }
    );
    assert_eq!(
        d201.decode_result(
            cs,
            &json!({"status": "Accepted", "schedule": {"evseId": 0, "duration": 3600,
            "scheduleStart": now, "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}})
        ),
        CommandResult::Schedule {
            limit: Some(16.0),
            unit: LimitUnit::Amperes
        }
    );
    assert_eq!(
        d201.decode_result(
            &commands()[19],
            &json!({"setVariableResult": [
            {"attributeStatus": "RebootRequired", "component": {"name": "OCPPCommCtrlr"},
             "variable": {"name": "HeartbeatInterval"}}]})
        ),
        CommandResult::Accepted
    );
}

// ------------------------------------------------------------------------------------ robustness

/// Field names the messages use, so arbitrary payloads reach deep into the readers.
const KEYS: &[&str] = &[
    "connectorId",
    "errorCode",
    "status",
    "timestamp",
    "meterValue",
    "sampledValue",
    "value",
    "values",
    "unit",
    "measurand",
    "phase",
    "context",
    "format",
    "transactionId",
    "idTag",
    "meterStart",
    "meterStop",
    "transactionData",
    "reason",
    "vendorId",
    "messageId",
    "data",
    "chargePointVendor",
    "chargePointModel",
    "chargingStation",
    "vendorName",
    "model",
    "evseId",
    "connectorStatus",
    "eventType",
    "transactionInfo",
    "evse",
    "id",
    "idToken",
    "offline",
    "seqNo",
    "triggerReason",
    "chargingState",
    "stoppedReason",
    "unitOfMeasure",
    "multiplier",
    "eventData",
    "variable",
    "component",
    "name",
    "actualValue",
    "cleared",
    "generatedAt",
    "reportData",
    "type",
    "customData",
];

const TEXTS: &[&str] = &[
    "14.4kW",
    "14,4",
    "n/a",
    "",
    "NaN",
    "1e400",
    "Charging",
    "charging",
    "NoError",
    "Faulted",
    "Power.Active.Import",
    "Energy.Active.Import.Register",
    "kWh",
    "W",
    "A",
    "L1",
    "Started",
    "Ended",
    "Updated",
    "Overload",
    "true",
    "false",
    "2024-01-01T12:00:00Z",
    "2024-01-01 12:00",
    "Alarm",
    "{\"name\":\"Overload\"}",
    "SignedData",
    "Occupied",
    "-1",
    "99999999999",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-300i32..300).prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(TEXTS).prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(KEYS).prop_map(str::to_string),
                        1 => "[a-zA-Z]{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`-th node (pre-order) of `v` with `with`, or removes it from its object.
fn mutate(v: &mut Value, pick: usize, with: Value, remove: bool) {
    fn walk(v: &mut Value, pick: &mut usize, with: &mut Option<Value>, remove: bool) -> bool {
        match v {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    if *pick == 0 {
                        if remove {
                            map.remove(&k);
                        } else if let Some(w) = with.take() {
                            map.insert(k, w);
                        }
                        return true;
                    }
                    *pick -= 1;
                    if let Some(child) = map.get_mut(&k) {
                        if walk(child, pick, with, remove) {
                            return true;
                        }
                    }
                }
                false
            }
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if *pick == 0 {
                        if let Some(w) = with.take() {
                            *item = w;
                        }
                        return true;
                    }
                    *pick -= 1;
                    if walk(item, pick, with, remove) {
                        return true;
                    }
                }
                false
            }
            _ => false,
        }
    }
    let mut pick = pick;
    let mut with = Some(with);
    walk(v, &mut pick, &mut with, remove);
}

fn check_invariants(version: Version, mode: Mode, action: &str, payload: &Value) {
    let (result, events) = match version {
        Version::V16 => call(&mut V16Dialect::new(), mode, action, payload),
        Version::V201 => call(&mut V201Dialect::new(), mode, action, payload),
    };
    match result {
        Ok(response) => {
            assert!(response.is_object());
            if mode == Mode::Strict {
                // Strict mode coerces nothing; it only reports samples it marked invalid.
                assert!(coerced(&events)
                    .iter()
                    .all(|k| *k == CoercionKind::UnparseableValue));
            }
            // What was answered is schema-valid; what strict mode accepted was too.
            assert_schema_valid(version, action, true, &response);
            if mode == Mode::Strict {
                assert_schema_valid(version, action, false, payload);
            }
        }
        Err(e) => {
            assert!(events.is_empty());
            assert!(e.description.chars().count() <= 255);
        }
    }
}

// 256 cases each by default; PROPTEST_CASES raises it for a longer hunt.
proptest! {
    /// Arbitrary JSON into every action, both versions, both modes: never a panic.
    #[test]
    fn arbitrary_payloads_never_panic(payload in arb_json(), strict in any::<bool>()) {
        let mode = if strict { Mode::Strict } else { Mode::Lenient };
        for action in ocpp809::ocpp::v16::ACTIONS {
            check_invariants(Version::V16, mode, action, &payload);
        }
        for action in ocpp809::ocpp::v201::ACTIONS {
            check_invariants(Version::V201, mode, action, &payload);
        }
    }

    /// Realistic payloads with one node replaced or removed: never a panic; in strict mode,
    /// what is accepted is valid against the official schema.
    #[test]
    fn mutated_payloads_never_panic(
        which in any::<prop::sample::Index>(),
        pick in 0usize..64,
        with in arb_json(),
        remove in any::<bool>(),
        strict in any::<bool>(),
        v201 in any::<bool>(),
    ) {
        let mode = if strict { Mode::Strict } else { Mode::Lenient };
        let (version, all) = if v201 {
            (Version::V201, realistic_201())
        } else {
            (Version::V16, realistic_16())
        };
        let (action, mut payload) = all[which.index(all.len())].clone();
        mutate(&mut payload, pick, with, remove);
        check_invariants(version, mode, action, &payload);
    }

    /// The number parser answers every string without panicking, and never with a non-finite
    /// number.
    #[test]
    fn the_number_parser_takes_any_text(text in "\\PC{0,24}") {
        if let Ok(q) = parse_number(&json!(text), true) {
            prop_assert!(q.in_base_unit().is_finite());
        }
        let n = normalise_sample(&Measurand::PowerActiveImport, &json!(text), Some("kW"), 0, true);
        if let SampleValue::Valid(x) = n.value {
            prop_assert!(x.is_finite());
        }
    }
}

#[test]
fn strict_timestamps_agree_with_the_official_date_time_format() {
    for t in [
        "2024-01-01T12:00:00Z",
        "2024-01-01 12:00:00Z",
        "2024-01-01t12:00:00z",
        "2024-01-01T12:00:00.123456789+01:00",
        "2024-01-01T12:00:60Z",
        "2024-01-01T23:59:60Z",
        "2024-1-01T12:00:00Z",
        "2024-01-01T12:00:00+0100",
        "2024-01-01T12:00Z",
        "2024-01-01T12:00:00.Z",
        "2024-02-30T12:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:00:00-00:00",
        " 2024-01-01T12:00:00Z",
        "2024-01-01T12:00:00",
    ] {
        let payload = json!({"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": t});
        let (r, _) = call(
            &mut V16Dialect::new(),
            Mode::Strict,
            "StatusNotification",
            &payload,
        );
        if let Some(errors) = schema_errors(Version::V16, "StatusNotification", false, &payload) {
            assert_eq!(r.is_ok(), errors.is_empty(), "{t}: {errors:?}");
        }
        // Lenient mode answers all of them (an unreadable timestamp is left out, counted).
        let (r, _) = call(
            &mut V16Dialect::new(),
            Mode::Lenient,
            "StatusNotification",
            &payload,
        );
        assert!(r.is_ok(), "{t}");
    }
}

proptest! {
    /// Realistic payloads with one node replaced or removed: whatever the official schema
    /// accepts, strict mode answers — except values it cannot use (ids out of range) and 1.6
    /// sampled values that are text but not the decimal number 1.6 defines.
    #[test]
    fn strict_mode_accepts_what_the_official_schema_accepts(
        which in any::<prop::sample::Index>(),
        pick in 0usize..64,
        with in arb_json(),
        remove in any::<bool>(),
        v201 in any::<bool>(),
    ) {
        let (version, all) = if v201 { (Version::V201, realistic_201()) } else { (Version::V16, realistic_16()) };
        let (action, mut payload) = all[which.index(all.len())].clone();
        mutate(&mut payload, pick, with, remove);
        if let Some(errors) = schema_errors(version, action, false, &payload) {
            let (r, _) = match version {
                Version::V16 => call(&mut V16Dialect::new(), Mode::Strict, action, &payload),
                Version::V201 => call(&mut V201Dialect::new(), Mode::Strict, action, &payload),
            };
            if errors.is_empty() && !r.as_ref().is_err_and(|e| e.description.contains("out of range") || e.description.contains("not a decimal")) {
                prop_assert!(r.is_ok(), "{action} {payload} rejected: {r:?}");
            }
        }
    }
}

#[test]
fn field_bugs_of_other_stacks_are_understood_in_lenient_mode() {
    // Over-length identity strings (1.6 caps chargePointModel at 20 characters).
    let (answer, events) = lenient16(
        "BootNotification",
        json!({"chargePointVendor": "VendorWithAVeryLongNameIndeed",
               "chargePointModel": "ModelNameLongerThanTwentyCharacters",
               "chargePointSerialNumber": "SN-0123456789-0123456789-0123456789"}),
    );
    assert_eq!(answer["status"], "Accepted");
    assert!(events
        .iter()
        .any(|e| matches!(e, ChargerEvent::Booted { model, .. }
        if model == "ModelNameLongerThanTwentyCharacters")));
    // meterValue sent as an object instead of an array; a "+02" zone offset.
    let (answer, events) = lenient16(
        "MeterValues",
        json!({"connectorId": 1,
               "meterValue": {"timestamp": "2024-01-01T14:00:00+02",
                              "sampledValue": [{"value": "230V", "measurand": "Voltage"}]}}),
    );
    assert_eq!(answer, json!({}));
    let got = samples(&events);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp, Some(noon()));
    assert_eq!(got[0].values[0].value, SampleValue::Valid(230.0));
    // Missing optional arrays: a 2.0.1 TransactionEvent without meterValue.
    let (answer, _) = lenient201(
        "TransactionEvent",
        json!({"eventType": "Updated", "timestamp": "2024-01-01T12:00:00Z",
               "triggerReason": "MeterValuePeriodic", "seqNo": 3,
               "transactionInfo": {"transactionId": "T-1"}}),
    );
    assert!(answer.is_object());
}
