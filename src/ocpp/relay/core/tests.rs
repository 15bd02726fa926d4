//! Unit tests of the relay core: JSON strings and Instants in, frames out.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;
use crate::mapping::charger::{ChargerCommand, LimitUnit};
use crate::ocpp::relay::offline::OfflineAuthorization;
use crate::ocpp::relay::state::{Journal, Queued, RelayState};
use crate::ocpp::session::SessionConfig;
use crate::ocpp::{v16, v201, Dialect, Mode};

/// A journal that records what it was asked to keep (shared with the test).
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<MemoryInner>>);

#[derive(Default)]
struct MemoryInner {
    records: Vec<Queued>,
    next: u64,
    state: Option<RelayState>,
    fail: bool,
}

impl Memory {
    fn records(&self) -> Vec<Queued> {
        self.0.lock().map(|m| m.records.clone()).unwrap_or_default()
    }
    fn state(&self) -> Option<RelayState> {
        self.0.lock().ok().and_then(|m| m.state.clone())
    }
}

impl Journal for Memory {
    fn append(&mut self, record: &Queued) -> Result<u64, String> {
        let mut m = self.0.lock().map_err(|e| e.to_string())?;
        if m.fail {
            return Err("disk full".into());
        }
        let seq = m.next;
        m.next += 1;
        let mut r = record.clone();
        r.seq = seq;
        m.records.push(r);
        Ok(seq)
    }
    fn done(&mut self, seq: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.records.retain(|r| r.seq != seq);
        }
    }
    fn save_state(&mut self, state: &RelayState) {
        if let Ok(mut m) = self.0.lock() {
            m.state = Some(state.clone());
        }
    }
}

fn config() -> RelayConfig {
    RelayConfig {
        forward: Forward::Sanitized,
        answer_timeout: Duration::from_secs(5),
        queue_capacity: 100,
        local_list: Default::default(),
        offline: OfflineAuthorization::Cache,
    }
}

struct Rig {
    relay: Relay,
    journal: Memory,
    now: Instant,
    next_tx: i32,
}

impl Rig {
    fn new(version: Version, config: RelayConfig) -> Rig {
        Rig::with(
            version,
            config,
            Memory::default(),
            Vec::new(),
            RelayState::default(),
        )
    }

    fn with(
        version: Version,
        config: RelayConfig,
        journal: Memory,
        recovered: Vec<Queued>,
        state: RelayState,
    ) -> Rig {
        let now = Instant::now();
        let dialect: Box<dyn Dialect> = match version {
            Version::V16 => Box::new(v16::V16Dialect::new()),
            Version::V201 => Box::new(v201::V201Dialect::new()),
        };
        let session = Session::new(
            "CP1".into(),
            dialect,
            SessionConfig {
                mode: Mode::Lenient,
                heartbeat_interval_s: 300,
                call_timeout: Duration::from_secs(30),
                queue_capacity: 8,
            },
            now,
        );
        let relay = Relay::relayed(
            session,
            config,
            Box::new(journal.clone()),
            recovered,
            state,
            3,
        );
        Rig {
            relay,
            journal,
            now,
            next_tx: 100,
        }
    }

    fn charger(&mut self, frame: Value) {
        let mut next = self.next_tx;
        let mut alloc = || {
            next += 1;
            next - 1
        };
        self.relay
            .handle_text(self.now, Utc::now(), &frame.to_string(), &mut alloc);
        self.next_tx = next;
    }

    fn upstream(&mut self, frame: Value) {
        self.relay
            .handle_upstream(self.now, UpstreamEvent::Text(frame.to_string()));
    }

    fn sent_to_charger(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.relay.poll_outgoing())
            .map(|t| serde_json::from_str(&t).unwrap_or(Value::Null))
            .collect()
    }

    fn sent_upstream(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.relay.poll_upstream())
            .map(|t| serde_json::from_str(&t).unwrap_or(Value::Null))
            .collect()
    }

    fn up(&mut self) {
        self.relay.handle_upstream(self.now, UpstreamEvent::Up);
    }

    fn down(&mut self) {
        self.relay.handle_upstream(self.now, UpstreamEvent::Down);
    }
}

fn start16(id: &str, tag: &str) -> Value {
    json!([2, id, "StartTransaction", {"connectorId": 1, "idTag": tag, "meterStart": 0,
        "timestamp": "2026-01-01T00:00:00Z"}])
}

