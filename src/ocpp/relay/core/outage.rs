//! The outage side of the relay (docs/upstream.md "Upstream outage"): local answers while the
//! upstream is unreachable or slow, the durable queue of transaction messages and its replay
//! in order, the resynchronising BootNotification / StatusNotification of a new upstream
//! connection, and the report of ocpp809's own limit. Part of [`Relay`]; the rules are in the
//! parent module.

use super::*;

impl Relay {
    /// Gives the charger the local answer; stores transaction messages first.
    pub(super) fn answer_locally(
        &mut self,
        id: String,
        action: &str,
        request: &Value,
        forwarded: Value,
        local: String,
    ) {
        self.stats.answered_locally += 1;
        let local = self.offline_authorization(action, request, local);
        let ok = local.starts_with("[3");
        if ok && action == "StatusNotification" {
            if let Some(key) = connector_key(self.version, request) {
                self.statuses.insert(key, forwarded.clone());
            }
        }
        if ok && is_transaction_message(self.version, action, request) {
            let local_tx = (self.version == Version::V16 && action == "StartTransaction")
                .then(|| result_payload(&local, self.version).and_then(|p| transaction_id(&p)))
                .flatten();
            self.enqueue(Queued {
                seq: 0,
                id,
                action: action.to_owned(),
                payload: forwarded,
                local_tx,
            });
        }
        self.to_charger.push_back(local);
    }

    pub(super) fn enqueue(&mut self, mut record: Queued) {
        let capacity = self.config.as_ref().map_or(1, |c| c.queue_capacity.max(1));
        while self.queue.len() >= capacity {
            // The one in flight stays: its answer is on the way.
            let at = usize::from(self.replaying.is_some() && self.queue.len() > 1);
            let Some(old) = self.queue.remove(at) else {
                break;
            };
            self.journal.done(old.seq);
            self.stats.dropped += 1;
            warn!(charger = %self.session.charger(), action = old.action, id = old.id, capacity,
                "upstream queue full; oldest message dropped");
        }
        match self.journal.append(&record) {
            Ok(seq) => {
                record.seq = seq;
                self.stats.queued += 1;
                self.queue.push_back(record);
            }
            Err(error) => {
                self.stats.dropped += 1;
                warn!(charger = %self.session.charger(), action = record.action, %error,
                    "upstream queue not writable; message will not reach the upstream");
            }
        }
    }

    /// Sends the next message of ocpp809's own when the upstream is up and nothing is in
    /// flight: the BootNotification a new upstream connection has not seen, then the queue
    /// in order, then the latest StatusNotification of each connector answered locally.
    pub(super) fn pump(&mut self, now: Instant) {
        let Some(config) = &self.config else {
            return;
        };
        let busy = self.replaying.is_some() || self.resync.is_some() || !self.awaiting.is_empty();
        if !self.up || busy {
            return;
        }
        let deadline = now.checked_add(config.answer_timeout).unwrap_or(now);
        if !self.upstream_booted {
            self.upstream_booted = true;
            if let Some(boot) = self.state.boot.clone() {
                self.send_resync("BootNotification", &boot, deadline);
                return;
            }
        }
        if let Some(front) = self.queue.front() {
            let mapped = self.map_outbound(&front.action, &front.payload);
            let text = framing::call(&front.id, &front.action, &mapped);
            self.replaying = Some(deadline);
            self.to_upstream.push_back(text);
            return;
        }
        if let Some(key) = self.statuses.keys().next().cloned() {
            if let Some(status) = self.statuses.remove(&key) {
                self.send_resync("StatusNotification", &status, deadline);
                return;
            }
        }
        self.tell_limit();
    }

    /// Tells the upstream ocpp809's limit (2.0.1 NotifyChargingLimit / ClearedChargingLimit,
    /// 1.6 DataTransfer) once the connection has had its BootNotification.
    pub(super) fn tell_limit(&mut self) {
        if !self.up || !self.upstream_booted || self.resync.is_some() {
            return;
        }
        let Some(limit) = self.limit_news.take() else {
            return;
        };
        let (action, payload) =
            clip::limit_notice(self.version, limit.as_ref(), clip::LimitSource::So, false);
        self.notify(Some(Notice {
            action: action.to_owned(),
            payload,
        }));
    }

    pub(super) fn send_resync(&mut self, action: &str, payload: &Value, deadline: Instant) {
        self.resync_counter += 1;
        let id = format!("ocpp809-r{}", self.resync_counter);
        self.to_upstream
            .push_back(framing::call(&id, action, payload));
        self.resync = Some((id, deadline));
    }

    pub(super) fn upstream_answer(&mut self, now: Instant, frame: Frame) {
        let id = frame.id().to_owned();
        if let Some(at) = self.awaiting.iter().position(|a| a.id == id) {
            if let Some(a) = self.awaiting.remove(at) {
                self.stats.answered_upstream += 1;
                if let Frame::CallResult { payload, .. } = &frame {
                    self.learn(&a.action, &a.request, payload);
                    if self.version == Version::V16 && a.action == "StopTransaction" {
                        let local = transaction_id(&a.request);
                        if local.is_some_and(|x| self.state.tx_map.remove(&x).is_some()) {
                            self.journal.save_state(&self.state);
                        }
                    }
                    if self.version == Version::V16 && a.action == "StartTransaction" {
                        let local =
                            result_payload(&a.local, self.version).and_then(|p| transaction_id(&p));
                        if let (Some(x), Some(y)) = (local, transaction_id(payload)) {
                            if x != y {
                                insert_bounded(&mut self.state.tx_alias, y, x);
                                self.journal.save_state(&self.state);
                            }
                        }
                    }
                }
                self.to_charger.push_back(frame.encode());
            }
            return;
        }
        if self.replaying.is_some() && self.queue.front().is_some_and(|q| q.id == id) {
            self.replaying = None;
            if let Some(q) = self.queue.pop_front() {
                self.delivered(q, &frame);
            }
            self.pump(now);
            return;
        }
        if self.resync.as_ref().is_some_and(|(r, _)| *r == id) {
            self.resync = None;
            if let Frame::CallError {
                code, description, ..
            } = &frame
            {
                warn!(charger = %self.session.charger(), code, description, "upstream refused our resynchronisation");
            }
            self.pump(now);
            return;
        }
        if self.notices.remove(&id) {
            debug!(charger = %self.session.charger(), id, "upstream answered our notice");
            return;
        }
        debug!(charger = %self.session.charger(), id, "upstream answer to nothing outstanding ignored");
    }

    /// A queued message the upstream answered: learn from the answer, forget the record.
    pub(super) fn delivered(&mut self, q: Queued, frame: &Frame) {
        self.stats.replayed += 1;
        match frame {
            Frame::CallResult { payload, .. } => {
                self.learn(&q.action, &q.payload, payload);
                if let (Some(x), Some(y)) = (q.local_tx, transaction_id(payload)) {
                    insert_bounded(&mut self.state.tx_map, x, y);
                    self.journal.save_state(&self.state);
                }
                if self.version == Version::V16 && q.action == "StopTransaction" {
                    let x = transaction_id(&q.payload);
                    if x.is_some_and(|x| self.state.tx_map.remove(&x).is_some()) {
                        self.journal.save_state(&self.state);
                    }
                }
            }
            Frame::CallError {
                code, description, ..
            } => {
                warn!(charger = %self.session.charger(), action = q.action, id = q.id, code, description,
                    "upstream refused a queued message; not sent again");
            }
            Frame::Call { .. } => {}
        }
        self.journal.done(q.seq);
    }
}
