//! Station behaviour tables: request ASDUs in, answer ASDUs out.

use super::*;
use crate::asdu::{Cp56Time2a, Qcc, Qos, Sco};

const CA: u16 = 1;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

fn profile() -> LinkProfile {
    LinkProfile {
        params: AsduParams::IEC104,
        common_address: CA,
        max_asdu_len: 249,
        name: "test".into(),
    }
}

/// A station with a float at 1, a counter at 2, a single point at 3, a setpoint at 11 and
/// a single command at 12.
fn station(config: StationConfig) -> Station {
    let mut station = Station::new(config);
    station
        .add_points(
            [
                PointSpec::monitor(1, MonitorKind::Float),
                PointSpec::monitor(2, MonitorKind::Counter),
                PointSpec::monitor(3, MonitorKind::Single),
                PointSpec::command(11, TypeId::C_SE_NC_1),
                PointSpec::command(12, TypeId::C_SC_NA_1),
            ],
            None,
        )
        .unwrap();
    station
}

fn active_session(station: &mut Station) -> SessionId {
    let id = station.open_session(profile());
    station.set_active(id, true);
    drain(station, id);
    id
}

fn drain(station: &mut Station, id: SessionId) -> Vec<Asdu> {
    let mut out = Vec::new();
    while let Some(bytes) = station.poll_asdu(id, t0()) {
        out.push(Asdu::decode(&bytes, AsduParams::IEC104).expect("station sends valid ASDUs"));
    }
    out
}

fn request(type_id: TypeId, cause: Cause, ioa: u32, value: Value) -> Vec<u8> {
    request_to(CA, type_id, cause, ioa, value)
}

fn request_to(ca: u16, type_id: TypeId, cause: Cause, ioa: u32, value: Value) -> Vec<u8> {
    let mut asdu = Asdu::new(type_id, Cot::new(cause), ca);
    asdu.objects.push(InformationObject {
        address: ioa,
        value,
        time: type_id.has_time().then(|| Cp56Time2a::from_datetime(t0())),
    });
    let mut out = Vec::new();
    asdu.encode(AsduParams::IEC104, &mut out).unwrap();
    out
}

fn setpoint(kw: f32, select: bool) -> Vec<u8> {
    request(
        TypeId::C_SE_NC_1,
        Cause::ACTIVATION,
        11,
        Value::SetpointFloat {
            value: kw,
            qos: Qos { ql: 0, select },
        },
    )
}

fn gi() -> Vec<u8> {
    request(
        TypeId::C_IC_NA_1,
        Cause::ACTIVATION,
        0,
        Value::Interrogation(Qoi::STATION),
    )
}

fn causes(asdus: &[Asdu]) -> Vec<(TypeId, u8, bool)> {
    asdus
        .iter()
        .map(|a| (a.type_id, a.cot.cause.0, a.cot.negative))
        .collect()
}

fn float(station: &mut Station, ioa: u32, value: f32) {
    station
        .update(&PointUpdate {
            ioa,
            value: Some(PointValue::Float(value)),
            quality: Quality::GOOD,
            time: t0(),
        })
        .unwrap();
}

fn single(station: &mut Station, ioa: u32, on: bool) {
    station
        .update(&PointUpdate {
            ioa,
            value: Some(PointValue::Single(on)),
            quality: Quality::GOOD,
            time: t0(),
        })
        .unwrap();
}

#[test]
fn end_of_initialisation_reaches_the_first_master() {
    let mut station = station(StationConfig::default());
    let id = station.open_session(profile());
    station.set_active(id, true);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::M_EI_NA_1, 4, false)]
    );
}

#[test]
fn general_interrogation_answers_monitor_points_but_not_counters() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    assert_eq!(station.handle_asdu(id, Instant::now(), &gi()), None);
    let answer = drain(&mut station, id);
    assert_eq!(
        causes(&answer),
        vec![
            (TypeId::C_IC_NA_1, 7, false),
            (TypeId::M_ME_TF_1, 20, false),
            (TypeId::M_SP_TB_1, 20, false),
            (TypeId::C_IC_NA_1, 10, false),
        ]
    );
    let addresses: Vec<u32> = answer[1..3]
        .iter()
        .flat_map(|a| a.objects.iter().map(|o| o.address))
        .collect();
    assert_eq!(addresses, vec![1, 3]);
    // Never had a value: IV.
    assert!(matches!(
        answer[1].objects[0].value,
        Value::ShortFloat {
            quality: Quality { invalid: true, .. },
            ..
        }
    ));
}

