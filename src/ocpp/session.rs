//! One charger connection, sans-IO: OCPP-J message exchange in both directions (OCPP-J 1.6
//! §4 "RPC framework"; OCPP 2.0.1 Part 4 §4 "RPC framework"). The WebSocket task feeds it
//! text and binary frames and timer expiries and sends what [`Session::poll_outgoing`]
//! yields; the mapping engine gets [`ChargerEvent`]s from [`Session::poll_event`].
//!
//! - Charger→CSMS CALLs are answered at once (CALLRESULT from the [`Dialect`], or its
//!   CALLERROR) and never wait behind the CSMS's own outstanding CALL: the two directions are
//!   independent (1.6 §4.1.1 / 2.0.1 Part 4 §4.1.1 restrict each *sender* to one CALL).
//! - CSMS→charger CALLs (commands) go through a [`CallTracker`]: one outstanding, the rest
//!   queued (queue full → the command finishes at once with `Rejected("queue full")`). The
//!   answer becomes [`ChargerEvent::CommandFinished`]; a CALLERROR becomes
//!   [`CommandResult::CallError`], no answer in time [`CommandResult::Timeout`], and the
//!   next queued CALL is sent.
//! - A frame [`framing::parse`] refuses is answered with the CALLERROR it names, unless it
//!   claimed to be a CALLRESULT/CALLERROR: a CALLERROR answers a CALL, never a response
//!   (1.6 §4.2.3, 2.0.1 Part 4 §4.2.3). A malformed answer to the outstanding CALL
//!   finishes that command with `CallError` (the local code and reason) instead of letting
//!   it time out; other malformed responses are logged and dropped.
//! - Answers whose MessageId matches nothing outstanding (late, duplicated, invented) are
//!   logged at debug level and ignored.
//! - Binary frames are ignored and counted (and reported as
//!   [`CoercionKind::BinaryFrame`]).
//!
//! Bad input never closes the session and never panics (CONTRACT §4); only [`Session::close`]
//! ends it. Time is an argument: [`Instant`] for timers, [`DateTime<Utc>`] for the
//! timestamps the dialects write.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::debug;

use super::calls::{CallTracker, Response};
use super::framing::{self, Frame};
use super::{CallContext, Dialect, Mode, Version};
use crate::mapping::charger::{
    ChargerCommand, ChargerEvent, ChargerId, ChargerRequest, CoercionKind, CommandResult, RequestId,
};

/// Per-connection settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    pub mode: Mode,
    /// Heartbeat interval told to the charger (BootNotification response).
    pub heartbeat_interval_s: u32,
    /// How long a CSMS→charger CALL may stay unanswered.
    pub call_timeout: Duration,
    /// CALLs that may wait behind the outstanding one.
    pub queue_capacity: usize,
}

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Text frames received.
    pub frames_in: u64,
    /// Charger→CSMS CALLs received (well-formed).
    pub calls_in: u64,
    /// CALLRESULTs sent in answer to them.
    pub results_sent: u64,
    /// CALLERRORs sent (dialect refusals and malformed frames).
    pub errors_sent: u64,
    /// Text frames [`framing::parse`] refused.
    pub malformed_frames: u64,
    /// CSMS→charger CALLs sent.
    pub calls_out: u64,
    /// Answers (CALLRESULT / CALLERROR / malformed) matched to our outstanding CALL.
    pub responses_matched: u64,
    /// Answers matching nothing outstanding, ignored.
    pub responses_unmatched: u64,
    /// Outstanding CALLs that timed out.
    pub timeouts: u64,
    /// Commands refused because the queue was full.
    pub queue_full: u64,
    /// Binary frames ignored.
    pub binary_frames: u64,
}

/// One charger's OCPP-J connection.
pub struct Session {
    charger: ChargerId,
    dialect: Box<dyn Dialect>,
    version: Version,
    config: SessionConfig,
    tracker: CallTracker,
    /// The commands sent or queued, oldest first (the tracker is FIFO too).
    commands: VecDeque<(RequestId, ChargerCommand)>,
    outgoing: VecDeque<String>,
    events: VecDeque<ChargerEvent>,
    stats: SessionStats,
    closed: bool,
}