fn meter16(id: &str, tx: i32, value: &str) -> Value {
    json!([2, id, "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [{
        "timestamp": "2026-01-01T00:00:00Z",
        "sampledValue": [{"value": value, "measurand": "Power.Active.Import"}]}]}])
}

fn stop16(id: &str, tx: i32) -> Value {
    json!([2, id, "StopTransaction", {"transactionId": tx, "meterStop": 10,
        "timestamp": "2026-01-01T00:00:00Z"}])
}

#[test]
fn live_calls_go_upstream_with_their_id_and_the_charger_gets_the_upstream_answer() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(json!([2, "h1", "Heartbeat", {}]));
    assert!(r.sent_to_charger().is_empty(), "the local answer is held");
    assert_eq!(r.sent_upstream(), [json!([2, "h1", "Heartbeat", {}])]);
    r.upstream(json!([3, "h1", {"currentTime": "2030-01-01T00:00:00Z"}]));
    assert_eq!(
        r.sent_to_charger(),
        [json!([3, "h1", {"currentTime": "2030-01-01T00:00:00Z"}])]
    );
    // The session still decoded it: Connected came first, nothing is lost.
    assert!(r.relay.poll_event().is_some());
    assert_eq!(r.relay.stats().answered_upstream, 1);
}

#[test]
fn the_upstream_receives_the_sanitized_payload_by_default_and_the_original_on_request() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(meter16("m1", 5, "14.4kW"));
    let sent = r.sent_upstream();
    assert_eq!(
        sent[0][3]["meterValue"][0]["sampledValue"][0]["value"],
        "14400"
    );
    assert_eq!(sent[0][3]["meterValue"][0]["sampledValue"][0]["unit"], "W");

    let mut r = Rig::new(
        Version::V16,
        RelayConfig {
            forward: Forward::Original,
            ..config()
        },
    );
    r.up();
    r.charger(meter16("m1", 5, "14.4kW"));
    assert_eq!(
        r.sent_upstream()[0][3]["meterValue"][0]["sampledValue"][0]["value"],
        "14.4kW"
    );
}

#[test]
fn no_answer_in_time_gives_the_local_answer_and_queues_transaction_messages() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(start16("s1", "TAG"));
    assert_eq!(r.sent_upstream().len(), 1);
    r.now += Duration::from_secs(6);
    let now = r.now;
    r.relay.handle_timeout(now);
    let answer = r.sent_to_charger();
    assert_eq!(answer[0][0], 3);
    assert_eq!(answer[0][2]["transactionId"], 100);
    assert_eq!(r.journal.records().len(), 1);
    // The queued copy is sent again right away (the upstream is still up).
    assert_eq!(r.sent_upstream()[0][1], "s1");
}

#[test]
fn while_down_transaction_messages_are_queued_durably_and_replayed_in_order_with_mapped_ids() {
    let mut r = Rig::new(Version::V16, config());
    r.charger(start16("s1", "TAG"));
    let start = r.sent_to_charger();
    assert_eq!(
        start[0][2]["transactionId"], 100,
        "answered locally at once"
    );
    r.charger(json!([2, "h1", "Heartbeat", {}]));
    r.charger(meter16("m1", 100, "7200"));
    r.charger(stop16("t1", 100));
    assert_eq!(r.sent_to_charger().len(), 3);
    let queued: Vec<String> = r.journal.records().iter().map(|q| q.id.clone()).collect();
    assert_eq!(queued, ["s1", "m1", "t1"], "heartbeats are not queued");
    assert!(r.sent_upstream().is_empty());

    r.up();
    let sent = r.sent_upstream();
    assert_eq!(sent.len(), 1, "one at a time");
    assert_eq!(sent[0][1], "s1");
    r.upstream(json!([3, "s1", {"transactionId": 7000, "idTagInfo": {"status": "Accepted"}}]));
    let sent = r.sent_upstream();
    assert_eq!(sent[0][1], "m1");
    assert_eq!(
        sent[0][3]["transactionId"], 7000,
        "our id 100 became the upstream's"
    );
    // A new message arriving during the replay waits behind the queue.
    r.charger(json!([2, "h2", "Heartbeat", {}]));
    assert_eq!(r.sent_to_charger()[0][1], "h2");
    r.upstream(json!([3, "m1", {}]));
    let sent = r.sent_upstream();
    assert_eq!(sent[0][1], "t1");
    assert_eq!(sent[0][3]["transactionId"], 7000);
    r.upstream(json!([3, "t1", {}]));
    assert!(r.journal.records().is_empty(), "all delivered");
    assert_eq!(r.relay.stats().replayed, 3);
    // Live again.
    r.charger(json!([2, "h3", "Heartbeat", {}]));
    assert_eq!(r.sent_upstream()[0][1], "h3");
}

