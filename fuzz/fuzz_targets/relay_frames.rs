//! Fuzz target for the OCPP relay (issue 10, docs/upstream.md): whatever a charger and an
//! upstream CSMS send, in whatever order with the upstream coming and going, the sans-IO relay
//! never panics and both sides only get well-formed OCPP-J frames (except that a CALLERROR
//! echoes the refused CALL's MessageId even when that id was too long).
//!
//! Input: first byte = OCPP version (even 1.6, odd 2.0.1); then lines, each a direction and
//! text: `c…` charger frame, `u…` upstream frame, `U` upstream up, `D` upstream down,
//! `t` one second passes (timers), `l…` ocpp809 sets a limit of that many kW, `x` clears it.

#![no_main]

use std::time::{Duration, Instant};

use chrono::Utc;
use libfuzzer_sys::fuzz_target;
use ocpp809::mapping::charger::{ChargerCommand, ChargerRequest, LimitUnit};
use ocpp809::ocpp::relay::core::{Forward, Relay, RelayConfig, UpstreamEvent};
use ocpp809::ocpp::relay::offline::OfflineAuthorization;
use ocpp809::ocpp::relay::state::{NoJournal, RelayState};
use ocpp809::ocpp::session::{Session, SessionConfig};
use ocpp809::ocpp::{framing, v16, v201, Dialect, Mode, Version};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(script) = std::str::from_utf8(rest) else {
        return;
    };
    let version = if first % 2 == 0 { Version::V16 } else { Version::V201 };
    let dialect: Box<dyn Dialect> = match version {
        Version::V16 => Box::new(v16::V16Dialect::new()),
        Version::V201 => Box::new(v201::V201Dialect::new()),
    };
    let mut now = Instant::now();
    let session = Session::new(
        "CP1".into(),
        dialect,
        SessionConfig {
            mode: if first & 2 == 0 { Mode::Lenient } else { Mode::Strict },
            heartbeat_interval_s: 300,
            call_timeout: Duration::from_secs(5),
            queue_capacity: 4,
        },
        now,
    );
    let config = RelayConfig {
        forward: if first & 4 == 0 { Forward::Sanitized } else { Forward::Original },
        answer_timeout: Duration::from_secs(2),
        queue_capacity: 8,
        offline: OfflineAuthorization::Cache,
        local_list: Default::default(),
    };
    let mut relay = Relay::relayed(
        session,
        config,
        Box::new(NoJournal::default()),
        Vec::new(),
        RelayState::default(),
        3,
    );
    let mut next_tx = 1;
    let mut request = 0;
    for line in script.split('\n').take(64) {
        let Some(op) = line.chars().next() else {
            continue;
        };
        let text = &line[op.len_utf8()..];
        match op {
            'c' => relay.handle_text(now, Utc::now(), text, &mut || {
                next_tx += 1;
                next_tx
            }),
            'u' => relay.handle_upstream(now, UpstreamEvent::Text(text.to_owned())),
            'U' => relay.handle_upstream(now, UpstreamEvent::Up),
            'D' => relay.handle_upstream(now, UpstreamEvent::Down),
            't' => {
                now += Duration::from_secs(1);
                relay.handle_timeout(now);
            }
            'l' | 'x' => {
                request += 1;
                let command = match (op, text.parse::<f64>()) {
                    ('l', Ok(kw)) => ChargerCommand::SetLimit {
                        limit: kw * 1000.0,
                        unit: LimitUnit::Watts,
                        profile_id: 809,
                        stack_level: 0,
                    },
                    _ => ChargerCommand::ClearLimit { profile_id: 809 },
                };
                relay.send_command(
                    now,
                    ChargerRequest {
                        id: request,
                        charger: "CP1".into(),
                        command,
                    },
                );
            }
            _ => {}
        }
        while relay.poll_event().is_some() {}
        for frame in std::iter::from_fn(|| relay.poll_upstream()) {
            check(&frame, version, "upstream");
        }
        for frame in std::iter::from_fn(|| relay.poll_outgoing()) {
            check(&frame, version, "charger");
        }
    }
});

/// An OCPP-J array that our own parser accepts — except that a CALLERROR echoes the
/// MessageId of the CALL it refuses even when that id was too long, so that its sender can
/// match the refusal.
fn check(frame: &str, version: Version, to: &str) {
    let value: serde_json::Value = match serde_json::from_str(frame) {
        Ok(value) => value,
        Err(error) => panic!("sent the {to} non-JSON ({error}): {frame}"),
    };
    let kind = value.get(0).and_then(serde_json::Value::as_u64);
    assert!(
        matches!(kind, Some(2..=4)) && value.get(1).is_some_and(|id| id.is_string()),
        "sent the {to} a malformed OCPP-J frame: {frame}"
    );
    if kind != Some(4) {
        assert!(
            framing::parse(frame, version).is_ok(),
            "sent the {to} a malformed OCPP-J frame: {frame}"
        );
    }
}