impl Session {
    /// A new connection; emits [`ChargerEvent::Connected`].
    pub fn new(
        charger: ChargerId,
        dialect: Box<dyn Dialect>,
        config: SessionConfig,
        now: Instant,
    ) -> Session {
        let _ = now; // Nothing is due at connect; kept for symmetry with the other inputs.
        let version = dialect.version();
        let tracker = CallTracker::new(config.call_timeout, config.queue_capacity);
        let mut events = VecDeque::new();
        events.push_back(ChargerEvent::Connected {
            charger: charger.clone(),
        });
        Session {
            charger,
            dialect,
            version,
            config,
            tracker,
            commands: VecDeque::new(),
            outgoing: VecDeque::new(),
            events,
            stats: SessionStats::default(),
            closed: false,
        }
    }

    pub fn charger(&self) -> &ChargerId {
        &self.charger
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// MessageId of our CALL the charger has not answered yet.
    pub fn outstanding_id(&self) -> Option<&str> {
        self.tracker.outstanding_id()
    }

    /// One WebSocket text frame from the charger.
    pub fn handle_text(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        text: &str,
        next_transaction_id: &mut dyn FnMut() -> i32,
    ) {
        if self.closed {
            return;
        }
        self.stats.frames_in += 1;
        match framing::parse(text, self.version) {
            Ok(Frame::Call {
                id,
                action,
                payload,
            }) => self.handle_call(wall, &id, &action, &payload, next_transaction_id),
            Ok(Frame::CallResult { id, payload }) => {
                self.handle_response(&id, Response::Result(payload))
            }
            Ok(Frame::CallError {
                id,
                code,
                description,
                details: _,
            }) => self.handle_response(&id, Response::Error { code, description }),
            Err(e) => {
                self.stats.malformed_frames += 1;
                debug!(charger = %self.charger, error = %e, "malformed OCPP-J frame");
                if e.is_response() {
                    let code = e.error.code.wire_name(self.version).to_owned();
                    let description = e.error.description;
                    self.handle_response(&e.id, Response::Error { code, description });
                } else {
                    self.stats.errors_sent += 1;
                    self.outgoing
                        .push_back(framing::call_error(&e.id, &e.error, self.version));
                }
            }
        }
        self.pump(now);
    }

    /// One WebSocket binary frame: OCPP-J uses text frames only; ignored and counted.
    pub fn handle_binary(&mut self, len: usize) {
        if self.closed {
            return;
        }
        self.stats.binary_frames += 1;
        self.events.push_back(ChargerEvent::Coerced {
            charger: self.charger.clone(),
            kind: CoercionKind::BinaryFrame,
            detail: format!("{len}-byte binary frame ignored"),
        });
    }

    /// A command from the engine. Sent when nothing else is outstanding, else queued; a full
    /// queue finishes it at once with `Rejected("queue full")`, a closed session with
    /// `Offline`.
    pub fn send_command(&mut self, now: Instant, request: ChargerRequest) {
        if request.charger != self.charger {
            debug!(charger = %self.charger, target = %request.charger,
                "command addressed to another charger sent on this session");
        }
        if self.closed {
            self.finish(request.id, CommandResult::Offline);
            return;
        }
        let (action, payload) = self.dialect.encode_command(&request.command);
        match self.tracker.enqueue(request.id, action, payload) {
            Ok(()) => self.commands.push_back((request.id, request.command)),
            Err(full) => {
                debug!(charger = %self.charger, request = request.id, %full, "command refused");
                self.stats.queue_full += 1;
                self.finish(request.id, CommandResult::Rejected("queue full".to_owned()));
            }
        }
        self.pump(now);
    }

    /// Timer expiry: an outstanding CALL past its deadline finishes with `Timeout` and the
    /// next queued one is sent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        while let Some(request) = self.tracker.handle_timeout(now) {
            self.stats.timeouts += 1;
            debug!(charger = %self.charger, request, "CALL timed out");
            self.take_command(request);
            self.finish(request, CommandResult::Timeout);
            self.pump(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.tracker.poll_timeout()
    }

    /// The next text frame to send, in order.
    pub fn poll_outgoing(&mut self) -> Option<String> {
        self.outgoing.pop_front()
    }

    /// The next event for the mapping engine, in order.
    pub fn poll_event(&mut self) -> Option<ChargerEvent> {
        self.events.pop_front()
    }

    /// The connection is gone: every command not yet answered finishes with `Offline`
    /// (the outstanding one first, then the queue in order), then
    /// [`ChargerEvent::Disconnected`]. Frames not yet sent are dropped. Idempotent.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.outgoing.clear();
        for request in self.tracker.drain() {
            self.take_command(request);
            self.finish(request, CommandResult::Offline);
        }
        // Anything left (cannot happen: tracker and list move together) is offline too.
        while let Some((request, _)) = self.commands.pop_front() {
            self.finish(request, CommandResult::Offline);
        }
        self.events.push_back(ChargerEvent::Disconnected {
            charger: self.charger.clone(),
        });
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    fn handle_call(
        &mut self,
        wall: DateTime<Utc>,
        id: &str,
        action: &str,
        payload: &serde_json::Value,
        next_transaction_id: &mut dyn FnMut() -> i32,
    ) {
        self.stats.calls_in += 1;
        let mut events = Vec::new();
        let answer = {
            let mut ctx = CallContext {
                charger: &self.charger,
                now: wall,
                mode: self.config.mode,
                heartbeat_interval_s: self.config.heartbeat_interval_s,
                events: &mut events,
                next_transaction_id,
            };
            self.dialect.handle_call(&mut ctx, action, payload)
        };
        match answer {
            Ok(result) => {
                self.stats.results_sent += 1;
                self.outgoing.push_back(framing::call_result(id, &result));
            }
            Err(error) => {
                debug!(charger = %self.charger, action, code = ?error.code,
                    description = %error.description, "CALL refused");
                self.stats.errors_sent += 1;
                self.outgoing
                    .push_back(framing::call_error(id, &error, self.version));
            }
        }
        self.events.extend(events);
    }

    fn handle_response(&mut self, id: &str, response: Response) {
        let Some((request, action, response)) = self.tracker.handle_response(id, response) else {
            self.stats.responses_unmatched += 1;
            debug!(charger = %self.charger, id, "answer to no outstanding CALL ignored");
            return;
        };
        self.stats.responses_matched += 1;
        let command = self.take_command(request);
        let result = match response {
            Response::Error { code, description } => {
                debug!(charger = %self.charger, action, %code, %description, "CALLERROR");
                CommandResult::CallError { code, description }
            }
            Response::Result(payload) => match &command {
                Some(command) => self.dialect.decode_result(command, &payload),
                // Unreachable by construction; answer something rather than nothing.
                None => CommandResult::Rejected("unknown command".to_owned()),
            },
        };
        self.finish(request, result);
    }

    /// Moves queued CALLs to the outgoing frames while nothing is outstanding.
    fn pump(&mut self, now: Instant) {
        while let Some(text) = self.tracker.poll_transmit(now) {
            self.stats.calls_out += 1;
            self.outgoing.push_back(text);
        }
    }

    /// Removes the (oldest) command of `request` from the list.
    fn take_command(&mut self, request: RequestId) -> Option<ChargerCommand> {
        let at = self.commands.iter().position(|(r, _)| *r == request)?;
        self.commands.remove(at).map(|(_, command)| command)
    }

    fn finish(&mut self, request: RequestId, result: CommandResult) {
        self.events.push_back(ChargerEvent::CommandFinished {
            charger: self.charger.clone(),
            request,
            result,
        });
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("charger", &self.charger)
            .field("version", &self.version)
            .field("outstanding", &self.tracker.outstanding_id())
            .field("queued", &self.tracker.queued())
            .field("closed", &self.closed)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
