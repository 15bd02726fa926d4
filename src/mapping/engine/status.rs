//! The status rows of CONTRACT §3/§7: per connector available / occupied / faulted, the
//! charger's "any connector faulted" and "alarm active" points, from StatusNotification,
//! transactions, NotifyEvent and 1.6 error codes (version-neutral events).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::{ChargerState, Output};
use crate::mapping::charger::{ConnectorId, ConnectorStatus};
use crate::mapping::layout::charger;
use crate::station::PointValue;

/// 1.6 errorCodes that are not alarms (CONTRACT §7).
const NOT_ALARMS: [&str; 2] = ["NoError", "OtherError"];

#[derive(Clone, Debug, Default)]
pub(super) struct StatusState {
    connectors: HashMap<ConnectorId, ConnectorStatus>,
    /// Open transactions: id → connector.
    transactions: HashMap<String, ConnectorId>,
    /// Active alarms: (connector, name).
    alarms: BTreeSet<(Option<ConnectorId>, String)>,
    /// Alarms that came with a status notification's error code, cleared by the next status
    /// of that connector without one.
    error_code_alarms: BTreeSet<(Option<ConnectorId>, String)>,
}

impl ChargerState {
    /// The last status the connector reported.
    pub(super) fn connector_status(&self, connector: ConnectorId) -> Option<ConnectorStatus> {
        self.status.connectors.get(&connector).copied()
    }

    /// Connectors occupied or in a transaction: the charger's weight in the site share.
    pub(super) fn charging_connectors(&self) -> u8 {
        let connectors = self.settings.block.connectors.min(charger::MAX_CONNECTORS);
        let count = (1..=connectors)
            .filter(|n| {
                self.status.transactions.values().any(|c| c == n)
                    || self
                        .status
                        .connectors
                        .get(n)
                        .is_some_and(|s| s.is_occupied())
            })
            .count();
        u8::try_from(count).unwrap_or(u8::MAX)
    }

    pub(super) fn status(
        &mut self,
        now: DateTime<Utc>,
        connector: ConnectorId,
        status: ConnectorStatus,
        error_code: Option<&str>,
        timestamp: Option<DateTime<Utc>>,
    ) -> Vec<Output> {
        let time = super::monitoring::sample_time(timestamp, now);
        self.status.connectors.insert(connector, status);
        let key = Some(connector);
        let stale: Vec<_> = self
            .status
            .error_code_alarms
            .iter()
            .filter(|(c, name)| *c == key && Some(name.as_str()) != error_code)
            .cloned()
            .collect();
        for alarm in stale {
            self.status.error_code_alarms.remove(&alarm);
            self.status.alarms.remove(&alarm);
        }
        if let Some(code) = error_code.filter(|c| !NOT_ALARMS.contains(c)) {
            let alarm = (key, code.to_string());
            self.status.error_code_alarms.insert(alarm.clone());
            self.status.alarms.insert(alarm);
        }
        let mut out = Vec::new();
        self.report_connector(&mut out, connector, time);
        self.report_charger_flags(&mut out, time);
        out
    }

    pub(super) fn alarm(
        &mut self,
        now: DateTime<Utc>,
        connector: Option<ConnectorId>,
        name: &str,
        active: bool,
        timestamp: Option<DateTime<Utc>>,
    ) -> Vec<Output> {
        if NOT_ALARMS.contains(&name) {
            return Vec::new();
        }
        let alarm = (connector, name.to_string());
        if active {
            self.status.alarms.insert(alarm);
        } else {
            self.status.alarms.remove(&alarm);
            self.status.error_code_alarms.remove(&alarm);
        }
        let mut out = Vec::new();
        self.report_charger_flags(&mut out, super::monitoring::sample_time(timestamp, now));
        out
    }

    pub(super) fn transaction(
        &mut self,
        now: DateTime<Utc>,
        transaction_id: &str,
        connector: Option<ConnectorId>,
        open: bool,
    ) -> Vec<Output> {
        let connector = if open {
            let Some(connector) = connector else {
                return Vec::new();
            };
            self.status
                .transactions
                .insert(transaction_id.to_string(), connector);
            connector
        } else {
            match self
                .status
                .transactions
                .remove(transaction_id)
                .or(connector)
            {
                Some(connector) => connector,
                None => return Vec::new(),
            }
        };
        let mut out = Vec::new();
        self.report_connector(&mut out, connector, now);
        out
    }

    fn report_connector(&mut self, out: &mut Vec<Output>, n: ConnectorId, time: DateTime<Utc>) {
        if n == 0 || n > self.settings.block.connectors.min(charger::MAX_CONNECTORS) {
            return;
        }
        let status = self.status.connectors.get(&n).copied();
        let in_transaction = self.status.transactions.values().any(|c| *c == n);
        if let Some(status) = status {
            let available = status == ConnectorStatus::Available;
            let faulted = status == ConnectorStatus::Faulted;
            self.report_flag(
                out,
                charger::connector(n, charger::CONNECTOR_AVAILABLE),
                available,
                time,
            );
            self.report_flag(
                out,
                charger::connector(n, charger::CONNECTOR_FAULTED),
                faulted,
                time,
            );
        }
        let occupied = in_transaction || status.is_some_and(ConnectorStatus::is_occupied);
        if status.is_some() || in_transaction {
            self.report_flag(
                out,
                charger::connector(n, charger::CONNECTOR_OCCUPIED),
                occupied,
                time,
            );
        }
    }

