//! Topic names and payloads of the MQTT mirror (CONTRACT §5): a pure function from one engine
//! [`Telemetry`] report to one [`Publication`].
//!
//! Topic levels taken from charge point ids and meter names are escaped, because an id that
//! an unknown charger presents may contain characters with a meaning in MQTT topics. The
//! escape is percent-encoding of exactly these characters, as UTF-8 bytes in upper-case hex:
//! `%` → `%25`, `/` → `%2F`, `+` → `%2B`, `#` → `%23`, and every control character (including
//! NUL, which MQTT forbids) → `%XX`. Everything else is kept, so ids that the configuration
//! accepts (no `/`, `+`, `#` or control characters) appear unchanged unless they contain `%`.
//! The mapping is injective: a consumer can undo it with any percent-decoder.

use crate::mapping::telemetry::Telemetry;
use crate::spool::Record;

/// Plain-text payloads of `{prefix}/{station}/status`.
pub const ONLINE: &[u8] = b"online";
pub const OFFLINE: &[u8] = b"offline";

/// One MQTT message to publish with QoS 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Retained state snapshot (only the newest per topic matters).
    pub retain: bool,
}

impl From<&Publication> for Record {
    fn from(publication: &Publication) -> Record {
        Record {
            label: publication.topic.clone(),
            payload: publication.payload.clone(),
            retain: publication.retain,
        }
    }
}

impl From<Record> for Publication {
    fn from(record: Record) -> Publication {
        Publication {
            topic: record.label,
            payload: record.payload,
            retain: record.retain,
        }
    }
}

/// The topic names of one station: `{prefix}/{station}/…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    /// `prefix` may contain `/` (several levels); `station` is one level and is escaped.
    pub fn new(prefix: &str, station: &str) -> Self {
        Self {
            base: format!("{prefix}/{}", escape_level(station)),
        }
    }

    /// `{prefix}/{station}/status`
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// The retained `status` message.
    pub fn status_publication(&self, online: bool) -> Publication {
        Publication {
            topic: self.status(),
            payload: if online { ONLINE } else { OFFLINE }.to_vec(),
            retain: true,
        }
    }

    /// The topic of a report, with the JSON payload the contract prescribes.
    pub fn publication(&self, telemetry: &Telemetry) -> Result<Publication, serde_json::Error> {
        let base = &self.base;
        let (topic, payload) = match telemetry {
            Telemetry::Site(r) => (format!("{base}/site"), serde_json::to_vec(r)?),
            Telemetry::Charger(r) => (
                format!("{base}/chargers/{}/state", escape_level(&r.charger)),
                serde_json::to_vec(r)?,
            ),
            Telemetry::Meter(r) => (
                format!("{base}/meters/{}", escape_level(&r.name)),
                serde_json::to_vec(r)?,
            ),
            Telemetry::Sample(r) => (
                format!("{base}/chargers/{}/meter", escape_level(&r.charger)),
                serde_json::to_vec(r)?,
            ),
            Telemetry::Event(r) => (
                format!("{base}/chargers/{}/events", escape_level(&r.charger)),
                serde_json::to_vec(r)?,
            ),
            Telemetry::Command(r) => (format!("{base}/commands"), serde_json::to_vec(r)?),
        };
        Ok(Publication {
            topic,
            payload,
            retain: telemetry.is_state(),
        })
    }
}