#[test]
fn general_interrogation_without_time_uses_the_plain_types() {
    let mut station = station(StationConfig {
        gi_with_time: false,
        ..StationConfig::default()
    });
    let id = active_session(&mut station);
    station.handle_asdu(id, Instant::now(), &gi());
    let types: Vec<TypeId> = drain(&mut station, id).iter().map(|a| a.type_id).collect();
    assert_eq!(
        types,
        vec![
            TypeId::C_IC_NA_1,
            TypeId::M_ME_NC_1,
            TypeId::M_SP_NA_1,
            TypeId::C_IC_NA_1
        ]
    );
}

#[test]
fn a_large_image_is_split_into_asdus_that_fit() {
    let mut station = Station::new(StationConfig::default());
    station
        .add_points(
            (100..400).map(|ioa| PointSpec::monitor(ioa, MonitorKind::Float)),
            None,
        )
        .unwrap();
    let id = active_session(&mut station);
    station.handle_asdu(id, Instant::now(), &gi());
    let mut count = 0;
    while let Some(bytes) = station.poll_asdu(id, t0()) {
        assert!(bytes.len() <= 249);
        let asdu = Asdu::decode(&bytes, AsduParams::IEC104).unwrap();
        if asdu.type_id == TypeId::M_ME_TF_1 {
            count += asdu.objects.len();
        }
    }
    assert_eq!(count, 300);
}

#[test]
fn counter_interrogation_with_freeze_advances_the_sequence_number() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    station
        .update(&PointUpdate {
            ioa: 2,
            value: Some(PointValue::Counter(12_345)),
            quality: Quality::GOOD,
            time: t0(),
        })
        .unwrap();
    drain(&mut station, id);
    let ci = request(
        TypeId::C_CI_NA_1,
        Cause::ACTIVATION,
        0,
        Value::CounterInterrogation(Qcc {
            request: 5,
            freeze: Freeze::Freeze,
        }),
    );
    station.handle_asdu(id, Instant::now(), &ci);
    let answer = drain(&mut station, id);
    assert_eq!(
        causes(&answer),
        vec![
            (TypeId::C_CI_NA_1, 7, false),
            (TypeId::M_IT_TB_1, 37, false),
            (TypeId::C_CI_NA_1, 10, false),
        ]
    );
    match answer[1].objects[0].value {
        Value::IntegratedTotal(bcr) => {
            assert_eq!(bcr.value, 12_345);
            assert_eq!(bcr.sequence, 1);
            assert!(!bcr.invalid);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_bare_counter_reset_is_refused() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let reset = request(
        TypeId::C_CI_NA_1,
        Cause::ACTIVATION,
        0,
        Value::CounterInterrogation(Qcc {
            request: 5,
            freeze: Freeze::Reset,
        }),
    );
    station.handle_asdu(id, Instant::now(), &reset);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_CI_NA_1, 7, true)]
    );
}

#[test]
fn events_overtake_queued_measurements() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    float(&mut station, 1, 1.0);
    single(&mut station, 3, true);
    let order: Vec<TypeId> = drain(&mut station, id).iter().map(|a| a.type_id).collect();
    assert_eq!(order, vec![TypeId::M_SP_TB_1, TypeId::M_ME_TF_1]);
}

