//! The CSMS sending every command and checking the simulator's view, OCPP 1.6J and 2.0.1.
//!
//! The charger is the real Python `ocpp` package (tests/interop/sim_charger.py), which
//! validates every CALL it receives against the official JSON schemas: a schema-invalid
//! command from us comes back as a CALLERROR and fails here. The OCPP server runs in
//! process on 127.0.0.1:0; every [`ChargerCommand`] variant goes through the [`Router`], its
//! [`ChargerEvent::CommandFinished`] must be positive, and the simulator's printed view of
//! each CALL (action and key payload fields) must match what the command asked for.
//!
//! Needs `OCPP_TEST_PYTHON` (tests/run.sh exports the venv's python); without it the test
//! prints a NOTICE and passes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout_at, Instant};

use ocpp809::mapping::charger::{
    ChargerCommand, ChargerEvent, ChargerRequest, CommandResult, LimitUnit,
};
use ocpp809::ocpp::server::{serve, Router, ServerSettings};
use ocpp809::ocpp::{Mode, Version};

const CHARGER: &str = "SIM1";
/// Bound on one version's whole run (simulator start, boot, every command).
const BUDGET: Duration = Duration::from_secs(30);

/// Kills and reaps the simulator however the test ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One command, the action the simulator must see, JSON pointers into the payload it must
/// see with their values, and the result it must produce.
struct Case {
    command: ChargerCommand,
    action: &'static str,
    fields: Vec<(&'static str, Value)>,
    result: CommandResult,
}

/// Action, payload fields (JSON pointer, value) and result of one command.
type Expectation = (&'static str, Vec<(&'static str, Value)>, CommandResult);

fn commands() -> Vec<ChargerCommand> {
    vec![
        ChargerCommand::SetLimit {
            limit: 11000.0,
            unit: LimitUnit::Watts,
            profile_id: 809,
            stack_level: 0,
        },
        ChargerCommand::GetCompositeSchedule {
            connector: 0,
            duration_s: 60,
            unit: LimitUnit::Watts,
        },
        ChargerCommand::ClearLimit { profile_id: 809 },
        ChargerCommand::ChangeAvailability { operative: false },
        ChargerCommand::Reset { hard: false },
        ChargerCommand::TriggerMessage {
            message: "StatusNotification".into(),
            connector: Some(1),
        },
        ChargerCommand::RemoteStart {
            connector: Some(1),
            id_tag: "TAG-809".into(),
        },
        ChargerCommand::RemoteStop {
            transaction_id: "42".into(),
        },
        ChargerCommand::GetSettings {
            keys: vec!["HeartbeatInterval".into()],
        },
        ChargerCommand::SetSetting {
            key: "HeartbeatInterval".into(),
            value: "120".into(),
        },
        ChargerCommand::UnlockConnector { connector: 1 },
        ChargerCommand::DataTransfer {
            vendor_id: "com.example.ocpp809".into(),
            message_id: Some("Ping".into()),
            data: Some("hello".into()),
        },
    ]
}

/// Guards the case tables below: a new `ChargerCommand` variant must be added to them.
fn variant_index(command: &ChargerCommand) -> usize {
    match command {
        ChargerCommand::SetLimit { .. } => 0,
        ChargerCommand::GetCompositeSchedule { .. } => 1,
        ChargerCommand::ClearLimit { .. } => 2,
        ChargerCommand::ChangeAvailability { .. } => 3,
        ChargerCommand::Reset { .. } => 4,
        ChargerCommand::TriggerMessage { .. } => 5,
        ChargerCommand::RemoteStart { .. } => 6,
        ChargerCommand::RemoteStop { .. } => 7,
        ChargerCommand::GetSettings { .. } => 8,
        ChargerCommand::SetSetting { .. } => 9,
        ChargerCommand::UnlockConnector { .. } => 10,
        ChargerCommand::DataTransfer { .. } => 11,
    }
}

