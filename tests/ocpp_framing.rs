//! Tests of the sans-IO OCPP-J core: framing (OCPP-J 1.6 §4 "RPC framework", OCPP 2.0.1
//! Part 4 §4), CSMS→charger CALL tracking (one outstanding CALL, bounded queue, timeout) and
//! the per-connection session driven by a tiny test dialect. Property tests feed arbitrary
//! text to the parser and the session: nothing panics, nothing closes.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use ocpp809::mapping::charger::{
    ChargerCommand, ChargerEvent, ChargerRequest, CoercionKind, CommandResult, MeterSample,
    SampleContext,
};
use ocpp809::ocpp::calls::{CallTracker, QueueFull, Response};
use ocpp809::ocpp::framing::{
    call, call_error, call_result, parse, Frame, FrameError, MAX_FRAME_BYTES,
};
use ocpp809::ocpp::session::{Session, SessionConfig};
use ocpp809::ocpp::{CallContext, CallError, Dialect, ErrorCode, Mode, Version};
use proptest::prelude::*;
use serde_json::{json, Value};

const BOTH: [Version; 2] = [Version::V16, Version::V201];

// ---------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------

#[test]
fn writes_the_three_frame_types() {
    assert_eq!(
        call(
            "19223201",
            "BootNotification",
            &json!({"chargePointVendor": "X"})
        ),
        r#"[2,"19223201","BootNotification",{"chargePointVendor":"X"}]"#
    );
    assert_eq!(
        call_result("19223201", &json!({"status": "Accepted"})),
        r#"[3,"19223201",{"status":"Accepted"}]"#
    );
    let e = CallError::new(ErrorCode::FormatViolation, "bad \"payload\"");
    assert_eq!(
        call_error("7", &e, Version::V16),
        r#"[4,"7","FormationViolation","bad \"payload\"",{}]"#
    );
    assert_eq!(
        call_error("7", &e, Version::V201),
        r#"[4,"7","FormatViolation","bad \"payload\"",{}]"#
    );
}

#[test]
fn round_trips() {
    let frames = [
        Frame::Call {
            id: "a\"b\\c\u{1}é".into(),
            action: "MeterValues".into(),
            payload: json!({"connectorId": 1, "meterValue": [{"sampledValue": [{"value": "1.5"}]}]}),
        },
        Frame::CallResult {
            id: "uuid-0001".into(),
            payload: json!({}),
        },
        Frame::CallError {
            id: "x".into(),
            code: "NotImplemented".into(),
            description: "no".into(),
            details: json!({"k": [1, 2]}),
        },
    ];
    for version in BOTH {
        for frame in &frames {
            let text = frame.encode();
            assert_eq!(&parse(&text, version).unwrap(), frame, "{text}");
        }
    }
}

#[test]
fn whitespace_between_elements_is_fine() {
    let frame = parse("  [ 2 , \"1\" ,\n\"Heartbeat\" , { } ]  ", Version::V201).unwrap();
    assert_eq!(
        frame,
        Frame::Call {
            id: "1".into(),
            action: "Heartbeat".into(),
            payload: json!({}),
        }
    );
}

