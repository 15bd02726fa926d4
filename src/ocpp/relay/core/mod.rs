//! The relay of one charger, sans-IO (issue 10, docs/upstream.md). It wraps the charger's
//! local [`Session`] (which still decodes everything for the mapping engine and keeps
//! answering for ocpp809's own commands) and decides, frame by frame, what goes to the
//! charger and what goes to the upstream CSMS. Inputs: charger frames, upstream frames,
//! upstream up/down, commands from the engine, time. Outputs: [`Relay::poll_outgoing`] (to
//! the charger), [`Relay::poll_upstream`] (to the upstream), [`Relay::poll_event`] (engine).
//!
//! - Charger CALL, upstream up and nothing queued: the session handles it (events as
//!   without a relay) but its answer is held; the CALL goes upstream under the charger's
//!   MessageId (sanitized or original payload) and the charger gets the upstream's
//!   CALLRESULT/CALLERROR. No answer within `answer_timeout`: the local answer is given.
//! - Otherwise (upstream down, or older messages still queued): the local answer at once.
//!   Transaction messages (1.6 StartTransaction, StopTransaction, MeterValues with a
//!   transactionId; 2.0.1 TransactionEvent) are first stored durably ([`Journal`](super::state::Journal)), then
//!   replayed upstream in order, one at a time, when it is back, before anything new.
//!   Heartbeat and Authorize are not queued (stale, of no use to a CSMS later); of the
//!   StatusNotifications only the latest per connector is kept (in memory) and sent after
//!   the queue, so the upstream learns the current state, not the history.
//! - A new upstream connection first gets the charger's last BootNotification (persisted)
//!   unless the charger sends one itself: a CSMS may refuse anything before it (2.0.1
//!   B01/B02), and a charger that stays connected does not boot again for our sake.
//!   These resynchronising CALLs use ids `ocpp809-r{n}`; their answers stay here.
//! - OCPP 1.6 transaction ids (the CSMS assigns them, 1.6 §4.8): a StartTransaction answered
//!   locally (our id X) and later answered by the upstream with Y gives X→Y, applied to every
//!   later MeterValues/StopTransaction sent upstream (and Y→X to upstream RemoteStop). One
//!   answered live gives the charger Y; the session keeps tracking it under its own X
//!   (Y→X applied to what the session sees). Both maps are persisted.
//! - Authorization while the upstream is unreachable: [`OfflineAuthorization`](super::offline::OfflineAuthorization) over a cache
//!   of idTag → status learned from the upstream's answers (Authorize, StartTransaction
//!   idTagInfo, 2.0.1 idTokenInfo), persisted.
//! - Upstream CALL: passes the power-authority hook
//!   ([`inspect_downstream_call`](super::authority::inspect_downstream_call)), then goes to the
//!   charger under the upstream's MessageId; the charger's answer goes back upstream. Our own
//!   commands use ids of the form `{6 hex}-{n}` (calls.rs); an upstream CALL that reuses the
//!   id of our outstanding command is refused rather than confused with it.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{debug, info, warn};

use super::authority::{inspect_downstream_call, Authority, Decision, Notice};
use super::clip;
use super::conform::conform;
use super::messages::{
    canonical_action, connector_key, is_transaction_message, result_payload, transaction_id,
};
use super::offline::{self, OfflineAuthorization};
use super::state::{insert_bounded, Journal, NoJournal, Queued, RelayState};
use crate::mapping::charger::{ChargerCommand, ChargerEvent, ChargerRequest, RequestId};
use crate::ocpp::framing::{self, Frame};
use crate::ocpp::session::Session;
use crate::ocpp::{CallError, ErrorCode, Version};

/// Most upstream CALLs waiting for the charger's answer at once.
const DOWNSTREAM_MAX: usize = 64;

/// What the upstream receives of a charger's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Sanitized,
    Original,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RelayConfig {
    pub forward: Forward,
    pub answer_timeout: Duration,
    /// Most messages in the durable queue; beyond it the oldest is dropped.
    pub queue_capacity: usize,
    pub offline: OfflineAuthorization,
    /// idTags accepted while the upstream is unreachable, whatever `offline` and the cache say.
    pub local_list: Arc<BTreeSet<String>>,
}