fn cases(version: Version) -> Vec<Case> {
    let v16 = version == Version::V16;
    let schedule = CommandResult::Schedule {
        limit: Some(7000.0),
        unit: LimitUnit::Watts,
    };
    let settings = CommandResult::Settings(vec![(
        "HeartbeatInterval".into(),
        Some(if v16 {
            "sim-HeartbeatInterval".into()
        } else {
            "sim-OCPPCommCtrlr.HeartbeatInterval".into()
        }),
    )]);
    let data = CommandResult::Data {
        status: "Accepted".into(),
        data: Some("pong".into()),
    };
    let accepted = || CommandResult::Accepted;
    let expect: Vec<Expectation> = if v16 {
        vec![
            (
                "SetChargingProfile",
                vec![
                    ("/connectorId", json!(0)),
                    ("/csChargingProfiles/chargingProfileId", json!(809)),
                    ("/csChargingProfiles/stackLevel", json!(0)),
                    (
                        "/csChargingProfiles/chargingProfilePurpose",
                        json!("ChargePointMaxProfile"),
                    ),
                    ("/csChargingProfiles/chargingProfileKind", json!("Absolute")),
                    (
                        "/csChargingProfiles/chargingSchedule/chargingRateUnit",
                        json!("W"),
                    ),
                    (
                        "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/startPeriod",
                        json!(0),
                    ),
                    (
                        "/csChargingProfiles/chargingSchedule/chargingSchedulePeriod/0/limit",
                        json!(11000.0),
                    ),
                ],
                accepted(),
            ),
            (
                "GetCompositeSchedule",
                vec![
                    ("/connectorId", json!(0)),
                    ("/duration", json!(60)),
                    ("/chargingRateUnit", json!("W")),
                ],
                schedule,
            ),
            (
                "ClearChargingProfile",
                vec![("/id", json!(809))],
                accepted(),
            ),
            (
                "ChangeAvailability",
                vec![("/connectorId", json!(0)), ("/type", json!("Inoperative"))],
                accepted(),
            ),
            ("Reset", vec![("/type", json!("Soft"))], accepted()),
            (
                "TriggerMessage",
                vec![
                    ("/requestedMessage", json!("StatusNotification")),
                    ("/connectorId", json!(1)),
                ],
                accepted(),
            ),
            (
                "RemoteStartTransaction",
                vec![("/connectorId", json!(1)), ("/idTag", json!("TAG-809"))],
                accepted(),
            ),
            (
                "RemoteStopTransaction",
                vec![("/transactionId", json!(42))],
                accepted(),
            ),
            (
                "GetConfiguration",
                vec![("/key", json!(["HeartbeatInterval"]))],
                settings,
            ),
            (
                "ChangeConfiguration",
                vec![
                    ("/key", json!("HeartbeatInterval")),
                    ("/value", json!("120")),
                ],
                accepted(),
            ),
            (
                "UnlockConnector",
                vec![("/connectorId", json!(1))],
                accepted(),
            ),
            (
                "DataTransfer",
                vec![
                    ("/vendorId", json!("com.example.ocpp809")),
                    ("/messageId", json!("Ping")),
                    ("/data", json!("hello")),
                ],
                data,
            ),
        ]
    } else {
        vec![
            (
                "SetChargingProfile",
                vec![
                    ("/evseId", json!(0)),
                    ("/chargingProfile/id", json!(809)),
                    ("/chargingProfile/stackLevel", json!(0)),
                    (
                        "/chargingProfile/chargingProfilePurpose",
                        json!("ChargingStationMaxProfile"),
                    ),
                    ("/chargingProfile/chargingProfileKind", json!("Absolute")),
                    (
                        "/chargingProfile/chargingSchedule/0/chargingRateUnit",
                        json!("W"),
                    ),
                    (
                        "/chargingProfile/chargingSchedule/0/chargingSchedulePeriod/0/startPeriod",
                        json!(0),
                    ),
                    (
                        "/chargingProfile/chargingSchedule/0/chargingSchedulePeriod/0/limit",
                        json!(11000.0),
                    ),
                ],
                accepted(),
            ),
            (
                "GetCompositeSchedule",
                vec![
                    ("/evseId", json!(0)),
                    ("/duration", json!(60)),
                    ("/chargingRateUnit", json!("W")),
                ],
                schedule,
            ),
            (
                "ClearChargingProfile",
                vec![("/chargingProfileId", json!(809))],
                accepted(),
            ),
            (
                "ChangeAvailability",
                vec![("/operationalStatus", json!("Inoperative"))],
                accepted(),
            ),
            ("Reset", vec![("/type", json!("OnIdle"))], accepted()),
            (
                "TriggerMessage",
                vec![
                    ("/requestedMessage", json!("StatusNotification")),
                    ("/evse/id", json!(1)),
                ],
                accepted(),
            ),
            (
                "RequestStartTransaction",
                vec![
                    ("/evseId", json!(1)),
                    ("/idToken/idToken", json!("TAG-809")),
                    ("/idToken/type", json!("Central")),
                ],
                accepted(),
            ),
            (
                "RequestStopTransaction",
                vec![("/transactionId", json!("42"))],
                accepted(),
            ),
            (
                "GetVariables",
                vec![
                    ("/getVariableData/0/component/name", json!("OCPPCommCtrlr")),
                    (
                        "/getVariableData/0/variable/name",
                        json!("HeartbeatInterval"),
                    ),
                ],
                settings,
            ),
            (
                "SetVariables",
                vec![
                    ("/setVariableData/0/attributeValue", json!("120")),
                    ("/setVariableData/0/component/name", json!("OCPPCommCtrlr")),
                    (
                        "/setVariableData/0/variable/name",
                        json!("HeartbeatInterval"),
                    ),
                ],
                accepted(),
            ),
            (
                "UnlockConnector",
                vec![("/evseId", json!(1)), ("/connectorId", json!(1))],
                accepted(),
            ),
            (
                "DataTransfer",
                vec![
                    ("/vendorId", json!("com.example.ocpp809")),
                    ("/messageId", json!("Ping")),
                    ("/data", json!("hello")),
                ],
                data,
            ),
        ]
    };
    let commands = commands();
    assert_eq!(commands.len(), expect.len());
    commands
        .into_iter()
        .zip(expect)
        .enumerate()
        .map(|(i, (command, (action, fields, result)))| {
            assert_eq!(variant_index(&command), i, "case table out of order");
            Case {
                command,
                action,
                fields,
                result,
            }
        })
        .collect()
}