/// Every malformed-input class of the table in `framing`'s module doc, with the exact
/// CALLERROR for 1.6 and 2.0.1.
#[test]
fn malformed_frames_answer_exactly() {
    let long_id = "x".repeat(37);
    let cases: Vec<(String, &str, &str)> = vec![
        // 2: not JSON.
        (
            r#"[2,"1","Heartbeat""#.into(),
            r#"[4,"-1","FormationViolation","message is not valid JSON",{}]"#,
            r#"[4,"-1","FormatViolation","message is not valid JSON",{}]"#,
        ),
        (
            "".into(),
            r#"[4,"-1","FormationViolation","message is not valid JSON",{}]"#,
            r#"[4,"-1","FormatViolation","message is not valid JSON",{}]"#,
        ),
        // 3: not an array.
        (
            r#"{"id":"1"}"#.into(),
            r#"[4,"-1","FormationViolation","message is not a JSON array",{}]"#,
            r#"[4,"-1","FormatViolation","message is not a JSON array",{}]"#,
        ),
        // 4: too short.
        (
            "[]".into(),
            r#"[4,"-1","FormationViolation","message has 0 elements, an RPC frame has at least 3",{}]"#,
            r#"[4,"-1","FormatViolation","message has 0 elements, an RPC frame has at least 3",{}]"#,
        ),
        (
            r#"[2,"5"]"#.into(),
            r#"[4,"5","FormationViolation","message has 2 elements, an RPC frame has at least 3",{}]"#,
            r#"[4,"5","FormatViolation","message has 2 elements, an RPC frame has at least 3",{}]"#,
        ),
        // 5: MessageTypeId not an integer.
        (
            r#"["2","5","Heartbeat",{}]"#.into(),
            r#"[4,"5","FormationViolation","MessageTypeId is not an integer",{}]"#,
            r#"[4,"5","RpcFrameworkError","MessageTypeId is not an integer",{}]"#,
        ),
        // 6: MessageId not a string.
        (
            r#"[2,5,"Heartbeat",{}]"#.into(),
            r#"[4,"-1","FormationViolation","MessageId is not a string",{}]"#,
            r#"[4,"-1","RpcFrameworkError","MessageId is not a string",{}]"#,
        ),
        // 8: unknown MessageTypeId.
        (
            r#"[5,"5","Heartbeat",{}]"#.into(),
            r#"[4,"5","ProtocolError","MessageTypeId 5 is not supported",{}]"#,
            r#"[4,"5","MessageTypeNotSupported","MessageTypeId 5 is not supported",{}]"#,
        ),
        // 9: too few elements for the type.
        (
            r#"[2,"5","Heartbeat"]"#.into(),
            r#"[4,"5","ProtocolError","CALL has 4 elements, got 3",{}]"#,
            r#"[4,"5","ProtocolError","CALL has 4 elements, got 3",{}]"#,
        ),
        // 10: too many.
        (
            r#"[2,"5","Heartbeat",{},{}]"#.into(),
            r#"[4,"5","FormationViolation","CALL has 4 elements, got 5",{}]"#,
            r#"[4,"5","ProtocolError","CALL has 4 elements, got 5",{}]"#,
        ),
        // 11: Action not a string.
        (
            r#"[2,"5",7,{}]"#.into(),
            r#"[4,"5","FormationViolation","Action is not a string",{}]"#,
            r#"[4,"5","RpcFrameworkError","Action is not a string",{}]"#,
        ),
        // 12: payload not an object.
        (
            r#"[2,"5","Heartbeat",[]]"#.into(),
            r#"[4,"5","FormationViolation","payload is not a JSON object",{}]"#,
            r#"[4,"5","FormatViolation","payload is not a JSON object",{}]"#,
        ),
        (
            r#"[2,"5","Heartbeat",null]"#.into(),
            r#"[4,"5","FormationViolation","payload is not a JSON object",{}]"#,
            r#"[4,"5","FormatViolation","payload is not a JSON object",{}]"#,
        ),
    ];
    for (text, v16, v201) in &cases {
        for (version, expected) in [(Version::V16, v16), (Version::V201, v201)] {
            let e = parse(text, version).expect_err(text);
            assert_eq!(&e.to_call_error(version), expected, "{text} on {version:?}");
        }
    }

    // 7: MessageId longer than 36 characters: 1.6 lenient, 2.0.1 refuses.
    let text = format!(r#"[2,"{long_id}","Heartbeat",{{}}]"#);
    assert!(matches!(parse(&text, Version::V16), Ok(Frame::Call { .. })));
    assert_eq!(
        parse(&text, Version::V201)
            .unwrap_err()
            .to_call_error(Version::V201),
        format!(
            r#"[4,"{long_id}","RpcFrameworkError","MessageId is longer than 36 characters",{{}}]"#
        )
    );

    // 1: too large.
    let big = format!(
        r#"[2,"1","DataTransfer",{{"data":"{}"}}]"#,
        "a".repeat(MAX_FRAME_BYTES)
    );
    for version in BOTH {
        let e = parse(&big, version).unwrap_err();
        assert_eq!(e.id, "-1");
        assert_eq!(e.error.code, ErrorCode::FormatViolation);
    }
    let fits = format!(
        r#"[2,"1","DataTransfer",{{"data":"{}"}}]"#,
        "a".repeat(MAX_FRAME_BYTES - 40)
    );
    assert!(fits.len() <= MAX_FRAME_BYTES);
    assert!(parse(&fits, Version::V16).is_ok());
}

#[test]
fn responses_and_their_refusals() {
    // CALLERROR without ErrorDetails is accepted (lenient), details of any type are kept.
    assert_eq!(
        parse(r#"[4,"9","GenericError","boom"]"#, Version::V16).unwrap(),
        Frame::CallError {
            id: "9".into(),
            code: "GenericError".into(),
            description: "boom".into(),
            details: json!({}),
        }
    );
    assert!(parse(r#"[4,"9","GenericError","boom",null]"#, Version::V201).is_ok());
    let refused: [(&str, ErrorCode); 4] = [
        (r#"[3,"9",[]]"#, ErrorCode::FormatViolation),
        (r#"[3,"9",{},{}]"#, ErrorCode::ProtocolError),
        (r#"[4,"9",1,"x",{}]"#, ErrorCode::FormatViolation),
        (r#"[4,"9","GenericError"]"#, ErrorCode::ProtocolError),
    ];
    for (text, code) in refused {
        let e: FrameError = parse(text, Version::V201).unwrap_err();
        assert_eq!((e.id.as_str(), e.error.code), ("9", code), "{text}");
        assert!(e.is_response(), "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// CallTracker
// ---------------------------------------------------------------------------------------

fn call_id(text: &str) -> (String, String) {
    match parse(text, Version::V201) {
        Ok(Frame::Call { id, action, .. }) => (id, action),
        other => panic!("not a CALL: {text}: {other:?}"),
    }
}

#[test]
fn tracker_one_at_a_time_in_order() {
    let t0 = Instant::now();
    let mut t = CallTracker::new(Duration::from_secs(30), 4);
    assert_eq!(t.poll_transmit(t0), None);
    t.enqueue(1, "Reset", json!({"type": "Soft"})).unwrap();
    t.enqueue(2, "TriggerMessage", json!({})).unwrap();
    t.enqueue(3, "ClearChargingProfile", json!({})).unwrap();

    let (id1, action) = call_id(&t.poll_transmit(t0).unwrap());
    assert_eq!(action, "Reset");
    assert_eq!(
        t.poll_transmit(t0),
        None,
        "second CALL before the first answer"
    );
    // A wrong id answers nothing and changes nothing.
    assert_eq!(t.handle_response("nope", Response::Result(json!({}))), None);
    assert_eq!(t.poll_transmit(t0), None);

    let answered = t.handle_response(&id1, Response::Result(json!({"status": "Accepted"})));
    assert_eq!(
        answered,
        Some((1, "Reset", Response::Result(json!({"status": "Accepted"}))))
    );
    // The same answer twice matches only once.
    assert_eq!(t.handle_response(&id1, Response::Result(json!({}))), None);

    let (id2, action) = call_id(&t.poll_transmit(t0).unwrap());
    assert_eq!(action, "TriggerMessage");
    assert_ne!(id1, id2);
    let error = Response::Error {
        code: "NotSupported".into(),
        description: "".into(),
    };
    assert_eq!(
        t.handle_response(&id2, error.clone()),
        Some((2, "TriggerMessage", error))
    );
    let (_, action) = call_id(&t.poll_transmit(t0).unwrap());
    assert_eq!(action, "ClearChargingProfile");
}

#[test]
fn tracker_timeout_then_next() {
    let t0 = Instant::now();
    let timeout = Duration::from_secs(10);
    let mut t = CallTracker::new(timeout, 4);
    t.enqueue(1, "Reset", json!({})).unwrap();
    t.enqueue(2, "Reset", json!({})).unwrap();
    assert_eq!(t.poll_timeout(), None);
    let (id1, _) = call_id(&t.poll_transmit(t0).unwrap());
    assert_eq!(t.poll_timeout(), Some(t0 + timeout));
    assert_eq!(t.handle_timeout(t0 + Duration::from_secs(9)), None);
    assert_eq!(t.handle_timeout(t0 + timeout), Some(1));
    assert_eq!(t.handle_timeout(t0 + timeout), None);
    // A late answer to the timed-out CALL matches nothing.
    assert_eq!(t.handle_response(&id1, Response::Result(json!({}))), None);
    let t1 = t0 + timeout;
    assert!(t.poll_transmit(t1).is_some());
    assert_eq!(t.poll_timeout(), Some(t1 + timeout));
}

#[test]
fn tracker_queue_full_and_drain() {
    let t0 = Instant::now();
    let mut t = CallTracker::new(Duration::from_secs(10), 2);
    // Capacity counts the CALLs waiting behind the one in flight.
    t.enqueue(1, "Reset", json!({})).unwrap();
    t.enqueue(2, "Reset", json!({})).unwrap();
    t.enqueue(3, "Reset", json!({})).unwrap();
    assert_eq!(
        t.enqueue(4, "Reset", json!({})),
        Err(QueueFull { capacity: 2 })
    );
    t.poll_transmit(t0).unwrap();
    assert!(t.enqueue(5, "Reset", json!({})).is_err());
    assert_eq!(t.drain(), vec![1, 2, 3]);
    assert!(t.is_idle());
    assert_eq!(t.poll_transmit(t0), None);
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.drain(), Vec::<u64>::new());
    t.enqueue(6, "Reset", json!({})).unwrap();
}

// ---------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------

/// A tiny dialect: answers Heartbeat, MeterValues (one Meter event) and StartTransaction
/// (allocating a transaction id); encodes Reset (and anything else as DataTransfer).
struct TestDialect(Version);

impl Dialect for TestDialect {
    fn version(&self) -> Version {
        self.0
    }

    fn handle_call(
        &mut self,
        ctx: &mut CallContext<'_>,
        action: &str,
        payload: &Value,
    ) -> Result<Value, CallError> {
        match action {
            "Heartbeat" => Ok(json!({"currentTime": ctx.now.to_rfc3339()})),
            "MeterValues" => {
                let connector = payload
                    .get("connectorId")
                    .and_then(Value::as_u64)
                    .and_then(|c| u8::try_from(c).ok())
                    .ok_or_else(|| {
                        CallError::new(ErrorCode::OccurrenceConstraintViolation, "connectorId")
                    })?;
                ctx.events.push(ChargerEvent::Meter {
                    charger: ctx.charger.clone(),
                    sample: MeterSample {
                        connector,
                        timestamp: None,
                        context: SampleContext::Periodic,
                        transaction_id: None,
                        replayed: false,
                        values: Vec::new(),
                    },
                });
                Ok(json!({}))
            }
            "StartTransaction" => Ok(json!({
                "transactionId": (ctx.next_transaction_id)(),
                "idTagInfo": {"status": "Accepted"},
            })),
            _ => Err(CallError::new(
                ErrorCode::NotImplemented,
                format!("{action} is not implemented"),
            )),
        }
    }

    fn encode_command(&self, command: &ChargerCommand) -> (&'static str, Value) {
        match command {
            ChargerCommand::Reset { hard } => (
                "Reset",
                json!({"type": if *hard { "Hard" } else { "Soft" }}),
            ),
            _ => ("DataTransfer", json!({"vendorId": "test"})),
        }
    }

    fn decode_result(&self, _command: &ChargerCommand, payload: &Value) -> CommandResult {
        match payload.get("status").and_then(Value::as_str) {
            Some("Accepted") => CommandResult::Accepted,
            Some(other) => CommandResult::Rejected(other.to_owned()),
            None => CommandResult::Rejected("no status".to_owned()),
        }
    }
}

const CP: &str = "CP-1";

fn wall() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn session(version: Version, t0: Instant) -> Session {
    let config = SessionConfig {
        mode: Mode::Lenient,
        heartbeat_interval_s: 300,
        call_timeout: Duration::from_secs(30),
        queue_capacity: 8,
    };
    let mut s = Session::new(CP.to_owned(), Box::new(TestDialect(version)), config, t0);
    assert_eq!(
        s.poll_event(),
        Some(ChargerEvent::Connected {
            charger: CP.to_owned()
        })
    );
    s
}

fn reset(id: u64) -> ChargerRequest {
    ChargerRequest {
        id,
        charger: CP.to_owned(),
        command: ChargerCommand::Reset {
            hard: id.is_multiple_of(2),
        },
    }
}

fn outgoing(s: &mut Session) -> Vec<String> {
    std::iter::from_fn(|| s.poll_outgoing()).collect()
}

fn events(s: &mut Session) -> Vec<ChargerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn text(s: &mut Session, now: Instant, frame: &str) {
    let mut tx = 100;
    s.handle_text(now, wall(), frame, &mut || {
        tx += 1;
        tx
    });
}

fn finished(request: u64, result: CommandResult) -> ChargerEvent {
    ChargerEvent::CommandFinished {
        charger: CP.to_owned(),
        request,
        result,
    }
}

#[test]
fn session_answers_charger_calls() {
    let t0 = Instant::now();
    for version in BOTH {
        let mut s = session(version, t0);
        text(&mut s, t0, r#"[2,"h1","Heartbeat",{}]"#);
        text(
            &mut s,
            t0,
            r#"[2,"s1","StartTransaction",{"connectorId":1}]"#,
        );
        text(&mut s, t0, r#"[2,"u1","Authorize",{}]"#);
        text(&mut s, t0, r#"[2,"1","Heartbeat""#);
        text(&mut s, t0, r#"[3,"nobody",{}]"#);
        let fv = ErrorCode::FormatViolation.wire_name(version);
        assert_eq!(
            outgoing(&mut s),
            vec![
                r#"[3,"h1",{"currentTime":"2024-05-01T12:00:00+00:00"}]"#.to_owned(),
                r#"[3,"s1",{"idTagInfo":{"status":"Accepted"},"transactionId":101}]"#.to_owned(),
                r#"[4,"u1","NotImplemented","Authorize is not implemented",{}]"#.to_owned(),
                format!(r#"[4,"-1","{fv}","message is not valid JSON",{{}}]"#),
            ]
        );
        assert_eq!(events(&mut s), vec![]);
        let stats = s.stats();
        assert_eq!(stats.frames_in, 5);
        assert_eq!(stats.calls_in, 3);
        assert_eq!(stats.results_sent, 2);
        assert_eq!(stats.errors_sent, 2);
        assert_eq!(stats.malformed_frames, 1);
        assert_eq!(stats.responses_unmatched, 1);
        assert!(!s.is_closed());
    }
}

#[test]
fn session_no_second_call_before_the_first_answer() {
    let t0 = Instant::now();
    let mut s = session(Version::V16, t0);
    s.send_command(t0, reset(1));
    s.send_command(t0, reset(2));
    s.send_command(t0, reset(3));
    let sent = outgoing(&mut s);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (id1, action) = call_id(&sent[0]);
    assert_eq!(action, "Reset");
    assert_eq!(sent[0], call(&id1, "Reset", &json!({"type": "Soft"})));

    // An answer with another id does not release the next CALL.
    text(&mut s, t0, r#"[3,"other",{"status":"Accepted"}]"#);
    assert_eq!(outgoing(&mut s), Vec::<String>::new());
    assert_eq!(events(&mut s), vec![]);

    text(
        &mut s,
        t0,
        &call_result(&id1, &json!({"status": "Accepted"})),
    );
    assert_eq!(events(&mut s), vec![finished(1, CommandResult::Accepted)]);
    let sent = outgoing(&mut s);
    assert_eq!(sent.len(), 1);
    let (id2, _) = call_id(&sent[0]);
    assert_eq!(sent[0], call(&id2, "Reset", &json!({"type": "Hard"})));

    // A CALLERROR finishes the command with CallError and releases the next.
    text(
        &mut s,
        t0,
        &format!(r#"[4,"{id2}","NotSupported","no resets",{{}}]"#),
    );
    assert_eq!(
        events(&mut s),
        vec![finished(
            2,
            CommandResult::CallError {
                code: "NotSupported".into(),
                description: "no resets".into()
            }
        )]
    );
    let sent = outgoing(&mut s);
    assert_eq!(sent.len(), 1);
    let (id3, _) = call_id(&sent[0]);

    // A malformed answer to the outstanding CALL finishes it (no CALLERROR is sent back).
    text(&mut s, t0, &format!(r#"[3,"{id3}","oops"]"#));
    assert_eq!(
        events(&mut s),
        vec![finished(
            3,
            CommandResult::CallError {
                code: "FormationViolation".into(),
                description: "payload is not a JSON object".into()
            }
        )]
    );
    assert_eq!(outgoing(&mut s), Vec::<String>::new());
    assert_eq!(s.poll_timeout(), None);
    let stats = s.stats();
    assert_eq!(stats.calls_out, 3);
    assert_eq!(stats.responses_matched, 3);
    assert_eq!(stats.responses_unmatched, 1);
    assert_eq!(stats.errors_sent, 0);
}

#[test]
fn session_answers_charger_calls_while_its_own_call_waits() {
    let t0 = Instant::now();
    let mut s = session(Version::V201, t0);
    s.send_command(t0, reset(1));
    s.send_command(t0, reset(2));
    let sent = outgoing(&mut s);
    assert_eq!(sent.len(), 1);
    let (id1, _) = call_id(&sent[0]);

    // A flood of MeterValues while our CALL is outstanding: every one answered at once.
    for i in 0..50 {
        let t = t0 + Duration::from_millis(i * 100);
        text(
            &mut s,
            t,
            &format!(r#"[2,"mv{i}","MeterValues",{{"connectorId":1}}]"#),
        );
        assert_eq!(outgoing(&mut s), vec![format!(r#"[3,"mv{i}",{{}}]"#)]);
        assert!(matches!(
            events(&mut s).as_slice(),
            [ChargerEvent::Meter { sample, .. }] if sample.connector == 1
        ));
    }
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));

    text(
        &mut s,
        t0,
        &call_result(&id1, &json!({"status": "Rejected"})),
    );
    assert_eq!(
        events(&mut s),
        vec![finished(1, CommandResult::Rejected("Rejected".into()))]
    );
    assert_eq!(outgoing(&mut s).len(), 1);
}

#[test]
fn session_timeout_sends_the_next_call() {
    let t0 = Instant::now();
    let mut s = session(Version::V16, t0);
    s.send_command(t0, reset(1));
    s.send_command(t0, reset(2));
    let (id1, _) = call_id(&outgoing(&mut s)[0]);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(30));

    s.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(outgoing(&mut s), Vec::<String>::new());

    s.handle_timeout(deadline);
    assert_eq!(events(&mut s), vec![finished(1, CommandResult::Timeout)]);
    let sent = outgoing(&mut s);
    assert_eq!(sent.len(), 1);
    let (id2, _) = call_id(&sent[0]);
    assert_ne!(id1, id2);
    assert_eq!(s.poll_timeout(), Some(deadline + Duration::from_secs(30)));

    // The late answer to the first CALL is ignored; the second is still outstanding.
    text(
        &mut s,
        deadline,
        &call_result(&id1, &json!({"status": "Accepted"})),
    );
    assert_eq!(events(&mut s), vec![]);
    text(
        &mut s,
        deadline,
        &call_result(&id2, &json!({"status": "Accepted"})),
    );
    assert_eq!(events(&mut s), vec![finished(2, CommandResult::Accepted)]);
    assert_eq!(s.stats().timeouts, 1);
}

#[test]
fn session_queue_full_rejects_at_once() {
    let t0 = Instant::now();
    let config = SessionConfig {
        mode: Mode::Strict,
        heartbeat_interval_s: 60,
        call_timeout: Duration::from_secs(5),
        queue_capacity: 1,
    };
    let mut s = Session::new(
        CP.to_owned(),
        Box::new(TestDialect(Version::V201)),
        config,
        t0,
    );
    events(&mut s);
    s.send_command(t0, reset(1)); // in flight
    s.send_command(t0, reset(2)); // waiting
    s.send_command(t0, reset(3)); // refused
    assert_eq!(
        events(&mut s),
        vec![finished(3, CommandResult::Rejected("queue full".into()))]
    );
    assert_eq!(s.stats().queue_full, 1);
    assert_eq!(outgoing(&mut s).len(), 1);
}

#[test]
fn session_close_finishes_everything_offline() {
    let t0 = Instant::now();
    let mut s = session(Version::V201, t0);
    for id in 1..=4 {
        s.send_command(t0, reset(id));
    }
    text(&mut s, t0, r#"[2,"h","Heartbeat",{}]"#);
    s.close();
    assert_eq!(s.poll_outgoing(), None, "nothing is sent after close");
    assert_eq!(
        events(&mut s),
        vec![
            finished(1, CommandResult::Offline),
            finished(2, CommandResult::Offline),
            finished(3, CommandResult::Offline),
            finished(4, CommandResult::Offline),
            ChargerEvent::Disconnected {
                charger: CP.to_owned()
            },
        ]
    );
    assert_eq!(s.poll_timeout(), None);
    assert!(s.is_closed());

    // Idempotent, and inert afterwards.
    s.close();
    text(&mut s, t0, r#"[2,"h","Heartbeat",{}]"#);
    s.send_command(t0, reset(5));
    assert_eq!(events(&mut s), vec![finished(5, CommandResult::Offline)]);
    assert_eq!(s.poll_outgoing(), None);
}

#[test]
fn session_binary_frames_are_ignored_and_counted() {
    let t0 = Instant::now();
    let mut s = session(Version::V16, t0);
    s.handle_binary(12);
    s.handle_binary(0);
    assert_eq!(s.stats().binary_frames, 2);
    assert_eq!(s.poll_outgoing(), None);
    let evs = events(&mut s);
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| matches!(
        e,
        ChargerEvent::Coerced {
            kind: CoercionKind::BinaryFrame,
            ..
        }
    )));
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Text that looks like OCPP-J often enough to get past the JSON parser.
fn frame_like() -> impl Strategy<Value = String> {
    let element = prop_oneof![
        Just("2".to_owned()),
        Just("3".to_owned()),
        Just("4".to_owned()),
        Just("\"1\"".to_owned()),
        Just("\"Heartbeat\"".to_owned()),
        Just("\"MeterValues\"".to_owned()),
        Just("{}".to_owned()),
        Just("{\"connectorId\":1}".to_owned()),
        Just("{\"status\":\"Accepted\"}".to_owned()),
        Just("[]".to_owned()),
        Just("null".to_owned()),
        Just("-1".to_owned()),
        Just("2.0".to_owned()),
        Just("1e400".to_owned()),
        "\"[^\"\\\\]{0,40}\"",
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    prop::collection::vec(element, 0..7).prop_map(|v| format!("[{}]", v.join(",")))
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "\\PC{0,200}", frame_like()]
}

proptest! {
    #[test]
    fn parse_never_panics(text in any_text()) {
        for version in BOTH {
            match parse(&text, version) {
                Ok(frame) => {
                    // What parses re-encodes to a frame with the same id.
                    let again = parse(&frame.encode(), version);
                    prop_assert_eq!(again.map(|f| f.id().to_owned()).ok(), Some(frame.id().to_owned()));
                }
                Err(e) => {
                    // The answer is itself a well-formed CALLERROR (read leniently: a 2.0.1
                    // MessageId over 36 characters is echoed as it came).
                    let answer = parse(&e.to_call_error(version), Version::V16);
                    let is_call_error = matches!(answer, Ok(Frame::CallError { .. }));
                    prop_assert!(is_call_error);
                    prop_assert!(e.id == "-1" || e.id.len() <= text.len());
                }
            }
        }
    }

    #[test]
    fn session_never_panics_nor_closes(frames in prop::collection::vec(any_text(), 0..20), commands in 0u64..5) {
        let t0 = Instant::now();
        for version in BOTH {
            let mut s = session(version, t0);
            for id in 0..commands {
                s.send_command(t0, reset(id));
            }
            for (i, frame) in frames.iter().enumerate() {
                let now = t0 + Duration::from_secs(i as u64 * 7);
                text(&mut s, now, frame);
                s.handle_timeout(now);
                while let Some(out) = s.poll_outgoing() {
                    // Everything we send is a well-formed frame (read leniently, as above).
                    prop_assert!(parse(&out, Version::V16).is_ok(), "{}", out);
                }
            }
            prop_assert!(!s.is_closed());
            s.close();
            let evs = events(&mut s);
            let disconnected = matches!(evs.last(), Some(ChargerEvent::Disconnected { .. }));
            prop_assert!(disconnected);
            // Every command finished exactly once.
            let mut done: Vec<u64> = evs.iter().filter_map(|e| match e {
                ChargerEvent::CommandFinished { request, .. } => Some(*request),
                _ => None,
            }).collect();
            done.sort_unstable();
            prop_assert_eq!(done, (0..commands).collect::<Vec<_>>());
        }
    }
}