/// What the upstream connection reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamEvent {
    Up,
    Down,
    Text(String),
}

/// Counters of one relay (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Charger CALLs sent upstream live.
    pub forwarded: u64,
    /// Charger CALLs answered by the upstream.
    pub answered_upstream: u64,
    /// Charger CALLs answered locally (upstream down, busy replaying, or too slow).
    pub answered_locally: u64,
    pub queued: u64,
    pub replayed: u64,
    /// Queued messages dropped (queue full, or not storable).
    pub dropped: u64,
    /// Upstream CALLs relayed to the charger.
    pub downstream_calls: u64,
}

#[derive(Debug)]
struct Awaiting {
    id: String,
    action: String,
    /// The charger's payload as received.
    request: Value,
    /// As forwarded upstream (queued if the upstream does not answer).
    forwarded: Value,
    local: String,
    deadline: Instant,
}

/// One charger's relay. Without an upstream ([`Relay::direct`]) it is the bare session.
pub struct Relay {
    session: Session,
    version: Version,
    /// `None`: no upstream for this charger; everything is the session's.
    config: Option<RelayConfig>,
    up: bool,
    awaiting: VecDeque<Awaiting>,
    queue: VecDeque<Queued>,
    /// Deadline of the queued message sent upstream and not answered yet.
    replaying: Option<Instant>,
    /// A CALL of ocpp809's own resynchronising the upstream (BootNotification, latest
    /// StatusNotifications): its id and deadline.
    resync: Option<(String, Instant)>,
    /// Whether the current upstream connection has seen a BootNotification.
    upstream_booted: bool,
    /// The latest StatusNotification per connector answered locally, sent after the queue.
    statuses: BTreeMap<String, Value>,
    resync_counter: u64,
    /// Upstream CALLs relayed to the charger, waiting for its answer.
    downstream: VecDeque<String>,
    /// Notices that wait for the charger to accept the (clipped) CALL they describe, by the
    /// CALL's id: the upstream is told only what the charger really applies.
    pending_notices: VecDeque<(String, Notice)>,
    /// ocpp809's own limit commands (SetLimit: the limit, ClearLimit: none) waiting for the
    /// charger's answer; once it accepted one, the upstream is told the limit in force.
    pending_limits: VecDeque<(RequestId, Option<clip::Limit>)>,
    /// ocpp809's own limit the charger last accepted.
    limit_in_force: Option<clip::Limit>,
    /// A limit the upstream has not been told yet (`Some(None)`: lifted), sent as soon as the
    /// upstream connection has had its BootNotification.
    limit_news: Option<Option<clip::Limit>>,
    notices: HashSet<String>,
    notice_counter: u64,
    state: RelayState,
    authority: Authority,
    journal: Box<dyn Journal>,
    to_charger: VecDeque<String>,
    to_upstream: VecDeque<String>,
    stats: RelayStats,
}

impl Relay {
    /// No upstream: every frame is the session's.
    pub fn direct(session: Session) -> Relay {
        let version = session.version();
        Relay::build(
            session,
            None,
            Box::new(NoJournal::default()),
            Vec::new(),
            RelayState::default(),
            Authority::new(version, 3),
        )
    }

    /// Relayed to an upstream (initially down). `recovered`: the queue found on disk, in
    /// order; `state`: the persisted maps and cache; `phases`: the charger's, for the power
    /// authority's A ↔ kW conversion.
    pub fn relayed(
        session: Session,
        config: RelayConfig,
        journal: Box<dyn Journal>,
        recovered: Vec<Queued>,
        state: RelayState,
        phases: u8,
    ) -> Relay {
        let authority = Authority::new(session.version(), phases);
        Relay::build(session, Some(config), journal, recovered, state, authority)
    }