    fn report_charger_flags(&mut self, out: &mut Vec<Output>, time: DateTime<Utc>) {
        let faulted = self
            .status
            .connectors
            .values()
            .any(|s| *s == ConnectorStatus::Faulted);
        self.report_flag(out, charger::FAULTED, faulted, time);
        let alarm = !self.status.alarms.is_empty();
        self.report_flag(out, charger::ALARM, alarm, time);
    }

    fn report_flag(&mut self, out: &mut Vec<Output>, offset: u32, on: bool, time: DateTime<Utc>) {
        self.report(out, offset, Some(PointValue::Single(on)), 0.0, time);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{connected_engine, points_of};
    use super::*;
    use crate::mapping::charger::ChargerEvent;
    use crate::mapping::engine::{Engine, Input};

    fn status(
        engine: &mut Engine,
        connector: u8,
        status: ConnectorStatus,
        error: Option<&str>,
    ) -> Vec<Output> {
        engine.handle(
            Utc::now(),
            Input::Charger(ChargerEvent::Status {
                charger: "CP001".into(),
                connector,
                status,
                error_code: error.map(String::from),
                timestamp: None,
            }),
        )
    }

    fn single(outputs: &[Output], ioa: u32) -> Option<bool> {
        match points_of(outputs).get(&ioa) {
            Some((Some(PointValue::Single(on)), _)) => Some(*on),
            _ => None,
        }
    }

    #[test]
    fn connector_status_maps_to_available_occupied_and_faulted() {
        let (mut engine, _) = connected_engine();
        let out = status(&mut engine, 1, ConnectorStatus::Available, None);
        assert_eq!(
            (single(&out, 1010), single(&out, 1011), single(&out, 1012)),
            (Some(true), Some(false), Some(false))
        );
        let out = status(&mut engine, 1, ConnectorStatus::SuspendedEv, None);
        assert_eq!(
            (single(&out, 1010), single(&out, 1011)),
            (Some(false), Some(true))
        );
        let out = status(&mut engine, 2, ConnectorStatus::Faulted, None);
        assert_eq!(
            (single(&out, 1022), single(&out, 1004)),
            (Some(true), Some(true))
        );
    }

    #[test]
    fn connector_zero_faulted_sets_the_charger_faulted_point() {
        let (mut engine, _) = connected_engine();
        let out = status(&mut engine, 0, ConnectorStatus::Faulted, None);
        assert_eq!(single(&out, 1004), Some(true));
        let out = status(&mut engine, 0, ConnectorStatus::Available, None);
        assert_eq!(single(&out, 1004), Some(false));
    }

    #[test]
    fn an_error_code_raises_the_alarm_until_a_status_without_it() {
        let (mut engine, _) = connected_engine();
        let out = status(
            &mut engine,
            1,
            ConnectorStatus::Faulted,
            Some("GroundFailure"),
        );
        assert_eq!(single(&out, 1005), Some(true));
        let out = status(&mut engine, 1, ConnectorStatus::Available, None);
        assert_eq!(single(&out, 1005), Some(false));
        let out = status(
            &mut engine,
            1,
            ConnectorStatus::Available,
            Some("OtherError"),
        );
        assert_eq!(
            single(&out, 1005),
            None,
            "OtherError is not an alarm and nothing changed"
        );
    }

    #[test]
    fn notify_event_alarms_are_raised_and_cleared_by_name() {
        let (mut engine, now) = connected_engine();
        let alarm = |active| {
            Input::Charger(ChargerEvent::Alarm {
                charger: "CP001".into(),
                connector: Some(1),
                name: "Overload".into(),
                active,
                timestamp: None,
            })
        };
        assert_eq!(single(&engine.handle(now, alarm(true)), 1005), Some(true));
        assert_eq!(single(&engine.handle(now, alarm(false)), 1005), Some(false));
    }

    #[test]
    fn an_open_transaction_makes_the_connector_occupied() {
        let (mut engine, now) = connected_engine();
        status(&mut engine, 2, ConnectorStatus::Available, None);
        let started = engine.handle(
            now,
            Input::Charger(ChargerEvent::TransactionStarted {
                charger: "CP001".into(),
                connector: 2,
                transaction_id: "7".into(),
                id_tag: None,
                meter_start_wh: None,
                timestamp: None,
            }),
        );
        assert_eq!(single(&started, 1021), Some(true));
        let ended = engine.handle(
            now,
            Input::Charger(ChargerEvent::TransactionEnded {
                charger: "CP001".into(),
                connector: None,
                transaction_id: "7".into(),
                meter_stop_wh: None,
                reason: None,
                timestamp: None,
            }),
        );
        assert_eq!(single(&ended, 1021), Some(false));
    }
}