/// Makes `text` a single, wildcard-free topic level (see the module documentation).
pub fn escape_level(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '/' | '+' | '#') || c.is_control() {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::telemetry::{
        ChargerNotice, ChargerReport, CommandReport, ConnectorReport, EventReport, MeterReport,
        SampleReport, SiteReport,
    };
    use chrono::{TimeZone, Utc};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    fn ts() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 5)
            .single()
            .expect("valid time")
    }

    fn topics() -> Topics {
        Topics::new("ocpp809", "plant")
    }

    fn json_of(p: &Publication) -> Value {
        serde_json::from_slice(&p.payload).expect("payload is JSON")
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn site_snapshot_is_retained_with_the_contract_fields() {
        let p = topics()
            .publication(&Telemetry::Site(SiteReport {
                power_kw: Some(12.5),
                energy_wh: Some(1000.0),
                limit_kw: None,
                failsafe: false,
                chargers_online: 2,
                ts: ts(),
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/site");
        assert!(p.retain);
        assert_eq!(
            json_of(&p),
            json!({"power_kw": 12.5, "energy_wh": 1000.0, "limit_kw": null, "failsafe": false,
                   "chargers_online": 2, "ts": "2026-03-01T12:00:05.000Z"})
        );
    }

    #[test]
    fn charger_state_is_retained_with_connectors_keyed_by_number() {
        let mut connectors = BTreeMap::new();
        connectors.insert(
            "1".to_string(),
            ConnectorReport {
                status: Some("Charging".into()),
                power_kw: Some(7.2),
                energy_wh: Some(500.0),
            },
        );
        let p = topics()
            .publication(&Telemetry::Charger(ChargerReport {
                charger: "CP001".into(),
                online: true,
                power_kw: Some(7.2),
                energy_wh: Some(500.0),
                limit_kw: Some(11.0),
                connectors,
                ts: ts(),
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/chargers/CP001/state");
        assert!(p.retain);
        let v = json_of(&p);
        assert_eq!(
            keys(&v),
            [
                "connectors",
                "energy_wh",
                "limit_kw",
                "online",
                "power_kw",
                "ts"
            ]
        );
        assert_eq!(
            v["connectors"],
            json!({"1": {"status": "Charging", "power_kw": 7.2, "energy_wh": 500.0}})
        );
        assert_eq!(v["limit_kw"], json!(11.0));
    }

    #[test]
    fn meter_snapshot_is_retained_under_its_name() {
        let p = topics()
            .publication(&Telemetry::Meter(MeterReport {
                name: "grid".into(),
                power_kw: Some(3.0),
                energy_wh: None,
                current_a: Some(4.5),
                voltage_v: Some(231.0),
                valid: false,
                ts: ts(),
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/meters/grid");
        assert!(p.retain);
        assert_eq!(
            json_of(&p),
            json!({"power_kw": 3.0, "energy_wh": null, "current_a": 4.5, "voltage_v": 231.0,
                   "valid": false, "ts": "2026-03-01T12:00:05.000Z"})
        );
    }

    #[test]
    fn a_sample_is_one_non_retained_message() {
        let p = topics()
            .publication(&Telemetry::Sample(SampleReport {
                charger: "CP001".into(),
                connector: 2,
                ts: ts(),
                measurand: "Power.Active.Import".into(),
                value: Some(7200.0),
                unit: "W".into(),
                valid: true,
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/chargers/CP001/meter");
        assert!(!p.retain);
        assert_eq!(
            json_of(&p),
            json!({"connector": 2, "ts": "2026-03-01T12:00:05.000Z",
                   "measurand": "Power.Active.Import", "value": 7200.0, "unit": "W", "valid": true})
        );
    }

    #[test]
    fn an_event_carries_its_type_and_details_flat() {
        let p = topics()
            .publication(&Telemetry::Event(EventReport {
                charger: "CP001".into(),
                ts: ts(),
                event: ChargerNotice::Status {
                    connector: 1,
                    status: "Faulted".into(),
                    error_code: Some("GroundFailure".into()),
                },
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/chargers/CP001/events");
        assert!(!p.retain);
        assert_eq!(
            json_of(&p),
            json!({"type": "status", "ts": "2026-03-01T12:00:05.000Z", "connector": 1,
                   "status": "Faulted", "error_code": "GroundFailure"})
        );
    }

    #[test]
    fn a_command_goes_to_the_station_commands_topic() {
        let p = topics()
            .publication(&Telemetry::Command(CommandReport {
                ts: ts(),
                ioa: 1090,
                type_id: 50,
                value: Some(11.0),
                charger: Some("CP001".into()),
                positive: false,
                reason: Some("charger offline".into()),
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/commands");
        assert!(!p.retain);
        let v = json_of(&p);
        assert_eq!(
            keys(&v),
            ["charger", "ioa", "positive", "reason", "ts", "type_id", "value"]
        );
        assert_eq!(v["positive"], json!(false));
    }

    #[test]
    fn status_is_plain_text_and_retained() {
        let on = topics().status_publication(true);
        assert_eq!(on.topic, "ocpp809/plant/status");
        assert_eq!(on.payload, b"online");
        assert!(on.retain);
        assert_eq!(topics().status_publication(false).payload, b"offline");
    }

    #[test]
    fn a_prefix_may_have_several_levels() {
        assert_eq!(Topics::new("site/ev", "s1").status(), "site/ev/s1/status");
    }

    #[test]
    fn wildcards_separators_and_percent_in_ids_are_percent_encoded() {
        assert_eq!(escape_level("CP001"), "CP001");
        assert_eq!(escape_level("a/b+c#d"), "a%2Fb%2Bc%23d");
        assert_eq!(escape_level("100%"), "100%25");
        assert_eq!(escape_level("x\u{0}y\n"), "x%00y%0A");
        assert_eq!(escape_level("Zähler-1 $x"), "Zähler-1 $x");
        // Injective: the encoded forms of "%2F" and "/" differ.
        assert_ne!(escape_level("%2F"), escape_level("/"));
    }

    #[test]
    fn an_unusual_charger_id_stays_one_topic_level() {
        let p = topics()
            .publication(&Telemetry::Event(EventReport {
                charger: "evil/+/#".into(),
                ts: ts(),
                event: ChargerNotice::Connected,
            }))
            .expect("serialises");
        assert_eq!(p.topic, "ocpp809/plant/chargers/evil%2F%2B%2F%23/events");
        assert_eq!(json_of(&p)["type"], json!("connected"));
    }
}
