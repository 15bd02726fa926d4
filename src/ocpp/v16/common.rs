//! Pieces the OCPP 1.6 and 2.0.1 dialects share: turning collected coercions into events,
//! serialising responses, the transaction → connector memory, the vendor alarm convention of
//! DataTransfer (MAPPING.md "vendor extension"), and picking the limit in force from a
//! composite schedule (CONTRACT §7: "the limit of the period in force now").

use std::collections::VecDeque;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::mapping::charger::{ChargerEvent, ConnectorId};
use crate::ocpp::sanitize::Sanitizer;
use crate::ocpp::{CallContext, CallError, ErrorCode};

/// Serialises a response built from `rust-ocpp` types.
pub fn to_payload<T: Serialize>(response: &T) -> Result<Value, CallError> {
    serde_json::to_value(response)
        .map_err(|e| CallError::new(ErrorCode::InternalError, format!("response: {e}")))
}

/// The CSMS time for responses: UTC, millisecond precision (some chargers choke on more).
pub fn response_time(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(3)
}

/// Runs one CALL handler and publishes what it produced: on success the coercions (as
/// `Coerced` events, in the order met) then the handler's events; on a CALLERROR nothing.
pub fn run(
    ctx: &mut CallContext<'_>,
    s: Sanitizer,
    result: Result<Value, CallError>,
    events: Vec<ChargerEvent>,
) -> Result<Value, CallError> {
    let response = result?;
    for c in s.into_coercions() {
        tracing::debug!(charger = %ctx.charger, kind = ?c.kind, detail = %c.detail, "coerced");
        ctx.events.push(ChargerEvent::Coerced {
            charger: ctx.charger.clone(),
            kind: c.kind,
            detail: c.detail,
        });
    }
    ctx.events.extend(events);
    Ok(response)
}

/// Which connector each transaction of this connection runs on, for messages that name only
/// the transaction (1.6 StopTransaction, 2.0.1 TransactionEvent after the first). Bounded:
/// a charger that never ends its transactions cannot grow it.
#[derive(Debug, Default)]
pub struct TransactionConnectors {
    entries: VecDeque<(String, ConnectorId)>,
}

impl TransactionConnectors {
    const CAPACITY: usize = 64;

    pub fn insert(&mut self, transaction_id: &str, connector: ConnectorId) {
        self.entries.retain(|(id, _)| id != transaction_id);
        if self.entries.len() >= Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries
            .push_back((transaction_id.to_string(), connector));
    }

    pub fn get(&self, transaction_id: &str) -> Option<ConnectorId> {
        self.entries
            .iter()
            .find(|(id, _)| id == transaction_id)
            .map(|(_, c)| *c)
    }

    pub fn remove(&mut self, transaction_id: &str) -> Option<ConnectorId> {
        let at = self
            .entries
            .iter()
            .position(|(id, _)| id == transaction_id)?;
        self.entries.remove(at).map(|(_, c)| c)
    }
}

/// An alarm reported through DataTransfer.
#[derive(Clone, Debug, PartialEq)]
pub struct VendorAlarm {
    pub name: String,
    pub active: bool,
    pub connector: Option<ConnectorId>,
}

/// The vendor alarm convention: `messageId` "Alarm" (any case, any vendorId) with `data` either
/// a JSON object (as text in 1.6, as text or object in 2.0.1)
/// `{"name": "Overload", "active": true, "connectorId": 1}` (`active` defaults to true,
/// `connectorId` / `evseId` optional) or a bare alarm name (raised). Anything else is not an
/// alarm.
pub fn vendor_alarm(message_id: Option<&str>, data: Option<&Value>) -> Option<VendorAlarm> {
    if !message_id.is_some_and(|m| m.eq_ignore_ascii_case("alarm")) {
        return None;
    }
    let parsed;
    let data = match data? {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => {
                parsed = v;
                &parsed
            }
            _ => {
                let name = text.trim();
                if name.is_empty() || name.len() > 50 {
                    return None;
                }
                return Some(VendorAlarm {
                    name: name.to_string(),
                    active: true,
                    connector: None,
                });
            }
        },
        v => v,
    };
    let obj = data.as_object()?;
    let name = obj.get("name")?.as_str()?.trim();
    if name.is_empty() || name.len() > 50 {
        return None;
    }
    let active = match obj.get("active") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return None,
    };
    let connector = match obj.get("connectorId").or_else(|| obj.get("evseId")) {
        None => None,
        Some(v) => Some(ConnectorId::try_from(v.as_u64()?).ok()?),
    };
    Some(VendorAlarm {
        name: name.to_string(),
        active,
        connector,
    })
}