#[test]
fn measurements_coalesce_but_events_do_not() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    for value in [1.0, 2.0, 3.0] {
        float(&mut station, 1, value);
    }
    for on in [true, false, true] {
        single(&mut station, 3, on);
    }
    let answer = drain(&mut station, id);
    let events: Vec<bool> = answer
        .iter()
        .filter_map(|a| match a.objects[0].value {
            Value::SinglePoint { on, .. } => Some(on),
            _ => None,
        })
        .collect();
    assert_eq!(events, vec![true, false, true]);
    let floats: Vec<f32> = answer
        .iter()
        .filter_map(|a| match a.objects[0].value {
            Value::ShortFloat { value, .. } => Some(value),
            _ => None,
        })
        .collect();
    assert_eq!(floats, vec![3.0]);
    assert!(answer.iter().all(|a| a.cot.cause == Cause::SPONTANEOUS));
    assert!(answer.iter().all(|a| a.objects[0].time.is_some()));
}

#[test]
fn events_wait_for_a_master_and_arrive_in_order() {
    let mut station = station(StationConfig::default());
    for on in [true, false, true] {
        single(&mut station, 3, on);
    }
    float(&mut station, 1, 5.0);
    let id = station.open_session(profile());
    assert!(drain(&mut station, id).is_empty(), "nothing before STARTDT");
    station.set_active(id, true);
    let answer = drain(&mut station, id);
    assert_eq!(answer[0].type_id, TypeId::M_EI_NA_1);
    let events: Vec<bool> = answer[1..]
        .iter()
        .map(|a| matches!(a.objects[0].value, Value::SinglePoint { on: true, .. }))
        .collect();
    assert_eq!(
        events,
        vec![true, false, true],
        "measurements are not buffered"
    );
}

#[test]
fn the_standby_buffer_drops_the_oldest_and_counts() {
    let mut station = station(StationConfig {
        event_capacity: 2,
        ..StationConfig::default()
    });
    for on in [true, false, true] {
        single(&mut station, 3, on);
    }
    // End of initialisation plus three events into a buffer of two.
    assert_eq!(station.stats().events_dropped, 2);
}

#[test]
fn unacknowledged_events_of_a_lost_connection_go_to_the_next_master() {
    let mut station = station(StationConfig::default());
    let first = active_session(&mut station);
    single(&mut station, 3, true);
    let sent = station.poll_asdu(first, t0()).unwrap();
    station.close_session(first, vec![sent]);
    let second = station.open_session(profile());
    station.set_active(second, true);
    let answer = drain(&mut station, second);
    assert_eq!(causes(&answer), vec![(TypeId::M_SP_TB_1, 3, false)]);
}

#[test]
fn every_active_master_gets_the_data_per_connection() {
    let mut station = station(StationConfig::default());
    let a = active_session(&mut station);
    let b = active_session(&mut station);
    single(&mut station, 3, true);
    assert_eq!(drain(&mut station, a).len(), 1);
    assert_eq!(drain(&mut station, b).len(), 1);
}

#[test]
fn only_the_latest_master_gets_data_in_a_redundancy_group() {
    let mut station = station(StationConfig {
        redundancy: Redundancy::SingleGroup,
        ..StationConfig::default()
    });
    let a = active_session(&mut station);
    single(&mut station, 3, true);
    let b = station.open_session(profile());
    station.set_active(b, true);
    single(&mut station, 3, false);
    assert!(drain(&mut station, a).is_empty());
    let answer = drain(&mut station, b);
    assert_eq!(
        answer.len(),
        2,
        "the event queued for a is handed over to b"
    );
}

#[test]
fn a_direct_execute_goes_to_the_application_unselected() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let Some(ToApplication::Command(command)) =
        station.handle_asdu(id, Instant::now(), &setpoint(10.0, false))
    else {
        panic!("expected a command");
    };
    assert!(!command.selected);
    assert_eq!(command.action, CommandAction::SetpointFloat(10.0));
    assert!(
        drain(&mut station, id).is_empty(),
        "no confirmation before the outcome"
    );
    station.complete_command(command.id, &CommandOutcome::Accepted);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![
            (TypeId::C_SE_NC_1, 7, false),
            (TypeId::C_SE_NC_1, 10, false)
        ]
    );
}

