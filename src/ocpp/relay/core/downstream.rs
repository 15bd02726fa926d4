//! Upstream → charger CALLs (docs/upstream.md "What is relayed", "Power authority"): the
//! power-authority check, the 1.6 transaction id an upstream RemoteStop names, the MessageIds
//! of the upstream's CALLs waiting for the charger, and the notices ocpp809 sends upstream on
//! its own behalf. Part of [`Relay`]; the rules are in the parent module.

use super::*;

impl Relay {
    pub(super) fn upstream_call(&mut self, id: String, action: String, payload: Value) {
        if self.session.outstanding_id() == Some(id.as_str()) || self.downstream.contains(&id) {
            let error = CallError::new(
                ErrorCode::GenericError,
                "MessageId already in use on this charger",
            );
            self.to_upstream
                .push_back(framing::call_error(&id, &error, self.version));
            return;
        }
        let payload = self.map_inbound(&action, payload);
        match inspect_downstream_call(&action, &payload, &self.authority) {
            Decision::Forward { payload, notice } => {
                if self.downstream.len() >= DOWNSTREAM_MAX {
                    self.downstream.pop_front();
                }
                self.downstream.push_back(id.clone());
                self.stats.downstream_calls += 1;
                self.to_charger
                    .push_back(framing::call(&id, &action, &payload));
                if let Some(notice) = notice {
                    if self.pending_notices.len() >= DOWNSTREAM_MAX {
                        self.pending_notices.pop_front();
                    }
                    self.pending_notices.push_back((id, notice));
                }
            }
            Decision::Answer { payload, notice } => {
                self.to_upstream
                    .push_back(framing::call_result(&id, &payload));
                self.notify(notice);
            }
        }
    }

    /// 1.6 RemoteStopTransaction naming the upstream's id of a transaction the charger knows
    /// under ours.
    pub(super) fn map_inbound(&self, action: &str, mut payload: Value) -> Value {
        if self.version == Version::V16 && action == "RemoteStopTransaction" {
            if let Some(y) = transaction_id(&payload) {
                if let Some((x, _)) = self.state.tx_map.iter().find(|(_, v)| **v == y) {
                    payload["transactionId"] = Value::from(*x);
                }
            }
        }
        payload
    }

    pub(super) fn notify(&mut self, notice: Option<Notice>) {
        let Some(notice) = notice else {
            return;
        };
        self.notice_counter += 1;
        let id = format!("ocpp809-n{}", self.notice_counter);
        self.to_upstream
            .push_back(framing::call(&id, &notice.action, &notice.payload));
        self.notices.insert(id);
    }

    pub(super) fn take_downstream(&mut self, id: &str) -> bool {
        match self.downstream.iter().position(|d| d == id) {
            Some(at) => {
                self.downstream.remove(at);
                true
            }
            None => false,
        }
    }
}