#[test]
fn a_recovered_queue_is_replayed_and_the_mapping_survives() {
    let journal = Memory::default();
    let mut state = RelayState::default();
    state.tx_map.insert(100, 7000);
    let recovered = vec![Queued {
        seq: 4,
        id: "t1".into(),
        action: "StopTransaction".into(),
        payload: json!({"transactionId": 100, "meterStop": 1, "timestamp": "2026-01-01T00:00:00Z"}),
        local_tx: None,
    }];
    let mut r = Rig::with(Version::V16, config(), journal, recovered, state);
    r.up();
    let sent = r.sent_upstream();
    assert_eq!(sent[0][1], "t1");
    assert_eq!(sent[0][3]["transactionId"], 7000);
}

#[test]
fn a_live_start_gives_the_charger_the_upstream_id_and_the_session_keeps_its_own() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(start16("s1", "TAG"));
    r.sent_upstream();
    r.upstream(json!([3, "s1", {"transactionId": 555, "idTagInfo": {"status": "Accepted"}}]));
    assert_eq!(r.sent_to_charger()[0][2]["transactionId"], 555);
    assert_eq!(r.relay.state().tx_alias.get(&555), Some(&100));
    assert_eq!(r.journal.state().map(|s| s.tx_alias.len()), Some(1));
    // The charger now uses 555; upstream gets 555, the session sees 100.
    r.charger(meter16("m1", 555, "7200"));
    assert_eq!(r.sent_upstream()[0][3]["transactionId"], 555);
}

#[test]
fn outage_answers_what_was_waiting_locally() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(stop16("t1", 9));
    r.sent_upstream();
    r.down();
    assert_eq!(r.sent_to_charger()[0][1], "t1");
    assert_eq!(r.journal.records().len(), 1);
}

#[test]
fn offline_authorization_follows_the_cache_learned_from_the_upstream() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(json!([2, "a1", "Authorize", {"idTag": "BLOCKED"}]));
    r.sent_upstream();
    r.upstream(json!([3, "a1", {"idTagInfo": {"status": "Blocked"}}]));
    r.charger(json!([2, "a2", "Authorize", {"idTag": "GOOD"}]));
    r.sent_upstream();
    r.upstream(json!([3, "a2", {"idTagInfo": {"status": "Accepted"}}]));
    r.sent_to_charger();
    r.down();
    let status = |r: &mut Rig, tag: &str| {
        r.charger(json!([2, "x", "Authorize", {"idTag": tag}]));
        r.sent_to_charger()[0][2]["idTagInfo"]["status"].clone()
    };
    assert_eq!(status(&mut r, "BLOCKED"), "Blocked");
    assert_eq!(status(&mut r, "GOOD"), "Accepted");
    assert_eq!(status(&mut r, "UNKNOWN"), "Invalid");
    r.charger(start16("s1", "BLOCKED"));
    assert_eq!(r.sent_to_charger()[0][2]["idTagInfo"]["status"], "Blocked");

    let mut r = Rig::new(
        Version::V16,
        RelayConfig {
            local_list: Default::default(),
            offline: OfflineAuthorization::Accept,
            ..config()
        },
    );
    assert_eq!(status(&mut r, "UNKNOWN"), "Accepted");
    let mut r = Rig::new(
        Version::V16,
        RelayConfig {
            local_list: Default::default(),
            offline: OfflineAuthorization::Reject,
            ..config()
        },
    );
    assert_eq!(status(&mut r, "ANY"), "Invalid");
}