#[test]
fn select_then_execute_is_marked_selected() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let now = Instant::now();
    assert_eq!(station.handle_asdu(id, now, &setpoint(100.0, true)), None);
    let confirm = drain(&mut station, id);
    assert_eq!(causes(&confirm), vec![(TypeId::C_SE_NC_1, 7, false)]);
    assert!(matches!(
        confirm[0].objects[0].value,
        Value::SetpointFloat {
            qos: Qos { select: true, .. },
            ..
        }
    ));
    let Some(ToApplication::Command(command)) =
        station.handle_asdu(id, now, &setpoint(100.0, false))
    else {
        panic!("expected a command");
    };
    assert!(command.selected);
    station.complete_command(command.id, &CommandOutcome::Rejected("no".into()));
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_SE_NC_1, 7, true)]
    );
}

#[test]
fn an_execute_with_another_value_than_selected_is_refused() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let now = Instant::now();
    station.handle_asdu(id, now, &setpoint(100.0, true));
    drain(&mut station, id);
    assert_eq!(station.handle_asdu(id, now, &setpoint(90.0, false)), None);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_SE_NC_1, 7, true)]
    );
}

#[test]
fn an_execute_after_the_select_timeout_is_refused() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let now = Instant::now();
    station.handle_asdu(id, now, &setpoint(100.0, true));
    drain(&mut station, id);
    let late = now + Duration::from_secs(11);
    assert_eq!(station.handle_asdu(id, late, &setpoint(100.0, false)), None);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_SE_NC_1, 7, true)]
    );
}

#[test]
fn a_deactivation_cancels_the_selection() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let now = Instant::now();
    station.handle_asdu(id, now, &setpoint(100.0, true));
    drain(&mut station, id);
    let deactivate = request(
        TypeId::C_SE_NC_1,
        Cause::DEACTIVATION,
        11,
        Value::SetpointFloat {
            value: 100.0,
            qos: Qos {
                ql: 0,
                select: false,
            },
        },
    );
    station.handle_asdu(id, now, &deactivate);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_SE_NC_1, 9, false)]
    );
    let Some(ToApplication::Command(command)) =
        station.handle_asdu(id, now, &setpoint(100.0, false))
    else {
        panic!("expected a command");
    };
    assert!(!command.selected);
}

#[test]
fn negative_confirmations_name_what_is_unknown() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let now = Instant::now();
    let sco = Value::SingleCommand(Sco {
        on: true,
        qu: 0,
        select: false,
    });
    station.handle_asdu(
        id,
        now,
        &request(TypeId::C_SC_NA_1, Cause::ACTIVATION, 5000, sco),
    );
    station.handle_asdu(
        id,
        now,
        &request_to(7, TypeId::C_SC_NA_1, Cause::ACTIVATION, 12, sco),
    );
    station.handle_asdu(
        id,
        now,
        &request(TypeId::C_SC_NA_1, Cause::SPONTANEOUS, 12, sco),
    );
    // A single command to the setpoint's address: no such object of that type.
    station.handle_asdu(
        id,
        now,
        &request(TypeId::C_SC_NA_1, Cause::ACTIVATION, 11, sco),
    );
    let answer = drain(&mut station, id);
    assert_eq!(
        answer
            .iter()
            .map(|a| (a.cot.cause.0, a.cot.negative))
            .collect::<Vec<_>>(),
        vec![(47, true), (46, true), (45, true), (47, true)]
    );
}

#[test]
fn a_command_type_no_point_accepts_is_an_unknown_type() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let bitstring = request(
        TypeId::C_BO_NA_1,
        Cause::ACTIVATION,
        12,
        Value::BitstringCommand { bits: 1 },
    );
    station.handle_asdu(id, Instant::now(), &bitstring);
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_BO_NA_1, 44, true)]
    );
}

#[test]
fn an_unknown_type_is_mirrored_with_cause_44() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let mut unknown_type = gi();
    unknown_type[0] = 2;
    station.handle_asdu(id, Instant::now(), &unknown_type);
    let bytes = station.poll_asdu(id, t0()).expect("an answer");
    let header = Header::decode(&bytes, AsduParams::IEC104).unwrap();
    assert_eq!(header.type_id, 2);
    assert_eq!(header.cot.cause, Cause::UNKNOWN_TYPE);
    assert!(header.cot.negative);
}