    fn build(
        session: Session,
        config: Option<RelayConfig>,
        journal: Box<dyn Journal>,
        recovered: Vec<Queued>,
        state: RelayState,
        authority: Authority,
    ) -> Relay {
        let version = session.version();
        Relay {
            session,
            version,
            config,
            up: false,
            awaiting: VecDeque::new(),
            queue: recovered.into(),
            replaying: None,
            resync: None,
            upstream_booted: false,
            statuses: BTreeMap::new(),
            resync_counter: 0,
            downstream: VecDeque::new(),
            pending_notices: VecDeque::new(),
            pending_limits: VecDeque::new(),
            limit_in_force: None,
            limit_news: None,
            notices: HashSet::new(),
            notice_counter: 0,
            state,
            authority,
            journal,
            to_charger: VecDeque::new(),
            to_upstream: VecDeque::new(),
            stats: RelayStats::default(),
        }
    }

    pub fn is_relayed(&self) -> bool {
        self.config.is_some()
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn stats(&self) -> RelayStats {
        self.stats
    }

    /// Messages waiting for the upstream.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn state(&self) -> &RelayState {
        &self.state
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// One text frame from the charger.
    pub fn handle_text(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        text: &str,
        next_transaction_id: &mut dyn FnMut() -> i32,
    ) {
        if self.config.is_none() {
            self.session
                .handle_text(now, wall, text, next_transaction_id);
            self.drain_session(None);
            return;
        }
        match framing::parse(text, self.version) {
            Ok(Frame::Call {
                id,
                action,
                payload,
            }) => self.charger_call(now, wall, id, action, payload, next_transaction_id),
            Ok(frame @ (Frame::CallResult { .. } | Frame::CallError { .. }))
                if self.take_downstream(frame.id()) =>
            {
                let id = frame.id().to_owned();
                if self.up {
                    self.to_upstream.push_back(text.to_owned());
                } else {
                    debug!(charger = %self.session.charger(), id, "answer to an upstream CALL dropped: upstream down");
                }
                let accepted = matches!(&frame, Frame::CallResult { payload, .. }
                    if payload.get("status").and_then(Value::as_str) == Some("Accepted"));
                if let Some(at) = self.pending_notices.iter().position(|(n, _)| *n == id) {
                    let notice = self.pending_notices.remove(at).map(|(_, notice)| notice);
                    if accepted && self.up {
                        self.notify(notice);
                    }
                }
            }
            _ => {
                self.session
                    .handle_text(now, wall, text, next_transaction_id);
                self.drain_session(None);
            }
        }
    }

    pub fn handle_binary(&mut self, len: usize) {
        self.session.handle_binary(len);
    }

    /// A command from the engine (ocpp809's own; its answer stays local).
    pub fn send_command(&mut self, now: Instant, request: ChargerRequest) {
        self.authority.observe_command(&request.command);
        let limit = match &request.command {
            ChargerCommand::SetLimit { limit, unit, .. } => Some(Some(clip::Limit {
                value: *limit,
                unit: *unit,
            })),
            ChargerCommand::ClearLimit { .. } => Some(None),
            _ => None,
        };
        if let (Some(limit), Some(_)) = (limit, &self.config) {
            if self.pending_limits.len() >= DOWNSTREAM_MAX {
                self.pending_limits.pop_front();
            }
            self.pending_limits.push_back((request.id, limit));
        }
        self.session.send_command(now, request);
        self.drain_session(None);
    }

    pub fn handle_upstream(&mut self, now: Instant, event: UpstreamEvent) {
        match event {
            UpstreamEvent::Up => self.upstream_up(now),
            UpstreamEvent::Down => self.upstream_down(now),
            UpstreamEvent::Text(text) => self.handle_upstream_text(now, &text),
        }
    }

    /// The upstream connection is established.
    pub fn upstream_up(&mut self, now: Instant) {
        if self.config.is_none() || self.up {
            return;
        }
        self.up = true;
        self.upstream_booted = false;
        // A new upstream connection learns the limit in force like any later change.
        if let Some(limit) = self.limit_in_force {
            self.limit_news = Some(Some(limit));
        }
        info!(charger = %self.session.charger(), queued = self.queue.len(), "upstream connected");
        self.pump(now);
    }

    /// The upstream connection is gone: everything waiting for it is answered locally.
    pub fn upstream_down(&mut self, now: Instant) {
        if self.config.is_none() || !self.up {
            return;
        }
        self.up = false;
        info!(charger = %self.session.charger(), queued = self.queue.len(), "upstream disconnected; answering locally");
        self.replaying = None;
        self.resync = None;
        self.downstream.clear();
        self.notices.clear();
        while let Some(a) = self.awaiting.pop_front() {
            self.answer_locally(a.id, &a.action, &a.request, a.forwarded, a.local);
        }
        let _ = now;
    }

    /// One text frame from the upstream.
    pub fn handle_upstream_text(&mut self, now: Instant, text: &str) {
        if self.config.is_none() || !self.up {
            return;
        }
        match framing::parse(text, self.version) {
            Ok(Frame::Call {
                id,
                action,
                payload,
            }) => self.upstream_call(id, action, payload),
            Ok(frame @ (Frame::CallResult { .. } | Frame::CallError { .. })) => {
                self.upstream_answer(now, frame)
            }
            Err(e) if !e.is_response() => {
                self.to_upstream.push_back(e.to_call_error(self.version));
            }
            Err(e) => {
                debug!(charger = %self.session.charger(), error = %e, "malformed upstream answer ignored")
            }
        }
        self.pump(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
        self.drain_session(None);
        while self.awaiting.front().is_some_and(|a| a.deadline <= now) {
            if let Some(a) = self.awaiting.pop_front() {
                warn!(charger = %self.session.charger(), id = a.id, action = a.action,
                    "upstream did not answer in time; local answer given");
                self.answer_locally(a.id, &a.action, &a.request, a.forwarded, a.local);
            }
        }
        if self.resync.as_ref().is_some_and(|(_, d)| *d <= now) {
            debug!(charger = %self.session.charger(), "upstream did not answer our resynchronisation; going on");
            self.resync = None;
        }
        if self.replaying.is_some_and(|d| d <= now) {
            debug!(charger = %self.session.charger(), "queued message unanswered; sent again");
            self.replaying = None;
        }
        self.pump(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.session.poll_timeout(),
            self.awaiting.front().map(|a| a.deadline),
            self.replaying,
            self.resync.as_ref().map(|(_, d)| *d),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next frame for the charger.
    pub fn poll_outgoing(&mut self) -> Option<String> {
        self.to_charger.pop_front()
    }

    /// The next frame for the upstream.
    pub fn poll_upstream(&mut self) -> Option<String> {
        self.to_upstream.pop_front()
    }

    /// The session's next event; an accepted limit of ocpp809's own is also reported
    /// upstream (2.0.1 NotifyChargingLimit / ClearedChargingLimit, 1.6 DataTransfer).
    pub fn poll_event(&mut self) -> Option<ChargerEvent> {
        let event = self.session.poll_event()?;
        if let ChargerEvent::CommandFinished {
            request, result, ..
        } = &event
        {
            if let Some(at) = self.pending_limits.iter().position(|(r, _)| r == request) {
                let limit = self.pending_limits.remove(at).and_then(|(_, limit)| limit);
                if result.is_positive() {
                    self.limit_in_force = limit;
                    self.limit_news = Some(limit);
                    self.tell_limit();
                }
            }
        }
        Some(event)
    }

    pub fn close(&mut self) {
        self.session.close();
        self.to_charger.clear();
    }

    fn charger_call(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        id: String,
        action: String,
        payload: Value,
        next_transaction_id: &mut dyn FnMut() -> i32,
    ) {
        let for_session = self.session_view(&canonical_action(self.version, &action), &payload);
        let text = framing::call(&id, &action, for_session.as_ref().unwrap_or(&payload));
        // The session reads a mis-cased action leniently; the upstream gets it spelled right.
        let action = canonical_action(self.version, &action);
        self.session
            .handle_text(now, wall, &text, next_transaction_id);
        let Some(local) = self.drain_session(Some(&id)) else {
            return;
        };
        if self.version == Version::V16 && action == "StopTransaction" {
            if let Some(y) = transaction_id(&payload) {
                self.state.tx_alias.remove(&y);
            }
        }
        let Some(config) = &self.config else {
            self.to_charger.push_back(local);
            return;
        };
        let forwarded = match config.forward {
            Forward::Original => payload.clone(),
            Forward::Sanitized => conform(self.version, &action, &payload).unwrap_or_else(|| {
                debug!(charger = %self.session.charger(), action, "payload cannot be made conformant; forwarded as received");
                payload.clone()
            }),
        };
        if action == "BootNotification" && self.state.boot.as_ref() != Some(&forwarded) {
            self.state.boot = Some(forwarded.clone());
            self.journal.save_state(&self.state);
        }
        // A BootNotification may overtake our own resynchronisation: it is the same news.
        let live = self.up
            && self.queue.is_empty()
            && self.replaying.is_none()
            && self.statuses.is_empty()
            && (self.resync.is_none() || action == "BootNotification")
            && (self.upstream_booted || self.state.boot.is_none() || action == "BootNotification");
        if live {
            if action == "BootNotification" {
                self.upstream_booted = true;
            }
            let mapped = self.map_outbound(&action, &forwarded);
            self.to_upstream
                .push_back(framing::call(&id, &action, &mapped));
            self.stats.forwarded += 1;
            let deadline = now.checked_add(config.answer_timeout).unwrap_or(now);
            self.awaiting.push_back(Awaiting {
                id,
                action,
                request: payload,
                forwarded,
                local,
                deadline,
            });
        } else {
            self.answer_locally(id, &action, &payload, forwarded, local);
            self.pump(now);
        }
    }

    /// The payload as the session must see it: 1.6 transaction ids the charger got from the
    /// upstream are replaced by the session's own. `None`: unchanged.
    fn session_view(&self, action: &str, payload: &Value) -> Option<Value> {
        if self.version != Version::V16 || !matches!(action, "MeterValues" | "StopTransaction") {
            return None;
        }
        let local = self.state.tx_alias.get(&transaction_id(payload)?)?;
        let mut p = payload.clone();
        p["transactionId"] = Value::from(*local);
        Some(p)
    }

    /// 1.6: our transaction ids replaced by the upstream's where known.
    fn map_outbound(&self, action: &str, payload: &Value) -> Value {
        let mut p = payload.clone();
        if self.version == Version::V16 && matches!(action, "MeterValues" | "StopTransaction") {
            if let Some(y) = transaction_id(payload).and_then(|x| self.state.tx_map.get(&x)) {
                p["transactionId"] = Value::from(*y);
            }
        }
        p
    }

    /// Remembers the upstream's verdict on an idTag (persisted when it changed).
    fn learn(&mut self, action: &str, request: &Value, result: &Value) {
        if offline::learn(&mut self.state, self.version, action, request, result) {
            self.journal.save_state(&self.state);
        }
    }

    /// The local answer with the idTag verdict of `offline_authorization`.
    fn offline_authorization(&self, action: &str, request: &Value, local: String) -> String {
        let Some(config) = &self.config else {
            return local;
        };
        offline::answer(
            &self.state,
            self.version,
            config.offline,
            &config.local_list,
            action,
            request,
            local,
        )
    }

    /// Moves the session's frames to the charger, except the answer to `call` (returned).
    fn drain_session(&mut self, call: Option<&str>) -> Option<String> {
        let mut answer = None;
        while let Some(text) = self.session.poll_outgoing() {
            let is_answer = call.is_some_and(|id| {
                answer.is_none()
                    && matches!(framing::parse(&text, self.version),
                        Ok(Frame::CallResult { id: ref got, .. } | Frame::CallError { id: ref got, .. }) if got == id)
            });
            if is_answer {
                answer = Some(text);
            } else {
                self.to_charger.push_back(text);
            }
        }
        answer
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("session", &self.session)
            .field("relayed", &self.config.is_some())
            .field("up", &self.up)
            .field("queued", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

mod downstream;
mod outage;

#[cfg(test)]
mod tests;