#[test]
fn upstream_calls_reach_the_charger_and_its_answer_goes_back() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.upstream(json!([2, "u1", "GetConfiguration", {"key": ["HeartbeatInterval"]}]));
    assert_eq!(
        r.sent_to_charger(),
        [json!([2, "u1", "GetConfiguration", {"key": ["HeartbeatInterval"]}])]
    );
    r.charger(json!([3, "u1", {"configurationKey": []}]));
    assert_eq!(
        r.sent_upstream(),
        [json!([3, "u1", {"configurationKey": []}])]
    );
}

#[test]
fn our_own_commands_stay_local_and_set_the_imposed_limit() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.relay.send_command(
        r.now,
        ChargerRequest {
            id: 1,
            charger: "CP1".into(),
            command: ChargerCommand::SetLimit {
                limit: 11000.0,
                unit: LimitUnit::Watts,
                profile_id: 809,
                stack_level: 9,
            },
        },
    );
    let sent = r.sent_to_charger();
    assert_eq!(sent[0][2], "SetChargingProfile");
    assert_eq!(r.relay.authority().imposed.map(|l| l.limit), Some(11000.0));
    let id = sent[0][1].as_str().unwrap_or_default().to_owned();
    r.charger(json!([3, id, {"status": "Accepted"}]));
    assert!(
        r.sent_upstream().is_empty(),
        "our command's answer stays local"
    );
}

#[test]
fn an_upstream_call_reusing_our_outstanding_id_is_refused() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.relay.send_command(
        r.now,
        ChargerRequest {
            id: 1,
            charger: "CP1".into(),
            command: ChargerCommand::Reset { hard: false },
        },
    );
    let ours = r.sent_to_charger()[0][1].clone();
    r.upstream(json!([2, ours, "Reset", {"type": "Soft"}]));
    assert_eq!(r.sent_upstream()[0][0], 4);
    assert!(r.sent_to_charger().is_empty());
}

#[test]
fn a_full_queue_drops_the_oldest() {
    let mut r = Rig::new(
        Version::V201,
        RelayConfig {
            queue_capacity: 2,
            ..config()
        },
    );
    for id in ["e1", "e2", "e3"] {
        r.charger(json!([2, id, "TransactionEvent", {"eventType": "Updated",
            "timestamp": "2026-01-01T00:00:00Z", "triggerReason": "MeterValuePeriodic",
            "seqNo": 1, "transactionInfo": {"transactionId": "T1"}}]));
    }
    let ids: Vec<String> = r.journal.records().iter().map(|q| q.id.clone()).collect();
    assert_eq!(ids, ["e2", "e3"]);
    assert_eq!(r.relay.stats().dropped, 1);
}

#[test]
fn an_unwritable_queue_still_answers_the_charger() {
    let mut r = Rig::new(Version::V16, config());
    if let Ok(mut m) = r.journal.0.lock() {
        m.fail = true;
    }
    r.charger(stop16("t1", 3));
    assert_eq!(r.sent_to_charger()[0][1], "t1");
    assert_eq!(r.relay.stats().dropped, 1);
}