/// The limit of the period in force `elapsed_s` seconds after the schedule start: the period
/// with the largest startPeriod ≤ elapsed. A start in the future (clock skew) counts as now.
/// After the schedule's duration, or before its first period, there is no limit.
pub fn limit_in_force(
    periods: &[(i64, f64)],
    elapsed_s: i64,
    duration_s: Option<i64>,
) -> Option<f64> {
    let elapsed = elapsed_s.max(0);
    if duration_s.is_some_and(|d| d > 0 && elapsed >= d) {
        return None;
    }
    periods
        .iter()
        .filter(|(start, _)| *start <= elapsed)
        .max_by_key(|(start, _)| *start)
        .map(|(_, limit)| *limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_period_in_force_is_the_latest_started() {
        let periods = [(0, 11000.0), (600, 7000.0), (1800, 3000.0)];
        let rows = [
            (0, None, Some(11000.0)),
            (-30, None, Some(11000.0)),
            (599, None, Some(11000.0)),
            (600, None, Some(7000.0)),
            (5000, None, Some(3000.0)),
            (5000, Some(3600), None),
            (100, Some(3600), Some(11000.0)),
        ];
        for (elapsed, duration, want) in rows {
            assert_eq!(
                limit_in_force(&periods, elapsed, duration),
                want,
                "{elapsed}"
            );
        }
        assert_eq!(limit_in_force(&[(60, 1.0)], 0, None), None);
        assert_eq!(limit_in_force(&[], 0, None), None);
        // Unordered periods are fine.
        assert_eq!(
            limit_in_force(&[(600, 2.0), (0, 1.0)], 700, None),
            Some(2.0)
        );
    }

    #[test]
    fn vendor_alarms_follow_the_convention() {
        let alarm = |m: Option<&str>, d: Value| vendor_alarm(m, Some(&d));
        assert_eq!(
            alarm(
                Some("Alarm"),
                json!("{\"name\":\"Overload\",\"active\":false,\"connectorId\":2}")
            ),
            Some(VendorAlarm {
                name: "Overload".into(),
                active: false,
                connector: Some(2)
            })
        );
        assert_eq!(
            alarm(Some("alarm"), json!({"name": "Tripped"})),
            Some(VendorAlarm {
                name: "Tripped".into(),
                active: true,
                connector: None
            })
        );
        assert_eq!(
            alarm(Some("ALARM"), json!("Overload")),
            Some(VendorAlarm {
                name: "Overload".into(),
                active: true,
                connector: None
            })
        );
        assert_eq!(alarm(Some("Other"), json!("Overload")), None);
        assert_eq!(alarm(None, json!("Overload")), None);
        assert_eq!(alarm(Some("Alarm"), json!({"active": true})), None);
        assert_eq!(
            alarm(Some("Alarm"), json!({"name": "x", "active": 3})),
            None
        );
        assert_eq!(
            alarm(Some("Alarm"), json!({"name": "x", "connectorId": 999})),
            None
        );
        assert_eq!(alarm(Some("Alarm"), json!("")), None);
        assert_eq!(vendor_alarm(Some("Alarm"), None), None);
    }

    #[test]
    fn the_transaction_memory_is_bounded() {
        let mut m = TransactionConnectors::default();
        for i in 0..200 {
            m.insert(&i.to_string(), (i % 4) as u8);
        }
        assert_eq!(m.get("0"), None);
        assert_eq!(m.get("199"), Some(3));
        assert_eq!(m.remove("199"), Some(3));
        assert_eq!(m.get("199"), None);
    }
}