/// Same as `assert_eq!` for results, with the limit compared within 0.1 W.
fn same_result(got: &CommandResult, want: &CommandResult) -> bool {
    match (got, want) {
        (
            CommandResult::Schedule {
                limit: Some(a),
                unit: ua,
            },
            CommandResult::Schedule {
                limit: Some(b),
                unit: ub,
            },
        ) => (a - b).abs() < 0.1 && ua == ub,
        _ => got == want,
    }
}

fn numbers_equal(got: &Value, want: &Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) if got.is_number() && want.is_number() => (a - b).abs() < 1e-9,
        _ => got == want,
    }
}

async fn run(python: &str, version: Version) {
    let deadline = Instant::now() + BUDGET;
    let label = version.subprotocol();

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let settings = ServerSettings {
        versions: vec![version],
        mode: Mode::Lenient,
        heartbeat_interval_s: 300,
        call_timeout: Duration::from_secs(10),
        known_chargers: None,
        credentials: Default::default(),
        modes: HashMap::new(),
        max_connections: 16,
        max_connections_per_ip: 0,
        max_messages_per_s: None,
        transaction_ids: Default::default(),
        auth_throttle: Default::default(),
        metrics: Default::default(),
        upstream: None,
        profiles: Default::default(),
    };
    let router = Router::default();
    let (events_tx, mut events) = mpsc::channel::<ChargerEvent>(1024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(serve(
        listener,
        settings,
        router.clone(),
        events_tx,
        shutdown_rx,
        ocpp809::health::Heartbeat::detached(),
    ));

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/sim_charger.py");
    let lib_version = if version == Version::V16 {
        "1.6"
    } else {
        "2.0.1"
    };
    let mut child = Command::new(python)
        .arg(&script)
        .arg("--url")
        .arg(format!("ws://127.0.0.1:{port}/ocpp/{CHARGER}"))
        .arg("--version")
        .arg(lib_version)
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: cannot start {python} {}: {e}", script.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let _sim = Sim(child);
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    // Booted.
    loop {
        match timeout_at(deadline, events.recv()).await {
            Ok(Some(ChargerEvent::Booted { charger, .. })) if charger == CHARGER => break,
            Ok(Some(_)) => {}
            Ok(None) => panic!("{label}: event channel closed before Booted"),
            Err(_) => panic!("{label}: the simulator did not boot within {BUDGET:?}"),
        }
    }

    let cases = cases(version);
    for (i, case) in cases.iter().enumerate() {
        let request = ChargerRequest {
            id: i as u64 + 1,
            charger: CHARGER.into(),
            command: case.command.clone(),
        };
        if let Err(result) = router.send(request) {
            panic!("{label}: {:?} not delivered: {result:?}", case.command);
        }
    }

    let mut results: HashMap<u64, CommandResult> = HashMap::new();
    while results.len() < cases.len() {
        match timeout_at(deadline, events.recv()).await {
            Ok(Some(ChargerEvent::CommandFinished {
                charger,
                request,
                result,
            })) if charger == CHARGER => {
                results.insert(request, result);
            }
            Ok(Some(ChargerEvent::Disconnected { .. })) => {
                panic!("{label}: the simulator disconnected; results so far {results:?}")
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("{label}: event channel closed"),
            Err(_) => panic!(
                "{label}: {} of {} commands finished within {BUDGET:?}: {results:?}",
                results.len(),
                cases.len()
            ),
        }
    }

    // The simulator prints each CALL before answering it, so all lines are on their way.
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < cases.len() {
        match timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("{label}: simulator printed {line:?}: {e}"));
                if value.get("action").is_some() {
                    seen.push(value);
                }
            }
            Ok(None) => panic!("{label}: simulator exited; it saw {seen:?}"),
            Err(_) => panic!("{label}: simulator printed only {seen:?}"),
        }
    }

    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let id = i as u64 + 1;
        let got = &results[&id];
        if !same_result(got, &case.result) || !got.is_positive() {
            failures.push(format!(
                "{:?}: result {got:?}, want {:?}",
                case.command, case.result
            ));
        }
        // Commands go out in order, one at a time: the i-th CALL is the i-th command's.
        let call = &seen[i];
        if call["action"] != json!(case.action) {
            failures.push(format!(
                "{:?}: simulator saw {}, want {}",
                case.command, call["action"], case.action
            ));
            continue;
        }
        let payload = &call["payload"];
        for (pointer, want) in &case.fields {
            match payload.pointer(pointer) {
                Some(got) if numbers_equal(got, want) => {}
                got => failures.push(format!(
                    "{}: {pointer} = {got:?}, want {want} (payload {payload})",
                    case.action
                )),
            }
        }
    }
    if version == Version::V201 {
        let start = &seen[6]["payload"]["remoteStartId"];
        if !start.is_i64() {
            failures.push(format!("RequestStartTransaction remoteStartId {start}"));
        }
    }

    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(
        failures.is_empty(),
        "{label}: {} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn python() -> Option<String> {
    match std::env::var("OCPP_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "NOTICE: OCPP_TEST_PYTHON is not set (tests/run.sh sets it to the venv's \
                 python with the `ocpp` package); skipping the command interop test"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_v16() {
    if let Some(python) = python() {
        run(&python, Version::V16).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_v201() {
    if let Some(python) = python() {
        run(&python, Version::V201).await;
    }
}