#[test]
fn without_upstream_the_relay_is_the_session() {
    let now = Instant::now();
    let session = Session::new(
        "CP1".into(),
        Box::new(v16::V16Dialect::new()),
        SessionConfig {
            mode: Mode::Lenient,
            heartbeat_interval_s: 300,
            call_timeout: Duration::from_secs(30),
            queue_capacity: 8,
        },
        now,
    );
    let mut relay = Relay::direct(session);
    relay.handle_upstream(now, UpstreamEvent::Up);
    relay.handle_text(now, Utc::now(), r#"[2,"h","Heartbeat",{}]"#, &mut || 1);
    assert!(relay
        .poll_outgoing()
        .is_some_and(|t| t.starts_with("[3,\"h\"")));
    assert!(relay.poll_upstream().is_none());
}

#[test]
fn a_new_upstream_connection_gets_the_last_boot_before_the_queue_and_then_the_latest_statuses() {
    let mut r = Rig::new(Version::V16, config());
    r.charger(
        json!([2, "b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]),
    );
    let status = |id: &str, connector: i32, status: &str| {
        json!([2, id, "StatusNotification", {"connectorId": connector, "errorCode": "NoError",
            "status": status}])
    };
    r.charger(status("s1", 1, "Preparing"));
    r.charger(stop16("t1", 4));
    r.charger(status("s2", 1, "Finishing"));
    r.charger(status("s3", 2, "Available"));
    assert_eq!(r.sent_to_charger().len(), 5, "all answered locally");
    r.up();
    let sent = r.sent_upstream();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][2], "BootNotification");
    assert_eq!(sent[0][1], "ocpp809-r1", "our own id, not the charger's");
    r.upstream(
        json!([3, "ocpp809-r1", {"status": "Accepted", "interval": 60,
        "currentTime": "2030-01-01T00:00:00Z"}]),
    );
    assert!(
        r.sent_to_charger().is_empty(),
        "the answer to our boot stays here"
    );
    assert_eq!(r.sent_upstream()[0][1], "t1");
    r.upstream(json!([3, "t1", {}]));
    let sent = r.sent_upstream();
    assert_eq!(
        (sent[0][2].as_str(), sent[0][3]["status"].as_str()),
        (Some("StatusNotification"), Some("Finishing"))
    );
    let id = sent[0][1].clone();
    r.upstream(json!([3, id, {}]));
    let sent = r.sent_upstream();
    assert_eq!(sent[0][3]["status"], "Available");
    let id = sent[0][1].clone();
    r.upstream(json!([3, id, {}]));
    assert!(r.sent_upstream().is_empty(), "nothing else");
    r.charger(json!([2, "h1", "Heartbeat", {}]));
    assert_eq!(r.sent_upstream()[0][1], "h1", "live again");
}

#[test]
fn a_boot_sent_by_the_charger_itself_is_not_repeated() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(
        json!([2, "b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]),
    );
    assert_eq!(r.sent_upstream()[0][1], "b1");
    r.upstream(json!([3, "b1", {"status": "Accepted", "interval": 60,
        "currentTime": "2030-01-01T00:00:00Z"}]));
    r.charger(json!([2, "h1", "Heartbeat", {}]));
    assert_eq!(r.sent_upstream()[0][1], "h1");
    assert!(
        r.journal.state().is_some_and(|s| s.boot.is_some()),
        "remembered for later"
    );
}

#[test]
fn a_mis_cased_action_is_classified_and_forwarded_in_its_proper_spelling() {
    let mut r = Rig::new(Version::V16, config());
    r.charger(
        json!([2, "t1", "stoptransaction", {"transactionId": 3, "meterStop": 1,
        "timestamp": "2026-01-01T00:00:00Z"}]),
    );
    assert_eq!(r.sent_to_charger()[0][0], 3);
    assert_eq!(
        r.journal.records()[0].action,
        "StopTransaction",
        "queued as a transaction message"
    );
    r.up();
    assert_eq!(r.sent_upstream()[0][2], "StopTransaction");
}

#[test]
fn a_timed_out_message_is_delivered_once_and_the_second_answer_ignored() {
    let mut r = Rig::new(Version::V16, config());
    r.up();
    r.charger(meter16("m1", 5, "1"));
    r.sent_upstream();
    r.now += Duration::from_secs(6);
    let now = r.now;
    r.relay.handle_timeout(now);
    r.sent_to_charger();
    assert_eq!(r.sent_upstream()[0][1], "m1", "sent again from the queue");
    r.charger(meter16("m2", 5, "2"));
    assert_eq!(r.journal.records().len(), 2, "m2 waits behind m1");
    r.upstream(json!([3, "m1", {}]));
    assert_eq!(r.sent_upstream()[0][1], "m2");
    r.upstream(json!([3, "m1", {}]));
    assert_eq!(
        r.journal.records().len(),
        1,
        "the late second answer changes nothing"
    );
    r.upstream(json!([3, "m2", {}]));
    assert!(r.journal.records().is_empty());
    assert_eq!(r.relay.stats().replayed, 2);
}

#[test]
fn an_upstream_remote_stop_names_the_transaction_as_the_charger_knows_it() {
    let mut state = RelayState::default();
    state.tx_map.insert(100, 7000);
    let mut r = Rig::with(Version::V16, config(), Memory::default(), Vec::new(), state);
    r.up();
    r.upstream(json!([2, "u1", "RemoteStopTransaction", {"transactionId": 7000}]));
    assert_eq!(r.sent_to_charger()[0][3]["transactionId"], 100);
}

/// ocpp809 imposes 11 kW (profile 809); returns the rig with that limit accepted.
fn with_imposed_limit(version: Version) -> Rig {
    let mut r = Rig::new(version, config());
    r.up();
    r.relay.send_command(
        r.now,
        ChargerRequest {
            id: 1,
            charger: "CP1".into(),
            command: ChargerCommand::SetLimit {
                limit: 11000.0,
                unit: LimitUnit::Watts,
                profile_id: 809,
                stack_level: 0,
            },
        },
    );
    let id = r.sent_to_charger()[0][1].clone();
    r.charger(json!([3, id, {"status": "Accepted"}]));
    r
}

fn tx_default_profile16(limit_w: f64) -> Value {
    json!({"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}]}}})
}

#[test]
fn an_upstream_profile_above_the_grid_limit_is_clipped_and_the_upstream_told_once_applied() {
    let mut r = with_imposed_limit(Version::V16);
    r.upstream(json!([
        2,
        "u1",
        "SetChargingProfile",
        tx_default_profile16(22000.0)
    ]));
    let to_charger = r.sent_to_charger();
    assert_eq!(to_charger.len(), 1);
    assert_eq!(to_charger[0][1], "u1", "the upstream's id is kept");
    let period =
        &to_charger[0][3]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0];
    assert_eq!(
        period["limit"],
        json!(11000.0),
        "clipped to the 11 kW in force"
    );
    assert!(
        r.sent_upstream().is_empty(),
        "nothing is reported before the charger applied it"
    );
    r.charger(json!([3, "u1", {"status": "Accepted"}]));
    let upstream = r.sent_upstream();
    assert_eq!(upstream.len(), 2, "{upstream:?}");
    assert_eq!(upstream[0], json!([3, "u1", {"status": "Accepted"}]));
    assert_eq!(upstream[1][0], 2);
    assert_eq!(upstream[1][2], "DataTransfer");
    assert_eq!(upstream[1][3]["vendorId"], "org.ocpp809");
    assert_eq!(upstream[1][3]["messageId"], "ChargingLimitClipped");
}

#[test]
fn a_clipped_profile_the_charger_refuses_is_not_reported() {
    let mut r = with_imposed_limit(Version::V16);
    r.upstream(json!([
        2,
        "u1",
        "SetChargingProfile",
        tx_default_profile16(22000.0)
    ]));
    r.sent_to_charger();
    r.charger(json!([3, "u1", {"status": "Rejected"}]));
    assert_eq!(
        r.sent_upstream(),
        [json!([3, "u1", {"status": "Rejected"}])],
        "only the charger's answer"
    );
}

#[test]
fn a_profile_within_the_limit_passes_unchanged_and_unreported() {
    let mut r = with_imposed_limit(Version::V16);
    let call = json!([2, "u1", "SetChargingProfile", tx_default_profile16(7000.0)]);
    r.upstream(call.clone());
    assert_eq!(r.sent_to_charger(), [call]);
    r.charger(json!([3, "u1", {"status": "Accepted"}]));
    assert_eq!(
        r.sent_upstream(),
        [json!([3, "u1", {"status": "Accepted"}])]
    );
}

#[test]
fn the_upstream_cannot_clear_or_replace_our_profile() {
    for (version, clear) in [
        (Version::V16, json!({"id": 809})),
        (Version::V201, json!({"chargingProfileId": 809})),
    ] {
        let mut r = with_imposed_limit(version);
        r.upstream(json!([2, "c1", "ClearChargingProfile", clear]));
        assert!(
            r.sent_to_charger().is_empty(),
            "{version:?}: clear kept from the charger"
        );
        let answer = r.sent_upstream();
        assert_eq!(answer.len(), 1, "{version:?}");
        assert_eq!((&answer[0][0], &answer[0][1]), (&json!(3), &json!("c1")));
        assert_eq!(answer[0][2]["status"], "Unknown", "{version:?}");
    }
    let mut r = with_imposed_limit(Version::V201);
    r.upstream(json!([2, "s1", "SetChargingProfile", {"evseId": 0, "chargingProfile": {
        "id": 809, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": [{"id": 1,
            "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 50000.0}]}]}}]));
    assert!(
        r.sent_to_charger().is_empty(),
        "our profile id is not the upstream's to use"
    );
    let answer = r.sent_upstream();
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0][0], 3);
    assert_eq!(answer[0][2]["status"], "Rejected");
}

#[test]
fn an_accepted_limit_of_ours_is_reported_upstream_and_a_refused_one_is_not() {
    for (version, action) in [
        (Version::V16, "DataTransfer"),
        (Version::V201, "NotifyChargingLimit"),
    ] {
        let mut r = with_imposed_limit(version);
        let events: Vec<_> = std::iter::from_fn(|| r.relay.poll_event()).collect();
        assert!(events
            .iter()
            .any(|e| matches!(e, ChargerEvent::CommandFinished { .. })));
        let upstream = r.sent_upstream();
        assert_eq!(upstream.len(), 1, "{version:?}: {upstream:?}");
        assert_eq!(upstream[0][0], 2);
        assert_eq!(upstream[0][2], action, "{version:?}");

        r.relay.send_command(
            r.now,
            ChargerRequest {
                id: 2,
                charger: "CP1".into(),
                command: ChargerCommand::SetLimit {
                    limit: 5000.0,
                    unit: LimitUnit::Watts,
                    profile_id: 809,
                    stack_level: 0,
                },
            },
        );
        let id = r.sent_to_charger()[0][1].clone();
        r.charger(json!([3, id, {"status": "Rejected"}]));
        let _: Vec<_> = std::iter::from_fn(|| r.relay.poll_event()).collect();
        assert!(
            r.sent_upstream().is_empty(),
            "{version:?}: a refused limit is not reported"
        );
    }
}

/// One step of a relay's life: a frame from either side (JSON-ish or garbage), the
/// upstream coming or going, or time passing.
#[derive(Clone, Debug)]
enum Step {
    Charger(String),
    Upstream(String),
    Up,
    Down,
    Tick,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let frame = prop_oneof![
        Just(r#"[2,"s1","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2026-01-01T00:00:00Z"}]"#.to_owned()),
        Just(r#"[2,"m1","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{"value":"14.4kW"}]}]}]"#.to_owned()),
        Just(r#"[3,"s1",{"transactionId":9,"idTagInfo":{"status":"Accepted"}}]"#.to_owned()),
        Just(r#"[2,"u1","ClearChargingProfile",{"id":809}]"#.to_owned()),
        Just(r#"[4,"u1","GenericError","",{}]"#.to_owned()),
        "\\[[0-9],\"[a-z0-9-]{0,6}\",[^\\]]{0,40}\\]",
        ".{0,60}",
    ];
    prop_oneof![
        frame.clone().prop_map(Step::Charger),
        frame.prop_map(Step::Upstream),
        Just(Step::Up),
        Just(Step::Down),
        Just(Step::Tick),
    ]
}

proptest::proptest! {
    /// Whatever both sides send, with the upstream coming and going, the relay never panics
    /// and emits only well-formed OCPP-J frames (the `relay_frames` fuzz target hunts longer).
    #[test]
    fn any_conversation_is_relayed_without_panics_or_malformed_frames(
        version in proptest::prop_oneof![proptest::strategy::Just(Version::V16), proptest::strategy::Just(Version::V201)],
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let mut r = Rig::new(version, config());
        for s in steps {
            match s {
                Step::Charger(text) => {
                    let mut next = 1;
                    let mut alloc = || { next += 1; next };
                    r.relay.handle_text(r.now, Utc::now(), &text, &mut alloc);
                }
                Step::Upstream(text) => r.relay.handle_upstream(r.now, UpstreamEvent::Text(text)),
                Step::Up => r.up(),
                Step::Down => r.down(),
                Step::Tick => {
                    r.now += Duration::from_secs(3);
                    r.relay.handle_timeout(r.now);
                }
            }
            while r.relay.poll_event().is_some() {}
            // A CALLERROR echoes the refused CALL's MessageId even when that was too long.
            let mut out: Vec<String> = std::iter::from_fn(|| r.relay.poll_upstream()).collect();
            out.extend(std::iter::from_fn(|| r.relay.poll_outgoing()));
            for frame in out {
                let value: Value = serde_json::from_str(&frame).unwrap_or(Value::Null);
                let kind = value.get(0).and_then(Value::as_u64);
                proptest::prop_assert!(matches!(kind, Some(2..=4)), "malformed: {}", frame);
                if kind != Some(4) {
                    proptest::prop_assert!(framing::parse(&frame, version).is_ok(), "malformed: {}", frame);
                }
            }
        }
    }
}