#[test]
fn clock_sync_is_confirmed_and_reported() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let sync = request(
        TypeId::C_CS_NA_1,
        Cause::ACTIVATION,
        0,
        Value::ClockSync(Cp56Time2a::from_datetime(t0())),
    );
    let reported = station.handle_asdu(id, Instant::now(), &sync);
    assert_eq!(
        reported,
        Some(ToApplication::ClockSync {
            session: id,
            time: Some(t0())
        })
    );
    assert_eq!(
        causes(&drain(&mut station, id)),
        vec![(TypeId::C_CS_NA_1, 7, false)]
    );
}

#[test]
fn a_read_answers_from_the_image_with_cause_request() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    float(&mut station, 1, 42.0);
    drain(&mut station, id);
    let read = request(TypeId::C_RD_NA_1, Cause::REQUEST, 1, Value::Read);
    station.handle_asdu(id, Instant::now(), &read);
    let answer = drain(&mut station, id);
    assert_eq!(causes(&answer), vec![(TypeId::M_ME_TF_1, 5, false)]);
    assert!(matches!(answer[0].objects[0].value, Value::ShortFloat { value, .. } if value == 42.0));
}

#[test]
fn a_read_through_point_asks_the_application_and_marks_a_failed_refresh_not_topical() {
    let mut station = Station::new(StationConfig::default());
    let mut spec = PointSpec::monitor(3, MonitorKind::Float);
    spec.read_through = true;
    station.add_points([spec], None).unwrap();
    let id = active_session(&mut station);
    let read = request(TypeId::C_RD_NA_1, Cause::REQUEST, 3, Value::Read);
    let Some(ToApplication::Command(command)) = station.handle_asdu(id, Instant::now(), &read)
    else {
        panic!("expected a read request");
    };
    assert_eq!(command.action, CommandAction::Read);
    station.complete_command(command.id, &CommandOutcome::Rejected("timeout".into()));
    let answer = drain(&mut station, id);
    assert!(matches!(
        answer[0].objects[0].value,
        Value::ShortFloat {
            quality: Quality {
                not_topical: true,
                ..
            },
            ..
        }
    ));
}

fn drain_class(station: &mut Station, id: SessionId, class: DataClass) -> Vec<Asdu> {
    let mut out = Vec::new();
    while let Some(bytes) = station.poll_class(id, class, t0()) {
        out.push(Asdu::decode(&bytes, AsduParams::IEC104).expect("station sends valid ASDUs"));
    }
    out
}

#[test]
fn a_polled_line_gets_events_and_answers_as_class_1_and_measurements_as_class_2() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    assert!(!station.class1_pending(id));
    float(&mut station, 1, 14.4);
    single(&mut station, 3, true);
    assert!(station.class1_pending(id), "an event waits: ACD");
    let class1 = drain_class(&mut station, id, DataClass::Class1);
    assert_eq!(causes(&class1), vec![(TypeId::M_SP_TB_1, 3, false)]);
    assert!(!station.class1_pending(id));
    let class2 = drain_class(&mut station, id, DataClass::Class2);
    assert_eq!(causes(&class2), vec![(TypeId::M_ME_TF_1, 3, false)]);
    assert_eq!(station.handle_asdu(id, Instant::now(), &gi()), None);
    assert!(
        station.class1_pending(id),
        "the GI confirmation and answers are class 1"
    );
    let answers = drain_class(&mut station, id, DataClass::Class1);
    assert_eq!(answers.first().map(|a| a.cot.cause.0), Some(7));
    assert_eq!(answers.last().map(|a| a.cot.cause.0), Some(10));
    assert!(drain_class(&mut station, id, DataClass::Class2).is_empty());
}

#[test]
fn a_polled_line_counts_as_scada_only_while_its_master_polls() {
    let mut station = station(StationConfig::default());
    let id = active_session(&mut station);
    let now = Instant::now();
    let window = Duration::from_secs(2);
    assert!(
        station.scada_present(now, window),
        "a data-transfer link counts while active"
    );
    station.note_polled(id, now);
    assert!(station.scada_present(now + Duration::from_secs(1), window));
    assert!(!station.scada_present(now + Duration::from_secs(3), window));
}
